//! The raw syscall boundary: a `syscall(2)` result (a `c_long`) as the fd or pid it is,
//! converted with a check rather than a bare `as`.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// A syscall's result as the int the kernel returned: its errno when it failed, EOVERFLOW
/// for a value no int holds (which a kernel returning an fd or pid never gives).
pub(crate) fn int_result(ret: libc::c_long) -> Result<i32, Errno> {
    let v = Errno::result(ret)?;
    i32::try_from(v).map_err(|_| Errno::EOVERFLOW)
}

/// Take ownership of the fd a syscall returned.
///
/// # Safety
/// `ret` is the result of a syscall that returns a new fd (or fails): nothing else owns it.
pub(crate) unsafe fn owned_fd(ret: libc::c_long) -> Result<OwnedFd, Errno> {
    let fd: RawFd = int_result(ret)?;
    // SAFETY: the caller's promise: a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

//! Keeps the host's nucleus binary out of a container's reach (the CVE-2019-5736 class).
//!
//! The container init and every `exec`'d process are forks of the runtime: until their
//! execve they run the runtime's binary inside the container's pid namespace, and so does a
//! container program that re-executes `/proc/self/exe` (a `#!/proc/self/exe` script). Their
//! `/proc/PID/exe` and `/proc/PID/map_files` name the binary the runtime was started from.
//! Opened by a container process and written once the runtime has exited, it would be the
//! host's binary.
//!
//! Before a verb that puts processes into a container, the runtime re-executes itself once
//! from a copy nobody can write:
//! - a detached, read-only bind mount of its own binary (open_tree + mount_setattr, no
//!   copy). It is in no mount table: it lives only as long as processes run from it and
//!   leaves nothing on the host. Its teardown (when the re-exec closes the tree's fd) waits
//!   for an expedited RCU grace period: nothing on an idle machine, up to ~20 ms of
//!   uninterruptible sleep on a busy one (README, *Performance*);
//! - where mounts are refused (no CAP_SYS_ADMIN over the mount namespace, e.g. rootless), a
//!   sealed memfd copy: no wait, but the copy costs ~3-4 ms of CPU and the binary's size in
//!   memory for as long as the runtime (or an init not yet started) runs from it.
//!
//! Earlier versions kept a persistent bind per binary in [`LEGACY_DIR`], forever in the
//! host's mount table; those are unmounted and removed by the next such verb.
//!
//! Any later open of that exe for writing gets EROFS or, for the memfd, write/mmap are
//! refused by the seals. Undoing either needs CAP_SYS_ADMIN over the host's mount
//! namespace. A binary that already runs from a read-only mount or a sealed memfd is not
//! re-executed, so installing nucleus on a read-only file system costs nothing.
//!
//! The init itself stays a fork of the runtime (no re-exec per container): this one execve
//! happens in the runtime, before any container work. Processes inside the container are
//! also made non-dumpable until their execve (see `spawn` and `exec`), which keeps their
//! /proc entries (fds, maps, environ, exe) closed to the container's processes.

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use crate::rootfs::options::{AttrChange, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use crate::rootfs::syscall::{Kernel, MountApi};

/// Set in the environment of the re-executed runtime (and removed at once), so a copy that
/// still finds itself writable fails instead of re-executing forever.
const REEXEC_MARK: &str = "_NUCLEUS_SEALED_EXE";

/// linux/memfd.h.
const MFD_EXEC: libc::c_uint = 0x0010;

/// Where nucleus versions before this one kept a persistent read-only bind of each binary
/// they ran (named DEV-INODE), in the default state root.
pub const LEGACY_DIR: &str = "/run/nucleus/@exe";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("protect the runtime binary: {what}: {source}")]
    Sys { what: &'static str, source: Errno },
    #[error(
        "protect the runtime binary: it is still writable after re-executing from a sealed copy"
    )]
    StillWritable,
}

fn sys(what: &'static str) -> impl FnOnce(Errno) -> SealError {
    move |source| SealError::Sys { what, source }
}

/// How the running binary is kept from being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// It runs from a read-only mount.
    ReadOnlyMount,
    /// It runs from a memfd sealed against writes.
    SealedMemfd,
}

/// Make sure the running binary cannot be written through any of its processes. Returns
/// when it already cannot; otherwise re-executes the runtime from a protected copy with
/// the same arguments and environment (does not return on success).
pub fn ensure() -> Result<Protection, SealError> {
    let marked = std::env::var_os(REEXEC_MARK).is_some();
    if marked {
        // Nothing below (hooks, the container's environment) may see it.
        // SAFETY: the runtime is single-threaded at this point (start of main).
        unsafe { std::env::remove_var(REEXEC_MARK) };
        // execveat(AT_EMPTY_PATH) names the process after the fd ("3"): give `ps`,
        // `pgrep` and `/proc/PID/comm` the runtime's name back.
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, c"nucleus".as_ptr(), 0, 0, 0) };
    }
    let exe = open_self_exe()?;
    if let Some(p) = protection(exe.as_fd())? {
        return Ok(p);
    }
    if marked {
        return Err(SealError::StillWritable);
    }
    sweep_legacy(Path::new(LEGACY_DIR));
    let copy = match readonly_bind(exe.as_fd()) {
        Ok(fd) => fd,
        // No CAP_SYS_ADMIN over this mount namespace (e.g. rootless): copy into a memfd.
        Err(_) => sealed_memfd(exe.as_fd())?,
    };
    drop(exe);
    Err(reexec(copy.as_fd()))
}

fn open_self_exe() -> Result<OwnedFd, SealError> {
    // SAFETY: a NUL-terminated path; the result is a new fd we own.
    let fd = unsafe { libc::open(c"/proc/self/exe".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    Errno::result(fd).map_err(sys("open /proc/self/exe"))?;
    // SAFETY: open returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What already protects the file behind `fd`, if anything.
fn protection(fd: BorrowedFd<'_>) -> Result<Option<Protection>, SealError> {
    let vfs = nix::sys::statvfs::fstatvfs(fd).map_err(sys("statvfs of the binary"))?;
    if vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Ok(Some(Protection::ReadOnlyMount));
    }
    // SAFETY: fcntl on a live fd with an integer command and no argument.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    let needed = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
    if seals >= 0 && seals & needed == needed {
        return Ok(Some(Protection::SealedMemfd));
    }
    Ok(None)
}

/// A detached read-only bind mount of the file behind `fd`, as an O_PATH fd of the file.
fn readonly_bind(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let tree = Kernel.clone_tree(fd, false)?;
    let change = AttrChange {
        set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        clr: 0,
    };
    Kernel.setattr(tree.as_fd(), false, change, MsFlags::empty())?;
    Ok(tree)
}

/// Unmounts and removes the persistent binds earlier versions left in `dir` (see
/// [`LEGACY_DIR`]), then the directory. Only a directory of this user that no one else may
/// write is touched; where there is none (the usual case) this costs one failed open. Best
/// effort: a bind that stays costs only its mount. A process still running from one keeps
/// it until it exits (lazy unmount).
fn sweep_legacy(dir: &Path) {
    let Ok(c) = CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return;
    };
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a NUL-terminated path; the result is a new fd we own.
    let raw = unsafe { libc::open(c.as_ptr(), flags) };
    if raw < 0 {
        return;
    }
    // SAFETY: open returned a new fd that nothing else owns.
    let dirfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let ours = nix::sys::stat::fstat(dirfd.as_fd())
        .is_ok_and(|st| st.st_uid == nix::unistd::geteuid().as_raw() && st.st_mode & 0o022 == 0);
    if !ours {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(name) = CString::new(e.file_name().into_vec()) else {
            continue;
        };
        // Stacked binds come off one by one; a bounded number of tries.
        for _ in 0..8 {
            let flags = MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW;
            if nix::mount::umount2(&e.path(), flags).is_err() {
                break;
            }
        }
        for flag in [0, libc::AT_REMOVEDIR] {
            // SAFETY: a live directory fd and a NUL-terminated name.
            if unsafe { libc::unlinkat(dirfd.as_raw_fd(), name.as_ptr(), flag) } == 0 {
                break;
            }
        }
    }
    drop(dirfd);
    let _ = std::fs::remove_dir(dir);
}

/// A memfd holding a copy of the file behind `fd`, sealed against any change.
fn sealed_memfd(fd: BorrowedFd<'_>) -> Result<OwnedFd, SealError> {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3) keeps the copy executable where vm.memfd_noexec asks for
    // non-executable memfds by default; older kernels refuse the flag with EINVAL.
    // SAFETY: a NUL-terminated name; the result is a new fd we own.
    let mut raw = unsafe { libc::memfd_create(c"nucleus".as_ptr(), flags | MFD_EXEC) };
    if raw < 0 && Errno::last() == Errno::EINVAL {
        // SAFETY: as above.
        raw = unsafe { libc::memfd_create(c"nucleus".as_ptr(), flags) };
    }
    Errno::result(raw).map_err(sys("memfd_create"))?;
    // SAFETY: memfd_create returned a new fd that nothing else owns.
    let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let io = |what: &'static str| {
        move |e: std::io::Error| SealError::Sys {
            what,
            source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        }
    };
    let mut src = std::fs::File::from(fd.try_clone_to_owned().map_err(io("dup the binary's fd"))?);
    let mut dst = std::fs::File::from(memfd.try_clone().map_err(io("dup the memfd"))?);
    // std::io::copy uses copy_file_range/sendfile between files: no user-space buffer.
    std::io::copy(&mut src, &mut dst).map_err(io("copy the binary into a memfd"))?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a live memfd with integer arguments.
    let r = unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) };
    Errno::result(r).map_err(sys("seal the memfd"))?;
    Ok(memfd)
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH) with this process's arguments and
/// environment plus the re-exec mark. Returns only on failure.
fn reexec(fd: BorrowedFd<'_>) -> SealError {
    let to_c = |s: OsString| CString::new(s.into_vec()).ok();
    let argv: Vec<CString> = std::env::args_os().filter_map(to_c).collect();
    let mut envp: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            to_c(kv)
        })
        .collect();
    envp.push(CString::new(format!("{REEXEC_MARK}=1")).expect("no NUL in the mark"));
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    // SAFETY: argv and envp are NULL-terminated arrays of NUL-terminated strings that
    // outlive the call; fd is live; the path is an empty C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv_p.as_ptr(),
            envp_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    let errno = Errno::result(r).err().unwrap_or(Errno::EINVAL);
    SealError::Sys {
        what: "re-execute from the protected copy",
        source: errno,
    }
}

/// Make this process non-dumpable: its /proc entries (exe, fds, maps, environ, mem) become
/// unreachable to processes without CAP_SYS_PTRACE over the host's user namespace. The
/// kernel resets this at the process's execve, for the program it runs.
pub fn make_undumpable() {
    // SAFETY: prctl with constant integer arguments; affects only this process.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readonly_bind_refuses_writes() {
        // A file nobody executes (the running test binary would only say ETXTBSY).
        let file = tempfile::NamedTempFile::new().unwrap();
        // The tests run as root, which may clone mounts.
        let tree = readonly_bind(file.as_file().as_fd()).unwrap();
        assert_eq!(
            protection(tree.as_fd()).unwrap(),
            Some(Protection::ReadOnlyMount)
        );
        let path = format!("/proc/self/fd/{}", tree.as_raw_fd());
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    }

    #[test]
    fn sealed_memfd_refuses_writes_and_is_recognised() {
        let exe = open_self_exe().unwrap();
        let memfd = sealed_memfd(exe.as_fd()).unwrap();
        assert_eq!(
            protection(memfd.as_fd()).unwrap(),
            Some(Protection::SealedMemfd)
        );
        let orig = std::fs::metadata("/proc/self/exe").unwrap().len();
        let copy = std::fs::File::from(memfd.try_clone().unwrap());
        assert_eq!(copy.metadata().unwrap().len(), orig);
        let path = format!("/proc/self/fd/{}", memfd.as_raw_fd());
        let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let err = std::io::Write::write(&mut w, b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    }

    #[test]
    fn a_writable_binary_is_not_protected() {
        // The test binary itself lives in the build tree, a writable file system.
        let exe = open_self_exe().unwrap();
        assert_eq!(protection(exe.as_fd()).unwrap(), None);
    }
}

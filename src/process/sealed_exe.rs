//! Keeps the host's nucleus binary out of a container's reach (the CVE-2019-5736 class).
//!
//! The container init and every `exec`'d process are forks of the runtime: until their
//! execve they run the runtime's binary inside the container's pid namespace, and so does a
//! container program that re-executes `/proc/self/exe` (a `#!/proc/self/exe` script). Their
//! `/proc/PID/exe` and `/proc/PID/map_files` name the binary the runtime was started from.
//! Opened by a container process and written once the runtime has exited, it would be the
//! host's binary.
//!
//! Before a verb that puts processes into a container, the runtime moves onto a copy nobody
//! can write:
//! - a detached, read-only bind mount of its own binary (open_tree + mount_setattr, no
//!   copy). It is in no mount table: it lives only as long as processes run from it and
//!   leaves nothing on the host. Its teardown (at the last close of the tree's fd) waits
//!   for an expedited RCU grace period: nothing on an idle machine, up to ~20 ms of
//!   uninterruptible sleep on a busy one (docs/performance.md). So that the runtime does
//!   not wait for it before its work, the last close happens in a helper process, reaped
//!   only as the runtime exits (see [`close_elsewhere`]);
//! - the running process maps its image anew from that copy and makes it its exe, without
//!   starting again (`exe_remap`: needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN over its
//!   user namespace). Where that is refused, or cannot be checked (a binary on overlayfs), it
//!   re-executes itself from the copy, passing the tree's fd across the execve;
//! - where mounts are refused (no CAP_SYS_ADMIN over the mount namespace, e.g. rootless
//!   without a user namespace of its own), it re-executes from a sealed memfd copy: no
//!   wait, but the copy costs ~3-4 ms of CPU and the binary's size in memory for as long as
//!   the runtime (or an init not yet started) runs from it.
//!
//! Earlier versions kept a persistent bind per binary in [`LEGACY_DIR`], forever in the
//! host's mount table; those are unmounted and removed by the next such verb.
//!
//! Any later open of that exe for writing gets EROFS or, for the memfd, write/mmap are
//! refused by the seals. Undoing either needs CAP_SYS_ADMIN over the host's mount
//! namespace. A binary that already runs from a read-only mount or a sealed memfd is left
//! as it is, so installing nucleus on a read-only file system costs nothing.
//!
//! The init itself stays a fork of the runtime (no re-exec per container): the move happens
//! in the runtime, before any container work. Processes inside the container are
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
/// still finds itself writable fails instead of re-executing forever. Its value is the
/// number of the detached tree's fd the re-executed runtime inherits, or `-` (memfd).
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
/// when it already cannot or once the process runs from a protected copy; otherwise
/// re-executes the runtime from the copy with the same arguments and environment (does not
/// return on success).
pub fn ensure() -> Result<Protection, SealError> {
    let mark = std::env::var_os(REEXEC_MARK);
    let marked = mark.is_some();
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
        if let Some(tree) = mark.and_then(|m| inherited_tree(&m, exe.as_fd())) {
            if let Some(pid) = close_elsewhere(tree) {
                HELPER.store(pid, std::sync::atomic::Ordering::Relaxed);
            }
        }
        return Ok(p);
    }
    if marked {
        return Err(SealError::StillWritable);
    }
    sweep_legacy(Path::new(LEGACY_DIR));
    let (copy, pass) = match readonly_bind(exe.as_fd()) {
        Ok(tree) => {
            if super::exe_remap::run_from(tree.as_fd()).is_ok() {
                if let Some(pid) = close_elsewhere(tree) {
                    HELPER.store(pid, std::sync::atomic::Ordering::Relaxed);
                }
                return Ok(Protection::ReadOnlyMount);
            }
            (tree, true)
        }
        // No CAP_SYS_ADMIN over this mount namespace (e.g. rootless): copy into a memfd.
        Err(_) => (sealed_memfd(exe.as_fd())?, false),
    };
    drop(exe);
    Err(reexec(copy.as_fd(), pass))
}

/// The detached tree's fd named by the re-exec mark, once it is checked to be what
/// `ensure` passed: an O_PATH fd of the very file this process runs, on a read-only mount.
/// Anything else (a mark set by hand) is left alone. The fd is close-on-exec again at once.
fn inherited_tree(mark: &std::ffi::OsStr, exe: BorrowedFd<'_>) -> Option<OwnedFd> {
    let raw: libc::c_int = mark.to_str()?.parse().ok()?;
    if raw <= libc::STDERR_FILENO || raw == exe.as_raw_fd() {
        return None;
    }
    // SAFETY: fcntl with an integer command on an fd number; a closed one gives EBADF.
    let fl = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    if fl < 0 || fl & libc::O_PATH == 0 {
        return None;
    }
    // SAFETY: the fd is open (F_GETFL succeeded) and only borrowed for the checks below.
    let fd = unsafe { BorrowedFd::borrow_raw(raw) };
    let same = match (nix::sys::stat::fstat(fd), nix::sys::stat::fstat(exe)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    };
    if !same || protection(fd).ok()? != Some(Protection::ReadOnlyMount) {
        return None;
    }
    // SAFETY: fcntl setting FD_CLOEXEC on a live fd.
    if unsafe { libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: the fd was passed to this process for it alone (the re-exec mark names it)
    // and nothing else in it owns or uses that number.
    Some(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The helper `ensure` started, for [`reap_helper`].
static HELPER: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Waits for the helper that closes the protected copy's tree (if `ensure` started one) to
/// finish: called as the runtime exits, so no process of this command outlives it. By then
/// the helper has long been done with its grace period unless the command was very short
/// (a refusal), where the wait is what the runtime paid before.
pub fn reap_helper() {
    let pid = HELPER.swap(0, std::sync::atomic::Ordering::Relaxed);
    if pid > 0 {
        let mut status = 0;
        // SAFETY: waits for our own clone child (its exit signal is none: __WCLONE);
        // status is a live int.
        while unsafe { libc::waitpid(pid, &mut status, libc::__WCLONE) } < 0
            && Errno::last() == Errno::EINTR
        {}
    }
}

/// Set by `close_elsewhere` once this process has closed its copy of the fd: from then on
/// the helper's copy is the last one.
static PARENT_CLOSED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The runtime's pid, for the helper to tell that its parent died (see `close_elsewhere`).
static RUNTIME_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Closes `fd` so that the work of its last close (for the detached tree: unmounting it,
/// which waits for an expedited RCU grace period) happens in a helper process, not here.
/// The helper shares this process's memory (no page tables copied) and has its own copy of
/// the fd table; it waits until this process has closed its copy, closes every other fd
/// (so it holds no pipe or lock of the caller's open), then the tree's, and exits. Its
/// exit signal is none, so the runtime's `wait4(-1)` never sees it; the runtime reaps it
/// only as it exits ([`reap_helper`]), after its own work. Must be called while the
/// process has a single thread, once. Where the helper cannot be made, the fd is closed
/// here. Returns the helper's pid.
fn close_elsewhere(fd: OwnedFd) -> Option<libc::pid_t> {
    use std::sync::atomic::Ordering;
    // Raw syscalls only (no libc wrapper): the helper runs in the runtime's memory with
    // the runtime's thread pointer, and libc would set the runtime's errno.
    use syscalls::{syscall0, syscall1, syscall3, syscall4, Sysno};
    extern "C" fn helper(arg: *mut libc::c_void) -> libc::c_int {
        let fd = arg as usize;
        let wait = (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as usize;
        // A runtime killed between the clone and its store would never wake us: the wait
        // is bounded, and a parent gone (the helper reparented) counts as closed, since its
        // death closed its copy.
        let tick = libc::timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        while PARENT_CLOSED.load(Ordering::Acquire) == 0 {
            // SAFETY: getppid has no arguments and cannot fail.
            let ppid = unsafe { syscall0(Sysno::getppid) }.unwrap_or(0);
            if ppid != RUNTIME_PID.load(Ordering::Relaxed) as usize {
                break;
            }
            // SAFETY: a futex wait on a live static word with a timeout on this stack;
            // returns at once if the word changed.
            unsafe {
                let _ = syscall4(
                    Sysno::futex,
                    PARENT_CLOSED.as_ptr() as usize,
                    wait,
                    0,
                    &tick as *const libc::timespec as usize,
                );
            }
        }
        // SAFETY: close_range and close on this process's own fd table (CLONE_VM without
        // CLONE_FILES): every fd but the tree's first, so the helper holds none of the
        // caller's pipes while the tree is torn down. fd > 2 (see `inherited_tree`).
        unsafe {
            let _ = syscall3(Sysno::close_range, 0, fd - 1, 0);
            let _ = syscall3(Sysno::close_range, fd + 1, u32::MAX as usize, 0);
            let _ = syscall1(Sysno::close, fd);
        }
        0
    }
    RUNTIME_PID.store(std::process::id(), Ordering::Relaxed);
    const STACK: usize = 16 * 1024;
    // The helper's stack: leaked, as the helper may outlive any owner of it here (once per
    // process).
    let stack: &'static mut [u8] = Box::leak(vec![0u8; STACK].into_boxed_slice());
    // Its top, aligned for the ABI (the stack grows down).
    let top = (stack.as_mut_ptr() as usize + STACK) & !15;
    // The helper starts with every signal blocked: no handler of the runtime's may run on
    // its stack, and no terminal signal should end it before it closes the fd.
    let mut all = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initialises `all`; sigprocmask reads `all` and writes `old`.
    unsafe {
        libc::sigfillset(all.as_mut_ptr());
        libc::sigprocmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr());
    }
    // SAFETY: `helper` only makes raw syscalls on its own stack `top`, which stays
    // allocated forever; CLONE_VM shares the memory it reads (the static word).
    let pid = unsafe {
        libc::clone(
            helper,
            top as *mut libc::c_void,
            libc::CLONE_VM,
            fd.as_raw_fd() as usize as *mut libc::c_void,
        )
    };
    // SAFETY: restores the mask sigprocmask saved above.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, old.as_ptr(), std::ptr::null_mut()) };
    drop(fd);
    if pid <= 0 {
        return None;
    }
    {
        PARENT_CLOSED.store(1, Ordering::Release);
        let wake = (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as usize;
        // SAFETY: a futex wake on a live static word.
        unsafe {
            let _ = syscall3(Sysno::futex, PARENT_CLOSED.as_ptr() as usize, wake, 1);
        }
    }
    Some(pid)
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
/// environment plus the re-exec mark. With `pass`, `fd` stays open across the execve and
/// the mark names it (see [`inherited_tree`]). Returns only on failure.
fn reexec(fd: BorrowedFd<'_>, pass: bool) -> SealError {
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
    let mark = if pass {
        // SAFETY: fcntl clearing FD_CLOEXEC on a live fd; if it fails the fd closes at the
        // execve as before and the mark names a closed fd, which `inherited_tree` ignores.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) };
        fd.as_raw_fd().to_string()
    } else {
        "-".to_string()
    };
    envp.push(CString::new(format!("{REEXEC_MARK}={mark}")).expect("no NUL in the mark"));
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

/// The runtime made non-dumpable while it clones, so its child is born so (a child that
/// leaves by `exit_child` or execve never drops it); dumpable again when dropped, if it was.
pub struct Dumpable(bool);

impl Dumpable {
    pub fn off() -> Dumpable {
        // SAFETY: prctl with constant integer arguments; affects only this process.
        let was = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) } == 1;
        make_undumpable();
        Dumpable(was)
    }
}

impl Drop for Dumpable {
    fn drop(&mut self) {
        if self.0 {
            // SAFETY: prctl with constant integer arguments; affects only this process.
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
        }
    }
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
    fn a_helper_makes_the_last_close_of_a_detached_tree() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let tree = readonly_bind(file.as_file().as_fd()).unwrap();
        let raw = tree.as_raw_fd();
        // A second reference to the tree's open file: once the helper has closed its copy,
        // this one's fd flags still read, and the helper must have left it alone.
        let kept = tree.try_clone().unwrap();
        let pid = close_elsewhere(tree).expect("the helper is made");
        let mut status = 0;
        // SAFETY: waits for our own child (a clone child: __WCLONE), status is a live int.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WCLONE) };
        assert_eq!(r, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status:#x}"
        );
        assert_ne!(kept.as_raw_fd(), raw);
        assert_eq!(
            protection(kept.as_fd()).unwrap(),
            Some(Protection::ReadOnlyMount)
        );
    }

    #[test]
    fn only_the_tree_of_the_running_binary_is_taken_from_the_mark() {
        let exe = open_self_exe().unwrap();
        let mark = |fd: libc::c_int| std::ffi::OsString::from(fd.to_string());
        // Not a tree: the binary opened for reading, a standard stream, garbage.
        let plain = std::fs::File::open("/proc/self/exe").unwrap();
        assert!(inherited_tree(&mark(plain.as_raw_fd()), exe.as_fd()).is_none());
        assert!(inherited_tree(&mark(exe.as_raw_fd()), exe.as_fd()).is_none());
        assert!(inherited_tree(&mark(2), exe.as_fd()).is_none());
        assert!(inherited_tree(std::ffi::OsStr::new("-"), exe.as_fd()).is_none());
        // A tree of another file.
        let other = tempfile::NamedTempFile::new().unwrap();
        let tree = readonly_bind(other.as_file().as_fd()).unwrap();
        assert!(inherited_tree(&mark(tree.as_raw_fd()), exe.as_fd()).is_none());
        // The read-only tree of this very binary, passed without close-on-exec.
        let tree = readonly_bind(exe.as_fd()).unwrap();
        let raw = tree.as_raw_fd();
        // SAFETY: fcntl clearing the flags of a live fd we own.
        assert_eq!(unsafe { libc::fcntl(raw, libc::F_SETFD, 0) }, 0);
        let taken = inherited_tree(&mark(raw), exe.as_fd()).expect("the tree is taken");
        std::mem::forget(tree); // `taken` owns the fd now
        assert_eq!(taken.as_raw_fd(), raw);
        // SAFETY: fcntl reading the flags of a live fd.
        let flags = unsafe { libc::fcntl(raw, libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
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

    /// run_from in a fork (the test harness has other threads, and none may write the data
    /// segment while it is carried over): the process runs on, its data intact, and neither
    /// its exe nor any mapping of its binary is on a writable mount any more.
    #[test]
    fn the_running_image_moves_onto_the_read_only_copy() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static CANARY: AtomicU64 = AtomicU64::new(0);
        CANARY.store(0x5eed, Ordering::SeqCst);
        let exe = open_self_exe().unwrap();
        let md = nix::sys::stat::fstat(exe.as_fd()).unwrap();
        let binary = (md.st_dev, md.st_ino);
        let tree = readonly_bind(exe.as_fd()).unwrap();
        // A build tree on overlayfs (a CI container): where the kernel cannot check the move
        // (Linux 6.18, not 6.1) it is refused, which is what the runtime must see.
        let on_overlayfs = nix::sys::statfs::fstatfs(exe.as_fd())
            .unwrap()
            .filesystem_type()
            == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC;
        let child = || -> Result<(), String> {
            match super::super::exe_remap::run_from(tree.as_fd()) {
                Err(Errno::ENOTSUP) if on_overlayfs => return Ok(()),
                Err(e) => return Err(format!("run_from: {e}")),
                Ok(()) => {}
            }
            if CANARY.load(Ordering::SeqCst) != 0x5eed {
                return Err("the data segment lost its contents".into());
            }
            CANARY.store(7, Ordering::SeqCst);
            let now = open_self_exe().map_err(|e| e.to_string())?;
            if protection(now.as_fd()).map_err(|e| e.to_string())?
                != Some(Protection::ReadOnlyMount)
            {
                return Err("/proc/self/exe is writable".into());
            }
            let mut mapped = 0;
            for e in std::fs::read_dir("/proc/self/map_files").map_err(|e| e.to_string())? {
                let path = e.map_err(|e| e.to_string())?.path();
                let Ok(f) = std::fs::File::open(&path) else {
                    continue;
                };
                let st = nix::sys::stat::fstat(f.as_fd()).map_err(|e| e.to_string())?;
                if (st.st_dev, st.st_ino) != binary {
                    continue;
                }
                mapped += 1;
                if protection(f.as_fd()).map_err(|e| e.to_string())?
                    != Some(Protection::ReadOnlyMount)
                {
                    return Err(format!(
                        "{} maps the binary from a writable mount",
                        path.display()
                    ));
                }
            }
            // On overlayfs the mappings may show the layer's file, another identity.
            if mapped < 2 && !on_overlayfs {
                return Err(format!(
                    "{mapped} mappings of the binary (its code and read-only data expected)"
                ));
            }
            Ok(())
        };
        let (rd, wr) = nix::unistd::pipe().unwrap();
        let (mut rd, wr) = (std::fs::File::from(rd), std::fs::File::from(wr));
        // SAFETY: the child only runs the closure, writes to the pipe and leaves by _exit.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                drop(rd);
                let mut wr = wr;
                let verdict = match child() {
                    Ok(()) => "ok".to_string(),
                    Err(e) => e,
                };
                let _ = std::io::Write::write_all(&mut wr, verdict.as_bytes());
                // SAFETY: leaves the forked child without running the harness's exit.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                drop(wr);
                let mut verdict = String::new();
                std::io::Read::read_to_string(&mut rd, &mut verdict).unwrap();
                nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(verdict, "ok");
                assert_eq!(
                    CANARY.load(Ordering::SeqCst),
                    0x5eed,
                    "the parent's data changed"
                );
            }
        }
    }

    #[test]
    fn a_writable_binary_is_not_protected() {
        // The test binary itself lives in the build tree, a writable file system.
        let exe = open_self_exe().unwrap();
        assert_eq!(protection(exe.as_fd()).unwrap(), None);
    }
}

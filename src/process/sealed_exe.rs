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
//! from a copy nobody can write. In order of preference:
//! - a persistent read-only bind mount of its own binary in [`PERSISTENT_DIR`], one per
//!   binary (named by device and inode), made by the first such verb and reused by every
//!   later one. Before each use it is checked on the fd: the same inode as the running
//!   binary, on a read-only mount. Reusing it spares every run the teardown of a detached
//!   mount, which waits for an (expedited) RCU grace period in the exec: milliseconds on a
//!   busy machine;
//! - a detached, read-only bind mount (open_tree + mount_setattr, no copy; it lives only as
//!   long as processes run from it), where the directory cannot be used;
//! - where mounts are refused (no CAP_SYS_ADMIN over the mount namespace), a sealed memfd
//!   copy.
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

use std::ffi::{CStr, CString, OsString};
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

/// Where the persistent read-only binds of the runtime's binary live (a name no container
/// id can take, in the default state root). The directory is the runtime user's, mode 0700;
/// one that is not (another owner, writable by others, not a directory) is not used.
pub const PERSISTENT_DIR: &str = "/run/nucleus/@exe";

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
    let copy = match persistent_bind(Path::new(PERSISTENT_DIR), exe.as_fd()) {
        Ok(fd) => fd,
        Err(_) => match readonly_bind(exe.as_fd()) {
            Ok(fd) => fd,
            // No CAP_SYS_ADMIN over this mount namespace (e.g. rootless): copy into a memfd.
            Err(_) => sealed_memfd(exe.as_fd())?,
        },
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

/// The persistent read-only bind of the binary behind `exe` in `dir`, as an O_PATH fd of
/// the file: the existing one when it checks out, else one made now (under the directory's
/// lock, so concurrent first runs make one mount between them). Mounts there of binaries
/// that have since been deleted or replaced are unmounted when a new one is made.
pub fn persistent_bind(dir: &Path, exe: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let want = nix::sys::stat::fstat(exe)?;
    let name = CString::new(format!("{:x}-{}", want.st_dev, want.st_ino))
        .expect("no NUL in a formatted number");
    let dirfd = private_dir(dir)?;
    if let Some(fd) = verified(dirfd.as_fd(), &name, &want)? {
        return Ok(fd);
    }
    // SAFETY: flock on a live fd; the lock goes with the fd.
    Errno::result(unsafe { libc::flock(dirfd.as_raw_fd(), libc::LOCK_EX) })?;
    if let Some(fd) = verified(dirfd.as_fd(), &name, &want)? {
        return Ok(fd);
    }
    sweep(dir, dirfd.as_fd(), &name);
    // Whatever is mounted at the name in this namespace is not a usable bind: take it off.
    // A regular file stays (it may be another mount namespace's mount point); anything else
    // (a symlink, a directory) is removed.
    let path = dir.join(name.to_str().expect("ASCII name"));
    for _ in 0..8 {
        if nix::mount::umount2(&path, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW).is_err() {
            break;
        }
    }
    let point = match open_at(dirfd.as_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW) {
        Ok(fd) if is_regular(fd.as_fd())? => fd,
        other => {
            if other.is_ok() {
                unlink_any(dirfd.as_fd(), &name)?;
            }
            let flags = libc::O_RDONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
            drop(open_at(dirfd.as_fd(), &name, flags)?);
            open_at(dirfd.as_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW)?
        }
    };
    let tree = readonly_bind(exe)?;
    // Its own peer group would tie it to its copies in other namespaces: keep it private.
    Kernel.setattr(
        tree.as_fd(),
        false,
        AttrChange::default(),
        MsFlags::MS_PRIVATE,
    )?;
    Kernel.attach(tree.as_fd(), point.as_fd())?;
    drop(tree);
    verified(dirfd.as_fd(), &name, &want)?.ok_or(Errno::EIO)
}

/// `dir` opened (made if missing, with its parent) when it is a directory of this user that
/// no one else may write.
fn private_dir(dir: &Path) -> Result<OwnedFd, Errno> {
    let open = || {
        let c = CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: a NUL-terminated path; the result is a new fd we own.
        let fd = unsafe { libc::open(c.as_ptr(), flags) };
        Errno::result(fd)?;
        // SAFETY: open returned a new fd that nothing else owns.
        Ok::<_, Errno>(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let fd = match open() {
        Err(Errno::ENOENT) => {
            if let Some(parent) = dir.parent() {
                match nix::unistd::mkdir(parent, nix::sys::stat::Mode::from_bits_truncate(0o711)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
            }
            match nix::unistd::mkdir(dir, nix::sys::stat::Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
            open()?
        }
        other => other?,
    };
    let st = nix::sys::stat::fstat(fd.as_fd())?;
    let mode = st.st_mode;
    if mode & libc::S_IFMT != libc::S_IFDIR
        || st.st_uid != nix::unistd::geteuid().as_raw()
        || mode & 0o022 != 0
    {
        return Err(Errno::EPERM);
    }
    Ok(fd)
}

/// The entry `name` of `dir` as an O_PATH fd when it is the binary `want` on a read-only
/// mount: what may be executed in place of the running binary.
fn verified(dir: BorrowedFd<'_>, name: &CStr, want: &libc::stat) -> Result<Option<OwnedFd>, Errno> {
    let fd = match open_at(dir, name, libc::O_PATH | libc::O_NOFOLLOW) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    let st = nix::sys::stat::fstat(fd.as_fd())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG
        || st.st_dev != want.st_dev
        || st.st_ino != want.st_ino
    {
        return Ok(None);
    }
    let vfs = nix::sys::statvfs::fstatvfs(&fd)?;
    if !vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Ok(None);
    }
    Ok(Some(fd))
}

/// Unmounts and removes the binds in `dir` (other than `keep`) whose binary is gone (no
/// link left: deleted or replaced by a new file). Best effort: a bind left behind costs
/// only its mount.
fn sweep(dir: &Path, dirfd: BorrowedFd<'_>, keep: &CStr) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(name) = CString::new(e.file_name().into_vec()) else {
            continue;
        };
        if name.as_c_str() == keep {
            continue;
        }
        let Ok(fd) = open_at(dirfd, &name, libc::O_PATH | libc::O_NOFOLLOW) else {
            continue;
        };
        let gone = nix::sys::stat::fstat(fd.as_fd())
            .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_nlink == 0);
        drop(fd);
        if gone {
            let flags = MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW;
            while nix::mount::umount2(&e.path(), flags).is_ok() {}
            let _ = unlink_any(dirfd, &name);
        }
    }
}

fn open_at(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> Result<OwnedFd, Errno> {
    // SAFETY: a live directory fd and a NUL-terminated name; the result is a new fd we own.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            0o400,
        )
    };
    Errno::result(fd)?;
    // SAFETY: openat returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn is_regular(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    Ok(nix::sys::stat::fstat(fd)?.st_mode & libc::S_IFMT == libc::S_IFREG)
}

/// Removes `name` from `dir`, whether a file, a symlink or an (empty) directory.
fn unlink_any(dir: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    // SAFETY: a live directory fd and a NUL-terminated name.
    let r = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) };
    match Errno::result(r) {
        Err(Errno::EISDIR) => {
            // SAFETY: as above.
            let r = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) };
            Errno::result(r).map(drop)
        }
        r => r.map(drop),
    }
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

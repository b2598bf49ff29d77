//! procfs writes that nothing in the container's /proc can redirect (the CVE-2025-52881
//! class): a file bound over /proc/sys/..., a symlink or another file system there (a
//! shared mount, a racing attacker). Writes go through a private procfs instance of our
//! own, checked to be procfs, with no symlink, magic link or mount crossing on the way.
//! Reads take the same way, below such a root or below the runtime's own /proc/sys.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, Mode, SFlag};
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

use super::options::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID};
use super::resolve;
use super::syscall::{
    fsconfig_create, owned, FSMOUNT_CLOEXEC, FSOPEN_CLOEXEC, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE,
};

/// The root directory of procfs has this inode number (PROC_ROOT_INO).
const PROC_ROOT_INO: u64 = 1;

/// A new procfs instance, detached (fsopen/fsmount): no mount of anyone's can cover it.
fn fresh() -> Result<OwnedFd, Errno> {
    // SAFETY: the file system name is a valid C string.
    let fs = owned(unsafe { libc::syscall(libc::SYS_fsopen, c"proc".as_ptr(), FSOPEN_CLOEXEC) })?;
    fsconfig_create(&fs)?;
    let attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    // SAFETY: fs is a created fs context; flags and attributes are plain integers.
    owned(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })
}

/// A detached copy of the /proc mount alone, without what is mounted below it: for when
/// a new procfs cannot be made (a user namespace whose /proc is partly covered).
fn clone_of_proc() -> Result<OwnedFd, Errno> {
    let root = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let proc = resolve::openat2(root.as_fd(), "proc", how)?;
    let flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as libc::c_uint;
    // SAFETY: the path is a valid empty C string and proc is a live fd.
    owned(unsafe { libc::syscall(libc::SYS_open_tree, proc.as_raw_fd(), c"".as_ptr(), flags) })
}

/// The root of a private procfs for this process's namespaces, checked to be procfs.
pub fn private_procfs() -> Result<OwnedFd, Errno> {
    let fd = fresh().or_else(|_| clone_of_proc())?;
    let is_proc = fstatfs(fd.as_fd())?.filesystem_type() == PROC_SUPER_MAGIC;
    if !is_proc || fstat(fd.as_fd())?.st_ino != PROC_ROOT_INO {
        return Err(Errno::EXDEV);
    }
    Ok(fd)
}

/// The runtime's own /proc/sys (its namespaces' sysctls) as a root for [`read`],
/// checked to be procfs.
pub fn runtime_sysctls() -> Result<OwnedFd, Errno> {
    let fd = nix::fcntl::open(
        "/proc/sys",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    if fstatfs(fd.as_fd())?.filesystem_type() != PROC_SUPER_MAGIC {
        return Err(Errno::EXDEV);
    }
    Ok(fd)
}

/// An unsigned integer sysctl below a /proc/sys root (`sys`, from [`runtime_sysctls`]), read
/// only from procfs (the fd is checked); None when absent, unreadable or not a number.
pub fn sysctl(sys: BorrowedFd<'_>, rel: &str) -> Option<u64> {
    let data = read(sys, Path::new(rel)).ok()?;
    std::str::from_utf8(&data).ok()?.trim().parse().ok()
}

/// [`sysctl`] of the runtime's own /proc/sys, for a single read.
pub fn runtime_sysctl(rel: &str) -> Option<u64> {
    sysctl(runtime_sysctls().ok()?.as_fd(), rel)
}

/// How a file below a procfs root is reached: beneath it, without symlinks, magic links
/// or mount crossings.
fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        )
}

/// `rel` below a procfs root opened with `flags` (reached as [`how`] says), checked on the
/// fd to be a procfs file.
fn open_checked(root: BorrowedFd<'_>, rel: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    let fd = resolve::openat2(root, rel, how(flags))?;
    if fstatfs(fd.as_fd())?.filesystem_type() != PROC_SUPER_MAGIC {
        return Err(Errno::EXDEV);
    }
    Ok(fd)
}

/// The contents of `rel` below a procfs root ([`private_procfs`], [`runtime_sysctls`]),
/// reached as by [`write`].
pub fn read(root: BorrowedFd<'_>, rel: &Path) -> Result<Vec<u8>, Errno> {
    let file = std::fs::File::from(open_checked(root, rel, OFlag::O_RDONLY)?);
    crate::procinfo::read_all(file)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

/// Writes `value` to `rel` below a procfs root from [`private_procfs`], in one write(2).
/// The file is reached without symlinks, magic links or mount crossings and must be a
/// regular procfs file.
pub fn write(proc: BorrowedFd<'_>, rel: &Path, value: &[u8]) -> Result<(), Errno> {
    let fd = open_checked(proc, rel, OFlag::O_WRONLY)?;
    let kind = SFlag::from_bits_truncate(fstat(fd.as_fd())?.st_mode & SFlag::S_IFMT.bits());
    if kind != SFlag::S_IFREG {
        return Err(Errno::EINVAL);
    }
    let n = nix::unistd::write(&fd, value)?;
    if n != value.len() {
        return Err(Errno::EIO);
    }
    Ok(())
}

/// Whether `rel` exists below a procfs root from [`private_procfs`] (reached as by
/// [`write`]).
pub fn exists(proc: BorrowedFd<'_>, rel: &Path) -> bool {
    resolve::openat2(proc, rel, how(OFlag::O_PATH)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_refuse_symlinks_and_reach_the_real_file() {
        let proc = private_procfs().expect("private procfs");
        let err = write(proc.as_fd(), Path::new("self/oom_score_adj"), b"0").unwrap_err();
        assert_eq!(err, Errno::ELOOP);
        let mine = format!("{}/oom_score_adj", std::process::id());
        let now = std::fs::read_to_string("/proc/self/oom_score_adj").expect("read");
        write(proc.as_fd(), Path::new(&mine), now.trim().as_bytes()).expect("write");
        assert!(write(proc.as_fd(), Path::new("../etc/passwd"), b"x").is_err());
    }

    #[test]
    fn reads_below_either_root_refuse_symlinks_and_leaving_it() {
        let host = std::fs::read("/proc/sys/kernel/osrelease").expect("read");
        let sys = runtime_sysctls().expect("/proc/sys");
        assert_eq!(
            read(sys.as_fd(), Path::new("kernel/osrelease")),
            Ok(host.clone())
        );
        assert!(read(sys.as_fd(), Path::new("../self/status")).is_err());
        let proc = private_procfs().expect("private procfs");
        let rel = Path::new("sys/kernel/osrelease");
        assert_eq!(read(proc.as_fd(), rel), Ok(host));
        let err = read(proc.as_fd(), Path::new("self/status")).unwrap_err();
        assert_eq!(err, Errno::ELOOP);
    }
}

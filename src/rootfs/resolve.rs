//! Path resolution confined to the container's root: every lookup goes through
//! openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from an O_PATH fd of the root, so a
//! symlink such as `rootfs/mnt -> /etc` resolves to `rootfs/etc`, never to the host.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

/// Symlinks followed while creating directories, as the kernel's own limit.
const MAX_SYMLINKS: usize = 40;

/// Retries of openat2 on EAGAIN.
const MAX_RETRIES: usize = 128;

/// openat2 that retries EAGAIN: with RESOLVE_IN_ROOT the kernel returns it when a rename
/// or mount anywhere on the system raced with a ".." lookup, which is common while other
/// containers start.
pub fn openat2<P: ?Sized + nix::NixPath>(
    dirfd: BorrowedFd<'_>,
    path: &P,
    how: OpenHow,
) -> Result<OwnedFd, Errno> {
    let mut tries = 0;
    loop {
        match nix::fcntl::openat2(dirfd, path, how) {
            Err(Errno::EAGAIN) if tries < MAX_RETRIES => tries += 1,
            other => return other,
        }
    }
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// The path made relative to the root, dropping "/" and "." (".." is resolved by the
/// kernel inside the root).
pub fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path
        .components()
        .filter(|c| {
            !matches!(
                c,
                Component::RootDir | Component::CurDir | Component::Prefix(_)
            )
        })
        .collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

/// Opens `path` inside `root` with `flags` (O_CLOEXEC is always added).
pub fn open(root: BorrowedFd<'_>, path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    openat2(root, &relative(path), how(flags))
}

/// Opens `path` inside `root` as an O_PATH fd.
pub fn open_path(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, Errno> {
    open(root, path, OFlag::O_PATH)
}

/// `mkdir -p` inside the root; returns an O_PATH fd of the final directory.
pub fn mkdir_all(root: BorrowedFd<'_>, path: &Path, mode: Mode) -> Result<OwnedFd, Errno> {
    mkdir_all_depth(root, &relative(path), mode, 0)
}

fn mkdir_all_depth(
    root: BorrowedFd<'_>,
    rel: &Path,
    mode: Mode,
    depth: usize,
) -> Result<OwnedFd, Errno> {
    if depth > MAX_SYMLINKS {
        return Err(Errno::ELOOP);
    }
    let dir = OFlag::O_PATH | OFlag::O_DIRECTORY;
    // Most targets exist (or all but their last components do): one lookup of the whole
    // path, then of ever shorter prefixes only where it is missing, rather than opening
    // every prefix from the root.
    match openat2(root, rel, how(dir)) {
        Err(Errno::ENOENT) => {}
        other => return other,
    }
    let Some(last) = rel.components().next_back() else {
        return Err(Errno::ENOENT);
    };
    let parent = rel.parent().unwrap_or(Path::new(""));
    let parent_rel = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let parent_fd = mkdir_all_depth(root, parent_rel, mode, depth)?;
    let name: &OsStr = match last {
        Component::Normal(n) => n,
        // "p/.." (or "p/."): `p` now exists, so this one resolves, or fails for what it is.
        _ => return openat2(root, rel, how(dir)),
    };
    match mkdirat(parent_fd.as_fd(), name, mode) {
        Ok(()) => openat2(root, rel, how(dir)),
        Err(Errno::EEXIST) => {
            // A dangling symlink (or a directory made meanwhile): create its target, still
            // inside the root.
            let target = match readlinkat(parent_fd.as_fd(), name) {
                Ok(t) => PathBuf::from(t),
                Err(Errno::EINVAL) => return openat2(root, rel, how(dir)),
                Err(e) => return Err(e),
            };
            let joined = if target.is_absolute() {
                relative(&target)
            } else {
                parent.join(target)
            };
            mkdir_all_depth(root, &joined, mode, depth + 1)
        }
        Err(e) => Err(e),
    }
}

/// Makes sure `path` exists inside the root as a non-directory (creating parents and an
/// empty file if needed), for file bind mounts and device nodes mounted from the host.
/// Returns an O_PATH fd of it.
pub fn create_file(root: BorrowedFd<'_>, path: &Path, mode: Mode) -> Result<OwnedFd, Errno> {
    match open_path(root, path) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let (parent, name) = split(path)?;
    let parent_fd = mkdir_all(root, parent, Mode::from_bits_truncate(0o755))?;
    let create = OpenHow::new()
        .flags(OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .mode(mode)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_BENEATH);
    drop(openat2(parent_fd.as_fd(), name, create)?);
    open_path(root, path)
}

/// Why a mount target was refused by [`create_target_strict`].
#[derive(Debug)]
pub enum TargetError {
    Sys(Errno),
    /// The final component is a symlink.
    Symlink,
    /// The final component is a directory.
    Directory,
    /// The parent directory is on procfs or sysfs (reached through a symlink).
    PseudoFs,
}

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetError::Sys(e) => write!(f, "{e}"),
            TargetError::Symlink => f.write_str("is a symlink; refusing to mount over it"),
            TargetError::Directory => f.write_str("is a directory; refusing to mount over it"),
            TargetError::PseudoFs => {
                f.write_str("leads into procfs or sysfs; refusing to mount over it")
            }
        }
    }
}

impl From<Errno> for TargetError {
    fn from(e: Errno) -> Self {
        TargetError::Sys(e)
    }
}

/// A non-directory mount target for a node the runtime provides (a device bound from the
/// host, the console): the parent is resolved (and created) inside the root, the final
/// component is never followed and must not be a symlink or directory, and the parent may
/// not be on procfs or sysfs. Missing, an empty file is created (`mode`). Returns an
/// O_PATH fd of the target itself, for move_mount.
pub fn create_target_strict(
    root: BorrowedFd<'_>,
    path: &Path,
    mode: Mode,
) -> Result<OwnedFd, TargetError> {
    use nix::sys::stat::{fstatat, SFlag};
    use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC, SYSFS_MAGIC};
    let (parent, name) = split(path)?;
    let dir = mkdir_all(root, parent, Mode::from_bits_truncate(0o755))?;
    let fs = fstatfs(dir.as_fd())?.filesystem_type();
    if fs == PROC_SUPER_MAGIC || fs == SYSFS_MAGIC {
        return Err(TargetError::PseudoFs);
    }
    match fstatat(dir.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFLNK => return Err(TargetError::Symlink),
            SFlag::S_IFDIR => return Err(TargetError::Directory),
            _ => {}
        },
        Err(Errno::ENOENT) => {
            let create = OpenHow::new()
                .flags(
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_WRONLY
                        | OFlag::O_CLOEXEC
                        | OFlag::O_NOFOLLOW,
                )
                .mode(mode)
                .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_BENEATH);
            match openat2(dir.as_fd(), name, create) {
                Ok(fd) => drop(fd),
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) => return Err(e.into()),
    }
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_BENEATH);
    let fd = openat2(dir.as_fd(), name, how)?;
    let st = nix::sys::stat::fstat(fd.as_fd())?;
    match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFLNK => Err(TargetError::Symlink),
        SFlag::S_IFDIR => Err(TargetError::Directory),
        _ => Ok(fd),
    }
}

/// Splits a path into its parent and final name; "/" has no name.
pub fn split(path: &Path) -> Result<(&Path, &OsStr), Errno> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(Errno::EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::fstat;
    use std::os::unix::fs::symlink;

    fn root_fd(dir: &Path) -> OwnedFd {
        nix::fcntl::open(
            dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .expect("open root")
    }

    #[test]
    fn relative_strips_root() {
        assert_eq!(relative(Path::new("/a/./b")), PathBuf::from("a/b"));
        assert_eq!(relative(Path::new("/")), PathBuf::from("."));
        assert_eq!(relative(Path::new("a/../b")), PathBuf::from("a/../b"));
    }

    #[test]
    fn absolute_symlink_stays_inside_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let host = tempfile::tempdir().expect("tempdir");
        symlink(host.path(), tmp.path().join("mnt")).expect("symlink");
        let root = root_fd(tmp.path());
        let fd = mkdir_all(
            root.as_fd(),
            Path::new("/mnt/x/y"),
            Mode::from_bits_truncate(0o755),
        )
        .expect("mkdir_all");
        let inside = tmp.path().join(relative(host.path())).join("x/y");
        assert!(inside.is_dir(), "{} missing", inside.display());
        assert!(!host.path().join("x").exists(), "escaped to the host");
        let st = fstat(fd.as_fd()).expect("fstat");
        let want = std::fs::metadata(&inside).expect("stat");
        assert_eq!(st.st_ino, std::os::unix::fs::MetadataExt::ino(&want));
    }

    #[test]
    fn dotdot_and_relative_symlinks_stay_inside_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        symlink("../../../../etc", tmp.path().join("up")).expect("symlink");
        let root = root_fd(tmp.path());
        create_file(
            root.as_fd(),
            Path::new("/up/../../passwd-x"),
            Mode::from_bits_truncate(0o644),
        )
        .expect("create_file");
        assert!(tmp.path().join("passwd-x").is_file());
        create_file(
            root.as_fd(),
            Path::new("/up/f"),
            Mode::from_bits_truncate(0o644),
        )
        .expect("create_file");
        assert!(tmp.path().join("etc/f").is_file());
    }

    #[test]
    fn strict_targets_are_never_followed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let host = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(tmp.path().join("dev")).expect("mkdir");
        std::fs::write(host.path().join("victim"), b"v").expect("write");
        symlink(host.path().join("victim"), tmp.path().join("dev/console")).expect("symlink");
        std::fs::create_dir(tmp.path().join("dev/dir")).expect("mkdir");
        let root = root_fd(tmp.path());
        let m = Mode::from_bits_truncate(0o600);
        assert!(matches!(
            create_target_strict(root.as_fd(), Path::new("/dev/console"), m),
            Err(TargetError::Symlink)
        ));
        assert!(matches!(
            create_target_strict(root.as_fd(), Path::new("/dev/dir"), m),
            Err(TargetError::Directory)
        ));
        create_target_strict(root.as_fd(), Path::new("/dev/new"), m).expect("created");
        assert!(tmp.path().join("dev/new").is_file());
        assert_eq!(
            std::fs::read(host.path().join("victim")).expect("read"),
            b"v"
        );
    }

    #[test]
    fn create_file_keeps_existing_and_refuses_magic_links() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("f"), b"data").expect("write");
        let root = root_fd(tmp.path());
        create_file(
            root.as_fd(),
            Path::new("f"),
            Mode::from_bits_truncate(0o644),
        )
        .expect("create");
        assert_eq!(std::fs::read(tmp.path().join("f")).expect("read"), b"data");
        symlink("/proc/self/root", tmp.path().join("magic")).expect("symlink");
        // Inside the root, /proc does not exist, so this can never reach the host's root.
        assert!(open_path(root.as_fd(), Path::new("magic/etc")).is_err());
    }
}

//! Where trace mode writes: a file beneath the bundle, reached through a directory fd taken
//! at `create`. The annotation naming it comes from a caller who may be less privileged
//! than the runtime (root), so neither `..`, an absolute path outside the bundle, nor a
//! symlink may lead the write elsewhere, and a FIFO or device is never opened.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};

use super::SeccompError;

/// The trace file: a directory fd beneath the bundle and a file name in it.
#[derive(Clone, Debug)]
pub struct TraceFile {
    dir: Arc<OwnedFd>,
    name: OsString,
    /// The path as shown in messages.
    shown: PathBuf,
}

fn refuse(path: &Path, reason: impl Into<String>) -> SeccompError {
    SeccompError::TracePath {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn kind_name(kind: SFlag) -> &'static str {
    match kind {
        SFlag::S_IFLNK => "a symlink",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFDIR => "a directory",
        _ => "not a regular file",
    }
}

fn file_kind(mode: libc::mode_t) -> SFlag {
    SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits())
}

impl TraceFile {
    /// The file `path` names beneath `bundle` (a relative path, or an absolute one inside
    /// the bundle). Refused: `..`, paths outside the bundle, symlinks leaving it, and an
    /// existing file that is not a regular file.
    pub fn beneath(bundle: &Path, path: &Path) -> Result<TraceFile, SeccompError> {
        let rel = if path.is_absolute() {
            path.strip_prefix(bundle).map_err(|_| {
                refuse(
                    path,
                    format!("must be inside the bundle {}", bundle.display()),
                )
            })?
        } else {
            path
        };
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(refuse(path, "must not contain \"..\""));
        }
        let name = rel
            .file_name()
            .ok_or_else(|| refuse(path, "names no file"))?
            .to_os_string();
        let parent = match rel.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let bundle_fd = nix::fcntl::open(
            bundle,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| refuse(path, format!("cannot open the bundle: {e}")))?;
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let dir = crate::rootfs::openat2_retry(bundle_fd.as_fd(), parent, how).map_err(|e| {
            let why = match e {
                Errno::EXDEV | Errno::ELOOP => "leads out of the bundle".to_string(),
                e => format!("directory {}: {e}", parent.display()),
            };
            refuse(path, why)
        })?;
        match fstatat(dir.as_fd(), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if file_kind(st.st_mode) == SFlag::S_IFREG => {}
            Ok(st) => {
                return Err(refuse(
                    path,
                    format!(
                        "is {}; the trace file must be a regular file",
                        kind_name(file_kind(st.st_mode))
                    ),
                ))
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(refuse(path, e.to_string())),
        }
        Ok(TraceFile {
            dir: Arc::new(dir),
            name,
            shown: bundle.join(rel),
        })
    }

    /// The directory fd the monitor must keep open.
    pub fn dir_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// The path, for messages.
    pub fn shown(&self) -> &Path {
        &self.shown
    }

    /// Replaces the file's content atomically: a fresh temporary file beside it (never an
    /// existing one, never through a symlink), renamed over it.
    pub fn replace(&self, content: &[u8]) -> Result<(), SeccompError> {
        let err = |source: std::io::Error| SeccompError::TraceFile {
            path: self.shown.display().to_string(),
            source,
        };
        let mut tmp = self.name.clone();
        tmp.push(".tmp");
        let tmp: &OsStr = &tmp;
        match nix::unistd::unlinkat(
            self.dir.as_fd(),
            tmp,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        ) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(err(e.into())),
        }
        let how = OpenHow::new()
            .flags(
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_NONBLOCK
                    | OFlag::O_CLOEXEC,
            )
            .mode(Mode::from_bits_truncate(0o644))
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        let fd =
            crate::rootfs::openat2_retry(self.dir.as_fd(), tmp, how).map_err(|e| err(e.into()))?;
        let st = fstat(fd.as_fd()).map_err(|e| err(e.into()))?;
        if file_kind(st.st_mode) != SFlag::S_IFREG {
            return Err(err(std::io::Error::other(
                "temporary trace file is not a regular file",
            )));
        }
        std::fs::File::from(fd).write_all(content).map_err(err)?;
        nix::fcntl::renameat(
            self.dir.as_fd(),
            tmp.as_bytes(),
            self.dir.as_fd(),
            self.name.as_bytes(),
        )
        .map_err(|e| err(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn paths_beneath_the_bundle_only() {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = tmp.path().join("b");
        std::fs::create_dir_all(bundle.join("sub")).unwrap();
        symlink("/tmp", bundle.join("out")).unwrap();
        symlink("../../", bundle.join("sub/up")).unwrap();
        symlink("/etc/passwd", bundle.join("link")).unwrap();
        nix::unistd::mkfifo(&bundle.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        for bad in [
            "../x",
            "sub/../../x",
            "/tmp/x",
            "out/x",
            "sub/up/x",
            "link",
            "fifo",
            "sub",
            "..",
        ] {
            let e = TraceFile::beneath(&bundle, Path::new(bad)).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("trace-file"), "{bad}: {msg}");
            assert!(!msg.contains('\n'), "{bad}: {msg}");
        }
        let t = TraceFile::beneath(&bundle, Path::new("sub/t.ndjson")).unwrap();
        t.replace(b"one\n").unwrap();
        t.replace(b"two\n").unwrap();
        assert_eq!(
            std::fs::read(bundle.join("sub/t.ndjson")).unwrap(),
            b"two\n"
        );
        let abs = bundle.join("a.ndjson");
        TraceFile::beneath(&bundle, &abs)
            .unwrap()
            .replace(b"x")
            .unwrap();
        assert!(abs.is_file());
    }

    #[test]
    fn a_symlink_planted_after_create_is_replaced_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let t = TraceFile::beneath(tmp.path(), Path::new("t.ndjson")).unwrap();
        symlink(&victim, tmp.path().join("t.ndjson")).unwrap();
        symlink(&victim, tmp.path().join("t.ndjson.tmp")).unwrap();
        t.replace(b"trace").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(
            std::fs::read(tmp.path().join("t.ndjson")).unwrap(),
            b"trace"
        );
    }
}

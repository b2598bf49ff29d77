//! OOM notification for `events`: a pollable fd that becomes readable when the OOM killer
//! acts in the container (v1: eventfd registered on memory.oom_control; v2: inotify on
//! memory.events, confirmed by its oom_kill counter).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::eventfd::{EfdFlags, EventFd};

use super::files::{keyed_value, read_file, write_file};
use super::CgroupError;

enum Kind {
    /// The oom_control file must stay open for the registration to stay alive.
    V1 {
        efd: EventFd,
        _oom_control: File,
    },
    V2 {
        inotify: OwnedFd,
        last_kills: u64,
    },
}

/// Watches one container cgroup for OOM kills.
pub struct OomWatch {
    kind: Kind,
    dir: PathBuf,
}

impl OomWatch {
    pub(super) fn v1(dir: &Path) -> Result<OomWatch, CgroupError> {
        let efd =
            EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK).map_err(|e| {
                CgroupError::Read {
                    path: dir.join("cgroup.event_control"),
                    source: e.into(),
                }
            })?;
        // std opens files close-on-exec.
        let oom_control =
            File::open(dir.join("memory.oom_control")).map_err(|source| CgroupError::Read {
                path: dir.join("memory.oom_control"),
                source,
            })?;
        write_file(
            dir,
            "cgroup.event_control",
            &format!("{} {}", efd.as_fd().as_raw_fd(), oom_control.as_raw_fd()),
        )?;
        Ok(OomWatch {
            kind: Kind::V1 {
                efd,
                _oom_control: oom_control,
            },
            dir: dir.to_path_buf(),
        })
    }

    pub(super) fn v2(dir: &Path) -> Result<OomWatch, CgroupError> {
        let events = dir.join("memory.events");
        let err = |source: std::io::Error| CgroupError::Read {
            path: events.clone(),
            source,
        };
        // SAFETY: plain syscall without pointers; the result is checked before use.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        if fd < 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        let inotify = unsafe { OwnedFd::from_raw_fd(fd) };
        let cpath = std::ffi::CString::new(events.as_os_str().as_encoded_bytes())
            .map_err(|e| err(std::io::Error::other(e)))?;
        // SAFETY: `cpath` is a valid NUL-terminated string alive for the call.
        let wd = unsafe { libc::inotify_add_watch(fd, cpath.as_ptr(), libc::IN_MODIFY) };
        if wd < 0 {
            return Err(err(std::io::Error::last_os_error()));
        }
        let last_kills = keyed_value(&read_file(dir, "memory.events")?, "oom_kill").unwrap_or(0);
        Ok(OomWatch {
            kind: Kind::V2 {
                inotify,
                last_kills,
            },
            dir: dir.to_path_buf(),
        })
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.kind {
            Kind::V1 { efd, .. } => efd.as_fd(),
            Kind::V2 { inotify, .. } => inotify.as_fd(),
        }
    }

    /// After the fd polled readable (or at any time): consume the notification and say
    /// whether an OOM kill happened since the last call. The v1 eventfd also fires when the
    /// cgroup is removed; that is not reported as an OOM.
    pub fn check(&mut self) -> Result<bool, CgroupError> {
        match &mut self.kind {
            Kind::V1 { efd, .. } => match efd.read() {
                Ok(_) => Ok(self.dir.join("cgroup.event_control").exists()),
                Err(nix::errno::Errno::EAGAIN) => Ok(false),
                Err(e) => Err(CgroupError::Read {
                    path: self.dir.join("memory.oom_control"),
                    source: e.into(),
                }),
            },
            Kind::V2 {
                inotify,
                last_kills,
            } => {
                let mut buf = [0u8; 4096];
                loop {
                    // SAFETY: `buf` is a writable buffer of the given length.
                    let n = unsafe {
                        libc::read(inotify.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                    };
                    if n <= 0 {
                        break;
                    }
                }
                if !self.dir.join("memory.events").exists() {
                    return Ok(false);
                }
                let kills =
                    keyed_value(&read_file(&self.dir, "memory.events")?, "oom_kill").unwrap_or(0);
                let fired = kills > *last_kills;
                *last_kills = kills;
                Ok(fired)
            }
        }
    }
}

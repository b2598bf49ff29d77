//! The rootfs module's error type.

use std::path::PathBuf;

use nix::errno::Errno;

/// Errors while building the container's filesystem. Each names the mount destination,
/// source or path involved and, where a system call failed, its errno.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("mount {fstype:?} from {src:?} on {dest}: {errno}")]
    Mount {
        dest: PathBuf,
        src: String,
        fstype: String,
        errno: Errno,
    },
    #[error("mount on {dest}: changing mount attributes ({what}): {errno}")]
    MountAttr {
        dest: PathBuf,
        what: &'static str,
        errno: Errno,
    },
    #[error("mount on {dest}: option {option:?} is not supported by this runtime")]
    UnsupportedOption { dest: PathBuf, option: String },
    #[error("mount on {dest}: {reason}")]
    UnsafeDestination { dest: PathBuf, reason: String },
    #[error("mount on {dest}: bind source {src} cannot be opened: {errno}")]
    Source {
        dest: PathBuf,
        src: PathBuf,
        errno: Errno,
    },
    #[error("mount on {dest}: bind mount has no source")]
    MissingSource { dest: PathBuf },
    #[error("process.cwd {path} cannot be made inside the rootfs (magic links such as /proc/self/fd/N are refused): {errno}")]
    Cwd { path: PathBuf, errno: Errno },
    #[error("cannot resolve {path} inside the rootfs: {errno}")]
    Resolve { path: PathBuf, errno: Errno },
    #[error("invalid linux.rootfsPropagation {0:?}: expected private, rprivate, shared, rshared, slave, rslave, unbindable or runbindable")]
    Propagation(String),
    #[error("cannot set propagation of {path}: {errno}")]
    SetPropagation { path: PathBuf, errno: Errno },
    #[error("cannot open rootfs {path}: {errno}")]
    OpenRootfs { path: PathBuf, errno: Errno },
    #[error("device {path}: {what}: {errno}")]
    Device {
        path: PathBuf,
        what: &'static str,
        errno: Errno,
    },
    #[error("device {path}: {reason}")]
    InvalidDevice { path: PathBuf, reason: String },
    #[error("symlink {path} -> {target}: {errno}")]
    Symlink {
        path: PathBuf,
        target: PathBuf,
        errno: Errno,
    },
    #[error("pivot to rootfs {rootfs}: {step}: {errno}")]
    Pivot {
        rootfs: PathBuf,
        step: &'static str,
        errno: Errno,
    },
    #[error("masked path {path}: {errno}")]
    MaskedPath { path: PathBuf, errno: Errno },
    #[error("masked path {path}: /dev/null in the container {reason}; refusing to mask with it")]
    MaskSource { path: PathBuf, reason: String },
    #[error("readonly path {path}: {errno}")]
    ReadonlyPath { path: PathBuf, errno: Errno },
    #[error("cannot remount {path} read-only: {errno}")]
    Readonly { path: PathBuf, errno: Errno },
    #[error("cannot bind the terminal onto /dev/console: {what}: {errno}")]
    Console { what: &'static str, errno: Errno },
    #[error("cannot set up the terminal: {reason}")]
    ConsoleSource { reason: String },
    #[error("cgroup mount on {dest}: {reason}")]
    Cgroup { dest: PathBuf, reason: String },
    #[error("cannot detach the rootfs bind at {path} from the host's mount namespace: {errno}")]
    Detach { path: PathBuf, errno: Errno },
    #[error("cannot give the container's stdio its own /dev/null: {reason}")]
    StdioDevNull { reason: String },
    #[error("cannot read {path}: {source}")]
    HostInfo {
        path: PathBuf,
        source: std::io::Error,
    },
}

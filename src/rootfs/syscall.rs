//! The mount system calls used by the rootfs setup, behind a trait so the sequence of calls
//! for a mount can be checked without a kernel.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;

use super::options::AttrChange;

pub(super) const OPEN_TREE_CLONE: libc::c_uint = 1;
pub(super) const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
pub(super) const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
pub(super) const FSMOUNT_CLOEXEC: libc::c_uint = 1;

/// struct mount_attr of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// The path through which mount(2) reaches an fd's file: the magic link in /proc.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Mount operations on already-resolved fds.
pub trait MountApi {
    /// mount(2).
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno>;
    /// open_tree(2) with OPEN_TREE_CLONE on an fd (AT_EMPTY_PATH): a detached copy of the
    /// mount at `fd`, with its submounts when `recursive`.
    fn clone_tree(&self, fd: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd, Errno>;
    /// open_tree(2) with OPEN_TREE_CLONE on a host path (outside any rootfs: the caller
    /// trusts it), without opening it first.
    fn clone_path(&self, path: &Path, recursive: bool) -> Result<OwnedFd, Errno>;
    /// move_mount(2) of a detached tree onto the file `to`.
    fn attach(&self, tree: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno>;
    /// move_mount(2) of a detached tree onto `name` in the directory `dir`: one component,
    /// a final symlink not followed (no MOVE_MOUNT_T_SYMLINKS), for a directory the
    /// runtime made itself in a file system no other process has seen yet.
    fn attach_at(
        &self,
        tree: BorrowedFd<'_>,
        dir: BorrowedFd<'_>,
        name: &OsStr,
    ) -> Result<(), Errno>;
    /// mount_setattr(2) on the mount at `fd`: attribute change and an optional propagation.
    fn setattr(
        &self,
        fd: BorrowedFd<'_>,
        recursive: bool,
        change: AttrChange,
        propagation: MsFlags,
    ) -> Result<(), Errno>;
    /// A new detached read-only, empty tmpfs (fsopen/fsconfig/fsmount), with the SELinux
    /// `context` of linux.mountLabel when there is one.
    fn new_readonly_tmpfs(&self, context: Option<&str>) -> Result<OwnedFd, Errno>;
}

/// The real kernel.
pub struct Kernel;

pub(super) fn owned(ret: libc::c_long) -> Result<OwnedFd, Errno> {
    // SAFETY: the syscall returned a new file descriptor that nothing else owns.
    unsafe { crate::sys::owned_fd(ret) }
}

fn fsconfig(
    fs: &OwnedFd,
    cmd: libc::c_uint,
    key: &std::ffi::CStr,
    value: Option<&std::ffi::CStr>,
) -> Result<(), Errno> {
    let value = value.map_or(std::ptr::null(), |v| v.as_ptr());
    // SAFETY: key and value are NUL-terminated strings (or null for a flag) that outlive
    // the call; fs is a live fs context.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            cmd,
            key.as_ptr(),
            value,
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// FSCONFIG_CMD_CREATE: makes the superblock of a configured fs context.
pub(super) fn fsconfig_create(fs: &OwnedFd) -> Result<(), Errno> {
    // SAFETY: FSCONFIG_CMD_CREATE takes no key, value or aux; fs is a live fs context.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// open_tree(2) flags of a detached copy (close-on-exec), with submounts when `recursive`.
fn clone_flags(recursive: bool) -> libc::c_uint {
    let flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    if recursive {
        flags | libc::AT_RECURSIVE as libc::c_uint
    } else {
        flags
    }
}

impl MountApi for Kernel {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<(), Errno> {
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn clone_tree(&self, fd: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd, Errno> {
        let flags = clone_flags(recursive) | libc::AT_EMPTY_PATH as libc::c_uint;
        // SAFETY: the path is a valid NUL-terminated empty string and fd is a live fd.
        let ret =
            unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), c"".as_ptr(), flags) };
        owned(ret)
    }

    fn clone_path(&self, path: &Path, recursive: bool) -> Result<OwnedFd, Errno> {
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
        let flags = clone_flags(recursive);
        // SAFETY: c is a NUL-terminated path that outlives the call.
        let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
        owned(ret)
    }

    fn attach_at(
        &self,
        tree: BorrowedFd<'_>,
        dir: BorrowedFd<'_>,
        name: &OsStr,
    ) -> Result<(), Errno> {
        if name.as_bytes().contains(&b'/') {
            return Err(Errno::EINVAL);
        }
        let c = CString::new(name.as_bytes()).map_err(|_| Errno::EINVAL)?;
        // SAFETY: both fds are live; the source path is an empty C string and the target a
        // NUL-terminated name, both outliving the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                tree.as_raw_fd(),
                c"".as_ptr(),
                dir.as_raw_fd(),
                c.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        Errno::result(ret).map(drop)
    }

    fn attach(&self, tree: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
        // SAFETY: both fds are live and both paths are valid empty C strings.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                tree.as_raw_fd(),
                c"".as_ptr(),
                to.as_raw_fd(),
                c"".as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
            )
        };
        Errno::result(ret).map(drop)
    }

    fn setattr(
        &self,
        fd: BorrowedFd<'_>,
        recursive: bool,
        change: AttrChange,
        propagation: MsFlags,
    ) -> Result<(), Errno> {
        // MsFlags bits are a c_ulong, narrower than u64 on 32-bit targets.
        #[allow(clippy::unnecessary_cast)]
        let attr = MountAttr {
            attr_set: change.set,
            attr_clr: change.clr,
            propagation: (propagation - MsFlags::MS_REC).bits() as u64,
            userns_fd: 0,
        };
        let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
        if recursive {
            flags |= libc::AT_RECURSIVE as libc::c_uint;
        }
        // SAFETY: attr is a properly sized, initialised struct mount_attr that outlives
        // the call; the path is an empty C string and fd is live.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                fd.as_raw_fd(),
                c"".as_ptr(),
                flags,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        };
        Errno::result(ret).map(drop)
    }

    fn new_readonly_tmpfs(&self, context: Option<&str>) -> Result<OwnedFd, Errno> {
        // SAFETY: the file system name is a valid C string.
        let fs =
            owned(unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC) })?;
        // Same look as runc's mount(2) of a read-only tmpfs: source "tmpfs", superblock ro.
        fsconfig(&fs, FSCONFIG_SET_STRING, c"source", Some(c"tmpfs"))?;
        fsconfig(&fs, FSCONFIG_SET_FLAG, c"ro", None)?;
        if let Some(c) = context {
            let c = std::ffi::CString::new(c).map_err(|_| Errno::EINVAL)?;
            fsconfig(&fs, FSCONFIG_SET_STRING, c"context", Some(&c))?;
        }
        fsconfig_create(&fs)?;
        let attrs = super::options::MOUNT_ATTR_RDONLY;
        // SAFETY: fs is a created fs context; flags and attributes are plain integers.
        owned(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })
    }
}

#[cfg(test)]
pub mod mock {
    //! A recording MountApi: every call is logged as a line of text.
    use super::*;
    use std::cell::RefCell;

    #[derive(Default)]
    pub struct Recorder {
        pub calls: RefCell<Vec<String>>,
        /// When set, mount(2) fails with this errno.
        pub fail_mount: RefCell<Option<Errno>>,
    }

    fn dummy_fd() -> Result<OwnedFd, Errno> {
        let f = std::fs::File::open("/dev/null").map_err(|_| Errno::EIO)?;
        Ok(OwnedFd::from(f))
    }

    impl MountApi for Recorder {
        fn mount(
            &self,
            source: Option<&Path>,
            _target: &Path,
            fstype: Option<&str>,
            flags: MsFlags,
            data: Option<&str>,
        ) -> Result<(), Errno> {
            self.calls.borrow_mut().push(format!(
                "mount {:?} {:?} {:?} {:?}",
                source, fstype, flags, data
            ));
            match *self.fail_mount.borrow() {
                Some(errno) => Err(errno),
                None => Ok(()),
            }
        }
        fn clone_tree(&self, _fd: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd, Errno> {
            self.calls
                .borrow_mut()
                .push(format!("clone_tree recursive={recursive}"));
            dummy_fd()
        }
        fn clone_path(&self, path: &Path, recursive: bool) -> Result<OwnedFd, Errno> {
            self.calls.borrow_mut().push(format!(
                "clone_path {} recursive={recursive}",
                path.display()
            ));
            dummy_fd()
        }
        fn attach(&self, _tree: BorrowedFd<'_>, _to: BorrowedFd<'_>) -> Result<(), Errno> {
            self.calls.borrow_mut().push("attach".into());
            Ok(())
        }
        fn attach_at(
            &self,
            _tree: BorrowedFd<'_>,
            _dir: BorrowedFd<'_>,
            name: &OsStr,
        ) -> Result<(), Errno> {
            self.calls
                .borrow_mut()
                .push(format!("attach_at {}", name.to_string_lossy()));
            Ok(())
        }
        fn setattr(
            &self,
            _fd: BorrowedFd<'_>,
            recursive: bool,
            change: AttrChange,
            propagation: MsFlags,
        ) -> Result<(), Errno> {
            self.calls.borrow_mut().push(format!(
                "setattr recursive={recursive} set={:#x} clr={:#x} propagation={:?}",
                change.set, change.clr, propagation
            ));
            Ok(())
        }
        fn new_readonly_tmpfs(&self, context: Option<&str>) -> Result<OwnedFd, Errno> {
            let call = match context {
                Some(c) => format!("new_readonly_tmpfs context={c}"),
                None => "new_readonly_tmpfs".into(),
            };
            self.calls.borrow_mut().push(call);
            dummy_fd()
        }
    }
}

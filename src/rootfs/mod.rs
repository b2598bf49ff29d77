//! The container's filesystem: spec mounts, devices, pivot_root, masked and read-only
//! paths. Runs inside the container init, after it unshared its mount namespace (or, with
//! no mount namespace in the config, in the host's: see `bind_rootfs_privately`).
//!
//! Call order: [`RootfsSetup::prepare`], then [`RootfsSetup::pivot`], then
//! [`RootfsSetup::finalize`] (before dropping capabilities and exec).
//!
//! - Every destination is resolved inside the rootfs with openat2(RESOLVE_IN_ROOT), so
//!   symlinks in the image cannot lead a mount onto the host.
//! - Bind mounts are cloned with open_tree, get their flags with mount_setattr while still
//!   detached, and are attached with move_mount: flags the user did not name (including
//!   ones locked by a user namespace) are never cleared. Other filesystems use mount(2) on
//!   /proc/self/fd/N; recursive attributes (rro, rnosuid, ...) use mount_setattr with
//!   AT_RECURSIVE.
//! - Deliberate differences from runc: readonlyPaths are made read-only recursively (runc
//!   only makes the top mount read-only), and the tmpfs holding cgroup v1 hierarchies is
//!   read-only when the cgroup mount is.

mod cgroup;
mod copyup;
mod devices;
mod error;
mod mounts;
pub mod options;
pub mod procfs;
pub(crate) mod resolve;
pub(crate) mod syscall;

#[cfg(test)]
mod root_tests;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, Mode, SFlag};
use nix::unistd::{chdir, chroot, fchdir, pivot_root};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::procinfo::mountinfo;

pub use error::RootfsError;
use mounts::{MountEntry, Mounter};
use options::{AttrChange, MOUNT_ATTR_RDONLY};
pub use resolve::openat2 as openat2_retry;
use syscall::{Kernel, MountApi};

/// Filesystem setup of one container.
pub struct RootfsSetup<'a> {
    pub spec: &'a Spec,
    /// Absolute, canonical host path of spec.root.path.
    pub rootfs: &'a Path,
    /// Absolute bundle directory; relative bind sources are relative to it.
    pub bundle: &'a Path,
    /// --no-pivot: MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// The container has its own user namespace: device nodes are bind-mounted from the host.
    pub user_ns: bool,
}

fn open_dir(path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(
        path,
        flags | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

impl RootfsSetup<'_> {
    fn root_propagation(&self) -> Result<Option<MsFlags>, RootfsError> {
        let value = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.rootfs_propagation().clone());
        match value.as_deref() {
            None | Some("") => Ok(None),
            Some(v) => options::parse_propagation(v)
                .map(Some)
                .ok_or_else(|| RootfsError::Propagation(v.to_string())),
        }
    }

    fn cgroup_ns(&self) -> bool {
        self.spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Cgroup))
    }

    fn entries(&self) -> Result<Vec<MountEntry>, RootfsError> {
        self.spec
            .mounts()
            .iter()
            .flatten()
            .map(MountEntry::from_spec)
            .collect()
    }

    /// runc skips device setup when /dev is bind-mounted from the host.
    fn needs_dev_setup(entries: &[MountEntry]) -> bool {
        !entries
            .iter()
            .any(|e| e.dest == Path::new("/dev") && e.is_bind())
    }

    /// Before pivot: propagation of "/", the rootfs bind, spec mounts, devices, /dev links
    /// and process.cwd. createRuntime/createContainer hooks belong between this and pivot.
    pub fn prepare(&self) -> Result<(), RootfsError> {
        self.prepare_with(&Kernel)
    }

    fn prepare_with<M: MountApi>(&self, api: &M) -> Result<(), RootfsError> {
        let entries = self.entries()?;
        let devices = devices::all_devices(
            self.spec
                .linux()
                .as_ref()
                .and_then(|l| l.devices().as_deref())
                .unwrap_or(&[]),
        )?;
        let mut host_mounts = None;
        if self.in_host_mount_ns() {
            self.bind_rootfs_privately(api)?;
        } else {
            // An unbindable "/" would refuse the bind of the rootfs below: the requested
            // propagation then only goes on the container's root, in finalize().
            let root_flags = self
                .root_propagation()?
                .filter(|p| !p.contains(MsFlags::MS_UNBINDABLE))
                .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
            api.mount(None, Path::new("/"), None, root_flags, None)
                .map_err(|errno| RootfsError::SetPropagation {
                    path: "/".into(),
                    errno,
                })?;
            host_mounts = Some(self.make_holder_mount_slave(api)?);
            api.mount(
                Some(self.rootfs),
                self.rootfs,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(|errno| RootfsError::Mount {
                dest: self.rootfs.to_path_buf(),
                src: self.rootfs.display().to_string(),
                fstype: "bind".into(),
                errno,
            })?;
        }
        // Opened after the self-bind so that lookups walk the new mount tree.
        let root =
            open_dir(self.rootfs, OFlag::O_PATH).map_err(|errno| RootfsError::OpenRootfs {
                path: self.rootfs.to_path_buf(),
                errno,
            })?;
        let mnt = Mounter {
            api,
            root: root.as_fd(),
            rootfs: self.rootfs,
            bundle: self.bundle,
            user_ns: self.user_ns,
            cgroup_ns: self.cgroup_ns(),
            mount_label: self.mount_label(),
            host_mounts: host_mounts.as_deref(),
        };
        for e in &entries {
            mnt.mount(e)?;
        }
        if Self::needs_dev_setup(&entries) {
            devices::create(&mnt, &devices)?;
            devices::create_symlinks(&mnt)?;
        }
        // As runc: the working directory is created if the image lacks it.
        if let Some(cwd) = self.spec.process().as_ref().map(|p| p.cwd()) {
            resolve::mkdir_all(root.as_fd(), cwd, Mode::from_bits_truncate(0o755)).map_err(
                |errno| RootfsError::Cwd {
                    path: cwd.clone(),
                    errno,
                },
            )?;
        }
        Ok(())
    }

    /// No mount namespace in linux.namespaces: the container shares the runtime's (the
    /// host's), so every mount below is made there.
    fn in_host_mount_ns(&self) -> bool {
        shares_runtime_mount_ns(self.spec)
    }

    /// In the host's mount namespace, the rootfs is bound onto itself as a private tree:
    /// the mounts made on it then propagate nowhere, the propagation of the host's own
    /// mounts is left as it is (runc makes the host's "/" rslave), and `delete` removes
    /// it all by detaching this one mount ([`detach_host_rootfs`]).
    fn bind_rootfs_privately<M: MountApi>(&self, api: &M) -> Result<(), RootfsError> {
        let err = |errno| RootfsError::Mount {
            dest: self.rootfs.to_path_buf(),
            src: self.rootfs.display().to_string(),
            fstype: "bind".into(),
            errno,
        };
        let dir = open_dir(self.rootfs, OFlag::O_PATH).map_err(err)?;
        let tree = api.clone_tree(dir.as_fd(), true).map_err(err)?;
        api.attach(tree.as_fd(), dir.as_fd()).map_err(err)?;
        // Made private once attached: attaching below a shared mount makes the new tree
        // shared (its peers got a copy of the bind alone, which goes with it at delete).
        api.setattr(
            tree.as_fd(),
            true,
            AttrChange::default(),
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        )
        .map_err(err)
    }

    /// pivot_root(2) refuses a new root whose mount or parent mount is shared. The mount
    /// holding the rootfs (the rootfs itself when it is a mount point, as runc looks it up)
    /// is made a slave: no longer shared, yet still receiving the host's mounts, so that
    /// finalize() can give the root any requested propagation, "slave" included. Returns
    /// the mount table it read, for the cgroup mount's look-up of the host's hierarchies.
    fn make_holder_mount_slave<M: MountApi>(
        &self,
        api: &M,
    ) -> Result<Vec<mountinfo::MountInfo>, RootfsError> {
        let info = mountinfo::read_self().map_err(|source| RootfsError::HostInfo {
            path: "/proc/self/mountinfo".into(),
            source,
        })?;
        let holder = info
            .iter()
            .filter(|m| self.rootfs.starts_with(&m.mount_point))
            .max_by_key(|m| m.mount_point.components().count());
        if let Some(m) = holder.filter(|m| m.is_shared()) {
            api.mount(None, &m.mount_point, None, MsFlags::MS_SLAVE, None)
                .map_err(|errno| RootfsError::SetPropagation {
                    path: m.mount_point.clone(),
                    errno,
                })?;
        }
        Ok(info)
    }

    /// Makes the rootfs the process's root; the old root is detached, not left visible.
    pub fn pivot(&self) -> Result<(), RootfsError> {
        let err = |step: &'static str| {
            move |errno| RootfsError::Pivot {
                rootfs: self.rootfs.to_path_buf(),
                step,
                errno,
            }
        };
        if self.in_host_mount_ns() {
            // Neither pivot_root nor MS_MOVE: both would change the host's own root.
            let new_root = open_dir(self.rootfs, OFlag::O_RDONLY).map_err(err("open rootfs"))?;
            fchdir(new_root.as_fd()).map_err(err("chdir to rootfs"))?;
            chroot(".").map_err(err("chroot"))?;
        } else if self.no_pivot {
            self.detach_outside_rootfs();
            chdir(self.rootfs).map_err(err("chdir to rootfs"))?;
            nix::mount::mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
                .map_err(err("move rootfs to /"))?;
            chroot(".").map_err(err("chroot"))?;
        } else {
            let old_root =
                open_dir(Path::new("/"), OFlag::O_RDONLY).map_err(err("open old root"))?;
            let new_root = open_dir(self.rootfs, OFlag::O_RDONLY).map_err(err("open rootfs"))?;
            fchdir(new_root.as_fd()).map_err(err("chdir to rootfs"))?;
            // Stacking the old root under the new one avoids needing a put_old directory.
            pivot_root(".", ".").map_err(err("pivot_root"))?;
            fchdir(old_root.as_fd()).map_err(err("chdir to old root"))?;
            // Keep the unmount below from propagating to the host.
            nix::mount::mount(
                None::<&str>,
                ".",
                None::<&str>,
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(err("make old root rslave"))?;
            umount2(".", MntFlags::MNT_DETACH).map_err(err("detach old root"))?;
        }
        chdir("/").map_err(err("chdir to /"))
    }

    /// After pivot: stdio on the host's /dev/null (a detached caller's, conmon's) is
    /// reopened on the container's own, as runc does, so that no fd of the init points
    /// outside its mounts (CRIU cannot dump a file on a mount the container does not see).
    /// Only where nucleus made /dev: a bind-mounted /dev, or no mount namespace of the
    /// container's, has the host's node already.
    pub fn reopen_stdio_dev_null(&self) -> Result<(), RootfsError> {
        if self.in_host_mount_ns() || !Self::needs_dev_setup(&self.entries()?) {
            return Ok(());
        }
        let null_dev = nix::sys::stat::makedev(1, 3);
        let on_null = |fd: i32| {
            // SAFETY: fds 0-2 stay open for the duration of the fstat.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            fstat(fd).is_ok_and(|st| {
                SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFCHR
                    && st.st_rdev == null_dev
            })
        };
        let targets: Vec<i32> = (0..3).filter(|&fd| on_null(fd)).collect();
        if targets.is_empty() {
            return Ok(());
        }
        let fail = |reason: String| RootfsError::StdioDevNull { reason };
        let root = open_dir(Path::new("/"), OFlag::O_PATH).map_err(|e| fail(e.to_string()))?;
        // The node nucleus made in its /dev, opened without following any link and then
        // checked to be the null device before it replaces anything.
        let how = nix::fcntl::OpenHow::new()
            .flags(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(
                nix::fcntl::ResolveFlag::RESOLVE_IN_ROOT
                    | nix::fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS
                    | nix::fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
        let null = resolve::openat2(root.as_fd(), "dev/null", how)
            .map_err(|e| fail(format!("open /dev/null: {e}")))?;
        if !on_null(null.as_raw_fd()) {
            return Err(fail("/dev/null is not the null device".into()));
        }
        for fd in targets {
            // dup3 without O_CLOEXEC: the container's stdio is kept across its execve.
            // SAFETY: dup3 onto one of our own stdio fds; `null` stays open for the call.
            if unsafe { libc::dup3(null.as_raw_fd(), fd, 0) } < 0 {
                let e = Errno::last();
                return Err(fail(format!("dup onto fd {fd}: {e}")));
            }
        }
        Ok(())
    }

    /// Without pivot_root the old root stays under the chroot; as runc, detach every mount
    /// that is neither the rootfs, below it, nor above it (those hold the rootfs), so that
    /// escaping the chroot finds as little as possible. Best effort by design: a mount
    /// that cannot be detached (busy, locked by a user namespace) stays as runc leaves it.
    fn detach_outside_rootfs(&self) {
        let Ok(info) = mountinfo::read_self() else {
            return;
        };
        let mut points: Vec<PathBuf> = info
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|p| !p.starts_with(self.rootfs) && !self.rootfs.starts_with(p))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        points.dedup();
        for p in points {
            let _ = umount2(&p, MntFlags::MNT_DETACH);
        }
    }

    /// After pivot: readonly paths, masked paths, read-only /dev and root, root propagation.
    /// linux.mountLabel: the SELinux context of the file systems nucleus mounts (checked
    /// at create: only where SELinux is enabled).
    fn mount_label(&self) -> Option<&str> {
        self.spec
            .linux()
            .as_ref()
            .and_then(|l| l.mount_label().as_deref())
            .filter(|l| !l.is_empty())
    }

    pub fn finalize(&self) -> Result<(), RootfsError> {
        self.finalize_with(&Kernel)
    }

    fn finalize_with<M: MountApi>(&self, api: &M) -> Result<(), RootfsError> {
        let root =
            open_dir(Path::new("/"), OFlag::O_PATH).map_err(|errno| RootfsError::OpenRootfs {
                path: "/".into(),
                errno,
            })?;
        let linux = self.spec.linux().as_ref();
        for p in linux
            .and_then(|l| l.readonly_paths().as_deref())
            .unwrap_or(&[])
        {
            readonly_path(api, &root, Path::new(p))?;
        }
        let mut null = None;
        for p in linux
            .and_then(|l| l.masked_paths().as_deref())
            .unwrap_or(&[])
        {
            mask_path(api, &root, &mut null, Path::new(p), self.mount_label())?;
        }
        let entries = self.entries()?;
        let dev_ro = entries.iter().any(|e| {
            e.dest == Path::new("/dev") && !e.is_bind() && e.opts.flags.contains(MsFlags::MS_RDONLY)
        });
        if dev_ro {
            let mnt = Mounter {
                api,
                root: root.as_fd(),
                rootfs: Path::new("/"),
                bundle: self.bundle,
                user_ns: self.user_ns,
                cgroup_ns: false,
                mount_label: self.mount_label(),
                host_mounts: None,
            };
            mnt.remount_readonly(Path::new("/dev"))?;
        }
        if self
            .spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false)
        {
            mounts::set_readonly(api, root.as_fd(), Path::new("/"))?;
        }
        if let Some(p) = self.root_propagation()? {
            api.setattr(
                root.as_fd(),
                p.contains(MsFlags::MS_REC),
                AttrChange::default(),
                p,
            )
            .map_err(|errno| RootfsError::SetPropagation {
                path: "/".into(),
                errno,
            })?;
        }
        Ok(())
    }
}

/// Before a CRIU restore into `rootfs`: the mount points of the spec's mounts, made as
/// `create` makes them (a directory, or a file for a bind of a non-directory), so that CRIU
/// finds them in a rootfs that never ran the container (a checkpoint restored under a new
/// id, from an exported archive). cgroup mounts are skipped (their point is in /sys), and
/// so is every destination below another mount of the spec: CRIU restores that mount's
/// content itself (a tmpfs) or it is the kernel's (proc, sysfs) or a bind source's.
pub fn create_restore_mountpoints(
    spec: &Spec,
    rootfs: &Path,
    bundle: &Path,
) -> Result<(), RootfsError> {
    let entries: Vec<MountEntry> = spec
        .mounts()
        .iter()
        .flatten()
        .map(MountEntry::from_spec)
        .collect::<Result<_, _>>()?;
    let root = open_dir(rootfs, OFlag::O_PATH).map_err(|errno| RootfsError::OpenRootfs {
        path: rootfs.to_path_buf(),
        errno,
    })?;
    for e in &entries {
        let below_another = entries
            .iter()
            .any(|o| o.dest != e.dest && e.dest.starts_with(&o.dest));
        if e.fstype == "cgroup" || below_another {
            continue;
        }
        let is_file_bind = e.is_bind()
            && e.source.as_ref().is_some_and(|src| {
                let src = if src.is_absolute() {
                    src.clone()
                } else {
                    bundle.join(src)
                };
                std::fs::metadata(src).is_ok_and(|m| !m.is_dir())
            });
        let made = if is_file_bind {
            resolve::create_file(root.as_fd(), &e.dest, Mode::from_bits_truncate(0o644))
        } else {
            resolve::mkdir_all(root.as_fd(), &e.dest, Mode::from_bits_truncate(0o755))
        };
        made.map_err(|errno| RootfsError::Resolve {
            path: e.dest.clone(),
            errno,
        })?;
    }
    Ok(())
}

/// Whether a container of `spec` has no mount namespace of its own (none in
/// linux.namespaces): it then shares the runtime's.
pub fn shares_runtime_mount_ns(spec: &Spec) -> bool {
    !spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Mount))
}

/// The id of the topmost mount at `path` (statx STATX_MNT_ID).
pub fn mount_id(path: &Path) -> Result<u64, Errno> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: statx is plain old data; the kernel fills it.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: c is a NUL-terminated path and stx a valid statx buffer for the call.
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT,
            libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    Errno::result(r)?;
    if stx.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(Errno::ENOSYS);
    }
    Ok(stx.stx_mnt_id)
}

/// Undoes what a container without its own mount namespace mounted in the host's: the
/// private bind of the rootfs onto itself, with every mount made on it. `ours` is that
/// bind's mount id once known; before (a create that died part-way), any mount stacked
/// over `below`, the mount that was topmost at the rootfs before the create, is it.
pub fn detach_host_rootfs(path: &Path, below: u64, ours: Option<u64>) -> Result<(), RootfsError> {
    let err = |errno| RootfsError::Detach {
        path: path.to_path_buf(),
        errno,
    };
    let top = match mount_id(path) {
        Ok(id) => id,
        Err(Errno::ENOENT) => return Ok(()),
        Err(errno) => return Err(err(errno)),
    };
    if top == below || ours.is_some_and(|o| o != top) {
        return Ok(());
    }
    umount2(path, MntFlags::MNT_DETACH).map_err(err)
}

/// chdir to `cwd` resolved inside the process's root with openat2(RESOLVE_IN_ROOT |
/// RESOLVE_NO_MAGICLINKS): /proc/self/fd/N and the like are refused, so no fd the process
/// still holds can make a host directory its working directory (CVE-2024-21626 class).
pub fn chdir_in_root(cwd: &Path) -> Result<(), Errno> {
    // "/" (or "/."): the process's root itself, where no link can lead.
    if resolve::relative(cwd) == Path::new(".") {
        return chdir("/");
    }
    let root = open_dir(Path::new("/"), OFlag::O_PATH)?;
    let dir = resolve::open(root.as_fd(), cwd, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
    fchdir(dir.as_fd())
}

/// devpts' magic number (linux/magic.h).
const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
/// Majors of Unix98 pty slaves (linux/major.h: UNIX98_PTY_SLAVE_MAJOR and the 7 after it).
const PTY_SLAVE_MAJORS: std::ops::RangeInclusive<u64> = 136..=143;

/// Opens the container's /dev/pts/ptmx for a new pty: the directory must be the root of a
/// devpts instance and the file its ptmx (5:2), reached without symlinks or mount
/// crossings, so a planted file (a FIFO, a symlink into procfs, a device) is never opened.
pub fn open_ptmx() -> Result<OwnedFd, RootfsError> {
    use nix::fcntl::{OpenHow, ResolveFlag};
    let err = |what: &'static str| move |errno| RootfsError::Console { what, errno };
    let refuse = |reason: &str| RootfsError::ConsoleSource {
        reason: reason.to_string(),
    };
    let root = open_dir(Path::new("/"), OFlag::O_PATH).map_err(err("open /"))?;
    let pts = resolve::open(
        root.as_fd(),
        Path::new("/dev/pts"),
        OFlag::O_PATH | OFlag::O_DIRECTORY,
    )
    .map_err(err("open /dev/pts"))?;
    let fs = nix::sys::statfs::fstatfs(pts.as_fd()).map_err(err("statfs /dev/pts"))?;
    let st = fstat(pts.as_fd()).map_err(err("stat /dev/pts"))?;
    // The root of a devpts instance has inode 1.
    if fs.filesystem_type().0 as i64 != DEVPTS_SUPER_MAGIC || st.st_ino != 1 {
        return Err(refuse("/dev/pts is not a devpts file system"));
    }
    let how = OpenHow::new()
        .flags(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        );
    let ptmx = resolve::openat2(pts.as_fd(), "ptmx", how).map_err(err("open /dev/pts/ptmx"))?;
    let st = fstat(ptmx.as_fd()).map_err(err("stat /dev/pts/ptmx"))?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    if kind != SFlag::S_IFCHR || st.st_rdev != nix::sys::stat::makedev(5, 2) {
        return Err(refuse("/dev/pts/ptmx is not the pty multiplexer (5:2)"));
    }
    Ok(ptmx)
}

/// After pivot, when the process has a terminal: bind the pty slave onto /dev/console
/// (created as an empty 0666 file if missing), as runc does. The slave must be a pty and
/// /dev/console a file or device in /dev itself: never a symlink the rootfs planted.
pub fn mount_console(slave: std::os::fd::BorrowedFd<'_>) -> Result<(), RootfsError> {
    mount_console_with(&Kernel, slave)
}

fn mount_console_with<M: MountApi>(
    api: &M,
    slave: std::os::fd::BorrowedFd<'_>,
) -> Result<(), RootfsError> {
    let err = |what: &'static str| move |errno| RootfsError::Console { what, errno };
    let st = fstat(slave).map_err(err("stat the pty"))?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    if kind != SFlag::S_IFCHR || !PTY_SLAVE_MAJORS.contains(&nix::sys::stat::major(st.st_rdev)) {
        return Err(RootfsError::ConsoleSource {
            reason: "the terminal to bind is not a pty slave".into(),
        });
    }
    let root = open_dir(Path::new("/"), OFlag::O_PATH).map_err(err("open /"))?;
    let console = Path::new("/dev/console");
    let fd = resolve::create_target_strict(root.as_fd(), console, Mode::from_bits_truncate(0o666))
        .map_err(|e| match e {
            resolve::TargetError::Sys(errno) => RootfsError::Console {
                what: "create /dev/console",
                errno,
            },
            other => RootfsError::ConsoleSource {
                reason: format!("/dev/console {other}"),
            },
        })?;
    let st = fstat(fd.as_fd()).map_err(err("stat /dev/console"))?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    if kind != SFlag::S_IFREG && kind != SFlag::S_IFCHR {
        return Err(RootfsError::ConsoleSource {
            reason: "/dev/console is neither a regular file nor a character device".into(),
        });
    }
    if kind == SFlag::S_IFREG {
        // The umask may have narrowed the mode at creation.
        nix::sys::stat::fchmodat(
            root.as_fd(),
            &resolve::relative(console),
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        )
        .or_else(|e| {
            if e == Errno::EOPNOTSUPP {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(err("chmod /dev/console"))?;
    }
    let tree = api.clone_tree(slave, false).map_err(err("clone the pty"))?;
    api.attach(tree.as_fd(), fd.as_fd()).map_err(err("attach"))
}

/// Binds a path onto itself read-only (recursively, so submounts cannot stay writable).
fn readonly_path<M: MountApi>(api: &M, root: &OwnedFd, path: &Path) -> Result<(), RootfsError> {
    let err = |errno| RootfsError::ReadonlyPath {
        path: path.to_path_buf(),
        errno,
    };
    let fd = match resolve::open_path(root.as_fd(), path) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(errno) => return Err(err(errno)),
    };
    let tree = api.clone_tree(fd.as_fd(), true).map_err(err)?;
    api.setattr(
        tree.as_fd(),
        true,
        AttrChange {
            set: MOUNT_ATTR_RDONLY,
            clr: 0,
        },
        MsFlags::empty(),
    )
    .map_err(err)?;
    api.attach(tree.as_fd(), fd.as_fd()).map_err(err)
}

/// The container's /dev/null, opened without following any symlink and checked to be the
/// null character device (1:3): a rootfs may have planted a symlink (into procfs, say) or
/// another file there, and whatever is bound over a masked path is what the container sees.
fn verified_dev_null(root: &OwnedFd) -> Result<OwnedFd, String> {
    let how = nix::fcntl::OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(
            nix::fcntl::ResolveFlag::RESOLVE_IN_ROOT
                | nix::fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS
                | nix::fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let fd = match resolve::openat2(root.as_fd(), "dev/null", how) {
        Ok(fd) => fd,
        Err(Errno::ELOOP) => return Err("is a symlink".into()),
        Err(e) => return Err(format!("cannot be opened: {e}")),
    };
    let st = fstat(fd.as_fd()).map_err(|e| format!("cannot be checked: {e}"))?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    if kind == SFlag::S_IFLNK {
        return Err("is a symlink".into());
    }
    if kind != SFlag::S_IFCHR || st.st_rdev != nix::sys::stat::makedev(1, 3) {
        return Err(format!(
            "is not the null device (mode {:o}, device {}:{})",
            st.st_mode,
            nix::sys::stat::major(st.st_rdev),
            nix::sys::stat::minor(st.st_rdev)
        ));
    }
    Ok(fd)
}

/// Hides a path: the verified /dev/null over files, an empty read-only tmpfs over
/// directories. `null` caches the verified /dev/null across masked paths.
fn mask_path<M: MountApi>(
    api: &M,
    root: &OwnedFd,
    null: &mut Option<OwnedFd>,
    path: &Path,
    mount_label: Option<&str>,
) -> Result<(), RootfsError> {
    let err = |errno| RootfsError::MaskedPath {
        path: path.to_path_buf(),
        errno,
    };
    let fd = match resolve::open_path(root.as_fd(), path) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(errno) => return Err(err(errno)),
    };
    let st = fstat(fd.as_fd()).map_err(err)?;
    let tree = if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR {
        api.new_readonly_tmpfs(mount_label).map_err(err)?
    } else {
        let null =
            match null {
                Some(fd) => fd,
                None => null.insert(verified_dev_null(root).map_err(|reason| {
                    RootfsError::MaskSource {
                        path: path.to_path_buf(),
                        reason,
                    }
                })?),
            };
        api.clone_tree(null.as_fd(), false).map_err(err)?
    };
    api.attach(tree.as_fd(), fd.as_fd()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use syscall::mock::Recorder;

    /// The kernel calls `finalize` makes for `spec`.
    fn finalize_calls(spec: &Spec) -> Vec<String> {
        let setup = RootfsSetup {
            spec,
            rootfs: Path::new("/"),
            bundle: Path::new("/"),
            no_pivot: false,
            user_ns: false,
        };
        let api = Recorder::default();
        setup.finalize_with(&api).expect("finalize");
        api.calls.into_inner()
    }

    #[test]
    fn finalize_sequence() {
        let mut spec = Spec::default();
        if let Some(l) = spec.linux_mut() {
            l.set_readonly_paths(Some(vec!["/proc/sys".into()]));
            // A file, a directory and a path that does not exist.
            l.set_masked_paths(Some(vec![
                "/proc/version".into(),
                "/proc/self".into(),
                "/proc/no-such-thing".into(),
            ]));
            l.set_rootfs_propagation(Some("rslave".into()));
        }
        let empty = "propagation=MsFlags(0x0)";
        assert_eq!(
            finalize_calls(&spec),
            vec![
                "clone_tree recursive=true".to_string(),
                format!("setattr recursive=true set=0x1 clr=0x0 {empty}"),
                "attach".into(),
                "clone_tree recursive=false".into(),
                "attach".into(),
                "new_readonly_tmpfs".into(),
                "attach".into(),
                format!("setattr recursive=false set=0x1 clr=0x0 {empty}"),
                "setattr recursive=true set=0x0 clr=0x0 propagation=MsFlags(MS_REC | MS_SLAVE)"
                    .into(),
            ]
        );
        // With linux.mountLabel the masking tmpfs gets it as its context.
        if let Some(l) = spec.linux_mut() {
            l.set_mount_label(Some("system_u:object_r:container_file_t:s0".into()));
        }
        assert!(finalize_calls(&spec)
            .contains(&"new_readonly_tmpfs context=system_u:object_r:container_file_t:s0".into()));
    }
}

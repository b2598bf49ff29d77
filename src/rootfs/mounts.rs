//! Performing one spec mount inside the rootfs: destinations are resolved inside the root
//! (resolve.rs), bind mounts go through open_tree/mount_setattr/move_mount so attributes
//! apply to the new mount only and locked flags are never cleared by accident, other
//! filesystems through mount(2) on /proc/self/fd/N.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{fstat, fstatat, mkdirat, Mode, SFlag};
use oci_spec::runtime::Mount;

use super::error::RootfsError;
use super::options::{self, AttrChange, MountOptions, MOUNT_ATTR_RDONLY};
use super::resolve;
use super::syscall::{fd_path, MountApi};
use crate::procinfo::mountinfo::MountInfo;

/// Files under /proc that may be mounted over (what LXCFS-style tools emulate), as in runc.
const PROC_MOUNT_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// Context for performing mounts inside one rootfs.
pub struct Mounter<'a, M: MountApi> {
    pub api: &'a M,
    /// O_PATH fd of the rootfs (after it was bind-mounted onto itself).
    pub root: BorrowedFd<'a>,
    /// Host path of the rootfs, for reporting where a resolved destination landed.
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub user_ns: bool,
    pub cgroup_ns: bool,
    /// linux.mountLabel, for the file systems runc labels (see `mount_fs`).
    pub mount_label: Option<&'a str>,
    /// The mount table already read by this process in its mount namespace, if any: the
    /// mounts made since are all inside the rootfs, so what lies outside it is still there.
    pub host_mounts: Option<&'a [MountInfo]>,
}

/// A spec mount, normalised.
pub struct MountEntry {
    pub dest: PathBuf,
    pub fstype: String,
    pub source: Option<PathBuf>,
    pub opts: MountOptions,
}

impl MountEntry {
    pub fn from_spec(m: &Mount) -> Result<Self, RootfsError> {
        if m.destination().as_os_str().is_empty() {
            return Err(RootfsError::UnsafeDestination {
                dest: PathBuf::new(),
                reason: "mount destination is empty".into(),
            });
        }
        // runc accepts relative destinations from old specs as relative to "/".
        let dest = Path::new("/").join(m.destination());
        if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
            return Err(RootfsError::UnsupportedOption {
                dest,
                option: "uidMappings/gidMappings (id-mapped mount)".into(),
            });
        }
        let words = m.options().clone().unwrap_or_default();
        let mut opts = options::parse(&words).map_err(|u| RootfsError::UnsupportedOption {
            dest: dest.clone(),
            option: u.0,
        })?;
        let fstype = m.typ().clone().unwrap_or_default();
        if fstype == "bind" && !opts.is_bind() {
            opts.flags |= MsFlags::MS_BIND;
        }
        Ok(Self {
            dest,
            fstype,
            source: m.source().clone(),
            opts,
        })
    }

    pub fn is_bind(&self) -> bool {
        self.opts.is_bind()
    }
}

pub(super) fn mount_err(e: &MountEntry, errno: Errno) -> RootfsError {
    RootfsError::Mount {
        dest: e.dest.clone(),
        src: e
            .source
            .as_ref()
            .map(|s| s.display().to_string())
            .unwrap_or_default(),
        fstype: e.fstype.clone(),
        errno,
    }
}

/// Sets the `security.selinux` attribute of the file an O_PATH fd refers to.
fn set_selinux_label(fd: &OwnedFd, label: &str) -> Result<(), Errno> {
    let path = std::ffi::CString::new(fd_path(fd.as_fd()).into_os_string().into_encoded_bytes())
        .map_err(|_| Errno::EINVAL)?;
    // SAFETY: path and the attribute name are NUL-terminated; the value is read for
    // exactly its length.
    let r = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"security.selinux".as_ptr(),
            label.as_ptr().cast(),
            label.len(),
            0,
        )
    };
    Errno::result(r).map(drop)
}

fn resolve_err(path: &Path) -> impl Fn(Errno) -> RootfsError + '_ {
    move |errno| RootfsError::Resolve {
        path: path.to_path_buf(),
        errno,
    }
}

impl<M: MountApi> Mounter<'_, M> {
    pub fn mount(&self, e: &MountEntry) -> Result<(), RootfsError> {
        if e.is_bind() {
            self.bind(e)
        } else if e.fstype == "cgroup" {
            super::cgroup::mount_cgroup(self, e)
        } else {
            self.mount_fs(e)
        }
    }

    fn host_source(&self, e: &MountEntry) -> Result<PathBuf, RootfsError> {
        let src = e.source.as_ref().ok_or(RootfsError::MissingSource {
            dest: e.dest.clone(),
        })?;
        Ok(if src.is_absolute() {
            src.clone()
        } else {
            self.bundle.join(src)
        })
    }

    /// Where a resolved fd really is, as a path inside the container (for the /proc check).
    fn container_path(&self, fd: BorrowedFd<'_>) -> Option<PathBuf> {
        let real = std::fs::read_link(fd_path(fd)).ok()?;
        let rel = real.strip_prefix(self.rootfs).ok()?;
        Some(Path::new("/").join(rel))
    }

    /// runc's rule: nothing may be mounted inside /proc except procfs itself on /proc and a
    /// few emulated files.
    fn check_proc(
        &self,
        e: &MountEntry,
        dest_fd: BorrowedFd<'_>,
        source_is_proc: bool,
    ) -> Result<(), RootfsError> {
        let Some(path) = self.container_path(dest_fd) else {
            return Ok(());
        };
        let Ok(rel) = path.strip_prefix("/proc") else {
            return Ok(());
        };
        if rel.as_os_str().is_empty() {
            if source_is_proc {
                return Ok(());
            }
            return Err(RootfsError::UnsafeDestination {
                dest: e.dest.clone(),
                reason: "only procfs may be mounted on /proc".into(),
            });
        }
        if PROC_MOUNT_ALLOWED.iter().any(|p| Path::new(p) == path) {
            return Ok(());
        }
        Err(RootfsError::UnsafeDestination {
            dest: e.dest.clone(),
            reason: format!(
                "{} is inside /proc and cannot be mounted over",
                path.display()
            ),
        })
    }

    fn bind(&self, e: &MountEntry) -> Result<(), RootfsError> {
        let source = self.host_source(e)?;
        let src_fd = nix::fcntl::open(&source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|errno| RootfsError::Source {
                dest: e.dest.clone(),
                src: source.clone(),
                errno,
            })?;
        let src_stat = fstat(src_fd.as_fd()).map_err(|errno| RootfsError::Source {
            dest: e.dest.clone(),
            src: source.clone(),
            errno,
        })?;
        let is_dir =
            SFlag::from_bits_truncate(src_stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR;
        if e.opts.flags.contains(MsFlags::MS_REMOUNT) {
            let dest_fd = resolve::open_path(self.root, &e.dest).map_err(resolve_err(&e.dest))?;
            return self.apply_attrs(e, dest_fd.as_fd());
        }
        let dest_fd = if is_dir {
            resolve::mkdir_all(self.root, &e.dest, Mode::from_bits_truncate(0o755))
        } else {
            resolve::create_file(self.root, &e.dest, Mode::from_bits_truncate(0o644))
        }
        .map_err(resolve_err(&e.dest))?;
        let src_is_proc = nix::sys::statfs::fstatfs(src_fd.as_fd())
            .map(|s| s.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
            .unwrap_or(false);
        self.check_proc(e, dest_fd.as_fd(), src_is_proc)?;
        let tree = self
            .api
            .clone_tree(src_fd.as_fd(), e.opts.is_recursive_bind())
            .map_err(|errno| mount_err(e, errno))?;
        // Attributes go on the detached tree, so the mount never appears writable.
        self.set_attrs(e, tree.as_fd())?;
        self.api
            .attach(tree.as_fd(), dest_fd.as_fd())
            .map_err(|errno| mount_err(e, errno))?;
        self.set_propagation(e, tree.as_fd())
    }

    pub(super) fn set_attrs(&self, e: &MountEntry, fd: BorrowedFd<'_>) -> Result<(), RootfsError> {
        let change = e.opts.bind_attr_change();
        if !change.is_empty() {
            self.api
                .setattr(fd, false, change, MsFlags::empty())
                .map_err(|errno| RootfsError::MountAttr {
                    dest: e.dest.clone(),
                    what: "per-mount flags",
                    errno,
                })?;
        }
        self.set_recursive(e, fd)
    }

    fn set_recursive(&self, e: &MountEntry, fd: BorrowedFd<'_>) -> Result<(), RootfsError> {
        if !e.opts.recursive.is_empty() {
            self.api
                .setattr(fd, true, e.opts.recursive, MsFlags::empty())
                .map_err(|errno| RootfsError::MountAttr {
                    dest: e.dest.clone(),
                    what: "recursive flags",
                    errno,
                })?;
        }
        Ok(())
    }

    fn set_propagation(&self, e: &MountEntry, fd: BorrowedFd<'_>) -> Result<(), RootfsError> {
        for p in &e.opts.propagation {
            self.api
                .setattr(fd, p.contains(MsFlags::MS_REC), AttrChange::default(), *p)
                .map_err(|errno| RootfsError::MountAttr {
                    dest: e.dest.clone(),
                    what: "propagation",
                    errno,
                })?;
        }
        Ok(())
    }

    fn apply_attrs(&self, e: &MountEntry, fd: BorrowedFd<'_>) -> Result<(), RootfsError> {
        self.set_attrs(e, fd)?;
        self.set_propagation(e, fd)
    }

    /// Opens (creating if needed) a directory destination that must not be a symlink, for
    /// filesystems such as proc and sysfs that must not be redirected.
    fn strict_dir(&self, e: &MountEntry) -> Result<OwnedFd, RootfsError> {
        let (parent, name) =
            resolve::split(&e.dest).map_err(|_| RootfsError::UnsafeDestination {
                dest: e.dest.clone(),
                reason: format!("{} cannot be mounted on the root itself", e.fstype),
            })?;
        let parent_fd = resolve::mkdir_all(self.root, parent, Mode::from_bits_truncate(0o755))
            .map_err(resolve_err(parent))?;
        match fstatat(
            parent_fd.as_fd(),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => {
                let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
                if kind == SFlag::S_IFLNK {
                    return Err(RootfsError::UnsafeDestination {
                        dest: e.dest.clone(),
                        reason: format!(
                            "destination is a symlink; refusing to mount {} over it",
                            e.fstype
                        ),
                    });
                }
                if kind != SFlag::S_IFDIR {
                    return Err(RootfsError::UnsafeDestination {
                        dest: e.dest.clone(),
                        reason: format!(
                            "destination is not a directory; refusing to mount {} over it",
                            e.fstype
                        ),
                    });
                }
            }
            Err(Errno::ENOENT) => {
                mkdirat(parent_fd.as_fd(), name, Mode::from_bits_truncate(0o755))
                    .or_else(|e| if e == Errno::EEXIST { Ok(()) } else { Err(e) })
                    .map_err(resolve_err(&e.dest))?;
            }
            Err(errno) => {
                return Err(RootfsError::Resolve {
                    path: e.dest.clone(),
                    errno,
                })
            }
        }
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_BENEATH);
        resolve::openat2(parent_fd.as_fd(), name, how).map_err(resolve_err(&e.dest))
    }

    /// A non-bind filesystem mount of `e.fstype` (no special handling of "cgroup").
    pub fn mount_fs(&self, e: &MountEntry) -> Result<(), RootfsError> {
        let strict = matches!(e.fstype.as_str(), "proc" | "sysfs");
        let dest_fd = if e.opts.flags.contains(MsFlags::MS_REMOUNT) {
            resolve::open_path(self.root, &e.dest).map_err(resolve_err(&e.dest))?
        } else if strict {
            self.strict_dir(e)?
        } else {
            resolve::mkdir_all(self.root, &e.dest, Mode::from_bits_truncate(0o755))
                .map_err(resolve_err(&e.dest))?
        };
        self.check_proc(e, dest_fd.as_fd(), e.fstype == "proc")?;
        let source = e.source.clone().unwrap_or_else(|| PathBuf::from(&e.fstype));
        let mut data = e.opts.data_string();
        // linux.mountLabel as runc applies it (label.FormatMountLabel): the `context=`
        // option of every file system it mounts but proc, sysfs and mqueue (labelled after
        // the mount, below); cgroup mounts do not come here.
        let label = self
            .mount_label
            .filter(|_| !matches!(e.fstype.as_str(), "proc" | "sysfs" | "mqueue"));
        if let Some(l) = label {
            let ctx = format!("context=\"{l}\"");
            data = Some(match data {
                Some(d) if !d.is_empty() => format!("{d},{ctx}"),
                _ => ctx,
            });
        }
        let fstype = (!e.fstype.is_empty()).then_some(e.fstype.as_str());
        let mut flags = e.opts.flags;
        // /dev must stay writable until the device nodes exist; finalize() makes it read-only.
        if e.dest == Path::new("/dev") {
            flags -= MsFlags::MS_RDONLY;
        }
        let copy_up = e.opts.copy_up && e.fstype == "tmpfs";
        let covered = if copy_up {
            // The tmpfs is filled before it becomes read-only.
            flags -= MsFlags::MS_RDONLY;
            Some(
                resolve::open(self.root, &e.dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                    .map_err(resolve_err(&e.dest))?,
            )
        } else {
            None
        };
        let res = self.api.mount(
            Some(&source),
            &fd_path(dest_fd.as_fd()),
            fstype,
            flags,
            data.as_deref(),
        );
        match res {
            Ok(()) => {}
            // Without its own network (sysfs) or IPC (mqueue) namespace, a user namespace
            // cannot mount these; runc then binds the host's instance instead.
            Err(Errno::EPERM)
                if self.user_ns && matches!(e.fstype.as_str(), "sysfs" | "mqueue") =>
            {
                let host = if e.fstype == "sysfs" {
                    "/sys"
                } else {
                    "/dev/mqueue"
                };
                let mut opts = e.opts.clone();
                opts.flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
                opts.data.clear();
                let fallback = MountEntry {
                    dest: e.dest.clone(),
                    fstype: "bind".into(),
                    source: Some(host.into()),
                    opts,
                };
                return self.bind(&fallback);
            }
            Err(errno) => return Err(mount_err(e, errno)),
        }
        let mqueue_label = self.mount_label.filter(|_| e.fstype == "mqueue");
        if mqueue_label.is_none() && e.opts.recursive.is_empty() && e.opts.propagation.is_empty() {
            // Nothing to apply on the new mount: no need to look it up.
            if let Some(covered) = covered {
                self.copy_up(e, covered)?;
            }
            return Ok(());
        }
        let mounted = resolve::open_path(self.root, &e.dest).map_err(resolve_err(&e.dest))?;
        if let Some(l) = mqueue_label {
            // runc labels the mqueue root (label.SetFileLabel) instead of passing context=.
            set_selinux_label(&mounted, l).map_err(|errno| RootfsError::MountAttr {
                dest: e.dest.clone(),
                what: "SELinux label (linux.mountLabel)",
                errno,
            })?;
        }
        if let Some(covered) = covered {
            self.copy_up(e, covered)?;
        }
        self.set_recursive(e, mounted.as_fd())?;
        self.set_propagation(e, mounted.as_fd())
    }

    /// tmpcopyup: what the new tmpfs at `e.dest` covers (`covered`) is copied into it, then
    /// the mount is made read-only if asked.
    fn copy_up(&self, e: &MountEntry, covered: OwnedFd) -> Result<(), RootfsError> {
        let fresh = resolve::open(self.root, &e.dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .map_err(resolve_err(&e.dest))?;
        super::copyup::copy_dir(covered.as_fd(), fresh.as_fd()).map_err(|errno| {
            RootfsError::MountAttr {
                dest: e.dest.clone(),
                what: "tmpcopyup copy",
                errno,
            }
        })?;
        if e.opts.flags.contains(MsFlags::MS_RDONLY) && e.dest != Path::new("/dev") {
            self.remount_readonly(&e.dest)?;
        }
        Ok(())
    }

    /// Makes the mount at `dest` read-only (keeping its other flags).
    pub fn remount_readonly(&self, dest: &Path) -> Result<(), RootfsError> {
        let fd = resolve::open_path(self.root, dest).map_err(resolve_err(dest))?;
        set_readonly(self.api, fd.as_fd(), dest)
    }
}

/// Makes the mount at `fd` (the root of a mount, `path` in messages) read-only, keeping its
/// other flags.
pub(super) fn set_readonly<M: MountApi>(
    api: &M,
    fd: BorrowedFd<'_>,
    path: &Path,
) -> Result<(), RootfsError> {
    api.setattr(
        fd,
        false,
        AttrChange {
            set: MOUNT_ATTR_RDONLY,
            clr: 0,
        },
        MsFlags::empty(),
    )
    .map_err(|errno| RootfsError::Readonly {
        path: path.to_path_buf(),
        errno,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::syscall::mock::Recorder;
    use oci_spec::runtime::MountBuilder;
    use std::os::unix::fs::symlink;

    struct Fixture {
        rootfs: tempfile::TempDir,
        bundle: tempfile::TempDir,
        root: OwnedFd,
        api: Recorder,
        mount_label: Option<&'static str>,
    }

    fn fixture() -> Fixture {
        let rootfs = tempfile::tempdir().expect("tempdir");
        let bundle = tempfile::tempdir().expect("tempdir");
        let root = nix::fcntl::open(
            rootfs.path(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .expect("open rootfs");
        Fixture {
            rootfs,
            bundle,
            root,
            api: Recorder::default(),
            mount_label: None,
        }
    }

    impl Fixture {
        fn run(
            &self,
            dest: &str,
            typ: &str,
            source: &str,
            opts: &[&str],
        ) -> Result<Vec<String>, RootfsError> {
            let m = MountBuilder::default()
                .destination(dest)
                .typ(typ)
                .source(source)
                .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .build()
                .expect("mount");
            let mnt = Mounter {
                api: &self.api,
                root: self.root.as_fd(),
                rootfs: self.rootfs.path(),
                bundle: self.bundle.path(),
                user_ns: false,
                cgroup_ns: false,
                mount_label: self.mount_label,
                host_mounts: None,
            };
            self.api.calls.borrow_mut().clear();
            mnt.mount(&MountEntry::from_spec(&m)?)?;
            Ok(self.api.calls.borrow().clone())
        }
    }

    #[test]
    fn bind_sequence_applies_attributes_before_attaching() {
        let f = fixture();
        std::fs::create_dir(f.bundle.path().join("src")).expect("mkdir");
        let calls = f
            .run(
                "/data/x",
                "bind",
                "src",
                &["rbind", "ro", "nosuid", "rnoexec", "rprivate"],
            )
            .expect("mount");
        assert_eq!(
            calls,
            vec![
                "clone_tree recursive=true".to_string(),
                "setattr recursive=false set=0x3 clr=0x0 propagation=MsFlags(0x0)".into(),
                "setattr recursive=true set=0x8 clr=0x0 propagation=MsFlags(0x0)".into(),
                "attach".into(),
                "setattr recursive=true set=0x0 clr=0x0 propagation=MsFlags(MS_REC | MS_PRIVATE)"
                    .into(),
            ]
        );
        assert!(f.rootfs.path().join("data/x").is_dir());
    }

    #[test]
    fn mount_label_is_the_context_of_the_file_systems_runc_labels() {
        let mut f = fixture();
        let label = "system_u:object_r:container_file_t:s0:c1,c2";
        f.mount_label = Some(label);
        let calls = f
            .run("/dev/shm", "tmpfs", "shm", &["nosuid", "mode=1777"])
            .expect("mount");
        assert_eq!(
            calls,
            vec![format!(
                r#"mount Some("shm") Some("tmpfs") MsFlags(MS_NOSUID) Some("mode=1777,context=\"{label}\"")"#
            )]
        );
        let calls = f.run("/dev/pts", "devpts", "devpts", &[]).expect("mount");
        assert!(
            calls[0].ends_with(&format!(r#"Some("context=\"{label}\"")"#)),
            "{calls:?}"
        );
        // proc and sysfs are not labelled (runc neither).
        std::fs::create_dir(f.rootfs.path().join("proc")).expect("mkdir");
        let calls = f.run("/proc", "proc", "proc", &[]).expect("mount");
        assert!(calls[0].ends_with("None"), "{calls:?}");
    }

    #[test]
    fn file_bind_creates_file_and_plain_bind_sets_nothing() {
        let f = fixture();
        std::fs::write(f.bundle.path().join("hosts"), b"x").expect("write");
        let calls = f
            .run("etc/hosts", "none", "hosts", &["bind"])
            .expect("mount");
        assert_eq!(
            calls,
            vec!["clone_tree recursive=false".to_string(), "attach".into()]
        );
        assert!(f.rootfs.path().join("etc/hosts").is_file());
    }

    #[test]
    fn filesystem_mount_passes_flags_and_data() {
        let f = fixture();
        let calls = f
            .run(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            )
            .expect("mount");
        assert_eq!(
            calls,
            vec![r#"mount Some("shm") Some("tmpfs") MsFlags(MS_NOSUID | MS_NODEV | MS_NOEXEC) Some("mode=1777,size=65536k")"#.to_string()]
        );
        assert!(f.rootfs.path().join("dev/shm").is_dir());
        let calls = f
            .run("/dev", "tmpfs", "tmpfs", &["ro", "rnodev"])
            .expect("mount");
        assert_eq!(
            calls[0], r#"mount Some("tmpfs") Some("tmpfs") MsFlags(0x0) None"#,
            "/dev stays writable until finalize"
        );
        assert_eq!(
            calls[1],
            "setattr recursive=true set=0x4 clr=0x0 propagation=MsFlags(0x0)"
        );
    }

    #[test]
    fn sysfs_falls_back_to_host_bind_in_user_ns_only() {
        let f = fixture();
        *f.api.fail_mount.borrow_mut() = Some(Errno::EPERM);
        let e = f
            .run("/sys", "sysfs", "sysfs", &["ro"])
            .expect_err("no fallback without user ns");
        assert!(
            matches!(
                e,
                RootfsError::Mount {
                    errno: Errno::EPERM,
                    ..
                }
            ),
            "{e}"
        );
        let mnt = Mounter {
            api: &f.api,
            root: f.root.as_fd(),
            rootfs: f.rootfs.path(),
            bundle: f.bundle.path(),
            user_ns: true,
            cgroup_ns: false,
            mount_label: None,
            host_mounts: None,
        };
        let m = MountBuilder::default()
            .destination("/sys")
            .typ("sysfs")
            .source("sysfs")
            .options(vec!["nosuid".to_string(), "ro".to_string()])
            .build()
            .expect("m");
        f.api.calls.borrow_mut().clear();
        mnt.mount(&MountEntry::from_spec(&m).expect("entry"))
            .expect("fallback");
        let calls = f.api.calls.borrow().clone();
        assert_eq!(
            calls[1..],
            [
                "clone_tree recursive=true".to_string(),
                "setattr recursive=false set=0x3 clr=0x0 propagation=MsFlags(0x0)".into(),
                "attach".into(),
            ],
            "{calls:?}"
        );
    }

    #[test]
    fn proc_and_sysfs_refuse_symlinks_and_files() {
        let f = fixture();
        symlink("/etc", f.rootfs.path().join("proc")).expect("symlink");
        std::fs::write(f.rootfs.path().join("sys"), b"").expect("write");
        let e = f.run("/proc", "proc", "proc", &[]).expect_err("symlink");
        assert!(matches!(e, RootfsError::UnsafeDestination { .. }), "{e}");
        assert!(
            e.to_string().contains("/proc") && e.to_string().contains("symlink"),
            "{e}"
        );
        let e = f.run("/sys", "sysfs", "sysfs", &[]).expect_err("file");
        assert!(e.to_string().contains("not a directory"), "{e}");
        assert!(f.api.calls.borrow().is_empty());
    }

    #[test]
    fn nothing_but_procfs_inside_proc() {
        let f = fixture();
        std::fs::write(f.bundle.path().join("fake"), b"").expect("write");
        let e = f
            .run("/proc/kcore", "bind", "fake", &["bind"])
            .expect_err("inside /proc");
        assert!(e.to_string().contains("inside /proc"), "{e}");
        f.run("/proc/cpuinfo", "bind", "fake", &["bind"])
            .expect("lxcfs-style file");
        let e = f
            .run("/proc", "tmpfs", "tmpfs", &[])
            .expect_err("tmpfs on /proc");
        assert!(e.to_string().contains("only procfs"), "{e}");
        // A symlink leading into /proc is caught too.
        symlink("/proc/sys", f.rootfs.path().join("sneaky")).expect("symlink");
        assert!(f.run("/sneaky/x", "tmpfs", "tmpfs", &[]).is_err());
    }

    #[test]
    fn idmap_and_missing_source_are_clear_errors() {
        let f = fixture();
        let e = f
            .run("/x", "bind", "src", &["bind", "idmap"])
            .expect_err("idmap");
        assert!(
            e.to_string().contains("\"idmap\"") && e.to_string().contains("/x"),
            "{e}"
        );
        let e = f
            .run("/x", "bind", "missing", &["rbind"])
            .expect_err("missing");
        assert!(
            matches!(
                e,
                RootfsError::Source {
                    errno: Errno::ENOENT,
                    ..
                }
            ),
            "{e}"
        );
    }
}

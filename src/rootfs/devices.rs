//! Device nodes and the standard /dev symlinks inside the rootfs.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, major, makedev, minor, mknodat, umask, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::error::RootfsError;
use super::mounts::Mounter;
use super::resolve;
use super::syscall::MountApi;

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets (runc's defaults).
pub fn default_devices() -> Vec<DeviceNode> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| DeviceNode {
        path: Path::new("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// Converts a spec device, checking its path and type.
pub fn from_spec(d: &LinuxDevice) -> Result<DeviceNode, RootfsError> {
    let path = d.path().clone();
    let invalid = |reason: String| RootfsError::InvalidDevice {
        path: path.clone(),
        reason,
    };
    if !path.starts_with("/dev/")
        || path
            .components()
            .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(invalid(
            "device path must be absolute, under /dev and without \"..\"".into(),
        ));
    }
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        other => {
            return Err(invalid(format!(
                "device type {other:?} cannot be created (use c, b, u or p)"
            )))
        }
    };
    let num = |v: i64, what: &str| {
        u64::try_from(v).map_err(|_| invalid(format!("{what} number {v} is negative")))
    };
    Ok(DeviceNode {
        path: path.clone(),
        kind,
        major: num(d.major(), "major")?,
        minor: num(d.minor(), "minor")?,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Default devices plus the spec's, a spec device replacing a default at the same path.
pub fn all_devices(spec_devices: &[LinuxDevice]) -> Result<Vec<DeviceNode>, RootfsError> {
    let mut list: Vec<DeviceNode> = spec_devices
        .iter()
        .map(from_spec)
        .collect::<Result<_, _>>()?;
    for d in default_devices() {
        if !list.iter().any(|s| s.path == d.path) {
            list.push(d);
        }
    }
    Ok(list)
}

fn dev_err<'a>(path: &'a Path, what: &'static str) -> impl Fn(Errno) -> RootfsError + 'a {
    move |errno| RootfsError::Device {
        path: path.to_path_buf(),
        what,
        errno,
    }
}

/// Restores the umask when dropped, so device modes are exactly the spec's.
struct UmaskGuard(Mode);

impl Drop for UmaskGuard {
    fn drop(&mut self) {
        umask(self.0);
    }
}

/// Creates the devices: mknod, or (in a user namespace, where mknod is not allowed) a bind
/// mount of the host's node at the same path.
pub fn create<M: MountApi>(
    mnt: &Mounter<'_, M>,
    devices: &[DeviceNode],
) -> Result<(), RootfsError> {
    let _guard = UmaskGuard(umask(Mode::empty()));
    // Most nodes share their directory (/dev): it is resolved once for all of them.
    let mut parent = None;
    for d in devices {
        if mnt.user_ns {
            bind_from_host(mnt, d)?;
        } else {
            make_node(mnt, d, &mut parent)?;
        }
    }
    Ok(())
}

/// Binds the host's node at the device's path: the host node must be the device the
/// config names (kind and number), and the target in the rootfs must not redirect.
fn bind_from_host<M: MountApi>(mnt: &Mounter<'_, M>, d: &DeviceNode) -> Result<(), RootfsError> {
    let src = nix::fcntl::open(&d.path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(dev_err(&d.path, "open the host's node"))?;
    let st = fstat(src.as_fd()).map_err(dev_err(&d.path, "stat the host's node"))?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    let same_number = d.kind == SFlag::S_IFIFO || st.st_rdev == makedev(d.major, d.minor);
    if kind != d.kind || !same_number {
        return Err(RootfsError::InvalidDevice {
            path: d.path.clone(),
            reason: format!(
                "the host's node is {} {}:{}, not the {} {}:{} the config names; refusing to bind it",
                kind_name(kind),
                major(st.st_rdev),
                minor(st.st_rdev),
                kind_name(d.kind),
                d.major,
                d.minor
            ),
        });
    }
    let target = resolve::create_target_strict(mnt.root, &d.path, Mode::from_bits_truncate(0o000))
        .map_err(|e| RootfsError::InvalidDevice {
            path: d.path.clone(),
            reason: format!("mount point in the rootfs {e}"),
        })?;
    let tree = mnt
        .api
        .clone_tree(src.as_fd(), false)
        .map_err(dev_err(&d.path, "clone the host's node"))?;
    mnt.api
        .attach(tree.as_fd(), target.as_fd())
        .map_err(dev_err(&d.path, "bind the host's node"))
}

fn kind_name(kind: SFlag) -> &'static str {
    match kind {
        SFlag::S_IFCHR => "character device",
        SFlag::S_IFBLK => "block device",
        SFlag::S_IFIFO => "FIFO",
        SFlag::S_IFLNK => "symlink",
        SFlag::S_IFDIR => "directory",
        SFlag::S_IFREG => "regular file",
        _ => "file",
    }
}

/// `cached`: the last parent directory resolved (its path inside the root and an O_PATH fd).
fn make_node<M: MountApi>(
    mnt: &Mounter<'_, M>,
    d: &DeviceNode,
    cached: &mut Option<(PathBuf, OwnedFd)>,
) -> Result<(), RootfsError> {
    let (parent, name) = resolve::split(&d.path).map_err(dev_err(&d.path, "path"))?;
    let dir = match cached.take() {
        Some((path, fd)) if path == parent => fd,
        _ => resolve::mkdir_all(mnt.root, parent, Mode::from_bits_truncate(0o755))
            .map_err(dev_err(&d.path, "create parent directory"))?,
    };
    let dir = &cached.insert((parent.to_path_buf(), dir)).1;
    let dev = if d.kind == SFlag::S_IFIFO {
        0
    } else {
        makedev(d.major, d.minor)
    };
    match mknodat(
        dir.as_fd(),
        name,
        d.kind,
        Mode::from_bits_truncate(d.mode),
        dev,
    ) {
        Ok(()) => {}
        // An existing node is kept, as runc does.
        Err(Errno::EEXIST) => return Ok(()),
        // mknod is refused (e.g. an unflagged user namespace): use the host's node.
        Err(Errno::EPERM) => return bind_from_host(mnt, d),
        Err(errno) => {
            return Err(RootfsError::Device {
                path: d.path.clone(),
                what: "mknod",
                errno,
            })
        }
    }
    fchownat(
        dir.as_fd(),
        name,
        Some(Uid::from_raw(d.uid)),
        Some(Gid::from_raw(d.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(dev_err(&d.path, "chown"))
}

/// /dev/fd, /dev/stdin..stderr, /dev/core (when the host has /proc/kcore) and
/// /dev/ptmx -> pts/ptmx.
pub fn create_symlinks<M: MountApi>(mnt: &Mounter<'_, M>) -> Result<(), RootfsError> {
    let dev = Path::new("/dev");
    let dir =
        resolve::mkdir_all(mnt.root, dev, Mode::from_bits_truncate(0o755)).map_err(|errno| {
            RootfsError::Resolve {
                path: dev.into(),
                errno,
            }
        })?;
    let mut links = vec![
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("core", "/proc/kcore"));
    }
    for (name, target) in links {
        match symlinkat(target, dir.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(errno) => {
                return Err(RootfsError::Symlink {
                    path: dev.join(name),
                    target: target.into(),
                    errno,
                })
            }
        }
    }
    match unlinkat(dir.as_fd(), "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(errno) => {
            return Err(RootfsError::Device {
                path: dev.join("ptmx"),
                what: "remove",
                errno,
            })
        }
    }
    symlinkat("pts/ptmx", dir.as_fd(), "ptmx").map_err(|errno| RootfsError::Symlink {
        path: dev.join("ptmx"),
        target: "pts/ptmx".into(),
        errno,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceBuilder;

    fn dev(path: &str, typ: LinuxDeviceType, major: i64, minor: i64) -> LinuxDevice {
        LinuxDeviceBuilder::default()
            .path(path)
            .typ(typ)
            .major(major)
            .minor(minor)
            .build()
            .expect("device")
    }

    #[test]
    fn spec_devices_convert_and_override_defaults() {
        let mut custom = dev("/dev/null", LinuxDeviceType::C, 1, 3);
        custom.set_file_mode(Some(0o100600));
        custom.set_uid(Some(7));
        let list = all_devices(&[
            custom,
            dev("/dev/fifo", LinuxDeviceType::P, 0, 0),
            dev("/dev/sda", LinuxDeviceType::B, 8, 0),
            dev("/dev/u", LinuxDeviceType::U, 4, 1),
        ])
        .expect("devices");
        assert_eq!(list.len(), 4 + 5);
        assert_eq!(list[0].mode, 0o600);
        assert_eq!(list[0].uid, 7);
        assert_eq!(list[1].kind, SFlag::S_IFIFO);
        assert_eq!(list[2].kind, SFlag::S_IFBLK);
        assert_eq!(list[3].kind, SFlag::S_IFCHR);
        assert_eq!(
            list.iter()
                .filter(|d| d.path == Path::new("/dev/null"))
                .count(),
            1
        );
        assert_eq!(
            list.last().map(|d| d.path.clone()),
            Some(PathBuf::from("/dev/tty"))
        );
    }

    #[test]
    fn bad_devices_are_refused() {
        assert!(from_spec(&dev("/etc/x", LinuxDeviceType::C, 1, 3)).is_err());
        assert!(from_spec(&dev("/dev/../etc/x", LinuxDeviceType::C, 1, 3)).is_err());
        assert!(from_spec(&dev("/dev/x", LinuxDeviceType::A, 1, 3)).is_err());
        assert!(from_spec(&dev("/dev/x", LinuxDeviceType::C, -1, 3)).is_err());
    }
}

//! The "cgroup" mount type. On a cgroup v2 host it is a cgroup2 mount. On a v1/hybrid host
//! it becomes a tmpfs holding one mount per hierarchy: a fresh cgroup instance when the
//! container has its own cgroup namespace (its root is then the container's cgroup),
//! otherwise a bind of the container's own cgroup directory from the host.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::symlinkat;

use super::error::RootfsError;
use super::mounts::{mount_err, set_readonly, MountEntry, Mounter};
use super::options::MountOptions;
use super::resolve;
use super::syscall::MountApi;
use crate::procinfo::mountinfo::{self, MountInfo};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

fn cg_err(dest: &Path, reason: String) -> RootfsError {
    RootfsError::Cgroup {
        dest: dest.to_path_buf(),
        reason,
    }
}

/// Controllers (and name=) of a v1 hierarchy, from its superblock options.
fn controllers(info: &MountInfo) -> BTreeSet<String> {
    info.super_options
        .iter()
        .filter(|o| {
            !matches!(
                o.as_str(),
                "rw" | "ro" | "xattr" | "noprefix" | "clone_children" | "cpuset_v2_mode"
            ) && !o.starts_with("release_agent=")
        })
        .cloned()
        .collect()
}

/// The calling process's cgroup path per hierarchy key (sorted controller set; "" for v2).
fn own_cgroups(text: &str) -> Vec<(BTreeSet<String>, PathBuf)> {
    crate::procinfo::parse_cgroup(text)
        .into_iter()
        .map(|e| (e.controllers.into_iter().collect(), e.path))
        .collect()
}

/// One hierarchy to expose in the container.
#[derive(Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// Directory name under the cgroup mount ("cpu", "cpu,cpuacct", "systemd").
    pub name: String,
    pub fstype: String,
    /// Data for a fresh mount ("cpu", "name=systemd").
    pub data: String,
    /// Host directory of the container's own cgroup in this hierarchy.
    pub host_dir: PathBuf,
}

/// The v1/hybrid hierarchies mounted directly under /sys/fs/cgroup.
pub fn hierarchies(mounts: &[MountInfo], self_cgroup: &str) -> Vec<Hierarchy> {
    let own = own_cgroups(self_cgroup);
    mounts
        .iter()
        .filter(|m| m.mount_point.parent() == Some(Path::new(CGROUP_ROOT)))
        // As runc: on a hybrid host only the v1 hierarchies are exposed.
        .filter(|m| m.fstype == "cgroup")
        .filter_map(|m| {
            let name = m.mount_point.file_name()?.to_string_lossy().into_owned();
            let ctrls = controllers(m);
            let words: Vec<&str> = m
                .super_options
                .iter()
                .map(String::as_str)
                .filter(|o| !matches!(*o, "rw" | "ro"))
                .collect();
            let data = words.join(",");
            let path = own
                .iter()
                .find(|(set, _)| *set == ctrls)
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| PathBuf::from("/"));
            // The host mount may itself be rooted below the hierarchy's root.
            let rel = path.strip_prefix(&m.root).unwrap_or(&path);
            let host_dir = m.mount_point.join(rel.strip_prefix("/").unwrap_or(rel));
            Some(Hierarchy {
                name,
                fstype: m.fstype.clone(),
                data,
                host_dir,
            })
        })
        .collect()
}

pub fn mount_cgroup<M: MountApi>(mnt: &Mounter<'_, M>, e: &MountEntry) -> Result<(), RootfsError> {
    let host_v2 = nix::sys::statfs::statfs(CGROUP_ROOT)
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false);
    if host_v2 {
        return mount_v2(mnt, e);
    }
    let read;
    let info = match mnt.host_mounts {
        Some(info) => info,
        None => {
            read = mountinfo::read_self().map_err(|source| RootfsError::HostInfo {
                path: "/proc/self/mountinfo".into(),
                source,
            })?;
            &read
        }
    };
    let self_cg = crate::procinfo::read_to_string("/proc/self/cgroup").map_err(|source| {
        RootfsError::HostInfo {
            path: "/proc/self/cgroup".into(),
            source,
        }
    })?;
    let list = hierarchies(info, &self_cg);
    if list.is_empty() {
        return Err(cg_err(
            &e.dest,
            "no cgroup hierarchy found under /sys/fs/cgroup".into(),
        ));
    }

    // The tmpfs holding the hierarchies stays writable until the subdirectories exist.
    let mut tmpfs_opts = MountOptions {
        flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        data: vec!["mode=755".into()],
        ..Default::default()
    };
    tmpfs_opts.propagation = e.opts.propagation.clone();
    let tmpfs = MountEntry {
        dest: e.dest.clone(),
        fstype: "tmpfs".into(),
        source: Some("tmpfs".into()),
        opts: tmpfs_opts,
    };
    mnt.mount(&tmpfs)?;
    // The root of that tmpfs, resolved once: it is empty and no other process has seen it,
    // so the hierarchies' directories are made and mounted on by name from this fd.
    let dir = resolve::open_path(mnt.root, &e.dest).map_err(|errno| RootfsError::Resolve {
        path: e.dest.clone(),
        errno,
    })?;

    let mut hier_opts = e.opts.clone();
    hier_opts.data.clear();
    hier_opts.propagation.clear();
    for h in &list {
        let dest = e.dest.join(&h.name);
        if mnt.cgroup_ns {
            let mut opts = hier_opts.clone();
            if !h.data.is_empty() {
                opts.data = vec![h.data.clone()];
            }
            mnt.mount_fs(&MountEntry {
                dest,
                fstype: h.fstype.clone(),
                source: Some(h.fstype.clone().into()),
                opts,
            })?;
        } else {
            let mut opts = hier_opts.clone();
            opts.flags |= MsFlags::MS_BIND;
            bind_hierarchy(
                mnt,
                dir.as_fd(),
                h,
                &MountEntry {
                    dest,
                    fstype: "bind".into(),
                    source: Some(h.host_dir.clone()),
                    opts,
                },
            )?;
        }
        // Co-mounted controllers ("cpu,cpuacct") are also reachable by each name.
        if h.name.contains(',') {
            for part in h.name.split(',') {
                if part == h.name || part.starts_with("name=") {
                    continue;
                }
                match symlinkat(h.name.as_str(), dir.as_fd(), part) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(errno) => {
                        return Err(RootfsError::Symlink {
                            path: e.dest.join(part),
                            target: h.name.clone().into(),
                            errno,
                        })
                    }
                }
            }
        }
    }
    if e.opts.flags.contains(MsFlags::MS_RDONLY) {
        set_readonly(mnt.api, dir.as_fd(), &e.dest)?;
    }
    Ok(())
}

/// The bind of one hierarchy's host directory (`entry.source`) onto a new directory
/// `h.name` of the cgroup tmpfs `dir`: cloned straight from its host path, given the
/// mount's flags while still detached, attached by name (a directory made here, in a
/// file system only this process has seen, so no lookup inside the rootfs is needed).
fn bind_hierarchy<M: MountApi>(
    mnt: &Mounter<'_, M>,
    dir: BorrowedFd<'_>,
    h: &Hierarchy,
    entry: &MountEntry,
) -> Result<(), RootfsError> {
    let tree = mnt
        .api
        .clone_path(&h.host_dir, entry.opts.is_recursive_bind())
        .map_err(|errno| RootfsError::Source {
            dest: entry.dest.clone(),
            src: h.host_dir.clone(),
            errno,
        })?;
    mnt.set_attrs(entry, tree.as_fd())?;
    let name = std::ffi::OsStr::new(&h.name);
    match mkdirat(dir, name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(errno) => {
            return Err(RootfsError::Resolve {
                path: entry.dest.clone(),
                errno,
            })
        }
    }
    mnt.api
        .attach_at(tree.as_fd(), dir, name)
        .map_err(|errno| mount_err(entry, errno))
}

fn mount_v2<M: MountApi>(mnt: &Mounter<'_, M>, e: &MountEntry) -> Result<(), RootfsError> {
    let entry = MountEntry {
        dest: e.dest.clone(),
        fstype: "cgroup2".into(),
        source: Some("cgroup2".into()),
        opts: e.opts.clone(),
    };
    match mnt.mount(&entry) {
        Ok(()) => Ok(()),
        // As runc: when cgroup2 cannot be mounted (no cgroup namespace in a user
        // namespace), bind the host's hierarchy instead.
        Err(RootfsError::Mount {
            errno: Errno::EPERM | Errno::EBUSY,
            ..
        }) => {
            let mut opts = e.opts.clone();
            opts.flags |= MsFlags::MS_BIND | MsFlags::MS_REC;
            opts.data.clear();
            mnt.mount(&MountEntry {
                dest: e.dest.clone(),
                fstype: "bind".into(),
                source: Some(CGROUP_ROOT.into()),
                opts,
            })
        }
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::syscall::mock::Recorder;

    #[test]
    fn hierarchy_bind_is_cloned_flagged_then_attached_by_name() {
        let rootfs = tempfile::tempdir().expect("tempdir");
        let open = |p: &Path| {
            nix::fcntl::open(
                p,
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .expect("open")
        };
        let root = open(rootfs.path());
        std::fs::create_dir(rootfs.path().join("cg")).expect("mkdir");
        let dir = open(&rootfs.path().join("cg"));
        let api = Recorder::default();
        let mnt = Mounter {
            api: &api,
            root: root.as_fd(),
            rootfs: rootfs.path(),
            bundle: rootfs.path(),
            user_ns: false,
            cgroup_ns: false,
            mount_label: None,
            host_mounts: None,
        };
        let h = Hierarchy {
            name: "cpu,cpuacct".into(),
            fstype: "cgroup".into(),
            data: "cpu,cpuacct".into(),
            host_dir: "/sys/fs/cgroup/cpu,cpuacct/c1".into(),
        };
        let words = ["bind", "nosuid", "noexec", "nodev", "ro"].map(String::from);
        let entry = MountEntry {
            dest: "/sys/fs/cgroup/cpu,cpuacct".into(),
            fstype: "bind".into(),
            source: Some(h.host_dir.clone()),
            opts: crate::rootfs::options::parse(&words).expect("options"),
        };
        bind_hierarchy(&mnt, dir.as_fd(), &h, &entry).expect("bind");
        assert_eq!(
            *api.calls.borrow(),
            vec![
                "clone_path /sys/fs/cgroup/cpu,cpuacct/c1 recursive=false".to_string(),
                "setattr recursive=false set=0xf clr=0x0 propagation=MsFlags(0x0)".into(),
                "attach_at cpu,cpuacct".into(),
            ]
        );
        assert!(rootfs.path().join("cg/cpu,cpuacct").is_dir());
        // A directory already there (a retried mount) is mounted on, not refused.
        bind_hierarchy(&mnt, dir.as_fd(), &h, &entry).expect("again");
    }

    #[test]
    fn hybrid_hierarchies() {
        let mi = mountinfo::parse(
            "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
             32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
             35 31 0:32 /outer /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             42 27 0:39 / /mnt/cg rw - cgroup cgroup rw,pids\n",
        );
        let own = "9:name=systemd:/a\n4:memory:/outer/c1\n2:cpu,cpuacct:/c1\n0::/u1\n";
        let h = hierarchies(&mi, own);
        assert_eq!(
            h,
            vec![
                Hierarchy {
                    name: "cpu,cpuacct".into(),
                    fstype: "cgroup".into(),
                    data: "cpu,cpuacct".into(),
                    host_dir: "/sys/fs/cgroup/cpu,cpuacct/c1".into()
                },
                Hierarchy {
                    name: "systemd".into(),
                    fstype: "cgroup".into(),
                    data: "xattr,name=systemd".into(),
                    host_dir: "/sys/fs/cgroup/systemd/a".into()
                },
                Hierarchy {
                    name: "memory".into(),
                    fstype: "cgroup".into(),
                    data: "memory".into(),
                    host_dir: "/sys/fs/cgroup/memory/c1".into()
                },
            ]
        );
    }
}

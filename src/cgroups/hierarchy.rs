//! Discovery of the cgroup hierarchies of the host (from mountinfo) and of the caller's own
//! cgroup (from /proc/self/cgroup), and resolution of a container's cgroup directories.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::{CgroupError, CgroupMode};

/// v1 controllers a container is placed in. `misc` and `debug` are left out as runc does.
pub const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "perf_event",
    "blkio",
    "hugetlb",
    "pids",
    "rdma",
    "name=systemd",
];

/// One mounted hierarchy: where it is mounted and which part of the hierarchy the mount exposes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: PathBuf,
    /// The `root` field of mountinfo: the hierarchy path visible at `mount_point`.
    pub root: PathBuf,
}

/// The cgroup mounts of a host plus the caller's own cgroup in each hierarchy.
#[derive(Clone, Debug, Default)]
pub struct Hierarchies {
    /// v1 controller name (or `name=systemd`) → its mount.
    pub v1: BTreeMap<String, Mount>,
    pub unified: Option<Mount>,
    /// v1 controller name → own cgroup path; `""` → own cgroup in the unified hierarchy.
    pub own: BTreeMap<String, PathBuf>,
}

impl Hierarchies {
    /// Build from the text of /proc/self/mountinfo and /proc/self/cgroup.
    pub fn parse(mountinfo: &str, proc_cgroup: &str) -> Self {
        let mut h = Hierarchies::default();
        for m in crate::procinfo::mountinfo::parse(mountinfo) {
            let mount = Mount {
                mount_point: m.mount_point,
                root: m.root,
            };
            match m.fstype.as_str() {
                "cgroup2" if h.unified.is_none() => h.unified = Some(mount),
                "cgroup" => {
                    for opt in &m.super_options {
                        if V1_CONTROLLERS.contains(&opt.as_str()) {
                            h.v1.entry(opt.clone()).or_insert_with(|| mount.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        for e in crate::procinfo::parse_cgroup(proc_cgroup) {
            if e.controllers.is_empty() {
                h.own.insert(String::new(), e.path);
            } else {
                for c in e.controllers {
                    h.own.insert(c, e.path.clone());
                }
            }
        }
        h
    }

    /// Read the live host's hierarchies.
    pub fn from_host() -> Result<Self, CgroupError> {
        let mountinfo = read_proc("/proc/self/mountinfo")?;
        let proc_cgroup = read_proc("/proc/self/cgroup")?;
        Ok(Self::parse(&mountinfo, &proc_cgroup))
    }

    /// v2 when only cgroup2 is mounted; v1 when real v1 controllers are mounted (hybrid when a
    /// cgroup2 hierarchy is mounted next to them).
    pub fn mode(&self) -> Result<CgroupMode, CgroupError> {
        let real_v1 = self.v1.keys().any(|k| !k.starts_with("name="));
        match (real_v1, &self.unified) {
            (true, Some(_)) => Ok(CgroupMode::Hybrid),
            (true, None) => Ok(CgroupMode::V1),
            (false, Some(_)) => Ok(CgroupMode::V2),
            (false, None) => Err(CgroupError::NoCgroupMounts),
        }
    }

    /// The directory of the cgroup `inner` in the hierarchy mounted at `mount`, for the
    /// controller key `key` (`""` = unified). Relative paths are below the caller's own
    /// cgroup of that hierarchy, as runc does — on a pure v2 host below its parent, as runc
    /// does there too: the caller's own cgroup holds the caller, and a cgroup with processes
    /// can neither enable domain controllers for a child nor (once threaded controllers are
    /// enabled in it) have processes in a child at all.
    fn resolve(&self, key: &str, mount: &Mount, inner: &Path) -> PathBuf {
        if inner.is_absolute() {
            return join_clean(&mount.mount_point, inner);
        }
        let mut own = self
            .own
            .get(key)
            .cloned()
            .unwrap_or_else(|| PathBuf::from("/"));
        if key.is_empty() && self.v1.is_empty() {
            if let Some(parent) = own.parent() {
                own = parent.to_path_buf();
            }
        }
        // The mount may expose only a subtree (cgroup namespaces, bind mounts): the own path
        // is then relative to the mount root.
        let rel = own.strip_prefix(&mount.root).unwrap_or(&own);
        join_clean(&join_clean(&mount.mount_point, rel), inner)
    }

    /// Every directory of the container cgroup, keyed like runc's `cgroup_paths`
    /// (v1 controller names, `""` for the unified hierarchy).
    pub fn container_dirs(
        &self,
        inner: &Path,
    ) -> Result<BTreeMap<String, super::CgroupDir>, CgroupError> {
        let mut dirs = BTreeMap::new();
        let mode = self.mode()?;
        if mode != CgroupMode::V2 {
            for (key, mount) in &self.v1 {
                dirs.insert(
                    key.clone(),
                    super::CgroupDir {
                        mount: mount.mount_point.clone(),
                        path: self.resolve(key, mount, inner),
                    },
                );
            }
        }
        if let Some(mount) = &self.unified {
            dirs.insert(
                String::new(),
                super::CgroupDir {
                    mount: mount.mount_point.clone(),
                    path: self.resolve("", mount, inner),
                },
            );
        }
        Ok(dirs)
    }
}

fn read_proc(path: &str) -> Result<String, CgroupError> {
    crate::procinfo::read_to_string(path).map_err(|source| CgroupError::Read {
        path: PathBuf::from(path),
        source,
    })
}

/// Join a normalised relative-or-absolute `tail` below `base`.
fn join_clean(base: &Path, tail: &Path) -> PathBuf {
    let mut out = base.to_path_buf();
    for c in tail.components() {
        if let Component::Normal(n) = c {
            out.push(n);
        }
    }
    out
}

/// Normalise a cgroupsPath: `.` and duplicate slashes are dropped, `..` is resolved, and a
/// `..` that would climb above the start of the path is refused (runc silently clamps it;
/// refusing makes a spec that tries to escape its parent visible).
pub fn clean_cgroups_path(path: &str) -> Result<PathBuf, CgroupError> {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(CgroupError::PathEscapes {
                        path: path.to_string(),
                    });
                }
            }
            other => parts.push(other),
        }
    }
    let mut out = PathBuf::from(if absolute { "/" } else { "" });
    for p in parts {
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 /sub /sys/fs/cgroup/pids\\040x rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const PROC_CGROUP: &str = "\
9:name=systemd:/
8:pids:/sub/own
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/
";

    #[test]
    fn parses_hybrid_layout() {
        let h = Hierarchies::parse(HYBRID_MOUNTINFO, PROC_CGROUP);
        assert_eq!(h.mode().unwrap(), CgroupMode::Hybrid);
        assert_eq!(
            h.v1.keys().collect::<Vec<_>>(),
            ["cpu", "cpuacct", "memory", "name=systemd", "pids"]
        );
        assert_eq!(
            h.v1["pids"].mount_point,
            PathBuf::from("/sys/fs/cgroup/pids x")
        );
        let dirs = h.container_dirs(Path::new("ctr")).unwrap();
        assert_eq!(
            dirs["memory"].path,
            PathBuf::from("/sys/fs/cgroup/memory/process_api/abc/ctr")
        );
        // Own cgroup /sub/own seen through a mount of /sub.
        assert_eq!(
            dirs["pids"].path,
            PathBuf::from("/sys/fs/cgroup/pids x/own/ctr")
        );
        assert_eq!(dirs[""].path, PathBuf::from("/sys/fs/cgroup/unified/ctr"));
        let abs = h.container_dirs(Path::new("/a/b")).unwrap();
        assert_eq!(
            abs["memory"].path,
            PathBuf::from("/sys/fs/cgroup/memory/a/b")
        );
    }

    #[test]
    fn v2_only_and_none() {
        let h = Hierarchies::parse(
            "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
            "0::/user.slice/x\n",
        );
        assert_eq!(h.mode().unwrap(), CgroupMode::V2);
        let dirs = h.container_dirs(Path::new("c1")).unwrap();
        assert_eq!(dirs.len(), 1);
        // Below the parent of our own cgroup, which holds us (runc's rule on v2).
        assert_eq!(dirs[""].path, PathBuf::from("/sys/fs/cgroup/user.slice/c1"));
        let dirs = h.container_dirs(Path::new("/abs/c1")).unwrap();
        assert_eq!(dirs[""].path, PathBuf::from("/sys/fs/cgroup/abs/c1"));
        let at_root = Hierarchies::parse(
            "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
            "0::/\n",
        );
        let dirs = at_root.container_dirs(Path::new("c1")).unwrap();
        assert_eq!(dirs[""].path, PathBuf::from("/sys/fs/cgroup/c1"));
        let none = Hierarchies::parse("1 0 8:1 / / rw - ext4 /dev/sda rw\n", "");
        assert!(matches!(none.mode(), Err(CgroupError::NoCgroupMounts)));
    }

    #[test]
    fn cleans_and_refuses_escapes() {
        assert_eq!(
            clean_cgroups_path("/a//./b/../c").unwrap(),
            PathBuf::from("/a/c")
        );
        assert_eq!(clean_cgroups_path("a/b/..").unwrap(), PathBuf::from("a"));
        assert!(matches!(
            clean_cgroups_path("/a/../../etc"),
            Err(CgroupError::PathEscapes { .. })
        ));
        assert!(matches!(
            clean_cgroups_path("../x"),
            Err(CgroupError::PathEscapes { .. })
        ));
    }
}

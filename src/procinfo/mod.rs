//! Facts the runtime reads from /proc, parsed in one place: the mount table
//! (`mountinfo`), cgroup membership (/proc/self/cgroup) and the highest capability the
//! kernel knows (cap_last_cap). (Writes through a private procfs are `rootfs::procfs`.)

pub mod mountinfo;

use std::path::PathBuf;

/// One line of /proc/PID/cgroup: a hierarchy and the process's cgroup in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupEntry {
    /// The hierarchy's controllers (and `name=` entries); empty for the unified hierarchy.
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

/// Parses the text of /proc/PID/cgroup (`id:controllers:path` lines); malformed lines are
/// skipped.
pub fn parse_cgroup(text: &str) -> Vec<CgroupEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let _id = f.next()?;
            let ctrls = f.next()?;
            let path = f.next()?;
            Some(CgroupEntry {
                controllers: ctrls
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: PathBuf::from(path),
            })
        })
        .collect()
}

/// The highest capability the running kernel knows (40, CAP_CHECKPOINT_RESTORE, when
/// /proc/sys/kernel/cap_last_cap cannot be read).
pub fn cap_last_cap() -> u8 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_lines_v1_v2_and_garbage() {
        let e = parse_cgroup("12:cpu,cpuacct:/a/b\n1:name=systemd:/c\n0::/d:e\nbad\n");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(e[0].path, PathBuf::from("/a/b"));
        assert_eq!(e[1].controllers, ["name=systemd"]);
        assert!(e[2].controllers.is_empty());
        assert_eq!(e[2].path, PathBuf::from("/d:e"));
    }

    #[test]
    fn cap_last_cap_is_the_kernels() {
        let want: u8 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(cap_last_cap(), want);
    }
}

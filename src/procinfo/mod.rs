//! Facts the runtime reads from /proc, parsed in one place: the mount table
//! (`mountinfo`), cgroup membership (/proc/self/cgroup) and the highest capability the
//! kernel knows (cap_last_cap). (Writes through a private procfs are `rootfs::procfs`.)

pub mod mountinfo;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The whole of a small file (procfs, cgroupfs, a config or state file): one open, reads
/// into a page-sized buffer that doubles as needed, one close. `std::fs::read` first
/// stats the file for its size, which procfs and cgroupfs report as 0, and then reads
/// them 32, 32, 64, 128... bytes at a time: a dozen syscalls for a mountinfo.
pub fn read(path: impl AsRef<Path>) -> std::io::Result<Vec<u8>> {
    read_all(std::fs::File::open(path)?)
}

/// The rest of an open file, read as [`read`] does (no stat for a size hint).
pub fn read_all(mut file: std::fs::File) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// [`read`] as UTF-8 text (`InvalidData` if it is not).
pub fn read_to_string(path: impl AsRef<Path>) -> std::io::Result<String> {
    String::from_utf8(read(path)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The fields of a /proc/PID/stat text from field 3 (the state) on. The command name before
/// them (field 2) may hold spaces and parentheses: they start after the last ')'.
pub fn stat_fields(stat: &str) -> Option<std::str::SplitAsciiWhitespace<'_>> {
    Some(stat.get(stat.rfind(')')? + 1..)?.split_ascii_whitespace())
}

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
/// /proc/sys/kernel/cap_last_cap cannot be read or is not procfs's).
/// Read once per process (and inherited by its forks).
pub fn cap_last_cap() -> u8 {
    static LAST: OnceLock<u8> = OnceLock::new();
    *LAST.get_or_init(|| {
        crate::rootfs::procfs::runtime_sysctl("kernel/cap_last_cap")
            .and_then(|n| u8::try_from(n).ok())
            .unwrap_or(40)
    })
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
    fn read_gets_whole_files_of_any_size() {
        let tmp = tempfile::tempdir().unwrap();
        for size in [0usize, 1, 4095, 4096, 4097, 100_000] {
            let data: Vec<u8> = (0..size).map(|i| u8::try_from(i % 251).unwrap()).collect();
            let f = tmp.path().join(format!("f{size}"));
            std::fs::write(&f, &data).unwrap();
            assert_eq!(read(&f).unwrap(), data, "size {size}");
        }
        let maps = read_to_string("/proc/self/mountinfo").unwrap();
        assert!(maps.lines().any(|l| l.contains(" / / ")), "{maps}");
        assert!(read(tmp.path().join("missing")).is_err());
        std::fs::write(tmp.path().join("bad"), [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_to_string(tmp.path().join("bad")).unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
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

//! A minimal /proc/self/mountinfo parser (proc(5)), for finding cgroup hierarchies and the
//! mount that holds the rootfs.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// Root of the mount within its filesystem.
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// Optional fields, e.g. "shared:1", "master:2".
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    pub super_options: Vec<String>,
}

impl MountInfo {
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|f| f.starts_with("shared:"))
    }
}

/// Undoes the octal escaping (\040 for space etc.) of mountinfo fields.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            // \ooo escapes a byte: the kernel writes at most \377.
            out.push(u8::try_from(v).unwrap_or(u8::MAX));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountInfo> {
    let mut fields = line.split(' ');
    let _id = fields.next()?;
    let _parent = fields.next()?;
    let _dev = fields.next()?;
    let root = PathBuf::from(unescape(fields.next()?));
    let mount_point = PathBuf::from(unescape(fields.next()?));
    let _opts = fields.next()?;
    let mut optional = Vec::new();
    loop {
        let f = fields.next()?;
        if f == "-" {
            break;
        }
        optional.push(f.to_string());
    }
    let fstype = fields.next()?.to_string();
    let source = unescape(fields.next()?);
    let super_options = fields.next()?.split(',').map(str::to_string).collect();
    Some(MountInfo {
        root,
        mount_point,
        optional,
        fstype,
        source,
        super_options,
    })
}

/// Reads the calling process's mount table.
pub fn read_self() -> std::io::Result<Vec<MountInfo>> {
    Ok(parse(&crate::procinfo::read_to_string(
        "/proc/self/mountinfo",
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        let text = "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n\
                    32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                    50 27 0:50 /a\\040b /mnt/x\\040y rw master:3 - tmpfs tmpfs rw\n\
                    garbage\n";
        let m = parse(text);
        assert_eq!(m.len(), 3);
        assert!(m[0].is_shared());
        assert_eq!(m[0].fstype, "ext4");
        assert_eq!(m[1].super_options, vec!["rw", "cpu"]);
        assert!(!m[1].is_shared());
        assert_eq!(m[2].root, PathBuf::from("/a b"));
        assert_eq!(m[2].mount_point, PathBuf::from("/mnt/x y"));
        assert_eq!(m[2].optional, vec!["master:3"]);
    }
}

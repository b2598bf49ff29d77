//! Reading and writing cgroupfs control files with errors that name the file.

use std::io::Write;
use std::path::Path;

use super::CgroupError;

/// Write `value` to `dir/file` in one write(2), as the kernel parses each write separately.
/// The file must exist: a missing control file means the controller or the feature is
/// absent, which the caller must hear about.
pub fn write_file(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    #[cfg(test)]
    record_write(&path, value);
    let res = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|source| CgroupError::Write {
        path,
        value: value.to_string(),
        source,
    })
}

/// Write each of `values` to `dir/file` in a write(2) of its own (the kernel parses each
/// write separately), through one open of the file: for controls that take one entry per
/// write, such as v1's devices.allow.
pub fn write_each(dir: &Path, file: &str, values: &[String]) -> Result<(), CgroupError> {
    let path = dir.join(file);
    let err = |value: &str, source| CgroupError::Write {
        path: path.clone(),
        value: value.to_string(),
        source,
    };
    let Some(first) = values.first() else {
        return Ok(());
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| err(first, e))?;
    for value in values {
        #[cfg(test)]
        record_write(&path, value);
        f.write_all(value.as_bytes()).map_err(|e| err(value, e))?;
    }
    Ok(())
}

/// The content of `dir/file` without surrounding whitespace.
pub fn read_file(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    match crate::procinfo::read_to_string(&path) {
        Ok(s) => Ok(s.trim().to_string()),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

/// `dir/file` parsed as an unsigned number (`max` reads as u64::MAX).
pub fn read_u64(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    let s = read_file(dir, file)?;
    parse_u64(&s).ok_or_else(|| CgroupError::Parse {
        path: dir.join(file),
        content: s,
    })
}

pub fn parse_u64(s: &str) -> Option<u64> {
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// The value of `key` in a "key value" per line file (memory.stat, memory.events, ...).
pub fn keyed_value(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| parse_u64(v.trim())).flatten()
    })
}

/// Whether a write error is `errno`.
pub fn is_errno(err: &CgroupError, errno: i32) -> bool {
    match err {
        CgroupError::Write { source, .. } | CgroupError::Read { source, .. } => {
            source.raw_os_error() == Some(errno)
        }
        _ => false,
    }
}

#[cfg(test)]
thread_local! {
    static WRITES: std::cell::RefCell<Vec<(std::path::PathBuf, String)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
fn record_write(path: &Path, value: &str) {
    WRITES.with(|w| w.borrow_mut().push((path.to_path_buf(), value.to_string())));
}

/// The writes made by this test thread so far, emptied.
#[cfg(test)]
pub fn take_writes() -> Vec<(std::path::PathBuf, String)> {
    WRITES.with(|w| std::mem::take(&mut *w.borrow_mut()))
}

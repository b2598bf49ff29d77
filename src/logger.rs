//! Runtime log in runc's formats: logrus text lines or one JSON object per line.
//!
//! containerd reads the last JSON line of `--log` to report a failure, Podman reads the file
//! whole, so every line is flushed as it is written.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("unknown log format {0:?} (want text or json)")]
    Format(String),
    #[error("open log file {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
}

impl std::str::FromStr for Format {
    type Err = LogError;
    fn from_str(s: &str) -> Result<Self, LogError> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(LogError::Format(other.to_string())),
        }
    }
}

struct Sink {
    file: Option<File>,
    format: Format,
    min: Level,
}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Set up the process-wide logger. Without a file, lines go to stderr.
pub fn init(path: Option<&Path>, format: Format, debug: bool) -> Result<(), LogError> {
    let file = match path {
        Some(p) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .custom_flags(libc::O_CLOEXEC)
                .mode(0o644)
                .open(p)
                .map_err(|source| LogError::Open {
                    path: p.display().to_string(),
                    source,
                })?,
        ),
        None => None,
    };
    let min = if debug { Level::Debug } else { Level::Info };
    *SINK.lock().unwrap_or_else(|e| e.into_inner()) = Some(Sink { file, format, min });
    Ok(())
}

/// The log file's fd, for processes that close everything else.
pub fn fd() -> Option<std::os::fd::RawFd> {
    use std::os::fd::AsRawFd;
    SINK.lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|s| s.file.as_ref().map(|f| f.as_raw_fd()))
}

/// Whether a log file was configured (runc then prints failures plainly on stderr too).
pub fn has_file() -> bool {
    SINK.lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|s| s.file.is_some())
}

pub fn enabled(level: Level) -> bool {
    SINK.lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map_or(level >= Level::Info, |s| level >= s.min)
}

/// Write one log line. Never fails: a runtime must not die because its log is unwritable.
pub fn log(level: Level, msg: &str) {
    let mut guard = SINK.lock().unwrap_or_else(|e| e.into_inner());
    let (format, min) = guard
        .as_ref()
        .map_or((Format::Text, Level::Info), |s| (s.format, s.min));
    if level < min {
        return;
    }
    let line = format_line(format, level, msg, &rfc3339_now(false));
    match guard.as_mut().and_then(|s| s.file.as_mut()) {
        Some(f) => {
            let _ = f.write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

fn format_line(format: Format, level: Level, msg: &str, time: &str) -> String {
    match format {
        Format::Json => {
            let v = serde_json::json!({"level": level.as_str(), "msg": msg, "time": time});
            format!("{v}\n")
        }
        Format::Text => format!(
            "time={:?} level={} msg={}\n",
            time,
            level.as_str(),
            serde_json::Value::String(msg.to_string())
        ),
    }
}

#[macro_export]
macro_rules! debug { ($($t:tt)*) => { if $crate::logger::enabled($crate::logger::Level::Debug) { $crate::logger::log($crate::logger::Level::Debug, &format!($($t)*)) } } }
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::logger::log($crate::logger::Level::Info, &format!($($t)*)) } }
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::logger::log($crate::logger::Level::Warn, &format!($($t)*)) } }
#[macro_export]
macro_rules! error { ($($t:tt)*) => { $crate::logger::log($crate::logger::Level::Error, &format!($($t)*)) } }

/// UTC time as RFC 3339, with nanoseconds when `nanos` (the OCI state's `created` field),
/// written as Go's RFC3339Nano writes them (and runc's state shows them): trailing zeros
/// of the fraction dropped, and the point with them when the fraction is zero.
pub fn rfc3339_now(nanos: bool) -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(
        d.as_secs() as i64,
        if nanos { Some(d.subsec_nanos()) } else { None },
    )
}

pub fn rfc3339(secs: i64, nanos: Option<u32>) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let frac = match nanos {
        Some(n) if n > 0 => format!(".{n:09}").trim_end_matches('0').to_string(),
        _ => String::new(),
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// Howard Hinnant's days-to-civil algorithm: proleptic Gregorian calendar from the epoch.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Day 1..=31 and month 1..=12 by the algorithm's construction.
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0, None), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400, None), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339(1_700_000_000, Some(5)),
            "2023-11-14T22:13:20.000000005Z"
        );
        assert_eq!(
            rfc3339(1_700_000_000, Some(123_450_000)),
            "2023-11-14T22:13:20.12345Z"
        );
        assert_eq!(rfc3339(1_700_000_000, Some(0)), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn json_line_has_level_msg_time() {
        let l = format_line(Format::Json, Level::Error, "boom \"x\"", "T");
        let v: serde_json::Value = serde_json::from_str(l.trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert_eq!(v["time"], "T");
    }

    #[test]
    fn text_line_is_logrus_shaped() {
        let l = format_line(Format::Text, Level::Warn, "a b", "T");
        assert_eq!(l, "time=\"T\" level=warning msg=\"a b\"\n");
    }
}

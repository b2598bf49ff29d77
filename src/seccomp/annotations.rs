//! Per-container seccomp switches carried in OCI annotations.

use super::builtin_filters::{builtin_syscalls, BuiltinFilters};
use super::trace_file::TraceFile;
use super::SeccompError;
use crate::annotation::{one_of, under};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const ANNOTATION_PREFIX: &str = "run.nucleus.seccomp.";
pub const MODE: &str = "run.nucleus.seccomp.mode";
pub const TRACE_FILE: &str = "run.nucleus.seccomp.trace-file";
pub const LOG_DENIED: &str = "run.nucleus.seccomp.log-denied";
pub const BUILTIN_FILTERS: &str = "run.nucleus.seccomp.builtin-filters";

/// Default trace file name, relative to the bundle.
pub const DEFAULT_TRACE_FILE: &str = "seccomp-trace.ndjson";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// The profile is enforced.
    #[default]
    Enforce,
    /// Every syscall runs; each distinct one is recorded to the trace file.
    Trace,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Annotations {
    pub mode: Mode,
    /// `run.nucleus.seccomp.trace-file` if given; else [`DEFAULT_TRACE_FILE`] in the bundle.
    pub trace_file: Option<PathBuf>,
    pub log_denied: bool,
    pub builtin: BuiltinFilters,
}

fn bad(annotation: &str, value: &str, expected: &str) -> SeccompError {
    SeccompError::BadAnnotation {
        annotation: annotation.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

impl Annotations {
    /// Where trace mode writes: the annotation's path beneath the bundle (relative, or
    /// absolute inside the bundle), else [`DEFAULT_TRACE_FILE`] in the bundle. Anything
    /// leading out of the bundle, or an existing file that is not a regular file, is refused.
    pub fn trace_file(&self, bundle: &Path) -> Result<TraceFile, SeccompError> {
        let p = self
            .trace_file
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_TRACE_FILE));
        TraceFile::beneath(bundle, p)
    }

    pub fn parse(annotations: &HashMap<String, String>) -> Result<Self, SeccompError> {
        let mut out = Annotations::default();
        for (key, value) in under(annotations, ANNOTATION_PREFIX) {
            match key.as_str() {
                MODE => {
                    let modes = [("enforce", Mode::Enforce), ("trace", Mode::Trace)];
                    out.mode = one_of(value, &modes).map_err(|e| bad(key, value, &e))?;
                }
                TRACE_FILE => {
                    if value.is_empty() {
                        return Err(bad(key, value, "a file path"));
                    }
                    out.trace_file = Some(PathBuf::from(value));
                }
                LOG_DENIED => {
                    let flags = [("true", true), ("false", false)];
                    out.log_denied = one_of(value, &flags).map_err(|e| bad(key, value, &e))?;
                }
                BUILTIN_FILTERS => {
                    out.builtin = BuiltinFilters::parse(value).map_err(|_| {
                        let names: Vec<&str> = builtin_syscalls().collect();
                        let expected = format!(
                            "default, hardened, strict, none or a comma list of {}",
                            names.join(", ")
                        );
                        bad(key, value, &expected)
                    })?
                }
                _ => {
                    return Err(SeccompError::UnknownAnnotation(key.clone()));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::map;

    #[test]
    fn defaults_and_values() {
        let a = Annotations::parse(&map(&[("org.other", "x")])).unwrap();
        assert_eq!(a, Annotations::default());
        let a = Annotations::parse(&map(&[
            (MODE, "trace"),
            (TRACE_FILE, "/tmp/t.ndjson"),
            (LOG_DENIED, "true"),
            (BUILTIN_FILTERS, "ioctl, mprotect"),
        ]))
        .unwrap();
        assert_eq!(a.mode, Mode::Trace);
        assert!(a.log_denied);
        assert!(a.builtin.includes("ioctl") && !a.builtin.includes("clone"));
        let a = Annotations::parse(&map(&[(BUILTIN_FILTERS, "none")])).unwrap();
        assert_eq!(a.builtin, BuiltinFilters::None);
        let a = Annotations::parse(&map(&[(BUILTIN_FILTERS, "hardened")])).unwrap();
        assert_eq!(a.builtin, BuiltinFilters::Hardened);
    }

    #[test]
    fn errors_name_annotation_and_value() {
        let e = Annotations::parse(&map(&[(MODE, "audit")])).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(MODE) && msg.contains("audit"), "{msg}");
        let e = Annotations::parse(&map(&[(BUILTIN_FILTERS, "ioctl,open")])).unwrap_err();
        assert!(e.to_string().contains("ioctl,open"));
        assert!(
            e.to_string().contains("default, hardened, strict, none"),
            "{e}"
        );
        let e = Annotations::parse(&map(&[(LOG_DENIED, "yes")])).unwrap_err();
        assert!(e.to_string().contains("yes"));
        let e = Annotations::parse(&map(&[("run.nucleus.seccomp.mod", "x")])).unwrap_err();
        assert!(e.to_string().contains("run.nucleus.seccomp.mod"));
    }
}

//! OCI lifecycle hooks: each runs with the container state JSON on stdin, its own args and
//! env, and an optional timeout.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Spec};

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook {path}: start: {source}")]
    Spawn {
        kind: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{kind} hook {path}: {status}")]
    Failed {
        kind: &'static str,
        path: String,
        status: String,
    },
    #[error("{kind} hook {path}: timed out after {secs}s")]
    Timeout {
        kind: &'static str,
        path: String,
        secs: i64,
    },
    #[error("{kind} hook path {path:?} must be absolute")]
    RelativePath { kind: &'static str, path: String },
    #[error("{kind} hook {path}: invalid timeout {secs} (must be > 0)")]
    BadTimeout {
        kind: &'static str,
        path: String,
        secs: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }
}

pub fn of(spec: &Spec, kind: Kind) -> Vec<Hook> {
    let Some(h) = spec.hooks() else {
        return Vec::new();
    };
    #[allow(deprecated)]
    let list = match kind {
        Kind::Prestart => h.prestart(),
        Kind::CreateRuntime => h.create_runtime(),
        Kind::CreateContainer => h.create_container(),
        Kind::StartContainer => h.start_container(),
        Kind::Poststart => h.poststart(),
        Kind::Poststop => h.poststop(),
    };
    list.clone().unwrap_or_default()
}

/// Check hook timeouts before anything is created, so a bad one fails create cleanly.
pub fn validate(spec: &Spec) -> Result<(), HookError> {
    for kind in [
        Kind::Prestart,
        Kind::CreateRuntime,
        Kind::CreateContainer,
        Kind::StartContainer,
        Kind::Poststart,
        Kind::Poststop,
    ] {
        for h in of(spec, kind) {
            if !h.path().is_absolute() {
                return Err(HookError::RelativePath {
                    kind: kind.name(),
                    path: crate::spec::clip(&h.path().display().to_string()),
                });
            }
            if let Some(secs) = h.timeout() {
                if secs <= 0 {
                    return Err(HookError::BadTimeout {
                        kind: kind.name(),
                        path: h.path().display().to_string(),
                        secs,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Run every hook of `kind` in order; the first failure stops the rest.
pub fn run_all(spec: &Spec, kind: Kind, state_json: &[u8]) -> Result<(), HookError> {
    for h in of(spec, kind) {
        run(&h, kind, state_json)?;
    }
    Ok(())
}

/// Run every hook of `kind`, logging failures as warnings and going on: the spec's rule for
/// poststart and poststop hooks.
pub fn run_all_warn(spec: &Spec, kind: Kind, state_json: &[u8]) {
    for h in of(spec, kind) {
        if let Err(e) = run(&h, kind, state_json) {
            crate::warn!("{e}");
        }
    }
}

pub fn run(h: &Hook, kind: Kind, state_json: &[u8]) -> Result<(), HookError> {
    let path = h.path().display().to_string();
    let mut cmd = Command::new(h.path());
    let args = h.args().clone().unwrap_or_default();
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        kind: kind.name(),
        path: path.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json);
    }
    let deadline = h
        .timeout()
        .map(|s| (s, Instant::now() + Duration::from_secs(s as u64)));
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(source) => {
                return Err(HookError::Spawn {
                    kind: kind.name(),
                    path,
                    source,
                })
            }
        }
        if let Some((secs, at)) = deadline {
            if Instant::now() >= at {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HookError::Timeout {
                    kind: kind.name(),
                    path,
                    secs,
                });
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if status.success() {
        Ok(())
    } else {
        Err(HookError::Failed {
            kind: kind.name(),
            path,
            status: status.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(v: serde_json::Value) -> Hook {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn hook_gets_state_args_and_env() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}; echo \"$0 $FOO\" >> {}", out.display(), out.display())],
            "env": ["FOO=bar"]
        }));
        run(&h, Kind::Prestart, b"{\"id\":\"x\"}").unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(got, "{\"id\":\"x\"}sh bar\n");
    }

    #[test]
    fn failing_and_slow_hooks_are_errors() {
        let h = hook(serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}));
        let e = run(&h, Kind::Poststop, b"").unwrap_err().to_string();
        assert!(
            e.contains("poststop hook /bin/sh") && e.contains('3'),
            "{e}"
        );
        let h = hook(
            serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "sleep 5"], "timeout": 1}),
        );
        let e = run(&h, Kind::Prestart, b"").unwrap_err().to_string();
        assert!(e.contains("timed out after 1s"), "{e}");
    }
}

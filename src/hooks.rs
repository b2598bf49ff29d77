//! OCI lifecycle hooks: each runs with the container state JSON on stdin, its own args and
//! env, and an optional timeout.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks, Spec};

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
    of_hooks(spec.hooks().as_ref(), kind)
}

/// [`of`] from the config's `hooks` alone (what the container's state keeps of its config).
pub fn of_hooks(hooks: Option<&Hooks>, kind: Kind) -> Vec<Hook> {
    let Some(h) = hooks else {
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
pub fn run_all_warn(hooks: Option<&Hooks>, kind: Kind, state_json: &[u8]) {
    for h in of_hooks(hooks, kind) {
        if let Err(e) = run(&h, kind, state_json) {
            crate::warn!("{e}");
        }
    }
}

/// Run one hook. It runs in its own process group: on timeout the whole group (a
/// background child the hook started included) is killed and waited for, so nothing of a
/// timed-out hook outlives the runtime's error. A hook also dies with the runtime.
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
    cmd.stdin(Stdio::piped()).process_group(0);
    let runtime = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the child between fork and exec and only makes
    // async-signal-safe calls (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() != runtime {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        kind: kind.name(),
        path: path.clone(),
        source,
    })?;
    let group = child.id() as libc::pid_t;
    let deadline = h
        .timeout()
        .map(|s| (s, Instant::now() + Duration::from_secs(s as u64)));
    let timed_out = |child: &mut std::process::Child, secs: i64, path: String| {
        kill_group(child, group);
        HookError::Timeout {
            kind: kind.name(),
            path,
            secs,
        }
    };
    if let Some(stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE, or a full pipe): it must
        // not hold the runtime past its timeout either.
        if !write_until(stdin, state_json, deadline.map(|(_, at)| at)) {
            if let Some((secs, _)) = deadline {
                return Err(timed_out(&mut child, secs, path));
            }
        }
    }
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(source) => {
                kill_group(&mut child, group);
                return Err(HookError::Spawn {
                    kind: kind.name(),
                    path,
                    source,
                });
            }
        }
        if let Some((secs, at)) = deadline {
            if Instant::now() >= at {
                return Err(timed_out(&mut child, secs, path));
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

/// SIGKILL the hook's process group, reap the hook, and wait (bounded) until no member of
/// the group is left. A member that made its own session escapes, as with any runtime.
fn kill_group(child: &mut std::process::Child, group: libc::pid_t) {
    // SAFETY: kill(2) on a negative pid signals the process group the hook leads.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let _ = child.kill();
    let _ = child.wait();
    let until = Instant::now() + Duration::from_secs(5);
    // Members reparented away are reaped by their new parent; kill(-g, 0) fails with
    // ESRCH once none is left.
    // SAFETY: signal 0 only checks for existence.
    while unsafe { libc::kill(-group, 0) } == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Write `data` to the hook's stdin, giving up at `deadline` (false) or when the hook
/// closes it (true: not reading its stdin is allowed).
fn write_until(stdin: std::process::ChildStdin, data: &[u8], deadline: Option<Instant>) -> bool {
    use std::os::fd::AsRawFd;
    let fd = stdin.as_raw_fd();
    // SAFETY: fcntl on the pipe fd we own; O_NONBLOCK so a full pipe cannot block us.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let mut stdin = stdin;
    let mut rest = data;
    while !rest.is_empty() {
        match stdin.write(rest) {
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let ms = match deadline {
                    None => -1,
                    Some(at) => {
                        let left = at.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return false;
                        }
                        libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX)
                    }
                };
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut pfd, 1, ms) };
            }
            Err(_) => return true,
        }
    }
    true
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

    /// Live processes whose argv is exactly `sleep <arg>`.
    fn sleepers(arg: &str) -> Vec<String> {
        let want = format!("sleep\0{arg}\0");
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == want.as_bytes())
                    && std::fs::read_to_string(e.path().join("stat"))
                        .is_ok_and(|s| !s.contains(") Z "))
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn timed_out_hook_takes_its_background_children_with_it() {
        let arg = format!("{}", 300_000 + std::process::id() % 100_000);
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("sleep {arg} & sleep {arg} & wait")],
            "timeout": 1
        }));
        let e = run(&h, Kind::CreateRuntime, b"").unwrap_err().to_string();
        assert!(e.contains("timed out after 1s"), "{e}");
        // Killed and waited for before run returned.
        assert_eq!(sleepers(&arg), Vec::<String>::new());
    }

    #[test]
    fn hook_not_reading_a_large_state_still_times_out() {
        // More than a pipe holds: the write to its stdin must not outlast the timeout.
        let state = vec![b'x'; 4 << 20];
        let h = hook(
            serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "sleep 20"], "timeout": 1}),
        );
        let t = Instant::now();
        let e = run(&h, Kind::Prestart, &state).unwrap_err().to_string();
        assert!(e.contains("timed out after 1s"), "{e}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "took {:?}",
            t.elapsed()
        );
    }
}

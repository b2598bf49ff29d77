//! Seccomp in real containers: profile errnos and kills, the built-in argument filters,
//! and the trace / deny-log annotations (nucleus only).

use std::path::Path;

use nucleus_integration::*;
use serde_json::{json, Value};

const PROBE: &str = env!("CARGO_BIN_EXE_nucleus-probe");
const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// A container that can run the (dynamically linked) probe: host libraries bind-mounted.
fn probe_container(name: &str) -> Container {
    let mut c = Container::new(name);
    for d in ["/lib", "/lib64", "/usr/lib"] {
        if Path::new(d).exists() {
            c.add_mount(
                json!({"destination": d, "type": "bind", "source": d, "options": ["rbind", "ro"]}),
            );
        }
    }
    c.add_mount(json!({"destination": "/probe", "type": "bind", "source": PROBE, "options": ["bind", "ro"]}));
    c
}

fn allow_all_but(rules: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": rules})
}

#[test]
fn denied_syscall_gets_the_profile_errno() {
    let mut c = Container::new("sc-errno");
    c.config()["linux"]["seccomp"] = allow_all_but(json!([
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
    ]));
    c.sh("mkdir /tmp/x 2>&1; echo rc=$?");
    let out = c.run().ok();
    assert!(
        out.stdout.contains("Permission denied") && out.stdout.contains("rc=1"),
        "{out}"
    );
}

#[test]
fn kill_action_kills_the_process() {
    let mut c = Container::new("sc-kill");
    c.config()["linux"]["seccomp"] = allow_all_but(json!([
        {"names": ["sethostname"], "action": "SCMP_ACT_KILL_PROCESS"}
    ]));
    c.args(&["hostname", "x"]);
    let out = c.run();
    // SIGSYS is 31: the foreground run reports 128 + 31.
    assert_eq!(out.code(), 159, "{out}");
}

fn default_errno(profile: &Value) -> i64 {
    profile["defaultErrnoRet"]
        .as_i64()
        .unwrap_or(libc::EPERM as i64)
}

#[test]
fn wx_mprotect_is_refused_by_the_builtin_filter() {
    if runtime_is_runc() {
        eprintln!("NOTICE: built-in argument filters are nucleus's; skipped under runc");
        return;
    }
    let profile: Value = serde_json::from_str(
        &std::fs::read_to_string(PODMAN_PROFILE)
            .expect("podman profile (golang-github-containers-common)"),
    )
    .unwrap();
    let errno = default_errno(&profile);
    let mut c = probe_container("sc-wx");
    c.config()["linux"]["seccomp"] = profile.clone();
    c.config()["annotations"] = json!({"run.nucleus.seccomp.builtin-filters": "strict"});
    c.args(&["/probe", "wx"]);
    let out = c.run().ok();
    assert_eq!(
        out.stdout.trim(),
        format!("mprotect-wx -1 errno {errno}"),
        "{out}"
    );

    // JITs need it: W^X is not in the default set.
    for builtin in [None, Some("none"), Some("default")] {
        let mut c = probe_container("sc-wx-default");
        c.config()["linux"]["seccomp"] = profile.clone();
        if let Some(b) = builtin {
            c.config()["annotations"] = json!({"run.nucleus.seccomp.builtin-filters": b});
        }
        c.args(&["/probe", "wx"]);
        let out = c.run().ok();
        assert_eq!(
            out.stdout.trim(),
            "mprotect-wx 0 errno 0",
            "{builtin:?}: {out}"
        );
    }
}

/// What the default built-ins must leave working under Podman's profile: setrlimit on
/// itself (`ulimit -n`), interface queries of network tools, terminals' ioctls.
#[test]
fn default_builtins_let_ordinary_tools_work() {
    let profile: Value =
        serde_json::from_str(&std::fs::read_to_string(PODMAN_PROFILE).unwrap()).unwrap();
    let mut c = Container::new("sc-tools");
    c.config()["linux"]["seccomp"] = profile;
    c.sh("ulimit -n 512 && echo nofile=$(ulimit -n); ifconfig lo; ip link show lo");
    let out = c.run().ok();
    assert!(out.stdout.contains("nofile=512"), "{out}");
    assert!(
        out.stdout.contains("txqueuelen"),
        "ifconfig lost interface data: {out}"
    );
    assert!(out.stdout.contains("LOOPBACK"), "{out}");
}

#[test]
fn refused_ioctl_returns_the_profile_errno() {
    if runtime_is_runc() {
        eprintln!("NOTICE: built-in argument filters are nucleus's; skipped under runc");
        return;
    }
    let profile: Value =
        serde_json::from_str(&std::fs::read_to_string(PODMAN_PROFILE).unwrap()).unwrap();
    let errno = default_errno(&profile);
    // TIOCSTI (typing into the terminal) by default; FIFREEZE, outside the allowlist, when
    // strict.
    for (builtin, req) in [(None, "5412"), (Some("strict"), "c0045877")] {
        let mut c = probe_container("sc-ioctl");
        c.config()["linux"]["seccomp"] = profile.clone();
        if let Some(b) = builtin {
            c.config()["annotations"] = json!({"run.nucleus.seccomp.builtin-filters": b});
        }
        c.args(&["/probe", "ioctl", req]);
        let out = c.run().ok();
        assert_eq!(
            out.stdout.trim(),
            format!("ioctl -1 errno {errno}"),
            "{builtin:?} {req}: {out}"
        );
    }
}

#[test]
fn trace_records_every_distinct_syscall_and_generates_a_working_profile() {
    if runtime_is_runc() {
        eprintln!("NOTICE: trace mode is nucleus's; skipped under runc");
        return;
    }
    let mut c = probe_container("sc-trace");
    // The trace file must lie beneath the bundle (security.rs checks the refusals).
    let trace = c.bundle.path().join("trace.ndjson");
    c.config()["annotations"] = json!({
        "run.nucleus.seccomp.mode": "trace",
        "run.nucleus.seccomp.trace-file": trace.to_str().unwrap()
    });
    c.args(&["/probe", "distinct"]);
    let out = c.run().ok();
    let text = std::fs::read_to_string(&trace).expect("trace file");
    let names: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["name"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    let wanted: Vec<&str> = out.stdout.lines().collect();
    assert!(wanted.len() >= 20, "{out}");
    for w in &wanted {
        assert!(
            names.iter().any(|n| n == w),
            "{w} missing from trace:\n{text}"
        );
    }

    // The generated profile runs the same workload.
    let gen = exec(
        std::process::Command::new(runtime_path()).args([
            "seccomp",
            "generate",
            trace.to_str().unwrap(),
        ]),
        std::time::Duration::from_secs(10),
    )
    .ok();
    let profile: Value = serde_json::from_str(&gen.stdout).expect("generated profile JSON");
    let mut c = probe_container("sc-gen");
    c.config()["linux"]["seccomp"] = profile;
    c.args(&["/probe", "distinct"]);
    let out2 = c.run().ok();
    assert_eq!(out2.stdout, out.stdout);
}

#[test]
fn deny_log_reports_every_denied_call_of_a_burst() {
    if runtime_is_runc() {
        eprintln!("NOTICE: deny logging is nucleus's; skipped under runc");
        return;
    }
    let dir = host_tempdir("it-denylog-");
    let log = dir.path().join("log.json");
    let mut c = probe_container("sc-denylog");
    c.global_args = vec![
        "--log".into(),
        log.to_str().unwrap().into(),
        "--log-format".into(),
        "json".into(),
    ];
    c.config()["linux"]["seccomp"] = allow_all_but(json!([
        {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
    ]));
    c.config()["annotations"] = json!({"run.nucleus.seccomp.log-denied": "true"});
    c.args(&["/probe", "burst", "1000"]);
    let out = c.run().ok();
    assert_eq!(
        out.stdout.trim(),
        "burst 1000 failed 1000 errno 13",
        "{out}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let denied: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["msg"]
                .as_str()
                .is_some_and(|m| m.contains("denied syscall getpriority"))
        })
        .collect();
    assert_eq!(denied.len(), 1000, "denied lines in the log");
    assert!(denied.iter().all(|v| v["level"] == "warning"));
}

#[test]
fn bad_annotation_value_fails_create_cleanly() {
    if runtime_is_runc() {
        eprintln!("NOTICE: nucleus annotations; skipped under runc");
        return;
    }
    for (k, v) in [
        ("run.nucleus.seccomp.mode", "tracing"),
        ("run.nucleus.seccomp.log-denied", "yes"),
        ("run.nucleus.seccomp.builtin-filters", "ioctl,nosuchsyscall"),
    ] {
        let mut c = Container::new("sc-badann");
        c.config()["annotations"] = json!({k: v});
        let out = c.run().fails();
        assert!(out.stderr.contains(k) && out.stderr.contains(v), "{out}");
        assert!(out.stderr.lines().count() == 1, "one line: {out}");
        assert!(
            std::fs::read_dir(c.root())
                .map(|d| d.count() == 0)
                .unwrap_or(true),
            "state left behind"
        );
        assert!(
            cgroup_dirs(&format!("/{}", c.id)).is_empty(),
            "cgroup left behind"
        );
    }
}

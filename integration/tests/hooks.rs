//! Hooks: every kind gets the state JSON on stdin, runs in order, and fails as the spec says.

use nucleus_integration::*;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// A host-side hook that saves its stdin as `<dir>/<name>.json` and appends `name` to
/// `<dir>/order`.
fn recorder(dir: &Path, name: &str) -> Value {
    let d = dir.to_str().unwrap();
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {d}/{name}.json; echo {name} >> {d}/order")]})
}

fn read_state(dir: &Path, name: &str) -> Value {
    let text = fs::read_to_string(dir.join(format!("{name}.json")))
        .unwrap_or_else(|e| panic!("hook {name} did not run: {e}"));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("hook {name} stdin is not JSON ({e}): {text:?}"))
}

/// runc hands the hooks that run inside the container (createContainer, startContainer)
/// the pid as seen in the container's pid namespace (1); the spec asks for the host's view.
/// Both are accepted for those two hooks only.
fn check_pid(name: &str, st: &Value, host_pid: i64) {
    let in_container = name == "createContainer" || name == "startContainer";
    if in_container && st["pid"] == 1 {
        eprintln!("NOTICE: {name} hook got the in-container pid 1 (runc behaviour)");
    } else {
        assert_eq!(st["pid"], host_pid, "{name}: {st}");
    }
}

fn with_hooks_dir(c: &mut Container, dir: &Path) {
    c.add_mount(json!({"destination": "/hooks", "type": "bind", "source": dir.to_str().unwrap(), "options": ["rbind", "rw"]}));
}

fn assert_nothing_left(c: &Container) {
    c.state().fails();
    if let Some(p) = c.cgroups_path() {
        assert!(
            cgroup_dirs(&p).is_empty(),
            "cgroup left: {:?}",
            cgroup_dirs(&p)
        );
    }
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mi.contains(c.bundle.rootfs().to_str().unwrap()),
        "rootfs mount left:\n{mi}"
    );
    if let Ok(pid) = fs::read_to_string(c.pid_file()) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            std::thread::sleep(Duration::from_millis(100));
            assert!(!pid_alive(pid), "container process {pid} left");
        }
    }
    let left: Vec<_> = fs::read_dir(c.root())
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !left.iter().any(|n| n.to_string_lossy().contains(&c.id)),
        "state dir left: {left:?}"
    );
}

#[test]
fn every_hook_kind_gets_state_in_order() {
    let dir = host_tempdir("it-hooks-");
    let d = dir.path();
    let mut c = Container::new("hooks-all");
    with_hooks_dir(&mut c, d);
    c.config()["hooks"] = json!({
        "prestart": [recorder(d, "prestart")],
        "createRuntime": [recorder(d, "createRuntime")],
        "createContainer": [recorder(d, "createContainer")],
        // Runs inside the container after pivot_root: container paths.
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /hooks/startContainer.json; echo startContainer >> /hooks/order"]}],
        "poststart": [recorder(d, "poststart")],
        "poststop": [recorder(d, "poststop")]
    });
    c.config()["annotations"] = json!({"hook.test": "yes"});
    c.sh("echo user-process >> /hooks/order; sleep 30");
    c.create().ok();
    let pid = c.pid() as i64;
    for name in ["prestart", "createRuntime", "createContainer"] {
        let st = read_state(d, name);
        assert_eq!(st["id"], c.id.as_str(), "{name}: {st}");
        check_pid(name, &st, pid);
        // runtime.md's lifecycle: from step 3 on the environment exists and the user
        // program has not run, which is `created` (runc says "creating"; see README).
        assert_eq!(st["status"], "created", "{name}: {st}");
        assert!(st["ociVersion"].is_string(), "{name}: {st}");
        assert_eq!(
            fs::canonicalize(st["bundle"].as_str().unwrap()).unwrap(),
            fs::canonicalize(c.bundle.path()).unwrap(),
            "{name}: {st}"
        );
        assert_eq!(st["annotations"]["hook.test"], "yes", "{name}: {st}");
    }
    assert!(
        !d.join("startContainer.json").exists(),
        "startContainer ran at create"
    );
    c.start().ok();
    let start = Instant::now();
    while !d.join("poststart.json").exists() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let st = read_state(d, "startContainer");
    assert_eq!(st["id"], c.id.as_str(), "{st}");
    check_pid("startContainer", &st, pid);
    // Step 7, before the user program runs (step 8).
    assert_eq!(st["status"], "created", "{st}");
    let st = read_state(d, "poststart");
    assert_eq!(st["id"], c.id.as_str(), "{st}");
    assert_eq!(st["pid"], pid, "{st}");
    // Step 9, after the user program was executed.
    assert_eq!(st["status"], "running", "{st}");
    c.kill("KILL").ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    assert!(
        !d.join("poststop.json").exists(),
        "poststop ran before delete"
    );
    c.delete().ok();
    let st = read_state(d, "poststop");
    assert_eq!(st["id"], c.id.as_str(), "{st}");
    assert_eq!(st["status"], "stopped", "{st}");

    let order = fs::read_to_string(d.join("order")).unwrap();
    let order: Vec<&str> = order.lines().collect();
    let pos = |n: &str| {
        order
            .iter()
            .position(|x| *x == n)
            .unwrap_or_else(|| panic!("{n} not in {order:?}"))
    };
    assert!(pos("prestart") < pos("createContainer"), "{order:?}");
    assert!(pos("createRuntime") < pos("createContainer"), "{order:?}");
    assert!(pos("createContainer") < pos("startContainer"), "{order:?}");
    assert!(pos("startContainer") < pos("user-process"), "{order:?}");
    assert_eq!(order.last(), Some(&"poststop"), "{order:?}");
    assert_eq!(order.len(), 7, "a hook ran twice: {order:?}");
}

#[test]
fn hook_args_and_env() {
    let dir = host_tempdir("it-hookargs-");
    let d = dir.path().to_str().unwrap().to_string();
    let mut c = Container::new("hooks-args");
    c.config()["hooks"] = json!({"prestart": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo \"$1|$2|$HOOK_VAR|$0\" > {d}/out"), "hook-argv0", "first", "second word"],
        "env": ["HOOK_VAR=hv"]
    }]});
    c.run().ok();
    assert_eq!(
        fs::read_to_string(dir.path().join("out")).unwrap(),
        "first|second word|hv|hook-argv0\n"
    );
}

#[test]
fn failing_prestart_fails_create_and_leaves_nothing() {
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let mut c = Container::new(&format!("hook-fail-{kind}"));
        c.config()["hooks"] = json!({kind: [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook-said-no >&2; exit 7"]}]});
        let out = c.create().fails();
        assert!(
            out.all_text().contains(kind) || out.all_text().contains("hook"),
            "{kind}: {out}"
        );
        assert_nothing_left(&c);
    }
}

#[test]
fn failing_start_container_hook_fails_start() {
    let mut c = Container::new("hook-fail-startContainer");
    c.config()["hooks"] = json!({"startContainer": [{"path": "/bin/false"}]});
    c.args(&["sh", "-c", "echo user-process-ran"]);
    c.create().ok();
    // runc reports the failure from the container's init, after `start` returned 0; either
    // way the container must end up stopped without running the user process.
    let out = c.start();
    assert!(out.code.is_some() && !out.timed_out, "{out}");
    assert!(
        c.wait_status("stopped", Duration::from_secs(10)),
        "container not stopped after a failed startContainer hook"
    );
    assert!(
        !c.container_stdout().contains("user-process-ran"),
        "user process ran"
    );
}

#[test]
fn hook_with_missing_binary_fails_create() {
    let mut c = Container::new("hook-missing");
    c.config()["hooks"] = json!({"prestart": [{"path": "/nonexistent/it-hook"}]});
    let out = c.create().fails();
    assert!(
        out.all_text().contains("/nonexistent/it-hook") || out.all_text().contains("hook"),
        "{out}"
    );
    assert_nothing_left(&c);
}

#[test]
fn hook_timeout_fails_create() {
    let mut c = Container::new("hook-timeout");
    c.config()["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "20"], "timeout": 1}]});
    let t = Instant::now();
    let out = c.create().fails();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "timeout not honoured: {:?}\n{out}",
        t.elapsed()
    );
    assert_nothing_left(&c);
}

#[test]
fn failing_poststop_is_only_a_warning() {
    let dir = host_tempdir("it-poststop-");
    let d = dir.path();
    let mut c = Container::new("hook-poststop-fail");
    c.config()["hooks"] = json!({"poststop": [
        {"path": "/bin/false"},
        recorder(d, "second-poststop")
    ]});
    c.create().ok();
    c.start().ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    c.delete().ok();
    c.state().fails();
    if skip_known_runc_gap("running the remaining poststop hooks after one fails") {
        return;
    }
    read_state(d, "second-poststop");
}

#[test]
fn failing_poststart_is_only_a_warning() {
    if skip_known_runc_gap(
        "poststart failure semantics (runc 1.1 fails start and destroys the container)",
    ) {
        return;
    }
    let mut c = Container::new("hook-poststart-fail");
    c.config()["hooks"] = json!({"poststart": [{"path": "/bin/false"}]});
    c.args(&["sleep", "30"]);
    c.create().ok();
    c.start().ok();
    assert_eq!(c.status(), "running");
    c.delete_force().ok();
}

#[test]
fn poststop_runs_on_run_exit() {
    let dir = host_tempdir("it-poststop-run-");
    let d = dir.path();
    let mut c = Container::new("hook-poststop-run");
    c.config()["hooks"] = json!({"poststop": [recorder(d, "poststop")]});
    c.run().ok();
    let st = read_state(d, "poststop");
    assert_eq!(st["id"], c.id.as_str());
}

/// Every hook kind gets the state on stdin in runc's shape, byte for byte: the spec's
/// members in specs-go's order (`status` before `pid`), no `pid` once there is no process
/// (poststop), annotations sorted, no newline. Only values that differ by nature or by
/// design are blanked (spec version, status: README, pid: runc gives in-container hooks
/// 1), and the id and bundle.
#[test]
fn hook_state_bytes_match_runc() {
    let kinds = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    let record = |runtime: &Path, name: &str| -> Vec<String> {
        let dir = host_tempdir("it-hooks-");
        let d = dir.path();
        let mut c = Container::with_runtime(runtime, name);
        with_hooks_dir(&mut c, d);
        let mut hooks = serde_json::Map::new();
        for k in kinds {
            let h = if k == "startContainer" {
                json!({"path": "/bin/sh", "args": ["sh", "-c", "cat > /hooks/startContainer.json"]})
            } else {
                recorder(d, k)
            };
            hooks.insert(k.to_string(), json!([h]));
        }
        c.config()["hooks"] = Value::Object(hooks);
        c.config()["annotations"] = json!({"org.z": "1", "a.b": "x y", "m": ""});
        c.run().ok();
        let bundle = c.bundle.path().to_str().unwrap().to_string();
        kinds
            .iter()
            .map(|k| {
                let text = fs::read_to_string(d.join(format!("{k}.json")))
                    .unwrap_or_else(|e| panic!("hook {k} did not run: {e}"));
                let text = blank_values(&text, &["ociVersion", "status", "pid"])
                    .replace(&c.id, "ID")
                    .replace(&bundle, "BUNDLE");
                format!("{k}: {text}")
            })
            .collect()
    };
    let ours = record(&runtime_path(), "hook-bytes");
    let theirs = record(&reference(), "hook-bytes-ref");
    assert_eq!(ours, theirs);
}

/// startContainer hooks run as runc runs them: in the container, right before the execve,
/// with the process's user, capabilities, no_new_privs and seccomp filter already in place
/// (runc's init loads them all before it waits on exec.fifo, and runs the hooks after).
#[test]
fn start_container_hooks_run_as_the_container_process() {
    let dir = host_tempdir("it-hooks-");
    let d = dir.path();
    std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mut c = Container::new("hooks-startcred");
    with_hooks_dir(&mut c, d);
    c.config()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c.config()["process"]["noNewPrivileges"] = json!(true);
    c.config()["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO"}]});
    c.config()["hooks"] = json!({
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "grep -E '^(Uid|NoNewPrivs|Seccomp):' /proc/self/status > /hooks/start.status"]}],
    });
    c.args(&["/bin/true"]);
    let (_, _) = c.create_start_wait();
    let status = fs::read_to_string(d.join("start.status")).unwrap();
    let field = |n: &str| status_field(&status, n).unwrap_or_default();
    assert!(field("Uid").starts_with("1000\t"), "{status}");
    assert_eq!(field("NoNewPrivs"), "1", "{status}");
    assert_eq!(field("Seccomp"), "2", "{status}");
}

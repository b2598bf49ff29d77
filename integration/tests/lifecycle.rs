//! create/start/state/kill/delete/run and the state JSON seen from the host.

use nucleus_integration::*;
use serde_json::json;
use std::fs;
use std::time::Duration;

#[test]
fn run_foreground_passes_output_and_exit_code() {
    let mut c = Container::new("run-exit");
    c.sh("echo out-line; echo err-line >&2; exit 3");
    let out = c.run();
    assert_eq!(out.code(), 3, "{out}");
    assert_eq!(out.stdout, "out-line\n", "{out}");
    assert!(out.stderr.contains("err-line"), "{out}");
}

#[test]
fn run_exit_zero() {
    let mut c = Container::new("run-true");
    c.run().ok();
}

#[test]
fn run_killed_by_signal_exits_128_plus_signal() {
    // Without a pid namespace the shell is not a pid-1 that ignores signals from inside.
    let mut c = Container::new("run-sigkill");
    c.namespaces(json!([{"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]));
    c.sh("kill -KILL $$");
    let out = c.run();
    assert_eq!(out.code(), 137, "{out}");
}

#[test]
fn run_killed_from_outside_exits_137() {
    let mut c = Container::new("run-killed-outside");
    c.args(&["sleep", "30"]);
    c.bundle.write_config();
    let b = c.bundle.path().to_string_lossy().into_owned();
    let mut cmd = c.command();
    cmd.args(["run", "--bundle", &b, &c.id]);
    let out = std::thread::scope(|s| {
        let h = s.spawn(move || exec(&mut cmd, CMD_TIMEOUT));
        assert!(c.wait_status("running", Duration::from_secs(10)));
        c.kill("KILL").ok();
        h.join().unwrap()
    });
    assert_eq!(out.code(), 137, "{out}");
}

#[test]
fn run_passes_stdin_through() {
    let mut c = Container::new("run-stdin");
    c.args(&["cat"]);
    let out = c.run_stdin(b"hello from stdin\n");
    assert_eq!(out.stdout, "hello from stdin\n", "{out}");
    out.ok();
}

#[test]
fn run_removes_container_after_exit() {
    let mut c = Container::new("run-removes");
    c.run().ok();
    let st = c.state();
    st.fails();
}

#[test]
fn create_start_state_transitions() {
    let mut c = Container::new("lifecycle");
    c.sh("read x < /dev/null; sleep 30");
    c.config()["annotations"] = json!({"org.nucleus.test": "value-1"});
    c.create().ok();

    let st = c.state_json();
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], c.id.as_str(), "{st}");
    assert!(
        st["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "{st}"
    );
    let pid = st["pid"].as_i64().expect("pid in created state");
    assert!(pid > 0, "{st}");
    let bundle = st["bundle"].as_str().expect("bundle");
    assert_eq!(
        fs::canonicalize(bundle).unwrap(),
        fs::canonicalize(c.bundle.path()).unwrap(),
        "{st}"
    );
    assert_eq!(st["annotations"]["org.nucleus.test"], "value-1", "{st}");

    // pid file: digits only, the state's pid.
    let pf = fs::read_to_string(c.pid_file()).expect("pid file written by create");
    assert!(
        !pf.is_empty() && pf.chars().all(|ch| ch.is_ascii_digit()),
        "pid file {pf:?}"
    );
    assert_eq!(pf.parse::<i64>().unwrap(), pid);
    assert!(
        pid_alive(i32::try_from(pid).unwrap()),
        "init of a created container must exist"
    );

    // The user process has not started: init is not running busybox sh yet.
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("sleep 30"),
        "user process ran before start: {:?}",
        String::from_utf8_lossy(&cmdline)
    );

    c.start().ok();
    assert_eq!(c.status(), "running");
    assert_eq!(c.pid() as i64, pid, "pid changes across start");

    c.kill("KILL").ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    let st = c.state_json();
    assert_eq!(st["status"], "stopped", "{st}");
    c.delete().ok();
    c.state().fails();
    assert!(!pid_alive(i32::try_from(pid).unwrap()));
}

#[test]
fn container_output_goes_to_create_stdio() {
    let mut c = Container::new("create-stdio");
    c.sh("echo created-out; echo created-err >&2");
    let (o, e) = c.create_start_wait();
    assert_eq!(o, "created-out\n");
    assert!(e.contains("created-err"), "{e}");
}

#[test]
fn run_detached() {
    let mut c = Container::new("run-detach");
    c.sh("echo detached; sleep 30");
    c.run_detached().ok();
    assert_eq!(c.status(), "running");
    let pf = fs::read_to_string(c.pid_file()).unwrap();
    assert_eq!(pf.parse::<i32>().unwrap(), c.pid());
    c.kill("KILL").ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    c.delete().ok();
    assert_eq!(c.container_stdout(), "detached\n");
}

#[test]
fn kill_term_by_name_number_and_sig_prefix() {
    for (i, sig) in ["TERM", "SIGTERM", "15", "KILL", "SIGKILL", "9"]
        .iter()
        .enumerate()
    {
        let mut c = Container::new(&format!("kill-{i}"));
        // sh as pid 1 ignores TERM unless it installs a handler.
        c.sh("trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done");
        c.run_detached().ok();
        // The handler must be in place before TERM is sent.
        c.wait_stdout(|o| o.contains("ready"), Duration::from_secs(10));
        c.kill(sig).ok();
        assert!(
            c.wait_status("stopped", Duration::from_secs(10)),
            "signal {sig} did not stop the container"
        );
        c.delete().ok();
    }
}

#[test]
fn kill_all_reaches_every_process() {
    let mut c = Container::new("kill-all");
    // Without a pid namespace, killing init alone would leave the children running.
    c.namespaces(json!([{"type": "mount"}, {"type": "uts"}, {"type": "ipc"}, {"type": "network"}]));
    c.sh("sleep 30 & sleep 31 & echo started; wait");
    c.run_detached().ok();
    let pid = c.pid();
    c.wait_stdout(|o| o.contains("started"), Duration::from_secs(10));
    let cg = c.cgroups_path().unwrap();
    let procs_file = cgroup_dirs(&cg)
        .into_iter()
        .map(|d| d.join("cgroup.procs"))
        .find(|p| p.exists())
        .expect("container cgroup with cgroup.procs");
    let procs: Vec<i32> = fs::read_to_string(&procs_file)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert!(
        procs.len() >= 3,
        "expected init and two sleeps in {procs_file:?}: {procs:?}"
    );
    assert!(procs.contains(&pid));
    c.cmd(&["kill", "--all", &c.id, "KILL"]).ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(100));
    for p in &procs {
        assert!(!pid_alive(*p), "process {p} survived kill --all");
    }
    c.delete().ok();
}

#[test]
fn delete_force_running_container() {
    let mut c = Container::new("delete-force");
    c.args(&["sleep", "30"]);
    c.run_detached().ok();
    let pid = c.pid();
    c.delete_force().ok();
    c.state().fails();
    std::thread::sleep(Duration::from_millis(100));
    assert!(!pid_alive(pid), "init survived delete --force");
}

#[test]
fn delete_force_created_container() {
    let mut c = Container::new("delete-force-created");
    c.create().ok();
    let pid = c.pid();
    c.delete_force().ok();
    c.state().fails();
    std::thread::sleep(Duration::from_millis(100));
    assert!(!pid_alive(pid), "init survived delete --force");
}

#[test]
fn host_sees_new_namespaces_and_cgroup() {
    let mut c = Container::new("host-view");
    let mut ns = vec![
        json!({"type": "pid"}),
        json!({"type": "network"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if host_has_ns("cgroup") {
        ns.push(json!({"type": "cgroup"}));
    }
    c.namespaces(json!(ns));
    c.args(&["sleep", "30"]);
    c.create().ok();
    let pid = c.pid().to_string();
    for kind in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        if !host_has_ns(kind) {
            continue;
        }
        let host = ns_link("self", kind);
        let ctr = ns_link(&pid, kind);
        assert!(!ctr.is_empty(), "cannot read ns {kind} of {pid}");
        // pid ns: the init's own ns link shows the new namespace (it is its first process).
        assert_ne!(host, ctr, "namespace {kind} not new");
    }
    // user ns not requested: shared with the host.
    assert_eq!(ns_link("self", "user"), ns_link(&pid, "user"));
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let want = c.cgroups_path().unwrap();
    assert!(
        cg.lines().any(|l| l.ends_with(&want)),
        "cgroupsPath {want} not in /proc/{pid}/cgroup:\n{cg}"
    );
    c.start().ok();
    c.delete_force().ok();
    assert!(
        cgroup_dirs(&want).is_empty(),
        "cgroup left after delete: {:?}",
        cgroup_dirs(&want)
    );
}

#[test]
fn without_cgroups_path_the_container_still_gets_its_own_cgroup() {
    let mut c = Container::new("no-cgroups-path");
    c.config()["linux"]
        .as_object_mut()
        .unwrap()
        .remove("cgroupsPath");
    c.args(&["sleep", "30"]);
    c.create().ok();
    let pid = c.pid();
    let ours = fs::read_to_string("/proc/self/cgroup").unwrap();
    let theirs = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    // The pids hierarchy (v1) or the unified one (v2) must place it somewhere new.
    let line = |text: &str, key: &str| text.lines().find(|l| l.contains(key)).map(str::to_string);
    let key = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "0::"
    } else {
        ":pids:"
    };
    let (o, t) = (line(&ours, key).unwrap(), line(&theirs, key).unwrap());
    assert_ne!(o, t, "container shares our cgroup");
    let rel = t.splitn(3, ':').nth(2).unwrap().to_string();
    let dir = if key == "0::" {
        format!("/sys/fs/cgroup{rel}")
    } else {
        format!("/sys/fs/cgroup/pids{rel}")
    };
    assert!(std::path::Path::new(&dir).is_dir(), "{dir}");
    c.delete_force().ok();
    assert!(
        !std::path::Path::new(&dir).exists(),
        "cgroup {dir} left after delete"
    );
}

#[test]
fn debug_flag_is_accepted() {
    let mut c = Container::new("debug");
    c.global_args = vec!["--debug".into()];
    c.args(&["echo", "dbg"]);
    let out = c.run().ok();
    assert_eq!(out.stdout, "dbg\n");
}

#[test]
fn run_forwards_signals_to_the_container() {
    let mut c = Container::new("run-sigproxy");
    c.sh("trap 'exit 42' TERM; echo ready; while true; do sleep 0.1; done");
    c.bundle.write_config();
    let b = c.bundle.path().to_str().unwrap().to_string();
    let out_path = c.bundle.path().join("fg.stdout");
    let mut cmd = c.command();
    cmd.args(["run", "--bundle", &b, &c.id])
        .stdout(std::process::Stdio::from(
            fs::File::create(&out_path).unwrap(),
        ))
        .stderr(std::process::Stdio::null())
        .stdin(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("spawn run");
    let start = std::time::Instant::now();
    while !fs::read_to_string(&out_path)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "container never got ready"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: kill(2) on the runtime process this test spawned; no memory involved.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("run did not exit after SIGTERM was forwarded");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(42), "{status:?}");
}

#[test]
fn kill_default_signal_is_term() {
    let mut c = Container::new("kill-default");
    c.sh("trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.1; done");
    c.run_detached().ok();
    c.wait_stdout(|o| o.contains("ready"), Duration::from_secs(10));
    c.cmd(&["kill", &c.id]).ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    c.wait_stdout(|o| o.contains("got-term"), Duration::from_secs(5));
    c.delete().ok();
}

#[test]
fn delete_created_container_without_force() {
    // A created container has not run anything; delete tears it down (as runc does).
    let mut c = Container::new("delete-created");
    c.args(&["sleep", "30"]);
    c.create().ok();
    let pid = c.pid();
    c.delete().ok();
    c.state().fails();
    std::thread::sleep(Duration::from_millis(100));
    assert!(!pid_alive(pid));
    if let Some(p) = c.cgroups_path() {
        assert!(cgroup_dirs(&p).is_empty(), "cgroup left");
    }
}

#[test]
fn state_of_stopped_container() {
    let mut c = Container::new("state-stopped");
    c.create().ok();
    c.start().ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    let st = c.state_json();
    assert_eq!(st["id"], c.id.as_str());
    assert_eq!(st["status"], "stopped");
    assert!(
        st["bundle"].is_string() && st["ociVersion"].is_string(),
        "{st}"
    );
    c.delete().ok();
}

/// A config of a few MB (3,000 env entries, 400 mounts, 5,000 annotations) goes through
/// the whole lifecycle: every verb sees all of it (the env and mounts from inside, the
/// annotations in `state` and in the hooks' state), while the state file the runtime
/// rewrites and rereads on each verb stays small.
#[test]
fn large_config_lifecycle() {
    let hooks_dir = host_tempdir("it-large-config-");
    let d = hooks_dir.path().to_str().unwrap().to_string();
    let mut c = Container::new("large-config");
    c.sh("sleep 30");
    let env = c.config()["process"]["env"].as_array_mut().unwrap();
    env.extend((0..3000).map(|i| json!(format!("SCALE_VAR_{i:05}={}", "v".repeat(150)))));
    for i in 0..400 {
        c.add_mount(
            json!({"destination": format!("/scale/m{i:04}"), "type": "tmpfs",
            "source": "tmpfs", "options": ["nosuid", "nodev", "size=64k"]}),
        );
    }
    let annotations: serde_json::Map<String, serde_json::Value> = (0..5000)
        .map(|i| {
            (
                format!("org.example.scale.a{i:05}"),
                json!(format!("{i}-{}", "a".repeat(200))),
            )
        })
        .collect();
    c.config()["annotations"] = json!(annotations);
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {d}/{name}.json")]});
    c.config()["hooks"] = json!({"poststart": [hook("poststart")], "poststop": [hook("poststop")]});
    c.create().ok();
    let config_len = fs::metadata(c.bundle.path().join("config.json"))
        .unwrap()
        .len();
    assert!(
        config_len > 1_500_000,
        "config.json is only {config_len} bytes"
    );

    let st = c.state_json();
    assert_eq!(st["status"], "created", "{}", st["status"]);
    assert_eq!(st["annotations"], json!(annotations));
    let state_file = c.root().join(&c.id).join("state.json");
    let state_len = fs::metadata(&state_file).unwrap().len();
    assert!(state_len < 16 << 10, "state.json is {state_len} bytes");

    c.start().ok();
    assert_eq!(c.status(), "running");
    let hook_state = |name: &str| -> serde_json::Value {
        let p = hooks_dir.path().join(format!("{name}.json"));
        let start = std::time::Instant::now();
        while !p.exists() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap()
    };
    let poststart = hook_state("poststart");
    assert_eq!(poststart["id"], c.id.as_str());
    assert_eq!(poststart["annotations"], json!(annotations));

    let out = c
        .cmd(&[
            "exec",
            &c.id,
            "sh",
            "-c",
            "echo ${SCALE_VAR_02999:0:5}; grep -c ' /scale/m' /proc/mounts",
        ])
        .ok();
    assert_eq!(out.stdout, "vvvvv\n400\n", "{out}");
    assert!(
        fs::metadata(&state_file).unwrap().len() < 16 << 10,
        "exec grew state.json"
    );

    c.kill("KILL").ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    let out = c.cmd(&["exec", &c.id, "true"]).fails();
    assert!(out.stderr.contains("stopped"), "{out}");
    c.delete().ok();
    let poststop = hook_state("poststop");
    assert_eq!(poststop["status"], "stopped");
    assert_eq!(poststop["annotations"], json!(annotations));
    assert!(
        !c.root().join(&c.id).exists(),
        "state dir left after delete"
    );
    c.state().fails();
}

/// A large config with one bad entry at its end is refused by `create` with one line
/// naming that entry, and leaves nothing behind.
#[test]
fn large_config_with_a_bad_entry_fails_cleanly() {
    let mut c = Container::new("large-config-bad");
    let env = c.config()["process"]["env"].as_array_mut().unwrap();
    env.extend((0..3000).map(|i| json!(format!("SCALE_VAR_{i:05}={}", "v".repeat(150)))));
    env.push(json!("BAD=a\u{0}b"));
    let out = c.create().fails();
    assert!(out.stderr.contains("process.env[3"), "{out}");
    assert!(out.stderr.contains("NUL"), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    assert!(
        !c.root().join(&c.id).exists(),
        "state dir left after a failed create"
    );
    c.state().fails();
}

/// The names in a container's state dir, sorted.
fn state_dir_files(c: &Container) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(c.root().join(&c.id))
        .expect("state dir")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// Once `create` (or `run --detach`) has succeeded, the state dir holds what the later
/// verbs read and nothing of the create's own bookkeeping (its record of what to undo
/// should it be killed part-way).
#[test]
fn created_state_dir_holds_only_what_the_container_needs() {
    let mut c = Container::new("state-dir-files");
    c.args(&["sleep", "30"]);
    c.create().ok();
    assert_eq!(
        state_dir_files(&c),
        ["config.json", "exec.fifo", "state.json"]
    );
    c.start().ok();
    assert_eq!(c.status(), "running");
    assert_eq!(state_dir_files(&c), ["config.json", "state.json"]);
    c.delete_force().ok();
    assert!(!c.root().join(&c.id).exists(), "state dir left by delete");

    let mut c = Container::new("state-dir-files-ann");
    c.args(&["sleep", "30"]);
    c.config()["annotations"] = json!({"org.nucleus.test": "v"});
    c.run_detached().ok();
    assert_eq!(c.status(), "running");
    assert_eq!(
        state_dir_files(&c),
        ["annotations.json", "config.json", "state.json"]
    );
}

/// A create that fails after making its state dir (the init cannot mount a bind whose
/// source is missing) leaves no directory behind.
#[test]
fn create_failing_after_its_state_dir_leaves_none() {
    let mut c = Container::new("state-dir-failed");
    c.add_mount(json!({
        "destination": "/mnt",
        "type": "bind",
        "source": "/nonexistent-nucleus-it-source",
        "options": ["bind"]
    }));
    c.create().fails();
    let left: Vec<_> = fs::read_dir(c.root()).unwrap().collect();
    assert!(left.is_empty(), "left in the state root: {left:?}");
    c.state().fails();
}

/// The exec fifo is the owner's alone whatever the caller's umask: writing it starts the
/// container, and the state root nucleus makes (0711) lets any user reach a container's
/// directory by its id. (runc's fifo is 0622 under a 0700 root; nucleus's init gets the
/// fifo as an fd and needs no mode bits on it.)
#[test]
fn exec_fifo_is_owner_only_under_any_umask() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    use std::os::unix::process::CommandExt;
    let mut c = Container::new("fifo-mode");
    c.args(&["sleep", "30"]);
    c.bundle.write_config();
    fs::set_permissions(c.root(), fs::Permissions::from_mode(0o711)).unwrap();
    let b = c.bundle.path().to_string_lossy().into_owned();
    let rt = c.command();
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "umask 0 && exec \"$0\" \"$@\""])
        .arg(rt.get_program())
        .args(rt.get_args())
        .args(["create", "--bundle", &b, &c.id]);
    exec(&mut cmd, Duration::from_secs(30)).ok();
    let fifo = c.root().join(&c.id).join("exec.fifo");
    let meta = fs::metadata(&fifo).expect("exec.fifo of a created container");
    assert!(meta.file_type().is_fifo());
    let mode = meta.permissions().mode() & 0o7777;
    assert_eq!(format!("{mode:o}"), "600", "{}", fifo.display());
    // Another user cannot write it (and so cannot start the container).
    let out = exec(
        std::process::Command::new("sh")
            .args(["-c", "echo x > \"$0\""])
            .arg(&fifo)
            .uid(65534)
            .gid(65534),
        Duration::from_secs(10),
    );
    assert!(!out.success(), "user 65534 wrote the exec fifo: {out}");
    assert_eq!(c.status(), "created");
}

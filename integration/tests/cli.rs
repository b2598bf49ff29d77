//! Command-line contract: state errors, id validation, config errors, spec, list,
//! --version and --log/--log-format json.

use nucleus_integration::*;
use serde_json::{json, Value};
use std::fs;
use std::process::Command;
use std::time::Duration;

#[track_caller]
fn assert_mentions(out: &Output, any_of: &[&str]) {
    let text = out.all_text().to_lowercase();
    assert!(
        any_of.iter().any(|w| text.contains(&w.to_lowercase())),
        "error message should mention one of {any_of:?}\n{out}"
    );
}

#[test]
fn unknown_id_does_not_exist() {
    let c = Container::new("unknown");
    for verb in [
        vec!["state"],
        vec!["start"],
        vec!["kill", "KILL"],
        vec!["delete"],
    ] {
        let mut args: Vec<&str> = vec![verb[0]];
        args.push(&c.id);
        args.extend(&verb[1..]);
        let out = c.cmd(&args).fails();
        assert_mentions(&out, &["does not exist"]);
    }
}

#[test]
fn delete_force_unknown_id_succeeds() {
    // runc (and callers such as containerd) treat `delete --force` of a missing id as done.
    let c = Container::new("unknown-force");
    c.delete_force().ok();
}

#[test]
fn start_twice_fails_naming_the_state() {
    let mut c = Container::new("start-twice");
    c.args(&["sleep", "30"]);
    c.create().ok();
    c.start().ok();
    let out = c.start().fails();
    assert_mentions(&out, &["running"]);
    assert_eq!(c.status(), "running");
}

#[test]
fn start_stopped_fails() {
    let mut c = Container::new("start-stopped");
    c.create().ok();
    c.start().ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    let out = c.start().fails();
    assert_mentions(&out, &["stopped"]);
}

#[test]
fn delete_running_without_force_fails() {
    let mut c = Container::new("delete-running");
    c.args(&["sleep", "30"]);
    c.run_detached().ok();
    let out = c.delete().fails();
    assert_mentions(&out, &["running"]);
    assert_eq!(c.status(), "running");
}

#[test]
fn kill_stopped_fails() {
    let mut c = Container::new("kill-stopped");
    c.create().ok();
    c.start().ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    let out = c.kill("KILL").fails();
    assert_mentions(&out, &["stopped", "not running"]);
}

#[test]
fn kill_created_container_stops_it() {
    let mut c = Container::new("kill-created");
    c.create().ok();
    c.kill("KILL").ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    c.delete().ok();
}

#[test]
fn kill_with_bad_signal_fails() {
    let mut c = Container::new("kill-badsig");
    c.args(&["sleep", "30"]);
    c.run_detached().ok();
    let out = c.kill("SIGNOTHING").fails();
    assert_mentions(&out, &["SIGNOTHING", "signal"]);
    assert_eq!(c.status(), "running");
}

#[test]
fn duplicate_id_fails() {
    let mut c = Container::new("dup");
    c.args(&["sleep", "30"]);
    c.create().ok();
    let out = c.create().fails();
    assert_mentions(&out, &["exists"]);
    assert_eq!(c.status(), "created");
}

#[test]
fn invalid_ids_are_rejected() {
    let mut c = Container::new("badid");
    c.bundle.write_config();
    let b = c.bundle.path().to_str().unwrap().to_string();
    let parent = c.root().parent().unwrap().to_path_buf();
    for bad in ["../x", "a/b", "..", ".", "/abs", "x\ny"] {
        let marker = parent.join("x");
        let existed = marker.exists();
        let out = c.cmd(&["create", "--bundle", &b, bad]);
        if out.success() {
            c.extra_ids.push(bad.to_string());
        }
        out.fails();
        assert_eq!(
            marker.exists(),
            existed,
            "id {bad:?} escaped the state root"
        );
    }
    let left: Vec<_> = fs::read_dir(c.root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.iter().all(|n| n.to_string_lossy() != "x"), "{left:?}");
}

#[test]
fn missing_config_json_fails() {
    let c = Container::new("noconfig");
    let b = c.bundle.path().to_str().unwrap().to_string();
    let out = c.cmd(&["create", "--bundle", &b, &c.id]).fails();
    assert_mentions(&out, &["config.json"]);
    c.state().fails();
}

#[test]
fn malformed_config_names_the_field() {
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit, &[&str])> = vec![
        (
            "args-type",
            Box::new(|v: &mut Value| v["process"]["args"] = json!("not-a-list")),
            &["args"],
        ),
        (
            "uid-type",
            Box::new(|v: &mut Value| v["process"]["user"]["uid"] = json!("root")),
            &["uid"],
        ),
        (
            "cwd-relative",
            Box::new(|v: &mut Value| v["process"]["cwd"] = json!("relative/dir")),
            &["cwd"],
        ),
        (
            "ns-type",
            Box::new(|v: &mut Value| v["linux"]["namespaces"] = json!([{"type": "bogusns"}])),
            &["bogusns", "namespace"],
        ),
        (
            "array",
            Box::new(|v: &mut Value| *v = json!([])),
            &["config", "json"],
        ),
        (
            "ns-duplicate",
            Box::new(|v: &mut Value| {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "network"}))
            }),
            &["network", "duplicate"],
        ),
    ];
    for (name, edit, words) in cases {
        let mut c = Container::new(&format!("badcfg-{name}"));
        edit(c.config());
        let out = c.create().fails();
        assert_mentions(&out, words);
        c.state().fails();
    }
}

#[test]
fn null_config_fails_cleanly() {
    let mut c = Container::new("badcfg-null");
    *c.config() = json!(null);
    let out = c.create().fails();
    c.state().fails();
    if skip_known_runc_gap(
        "a clean error for a `null` config.json (runc 1.1.5 panics: nil dereference in loadSpec)",
    ) {
        return;
    }
    assert_mentions(&out, &["config"]);
    assert!(!out.stderr.contains("panic"), "{out}");
}

#[test]
fn truncated_config_fails() {
    let c = Container::new("badjson");
    fs::write(
        c.bundle.path().join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": {",
    )
    .unwrap();
    let b = c.bundle.path().to_str().unwrap().to_string();
    let out = c.cmd(&["create", "--bundle", &b, &c.id]).fails();
    assert_mentions(&out, &["config", "json", "EOF", "parse"]);
}

#[test]
fn spec_writes_default_config_and_refuses_to_overwrite() {
    let dir = host_tempdir("it-spec-");
    let rt = runtime_path();
    let d = dir.path().to_str().unwrap();
    exec(Command::new(&rt).args(["spec", "--bundle", d]), CMD_TIMEOUT).ok();
    let text = fs::read_to_string(dir.path().join("config.json")).expect("spec wrote config.json");
    let v: Value = serde_json::from_str(&text).expect("config.json is JSON");
    assert!(v["ociVersion"].is_string(), "{v}");
    assert!(v["process"]["args"].is_array(), "{v}");
    assert_eq!(v["root"]["path"], "rootfs", "{v}");
    assert!(v["linux"]["namespaces"].is_array(), "{v}");
    assert!(
        v["mounts"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["destination"] == "/proc")),
        "{v}"
    );

    fs::write(dir.path().join("config.json"), "keep me").unwrap();
    let out = exec(Command::new(&rt).args(["spec", "--bundle", d]), CMD_TIMEOUT).fails();
    assert_mentions(&out, &["exists", "config.json"]);
    assert_eq!(
        fs::read_to_string(dir.path().join("config.json")).unwrap(),
        "keep me"
    );
}

#[test]
fn spec_output_runs_with_a_busybox_rootfs() {
    let dir = host_tempdir("it-spec-run-");
    let rt = runtime_path();
    exec(
        Command::new(&rt).args(["spec", "--bundle", dir.path().to_str().unwrap()]),
        CMD_TIMEOUT,
    )
    .ok();
    let mut c = Container::new("spec-run");
    let mut v: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("config.json")).unwrap()).unwrap();
    v["process"]["terminal"] = json!(false);
    v["process"]["args"] = json!(["echo", "spec-ok"]);
    *c.config() = v;
    assert_eq!(c.run().ok().stdout, "spec-ok\n");
}

#[test]
fn spec_rootless_maps_the_caller_and_runs() {
    let dir = host_tempdir("it-spec-rootless-");
    let rt = runtime_path();
    let d = dir.path().to_str().unwrap();
    exec(
        Command::new(&rt).args(["spec", "--rootless", "--bundle", d]),
        CMD_TIMEOUT,
    )
    .ok();
    let mut v: Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("config.json")).unwrap()).unwrap();
    // SAFETY: geteuid/getegid only read our credentials.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    assert_eq!(
        v["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": uid, "size": 1}]),
        "{v}"
    );
    assert_eq!(
        v["linux"]["gidMappings"],
        json!([{"containerID": 0, "hostID": gid, "size": 1}]),
        "{v}"
    );
    let ns = v["linux"]["namespaces"].to_string();
    assert!(
        ns.contains("\"user\"") && !ns.contains("\"network\""),
        "{ns}"
    );
    assert!(v["linux"].get("resources").is_none(), "{v}");
    let mounts = v["mounts"].to_string();
    assert!(
        !mounts.contains("gid=") && !mounts.contains("sysfs") && mounts.contains("rbind"),
        "{mounts}"
    );
    // It runs: the caller is root in the container's user namespace, mapped to itself.
    let mut c = Container::new("spec-rootless");
    v["process"]["terminal"] = json!(false);
    v["process"]["args"] = json!(["cat", "/proc/self/uid_map"]);
    *c.config() = v;
    let out = c.run().ok();
    let map: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(map, ["0", &uid.to_string(), "1"], "{out}");
}

#[test]
fn default_root_is_xdg_runtime_dir_for_a_non_root_user() {
    // $XDG_RUNTIME_DIR/nucleus made unreadable: `list` says so when it is the root used.
    use std::os::unix::fs::PermissionsExt;
    let xdg = host_tempdir("it-xdg-");
    let root = xdg.path().join("nucleus");
    fs::create_dir(&root).unwrap();
    fs::set_permissions(xdg.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o000)).unwrap();
    let list = |as_nobody: bool| {
        let mut cmd = Command::new(runtime_path());
        cmd.args(["list", "-q"]).env("XDG_RUNTIME_DIR", xdg.path());
        if as_nobody {
            use std::os::unix::process::CommandExt;
            cmd.uid(65534).gid(65534);
        }
        exec(&mut cmd, CMD_TIMEOUT)
    };
    // SAFETY: geteuid only reads our credentials.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test runs as root");
    let out = list(true).fails();
    assert!(
        out.stderr
            .contains(&format!("{}: Permission denied", root.display())),
        "{out}"
    );
    // Root keeps /run/nucleus whatever XDG_RUNTIME_DIR says.
    list(false).ok();
}

#[test]
fn list_table_quiet_and_json() {
    let mut a = Container::new("list-a");
    a.args(&["sleep", "30"]);
    a.create().ok();
    // A second container in the same root.
    let b_id = unique_id("list-b");
    a.extra_ids.push(b_id.clone());
    let bundle = a.bundle.path().to_str().unwrap().to_string();
    a.cmd(&["run", "--detach", "--bundle", &bundle, &b_id]).ok();

    let table = a.cmd(&["list"]).ok();
    let header: Vec<&str> = table
        .stdout
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        "{table}"
    );
    let row_a = table
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{} ", a.id)))
        .expect("row of a");
    assert!(
        row_a.split_whitespace().nth(2) == Some("created"),
        "{row_a}"
    );
    let row_b = table
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{b_id} ")))
        .expect("row of b");
    assert!(
        row_b.split_whitespace().nth(2) == Some("running"),
        "{row_b}"
    );

    let q = a.cmd(&["list", "-q"]).ok();
    let mut ids: Vec<&str> = q.stdout.lines().collect();
    ids.sort();
    let mut want = vec![a.id.as_str(), b_id.as_str()];
    want.sort();
    assert_eq!(ids, want, "{q}");

    let j = a.cmd(&["list", "--format", "json"]).ok();
    let v: Value = serde_json::from_str(&j.stdout).expect("list json");
    let arr = v.as_array().expect("json array");
    assert_eq!(arr.len(), 2, "{v}");
    let ea = arr
        .iter()
        .find(|e| e["id"] == a.id.as_str())
        .expect("a in json");
    assert_eq!(ea["status"], "created");
    assert!(ea["pid"].as_i64().unwrap_or(0) > 0, "{ea}");
    assert!(ea["bundle"].is_string(), "{ea}");
    assert!(ea["created"].is_string(), "{ea}");
    a.cmd(&["delete", "--force", &b_id]).ok();
}

#[test]
fn list_empty_root() {
    let c = Container::new("list-empty");
    let q = c.cmd(&["list", "-q"]).ok();
    assert_eq!(q.stdout.trim(), "");
    let j = c.cmd(&["list", "--format", "json"]).ok();
    let v: Value = serde_json::from_str(&j.stdout).expect("json");
    assert!(
        v.is_null() || v.as_array().is_some_and(|a| a.is_empty()),
        "{v}"
    );
}

#[test]
fn version_lines() {
    let out = exec(Command::new(runtime_path()).arg("--version"), CMD_TIMEOUT).ok();
    let first = out.stdout.lines().next().unwrap_or("");
    let words: Vec<&str> = first.split_whitespace().collect();
    assert!(words.len() >= 3 && words[1] == "version", "{out}");
    let spec = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("spec: "))
        .expect("spec: line");
    assert!(spec.starts_with("1."), "{out}");
}

#[test]
fn log_json_last_line_on_error() {
    let dir = host_tempdir("it-log-");
    let log = dir.path().join("runtime.log");
    let mut c = Container::new("log-json");
    c.global_args = vec![
        "--log".into(),
        log.to_str().unwrap().into(),
        "--log-format".into(),
        "json".into(),
    ];
    c.config()["process"]["cwd"] = json!("relative/dir");
    c.create().fails();
    let text = fs::read_to_string(&log).expect("log file written");
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .expect("log has lines");
    let v: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last log line is not JSON ({e}): {last}"));
    assert_eq!(v["level"], "error", "{v}");
    assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(v["time"].is_string(), "{v}");
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("log line not JSON ({e}): {l}"));
    }
}

#[test]
fn log_text_format_on_error() {
    let dir = host_tempdir("it-logtext-");
    let log = dir.path().join("runtime.log");
    let c = Container::new("log-text");
    let l = log.to_str().unwrap();
    c.cmd(&["--log", l, "state", "no-such-container-it"])
        .fails();
    let text = fs::read_to_string(&log).unwrap_or_default();
    // Either the error went to the log or to stderr; a text log must not be JSON.
    if let Some(last) = text.lines().last() {
        assert!(
            serde_json::from_str::<Value>(last).is_err(),
            "text log line is JSON: {last}"
        );
    }
}

#[test]
fn concurrent_creates_of_one_id_serialise() {
    // Four creates of the same id at once: exactly one wins, the others fail cleanly.
    let mut c = Container::new("concurrent");
    c.args(&["sleep", "30"]);
    c.bundle.write_config();
    let b = c.bundle.path().to_str().unwrap().to_string();
    let outs: Vec<Output> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let mut cmd = c.command();
                cmd.args(["create", "--bundle", &b, &c.id]);
                s.spawn(move || exec(&mut cmd, CMD_TIMEOUT))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &outs {
        assert!(o.code.is_some() && !o.timed_out, "{o}");
    }
    if skip_known_runc_gap(
        "a per-container lock on create (runc 1.1.5: a losing create can remove the winner's state and cgroup)",
    ) {
        return;
    }
    let ok = outs.iter().filter(|o| o.success()).count();
    assert_eq!(
        ok,
        1,
        "{}",
        outs.iter()
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    for o in outs.iter().filter(|o| !o.success()) {
        assert!(o.code.is_some() && !o.timed_out, "{o}");
    }
    assert_eq!(c.status(), "created");
    c.delete_force().ok();
    c.state().fails();
}

#[test]
fn preserve_fds_passes_extra_fds() {
    let dir = host_tempdir("it-fds-");
    let f = dir.path().join("extra");
    fs::write(&f, "through-fd-3\n").unwrap();
    let mut c = Container::new("preserve-fds");
    c.sh("cat /proc/self/fd/3 2>/dev/null || echo fd3-absent; [ -e /proc/self/fd/4 ] && echo fd4-present || echo fd4-absent");
    c.bundle.write_config();
    let b = c.bundle.path().to_str().unwrap().to_string();
    let root = c.root().to_str().unwrap().to_string();
    let rt = c.runtime.to_str().unwrap().to_string();
    // The host shell opens fds 3 and 4; only 3 is preserved.
    let script = format!(
        "exec 3<'{}' 4<'{}'; exec '{rt}' --root '{root}' run --preserve-fds 1 --bundle '{b}' '{}'",
        f.display(),
        f.display(),
        c.id
    );
    let out = exec(Command::new("/bin/sh").args(["-c", &script]), CMD_TIMEOUT).ok();
    assert_eq!(out.stdout, "through-fd-3\nfd4-absent\n", "{out}");
}

#[test]
fn systemd_cgroup_flag_is_accepted() {
    let c = Container::new("systemd-flag");
    c.cmd(&["--systemd-cgroup", "list", "-q"]).ok();
}

/// runc takes a repeated global flag, the last one winning (Go's flag parsing): callers that
/// add their own flags to a configured set rely on it.
#[test]
fn repeated_global_flags_are_taken_as_runc_takes_them() {
    let mut c = Container::new("repeat-flags");
    c.args(&["sleep", "30"]);
    c.create().ok();
    let out = c
        .command()
        .args([
            "--systemd-cgroup",
            "--systemd-cgroup",
            "--root",
            "/nonexistent-first",
            "--root",
        ])
        .arg(c.root())
        .args(["list", "-q"])
        .output()
        .expect("run the runtime");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The last --root is the one used: it holds the container.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), c.id);
}

/// `features` says checkpoint/restore can run: CRIU is installed here (hack/deps), and
/// `checkpoint --help` (Podman's probe for support) answers.
#[test]
fn features_report_checkpoint_restore() {
    let c = Container::new("feat-ckpt");
    assert!(
        std::path::Path::new("/usr/sbin/criu").is_file(),
        "criu is missing: run hack/deps"
    );
    let f = c.cmd(&["features"]).ok();
    let v: serde_json::Value = serde_json::from_str(&f.stdout).expect("features is JSON");
    assert_eq!(v["annotations"]["run.nucleus.checkpoint.enabled"], "true");
    c.cmd(&["checkpoint", "--help"]).ok();
    c.cmd(&["restore", "--help"]).ok();
}

/// `state` and `list --format json` print what runc prints, byte for byte, for a created
/// and a stopped container with annotations: the same members in the same order (the
/// annotations sorted, before `owner`, `""` in `state` and the directory's owner in
/// `list`), no newline after `state`'s JSON, `null` for an empty list. Only the values
/// that differ by nature (spec version, pid, time, id, bundle) are blanked.
#[test]
fn state_and_list_json_match_runc() {
    let reference = reference();
    let run = |runtime: &std::path::Path, name: &str| -> Vec<String> {
        let mut c = Container::with_runtime(runtime, name);
        c.args(&["sleep", "30"]);
        c.config()["annotations"] =
            json!({"org.z.last": "1", "a.first": "2", "m.middle": "x y", "b": ""});
        let (id, bundle) = (c.id.clone(), c.bundle.path().to_str().unwrap().to_string());
        let norm = |text: String| {
            blank_values(&text, &["ociVersion", "pid", "created"])
                .replace(&id, "ID")
                .replace(&bundle, "BUNDLE")
        };
        let empty = c.cmd(&["list", "--format", "json"]).ok().stdout;
        c.create().ok();
        let created = c.state().ok().stdout;
        let created_time = c.state_json()["created"].as_str().unwrap().to_string();
        let list = c.cmd(&["list", "--format", "json"]).ok().stdout;
        c.start().ok();
        c.kill("KILL").ok();
        assert!(c.wait_status("stopped", Duration::from_secs(10)));
        let stopped = c.state().ok().stdout;
        let stopped_list = c.cmd(&["list", "--format", "json"]).ok().stdout;
        c.delete().ok();
        // Go's RFC3339Nano: the fraction's trailing zeros dropped.
        let frac = created_time
            .trim_end_matches('Z')
            .rsplit_once('.')
            .map_or("", |(_, f)| f);
        assert!(!frac.ends_with('0'), "created {created_time}");
        vec![
            empty,
            norm(created),
            norm(list),
            norm(stopped),
            norm(stopped_list),
        ]
    };
    let ours = run(&runtime_path(), "state-json");
    let theirs = run(&reference, "state-json-ref");
    for (what, (a, b)) in [
        "empty list",
        "state",
        "list",
        "stopped state",
        "stopped list",
    ]
    .iter()
    .zip(ours.iter().zip(&theirs))
    {
        assert_eq!(a, b, "{what}: ours\n{a}\nrunc\n{b}");
    }
}

/// cap_last_cap is read only from procfs: a file bound over /proc/sys/kernel/cap_last_cap
/// (here claiming the kernel knows six capabilities) is refused, and the runtime falls back
/// to 40 (CAP_CHECKPOINT_RESTORE) rather than trusting it (its bounding-set drop and
/// `features` both stop at that number).
#[test]
fn cap_last_cap_is_not_read_from_a_file_bound_over_procfs() {
    let c = Container::new("feat-caplast");
    let fake = c.root().join("cap_last_cap");
    fs::write(&fake, "5\n").unwrap();
    let out = exec(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount --bind \"$0\" /proc/sys/kernel/cap_last_cap && exec \"$1\" features")
            .arg(&fake)
            .arg(&c.runtime),
        Duration::from_secs(30),
    )
    .ok();
    let v: Value = serde_json::from_str(&out.stdout).expect("features is JSON");
    let caps = v["linux"]["capabilities"].as_array().expect("capabilities");
    assert_eq!(caps.len(), 41, "{caps:?}");
    assert_eq!(caps[40], "CAP_CHECKPOINT_RESTORE");
}

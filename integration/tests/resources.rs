//! linux.resources and the resource verbs (pause, resume, update, events, ps) on a cgroup v1
//! host: values are read back from the cgroup files and, where cheap, proven by behaviour.

use nucleus_integration::*;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const MIB: i64 = 1 << 20;

/// These tests read v1 controller files; elsewhere they say so and pass.
fn v1_host() -> bool {
    let ok = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
        && Path::new("/sys/fs/cgroup/freezer").is_dir();
    if !ok {
        eprintln!("NOTICE: not a cgroup v1 host; resources test skipped");
    }
    ok
}

/// The container's directory in the v1 hierarchy of `ctrl`.
fn cg_dir(c: &Container, ctrl: &str) -> PathBuf {
    let rel = c.cgroups_path().expect("cgroupsPath");
    Path::new("/sys/fs/cgroup")
        .join(ctrl)
        .join(rel.trim_start_matches('/'))
}

/// `ctrl/file` of the container, trimmed.
#[track_caller]
fn cg(c: &Container, ctrl: &str, file: &str) -> String {
    let p = cg_dir(c, ctrl).join(file);
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// The value of `key` in a "key value" cgroup file.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Sets linux.resources, keeping the default deny-all device rule.
fn set_resources(c: &mut Container, r: Value) {
    let mut res = r;
    res["devices"] = json!([{"allow": false, "access": "rwm"}]);
    c.config()["linux"]["resources"] = res;
}

fn sleeper(name: &str) -> Container {
    let mut c = Container::new(name);
    c.args(&["sleep", "1000"]);
    c
}

/// A child process whose stdout/stderr go to files.
fn spawn_to_files(mut cmd: Command, out: &Path) -> Child {
    let f = fs::File::create(out).expect("stdout file");
    let e = fs::File::create(out.with_extension("err")).expect("stderr file");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(f))
        .stderr(Stdio::from(e))
        .spawn()
        .expect("spawn runtime")
}

/// Waits for `child` up to `timeout`; kills it and returns None when it does not exit.
fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return Some(st);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

fn ps_json(c: &Container) -> Vec<i32> {
    let out = c.cmd(&["ps", "--format", "json", &c.id]).ok();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("ps json: {e}\n{out}"))
}

/// Every resource this host's v1 controllers support, as set at create.
fn full_resources() -> Value {
    json!({
        "memory": {
            "limit": 64 * MIB, "reservation": 32 * MIB, "swap": 96 * MIB,
            "swappiness": 30, "kernelTCP": 16 * MIB, "disableOOMKiller": false
        },
        "cpu": {
            "shares": 512, "quota": 50000, "period": 100000,
            "realtimeRuntime": 10000, "realtimePeriod": 1000000,
            "cpus": "0", "mems": "0"
        },
        "pids": {"limit": 50},
        "blockIO": {"weight": 300}
    })
}

/// The blkio weight file of the container: BFQ's where the kernel has it, else CFQ's.
fn blkio_weight(c: &Container) -> String {
    let dir = cg_dir(c, "blkio");
    let file = if dir.join("blkio.bfq.weight").exists() {
        "blkio.bfq.weight"
    } else {
        "blkio.weight"
    };
    // BFQ may print "default N".
    cg(c, "blkio", file)
        .trim_start_matches("default ")
        .to_string()
}

/// (controller, file, expected content) for `full_resources`.
fn full_expectations() -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("memory", "memory.limit_in_bytes", (64 * MIB).to_string()),
        (
            "memory",
            "memory.soft_limit_in_bytes",
            (32 * MIB).to_string(),
        ),
        (
            "memory",
            "memory.memsw.limit_in_bytes",
            (96 * MIB).to_string(),
        ),
        ("memory", "memory.swappiness", "30".into()),
        (
            "memory",
            "memory.kmem.tcp.limit_in_bytes",
            (16 * MIB).to_string(),
        ),
        ("cpu", "cpu.shares", "512".into()),
        ("cpu", "cpu.cfs_quota_us", "50000".into()),
        ("cpu", "cpu.cfs_period_us", "100000".into()),
        ("cpu", "cpu.rt_runtime_us", "10000".into()),
        ("cpu", "cpu.rt_period_us", "1000000".into()),
        ("cpuset", "cpuset.cpus", "0".into()),
        ("cpuset", "cpuset.mems", "0".into()),
        ("pids", "pids.max", "50".into()),
    ]
}

#[test]
fn create_applies_every_v1_resource() {
    if !v1_host() {
        return;
    }
    let mut c = sleeper("res-create");
    set_resources(&mut c, full_resources());
    c.create().ok();
    let runc = runtime_is_runc();
    for (ctrl, file, want) in full_expectations() {
        if runc && file == "memory.kmem.tcp.limit_in_bytes" {
            eprintln!("NOTICE: not checking {file} under runc, which ignores memory.kernelTCP");
            continue;
        }
        assert_eq!(cg(&c, ctrl, file), want, "{ctrl}/{file}");
    }
    assert_eq!(
        keyed(&cg(&c, "memory", "memory.oom_control"), "oom_kill_disable"),
        Some(0)
    );
    assert_eq!(blkio_weight(&c), "300");
    // The init (blocked until start) is already inside every hierarchy.
    let pid = c.pid();
    for ctrl in ["memory", "cpu", "cpuset", "pids", "freezer", "devices"] {
        let procs = cg(&c, ctrl, "cgroup.procs");
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "{ctrl}: init {pid} not in {procs:?}"
        );
    }
    c.delete_force().ok();
    assert!(
        cgroup_dirs(&c.cgroups_path().unwrap()).is_empty(),
        "cgroup left after delete"
    );
}

#[test]
fn disable_oom_killer_is_applied() {
    if !v1_host() {
        return;
    }
    let mut c = sleeper("res-oomdis");
    set_resources(
        &mut c,
        json!({"memory": {"limit": 32 * MIB, "disableOOMKiller": true}}),
    );
    c.create().ok();
    assert_eq!(
        keyed(&cg(&c, "memory", "memory.oom_control"), "oom_kill_disable"),
        Some(1)
    );
}

/// A script that tries to start 20 background sleeps, then reports.
const FORKER: &str =
    "i=0; while [ $i -lt 20 ]; do sleep 100 & i=$((i+1)); done; echo started=$i; sleep 100";

#[test]
fn pids_limit_stops_forks() {
    if !v1_host() {
        return;
    }
    // Control: without a tight limit all 20 start.
    let mut free = Container::new("res-pids-free");
    free.sh(FORKER);
    set_resources(&mut free, json!({"pids": {"limit": 100}}));
    free.run_detached().ok();
    assert!(
        wait_until(Duration::from_secs(10), || free
            .container_stdout()
            .contains("started=20")),
        "control did not start 20 children\n{}{}",
        free.container_stdout(),
        free.container_stderr()
    );
    assert_eq!(ps_json(&free).len(), 21);

    let mut c = Container::new("res-pids");
    c.sh(FORKER);
    set_resources(&mut c, json!({"pids": {"limit": 5}}));
    c.run_detached().ok();
    assert!(
        wait_until(Duration::from_secs(10), || keyed(
            &cg(&c, "pids", "pids.events"),
            "max"
        )
        .unwrap_or(0)
            > 0),
        "the pids limit never refused a fork\n{}",
        c.container_stderr()
    );
    assert!(
        cg(&c, "pids", "pids.current").parse::<u32>().unwrap() <= 5,
        "more tasks than the limit"
    );
    assert!(!c.container_stdout().contains("started=20"));
    assert!(
        c.container_stderr().contains("fork"),
        "no fork failure reported: {}",
        c.container_stderr()
    );
}

/// Tries to hold 100 MB in a shell variable, in a child shell the OOM killer can take.
// The hog marks itself the OOM killer's first choice (raising oom_score_adj needs no
// privilege), so the victim is always the hog and never the container's init shell.
const HOG: &str = r#"sleep 1; sh -c 'echo 1000 > /proc/self/oom_score_adj; a=$(head -c 100000000 /dev/zero | tr "\0" a)'; echo hog=$?; sleep 1"#;

#[test]
fn memory_limit_oom_kills_hog_and_events_reports_it() {
    // runc's events runs until the container is deleted and reports every OOM notification.
    if !v1_host()
        || skip_known_runc_gap("events that end with the container and one oom event per kill")
    {
        return;
    }
    let mut c = Container::new("res-oom");
    c.sh(HOG);
    set_resources(
        &mut c,
        json!({"memory": {"limit": 16 * MIB, "swap": 16 * MIB}}),
    );
    c.create().ok();
    let out = c.bundle.path().join("events.out");
    let mut cmd = c.command();
    cmd.args(["events", "--interval", "1s", &c.id]);
    let mut events = spawn_to_files(cmd, &out);
    c.start().ok();
    let st = wait_child(&mut events, Duration::from_secs(30));
    let text = fs::read_to_string(&out).unwrap_or_default();
    let err = fs::read_to_string(out.with_extension("err")).unwrap_or_default();
    assert!(
        st.is_some_and(|s| s.success()),
        "events did not exit cleanly when the container stopped: {st:?}\n{text}\n{err}"
    );
    assert!(
        c.container_stdout().contains("hog=137"),
        "the hog was not killed: {}{}",
        c.container_stdout(),
        c.container_stderr()
    );
    let kills = keyed(&cg(&c, "memory", "memory.oom_control"), "oom_kill").unwrap_or(0);
    assert!(kills >= 1, "no OOM kill counted");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let ooms = lines.iter().filter(|v| v["type"] == "oom").count() as u64;
    assert_eq!(ooms, kills, "one oom event per kill\n{text}");
    assert!(
        lines.contains(&json!({"type": "oom", "id": c.id})),
        "{text}"
    );
    // The stream also carried stats at the interval.
    assert!(
        lines
            .iter()
            .any(|v| v["type"] == "stats" && v["id"] == c.id.as_str()),
        "{text}"
    );
}

#[test]
fn starts_under_512k_memory_limit() {
    if !v1_host() || skip_known_runc_gap("starting under a memory limit below 4 MiB") {
        return;
    }
    let mut c = Container::new("res-512k");
    c.args(&["true"]);
    set_resources(&mut c, json!({"memory": {"limit": 512 * 1024}}));
    let out = c.run();
    assert_eq!(out.code, Some(0), "{out}");
}

/// The files `update` touches, for "nothing changed" checks.
fn snapshot(c: &Container) -> Vec<String> {
    [
        ("memory", "memory.limit_in_bytes"),
        ("memory", "memory.memsw.limit_in_bytes"),
        ("memory", "memory.soft_limit_in_bytes"),
        ("cpu", "cpu.shares"),
        ("cpu", "cpu.cfs_quota_us"),
        ("cpu", "cpu.cfs_period_us"),
        ("cpuset", "cpuset.cpus"),
        ("pids", "pids.max"),
    ]
    .iter()
    .map(|(ctrl, f)| format!("{f}={}", cg(c, ctrl, f)))
    .collect()
}

#[test]
fn update_changes_limits_live() {
    if !v1_host() {
        return;
    }
    let mut c = sleeper("res-update");
    set_resources(
        &mut c,
        json!({
            "memory": {"limit": 64 * MIB},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000},
            "pids": {"limit": 50}
        }),
    );
    c.run_detached().ok();
    let id = c.id.clone();

    // Flags, with units as runc takes them.
    c.cmd(&[
        "update",
        "--memory",
        "128m",
        "--memory-swap",
        "256m",
        "--memory-reservation",
        "64M",
        "--cpu-share",
        "256",
        "--cpu-quota",
        "20000",
        "--cpu-period",
        "50000",
        "--cpuset-cpus",
        "0",
        "--pids-limit",
        "30",
        &id,
    ])
    .ok();
    assert_eq!(
        cg(&c, "memory", "memory.limit_in_bytes"),
        (128 * MIB).to_string()
    );
    assert_eq!(
        cg(&c, "memory", "memory.memsw.limit_in_bytes"),
        (256 * MIB).to_string()
    );
    assert_eq!(
        cg(&c, "memory", "memory.soft_limit_in_bytes"),
        (64 * MIB).to_string()
    );
    assert_eq!(cg(&c, "cpu", "cpu.shares"), "256");
    assert_eq!(cg(&c, "cpu", "cpu.cfs_quota_us"), "20000");
    assert_eq!(cg(&c, "cpu", "cpu.cfs_period_us"), "50000");
    assert_eq!(cg(&c, "cpuset", "cpuset.cpus"), "0");
    assert_eq!(cg(&c, "pids", "pids.max"), "30");

    // A file (Podman's way): only what it names changes.
    let file = c.bundle.path().join("res.json");
    fs::write(
        &file,
        json!({"memory": {"limit": 100 * MIB}, "pids": {"limit": 40}}).to_string(),
    )
    .unwrap();
    c.cmd(&["update", "--resources", file.to_str().unwrap(), &id])
        .ok();
    assert_eq!(
        cg(&c, "memory", "memory.limit_in_bytes"),
        (100 * MIB).to_string()
    );
    assert_eq!(cg(&c, "pids", "pids.max"), "40");
    assert_eq!(cg(&c, "cpu", "cpu.shares"), "256");

    // stdin (containerd's way), with a whole LinuxResources as containerd sends it.
    let doc = json!({
        "devices": [{"allow": false, "access": "rwm"}],
        "memory": {"limit": 80 * MIB, "swap": 160 * MIB},
        "cpu": {"shares": 1024, "quota": -1, "period": 100000, "cpus": "", "mems": ""},
        "pids": {"limit": -1}
    });
    exec_stdin(
        c.command().args(["update", "-r", "-", &id]),
        doc.to_string().as_bytes(),
        CMD_TIMEOUT,
    )
    .ok();
    assert_eq!(
        cg(&c, "memory", "memory.limit_in_bytes"),
        (80 * MIB).to_string()
    );
    assert_eq!(cg(&c, "cpu", "cpu.shares"), "1024");
    assert_eq!(cg(&c, "cpu", "cpu.cfs_quota_us"), "-1");
    assert_eq!(cg(&c, "pids", "pids.max"), "max");
    assert_eq!(c.status(), "running");

    // Unlimited memory takes the (stored) swap limit with it, as in runc.
    c.cmd(&["update", "--memory", "-1", &id]).ok();
    let unlimited = cg(&c, "memory", "memory.limit_in_bytes");
    assert!(unlimited.parse::<u64>().unwrap() > 1 << 60, "{unlimited}");
    assert_eq!(cg(&c, "memory", "memory.memsw.limit_in_bytes"), unlimited);
    c.cmd(&["update", "--memory", "80m", "--memory-swap", "160m", &id])
        .ok();

    // The merged resources are remembered for later updates.
    if !runtime_is_runc() {
        let st: Value = serde_json::from_str(
            &fs::read_to_string(c.root().join(&id).join("state.json")).unwrap(),
        )
        .unwrap();
        let r = &st["config"]["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 80 * MIB);
        assert_eq!(r["memory"]["reservation"], 64 * MIB);
        assert_eq!(r["cpu"]["period"], 100000);
        assert_eq!(r["pids"]["limit"], -1);
    }
}

#[test]
fn update_refuses_bad_values_and_changes_nothing() {
    // runc writes cpu.shares before noticing the kernel clamped it.
    if !v1_host() || skip_known_runc_gap("validating update values before writing any") {
        return;
    }
    let mut c = sleeper("res-update-bad");
    set_resources(
        &mut c,
        json!({"memory": {"limit": 64 * MIB}, "cpu": {"shares": 512}, "pids": {"limit": 50}}),
    );
    c.run_detached().ok();
    let id = c.id.clone();
    let before = snapshot(&c);
    let cases: &[(&[&str], &str)] = &[
        (&["--memory", "-5"], "memory"),
        (&["--memory", "12parsecs"], "memory"),
        (&["--cpu-period", "abc"], "cpu-period"),
        (&["--cpu-share", "1"], "shares"),
        (&["--cpu-quota", "5"], "quota"),
        (&["--pids-limit", "many"], "pids-limit"),
        (&["--cpuset-cpus", "0-"], "cpus"),
        // Below current usage: the kernel refuses after other values were written.
        (&["--memory", "100k", "--pids-limit", "7"], "memory"),
        (&["--l3-cache-schema", "L3:0=f"], "Intel RDT"),
        // Memory is written, then cpu refuses a runtime above its period: memory is restored.
        (
            &["--memory", "200m", "--cpu-rt-runtime", "2000000"],
            "rt_runtime",
        ),
    ];
    for (args, what) in cases {
        let mut argv = vec!["update"];
        argv.extend_from_slice(args);
        argv.push(&id);
        let out = c.cmd(&argv).fails();
        assert!(
            out.stderr.contains(what),
            "{args:?}: error does not mention {what:?}\n{out}"
        );
        assert_eq!(snapshot(&c), before, "{args:?} changed the cgroup");
    }
    for doc in [
        r#"{"memory": {"limit": -7}}"#,
        r#"{"cpu": {"shares": 99999999}}"#,
        r#"{"unified": {"memory.max": "1"}}"#,
        r#"{"memory": "lots"}"#,
        "not json",
    ] {
        let out = exec_stdin(
            c.command().args(["update", "-r", "-", &id]),
            doc.as_bytes(),
            CMD_TIMEOUT,
        )
        .fails();
        assert!(!out.stderr.trim().is_empty(), "{doc}: no error message");
        assert_eq!(snapshot(&c), before, "{doc} changed the cgroup");
    }
    let out = c
        .cmd(&["update", "--resources", "/nonexistent/res.json", &id])
        .fails();
    assert!(out.stderr.contains("/nonexistent/res.json"), "{out}");
    assert_eq!(c.status(), "running");

    // A stopped container has nothing to update.
    c.kill("KILL").ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    let out = c.cmd(&["update", "--memory", "32m", &id]).fails();
    assert!(out.stderr.contains("container not running"), "{out}");
}

#[test]
fn pause_freezes_and_resume_thaws() {
    if !v1_host() {
        return;
    }
    let mut c = Container::new("res-pause");
    c.sh("i=0; while true; do i=$((i+1)); echo $i; sleep 0.02; done");
    c.run_detached().ok();
    let id = c.id.clone();
    let count = |c: &Container| c.container_stdout().lines().count();
    assert!(wait_until(Duration::from_secs(5), || count(&c) > 3));
    let out = c.cmd(&["resume", &id]).fails();
    assert!(out.stderr.contains("container not paused"), "{out}");

    c.cmd(&["pause", &id]).ok();
    assert_eq!(c.status(), "paused");
    assert_eq!(cg(&c, "freezer", "freezer.state"), "FROZEN");
    let frozen_at = count(&c);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count(&c), frozen_at, "the counter advanced while paused");
    let out = c.cmd(&["pause", &id]).fails();
    assert!(out.stderr.contains("container not running"), "{out}");
    let out = c.cmd(&["exec", &id, "true"]).fails();
    assert!(out.stderr.contains("paused"), "{out}");

    c.cmd(&["resume", &id]).ok();
    assert_eq!(c.status(), "running");
    assert_eq!(cg(&c, "freezer", "freezer.state"), "THAWED");
    assert!(
        wait_until(Duration::from_secs(5), || count(&c) > frozen_at + 3),
        "the counter did not resume"
    );

    c.kill("KILL").ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    let out = c.cmd(&["pause", &id]).fails();
    assert!(out.stderr.contains("container not running"), "{out}");
    let out = c.cmd(&["resume", &id]).fails();
    assert!(out.stderr.contains("container not paused"), "{out}");
}

#[test]
fn pause_a_created_container() {
    if !v1_host() {
        return;
    }
    let mut c = sleeper("res-pause-created");
    c.create().ok();
    let id = c.id.clone();
    c.cmd(&["pause", &id]).ok();
    assert_eq!(c.status(), "paused");
    let out = c.start().fails();
    assert!(out.stderr.contains("paused"), "{out}");
    c.cmd(&["resume", &id]).ok();
    assert_eq!(c.status(), "created");
    c.start().ok();
    assert_eq!(c.status(), "running");
}

#[test]
fn paused_container_can_be_killed_and_force_deleted() {
    if !v1_host() {
        return;
    }
    // kill --all
    let mut a = sleeper("res-pause-killall");
    a.run_detached().ok();
    a.cmd(&["pause", &a.id]).ok();
    a.cmd(&["kill", "--all", &a.id, "KILL"]).ok();
    assert!(
        a.wait_status("stopped", Duration::from_secs(10)),
        "kill --all KILL left a paused container: {}",
        a.status()
    );
    a.delete().ok();

    // delete --force
    let mut b = sleeper("res-pause-delete");
    b.run_detached().ok();
    let pid = b.pid();
    b.cmd(&["pause", &b.id]).ok();
    b.delete_force().ok();
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(pid)),
        "init survived"
    );
    assert!(cgroup_dirs(&b.cgroups_path().unwrap()).is_empty());
    b.state().fails();

    // kill (init only) with SIGKILL: runc thaws so the signal takes effect.
    let mut k = sleeper("res-pause-kill");
    k.run_detached().ok();
    k.cmd(&["pause", &k.id]).ok();
    k.kill("KILL").ok();
    assert!(
        k.wait_status("stopped", Duration::from_secs(10)),
        "SIGKILL to a paused container's init did not stop it: {}",
        k.status()
    );
}

#[test]
fn ps_lists_the_container_processes() {
    if !v1_host() {
        return;
    }
    let mut c = Container::new("res-ps");
    c.sh("sleep 1000 & sleep 1000 & wait");
    c.run_detached().ok();
    let id = c.id.clone();
    let init = c.pid();
    let pids = {
        let mut p = Vec::new();
        wait_until(Duration::from_secs(5), || {
            p = ps_json(&c);
            p.len() == 3
        });
        p
    };
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert!(pids.contains(&init));
    for p in &pids {
        let cgs = fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
        assert!(cgs.contains(&c.cgroups_path().unwrap()), "{p}: {cgs}");
    }

    let table = c.cmd(&["ps", &id]).ok().stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].split_whitespace().any(|t| t == "PID"), "{table}");
    assert_eq!(lines.len(), 4, "{table}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.trim_end().ends_with(" sleep 1000"))
            .count(),
        2,
        "{table}"
    );

    let custom = c.cmd(&["ps", &id, "-o", "pid,comm"]).ok().stdout;
    let mut seen: Vec<i32> = custom
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    seen.sort();
    let mut want = pids.clone();
    want.sort();
    assert_eq!(seen, want, "{custom}");
    // Flags after the id belong to ps, even ones the runtime also has (-f).
    let full = c.cmd(&["ps", &id, "-f"]).ok().stdout;
    assert!(full.lines().next().unwrap_or("").contains("PPID"), "{full}");
    assert_eq!(full.lines().count(), 4, "{full}");
    if !skip_known_runc_gap("`--` before the ps arguments (runc passes it on to ps)") {
        let after_dashes = c.cmd(&["ps", &id, "--", "-o", "pid"]).ok().stdout;
        assert_eq!(after_dashes.lines().count(), 4, "{after_dashes}");
    }

    let out = c.cmd(&["ps", "--format", "yaml", &id]).fails();
    assert!(out.stderr.contains("format"), "{out}");
}

#[test]
fn events_stats_has_runc_shape() {
    if !v1_host() {
        return;
    }
    let mut c = sleeper("res-stats");
    set_resources(
        &mut c,
        json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 50}}),
    );
    c.run_detached().ok();
    let out = c.cmd(&["events", "--stats", &c.id]).ok();
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], c.id.as_str());
    let d = &v["data"];
    for k in [
        "cpu",
        "cpuset",
        "memory",
        "pids",
        "blkio",
        "hugetlb",
        "intel_rdt",
    ] {
        assert!(d.get(k).is_some(), "data.{k} missing\n{out}");
    }
    assert_eq!(d["memory"]["usage"]["limit"], 64 * MIB);
    assert!(d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0);
    assert_eq!(d["pids"]["current"], 1);
    assert_eq!(d["pids"]["limit"], 50);
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0);

    let out = c.cmd(&["events", "--interval", "0s", &c.id]).fails();
    assert!(out.stderr.contains("interval"), "{out}");
    c.kill("KILL").ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    let out = c.cmd(&["events", "--stats", &c.id]).fails();
    assert!(out.stderr.contains("not running"), "{out}");
}

#[test]
fn bad_resources_fail_create_and_leave_nothing() {
    if !v1_host() {
        return;
    }
    let cases: Vec<(Value, &str)> = vec![
        (json!({"memory": {"limit": -5}}), "memory.limit_in_bytes"),
        (json!({"memory": {"swappiness": 200}}), "swappiness"),
        (json!({"cpu": {"shares": 100_000_000u64}}), "cpu-shares"),
        (json!({"cpu": {"quota": 5}}), "cfs_quota_us"),
        (json!({"cpu": {"cpus": "4000-4001"}}), "cpuset.cpus"),
        (json!({"unified": {"memory.max": "1"}}), "unified"),
        (json!({"unified": {"no.such.key": "1"}}), "unified"),
    ];
    for (i, (res, what)) in cases.into_iter().enumerate() {
        let mut c = sleeper(&format!("res-bad-{i}"));
        set_resources(&mut c, res.clone());
        let out = c.create().fails();
        assert!(
            out.stderr.contains(what),
            "{res}: no mention of {what}\n{out}"
        );
        assert!(!c.root().join(&c.id).exists(), "{res}: state dir left");
        let left = cgroup_dirs(&c.cgroups_path().unwrap());
        assert!(left.is_empty(), "{res}: cgroup left: {left:?}");
    }

    if skip_known_runc_gap("refusing a cgroupsPath that climbs above its root (runc clamps it)") {
        return;
    }
    let mut c = sleeper("res-bad-path");
    let escape = format!("esc-{}", c.id);
    c.config()["linux"]["cgroupsPath"] = json!(format!("/../../{escape}"));
    let out = c.create().fails();
    assert!(out.stderr.contains("cgroupsPath"), "{out}");
    assert!(!c.root().join(&c.id).exists());
    assert!(cgroup_dirs(&escape).is_empty());
    for ctrl in ["memory", "pids"] {
        assert!(!Path::new("/sys/fs/cgroup")
            .join(ctrl)
            .join(&escape)
            .exists());
    }
    assert!(!Path::new("/sys/fs").join(&escape).exists());
}

/// Same resources (and the same update) under runc: same cgroup file contents.
#[test]
fn diff_cgroup_files_match_runc() {
    if !v1_host() {
        return;
    }
    let Some(reference) = reference_path() else {
        eprintln!("NOTICE: no reference runtime; differential resources test skipped");
        return;
    };
    let mut ours = sleeper("diff-res");
    let mut theirs = Container::with_runtime(&reference, "diff-res-ref");
    theirs.args(&["sleep", "1000"]);
    for c in [&mut ours, &mut theirs] {
        set_resources(c, full_resources());
        c.run_detached().ok();
    }
    let files = |c: &Container| -> Vec<String> {
        let mut v: Vec<String> = full_expectations()
            .iter()
            // Deliberate difference: runc 1.1 ignores memory.kernelTCP, nucleus applies it.
            .filter(|(_, f, _)| *f != "memory.kmem.tcp.limit_in_bytes")
            .map(|(ctrl, f, _)| format!("{f}={}", cg(c, ctrl, f)))
            .collect();
        let mut devices: Vec<String> = cg(c, "devices", "devices.list")
            .lines()
            .map(str::to_string)
            .collect();
        devices.sort();
        v.push(format!("devices.list={devices:?}"));
        v.push(format!("blkio weight={}", blkio_weight(c)));
        v.push(format!(
            "oom_kill_disable={:?}",
            keyed(&cg(c, "memory", "memory.oom_control"), "oom_kill_disable")
        ));
        v
    };
    assert_eq!(files(&ours), files(&theirs), "after create");
    for c in [&ours, &theirs] {
        c.cmd(&[
            "update",
            "--memory",
            "48m",
            "--memory-swap",
            "200m",
            "--cpu-quota",
            "30000",
            "--pids-limit",
            "20",
            &c.id,
        ])
        .ok();
        exec_stdin(
            c.command().args(["update", "-r", "-", &c.id]),
            json!({"cpu": {"shares": 700, "period": 200000}})
                .to_string()
                .as_bytes(),
            CMD_TIMEOUT,
        )
        .ok();
    }
    assert_eq!(files(&ours), files(&theirs), "after update");
    assert_eq!(cg(&ours, "cpu", "cpu.shares"), "700");
}

/// The stats event has the same JSON structure as runc's for the same container.
#[test]
fn diff_events_stats_keys_match_runc() {
    if !v1_host() {
        return;
    }
    let Some(reference) = reference_path() else {
        eprintln!("NOTICE: no reference runtime; differential stats test skipped");
        return;
    };
    let mut ours = sleeper("diff-stats");
    let mut theirs = Container::with_runtime(&reference, "diff-stats-ref");
    theirs.args(&["sleep", "1000"]);
    let mut stats = Vec::new();
    for c in [&mut ours, &mut theirs] {
        set_resources(
            c,
            json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 50}, "cpu": {"quota": 50000, "period": 100000}}),
        );
        c.run_detached().ok();
        let out = c.cmd(&["events", "--stats", &c.id]).ok();
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["id"], c.id.as_str());
        stats.push(v);
    }
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    };
    for path in [
        "",
        "/data",
        "/data/memory",
        "/data/memory/usage",
        "/data/memory/swap",
        "/data/pids",
        "/data/cpu",
        "/data/cpuset",
    ] {
        let (a, b) = (
            stats[0].pointer(path).unwrap_or(&Value::Null),
            stats[1].pointer(path).unwrap_or(&Value::Null),
        );
        assert_eq!(keys(a), keys(b), "keys of {path:?}\nours: {a}\nrunc: {b}");
    }
    assert_eq!(
        stats[0].pointer("/data/memory/usage/limit"),
        stats[1].pointer("/data/memory/usage/limit")
    );
    assert_eq!(
        stats[0].pointer("/data/pids"),
        stats[1].pointer("/data/pids")
    );
}

#[test]
fn events_streams_stats_until_the_container_stops() {
    if !v1_host() || skip_known_runc_gap("events that end when the container stops") {
        return;
    }
    let mut c = sleeper("res-events-stream");
    c.run_detached().ok();
    let out = c.bundle.path().join("events.out");
    let mut cmd = c.command();
    cmd.args(["events", "--interval", "100ms", &c.id]);
    let mut events = spawn_to_files(cmd, &out);
    let lines = |p: &Path| fs::read_to_string(p).unwrap_or_default().lines().count();
    assert!(
        wait_until(Duration::from_secs(10), || lines(&out) >= 5),
        "fewer than 5 stats lines in 10 s"
    );
    assert!(events.try_wait().unwrap().is_none(), "events exited early");
    c.kill("KILL").ok();
    let st = wait_child(&mut events, Duration::from_secs(10));
    assert!(
        st.is_some_and(|s| s.success()),
        "events did not end: {st:?}"
    );
    let text = fs::read_to_string(&out).unwrap();
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert_eq!(v["type"], "stats", "{l}");
        assert_eq!(v["id"], c.id.as_str());
        assert!(v["data"]["memory"].is_object());
    }
}

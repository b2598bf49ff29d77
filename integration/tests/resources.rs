//! linux.resources and the resource verbs (pause, resume, update, events, ps) on the host's
//! cgroup layout — v1 (or hybrid) and pure v2: values are read back from the cgroup files of
//! that layout and, where cheap, proven by behaviour. A test that reads one layout's files says
//! so (NOTICE) on the other, where its counterpart runs. `hack/test-vm` runs the suite on a
//! pure v2 guest kernel.

use nucleus_integration::*;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const MIB: i64 = 1 << 20;

/// The host's cgroup layout: pure v2 (cgroup2 mounted on /sys/fs/cgroup) or v1 (including
/// systemd's hybrid layout, where the controllers are v1 hierarchies).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Layout {
    V1,
    V2,
}

fn layout() -> Layout {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        Layout::V2
    } else {
        Layout::V1
    }
}

/// True on a host of layout `want`; elsewhere prints why `test` does not run here.
fn on(want: Layout, test: &str) -> bool {
    let have = layout();
    if have != want {
        eprintln!(
            "NOTICE: {test} reads cgroup {want:?} files and this host is cgroup {have:?}: \
             not run here (its {have:?} counterpart is)"
        );
    }
    have == want
}

/// The container's cgroup directory: in the v1 hierarchy of `ctrl`, or on v2 the one
/// unified directory (where `ctrl` does not matter).
fn cg_dir(c: &Container, ctrl: &str) -> PathBuf {
    let rel = c.cgroups_path().expect("cgroupsPath");
    let base = Path::new("/sys/fs/cgroup");
    match layout() {
        Layout::V1 => base.join(ctrl),
        Layout::V2 => base.to_path_buf(),
    }
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

/// Checks the container's cgroup files on this host's layout: `v1` as (controller, file,
/// content), `v2` as (file, content).
#[track_caller]
fn expect_files(c: &Container, v1: &[(&str, &str, String)], v2: &[(&str, String)]) {
    match layout() {
        Layout::V1 => {
            for (ctrl, file, want) in v1 {
                assert_eq!(&cg(c, ctrl, file), want, "{ctrl}/{file}");
            }
        }
        Layout::V2 => {
            for (file, want) in v2 {
                assert_eq!(&cg(c, "", file), want, "{file}");
            }
        }
    }
}

/// runc's cpu.shares → cpu.weight conversion, spelled out for the values used here.
fn weight(shares: u64) -> String {
    (1 + (shares - 2) * 9999 / 262142).to_string()
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
    if !on(Layout::V1, "create_applies_every_v1_resource") {
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
    // cgroup v2 has no OOM-killer switch; runc ignores the field there, and so does nucleus.
    if !on(Layout::V1, "disable_oom_killer_is_applied") {
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
    // The shell reports the refused fork a moment after the kernel counted it.
    assert!(
        wait_until(Duration::from_secs(10), || c
            .container_stderr()
            .contains("fork")),
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
    if skip_known_runc_gap("events that end with the container and one oom event per kill") {
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
    let kills = match layout() {
        Layout::V1 => keyed(&cg(&c, "memory", "memory.oom_control"), "oom_kill"),
        Layout::V2 => keyed(&cg(&c, "memory", "memory.events"), "oom_kill"),
    }
    .unwrap_or(0);
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
    if skip_known_runc_gap("starting under a memory limit below 4 MiB") {
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
    let v1: &[(&str, &str)] = &[
        ("memory", "memory.limit_in_bytes"),
        ("memory", "memory.memsw.limit_in_bytes"),
        ("memory", "memory.soft_limit_in_bytes"),
        ("cpu", "cpu.shares"),
        ("cpu", "cpu.cfs_quota_us"),
        ("cpu", "cpu.cfs_period_us"),
        ("cpuset", "cpuset.cpus"),
        ("pids", "pids.max"),
    ];
    let v2: &[(&str, &str)] = &[
        ("memory", "memory.max"),
        ("memory", "memory.swap.max"),
        ("memory", "memory.low"),
        ("memory", "memory.high"),
        ("cpu", "cpu.weight"),
        ("cpu", "cpu.max"),
        ("cpuset", "cpuset.cpus"),
        ("pids", "pids.max"),
    ];
    match layout() {
        Layout::V1 => v1,
        Layout::V2 => v2,
    }
    .iter()
    .map(|(ctrl, f)| format!("{f}={}", cg(c, ctrl, f)))
    .collect()
}

#[test]
fn update_changes_limits_live() {
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
    expect_files(
        &c,
        &[
            ("memory", "memory.limit_in_bytes", (128 * MIB).to_string()),
            (
                "memory",
                "memory.memsw.limit_in_bytes",
                (256 * MIB).to_string(),
            ),
            (
                "memory",
                "memory.soft_limit_in_bytes",
                (64 * MIB).to_string(),
            ),
            ("cpu", "cpu.shares", "256".into()),
            ("cpu", "cpu.cfs_quota_us", "20000".into()),
            ("cpu", "cpu.cfs_period_us", "50000".into()),
            ("cpuset", "cpuset.cpus", "0".into()),
            ("pids", "pids.max", "30".into()),
        ],
        &[
            ("memory.max", (128 * MIB).to_string()),
            // v2 limits swap alone: memory+swap 256m - memory 128m.
            ("memory.swap.max", (128 * MIB).to_string()),
            ("memory.low", (64 * MIB).to_string()),
            ("cpu.weight", weight(256)),
            ("cpu.max", "20000 50000".into()),
            ("cpuset.cpus", "0".into()),
            ("pids.max", "30".into()),
        ],
    );

    // A file (Podman's way): only what it names changes.
    let file = c.bundle.path().join("res.json");
    fs::write(
        &file,
        json!({"memory": {"limit": 100 * MIB}, "pids": {"limit": 40}}).to_string(),
    )
    .unwrap();
    c.cmd(&["update", "--resources", file.to_str().unwrap(), &id])
        .ok();
    expect_files(
        &c,
        &[
            ("memory", "memory.limit_in_bytes", (100 * MIB).to_string()),
            ("pids", "pids.max", "40".into()),
            ("cpu", "cpu.shares", "256".into()),
        ],
        &[
            ("memory.max", (100 * MIB).to_string()),
            ("pids.max", "40".into()),
            ("cpu.weight", weight(256)),
        ],
    );

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
    expect_files(
        &c,
        &[
            ("memory", "memory.limit_in_bytes", (80 * MIB).to_string()),
            ("cpu", "cpu.shares", "1024".into()),
            ("cpu", "cpu.cfs_quota_us", "-1".into()),
            ("pids", "pids.max", "max".into()),
        ],
        &[
            ("memory.max", (80 * MIB).to_string()),
            ("memory.swap.max", (80 * MIB).to_string()),
            ("cpu.weight", weight(1024)),
            ("cpu.max", "max 100000".into()),
            ("pids.max", "max".into()),
        ],
    );
    assert_eq!(c.status(), "running");

    // Unlimited memory takes the (stored) swap limit with it, as in runc.
    c.cmd(&["update", "--memory", "-1", &id]).ok();
    if layout() == Layout::V1 {
        let unlimited = cg(&c, "memory", "memory.limit_in_bytes");
        assert!(unlimited.parse::<u64>().unwrap() > 1 << 60, "{unlimited}");
        assert_eq!(cg(&c, "memory", "memory.memsw.limit_in_bytes"), unlimited);
    } else {
        expect_files(
            &c,
            &[],
            &[
                ("memory.max", "max".into()),
                ("memory.swap.max", "max".into()),
            ],
        );
    }
    c.cmd(&["update", "--memory", "80m", "--memory-swap", "160m", &id])
        .ok();

    // The merged resources are remembered for later updates (in the state dir's copy of
    // the config).
    if !runtime_is_runc() {
        let config: Value = serde_json::from_str(
            &fs::read_to_string(c.root().join(&id).join("config.json")).unwrap(),
        )
        .unwrap();
        let r = &config["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 80 * MIB);
        assert_eq!(r["memory"]["reservation"], 64 * MIB);
        assert_eq!(r["cpu"]["period"], 100000);
        assert_eq!(r["pids"]["limit"], -1);
    }
}

#[test]
fn update_refuses_bad_values_and_changes_nothing() {
    // runc writes cpu.shares before noticing the kernel clamped it.
    if skip_known_runc_gap("validating update values before writing any") {
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
    let mut cases: Vec<(&[&str], &str)> = vec![
        (&["--memory", "-5"], "memory"),
        (&["--memory", "12parsecs"], "memory"),
        (&["--cpu-period", "abc"], "cpu-period"),
        (&["--cpu-share", "1"], "shares"),
        (&["--cpu-quota", "5"], "quota"),
        (&["--pids-limit", "many"], "pids-limit"),
        (&["--cpuset-cpus", "0-"], "cpus"),
        (&["--l3-cache-schema", "L3:0=f"], "Intel RDT"),
    ];
    match layout() {
        // Below current usage v1 refuses (v2 reclaims or OOM-kills instead); and the cpu
        // realtime files exist only on v1. Both fail after memory was written: it is restored.
        Layout::V1 => cases.extend([
            (&["--memory", "100k", "--pids-limit", "7"][..], "memory"),
            (
                &["--memory", "200m", "--cpu-rt-runtime", "2000000"][..],
                "rt_runtime",
            ),
        ]),
        // The kernel refuses a cpuset outside the parent's only once memory was written.
        Layout::V2 => cases.push((&["--memory", "200m", "--cpuset-cpus", "4000"][..], "cpuset")),
    }
    for (args, what) in &cases {
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
        r#"{"unified": {"memory.max": "lots"}}"#,
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

/// The freezer's state as the kernel reports it: v1 freezer.state, v2 cgroup.freeze plus
/// the `frozen` key of cgroup.events (set once every task is frozen).
fn freezer_state(c: &Container) -> String {
    match layout() {
        Layout::V1 => cg(c, "freezer", "freezer.state"),
        Layout::V2 => format!(
            "freeze={} frozen={}",
            cg(c, "", "cgroup.freeze"),
            keyed(&cg(c, "", "cgroup.events"), "frozen").unwrap_or(9)
        ),
    }
}

#[test]
fn pause_freezes_and_resume_thaws() {
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
    let frozen = match layout() {
        Layout::V1 => "FROZEN",
        Layout::V2 => "freeze=1 frozen=1",
    };
    assert_eq!(freezer_state(&c), frozen);
    let frozen_at = count(&c);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count(&c), frozen_at, "the counter advanced while paused");
    let out = c.cmd(&["pause", &id]).fails();
    assert!(out.stderr.contains("container not running"), "{out}");
    let out = c.cmd(&["exec", &id, "true"]).fails();
    assert!(out.stderr.contains("paused"), "{out}");

    c.cmd(&["resume", &id]).ok();
    assert_eq!(c.status(), "running");
    let thawed = match layout() {
        Layout::V1 => "THAWED",
        Layout::V2 => "freeze=0 frozen=0",
    };
    assert_eq!(freezer_state(&c), thawed);
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
    let cases: Vec<(Value, &str)> = match layout() {
        Layout::V1 => vec![
            // Refused before any cgroup file is written (cgroups::validate): named by field.
            (json!({"memory": {"limit": -5}}), "memory.limit"),
            (json!({"memory": {"swappiness": 200}}), "swappiness"),
            (json!({"cpu": {"shares": 100_000_000u64}}), "cpu.shares"),
            (json!({"cpu": {"quota": 5}}), "cpu.quota"),
            (json!({"cpu": {"cpus": "4000-4001"}}), "cpuset.cpus"),
            (json!({"unified": {"memory.max": "1"}}), "unified"),
            (json!({"unified": {"no.such.key": "1"}}), "unified"),
        ],
        Layout::V2 => vec![
            (json!({"memory": {"limit": -5}}), "memory"),
            (
                json!({"memory": {"limit": 64 * MIB, "swap": 32 * MIB}}),
                "swap",
            ),
            (json!({"cpu": {"shares": 100_000_000u64}}), "shares"),
            (json!({"cpu": {"quota": 5}}), "cpu.quota"),
            (json!({"cpu": {"cpus": "4000-4001"}}), "cpuset.cpus"),
            (json!({"unified": {"memory.max": "lots"}}), "memory.max"),
            (json!({"unified": {"no.such.key": "1"}}), "no.such.key"),
            (json!({"unified": {"../escape": "1"}}), "unified"),
            (
                json!({"hugepageLimits": [{"pageSize": "3MB", "limit": 4 * MIB}]}),
                "hugetlb.3MB.max",
            ),
        ],
    };
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
    let reference = reference();
    let mut ours = sleeper("diff-res");
    let mut theirs = Container::with_runtime(&reference, "diff-res-ref");
    theirs.args(&["sleep", "1000"]);
    for c in [&mut ours, &mut theirs] {
        set_resources(c, full_resources());
        c.run_detached().ok();
    }
    let files = |c: &Container| -> Vec<String> {
        if layout() == Layout::V2 {
            return V2_DIFF_FILES
                .iter()
                .map(|f| format!("{f}={}", cg(c, "", f)))
                .collect();
        }
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
    match layout() {
        Layout::V1 => assert_eq!(cg(&ours, "cpu", "cpu.shares"), "700"),
        Layout::V2 => assert_eq!(cg(&ours, "", "cpu.weight"), weight(700)),
    }
}

/// The v2 files `full_resources` and the update of `diff_cgroup_files_match_runc` touch.
const V2_DIFF_FILES: &[&str] = &[
    "memory.max",
    "memory.low",
    "memory.swap.max",
    "cpu.weight",
    "cpu.max",
    "cpuset.cpus",
    "cpuset.mems",
    "pids.max",
    "io.weight",
];

/// The stats event has the same JSON structure as runc's for the same container.
#[test]
fn diff_events_stats_keys_match_runc() {
    let reference = reference();
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
        let mut ours = keys(a);
        // Deliberate differences on v2, where runc 1.1 leaves these out (it has them on v1):
        // nucleus reports memory.peak (Linux >= 5.19) as `max` and the effective cpuset.
        if layout() == Layout::V2 {
            let extras: &[(&str, &str)] = &[
                ("/data/memory/usage", "max"),
                ("/data/cpuset", "cpus"),
                ("/data/cpuset", "mems"),
            ];
            for (p, k) in extras {
                if *p == path && !keys(b).contains(&k.to_string()) {
                    assert!(!a[*k].is_null(), "{path} {k}: {a}");
                    ours.retain(|x| x != k);
                }
            }
            if path == "/data/memory/usage" && !a["max"].is_null() {
                let peak = a["max"].as_u64().unwrap_or(0);
                assert!(peak >= a["usage"].as_u64().unwrap_or(u64::MAX), "{a}");
            }
        }
        assert_eq!(ours, keys(b), "keys of {path:?}\nours: {a}\nrunc: {b}");
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
    if skip_known_runc_gap("events that end when the container stops") {
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

/// A whole block device of this host ("MAJ:MIN") for io.max, if it has one.
fn block_device() -> Option<String> {
    let mut devs: Vec<String> = fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .filter_map(|e| fs::read_to_string(e.path().join("dev")).ok())
        .map(|d| d.trim().to_string())
        .collect();
    devs.sort();
    devs.into_iter().next()
}

/// The io weight file of the container on v2: BFQ's where the kernel has it, else io.weight
/// (both print "default N").
fn io_weight_v2(c: &Container) -> String {
    let dir = cg_dir(c, "");
    let file = if dir.join("io.bfq.weight").exists() {
        "io.bfq.weight"
    } else {
        "io.weight"
    };
    cg(c, "", file)
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("default ")
        .to_string()
}

#[test]
fn create_applies_every_v2_resource() {
    if !on(Layout::V2, "create_applies_every_v2_resource") {
        return;
    }
    let dev = block_device();
    let mut res = json!({
        "memory": {"limit": 64 * MIB, "reservation": 32 * MIB, "swap": 96 * MIB},
        "cpu": {
            "shares": 512, "quota": 50000, "period": 100000, "burst": 20000,
            "cpus": "0", "mems": "0"
        },
        "pids": {"limit": 50},
        "blockIO": {"weight": 300},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MIB}],
        "unified": {"memory.high": (48 * MIB).to_string(), "pids.max": "40"}
    });
    match &dev {
        Some(d) => {
            let (major, minor) = d.split_once(':').unwrap();
            let (major, minor): (i64, i64) = (major.parse().unwrap(), minor.parse().unwrap());
            res["blockIO"]["throttleReadBpsDevice"] =
                json!([{"major": major, "minor": minor, "rate": 1048576}]);
            res["blockIO"]["throttleWriteIOPSDevice"] =
                json!([{"major": major, "minor": minor, "rate": 100}]);
        }
        None => eprintln!("NOTICE: this host has no block device: io.max throttles not checked"),
    }
    let mut c = sleeper("res-create-v2");
    set_resources(&mut c, res);
    c.create().ok();
    let swap_accounting = cg_dir(&c, "").join("memory.swap.max").exists();
    let mut want: Vec<(&str, String)> = vec![
        ("memory.max", (64 * MIB).to_string()),
        ("memory.low", (32 * MIB).to_string()),
        // `unified` is written last and wins over the typed field (pids.limit 50).
        ("memory.high", (48 * MIB).to_string()),
        ("pids.max", "40".into()),
        ("cpu.weight", weight(512)),
        ("cpu.max", "50000 100000".into()),
        ("cpu.max.burst", "20000".into()),
        ("cpuset.cpus", "0".into()),
        ("cpuset.mems", "0".into()),
        ("hugetlb.2MB.max", (4 * MIB).to_string()),
    ];
    if swap_accounting {
        // memory+swap 96m - memory 64m.
        want.push(("memory.swap.max", (32 * MIB).to_string()));
    } else {
        eprintln!("NOTICE: this kernel has no swap accounting: memory.swap.max not checked");
    }
    if cg_dir(&c, "").join("hugetlb.2MB.rsvd.max").exists() {
        want.push(("hugetlb.2MB.rsvd.max", (4 * MIB).to_string()));
    }
    expect_files(&c, &[], &want);
    // blkio weight 300 → io.weight 1 + 290 * 9999 / 990 = 2930 (BFQ takes 300 as it is).
    let w = io_weight_v2(&c);
    if cg_dir(&c, "").join("io.bfq.weight").exists() {
        assert_eq!(w, "300");
    } else {
        assert_eq!(w, "2930");
    }
    if let Some(d) = &dev {
        let io_max = cg(&c, "", "io.max");
        assert!(
            io_max
                .lines()
                .any(|l| l == format!("{d} rbps=1048576 wbps=max riops=max wiops=100")),
            "io.max: {io_max:?}"
        );
    }
    // Every controller of the root is enabled down to the container, and the init (blocked
    // until start) is in the container's cgroup.
    let root = fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap();
    let mine = cg(&c, "", "cgroup.controllers");
    for ctrl in root.split_whitespace() {
        assert!(
            mine.split_whitespace().any(|m| m == ctrl),
            "controller {ctrl} not enabled for the container: {mine:?}"
        );
    }
    let pid = c.pid();
    assert_eq!(cg(&c, "", "cgroup.procs"), pid.to_string());
    c.delete_force().ok();
    assert!(
        cgroup_dirs(&c.cgroups_path().unwrap()).is_empty(),
        "cgroup left after delete"
    );
}

#[test]
fn cpu_idle_is_applied_on_v2() {
    if !on(Layout::V2, "cpu_idle_is_applied_on_v2") {
        return;
    }
    let mut c = sleeper("res-idle");
    set_resources(&mut c, json!({"cpu": {"idle": 1}}));
    c.create().ok();
    assert_eq!(cg(&c, "", "cpu.idle"), "1");
    exec_stdin(
        c.command().args(["update", "-r", "-", &c.id]),
        json!({"cpu": {"idle": 0}}).to_string().as_bytes(),
        CMD_TIMEOUT,
    )
    .ok();
    assert_eq!(cg(&c, "", "cpu.idle"), "0");
}

/// rdma.max takes limits only for devices the kernel has: with one (any under
/// /sys/class/infiniband) the limits are read back; without, create fails naming rdma and
/// leaves nothing behind.
#[test]
fn rdma_limits() {
    let dev = fs::read_dir("/sys/class/infiniband")
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned());
    let name = dev.clone().unwrap_or_else(|| "nosuchdev0".into());
    let mut c = sleeper("res-rdma");
    set_resources(
        &mut c,
        json!({"rdma": {name.clone(): {"hcaHandles": 3, "hcaObjects": 1000}}}),
    );
    if let Some(d) = dev {
        c.create().ok();
        let (ctrl, file) = match layout() {
            Layout::V1 => ("rdma", "rdma.max"),
            Layout::V2 => ("", "rdma.max"),
        };
        let text = cg(&c, ctrl, file);
        assert!(
            text.lines()
                .any(|l| l == format!("{d} hca_handle=3 hca_object=1000")),
            "rdma.max: {text:?}"
        );
    } else {
        eprintln!("NOTICE: no RDMA device on this host: only the refusal is checked");
        let out = c.create().fails();
        assert!(out.stderr.contains("rdma"), "{out}");
        assert!(!c.root().join(&c.id).exists(), "state dir left");
        assert!(cgroup_dirs(&c.cgroups_path().unwrap()).is_empty());
    }
}

/// The device rules are enforced by the kernel — the v1 devices controller or, on v2, the
/// eBPF program nucleus attaches: default devices usable, configured ones per their access
/// bits, everything else refused on open. Creating nodes (mknod, "m") stays allowed for every
/// char and block device, as runc's default rules say; opening them is what the rules refuse.
#[test]
fn device_rules_are_enforced() {
    let mut c = Container::new("res-devices");
    let caps = json!([
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_MKNOD"
    ]);
    for set in ["bounding", "effective", "permitted"] {
        c.config()["process"]["capabilities"][set] = caps.clone();
    }
    c.config()["linux"]["devices"] = json!([
        {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11},
        {"path": "/dev/mem", "type": "c", "major": 1, "minor": 1},
    ]);
    c.config()["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}
    ]);
    c.sh(
        "try() { if \"$@\" 2>/dev/shm/err; then echo \"$1 $2 ok\"; else echo \"$1 $2 refused: $(cat /dev/shm/err)\"; fi; }; \
         echo x > /dev/null && echo null-write-ok; head -c 2 /dev/zero | wc -c; \
         head -c 2 /dev/urandom | wc -c; \
         try sh -c 'echo nucleus-device-test > /dev/kmsg'; \
         try head -c 1 /dev/kmsg; \
         try head -c 1 /dev/mem; \
         try mknod /dev/sda b 8 0; try head -c 1 /dev/sda; \
         try mknod /dev/mynull c 1 3; try sh -c 'echo x > /dev/mynull'",
    );
    let out = c.run().ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let denied = |l: &str| l.contains("refused") && l.contains("not permitted");
    assert_eq!(lines.len(), 10, "{out}");
    assert_eq!(lines[0], "null-write-ok", "{out}");
    assert_eq!(lines[1], "2", "{out}");
    assert_eq!(lines[2], "2", "{out}");
    assert_eq!(lines[3], "sh -c ok", "kmsg is allowed for writing\n{out}");
    assert!(denied(lines[4]), "kmsg is not allowed for reading\n{out}");
    assert!(denied(lines[5]), "/dev/mem is not allowed at all\n{out}");
    assert_eq!(lines[6], "mknod /dev/sda ok", "{out}");
    assert!(
        denied(lines[7]),
        "a node made in the container is still refused\n{out}"
    );
    assert_eq!(lines[8], "mknod /dev/mynull ok", "{out}");
    assert_eq!(
        lines[9], "sh -c ok",
        "a new node of an allowed device works\n{out}"
    );
}

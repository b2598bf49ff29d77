//! The systemd cgroup driver (`--systemd-cgroup`). On a host with systemd as PID 1 the
//! container's scope is checked from the host side (systemctl show, the cgroup files) through
//! create, update, pause/resume, ps, kill --all and delete. Elsewhere the tests say so and
//! check that nucleus refuses the driver with a clear error and leaves nothing behind.

use nucleus_integration::*;
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const MIB: i64 = 1 << 20;

fn systemd_host() -> bool {
    let yes = Path::new("/run/systemd/system").is_dir();
    if !yes {
        eprintln!(
            "NOTICE: systemd is not PID 1 on this host; checking that --systemd-cgroup is refused instead of the scope"
        );
    }
    yes
}

fn v2_host() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A container under the systemd driver in `system.slice:nucleus-it:<id>`.
fn sd_container(name: &str) -> Container {
    let mut c = Container::new(name);
    c.global_args.push("--systemd-cgroup".into());
    let id = c.id.clone();
    c.config()["linux"]["cgroupsPath"] = json!(format!("system.slice:nucleus-it:{id}"));
    c
}

fn unit(c: &Container) -> String {
    format!("nucleus-it-{}.scope", c.id)
}

/// The scope's directory in the hierarchy of `ctrl` (`""` = cgroup2).
fn scope_dir(c: &Container, ctrl: &str) -> PathBuf {
    let base = if v2_host() || ctrl.is_empty() {
        PathBuf::from("/sys/fs/cgroup")
    } else {
        Path::new("/sys/fs/cgroup").join(ctrl)
    };
    base.join("system.slice").join(unit(c))
}

#[track_caller]
fn read(p: PathBuf) -> String {
    fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// `systemctl show -p P --value UNIT`.
fn show(unit: &str, prop: &str) -> String {
    let out = exec(
        Command::new("systemctl").args(["show", "-p", prop, "--value", unit]),
        Duration::from_secs(20),
    );
    out.stdout.trim().to_string()
}

#[test]
fn bad_cgroups_path_is_refused() {
    let mut c = sd_container("sd-badpath");
    c.config()["linux"]["cgroupsPath"] = json!("/not/a/triple");
    let out = c.create().fails();
    assert!(
        out.stderr.contains("/not/a/triple") && out.stderr.contains("slice:prefix:name"),
        "{out}"
    );
    let mut c = sd_container("sd-badslice");
    c.config()["linux"]["cgroupsPath"] = json!("bad--name.slice:p:n");
    let out = c.create().fails();
    assert!(out.stderr.contains("invalid slice name"), "{out}");
    assert_eq!(c.cmd(&["list", "-q"]).ok().stdout.trim(), "");
}

#[test]
fn bad_property_annotation_is_refused() {
    for (key, value, why) in [
        (
            "org.systemd.property.TimeoutStopUSec",
            "uint64 -5",
            "out of range",
        ),
        ("org.systemd.property.X1", "true", "ASCII letters"),
        (
            "org.systemd.property.CollectMode",
            "'unterminated",
            "cannot parse",
        ),
    ] {
        let mut c = sd_container("sd-badprop");
        c.config()["annotations"] = json!({ key: value });
        let out = c.create().fails();
        assert!(
            out.stderr.contains(&format!("annotation {key}")) && out.stderr.contains(why),
            "{key}={value}: {out}"
        );
        assert_eq!(c.cmd(&["list", "-q"]).ok().stdout.trim(), "");
    }
}

#[test]
fn scope_lifecycle() {
    let mut c = sd_container("sd-life");
    c.sh("sleep 1000");
    c.config()["linux"]["resources"] = json!({
        "memory": {"limit": 64 * MIB, "reservation": 32 * MIB},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
        "pids": {"limit": 100}
    });
    c.config()["annotations"] = json!({
        "org.systemd.property.TimeoutStopSec": "7",
        "org.systemd.property.CollectMode": "'inactive-or-failed'"
    });
    if !systemd_host() {
        let out = c.create().fails();
        assert!(
            out.stderr
                .contains("systemd cgroup driver requested but systemd is not running"),
            "{out}"
        );
        assert_eq!(c.cmd(&["list", "-q"]).ok().stdout.trim(), "");
        return;
    }
    let u = unit(&c);
    let v2 = v2_host();
    c.create().ok();
    let pid = c.pid();

    // The scope, from systemd's side.
    assert_eq!(show(&u, "ActiveState"), "active");
    assert_eq!(show(&u, "Slice"), "system.slice");
    assert_eq!(show(&u, "Delegate"), "yes");
    assert_eq!(show(&u, "TimeoutStopUSec"), "7s");
    assert_eq!(show(&u, "CollectMode"), "inactive-or-failed");
    assert_eq!(show(&u, "TasksMax"), "100");
    assert_eq!(show(&u, "CPUQuotaPerSecUSec"), "500ms");
    if v2 {
        assert_eq!(show(&u, "MemoryMax"), (64 * MIB).to_string());
        assert_eq!(show(&u, "MemoryLow"), (32 * MIB).to_string());
        assert_eq!(show(&u, "CPUWeight"), "39");
    } else {
        assert_eq!(show(&u, "MemoryLimit"), (64 * MIB).to_string());
        assert_eq!(show(&u, "CPUShares"), "1024");
    }
    assert_eq!(show(&u, "DevicePolicy"), "strict");

    // The same values in the files, and the init inside.
    let procs_dir = scope_dir(&c, if v2 { "" } else { "pids" });
    let procs = read(procs_dir.join("cgroup.procs"));
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "pid {pid} not in {procs}"
    );
    if v2 {
        let d = scope_dir(&c, "");
        assert_eq!(read(d.join("memory.max")), (64 * MIB).to_string());
        assert_eq!(read(d.join("memory.low")), (32 * MIB).to_string());
        assert_eq!(read(d.join("pids.max")), "100");
        assert_eq!(read(d.join("cpu.max")), "50000 100000");
    } else {
        assert_eq!(
            read(scope_dir(&c, "memory").join("memory.limit_in_bytes")),
            (64 * MIB).to_string()
        );
        assert_eq!(read(scope_dir(&c, "pids").join("pids.max")), "100");
        // A controller systemd does not manage: nucleus made the directory itself.
        assert!(scope_dir(&c, "freezer").is_dir());
    }
    let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(own.contains(&format!("/system.slice/{u}")), "{own}");

    c.start().ok();
    assert_eq!(c.status(), "running");

    // update: through systemd and the files.
    c.cmd(&[
        "update",
        "--memory",
        &(128 * MIB).to_string(),
        "--pids-limit",
        "50",
        &c.id,
    ])
    .ok();
    assert_eq!(show(&u, "TasksMax"), "50");
    if v2 {
        assert_eq!(show(&u, "MemoryMax"), (128 * MIB).to_string());
        assert_eq!(
            read(scope_dir(&c, "").join("memory.max")),
            (128 * MIB).to_string()
        );
        assert_eq!(read(scope_dir(&c, "").join("pids.max")), "50");
    } else {
        assert_eq!(show(&u, "MemoryLimit"), (128 * MIB).to_string());
        assert_eq!(read(scope_dir(&c, "pids").join("pids.max")), "50");
    }

    // pause/resume on the scope's freezer.
    c.cmd(&["pause", &c.id]).ok();
    assert_eq!(c.status(), "paused");
    if v2 {
        assert_eq!(read(scope_dir(&c, "").join("cgroup.freeze")), "1");
    } else {
        assert_eq!(
            read(scope_dir(&c, "freezer").join("freezer.state")),
            "FROZEN"
        );
    }
    c.cmd(&["resume", &c.id]).ok();
    assert_eq!(c.status(), "running");

    // ps lists the init from the scope's cgroup.procs.
    let ps = c.cmd(&["ps", "--format", "json", &c.id]).ok();
    assert!(ps.stdout.contains(&pid.to_string()), "{ps}");

    // kill --all empties the scope.
    c.cmd(&["kill", "--all", &c.id, "KILL"]).ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));

    // delete stops the unit and nothing remains.
    c.delete().ok();
    let state = show(&u, "ActiveState");
    assert!(state == "inactive" || state.is_empty(), "{u} is {state}");
    assert_ne!(show(&u, "LoadState"), "loaded");
    assert!(!scope_dir(&c, "").exists());
    if !v2 {
        assert!(!scope_dir(&c, "freezer").exists());
        assert!(!scope_dir(&c, "memory").exists());
    }
}

#[test]
fn default_cgroups_path_gives_runtime_scope() {
    let mut c = Container::new("sd-default");
    c.global_args.push("--systemd-cgroup".into());
    c.config()["linux"]
        .as_object_mut()
        .unwrap()
        .remove("cgroupsPath");
    c.sh("sleep 1000");
    if !systemd_host() {
        let out = c.create().fails();
        assert!(out.stderr.contains("systemd is not running"), "{out}");
        return;
    }
    c.create().ok();
    let u = format!("nucleus-{}.scope", c.id);
    assert_eq!(show(&u, "ActiveState"), "active");
    assert_eq!(show(&u, "Slice"), "system.slice");
    let own = fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).unwrap();
    assert!(own.contains(&format!("/system.slice/{u}")), "{own}");
    c.delete_force().ok();
    assert_ne!(show(&u, "ActiveState"), "active");
}

/// The cgroupsPath forms the real callers pass under their systemd managers: Podman's
/// `machine.slice:libpod:<64 hex>` and a kubelet-style pod slice that does not exist yet
/// (`machine-<pod>.slice:cri-containerd:<id>`: systemd makes the slice). In each, the init
/// and an exec'd process are in the scope, `events --stats` and `ps` read it, and `kill --all`
/// then `delete` leave neither the unit nor its directory.
#[test]
fn callers_cgroups_paths() {
    let pod = format!("itpod{}", std::process::id());
    let mut c = sd_container("sd-callers");
    let hex: String = c.id.bytes().map(|b| format!("{b:02x}")).collect();
    let hex = format!("{hex:0>64}")[..64].to_string();
    let cases = [
        (
            "machine.slice".to_string(),
            format!("machine.slice:libpod:{hex}"),
            format!("libpod-{hex}.scope"),
            format!("/machine.slice/libpod-{hex}.scope"),
        ),
        (
            format!("machine-{pod}.slice"),
            format!("machine-{pod}.slice:cri-containerd:{}", c.id),
            format!("cri-containerd-{}.scope", c.id),
            format!(
                "/machine.slice/machine-{pod}.slice/cri-containerd-{}.scope",
                c.id
            ),
        ),
    ];
    c.sh("sleep 1000");
    c.config()["linux"]["resources"] =
        json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 40}});
    for (slice, cgroups_path, u, path) in cases {
        c.config()["linux"]["cgroupsPath"] = json!(cgroups_path);
        if !systemd_host() {
            let out = c.create().fails();
            assert!(out.stderr.contains("systemd is not running"), "{out}");
            assert_eq!(c.cmd(&["list", "-q"]).ok().stdout.trim(), "");
            continue;
        }
        c.create().ok();
        let pid = c.pid();
        assert_eq!(show(&u, "ActiveState"), "active", "{cgroups_path}");
        assert_eq!(show(&u, "Slice"), slice);
        assert_eq!(show(&u, "ControlGroup"), path);
        let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let want = if v2_host() {
            format!("0::{path}")
        } else {
            format!(":name=systemd:{path}")
        };
        assert!(own.lines().any(|l| l.ends_with(&want)), "{own}");
        c.start().ok();

        // An exec'd process joins the scope.
        c.cmd(&["exec", "--detach", &c.id, "sleep", "999"]).ok();
        let procs_dir = if v2_host() {
            PathBuf::from(format!("/sys/fs/cgroup{path}"))
        } else {
            PathBuf::from(format!("/sys/fs/cgroup/pids{path}"))
        };
        let procs = read(procs_dir.join("cgroup.procs"));
        assert_eq!(procs.lines().count(), 2, "{procs}");
        assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");

        // events --stats and ps read the scope.
        let out = c.cmd(&["events", "--stats", &c.id]).ok();
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["data"]["pids"]["current"], 2, "{out}");
        assert_eq!(v["data"]["pids"]["limit"], 40, "{out}");
        assert_eq!(v["data"]["memory"]["usage"]["limit"], 64 * MIB, "{out}");
        let ps = c.cmd(&["ps", "--format", "json", &c.id]).ok();
        let listed: Vec<i64> = serde_json::from_str(&ps.stdout).unwrap();
        assert_eq!(listed.len(), 2, "{ps}");

        c.cmd(&["kill", "--all", &c.id, "KILL"]).ok();
        assert!(c.wait_status("stopped", Duration::from_secs(10)));
        c.delete().ok();
        assert_ne!(show(&u, "LoadState"), "loaded", "{u} still loaded");
        assert!(!procs_dir.exists(), "{} left", procs_dir.display());
        if slice != "machine.slice" {
            exec(
                Command::new("systemctl").args(["stop", &slice]),
                Duration::from_secs(20),
            )
            .ok();
        }
    }
}

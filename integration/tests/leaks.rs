//! 100 create/start/kill/delete cycles leave no mount, cgroup, process or state dir.

use nucleus_integration::*;
use serde_json::json;
use std::fs;
use std::time::Duration;

#[test]
fn hundred_lifecycles_leave_nothing_behind() {
    let mut c = Container::new("leak");
    c.args(&["sleep", "30"]);
    let bundle = c.bundle.path().to_str().unwrap().to_string();
    let rootfs = c.bundle.rootfs().to_str().unwrap().to_string();
    let mut ids = Vec::new();
    let mut pids = Vec::new();
    for i in 0..100 {
        let id = format!("{}-{i}", c.id);
        c.config()["linux"]["cgroupsPath"] = json!(format!("/{id}"));
        c.bundle.write_config();
        c.extra_ids.push(id.clone());
        c.cmd(&["create", "--bundle", &bundle, &id]).ok();
        let st: serde_json::Value =
            serde_json::from_str(&c.cmd(&["state", &id]).ok().stdout).unwrap();
        pids.push(i32::try_from(st["pid"].as_i64().unwrap()).unwrap());
        c.cmd(&["start", &id]).ok();
        c.cmd(&["kill", &id, "KILL"]).ok();
        let mut stopped = false;
        for _ in 0..500 {
            let st = c.cmd(&["state", &id]);
            if st.success() && st.stdout.contains("\"stopped\"") {
                stopped = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(stopped, "cycle {i}: container did not stop");
        c.cmd(&["delete", &id]).ok();
        ids.push(id);
    }
    std::thread::sleep(Duration::from_millis(100));
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mi.contains(&rootfs),
        "rootfs mount left on the host:\n{mi}"
    );
    for id in &ids {
        assert!(!mi.contains(id.as_str()), "mount naming {id} left:\n{mi}");
        let left = cgroup_dirs(&format!("/{id}"));
        assert!(left.is_empty(), "cgroup left: {left:?}");
    }
    for p in &pids {
        assert!(!pid_alive(*p), "process {p} left");
    }
    let state_left: Vec<_> = fs::read_dir(c.root())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert!(
        state_left.is_empty(),
        "state dirs left under --root: {state_left:?}"
    );
    assert_eq!(c.cmd(&["list", "-q"]).ok().stdout.trim(), "");
}

#[test]
fn failed_creates_leave_nothing_behind() {
    // Errors at different stages of create: each must clean up after itself.
    let mut c = Container::new("leak-fail");
    let bundle = c.bundle.path().to_str().unwrap().to_string();
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let edits: Vec<Edit> = vec![
        Box::new(|v| v["process"]["args"] = json!(["/no/such/binary"])),
        Box::new(|v| {
            v["mounts"].as_array_mut().unwrap().push(json!({"destination": "/x", "type": "bind", "source": "/no/such/src", "options": ["bind"]}))
        }),
        Box::new(|v| v["process"]["cwd"] = json!("relative")),
        Box::new(|v| v["hooks"] = json!({"prestart": [{"path": "/bin/false"}]})),
        Box::new(|v| {
            v["linux"]["namespaces"] =
                json!([{"type": "mount"}, {"type": "network", "path": "/no/such/ns"}])
        }),
    ];
    for (i, edit) in edits.iter().enumerate() {
        let id = format!("{}-{i}", c.id);
        let mut cfg = default_config(&["true"]);
        cfg["linux"]["cgroupsPath"] = json!(format!("/{id}"));
        edit(&mut cfg);
        *c.config() = cfg;
        c.bundle.write_config();
        c.extra_ids.push(id.clone());
        let out = c.cmd(&["run", "--bundle", &bundle, &id]);
        assert!(
            !out.success() && !out.timed_out,
            "case {i} should fail\n{out}"
        );
        c.cmd(&["state", &id]).fails();
        assert!(
            cgroup_dirs(&format!("/{id}")).is_empty(),
            "case {i}: cgroup left"
        );
    }
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mi.contains(c.bundle.rootfs().to_str().unwrap()),
        "rootfs mount left"
    );
    let state_left: Vec<_> = fs::read_dir(c.root())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert!(state_left.is_empty(), "state dirs left: {state_left:?}");
}

//! Differential: runc and this manager, given the same resources, leave the same values
//! in the cgroup files (root; runc installed by hack/deps).

use super::*;

struct RuncContainer(String);

impl Drop for RuncContainer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runc")
            .args(["delete", "-f", &self.0])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn have_runc() -> bool {
    std::process::Command::new("runc")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Differential check: runc and this manager, given the same linux.resources, leave the
/// same values in the cgroup files.
#[test]
#[ignore = "needs root"]
fn real_same_files_as_runc() {
    need_root();
    let busybox = need_busybox();
    assert!(
        have_runc(),
        "needs runc, the reference (installed by hack/deps)"
    );
    let mut r = full_resources();
    let mut blkio = LinuxBlockIoBuilder::default().weight(500u16);
    // A throttle on a block device that exists here, if any loop device does.
    if let Ok(dev) = fs::read_to_string("/sys/block/loop0/dev") {
        let (maj, min) = dev.trim().split_once(':').unwrap();
        blkio = blkio.throttle_read_bps_device(vec![LinuxThrottleDeviceBuilder::default()
            .major(maj.parse::<i64>().unwrap())
            .minor(min.parse::<i64>().unwrap())
            .rate(1048576u64)
            .build()
            .unwrap()]);
    }
    r.set_block_io(Some(blkio.build().unwrap()));
    r.set_devices(Some(vec![
        spec_rule(false, "* *:* rwm"),
        spec_rule(true, "c 1:11 rw"),
    ]));

    let id = format!("nucleus-diff-{}", std::process::id());
    let runc_path = format!("/{id}-runc");
    let bundle = tempfile::tempdir().unwrap();
    let rootfs = bundle.path().join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sleep")).unwrap();
    let ok = std::process::Command::new("runc")
        .arg("spec")
        .current_dir(bundle.path())
        .status()
        .unwrap();
    assert!(ok.success());
    let cfg_path = bundle.path().join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&content(&cfg_path)).unwrap();
    cfg["process"]["args"] = serde_json::json!(["sleep", "100"]);
    cfg["process"]["terminal"] = serde_json::json!(false);
    cfg["linux"]["cgroupsPath"] = serde_json::json!(runc_path);
    cfg["linux"]["resources"] = serde_json::to_value(&r).unwrap();
    fs::write(&cfg_path, serde_json::to_string(&cfg).unwrap()).unwrap();

    let _runc = RuncContainer(id.clone());
    // The container inherits runc's stdio, so no pipes: they would stay open for its life.
    let log = bundle.path().join("runc.err");
    let status = std::process::Command::new("runc")
        .args(["run", "-d", &id])
        .current_dir(bundle.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "runc run: {}", content(&log));
    let theirs = Cgroup::new(Some(&runc_path), &id, false).unwrap();

    let l = live("diff");
    l.cg.create().unwrap();
    l.cg.apply(&r).unwrap();

    let files: &[(&str, &str)] = match l.cg.mode() {
        CgroupMode::V2 => &[
            ("", "pids.max"),
            ("", "memory.max"),
            ("", "memory.swap.max"),
            ("", "memory.low"),
            ("", "cpu.weight"),
            ("", "cpu.max"),
            ("", "cpu.max.burst"),
            ("", "cpuset.cpus"),
            ("", "cpuset.mems"),
            ("", "io.max"),
            ("", "io.bfq.weight"),
        ],
        _ => &[
            ("pids", "pids.max"),
            ("memory", "memory.limit_in_bytes"),
            ("memory", "memory.memsw.limit_in_bytes"),
            ("memory", "memory.soft_limit_in_bytes"),
            ("memory", "memory.swappiness"),
            ("memory", "memory.oom_control"),
            ("cpu", "cpu.shares"),
            ("cpu", "cpu.cfs_quota_us"),
            ("cpu", "cpu.cfs_period_us"),
            ("cpuset", "cpuset.cpus"),
            ("cpuset", "cpuset.mems"),
            ("devices", "devices.list"),
            ("blkio", "blkio.bfq.weight"),
            ("blkio", "blkio.throttle.read_bps_device"),
            ("freezer", "freezer.state"),
        ],
    };
    let mut compared = 0;
    for (ctrl, file) in files {
        let (Some(a), Some(b)) = (theirs.path(ctrl), l.cg.path(ctrl)) else {
            continue;
        };
        let (a, b) = (a.join(file), b.join(file));
        if !a.exists() {
            continue;
        }
        let mut ours = content(&b);
        let mut runc = content(&a);
        if *file == "devices.list" {
            // Same set; the kernel lists rules in the order they were added.
            let sort = |s: &str| {
                let mut v: Vec<&str> = s.lines().collect();
                v.sort();
                v.join("\n")
            };
            (ours, runc) = (sort(&ours), sort(&runc));
        }
        if *file == "memory.oom_control" {
            // under_oom/oom_kill are live counters; compare the setting.
            let setting = |s: &str| s.lines().next().unwrap_or_default().to_string();
            (ours, runc) = (setting(&ours), setting(&runc));
        }
        assert_eq!(ours, runc, "{file} differs from runc's");
        compared += 1;
    }
    eprintln!("compared {compared} files with runc");
    assert!(compared >= 10, "only {compared} files compared");

    // Stats of runc's cgroup read by us against `runc events --stats`.
    let out = std::process::Command::new("runc")
        .args(["events", "--stats", &id])
        .output()
        .unwrap();
    assert!(out.status.success());
    let runc_stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runc_stats = &runc_stats["data"];
    let ours = serde_json::to_value(theirs.stats().unwrap()).unwrap();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&ours), keys(runc_stats));
    for section in ["pids", "cpuset"] {
        assert_eq!(ours[section], runc_stats[section], "stats.{section}");
    }
    for entry in ["usage", "swap", "kernel", "kernelTCP"] {
        assert_eq!(
            ours["memory"][entry]["limit"], runc_stats["memory"][entry]["limit"],
            "stats.memory.{entry}.limit"
        );
    }
    assert_eq!(
        keys(&ours["memory"]["raw"]),
        keys(&runc_stats["memory"]["raw"])
    );
    assert_eq!(
        ours["cpu"]["usage"]["percpu"].as_array().map(Vec::len),
        runc_stats["cpu"]["usage"]["percpu"]
            .as_array()
            .map(Vec::len)
    );
}

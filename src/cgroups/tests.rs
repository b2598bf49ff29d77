//! Tests of the manager against fake cgroup trees and, as root, against the real host.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder, LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder,
};

use super::files::take_writes;
use super::*;

const V1_ALL: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "name=systemd",
];

/// Control files a fresh cgroup directory has, with the kernel's initial values.
fn control_files(key: &str, v2: bool) -> Vec<(&'static str, &'static str)> {
    let mut f = vec![("cgroup.procs", "")];
    if v2 {
        f.extend([
            (
                "cgroup.controllers",
                "cpuset cpu io memory hugetlb pids rdma",
            ),
            ("cgroup.subtree_control", ""),
            ("cgroup.freeze", "0"),
            ("cgroup.events", "populated 0\nfrozen 0"),
            ("cpu.weight", "100"),
            ("cpu.max", "max 100000"),
            ("cpu.max.burst", "0"),
            ("cpu.idle", "0"),
            ("cpuset.cpus", ""),
            ("cpuset.mems", ""),
            ("memory.max", "max"),
            ("memory.swap.max", "max"),
            ("memory.low", "0"),
            ("memory.current", "4096"),
            ("pids.max", "max"),
            ("io.weight", "default 100"),
            ("io.max", ""),
            ("hugetlb.2MB.max", "max"),
            ("rdma.max", ""),
            ("memory.events", "low 0\nhigh 0\nmax 0\noom 1\noom_kill 3"),
        ]);
        return f;
    }
    match key {
        "cpu" => f.extend([
            ("cpu.shares", "1024"),
            ("cpu.cfs_quota_us", "-1"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_burst_us", "0"),
            ("cpu.idle", "0"),
            ("cpu.rt_period_us", "1000000"),
            ("cpu.rt_runtime_us", "0"),
        ]),
        "cpuset" => f.extend([("cpuset.cpus", ""), ("cpuset.mems", "")]),
        "memory" => f.extend([
            ("memory.limit_in_bytes", "9223372036854771712"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712"),
            ("memory.soft_limit_in_bytes", "9223372036854771712"),
            ("memory.kmem.tcp.limit_in_bytes", "9223372036854771712"),
            ("memory.swappiness", "60"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 2",
            ),
        ]),
        "devices" => f.extend([
            ("devices.allow", ""),
            ("devices.deny", ""),
            ("devices.list", "a *:* rwm"),
        ]),
        "freezer" => f.extend([("freezer.state", "THAWED")]),
        "blkio" => f.extend([
            ("blkio.weight", ""),
            ("blkio.leaf_weight", ""),
            ("blkio.weight_device", ""),
            ("blkio.leaf_weight_device", ""),
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_bps_device", ""),
            ("blkio.throttle.read_iops_device", ""),
            ("blkio.throttle.write_iops_device", ""),
        ]),
        "pids" => f.extend([("pids.max", "max")]),
        _ => {}
    }
    f
}

/// A fake cgroupfs for `mode`, with the container's directories already made (a plain
/// directory cannot grow control files by itself as cgroupfs does).
struct FakeTree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl FakeTree {
    fn new() -> FakeTree {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        FakeTree { _tmp: tmp, root }
    }

    fn cgroup(&self, mode: CgroupMode, path: Option<&str>) -> Cgroup {
        let cg = Cgroup::at_root(&self.root, mode, V1_ALL, path, "ctr").unwrap();
        for (key, dir) in &cg.dirs {
            let v2 = key.is_empty();
            // Mount roots get the files too so parents can be read (cpuset) and written
            // (subtree_control).
            let mut levels = vec![dir.mount.clone()];
            let rel = dir.path.strip_prefix(&dir.mount).unwrap();
            let mut cur = dir.mount.clone();
            for c in rel.components() {
                cur.push(c);
                levels.push(cur.clone());
            }
            for level in levels {
                fs::create_dir_all(&level).unwrap();
                for (name, content) in control_files(key, v2) {
                    let p = level.join(name);
                    if !p.exists() {
                        fs::write(p, content).unwrap();
                    }
                }
            }
        }
        if mode != CgroupMode::V2 {
            fs::write(self.root.join("cpuset/cpuset.cpus"), "0-1").unwrap();
            fs::write(self.root.join("cpuset/cpuset.mems"), "0").unwrap();
        }
        cg
    }
}

fn content(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

/// The writes to `file` (by file name) since the last call, in order.
fn writes_to(all: &[(PathBuf, String)], file: &str) -> Vec<String> {
    all.iter()
        .filter(|(p, _)| p.file_name().is_some_and(|n| n == file))
        .map(|(_, v)| v.clone())
        .collect()
}

fn full_resources() -> LinuxResources {
    LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(104857600)
                .reservation(52428800)
                .swap(209715200)
                .swappiness(30u64)
                .disable_oom_killer(true)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50000)
                .period(100000u64)
                .burst(1000u64)
                .cpus("0")
                .mems("0")
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(77).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .leaf_weight(300u16)
                .weight_device(vec![LinuxWeightDeviceBuilder::default()
                    .major(8)
                    .minor(0)
                    .weight(200u16)
                    .leaf_weight(100u16)
                    .build()
                    .unwrap()])
                .throttle_read_bps_device(vec![LinuxThrottleDeviceBuilder::default()
                    .major(8)
                    .minor(0)
                    .rate(1048576u64)
                    .build()
                    .unwrap()])
                .throttle_write_iops_device(vec![LinuxThrottleDeviceBuilder::default()
                    .major(8)
                    .minor(16)
                    .rate(300u64)
                    .build()
                    .unwrap()])
                .build()
                .unwrap(),
        )
        .devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap()])
        .build()
        .unwrap()
}

#[test]
fn v1_writes_every_resource_like_runc() {
    let t = FakeTree::new();
    let cg = t.cgroup(CgroupMode::V1, None);
    cg.create().unwrap();
    take_writes();
    cg.apply(&full_resources()).unwrap();
    let w = take_writes();
    let d = |c: &str| cg.path(c).unwrap().to_path_buf();
    assert_eq!(content(&d("pids").join("pids.max")), "77");
    let mem = d("memory");
    assert_eq!(content(&mem.join("memory.limit_in_bytes")), "104857600");
    assert_eq!(
        content(&mem.join("memory.memsw.limit_in_bytes")),
        "209715200"
    );
    assert_eq!(content(&mem.join("memory.soft_limit_in_bytes")), "52428800");
    assert_eq!(content(&mem.join("memory.swappiness")), "30");
    assert_eq!(content(&mem.join("memory.oom_control")), "1");
    // Growing from unlimited: memsw after the limit (memsw must stay >= limit).
    let order: Vec<&str> = w
        .iter()
        .filter_map(|(p, _)| p.file_name()?.to_str())
        .filter(|n| n.ends_with("limit_in_bytes") && !n.contains("soft"))
        .collect();
    assert_eq!(
        order,
        ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    );
    let cpu = d("cpu");
    assert_eq!(content(&cpu.join("cpu.shares")), "512");
    assert_eq!(content(&cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(content(&cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(content(&cpu.join("cpu.cfs_burst_us")), "1000");
    assert_eq!(content(&d("cpuset").join("cpuset.cpus")), "0");
    assert_eq!(content(&d("cpuset").join("cpuset.mems")), "0");
    let blk = d("blkio");
    assert_eq!(content(&blk.join("blkio.weight")), "500");
    assert_eq!(content(&blk.join("blkio.leaf_weight")), "300");
    assert_eq!(content(&blk.join("blkio.weight_device")), "8:0 200");
    assert_eq!(content(&blk.join("blkio.leaf_weight_device")), "8:0 100");
    assert_eq!(
        content(&blk.join("blkio.throttle.read_bps_device")),
        "8:0 1048576"
    );
    assert_eq!(
        content(&blk.join("blkio.throttle.write_iops_device")),
        "8:16 300"
    );
    // Deny-all, the spec's rule, then runc's default list.
    assert_eq!(writes_to(&w, "devices.deny"), ["a", "a *:* rwm"]);
    let allows = writes_to(&w, "devices.allow");
    assert_eq!(allows.len(), devices::DEFAULT_ALLOWED.len());
    assert_eq!(allows[0], "c *:* m");
    assert!(allows.contains(&"c 136:* rwm".to_string()));
    assert!(allows.contains(&"c 10:200 rwm".to_string()));
}

#[test]
fn v1_update_shrinks_memory_in_kernel_order_and_keeps_devices() {
    let t = FakeTree::new();
    let cg = t.cgroup(CgroupMode::V1, Some("/a/b"));
    cg.create().unwrap();
    let mem = cg.path("memory").unwrap().to_path_buf();
    fs::write(mem.join("memory.limit_in_bytes"), "104857600").unwrap();
    // The devices controller already shows the wanted state: no rewrite on update.
    fs::write(
        cg.path("devices").unwrap().join("devices.list"),
        "b *:* m\nc *:* m\nc 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\nc 5:2 rwm\nc 10:200 rwm\nc 136:* rwm\n",
    )
    .unwrap();
    take_writes();
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(209715200)
                .swap(419430400)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    let w = take_writes();
    // Growing past the current limit: memsw first.
    assert_eq!(
        w.iter()
            .map(|(p, v)| (p.file_name().unwrap().to_str().unwrap(), v.as_str()))
            .collect::<Vec<_>>(),
        [
            ("memory.memsw.limit_in_bytes", "419430400"),
            ("memory.limit_in_bytes", "209715200")
        ]
    );
    // Shrinking: the limit first.
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(1048576)
                .swap(2097152)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    fs::write(mem.join("memory.limit_in_bytes"), "209715200").unwrap();
    cg.apply(&r).unwrap();
    let w = take_writes();
    assert_eq!(
        w.iter()
            .map(|(p, _)| p.file_name().unwrap().to_str().unwrap())
            .collect::<Vec<_>>(),
        ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    );
}

#[test]
fn v1_missing_controller_is_an_error_only_when_used() {
    let t = FakeTree::new();
    let cg = t.cgroup(CgroupMode::V1, None);
    cg.create().unwrap();
    // No hugetlb/net_cls/rdma on this fake host: unset is fine ...
    cg.apply(&LinuxResources::default()).unwrap();
    // ... set is an error naming the field.
    let r = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(1 << 21)
            .build()
            .unwrap()])
        .build()
        .unwrap();
    let e = cg.apply(&r).unwrap_err().to_string();
    assert!(e.contains("hugepageLimits") && e.contains("hugetlb"), "{e}");
    let r = LinuxResourcesBuilder::default()
        .unified(HashMap::from([(
            "memory.high".to_string(),
            "1".to_string(),
        )]))
        .build()
        .unwrap();
    let e = cg.apply(&r).unwrap_err().to_string();
    assert!(e.contains("unified") && e.contains("v1"), "{e}");
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .swappiness(101u64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let e = cg.apply(&r).unwrap_err().to_string();
    assert!(e.contains("swappiness") && e.contains("101"), "{e}");
}

#[test]
fn v1_create_copies_cpuset_and_paths_follow_runc() {
    let t = FakeTree::new();
    let cg = t.cgroup(CgroupMode::Hybrid, Some("/x/y"));
    assert_eq!(cg.mode(), CgroupMode::Hybrid);
    let paths = cg.paths();
    assert_eq!(paths["name=systemd"], t.root.join("systemd/x/y"));
    assert_eq!(paths[""], t.root.join("unified/x/y"));
    cg.create().unwrap();
    assert_eq!(content(&t.root.join("cpuset/x/cpuset.cpus")), "0-1");
    assert_eq!(content(&t.root.join("cpuset/x/y/cpuset.mems")), "0");
    take_writes();
    cg.add_process(4242).unwrap();
    let procs = writes_to(&take_writes(), "cgroup.procs");
    // One write per distinct directory (9 v1 hierarchies + unified).
    assert_eq!(procs.len(), V1_ALL.len() + 1);
    // State round trip.
    let json = serde_json::to_string(&cg).unwrap();
    let back: Cgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cg);
    assert!(cg.exists());
    assert_eq!(cg.oom_kill_count().unwrap(), 2);
}

#[test]
fn v2_writes_converted_values() {
    let t = FakeTree::new();
    let cg = t.cgroup(CgroupMode::V2, Some("/k8s/pod1"));
    cg.create().unwrap();
    // Parents get every available controller enabled.
    assert_eq!(
        content(&t.root.join("cgroup.subtree_control")),
        "+cpuset +cpu +io +memory +hugetlb +pids +rdma"
    );
    assert_eq!(
        content(&t.root.join("k8s/cgroup.subtree_control")),
        "+cpuset +cpu +io +memory +hugetlb +pids +rdma"
    );
    let dir = cg.path("").unwrap().to_path_buf();
    take_writes();
    let mut r = full_resources();
    r.set_block_io(Some(
        LinuxBlockIoBuilder::default()
            .weight(500u16)
            .throttle_read_bps_device(vec![LinuxThrottleDeviceBuilder::default()
                .major(8)
                .minor(0)
                .rate(1048576u64)
                .build()
                .unwrap()])
            .throttle_write_iops_device(vec![LinuxThrottleDeviceBuilder::default()
                .major(8)
                .minor(16)
                .rate(300u64)
                .build()
                .unwrap()])
            .build()
            .unwrap(),
    ));
    r.set_hugepage_limits(Some(vec![LinuxHugepageLimitBuilder::default()
        .page_size("2MB")
        .limit(4194304)
        .build()
        .unwrap()]));
    r.set_unified(Some(HashMap::from([(
        "memory.low".to_string(),
        "1234".to_string(),
    )])));
    v2::apply(&dir, &r, false).unwrap();
    let w = take_writes();
    assert_eq!(content(&dir.join("pids.max")), "77");
    assert_eq!(content(&dir.join("memory.max")), "104857600");
    assert_eq!(content(&dir.join("memory.swap.max")), "104857600");
    // unified is applied last and wins.
    assert_eq!(content(&dir.join("memory.low")), "1234");
    assert_eq!(content(&dir.join("cpu.weight")), "20");
    assert_eq!(content(&dir.join("cpu.max")), "50000 100000");
    assert_eq!(content(&dir.join("cpu.max.burst")), "1000");
    assert_eq!(content(&dir.join("cpuset.cpus")), "0");
    assert_eq!(content(&dir.join("io.weight")), "4950");
    assert_eq!(
        writes_to(&w, "io.max"),
        ["8:0 rbps=1048576", "8:16 wiops=300"]
    );
    assert_eq!(content(&dir.join("hugetlb.2MB.max")), "4194304");
    // swap before memory.max, as runc.
    let names: Vec<&str> = w
        .iter()
        .filter_map(|(p, _)| p.file_name()?.to_str())
        .filter(|n| n.starts_with("memory."))
        .collect();
    assert_eq!(
        names,
        ["memory.swap.max", "memory.max", "memory.low", "memory.low"]
    );
    assert_eq!(cg.oom_kill_count().unwrap(), 3);
}

#[test]
fn v2_rejects_v1_only_fields_and_bad_unified_keys() {
    let t = FakeTree::new();
    let cg = t.cgroup(CgroupMode::V2, None);
    let dir = cg.path("").unwrap().to_path_buf();
    let rt = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .realtime_runtime(1000)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let e = v2::apply(&dir, &rt, false).unwrap_err().to_string();
    assert!(e.contains("realtimeRuntime") && e.contains("v2"), "{e}");
    let bad = LinuxResourcesBuilder::default()
        .unified(HashMap::from([(
            "../cgroup.procs".to_string(),
            "1".to_string(),
        )]))
        .build()
        .unwrap();
    let e = v2::apply(&dir, &bad, false).unwrap_err().to_string();
    assert!(e.contains("no slashes"), "{e}");
    let missing = LinuxResourcesBuilder::default()
        .unified(HashMap::from([("net_cls.x".to_string(), "1".to_string())]))
        .build()
        .unwrap();
    let e = v2::apply(&dir, &missing, false).unwrap_err().to_string();
    assert!(e.contains("\"net_cls\" is not available"), "{e}");
    // checkBeforeUpdate with usage (4096) above the new limit.
    let check = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(4000)
                .check_before_update(true)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let e = v2::apply(&dir, &check, false).unwrap_err().to_string();
    assert!(e.contains("checkBeforeUpdate"), "{e}");
}

#[test]
fn constructor_errors_are_named() {
    let e = Cgroup::new(Some("/a/../../b"), "c", false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/a/../../b"), "{e}");
    let e = Cgroup::new(Some("bad-format"), "c", true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("slice:prefix:name"), "{e}");
    if !Path::new("/run/systemd/system").exists() {
        let e = Cgroup::new(Some("system.slice:nucleus:c"), "c", true)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "systemd cgroup driver requested but systemd is not running"
        );
        let e = Cgroup::new(None, "c", true).unwrap_err().to_string();
        assert!(e.contains("systemd is not running"), "{e}");
    }
}

#[test]
fn devices_rules_from_spec_reach_v1_files() {
    let t = FakeTree::new();
    let cg = t.cgroup(CgroupMode::V1, None);
    take_writes();
    let r = LinuxResourcesBuilder::default()
        .devices(vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::B)
                .major(8)
                .access("r")
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    let w = take_writes();
    assert_eq!(writes_to(&w, "devices.allow")[0], "b 8:* r");
}

// ---- Real kernel tests (root only). Each makes its own uniquely named cgroup and removes
// it, and every process it starts, whatever happens.

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

struct Live {
    cg: Cgroup,
    children: Vec<std::process::Child>,
}

impl Drop for Live {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.cg.thaw();
        let _ = self.cg.destroy();
    }
}

fn live(name: &str) -> Option<Live> {
    if !is_root() {
        eprintln!("skipping {name}: needs root");
        return None;
    }
    let path = format!("/nucleus-test-{}-{name}", std::process::id());
    let cg = Cgroup::new(Some(&path), name, false).unwrap();
    Some(Live {
        cg,
        children: Vec::new(),
    })
}

#[test]
fn real_lifecycle_freeze_kill_destroy() {
    let Some(mut l) = live("life") else { return };
    l.cg.create().unwrap();
    assert!(l.cg.exists());
    let child = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    l.children.push(child);
    l.cg.add_process(pid).unwrap();
    assert_eq!(l.cg.pids().unwrap(), vec![pid]);
    for (_, dir) in l.cg.paths() {
        assert_eq!(content(&dir.join("cgroup.procs")).trim(), pid.to_string());
    }

    l.cg.freeze().unwrap();
    assert!(l.cg.is_frozen().unwrap());
    if let Some(f) = l.cg.path("freezer") {
        assert_eq!(content(&f.join("freezer.state")).trim(), "FROZEN");
    }
    l.cg.thaw().unwrap();
    assert!(!l.cg.is_frozen().unwrap());
    if let Some(f) = l.cg.path("freezer") {
        assert_eq!(content(&f.join("freezer.state")).trim(), "THAWED");
    }

    // SIGKILL reaches a frozen container and leaves it thawed.
    l.cg.freeze().unwrap();
    l.cg.kill_all(Signal::SIGKILL).unwrap();
    let status = l.children[0].wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    assert!(!l.cg.is_frozen().unwrap());
    l.children.clear();

    l.cg.destroy().unwrap();
    assert!(!l.cg.exists());
    for (_, dir) in l.cg.paths() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    // Destroying again is fine.
    l.cg.destroy().unwrap();
    assert!(l.cg.pids().unwrap().is_empty());
}

#[test]
fn real_kill_all_term_keeps_paused_container_paused() {
    let Some(mut l) = live("term") else { return };
    l.cg.create().unwrap();
    let child = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    l.children.push(child);
    l.cg.add_process(pid).unwrap();
    l.cg.freeze().unwrap();
    l.cg.kill_all(Signal::SIGTERM).unwrap();
    assert!(l.cg.is_frozen().unwrap());
    l.cg.thaw().unwrap();
    let status = l.children[0].wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGTERM)
    );
    l.children.clear();
}

#[test]
fn real_apply_writes_kernel_files() {
    let Some(l) = live("apply") else { return };
    l.cg.create().unwrap();
    // Block devices differ per machine; blockIO is covered by the fake-tree tests.
    let mut r = full_resources();
    r.set_block_io(None);
    l.cg.apply(&r).unwrap();
    let read = |c: &str, f: &str| content(&l.cg.path(c).unwrap().join(f)).trim().to_string();
    match l.cg.mode() {
        CgroupMode::V2 => {
            assert_eq!(read("", "pids.max"), "77");
            assert_eq!(read("", "memory.max"), "104857600");
            assert_eq!(read("", "cpu.max"), "50000 100000");
            assert_eq!(read("", "cpu.weight"), "20");
        }
        _ => {
            assert_eq!(read("pids", "pids.max"), "77");
            assert_eq!(read("memory", "memory.limit_in_bytes"), "104857600");
            assert_eq!(read("memory", "memory.soft_limit_in_bytes"), "52428800");
            assert_eq!(read("memory", "memory.swappiness"), "30");
            assert_eq!(read("cpu", "cpu.shares"), "512");
            assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
            assert_eq!(read("cpuset", "cpuset.cpus"), "0");
            let list = read("devices", "devices.list");
            assert!(list.contains("c 1:3 rwm") && list.contains("c 136:* rwm"));
            assert!(!list.contains("a *:* rwm"), "{list}");
            if l.cg
                .path("memory")
                .unwrap()
                .join("memory.memsw.limit_in_bytes")
                .exists()
            {
                assert_eq!(read("memory", "memory.memsw.limit_in_bytes"), "209715200");
            }
            // A repeated apply (update) with a lower limit works on the live cgroup.
            r.set_memory(Some(
                LinuxMemoryBuilder::default()
                    .limit(52428800)
                    .swap(52428800)
                    .build()
                    .unwrap(),
            ));
            l.cg.apply(&r).unwrap();
            assert_eq!(read("memory", "memory.limit_in_bytes"), "52428800");
            assert_eq!(l.cg.stats().unwrap().memory.usage.limit, 52428800);
        }
    }
    assert_eq!(l.cg.stats().unwrap().pids.limit, 77);
    assert_eq!(l.cg.oom_kill_count().unwrap(), 0);
}

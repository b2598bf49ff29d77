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
fn v2_ignores_v1_only_fields_and_rejects_bad_unified_keys() {
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
    // Ignored like runc does: cgroup2 has no RT bandwidth files.
    take_writes();
    v2::apply(&dir, &rt, false).unwrap();
    assert!(take_writes().is_empty());
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
            take_writes();
            l.cg.apply(&r).unwrap();
            // Same device rules: the live devices controller is left untouched.
            let w = take_writes();
            assert!(writes_to(&w, "devices.deny").is_empty(), "{w:?}");
            assert!(writes_to(&w, "devices.allow").is_empty(), "{w:?}");
            assert_eq!(read("memory", "memory.limit_in_bytes"), "52428800");
            assert_eq!(l.cg.stats().unwrap().memory.usage.limit, 52428800);
        }
    }
    assert_eq!(l.cg.stats().unwrap().pids.limit, 77);
    assert_eq!(l.cg.oom_kill_count().unwrap(), 0);
}

/// Spawn `sh -c script` that joins the cgroup2 directory `dir` before exec.
fn spawn_in(dir: &Path, script: &str) -> std::process::Child {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(script);
    spawn_joined(&[dir.to_path_buf()], cmd)
}

/// Spawn `cmd` after it joined every directory of `dirs`.
fn spawn_joined(dirs: &[PathBuf], mut cmd: std::process::Command) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let procs: Vec<std::ffi::CString> = dirs
        .iter()
        .map(|d| {
            std::ffi::CString::new(d.join("cgroup.procs").into_os_string().into_encoded_bytes())
                .unwrap()
        })
        .collect();
    // SAFETY: the closure runs in the forked child and only makes async-signal-safe calls
    // (open/write/close) on paths prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            for p in &procs {
                let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
            }
            Ok(())
        });
    }
    cmd.spawn().unwrap()
}

fn distinct_dirs(cg: &Cgroup) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = cg.paths().into_values().collect();
    v.sort();
    v.dedup();
    v
}

fn memory_limit(limit: i64) -> LinuxResources {
    LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(limit)
                .swap(limit)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

#[test]
fn real_starts_under_512k_memory_limit() {
    let busybox = Path::new("/usr/bin/busybox");
    let Some(mut l) = live("small") else { return };
    if !busybox.exists() {
        eprintln!("skipping: needs /usr/bin/busybox");
        return;
    }
    l.cg.create().unwrap();
    l.cg.apply(&memory_limit(512 * 1024)).unwrap();
    let mut cmd = std::process::Command::new(busybox);
    cmd.args(["sh", "-c", "echo started"]);
    cmd.stdout(std::process::Stdio::piped());
    let child = spawn_joined(&distinct_dirs(&l.cg), cmd);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
    assert_eq!(l.cg.oom_kill_count().unwrap(), 0);
    l.children.clear();
}

#[test]
fn real_oom_kill_is_reported() {
    let busybox = Path::new("/usr/bin/busybox");
    let Some(mut l) = live("oom") else { return };
    if !busybox.exists() {
        eprintln!("skipping: needs /usr/bin/busybox");
        return;
    }
    l.cg.create().unwrap();
    l.cg.apply(&memory_limit(8 << 20)).unwrap();
    let mut watch = l.cg.watch_oom().unwrap();
    assert!(!watch.check().unwrap());
    let mut cmd = std::process::Command::new(busybox);
    // Grows a shell variable well past the limit.
    cmd.args([
        "sh",
        "-c",
        "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo ${#x}",
    ]);
    cmd.stdout(std::process::Stdio::null());
    let mut child = spawn_joined(&distinct_dirs(&l.cg), cmd);
    let status = child.wait().unwrap();
    assert!(!status.success());
    let mut fds = [nix::poll::PollFd::new(
        watch.fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
    assert!(watch.check().unwrap());
    assert!(l.cg.oom_kill_count().unwrap() >= 1);
    l.children.clear();
}

/// The v2 code paths on a real cgroup2 hierarchy: on a hybrid host that is the extra
/// unified mount (no controllers needed for devices, freezer and cgroup.kill).
#[test]
fn real_v2_device_filter_freeze_and_kill() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let Some(mount) = Hierarchies::from_host().unwrap().unified else {
        eprintln!("skipping: no cgroup2 hierarchy mounted");
        return;
    };
    let path = format!("/nucleus-test-{}-v2", std::process::id());
    let cg = Cgroup::at_root(&mount.mount_point, CgroupMode::V2, &[], Some(&path), "v2").unwrap();
    let dir = cg.path("").unwrap().to_path_buf();
    // Made by hand: create() would enable controllers in the host's root subtree_control.
    fs::create_dir(&dir).unwrap();
    let mut l = Live {
        cg,
        children: Vec::new(),
    };
    let exit_code = |script: &str| {
        let mut c = spawn_in(&dir, script);
        let st = c.wait().unwrap();
        st.code()
    };

    l.cg.apply(&LinuxResources::default()).unwrap();
    assert_eq!(exit_code("exec 3</dev/null"), Some(0));
    assert_ne!(exit_code("exec 3</dev/kmsg"), Some(0));
    assert_ne!(
        exit_code("exec 3>/dev/null 4>/dev/full 5</dev/loop0"),
        Some(0)
    );

    let allow_kmsg = LinuxResourcesBuilder::default()
        .devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(11)
            .access("r")
            .build()
            .unwrap()])
        .build()
        .unwrap();
    l.cg.apply(&allow_kmsg).unwrap();
    assert_eq!(exit_code("exec 3</dev/kmsg"), Some(0));
    // Read access only.
    assert_ne!(exit_code("exec 3>/dev/kmsg"), Some(0));
    // The old program was replaced, not stacked.
    let fd = devices_bpf::open_cgroup(&dir).unwrap();
    assert_eq!(devices_bpf::attached(&fd).unwrap().len(), 1);

    // Allow-all with a deny exception (the program's default-allow form).
    let deny_kmsg = LinuxResourcesBuilder::default()
        .devices(vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .typ(LinuxDeviceType::C)
                .major(1)
                .minor(11)
                .access("w")
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap();
    l.cg.apply(&deny_kmsg).unwrap();
    assert_eq!(exit_code("exec 3</dev/kmsg 4</dev/loop0"), Some(0));
    assert_ne!(exit_code("exec 3>/dev/kmsg"), Some(0));

    l.children.push(spawn_in(&dir, "exec sleep 100"));
    let pid = l.children[0].id() as i32;
    assert_eq!(l.cg.pids().unwrap(), vec![pid]);
    l.cg.freeze().unwrap();
    assert!(l.cg.is_frozen().unwrap());
    assert!(content(&dir.join("cgroup.events")).contains("frozen 1"));
    l.cg.kill_all(Signal::SIGKILL).unwrap();
    let status = l.children[0].wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    l.children.clear();
    l.cg.thaw().unwrap();
    l.cg.destroy().unwrap();
    assert!(!dir.exists());
}

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
fn real_same_files_as_runc() {
    let busybox = Path::new("/usr/bin/busybox");
    if !is_root() || !have_runc() || !busybox.exists() {
        eprintln!("skipping: needs root, runc and /usr/bin/busybox");
        return;
    }
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
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap(),
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(11)
            .access("rw")
            .build()
            .unwrap(),
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

    let Some(l) = live("diff") else { return };
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

#[test]
fn failed_create_removes_only_what_it_made() {
    let t = FakeTree::new();
    for c in [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
    ] {
        fs::create_dir_all(t.root.join(c)).unwrap();
    }
    // Someone else's cgroup that happens to be on our path.
    fs::create_dir_all(t.root.join("pids/shared")).unwrap();
    let cg = Cgroup::at_root(&t.root, CgroupMode::V1, V1_ALL, Some("/shared/ctr"), "ctr").unwrap();
    // The cpuset root has no cpuset.cpus to copy from: create fails half way.
    let e = cg.create().unwrap_err().to_string();
    assert!(e.contains("cpuset.cpus"), "{e}");
    assert!(t.root.join("pids/shared").is_dir());
    for c in [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "systemd",
    ] {
        assert!(!t.root.join(c).join("shared").exists(), "{c} left behind");
    }
    assert!(!t.root.join("pids/shared/ctr").exists());
}

#[test]
fn real_default_path_is_below_own_cgroup() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let id = format!("nucleus-test-{}-default", std::process::id());
    let cg = Cgroup::new(None, &id, false).unwrap();
    let l = Live {
        cg,
        children: Vec::new(),
    };
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let hier = Hierarchies::from_host().unwrap();
    for (key, path) in l.cg.paths() {
        let mount = if key.is_empty() {
            hier.unified.as_ref().unwrap()
        } else {
            &hier.v1[&key]
        };
        let own_path = own
            .lines()
            .find_map(|line| {
                let mut f = line.splitn(3, ':');
                let (_, ctrls, p) = (f.next()?, f.next()?, f.next()?);
                let hit = if key.is_empty() {
                    ctrls.is_empty()
                } else {
                    ctrls.split(',').any(|c| c == key)
                };
                hit.then(|| p.to_string())
            })
            .unwrap();
        let mut own_path = Path::new(&own_path).to_path_buf();
        // On pure v2 relative paths are below the parent of the caller's cgroup (as runc).
        if key.is_empty() && hier.v1.is_empty() {
            own_path = own_path.parent().unwrap_or(&own_path).to_path_buf();
        }
        let rel = own_path.strip_prefix(&mount.root).unwrap();
        assert_eq!(path, mount.mount_point.join(rel).join(&id), "{key}");
    }
    l.cg.create().unwrap();
    assert!(l.cg.exists());
    l.cg.destroy().unwrap();
    assert!(!l.cg.exists());
}

#[test]
fn v2_stats_from_files() {
    let t = FakeTree::new();
    let cg = t.cgroup(CgroupMode::V2, None);
    let d = cg.path("").unwrap().to_path_buf();
    let files = [
        ("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 30\n"),
        ("memory.stat", "anon 8192\nfile 4096\n"),
        ("memory.current", "12288\n"),
        ("memory.max", "1048576\n"),
        ("memory.events", "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n"),
        ("memory.swap.current", "100\n"),
        ("memory.swap.max", "max\n"),
        ("pids.current", "3\n"),
        ("pids.max", "max\n"),
        ("io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n"),
    ];
    for (f, c) in files {
        fs::write(d.join(f), c).unwrap();
    }
    let v = serde_json::to_value(cg.stats().unwrap()).unwrap();
    assert_eq!(v["cpu"]["usage"]["total"], 1_500_000);
    assert_eq!(v["cpu"]["usage"]["user"], 1_000_000);
    assert_eq!(v["cpu"]["usage"]["kernel"], 500_000);
    assert_eq!(
        v["cpu"]["throttling"],
        serde_json::json!({"periods": 10, "throttledPeriods": 2, "throttledTime": 30000})
    );
    assert_eq!(v["memory"]["cache"], 4096);
    assert_eq!(
        v["memory"]["usage"],
        serde_json::json!({"limit": 1048576, "usage": 12288, "failcnt": 5})
    );
    // v1 meaning: memory+swap, unlimited.
    assert_eq!(v["memory"]["swap"]["usage"], 12388);
    assert_eq!(v["memory"]["swap"]["limit"], u64::MAX);
    assert_eq!(v["memory"]["raw"]["anon"], 8192);
    assert_eq!(v["pids"], serde_json::json!({"current": 3}));
    assert_eq!(
        v["blkio"]["ioServiceBytesRecursive"],
        serde_json::json!([
            {"major": 8, "op": "Read", "value": 10},
            {"major": 8, "op": "Write", "value": 20}
        ])
    );
}

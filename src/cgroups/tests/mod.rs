//! Tests of the manager: against fake cgroup trees (`fake`, any user), against the host's
//! real hierarchies (`real`, root) and differentially against runc (`runc`, root). The
//! root ones are `#[ignore = "needs root"]`: hack/test runs them with `--include-ignored`.

mod fake;
mod real;
mod runc;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxHugepageLimitBuilder, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder, LinuxThrottleDevice,
    LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder,
};

use super::devices::spec_rule;
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

/// A blkio throttle of `rate` (bytes or operations a second) on device `major`:`minor`.
fn throttle(major: i64, minor: i64, rate: u64) -> LinuxThrottleDevice {
    LinuxThrottleDeviceBuilder::default()
        .major(major)
        .minor(minor)
        .rate(rate)
        .build()
        .unwrap()
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
                .throttle_read_bps_device(vec![throttle(8, 0, 1048576)])
                .throttle_write_iops_device(vec![throttle(8, 16, 300)])
                .build()
                .unwrap(),
        )
        .devices(vec![spec_rule(false, "* *:* rwm")])
        .build()
        .unwrap()
}

// ---- Real kernel tests (root only). Each makes its own uniquely named cgroup and removes
// it, and every process it starts, whatever happens.

/// For the tests marked `#[ignore = "needs root"]`: run without root they fail.
fn need_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (it is ignored unless run with --include-ignored)"
    );
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

impl Live {
    /// Starts a `sleep` (killed on drop) in the cgroup; returns its pid.
    fn add_sleeper(&mut self) -> i32 {
        let child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        self.children.push(child);
        self.cg.add_process(pid).unwrap();
        pid
    }
}

fn live(name: &str) -> Live {
    need_root();
    let path = format!("/nucleus-test-{}-{name}", std::process::id());
    let cg = Cgroup::new(Some(&path), name, false).unwrap();
    Live {
        cg,
        children: Vec::new(),
    }
}

/// For the tests that run busybox: hack/deps installs it.
fn need_busybox() -> &'static Path {
    let busybox = Path::new("/usr/bin/busybox");
    assert!(
        busybox.exists(),
        "needs /usr/bin/busybox (installed by hack/deps)"
    );
    busybox
}

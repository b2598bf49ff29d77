//! The manager against fake cgroup trees: what it writes where, for every mode.

use super::*;

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
    // The spec's deny-all rule (no separate "a" first: it is the same write), then runc's
    // default list.
    assert_eq!(writes_to(&w, "devices.deny"), ["a *:* rwm"]);
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
            .throttle_read_bps_device(vec![throttle(8, 0, 1048576)])
            .throttle_write_iops_device(vec![throttle(8, 16, 300)])
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
            spec_rule(false, "* *:* rwm"),
            spec_rule(true, "b 8:* r"),
        ])
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    let w = take_writes();
    assert_eq!(writes_to(&w, "devices.allow")[0], "b 8:* r");
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

/// Rootless (runc's rootless manager): a hierarchy left out at create fails a limit that
/// needs it, naming it; the others still take theirs; device rules are not written.
#[test]
fn rootless_left_out_hierarchy_fails_its_limits_and_skips_devices() {
    let t = FakeTree::new();
    let mut cg = t.cgroup(CgroupMode::V1, None);
    // Writable to root: nothing is left out, an explicit path never leaves anything out.
    assert!(cg.drop_inaccessible(false, None).unwrap().is_empty());
    assert!(cg.drop_inaccessible(true, None).unwrap().is_empty());
    assert!(cg.is_rootless());
    let mem = cg.dirs.remove("memory").unwrap();
    cg.inaccessible.insert("memory".into(), mem.clone());
    cg.create().unwrap();
    take_writes();
    let devices_only = LinuxResourcesBuilder::default()
        .devices(vec![spec_rule(false, "* *:* rwm")])
        .build()
        .unwrap();
    cg.apply(&devices_only).unwrap();
    let w = take_writes();
    assert!(
        w.iter()
            .all(|(p, _)| !p.to_string_lossy().contains("devices")),
        "{w:?}"
    );
    let e = cg.apply(&full_resources()).unwrap_err().to_string();
    assert!(
        e.starts_with("cannot set memory limit") && e.contains(&mem.path.display().to_string()),
        "{e}"
    );
}

#[test]
fn rootless_v2_without_its_directory_takes_no_limits() {
    let t = FakeTree::new();
    let mut cg = t.cgroup(CgroupMode::V2, None);
    cg.rootless = true;
    let dir = cg.dirs.remove("").unwrap();
    cg.inaccessible.insert(String::new(), dir);
    assert!(!cg.tracks_processes());
    cg.apply(&LinuxResources::default()).unwrap();
    let e = cg.apply(&full_resources()).unwrap_err().to_string();
    assert!(e.starts_with("rootless needs no limits"), "{e}");
    assert!(cg
        .freeze()
        .unwrap_err()
        .to_string()
        .starts_with("cannot toggle freezer"));
    assert!(!cg.is_frozen().unwrap());
    assert!(cg.pids().unwrap().is_empty());
}

#[test]
fn v2_needs_controllers_only_for_limits() {
    assert!(!v2::needs_controllers(&LinuxResources::default()));
    let empty_memory = LinuxResourcesBuilder::default()
        .memory(LinuxMemoryBuilder::default().build().unwrap())
        .build()
        .unwrap();
    assert!(!v2::needs_controllers(&empty_memory));
    assert!(v2::needs_controllers(&full_resources()));
    let pids = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
        .build()
        .unwrap();
    assert!(v2::needs_controllers(&pids));
}

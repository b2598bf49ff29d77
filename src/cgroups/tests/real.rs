//! The manager on the host's real cgroup hierarchies (root): each test makes its own
//! uniquely named cgroup and removes it, and every process it starts, whatever happens.

use super::*;

#[test]
#[ignore = "needs root"]
fn real_lifecycle_freeze_kill_destroy() {
    let mut l = live("life");
    l.cg.create().unwrap();
    assert!(l.cg.exists());
    let pid = l.add_sleeper();
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
#[ignore = "needs root"]
fn real_kill_all_term_keeps_paused_container_paused() {
    let mut l = live("term");
    l.cg.create().unwrap();
    l.add_sleeper();
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
#[ignore = "needs root"]
fn real_apply_writes_kernel_files() {
    let l = live("apply");
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
#[ignore = "needs root"]
fn real_starts_under_512k_memory_limit() {
    let busybox = need_busybox();
    let mut l = live("small");
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
#[ignore = "needs root"]
fn real_oom_kill_is_reported() {
    let busybox = need_busybox();
    let mut l = live("oom");
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
#[ignore = "needs root"]
fn real_v2_device_filter_freeze_and_kill() {
    need_root();
    let mount = Hierarchies::from_host()
        .unwrap()
        .unified
        .expect("needs a cgroup2 hierarchy (the unified one of a hybrid host will do)");
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
        .devices(vec![spec_rule(true, "c 1:11 r")])
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
            spec_rule(true, "* *:* rwm"),
            spec_rule(false, "c 1:11 w"),
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

#[test]
#[ignore = "needs root"]
fn real_default_path_is_below_own_cgroup() {
    need_root();
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

//! root, rootfsPropagation, mounts and their options, maskedPaths, readonlyPaths,
//! default and configured devices, /dev symlinks, /dev/pts/ptmx, --no-pivot.

use nucleus_integration::*;
use serde_json::json;
use std::fs;
use std::path::Path;
use std::process::Command;

fn has_opt(opts: &str, o: &str) -> bool {
    opts.split(',').any(|x| x == o)
}

/// A tmpfs mounted on the host for the duration of a test (unmounted on drop).
struct HostMount(std::path::PathBuf);
impl HostMount {
    fn tmpfs(at: &Path) -> Self {
        fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "it-tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs at {}", at.display());
        HostMount(at.to_path_buf())
    }

    fn bind_shared(at: &Path) -> Self {
        let ok = Command::new("mount")
            .arg("--bind")
            .arg(at)
            .arg(at)
            .status()
            .unwrap()
            .success()
            && Command::new("mount")
                .arg("--make-shared")
                .arg(at)
                .status()
                .unwrap()
                .success();
        assert!(ok, "bind {} shared", at.display());
        HostMount(at.to_path_buf())
    }
}
impl Drop for HostMount {
    fn drop(&mut self) {
        // Unmount until nothing is mounted there any more: a mount may have been stacked by
        // propagation while the test ran.
        let target = self.0.to_string_lossy().into_owned();
        for _ in 0..10 {
            let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            if !parse_mountinfo(&mi).iter().any(|m| m.0 == target) {
                return;
            }
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

#[test]
fn root_readonly() {
    let mut c = Container::new("root-ro");
    c.sh("touch /x 2>/dev/null && echo writable || echo readonly; cat /proc/self/mountinfo");
    let out = c.run().ok();
    assert!(out.stdout.starts_with("readonly\n"), "{out}");
    let (_, _, opts, _) = mount_at(&out.stdout, "/").expect("root in mountinfo");
    assert!(has_opt(&opts, "ro"), "{out}");
}

#[test]
fn root_writable() {
    let mut c = Container::new("root-rw");
    c.config()["root"]["readonly"] = json!(false);
    c.sh("touch /written && echo ok");
    assert_eq!(c.run().ok().stdout, "ok\n");
    assert!(c.bundle.rootfs().join("written").exists());
}

#[test]
fn missing_rootfs_fails_cleanly() {
    let mut c = Container::new("no-rootfs");
    c.config()["root"]["path"] = json!("does-not-exist");
    let out = c.run().fails();
    assert!(out.all_text().contains("does-not-exist"), "{out}");
    c.state().fails();
}

#[test]
fn rootfs_propagation_shared_slave_private() {
    // runc 1.1 makes the mount holding the rootfs private before its bind, so its container
    // root is never shared or a slave (observed here); the check still runs for "private".
    let props: &[&str] = if runtime_is_runc() {
        eprintln!("NOTICE: runc does not apply shared/slave rootfsPropagation to the root; checking private only");
        &["private"]
    } else {
        &["shared", "slave", "private"]
    };
    for &prop in props {
        let mut c = Container::new(&format!("prop-{prop}"));
        // The rootfs as a shared mount point of its own, so each propagation type is
        // observable (a bind of a non-shared directory can only be private). The runtime runs
        // in a private mount namespace holding that shared mount: a shared container root
        // then propagates its mounts there, never to the host.
        c.config()["linux"]["rootfsPropagation"] = json!(prop);
        c.args(&["cat", "/proc/self/mountinfo"]);
        c.bundle.write_config();
        let rootfs = c.bundle.rootfs().to_str().unwrap().to_string();
        let bundle = c.bundle.path().to_str().unwrap().to_string();
        let root = c.root().to_str().unwrap().to_string();
        let out = exec(
            Command::new("unshare")
                .args(["-m", "--propagation", "private", "sh", "-c"])
                .arg("mount --bind \"$0\" \"$0\" && mount --make-shared \"$0\" && shift && exec \"$@\"")
                .args([&rootfs, "--"])
                .arg(&c.runtime)
                .args(["--root", &root, "run", "--bundle", &bundle, &c.id]),
            CMD_TIMEOUT,
        )
        .ok();
        let root = out
            .stdout
            .lines()
            .rev()
            .find(|l| l.split_whitespace().nth(4) == Some("/"))
            .expect("root line")
            .to_string();
        let optional = root.split(" - ").next().unwrap();
        let (shared, master) = (optional.contains("shared:"), optional.contains("master:"));
        match prop {
            "shared" => assert!(shared, "{prop}: {root}"),
            // A slave of the runtime's private copy shows no master: only "not shared" holds.
            "slave" => assert!(!shared, "{prop}: {root} (master: {master})"),
            _ => assert!(!master && !shared, "{prop}: {root}"),
        }
    }
}

#[test]
fn bind_mounts_ro_and_rw() {
    let host = host_tempdir("it-bind-");
    fs::write(host.path().join("file"), "from-host\n").unwrap();
    let mut c = Container::new("bind");
    let src = host.path().to_str().unwrap();
    c.add_mount(
        json!({"destination": "/mnt/rw", "type": "bind", "source": src, "options": ["bind"]}),
    );
    c.add_mount(
        json!({"destination": "/mnt/ro", "type": "bind", "source": src, "options": ["bind", "ro"]}),
    );
    c.sh("cat /mnt/rw/file; echo new > /mnt/rw/new && echo rw-ok; touch /mnt/ro/x 2>/dev/null || echo ro-denied");
    let out = c.run().ok();
    assert_eq!(out.stdout, "from-host\nrw-ok\nro-denied\n", "{out}");
    assert_eq!(
        fs::read_to_string(host.path().join("new")).unwrap(),
        "new\n"
    );
}

#[test]
fn bind_mount_of_a_file() {
    let host = host_tempdir("it-bindfile-");
    let f = host.path().join("one");
    fs::write(&f, "single-file\n").unwrap();
    let mut c = Container::new("bind-file");
    c.add_mount(json!({"destination": "/etc/one", "type": "none", "source": f.to_str().unwrap(), "options": ["bind", "ro"]}));
    c.args(&["cat", "/etc/one"]);
    assert_eq!(c.run().ok().stdout, "single-file\n");
}

#[test]
fn rbind_carries_submounts_and_bind_does_not() {
    let host = host_tempdir("it-rbind-");
    let _m = HostMount::tmpfs(&host.path().join("sub"));
    fs::write(host.path().join("sub/inner"), "submount\n").unwrap();
    let src = host.path().to_str().unwrap();
    let mut c = Container::new("rbind");
    c.add_mount(json!({"destination": "/r", "type": "bind", "source": src, "options": ["rbind"]}));
    c.add_mount(json!({"destination": "/b", "type": "bind", "source": src, "options": ["bind"]}));
    c.sh("cat /r/sub/inner; ls /b/sub | wc -l");
    let out = c.run().ok();
    assert_eq!(out.stdout, "submount\n0\n", "{out}");
}

#[test]
fn recursive_read_only_rro() {
    let host = host_tempdir("it-rro-");
    let _m = HostMount::tmpfs(&host.path().join("sub"));
    let src = host.path().to_str().unwrap();
    let mut c = Container::new("rro");
    c.add_mount(
        json!({"destination": "/rro", "type": "bind", "source": src, "options": ["rbind", "rro"]}),
    );
    c.add_mount(
        json!({"destination": "/ro", "type": "bind", "source": src, "options": ["rbind", "ro"]}),
    );
    c.sh(
        "touch /rro/sub/x 2>/dev/null && echo rro-sub-writable || echo rro-sub-readonly; \
          touch /ro/sub/y 2>/dev/null && echo ro-sub-writable || echo ro-sub-readonly; \
          touch /ro/z 2>/dev/null && echo ro-top-writable || echo ro-top-readonly",
    );
    let out = c.run().ok();
    // Plain ro applies to the top mount only; rro reaches the submount.
    assert_eq!(
        out.stdout, "rro-sub-readonly\nro-sub-writable\nro-top-readonly\n",
        "{out}"
    );
}

#[test]
fn tmpfs_size_mode_and_flags() {
    let mut c = Container::new("tmpfs");
    c.add_mount(
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
        "options": ["size=1m", "mode=0710", "nosuid", "nodev", "noexec"]}),
    );
    c.sh("stat -c %a /scratch; df -k /scratch | tail -1 | awk '{print $2}'; \
          cp /bin/busybox /scratch/bb; /scratch/bb true 2>/dev/null && echo exec-ok || echo exec-denied; \
          cat /proc/self/mountinfo");
    let out = c.run().ok();
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("710"), "{out}");
    assert_eq!(lines.next(), Some("1024"), "{out}");
    assert_eq!(lines.next(), Some("exec-denied"), "{out}");
    let (_, ty, opts, _) = mount_at(&out.stdout, "/scratch").expect("scratch mount");
    assert_eq!(ty, "tmpfs");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(has_opt(&opts, o), "{o} missing: {opts}");
    }
}

#[test]
fn mount_options_ro_nosuid_noexec_nodev_on_bind() {
    let host = host_tempdir("it-opts-");
    let mut c = Container::new("bind-opts");
    c.add_mount(
        json!({"destination": "/o", "type": "bind", "source": host.path().to_str().unwrap(),
        "options": ["rbind", "ro", "nosuid", "noexec", "nodev", "noatime"]}),
    );
    c.args(&["cat", "/proc/self/mountinfo"]);
    let out = c.run().ok();
    let (_, _, opts, _) = mount_at(&out.stdout, "/o").expect("/o mounted");
    for o in ["ro", "nosuid", "noexec", "nodev", "noatime"] {
        assert!(has_opt(&opts, o), "{o} missing from {opts}");
    }
}

#[test]
fn default_special_filesystems() {
    let mut c = Container::new("special-fs");
    c.args(&["cat", "/proc/self/mountinfo"]);
    let out = c.run().ok();
    let mi = &out.stdout;
    for (dest, ty) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
    ] {
        let m = mount_at(mi, dest).unwrap_or_else(|| panic!("{dest} not mounted:\n{mi}"));
        assert_eq!(m.1, ty, "{dest}: {m:?}");
    }
    let sys = mount_at(mi, "/sys").unwrap();
    assert!(has_opt(&sys.2, "ro"), "sysfs not ro: {sys:?}");
    let pts = mount_at(mi, "/dev/pts").unwrap();
    assert!(
        has_opt(&pts.3, "gid=5") && has_opt(&pts.3, "ptmxmode=666") && has_opt(&pts.3, "mode=620"),
        "{pts:?}"
    );
    // /sys/fs/cgroup: the container's cgroup hierarchies, read-only.
    let cg: Vec<_> = parse_mountinfo(mi)
        .into_iter()
        .filter(|m| m.0.starts_with("/sys/fs/cgroup") && (m.1 == "cgroup" || m.1 == "cgroup2"))
        .collect();
    assert!(!cg.is_empty(), "no cgroup mounts:\n{mi}");
    for m in &cg {
        assert!(has_opt(&m.2, "ro"), "cgroup mount not ro: {m:?}");
    }
}

#[test]
fn cgroup_mount_shows_the_container_cgroup() {
    let mut c = Container::new("cgroup-mount");
    c.config()["mounts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .filter(|m| m["type"] == "cgroup")
        .for_each(|m| m["options"] = json!(["nosuid", "noexec", "nodev", "relatime", "rw"]));
    // v1: the container's own directory of each hierarchy is what it sees (here pids). v2: a
    // cgroup2 mount shows the root of the cgroup namespace — the host's whole tree without
    // one, as with runc — so the container gets one, as Podman and Docker give it on v2.
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if v2 {
        c.config()["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "cgroup"}));
    }
    c.sh("f=/sys/fs/cgroup/pids/cgroup.procs; [ -e $f ] || f=/sys/fs/cgroup/cgroup.procs; cat $f");
    let out = c.run().ok();
    let procs: Vec<&str> = out.stdout.split_whitespace().collect();
    assert!(
        procs.contains(&"1"),
        "container init not in its visible cgroup: {out}"
    );
    // Only the container's processes: none from outside its pid namespace (shown as 0).
    assert!(!procs.contains(&"0"), "{out}");
}

#[test]
fn masked_paths() {
    let mut c = Container::new("masked");
    let mut masked = c.config()["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .clone();
    masked.push(json!("/proc/cpuinfo"));
    masked.push(json!("/sys/kernel"));
    masked.push(json!("/does/not/exist"));
    c.config()["linux"]["maskedPaths"] = json!(masked);
    assert!(Path::new("/proc/keys").exists() && Path::new("/proc/timer_list").exists());
    c.sh("wc -c < /proc/keys; wc -c < /proc/timer_list; wc -c < /proc/cpuinfo; ls -A /sys/kernel | wc -l; ls -A /sys/firmware | wc -l; \
          echo x > /proc/cpuinfo 2>/dev/null; echo done");
    let out = c.run().ok();
    let got: Vec<String> = out.stdout.split_whitespace().map(str::to_string).collect();
    assert_eq!(got, ["0", "0", "0", "0", "0", "done"], "{out}");
}

#[test]
fn readonly_paths() {
    let mut c = Container::new("ropaths");
    c.add_mount(
        json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
    );
    let mut ro = c.config()["linux"]["readonlyPaths"]
        .as_array()
        .unwrap()
        .clone();
    ro.push(json!("/data"));
    ro.push(json!("/does/not/exist"));
    c.config()["linux"]["readonlyPaths"] = json!(ro);
    c.sh("touch /data/x 2>/dev/null && echo data-writable || echo data-readonly; \
          echo 1 > /proc/sys/kernel/shm_rmid_forced 2>/dev/null && echo sys-writable || echo sys-readonly; \
          cat /proc/sys/kernel/ostype");
    let out = c.run().ok();
    assert_eq!(out.stdout, "data-readonly\nsys-readonly\nLinux\n", "{out}");
}

#[test]
fn default_devices_and_symlinks() {
    let mut c = Container::new("devices-default");
    c.sh("stat -c '%n %F %t,%T %a' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; \
          for l in fd stdin stdout stderr ptmx; do echo $l=$(readlink /dev/$l); done; \
          head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo null-ok; \
          echo x 2>/dev/null > /dev/full || echo full-enospc");
    let out = c.run().ok();
    let want = [
        "/dev/null character special file 1,3 666",
        "/dev/zero character special file 1,5 666",
        "/dev/full character special file 1,7 666",
        "/dev/random character special file 1,8 666",
        "/dev/urandom character special file 1,9 666",
        "/dev/tty character special file 5,0 666",
        "fd=/proc/self/fd",
        "stdin=/proc/self/fd/0",
        "stdout=/proc/self/fd/1",
        "stderr=/proc/self/fd/2",
        "ptmx=pts/ptmx",
        "4",
        "null-ok",
        "full-enospc",
    ];
    let got: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(got, want, "{out}");
}

#[test]
fn dev_pts_ptmx() {
    let mut c = Container::new("ptmx");
    c.sh("stat -c '%F %t,%T %a' /dev/pts/ptmx; ls /dev/pts");
    let out = c.run().ok();
    // newinstance devpts: ptmx of this instance, mode from ptmxmode, no ptys yet.
    assert_eq!(
        out.stdout, "character special file 5,2 666\nptmx\n",
        "{out}"
    );
}

#[test]
fn configured_devices() {
    let mut c = Container::new("devices-config");
    c.config()["linux"]["devices"] = json!([
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 1000},
        {"path": "/dev/sub/myzero", "type": "c", "major": 1, "minor": 5},
        {"path": "/dev/myfifo", "type": "p"},
        {"path": "/dev/myloop", "type": "b", "major": 7, "minor": 0}
    ]);
    c.config()["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}
    ]);
    c.sh(
        "stat -c '%n %F %t,%T %a %u:%g' /dev/mynull; stat -c '%n %F %t,%T' /dev/sub/myzero; \
          head -c 3 /dev/sub/myzero | wc -c; stat -c '%n %F' /dev/myfifo; stat -c '%n %F %t,%T' /dev/myloop",
    );
    let out = c.run().ok();
    assert_eq!(
        out.stdout,
        "/dev/mynull character special file 1,3 640 1000:1000\n/dev/sub/myzero character special file 1,5\n3\n/dev/myfifo fifo\n/dev/myloop block special file 7,0\n",
        "{out}"
    );
}

#[test]
fn no_pivot() {
    let mut c = Container::new("no-pivot");
    c.sh("ls /bin/busybox && cat /etc/passwd | head -1");
    c.bundle.write_config();
    let b = c.bundle.path().to_str().unwrap().to_string();
    let id = c.id.clone();
    let out = c.cmd(&["run", "--no-pivot", "--bundle", &b, &id]).ok();
    assert_eq!(
        out.stdout, "/bin/busybox\nroot:x:0:0:root:/root:/bin/sh\n",
        "{out}"
    );
}

#[test]
fn mount_destination_symlink_stays_in_rootfs() {
    let outside = host_tempdir("it-escape-");
    let mut c = Container::new("mount-escape");
    // An absolute symlink and a ../ one, both aimed at a host directory.
    let target = outside.path().to_str().unwrap().to_string();
    std::os::unix::fs::symlink(&target, c.bundle.rootfs().join("abs")).unwrap();
    std::os::unix::fs::symlink(
        format!("../../../../../../../..{target}"),
        c.bundle.rootfs().join("rel"),
    )
    .unwrap();
    c.add_mount(json!({"destination": "/abs/m1", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    c.add_mount(json!({"destination": "/rel/m2", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    let _ = c.run();
    let left: Vec<_> = fs::read_dir(outside.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "mount destinations escaped the rootfs: {left:?}"
    );
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(&target), "host mount under {target}");
}

#[test]
fn mount_with_missing_source_fails_cleanly() {
    let mut c = Container::new("mount-missing-src");
    c.add_mount(json!({"destination": "/m", "type": "bind", "source": "/nonexistent/it-src", "options": ["bind"]}));
    let out = c.run().fails();
    assert!(out.all_text().contains("/nonexistent/it-src"), "{out}");
    c.state().fails();
}

#[test]
fn bind_mount_propagation_flags() {
    // A shared host directory; after the container started, a tmpfs is mounted under it on
    // the host. An rslave bind receives it, an rprivate bind does not.
    let host = host_tempdir("it-bindprop-");
    let _shared = HostMount::bind_shared(host.path());
    fs::create_dir(host.path().join("sub")).unwrap();
    let src = host.path().to_str().unwrap();
    let mut c = Container::new("bind-prop");
    c.config()["linux"]["rootfsPropagation"] = json!("rslave");
    c.add_mount(json!({"destination": "/slave", "type": "bind", "source": src, "options": ["rbind", "rslave"]}));
    c.add_mount(json!({"destination": "/private", "type": "bind", "source": src, "options": ["rbind", "rprivate"]}));
    c.sh(
        "i=0; while [ ! -e /slave/go ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; \
          cat /slave/sub/marker 2>/dev/null || echo slave-absent; \
          cat /private/sub/marker 2>/dev/null || echo private-absent",
    );
    c.run_detached().ok();
    let _sub = HostMount::tmpfs(&host.path().join("sub"));
    fs::write(host.path().join("sub/marker"), "propagated\n").unwrap();
    fs::write(host.path().join("go"), "").unwrap();
    assert!(c.wait_status("stopped", std::time::Duration::from_secs(15)));
    c.delete().ok();
    assert_eq!(c.container_stdout(), "propagated\nprivate-absent\n");
}

#[test]
fn mount_flag_options_reach_the_kernel() {
    // One tmpfs per option; mountinfo's per-mount (vfs) options or super options show it.
    let cases: &[(&str, &[&str], &str)] = &[
        ("/o/ro", &["ro"], "ro"),
        ("/o/nosuid", &["nosuid"], "nosuid"),
        ("/o/nodev", &["nodev"], "nodev"),
        ("/o/noexec", &["noexec"], "noexec"),
        ("/o/noatime", &["noatime"], "noatime"),
        ("/o/nodiratime", &["nodiratime"], "nodiratime"),
        ("/o/sync", &["sync"], "sync"),
        ("/o/dirsync", &["dirsync"], "dirsync"),
        ("/o/rw-after-ro", &["ro", "rw"], "rw"),
        ("/o/exec-after-noexec", &["noexec", "exec"], "!noexec"),
        ("/o/suid-after-nosuid", &["nosuid", "suid"], "!nosuid"),
        ("/o/dev-after-nodev", &["nodev", "dev"], "!nodev"),
        ("/o/strictatime", &["strictatime"], "!relatime"),
    ];
    let mut c = Container::new("mount-flags");
    for (dest, opts, _) in cases {
        c.add_mount(
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts}),
        );
    }
    c.args(&["cat", "/proc/self/mountinfo"]);
    let out = c.run().ok();
    for (dest, opts, want) in cases {
        let m = mount_at(&out.stdout, dest).unwrap_or_else(|| panic!("{dest} not mounted\n{out}"));
        let all = format!("{},{}", m.2, m.3);
        match want.strip_prefix('!') {
            Some(absent) => assert!(
                !has_opt(&all, absent),
                "{dest} {opts:?}: {absent} still set: {all}"
            ),
            None => assert!(
                has_opt(&all, want),
                "{dest} {opts:?}: {want} missing: {all}"
            ),
        }
    }
}

#[test]
fn recursive_mount_flags_reach_submounts() {
    let host = host_tempdir("it-rflags-");
    let _m = HostMount::tmpfs(&host.path().join("sub"));
    let src = host.path().to_str().unwrap();
    let mut c = Container::new("rflags");
    c.add_mount(json!({"destination": "/rf", "type": "bind", "source": src,
        "options": ["rbind", "rnosuid", "rnodev", "rnoexec", "rnoatime"]}));
    c.args(&["cat", "/proc/self/mountinfo"]);
    let out = c.run().ok();
    for dest in ["/rf", "/rf/sub"] {
        let m = mount_at(&out.stdout, dest).unwrap_or_else(|| panic!("{dest} not mounted\n{out}"));
        for o in ["nosuid", "nodev", "noexec", "noatime"] {
            assert!(has_opt(&m.2, o), "{dest}: {o} missing from {}", m.2);
        }
    }
}

//! Security: what a hostile rootfs, a hostile container or a less-privileged caller can
//! make the runtime (root) do. Each test plays the attacker with a real container and
//! checks from inside and outside that nothing reached what it should not.
//!
//! The host binary (issue 8, part 1): see `mod host_binary` below.
//!
//! Paths and bind sources (issue 8, part 2): planted /dev/null and /dev/console, device
//! nodes bound from the host, sysctl and oom_score_adj writes redirected by mounts over
//! /proc, process.cwd through /proc/self/fd, and annotation paths leaving the bundle.

use nucleus_integration::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

/// Drops the config's /dev mounts, so the rootfs's own /dev (what an image or a previous
/// container left there) is what the runtime finds.
fn without_dev_mounts(c: &mut Container) {
    let mounts: Vec<Value> = c.config()["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter(|m| !m["destination"].as_str().unwrap_or("").starts_with("/dev"))
        .cloned()
        .collect();
    c.config()["mounts"] = json!(mounts);
}

/// runc 1.1.5 (the reference installed here) predates the fix of `cve`: the check is
/// nucleus's only.
fn runc_predates_fix(cve: &str) -> bool {
    if runtime_is_runc() {
        eprintln!("NOTICE: runc 1.1.5 predates the fix of {cve}; skipped under runc");
        return true;
    }
    false
}

/// A failure that is a clean refusal: a message naming `what`, no container left.
fn assert_refused(c: &Container, out: &Output, what: &[&str]) {
    assert!(!out.success() && !out.timed_out, "{out}");
    let text = out.all_text();
    for w in what {
        assert!(text.contains(w), "message should name {w:?}: {out}");
    }
    assert!(
        !c.state().success(),
        "a refused container must not be left: {out}"
    );
}

// ---- maskedPaths with a planted /dev/null (CVE-2025-31133 class) ----

#[test]
fn masked_paths_never_get_a_planted_dev_null() {
    if runc_predates_fix("CVE-2025-31133") {
        return;
    }
    fn to_procfs(dev: &Path) {
        symlink("/proc/version", dev.join("null")).unwrap()
    }
    fn regular(dev: &Path) {
        fs::write(dev.join("null"), "planted\n").unwrap()
    }
    type Plant = fn(&Path);
    let plants: [(&str, Plant); 2] = [
        ("symlink into procfs", to_procfs),
        ("regular file", regular),
    ];
    for (what, plant) in plants {
        let mut c = Container::new("sec-null");
        without_dev_mounts(&mut c);
        plant(&c.bundle.rootfs().join("dev"));
        c.config()["linux"]["maskedPaths"] = json!(["/proc/kcore", "/proc/cmdline"]);
        c.sh("stat -c '%F %t:%T' /proc/cmdline; wc -c < /proc/cmdline");
        let out = c.run();
        if out.success() {
            assert_eq!(
                out.stdout.split_whitespace().collect::<Vec<_>>(),
                ["character", "special", "file", "1:3", "0"],
                "{what}: the masked path must be an empty null device: {out}"
            );
        } else {
            assert_refused(&c, &out, &["masked path", "/dev/null"]);
        }
    }
}

// ---- /dev/console planted as a symlink (CVE-2025-52565 class) ----

#[test]
fn console_is_never_bound_through_a_planted_symlink() {
    if runc_predates_fix("CVE-2025-52565") {
        return;
    }
    let mut c = Container::new("sec-console");
    without_dev_mounts(&mut c);
    c.add_mount(
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
    );
    let rootfs = c.bundle.rootfs();
    fs::write(rootfs.join("tmp/target"), "sentinel\n").unwrap();
    symlink("/tmp/target", rootfs.join("dev/console")).unwrap();
    c.config()["process"]["terminal"] = json!(true);
    c.sh("stat -c '%F' /tmp/target; cat /tmp/target");
    let out = c.run();
    if out.success() {
        assert!(
            out.stdout.contains("regular file") && out.stdout.contains("sentinel"),
            "the pty was bound over the symlink's target: {out}"
        );
    } else {
        assert_refused(&c, &out, &["/dev/console", "symlink"]);
    }

    // Without the planted symlink, the console is the pty.
    let mut c = Container::new("sec-console-ok");
    c.config()["process"]["terminal"] = json!(true);
    c.sh("stat -c '%F %t' /dev/console; [ -t 0 ] && echo tty");
    let out = c.run().ok();
    assert!(
        out.stdout.contains("character special file 88") && out.stdout.contains("tty"),
        "{out}"
    );
}

// ---- device nodes bound from the host in a user namespace ----

#[test]
fn host_device_binds_are_the_device_the_config_names() {
    if runtime_is_runc() {
        eprintln!("NOTICE: runc binds the host's node without checking its number");
        return;
    }
    let mut c = Container::new("sec-devbind");
    c.user_namespace(100000, 200000);
    // The host's /dev/zero is 1:5: binding it where the config asks for 1:3 would hand
    // the container another device than the one its config allows.
    c.config()["linux"]["devices"] =
        json!([{"path": "/dev/zero", "type": "c", "major": 1, "minor": 3}]);
    c.sh("stat -c '%t:%T' /dev/zero");
    let out = c.run();
    assert_refused(&c, &out, &["/dev/zero", "1:5", "1:3"]);

    // A planted symlink at a device's path does not redirect the bind.
    let mut c = Container::new("sec-devlink");
    c.user_namespace(100000, 200000);
    without_dev_mounts(&mut c);
    let rootfs = c.bundle.rootfs();
    // The mapped root may create the other nodes' mount points.
    fs::set_permissions(rootfs.join("dev"), fs::Permissions::from_mode(0o777)).unwrap();
    fs::write(rootfs.join("etc/victim"), "sentinel\n").unwrap();
    symlink("/etc/victim", rootfs.join("dev/full")).unwrap();
    c.config()["linux"]["maskedPaths"] = json!([]);
    c.sh("stat -c '%F' /etc/victim; cat /etc/victim");
    let out = c.run();
    if out.success() {
        assert!(
            out.stdout.contains("regular file") && out.stdout.contains("sentinel"),
            "a host device was bound over the symlink's target: {out}"
        );
    } else {
        assert_refused(&c, &out, &["/dev/full", "symlink"]);
    }
}

// ---- procfs writes redirected by a mount over /proc (CVE-2025-52881 class) ----

/// A createContainer hook (in the container's mount namespace, before pivot) that binds
/// `file` over `target` inside the rootfs: what a racing attacker with a shared mount
/// would do once /proc is mounted.
fn bind_over_in_hook(c: &mut Container, file: &Path, target: &str) {
    let dest = c.bundle.rootfs().join(target.trim_start_matches('/'));
    let script = format!("mount --bind {} {}", file.display(), dest.display());
    c.config()["hooks"] = json!({"createContainer": [
        {"path": BUSYBOX, "args": ["sh", "-c", script]}
    ]});
}

#[test]
fn sysctl_writes_are_not_redirected_by_mounts_over_proc() {
    if runc_predates_fix("CVE-2025-52881") {
        return;
    }
    let host = host_tempdir("it-sec-sysctl-");
    let file = host.path().join("sysctl");
    fs::write(&file, "sentinel\n").unwrap();
    let mut c = Container::new("sec-sysctl");
    bind_over_in_hook(&mut c, &file, "/proc/sys/net/ipv4/ip_forward");
    c.config()["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    c.sh("cat /proc/self/status >/dev/null");
    let out = c.run();
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "sentinel\n",
        "the sysctl write landed in the file bound over /proc/sys: {out}"
    );
    out.ok();

    // The private procfs also works in a user namespace, and the value is really set.
    let mut c = Container::new("sec-sysctl-userns");
    c.user_namespace(100000, 200000);
    c.config()["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    c.sh("cat /proc/sys/net/ipv4/ip_forward");
    let out = c.run().ok();
    assert_eq!(out.stdout.trim(), "1", "{out}");
}

#[test]
fn oom_score_adj_is_not_redirected_by_mounts_over_proc() {
    let host = host_tempdir("it-sec-oom-");
    let file = host.path().join("oom");
    fs::write(&file, "sentinel\n").unwrap();
    let mut c = Container::new("sec-oom");
    bind_over_in_hook(&mut c, &file, "/proc/1/oom_score_adj");
    c.config()["process"]["oomScoreAdj"] = json!(123);
    c.sh("sleep 30");
    let out = c.run_detached();
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "sentinel\n",
        "the oom_score_adj write landed in the file bound over /proc: {out}"
    );
    if runtime_is_runc() && !out.success() {
        return;
    }
    out.ok();
    let adj = fs::read_to_string(format!("/proc/{}/oom_score_adj", c.pid())).unwrap();
    assert_eq!(adj.trim(), "123");

    // Written from outside, it reaches an init in a user namespace as well.
    let mut c = Container::new("sec-oom-userns");
    c.user_namespace(100000, 200000);
    c.config()["process"]["oomScoreAdj"] = json!(200);
    c.sh("cat /proc/self/oom_score_adj");
    assert_eq!(c.run().ok().stdout.trim(), "200");
}

// ---- process.cwd through /proc/self/fd (CVE-2024-21626 class) ----

/// The kernel's getcwd names a directory outside the process's root "(unreachable)/...",
/// which `pwd -P` prints or fails on: either way the first line is not an absolute path.
const CWD_PROBE: &str = "pwd -P 2>&1";

fn cwd_escaped(out: &str) -> bool {
    let first = out.lines().next().unwrap_or("");
    !first.starts_with('/') || out.contains("unreachable")
}

#[test]
fn init_cwd_through_proc_self_fd_never_reaches_the_host() {
    for n in 3..=10 {
        let mut c = Container::new("sec-cwd");
        c.config()["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        c.sh(CWD_PROBE);
        let out = c.run();
        assert!(!out.timed_out, "{out}");
        if out.success() {
            assert!(
                !cwd_escaped(&out.stdout),
                "fd {n}: cwd outside the container: {out}"
            );
        } else {
            assert_refused(&c, &out, &["cwd", "/proc/self/fd/"]);
        }
    }
}

#[test]
fn exec_cwd_through_proc_self_fd_never_reaches_the_host() {
    let mut c = Container::new("sec-execcwd");
    c.sh("sleep 60");
    c.run_detached().ok();
    let id = c.id.clone();
    for n in 3..=10 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = c.cmd(&["exec", "--cwd", &cwd, &id, "sh", "-c", CWD_PROBE]);
        assert!(!out.timed_out, "{out}");
        if out.success() {
            assert!(
                !cwd_escaped(&out.stdout),
                "fd {n}: cwd outside the container: {out}"
            );
        } else {
            let text = out.all_text();
            assert!(
                text.contains("cwd") || text.contains("/proc/self/fd/"),
                "fd {n}: {out}"
            );
        }
    }
}

// ---- annotation paths leaving the bundle ----

fn trace_container(name: &str, trace_file: &str) -> Container {
    let mut c = Container::new(name);
    c.config()["annotations"] = json!({
        "run.nucleus.seccomp.mode": "trace",
        "run.nucleus.seccomp.trace-file": trace_file
    });
    c.args(&["true"]);
    c
}

/// True when `path` appears within a short while (the trace monitor outlives `run`).
fn appears(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        if fs::symlink_metadata(path).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn trace_file_annotation_never_leads_outside_the_bundle() {
    if runtime_is_runc() {
        eprintln!("NOTICE: trace mode is nucleus's; skipped under runc");
        return;
    }
    let outside = host_tempdir("it-sec-trace-");

    // "../x": the bundle's parent.
    let name = unique_id("sec-trace-up");
    let mut c = trace_container("sec-trace-up", &format!("../{name}"));
    let escaped = c.bundle.path().parent().unwrap().join(&name);
    let out = c.run();
    assert_refused(&c, &out, &["trace-file", ".."]);
    assert!(!appears(&escaped), "{} was written", escaped.display());

    // An absolute path outside the bundle.
    let abs = outside.path().join("abs.ndjson");
    let mut c = trace_container("sec-trace-abs", abs.to_str().unwrap());
    let out = c.run();
    assert_refused(&c, &out, &["trace-file", "bundle"]);
    assert!(!appears(&abs), "{} was written", abs.display());

    // A symlinked directory in the bundle leading outside.
    let mut c = trace_container("sec-trace-dirlink", "out/t.ndjson");
    symlink(outside.path(), c.bundle.path().join("out")).unwrap();
    let out = c.run();
    assert_refused(&c, &out, &["trace-file", "out of the bundle"]);
    assert!(!appears(&outside.path().join("t.ndjson")));

    // The file itself a symlink to a host file.
    let victim = outside.path().join("victim");
    fs::write(&victim, "sentinel\n").unwrap();
    let mut c = trace_container("sec-trace-link", "t.ndjson");
    symlink(&victim, c.bundle.path().join("t.ndjson")).unwrap();
    let out = c.run();
    assert_refused(&c, &out, &["trace-file", "symlink"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "sentinel\n");

    // A FIFO: refused at once, never opened (opening one would block).
    let mut c = trace_container("sec-trace-fifo", "fifo");
    let fifo = c.bundle.path().join("fifo");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let out = c.run();
    assert_refused(&c, &out, &["trace-file", "FIFO"]);
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());

    // Nothing else was left in the outside directory.
    let left: Vec<_> = fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("victim")]);

    // A path beneath the bundle still works.
    let mut c = trace_container("sec-trace-ok", "sub/../t.ndjson");
    let out = c.run();
    assert_refused(&c, &out, &["trace-file", ".."]);
    let mut c = trace_container("sec-trace-ok", "t.ndjson");
    c.run().ok();
    let trace = c.bundle.path().join("t.ndjson");
    assert!(appears(&trace));
}
/// The host binary and host directories out of reach (issue 8, part 1): attacks from
/// inside a container on the host (CVE-2019-5736 and CVE-2024-21626 classes). A static
/// attacker program, copied into the rootfs, looks for the host's runtime binary and host
/// directories through every process it can see while nucleus processes are inside the
/// container: a created init waiting for `start`, `exec`'d processes before their execve, a
/// second container sharing the pid namespace; default capabilities and all of them but
/// CAP_SYS_ADMIN, with and without a user namespace. (A `#!/proc/self/exe` program run by
/// `exec` gets ENOENT from this kernel, under runc too.)
mod host_binary {
    use std::os::unix::fs::MetadataExt;
    use std::time::Duration;

    use nucleus_integration::*;
    use serde_json::{json, Value};

    const ATTACK: &str = env!("NUCLEUS_ATTACK");

    /// Every capability but CAP_SYS_ADMIN (which may undo any mount protection) and
    /// CAP_SYS_RESOURCE (absent from root's bounding set on some hosts).
    fn all_but_sys_admin() -> Vec<&'static str> {
        CAPABILITIES
            .iter()
            .copied()
            .filter(|c| !matches!(*c, "CAP_SYS_ADMIN" | "CAP_SYS_RESOURCE"))
            .collect()
    }

    #[derive(Clone, Copy, Debug)]
    enum Caps {
        Default,
        AllButSysAdmin,
    }

    /// dev:ino of the runtime binary on the host: what the attacker must never write.
    fn host_binary() -> String {
        let md = std::fs::metadata(runtime_path()).expect("stat the runtime");
        format!("{}:{}", md.dev(), md.ino())
    }

    /// A container with the attacker at /attack (a copy: the container owns it).
    fn attack_container(name: &str, caps: Caps, userns: bool) -> Container {
        let mut c = Container::new(name);
        let dst = c.bundle.rootfs().join("attack");
        std::fs::copy(ATTACK, &dst).expect("copy the attacker into the rootfs");
        // The attacker keeps its notes in /tmp.
        c.config()["root"]["readonly"] = json!(false);
        if let Caps::AllButSysAdmin = caps {
            let all = json!(all_but_sys_admin());
            c.config()["process"]["capabilities"] =
                json!({"bounding": all, "effective": all, "permitted": all});
        }
        if userns {
            let ns = c.config()["linux"]["namespaces"].as_array_mut().unwrap();
            ns.push(json!({"type": "user"}));
            let map = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            c.config()["linux"]["uidMappings"] = map.clone();
            c.config()["linux"]["gidMappings"] = map;
            chown_tree(&c.bundle.rootfs(), 200000);
        }
        c
    }

    fn chown_tree(dir: &std::path::Path, id: u32) {
        let status = std::process::Command::new("chown")
            .args(["-R", "-h", &format!("{id}:{id}")])
            .arg(dir)
            .status()
            .expect("chown");
        assert!(status.success());
    }

    #[track_caller]
    fn assert_no_breach(what: &str, out: &Output) {
        assert!(
            !out.all_text().contains("VULN") && out.all_text().contains("vulns=0"),
            "{what}: the container reached the host\n{out}"
        );
    }

    fn exec_attack(c: &Container, mode: &[&str]) -> Output {
        let host = host_binary();
        let mut args = vec!["exec", c.id.as_str(), "/attack", host.as_str()];
        args.extend_from_slice(mode);
        c.cmd(&args)
    }

    /// The init of a created container is the runtime's binary until `start`.
    #[test]
    fn created_init_is_out_of_reach() {
        for caps in [Caps::Default, Caps::AllButSysAdmin] {
            for userns in [false, true] {
                let mut c = attack_container("sec-created", caps, userns);
                c.args(&["sleep", "100"]);
                c.create().ok();
                let out = exec_attack(&c, &["scan"]);
                assert_no_breach(&format!("{caps:?}, user namespace {userns}"), &out);
                c.delete_force().ok();
            }
        }
    }

    /// A second container joining the first one's pid namespace sees its waiting init.
    #[test]
    fn shared_pid_namespace_init_is_out_of_reach() {
        let mut first = attack_container("sec-pidns-a", Caps::AllButSysAdmin, false);
        first.args(&["sleep", "100"]);
        first.create().ok();
        let pid = first.pid();
        let mut second = attack_container("sec-pidns-b", Caps::AllButSysAdmin, false);
        let host = host_binary();
        second.args(&["/attack", &host, "scan"]);
        set_namespace_path(second.config(), "pid", &format!("/proc/{pid}/ns/pid"));
        let out = second.run();
        assert_no_breach("joined pid namespace", &out);
        first.delete_force().ok();
    }

    fn set_namespace_path(config: &mut Value, kind: &str, path: &str) {
        for ns in config["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == kind {
                ns["path"] = json!(path);
            }
        }
    }

    /// `exec`'d processes are the runtime's binary between fork and execve: an attacker that
    /// watches for them (with CAP_SYS_PTRACE, which passes non-dumpability) must find them
    /// read-only, and find no host directory among their fds.
    #[test]
    fn exec_processes_are_out_of_reach() {
        for userns in [false, true] {
            let mut c = attack_container("sec-exec", Caps::AllButSysAdmin, userns);
            let host = host_binary();
            c.sh(&format!(
                "/attack {host} watch 6 > /tmp/out 2>&1; echo done >> /tmp/out; sleep 100"
            ));
            c.run_detached().ok();
            for _ in 0..40 {
                c.cmd(&["exec", &c.id, "true"]).ok();
            }
            let out = wait_for_file(&c, "/tmp/out", "done");
            assert!(
                !out.contains("VULN") && out.contains("vulns=0"),
                "user namespace {userns}: {out}"
            );
            c.delete_force().ok();
        }
    }

    /// A mount namespace of its own (a private copy of the host's) with an empty tmpfs at
    /// /run/nucleus, kept by a sleeping holder, and a wrapper that runs the runtime in it:
    /// what the runtime leaves in its mount namespace is seen there alone (other tests and
    /// programs on the host mount and unmount at the same time), and what older versions
    /// left in /run/nucleus can be planted without touching the host's. The holder is killed
    /// on drop.
    struct PrivateRun {
        holder: std::process::Child,
        dir: tempfile::TempDir,
    }

    impl PrivateRun {
        fn new() -> Self {
            let holder = std::process::Command::new("unshare")
                .args(["-m", "--propagation", "private", "sh", "-c"])
                .arg(concat!(
                    // The host's own binds (under the tmpfs) are not this namespace's concern.
                    "for m in $(awk '$5 ~ \"^/run/nucleus/@exe/\" {print $5}' /proc/self/mountinfo); ",
                    "do umount -l \"$m\"; done; ",
                    // A fresh host (the guest) has no /run/nucleus until a default root is used.
                    "mkdir -p /run/nucleus && ",
                    "mount -t tmpfs -o mode=0711 tmpfs /run/nucleus && exec sleep 1000"
                ))
                .stdin(std::process::Stdio::null())
                .spawn()
                .expect("unshare");
            let mut holder = holder;
            let pid = holder.id();
            let sleep = std::fs::canonicalize("/bin/sleep").expect("sleep");
            let start = std::time::Instant::now();
            while std::fs::read_link(format!("/proc/{pid}/exe")).ok() != Some(sleep.clone()) {
                if let Some(status) = holder.try_wait().expect("wait for the holder") {
                    panic!("the mount-namespace holder failed to set up: {status}");
                }
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "holder did not start"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            let dir = tempfile::tempdir().expect("tempdir");
            let wrapper = dir.path().join("rt");
            std::fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\nexec nsenter -t {pid} -m -- {} \"$@\"\n",
                    runtime_path().display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(
                &wrapper,
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
            PrivateRun { holder, dir }
        }

        fn wrapper(&self) -> std::path::PathBuf {
            self.dir.path().join("rt")
        }

        /// A shell command run in the holder's mount namespace; its stdout.
        fn sh(&self, script: &str) -> String {
            let out = std::process::Command::new("nsenter")
                .args([
                    "-t",
                    &self.holder.id().to_string(),
                    "-m",
                    "--",
                    "sh",
                    "-ec",
                    script,
                ])
                .output()
                .expect("nsenter");
            assert!(out.status.success(), "{script}: {out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }

        /// The mounts under /run/nucleus/@exe there: (mount point, options).
        fn exe_mounts(&self) -> Vec<(String, String)> {
            parse_mountinfo(&self.sh("cat /proc/self/mountinfo"))
                .into_iter()
                .filter(|m| m.0.starts_with("/run/nucleus/@exe/"))
                .map(|m| (m.0, m.2))
                .collect()
        }
    }

    impl Drop for PrivateRun {
        fn drop(&mut self) {
            let _ = self.holder.kill();
            let _ = self.holder.wait();
        }
    }

    /// The name earlier versions gave the persistent bind: the binary's device (hex) and inode.
    fn legacy_name() -> String {
        let md = std::fs::metadata(runtime_path()).expect("stat the runtime");
        format!("{:x}-{}", md.dev(), md.ino())
    }

    /// A created container's init (the runtime's binary until `start`): its exe is the
    /// host binary's inode, on a read-only mount (opening it for writing fails while it runs
    /// in any case, with ETXTBSY: the mount's flags are what matters once it has exited).
    #[track_caller]
    fn assert_init_exe_readonly(c: &Container, what: &str) {
        let exe = format!("/proc/{}/exe", c.pid());
        let md = std::fs::metadata(&exe).expect("stat the init's exe");
        assert_eq!(
            format!("{}:{}", md.dev(), md.ino()),
            host_binary(),
            "{what}"
        );
        assert_read_only(&exe, what);
    }

    /// The runtime reaches its protected copy by moving onto it where the kernel lets it
    /// (its code mapped anew from the copy, its data carried into anonymous memory), and by
    /// re-executing from it where prctl(PR_SET_MM) is refused (here by a filter, as on a
    /// kernel without CONFIG_CHECKPOINT_RESTORE) or where the kernel cannot check the move (a
    /// binary on overlayfs, as in a Docker-in-Docker or kind node, on recent kernels). Either
    /// way the created init's exe and every mapping of the binary are on a read-only mount,
    /// and the container runs; only the re-exec maps the binary's data segment (writable)
    /// from the copy.
    #[test]
    fn the_protected_copy_is_reached_by_moving_or_by_re_executing() {
        const PROBE: &str = env!("CARGO_BIN_EXE_nucleus-probe");
        let layers = tempfile::tempdir().expect("a directory for the overlay");
        let overlay = Overlay::new(layers.path());
        for case in ["moved", "prctl refused", "on overlayfs"] {
            let mut c = Container::new("sec-copy");
            c.args(&["sleep", "100"]);
            // Where an overlayfs binary's mappings show the lower layer's file (before Linux
            // 6.8), its identity counts too.
            let mut also = None;
            let binary = match case {
                "prctl refused" => {
                    let wrapper = c.bundle.path().join("nucleus-no-set-mm");
                    let script = format!(
                        "#!/bin/sh\nexec {PROBE} deny-set-mm {} \"$@\"\n",
                        runtime_path().display()
                    );
                    std::fs::write(&wrapper, script).expect("write the wrapper");
                    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
                    std::fs::set_permissions(&wrapper, mode).expect("chmod the wrapper");
                    c.runtime = wrapper;
                    runtime_path()
                }
                "on overlayfs" => {
                    c.runtime = overlay.binary.clone();
                    also = Some(overlay.lower.clone());
                    overlay.binary.clone()
                }
                _ => runtime_path(),
            };
            let md = std::fs::metadata(&binary).expect("stat the binary");
            let id = |m: &std::fs::Metadata| {
                let dev = format!("{:02x}:{:02x}", libc::major(m.dev()), libc::minor(m.dev()));
                (dev, m.ino().to_string())
            };
            let mut ids = vec![id(&md)];
            ids.extend(also.map(|p| id(&std::fs::metadata(p).expect("stat the lower copy"))));
            c.create().ok();
            let pid = c.pid();
            let exe = std::fs::metadata(format!("/proc/{pid}/exe")).expect("stat the init's exe");
            assert_eq!((exe.dev(), exe.ino()), (md.dev(), md.ino()), "{case}");
            assert_read_only(&format!("/proc/{pid}/exe"), case);
            let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
            let mapped: Vec<(&str, &str)> = maps
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let this = (f.get(3)?.to_string(), f.get(4)?.to_string());
                    ids.contains(&this).then(|| (f[0], f[1]))
                })
                .collect();
            assert!(mapped.len() >= 2, "{case}: the binary's mappings\n{maps}");
            for (range, _) in &mapped {
                assert_read_only(&format!("/proc/{pid}/map_files/{range}"), case);
            }
            // Whether the kernel can check a move of an overlayfs binary depends on its
            // version (6.1 can, 6.18 cannot): there either way is right, as long as every
            // mapping is of the read-only copy (checked above). A runtime built on overlayfs
            // (a CI container) is such a binary in every case.
            let writable = mapped.iter().any(|(_, perms)| perms.contains('w'));
            match case {
                "prctl refused" => assert!(writable, "{case}: not re-executed\n{maps}"),
                "moved" if !on_overlayfs(&runtime_path()) => {
                    assert!(!writable, "{case}: not moved\n{maps}")
                }
                _ => {}
            }
            c.start().ok();
            c.delete_force().ok();
        }
    }

    fn on_overlayfs(path: &std::path::Path) -> bool {
        const OVERLAYFS_SUPER_MAGIC: libc::c_long = 0x794c_7630;
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a zeroed statfs the call fills, for a NUL-terminated path; both outlive
        // the call.
        let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let r = unsafe { libc::statfs(c.as_ptr(), &mut fs) };
        assert_eq!(r, 0, "statfs of {}", path.display());
        fs.f_type == OVERLAYFS_SUPER_MAGIC
    }

    #[track_caller]
    fn assert_read_only(path: &str, what: &str) {
        let c = std::ffi::CString::new(path).unwrap();
        // SAFETY: a zeroed statvfs the call fills, for a NUL-terminated path; both outlive
        // the call.
        let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let r = unsafe { libc::statvfs(c.as_ptr(), &mut vfs) };
        assert_eq!(r, 0, "statvfs of {path}");
        assert!(
            vfs.f_flag & libc::ST_RDONLY != 0,
            "{what}: {path} is on a writable mount"
        );
    }

    /// A copy of the runtime in the lower layer of an overlay mounted in `dir`, unmounted
    /// when dropped.
    struct Overlay {
        merged: std::path::PathBuf,
        binary: std::path::PathBuf,
        lower: std::path::PathBuf,
    }

    impl Overlay {
        fn new(dir: &std::path::Path) -> Overlay {
            for d in ["lower", "upper", "work", "merged"] {
                std::fs::create_dir(dir.join(d)).expect("make the overlay's directories");
            }
            let lower = dir.join("lower/nucleus");
            std::fs::copy(runtime_path(), &lower).expect("copy the runtime");
            let opts = format!(
                "lowerdir={0}/lower,upperdir={0}/upper,workdir={0}/work",
                dir.display()
            );
            let merged = dir.join("merged");
            let status = std::process::Command::new("mount")
                .args(["-t", "overlay", "overlay", "-o", &opts])
                .arg(&merged)
                .status()
                .expect("mount");
            assert!(status.success(), "mount the overlay");
            let binary = merged.join("nucleus");
            Overlay {
                merged,
                binary,
                lower,
            }
        }
    }

    impl Drop for Overlay {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg(&self.merged)
                .status();
        }
    }

    /// The protected copy the runtime re-executes from is in no mount table: the mount
    /// namespace it runs in (a private copy of the host's, from a fresh state: no
    /// /run/nucleus/@exe) has the same mountinfo before and after a create refused at
    /// validation, a create that fails once the container's namespaces exist, a
    /// create/start/delete, a run and an exec; and the init's exe is read-only all the same.
    #[test]
    fn the_protected_binary_leaves_no_mount_behind() {
        let ns = PrivateRun::new();
        let mountinfo = || ns.sh("cat /proc/self/mountinfo");
        let before = mountinfo();
        assert!(!before.contains("/run/nucleus/@exe"), "{before}");

        let mut c = Container::new("sec-nomount-bad");
        c.runtime = ns.wrapper();
        c.config()["annotations"] = json!({"run.nucleus.seccomp.mode": "bogus"});
        c.create().fails();
        assert_eq!(mountinfo(), before, "after a create refused at validation");

        let mut c = Container::new("sec-nomount-late");
        c.runtime = ns.wrapper();
        c.args(&["/no/such/program"]);
        c.create().fails();
        assert_eq!(mountinfo(), before, "after a create that failed late");

        let mut c = Container::new("sec-nomount");
        c.runtime = ns.wrapper();
        c.args(&["sleep", "100"]);
        c.create().ok();
        assert_init_exe_readonly(&c, "created");
        assert_eq!(mountinfo(), before, "while created");
        c.start().ok();
        c.cmd(&["exec", &c.id, "true"]).ok();
        c.delete_force().ok();
        assert_eq!(mountinfo(), before, "after create/start/exec/delete");

        let mut c = Container::new("sec-nomount-run");
        c.runtime = ns.wrapper();
        c.run().ok();
        assert_eq!(mountinfo(), before, "after a run");
        let left = ns.sh("ls -A /run/nucleus");
        assert_eq!(left.trim(), "", "nothing made in /run/nucleus");
    }

    /// The persistent binds earlier versions kept in /run/nucleus/@exe are taken off and
    /// removed by the next create, whatever is mounted there (a read-only bind, a writable
    /// bind of the binary itself); never used: the init's exe is read-only all the same. A
    /// directory others may write is not the runtime's: left alone.
    #[test]
    fn binds_left_by_earlier_versions_are_removed_not_used() {
        let name = legacy_name();
        let dir = "/run/nucleus/@exe";
        let rt = runtime_path();
        for (what, plant) in [
            (
                "read-only bind",
                format!(
                    "mount --bind {0} {dir}/{name} && mount -o remount,bind,ro {dir}/{name}",
                    rt.display()
                ),
            ),
            (
                "writable bind",
                format!("mount --bind {} {dir}/{name}", rt.display()),
            ),
        ] {
            let ns = PrivateRun::new();
            ns.sh(&format!(
                "mkdir -m 700 {dir} && touch {dir}/{name} {dir}/other && {plant}"
            ));
            assert_eq!(ns.exe_mounts().len(), 1, "{what} planted");
            let mut c = Container::new("sec-legacy");
            c.runtime = ns.wrapper();
            c.args(&["sleep", "100"]);
            c.create().ok();
            assert_init_exe_readonly(&c, what);
            c.delete_force().ok();
            assert_eq!(ns.exe_mounts(), vec![], "{what}: unmounted");
            let gone = ns.sh(&format!("[ -e {dir} ] || echo gone"));
            assert_eq!(gone.trim(), "gone", "{what}: the directory is removed");
        }

        let ns = PrivateRun::new();
        ns.sh(&format!(
            "mkdir -m 777 {dir} && touch {dir}/{name} && mount --bind {} {dir}/{name}",
            rt.display()
        ));
        let mut c = Container::new("sec-legacy-777");
        c.runtime = ns.wrapper();
        c.args(&["sleep", "100"]);
        c.create().ok();
        assert_init_exe_readonly(&c, "world-writable directory");
        c.delete_force().ok();
        assert_eq!(
            ns.exe_mounts().len(),
            1,
            "a directory others may write is left alone"
        );
    }

    /// Polls a file in the running container (read through its init's root) until it holds
    /// `marker`.
    #[track_caller]
    fn wait_for_file(c: &Container, path: &str, marker: &str) -> String {
        let file = format!("/proc/{}/root{path}", c.pid());
        let start = std::time::Instant::now();
        loop {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            if text.contains(marker) {
                return text;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{path} never got {marker:?}: {text:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

//! Landlock (`run.nucleus.landlock.*` annotations): checked from inside real containers —
//! denied writes, reads, executions, TCP binds and connects get EACCES, allowed ones work,
//! `exec`'d processes and children are confined alike — and from outside: `state`
//! annotations, `features`, the kernel's ABI faked lower (strace) for enforce and
//! best-effort. Bad annotations are in the bad-input corpus (badinput.rs, `corpus_landlock`).

use nucleus_integration::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const READ: &str = "run.nucleus.landlock.read";
const WRITE: &str = "run.nucleus.landlock.write";
const EXEC: &str = "run.nucleus.landlock.exec";
const TCP_BIND: &str = "run.nucleus.landlock.tcp-bind";
const TCP_CONNECT: &str = "run.nucleus.landlock.tcp-connect";
const MODE: &str = "run.nucleus.landlock.mode";

/// The Landlock ABI of this kernel (0: none), asked directly.
fn kernel_abi() -> i64 {
    // SAFETY: the version query of landlock_create_ruleset reads no memory.
    let r = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, 0usize, 0usize, 1u32) };
    r.max(0)
}

/// A container whose rootfs is writable (so a refusal is Landlock's, not EROFS), with the
/// given annotations, running `script`. On a kernel whose Landlock ABI is below 5 (an older
/// guest kernel) these rights cannot all be enforced: what is checked there instead is that
/// enforce mode refuses the container, naming the ABI; then None.
fn confined(name: &str, annotations: Value, script: &str) -> Option<Container> {
    let mut c = Container::new(name);
    c.config()["root"]["readonly"] = json!(false);
    let abi = kernel_abi();
    if abi < 5 {
        let mut enforce = annotations;
        enforce[MODE] = json!("enforce");
        c.config()["annotations"] = enforce;
        let out = c.create();
        let kernel = if abi == 0 {
            "no Landlock".to_string()
        } else {
            format!("ABI {abi}")
        };
        assert!(
            !out.success()
                && out.stderr.contains("run.nucleus.landlock.mode=enforce")
                && out.stderr.contains(&kernel),
            "{out}"
        );
        assert!(!c.state().success(), "a refused container is left: {out}");
        eprintln!(
            "NOTICE: this kernel's Landlock ABI is {abi}, below 5: checked that enforce mode refuses the container instead"
        );
        return None;
    }
    c.config()["annotations"] = annotations;
    c.sh(script);
    Some(c)
}

/// The usual confinement: busybox runs, /tmp and /dev writable, /etc/group readable.
fn usual() -> Value {
    json!({
        EXEC: "/bin",
        READ: "/etc/group",
        WRITE: "/tmp, /dev",
    })
}

#[test]
fn files_writes_reads_and_children_are_confined() {
    if skip_known_runc_gap("Landlock annotations") {
        return;
    }
    let Some(mut c) = confined(
        "ll-files",
        usual(),
        "echo ok > /tmp/a && cat /tmp/a; \
         echo x > /etc/x || echo write-etc-denied; \
         cat /etc/passwd || echo read-passwd-denied; \
         cat /etc/group; \
         ls / || echo list-root-denied; \
         mkdir /newdir || echo mkdir-denied; \
         echo y > /dev/null && echo devnull-ok; \
         sh -c 'echo z > /etc/z' || echo child-denied; \
         setsid sh -c 'cat /etc/passwd' || echo setsid-child-denied",
    ) else {
        return;
    };
    let out = c.run().ok();
    let (so, se) = (&out.stdout, &out.stderr);
    for want in [
        "ok\n",
        "write-etc-denied",
        "read-passwd-denied",
        "root:x:0:",
        "list-root-denied",
        "mkdir-denied",
        "devnull-ok",
        "child-denied",
        "setsid-child-denied",
    ] {
        assert!(so.contains(want), "stdout lacks {want:?}: {out}");
    }
    // Landlock's EACCES, not another refusal (the rootfs is writable).
    assert!(
        se.contains("can't create /etc/x: Permission denied")
            && se.contains("can't open '/etc/passwd': Permission denied"),
        "{out}"
    );
    assert!(!so.contains("root:x:0:0:"), "passwd was read: {out}");
    // From outside: the allowed write landed, the denied ones did not.
    let rootfs = c.bundle.rootfs();
    assert_eq!(fs::read_to_string(rootfs.join("tmp/a")).unwrap(), "ok\n");
    for p in ["etc/x", "etc/z", "newdir"] {
        assert!(!rootfs.join(p).exists(), "{p} was made");
    }
}

#[test]
fn execute_needs_the_exec_right() {
    if skip_known_runc_gap("Landlock annotations") {
        return;
    }
    let Some(mut c) = confined(
        "ll-exec",
        json!({EXEC: "/bin", READ: "/opt", WRITE: "/tmp"}),
        "cp /bin/busybox /tmp/bb && /tmp/bb true || echo exec-tmp-denied; \
         head -c 4 /opt/bb | tail -c 3; echo; \
         /opt/bb true || echo exec-opt-denied; \
         /bin/busybox true && echo exec-bin-ok",
    ) else {
        return;
    };
    fs::create_dir(c.bundle.rootfs().join("opt")).unwrap();
    fs::copy(BUSYBOX, c.bundle.rootfs().join("opt/bb")).unwrap();
    let out = c.run().ok();
    for want in ["ELF\n", "exec-tmp-denied", "exec-opt-denied", "exec-bin-ok"] {
        assert!(out.stdout.contains(want), "stdout lacks {want:?}: {out}");
    }
    assert!(
        out.stderr.contains("/tmp/bb: Permission denied")
            && out.stderr.contains("/opt/bb: Permission denied"),
        "{out}"
    );
}

#[test]
fn tcp_bind_and_connect_are_confined_to_their_ports() {
    if skip_known_runc_gap("Landlock annotations") {
        return;
    }
    // In the container's own network namespace: listeners on 8080 and 8081 (both may be
    // bound), a connect to 8080 (allowed) and to 8081 (refused although it listens), a bind
    // of 9090 (refused).
    let mut ann = usual();
    ann[TCP_BIND] = json!("8080-8081");
    ann[TCP_CONNECT] = json!("8080");
    let Some(mut c) = confined(
        "ll-net",
        ann,
        "nc -l -p 8080 > /tmp/got8080 & nc -l -p 8081 > /tmp/got8081 & sleep 0.3; \
         echo hello | nc -w 2 127.0.0.1 8080 && echo connect-8080-ok; \
         echo hello | nc -w 2 127.0.0.1 8081 || echo connect-8081-denied; \
         nc -l -p 9090 || echo bind-9090-denied; \
         kill %2 2>/dev/null; wait %1; cat /tmp/got8080",
    ) else {
        return;
    };
    let out = c.run().ok();
    for want in [
        "connect-8080-ok",
        "connect-8081-denied",
        "bind-9090-denied",
        "hello",
    ] {
        assert!(out.stdout.contains(want), "stdout lacks {want:?}: {out}");
    }
    assert!(
        out.stderr
            .contains("can't connect to remote host (127.0.0.1): Permission denied")
            && out.stderr.contains("bind: Permission denied"),
        "{out}"
    );
}

#[test]
fn exec_processes_get_the_same_ruleset() {
    if skip_known_runc_gap("Landlock annotations") {
        return;
    }
    let mut ann = usual();
    ann[TCP_CONNECT] = json!("none");
    let Some(mut c) = confined("ll-execd", ann, "nc -l -p 7000 & sleep 30") else {
        return;
    };
    // Without Landlock uid 1000 could write /etc: only Landlock refuses it.
    fs::set_permissions(
        c.bundle.rootfs().join("etc"),
        fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    c.run_detached().ok();
    let id = c.id.clone();
    let out = c.cmd(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo e > /tmp/e && cat /tmp/e; echo x > /etc/x || echo write-denied; \
         cat /etc/passwd || echo read-denied; \
         echo q | nc -w 2 127.0.0.1 7000 || echo connect-denied",
    ]);
    for want in ["e\n", "write-denied", "read-denied", "connect-denied"] {
        assert!(
            out.stdout.contains(want),
            "exec stdout lacks {want:?}: {out}"
        );
    }
    assert!(
        out.stderr.contains("Permission denied") && !c.bundle.rootfs().join("etc/x").exists(),
        "{out}"
    );
    // Without no_new_privs and as another user, through `--process`: applied all the same.
    let proc_file = c.bundle.path().join("process.json");
    fs::write(
        &proc_file,
        json!({
            "args": ["sh", "-c", "id -u; echo x > /etc/y || echo write-denied-1000"],
            "cwd": "/", "env": [DEFAULT_PATH],
            "user": {"uid": 1000, "gid": 1000},
            "noNewPrivileges": false
        })
        .to_string(),
    )
    .unwrap();
    let out = c
        .cmd(&["exec", "--process", proc_file.to_str().unwrap(), &id])
        .ok();
    assert!(
        out.stdout.contains("1000") && out.stdout.contains("write-denied-1000"),
        "{out}"
    );
}

#[test]
fn exec_refuses_a_path_replaced_since_create() {
    if skip_known_runc_gap("Landlock annotations") {
        return;
    }
    // /tmp/tools is beneath a writable path: the container swaps it for a symlink to
    // /secret, which an `exec` resolving the names again would open up.
    let Some(mut c) = confined(
        "ll-swap",
        json!({EXEC: "/bin, /tmp/tools", WRITE: "/tmp"}),
        "cat /secret/file || echo init-denied; \
         rm -r /tmp/tools && ln -s /secret /tmp/tools && echo swapped; sleep 30",
    ) else {
        return;
    };
    let rootfs = c.bundle.rootfs();
    fs::create_dir_all(rootfs.join("tmp/tools")).unwrap();
    fs::create_dir_all(rootfs.join("secret")).unwrap();
    fs::write(rootfs.join("secret/file"), "the secret\n").unwrap();
    c.run_detached().ok();
    let so = c.wait_stdout(|s| s.contains("swapped"), Duration::from_secs(10));
    assert!(so.contains("init-denied"), "{so}");
    let id = c.id.clone();
    let out = c.cmd(&["exec", &id, "cat", "/secret/file"]).fails();
    assert!(!out.stdout.contains("the secret"), "{out}");
    assert!(
        out.stderr.contains("/tmp/tools") && out.stderr.contains("no longer the file"),
        "{out}"
    );
}

#[test]
fn no_new_privs_off_and_user_namespace() {
    if skip_known_runc_gap("Landlock annotations") {
        return;
    }
    // Applied while the process still holds CAP_SYS_ADMIN (the kernel's rule without
    // no_new_privs), then running as uid 1000 inside a user namespace.
    let Some(mut c) = confined(
        "ll-userns",
        usual(),
        "id -u; echo x > /etc/x || echo write-denied; echo ok > /tmp/ok && echo tmp-ok",
    ) else {
        return;
    };
    c.config()["process"]["noNewPrivileges"] = json!(false);
    c.config()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c.config()["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    c.config()["linux"]["uidMappings"] = map.clone();
    c.config()["linux"]["gidMappings"] = map;
    // Without Landlock the mapped user could write /etc: only Landlock refuses it.
    fs::set_permissions(
        c.bundle.rootfs().join("etc"),
        fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let out = c.run().ok();
    for want in ["1000", "write-denied", "tmp-ok"] {
        assert!(out.stdout.contains(want), "stdout lacks {want:?}: {out}");
    }
}

#[test]
fn state_and_features_report_landlock() {
    if skip_known_runc_gap("Landlock annotations") {
        return;
    }
    let mut ann = usual();
    ann[TCP_CONNECT] = json!("443");
    let Some(mut c) = confined("ll-state", ann, "sleep 30") else {
        return;
    };
    c.create().ok();
    let st = c.state_json();
    let a = &st["annotations"];
    assert_eq!(
        a["run.nucleus.landlock.abi"],
        kernel_abi().to_string(),
        "{st}"
    );
    let handled = a["run.nucleus.landlock.handled"].as_str().unwrap_or("");
    for right in [
        "execute",
        "write-file",
        "read-dir",
        "truncate",
        "ioctl-dev",
        "tcp-connect",
    ] {
        assert!(
            handled.split(',').any(|r| r == right),
            "{right} not in {handled}"
        );
    }
    assert!(!handled.contains("tcp-bind"), "{handled}");
    assert!(a.get("run.nucleus.landlock.unsupported").is_none(), "{st}");
    // The config's own annotations are still there.
    assert_eq!(a[WRITE], "/tmp, /dev");

    let f = c.cmd(&["features"]).ok();
    let v: Value = serde_json::from_str(&f.stdout).unwrap();
    assert_eq!(
        v["annotations"]["run.nucleus.landlock.abi"],
        kernel_abi().to_string()
    );
    assert!(v["annotations"][MODE].is_string());
}

#[test]
fn without_annotations_nothing_changes() {
    // A runtime-tools-style container: writes anywhere on its writable rootfs, reads
    // everything, connects to its own listener; its state has no Landlock annotation.
    let mut c = Container::new("ll-none");
    c.config()["root"]["readonly"] = json!(false);
    c.sh(
        "echo x > /etc/x && cat /etc/passwd > /dev/null && ls / > /dev/null && echo files-ok; \
         nc -l -p 8080 > /dev/null & sleep 0.3; echo q | nc -w 2 127.0.0.1 8080 && echo net-ok",
    );
    let out = c.run().ok();
    assert!(
        out.stdout.contains("files-ok") && out.stdout.contains("net-ok"),
        "{out}"
    );
    c.sh("sleep 30");
    c.create().ok();
    let st = c.state_json();
    let confined = st["annotations"]
        .as_object()
        .is_some_and(|m| m.keys().any(|k| k.starts_with("run.nucleus.landlock.")));
    assert!(!confined, "{st}");
}

/// `create` (or `run`) under strace with the kernel's Landlock ABI version query answered
/// `abi` (or failing with `errno`): only the runtime's own calls are tampered with (no -f),
/// and the runtime asks the version once.
fn fake_abi(c: &mut Container, verb: &str, answer: &str) -> Output {
    assert!(
        Path::new("/usr/bin/strace").is_file(),
        "/usr/bin/strace is missing: install strace (hack/deps)"
    );
    c.bundle.write_config();
    let mut cmd = Command::new("/usr/bin/strace");
    cmd.args([
        "-qq",
        "-o",
        "/dev/null",
        "-e",
        "trace=landlock_create_ruleset",
        "-e",
    ])
    .arg(format!("inject=landlock_create_ruleset:{answer}:when=1"))
    .arg(&c.runtime)
    .arg("--root")
    .arg(c.root())
    .args([verb, "--bundle"])
    .arg(c.bundle.path())
    .arg(&c.id);
    exec(&mut cmd, CMD_TIMEOUT)
}

#[test]
fn enforce_refuses_what_the_abi_lacks() {
    if skip_known_runc_gap("Landlock annotations") {
        return;
    }
    for (answer, words) in [
        ("retval=3", &["ABI 3", "ioctl-dev, tcp-connect"][..]),
        ("error=EOPNOTSUPP", &["no Landlock"][..]),
    ] {
        let mut ann = usual();
        ann[TCP_CONNECT] = json!("80");
        let Some(mut c) = confined("ll-enforce", ann, "true") else {
            return;
        };
        let out = fake_abi(&mut c, "create", answer);
        assert!(!out.success(), "{answer}: {out}");
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(lines.len(), 1, "{answer}: one error line: {out}");
        for w in words.iter().chain(&["run.nucleus.landlock.mode=enforce"]) {
            assert!(lines[0].contains(w), "{answer}: {w:?} missing: {out}");
        }
        // Nothing left: no state, no container.
        assert!(fs::read_dir(c.root()).unwrap().next().is_none(), "{out}");
        assert!(!c.state().success());
    }
}

#[test]
fn best_effort_applies_what_the_abi_has() {
    if skip_known_runc_gap("Landlock annotations") {
        return;
    }
    // ABI 3: file system rights but device ioctls, no network rights. The connect is then
    // not refused, the write outside /tmp still is.
    let mut ann = usual();
    ann[TCP_CONNECT] = json!("80");
    ann[MODE] = json!("best-effort");
    let Some(mut c) = confined(
        "ll-best",
        ann,
        "echo x > /etc/x || echo write-denied; nc -l -p 8080 > /dev/null & sleep 0.3; \
         echo q | nc -w 2 127.0.0.1 8080 && echo connect-ok",
    ) else {
        return;
    };
    let out = fake_abi(&mut c, "run", "retval=3");
    assert!(out.success(), "{out}");
    assert!(
        out.stdout.contains("write-denied") && out.stdout.contains("connect-ok"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("ABI 3 cannot enforce ioctl-dev, tcp-connect")
            && out.stderr.contains("best-effort"),
        "the warning: {out}"
    );
    // The state says what was left out.
    c.sh("sleep 30");
    let out = fake_abi(&mut c, "create", "retval=3");
    assert!(out.success(), "{out}");
    let st = c.state_json();
    assert_eq!(st["annotations"]["run.nucleus.landlock.abi"], "3", "{st}");
    assert_eq!(
        st["annotations"]["run.nucleus.landlock.unsupported"], "ioctl-dev,tcp-connect",
        "{st}"
    );
    // No Landlock at all: best-effort runs the container unconfined.
    c.delete_force().ok();
    c.sh("echo x > /etc/x && echo write-ok");
    let out = fake_abi(&mut c, "run", "error=ENOSYS");
    assert!(out.success() && out.stdout.contains("write-ok"), "{out}");
    assert!(out.stderr.contains("no Landlock"), "{out}");
}

//! Attacks from inside a container on the host (issue classes CVE-2019-5736 and
//! CVE-2024-21626): a static attacker program, copied into the rootfs, looks for the host's
//! runtime binary and host directories through every process it can see, while nucleus
//! processes are inside the container: a created init waiting for `start`, `exec`'d
//! processes before their execve, a second container sharing the pid namespace. (A
//! `#!/proc/self/exe` program run by `exec` gets ENOENT from this kernel, under runc too.) Default capabilities and all of them but
//! CAP_SYS_ADMIN, with and without a user namespace.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use nucleus_integration::*;
use serde_json::{json, Value};

const ATTACK: &str = env!("NUCLEUS_ATTACK");

/// Every capability but CAP_SYS_ADMIN (which may undo any mount protection).
const ALL_BUT_SYS_ADMIN: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

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
        let all = json!(ALL_BUT_SYS_ADMIN);
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

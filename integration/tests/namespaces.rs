//! linux.namespaces (new and joined by path), user namespace mappings, hostname,
//! domainname and sysctl.

use nucleus_integration::*;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn new_namespaces_seen_from_inside() {
    let mut c = Container::new("ns-inside");
    c.sh("echo pid=$$; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; hostname");
    let out = c.run().ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["pid=1", "lo", "nucleus"], "{out}");
}

#[test]
fn without_pid_namespace_init_is_not_pid_1() {
    let mut c = Container::new("no-pidns");
    c.namespaces(json!([{"type": "mount"}, {"type": "network"}, {"type": "uts"}, {"type": "ipc"}]));
    c.sh("echo $$");
    let out = c.run().ok();
    assert_ne!(out.stdout.trim(), "1", "{out}");
}

#[test]
fn cgroup_namespace_hides_host_path() {
    if !host_has_ns("cgroup") {
        eprintln!("NOTICE: kernel has no cgroup namespaces");
        return;
    }
    let mut c = Container::new("cgroupns");
    let mut ns = c.config()["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .clone();
    ns.push(json!({"type": "cgroup"}));
    c.namespaces(json!(ns));
    c.args(&["cat", "/proc/self/cgroup"]);
    let out = c.run().ok();
    for l in out.stdout.lines() {
        let path = l.splitn(3, ':').nth(2).unwrap_or("");
        assert!(
            !path.contains(&c.id),
            "host cgroup path visible inside a cgroup ns: {l}"
        );
    }
}

#[test]
fn hostname_is_set() {
    let mut c = Container::new("uts");
    c.config()["hostname"] = json!("box-host");
    c.sh("hostname; cat /proc/sys/kernel/hostname");
    assert_eq!(c.run().ok().stdout, "box-host\nbox-host\n");
}

#[test]
fn domainname_is_set() {
    if skip_known_runc_gap("domainname (added in runc 1.2)") {
        return;
    }
    let mut c = Container::new("uts-domain");
    c.config()["domainname"] = json!("box.example");
    c.args(&["cat", "/proc/sys/kernel/domainname"]);
    assert_eq!(c.run().ok().stdout, "box.example\n");
}

#[test]
fn hostname_without_uts_namespace_fails() {
    let mut c = Container::new("uts-missing");
    c.namespaces(json!([{"type": "mount"}, {"type": "pid"}]));
    c.config()["hostname"] = json!("not-allowed");
    let before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    c.run().fails();
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        before
    );
    c.state().fails();
}

#[test]
fn sysctl_is_applied() {
    let mut c = Container::new("sysctl");
    c.config()["linux"]["sysctl"] = json!({
        "net.ipv4.ip_forward": "1",
        "kernel.shm_rmid_forced": "1",
        "net.ipv4.ip_local_port_range": "20000 30000"
    });
    c.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_local_port_range");
    let out = c.run().ok();
    let got: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(got, ["1", "1", "20000 30000"], "{out}");
}

#[test]
fn sysctl_outside_container_namespaces_is_rejected() {
    let mut c = Container::new("sysctl-host");
    // kernel.* other than the ipc/uts ones is host-global.
    c.config()["linux"]["sysctl"] = json!({"kernel.panic": "0"});
    let out = c.run().fails();
    assert!(out.all_text().contains("kernel.panic"), "{out}");
}

#[test]
fn user_namespace_with_mappings() {
    let mut c = Container::new("userns");
    c.user_namespace(100000, 200000);
    c.sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; sleep 30");
    c.run_detached().ok();
    let pid = c.pid().to_string();
    assert_ne!(ns_link("self", "user"), ns_link(&pid, "user"));
    let norm = |s: String| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        norm(std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap()),
        "0 100000 65536"
    );
    assert_eq!(
        norm(std::fs::read_to_string(format!("/proc/{pid}/gid_map")).unwrap()),
        "0 200000 65536"
    );
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status_field(&st, "Uid").unwrap().starts_with("100000\t"),
        "{st}"
    );
    c.wait_stdout(
        |o| o.split_whitespace().count() >= 7,
        Duration::from_secs(10),
    );
    c.kill("KILL").ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    c.delete().ok();
    let out = c.container_stdout();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536", "0", "200000", "65536", "0"],
        "{out}"
    );
}

/// Waits until `pid`'s namespace `ns` differs from ours (the holder has unshared).
fn wait_ns_differs(pid: u32, ns: &str) {
    let start = Instant::now();
    while ns_link(&pid.to_string(), ns) == ns_link("self", ns) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "holder did not unshare {ns}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn join_namespaces_of_another_container() {
    let mut a = Container::new("ns-holder");
    a.args(&["sleep", "30"]);
    a.run_detached().ok();
    let apid = a.pid().to_string();

    let mut b = Container::new("ns-joiner");
    b.config().as_object_mut().unwrap().remove("hostname");
    b.namespaces(json!([
        {"type": "pid", "path": format!("/proc/{apid}/ns/pid")},
        {"type": "network", "path": format!("/proc/{apid}/ns/net")},
        {"type": "ipc", "path": format!("/proc/{apid}/ns/ipc")},
        {"type": "uts", "path": format!("/proc/{apid}/ns/uts")},
        {"type": "mount"}
    ]));
    b.sh("hostname; ps -o args | grep -cx 'sleep 30'; sleep 30");
    b.run_detached().ok();
    let bpid = b.pid().to_string();
    for ns in ["net", "ipc", "uts"] {
        assert_eq!(ns_link(&apid, ns), ns_link(&bpid, ns), "{ns} not joined");
    }
    // For pid namespaces the link of a joiner shows the namespace it was created in.
    assert_eq!(
        ns_link(&apid, "pid"),
        ns_link(&bpid, "pid"),
        "pid not joined"
    );
    assert_ne!(ns_link(&apid, "mnt"), ns_link(&bpid, "mnt"));
    b.wait_stdout(|o| o.lines().count() >= 2, Duration::from_secs(10));
    b.kill("KILL").ok();
    assert!(b.wait_status("stopped", Duration::from_secs(10)));
    b.delete().ok();
    let out = b.container_stdout();
    // Same uts: A's hostname; same pid ns: A's sleep is visible.
    assert_eq!(out, "nucleus\n1\n", "{out}");
    a.delete_force().ok();
}

#[test]
fn join_network_namespace_of_unshare_holder() {
    let mut holder = Command::new("unshare")
        .args(["--net", "sleep", "30"])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn unshare");
    let hpid = holder.id();
    wait_ns_differs(hpid, "net");
    let mut c = Container::new("ns-join-unshare");
    c.namespaces(json!([
        {"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"},
        {"type": "network", "path": format!("/proc/{hpid}/ns/net")}
    ]));
    c.args(&["sleep", "30"]);
    c.run_detached().ok();
    let cpid = c.pid().to_string();
    let joined = ns_link(&cpid, "net") == ns_link(&hpid.to_string(), "net");
    c.delete_force().ok();
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(joined, "network namespace of the holder not joined");
}

#[test]
fn join_missing_namespace_path_fails_cleanly() {
    let mut c = Container::new("ns-join-missing");
    c.namespaces(json!([
        {"type": "pid"}, {"type": "mount"},
        {"type": "network", "path": "/proc/999999999/ns/net"}
    ]));
    c.config().as_object_mut().unwrap().remove("hostname");
    let out = c.run().fails();
    assert!(out.all_text().contains("/proc/999999999/ns/net"), "{out}");
    c.state().fails();
}

#[test]
fn time_namespace_offsets() {
    if !host_has_ns("time") {
        eprintln!("NOTICE: kernel has no time namespaces");
        return;
    }
    if skip_known_runc_gap("the time namespace (added in runc 1.2)") {
        return;
    }
    let mut c = Container::new("timens");
    let mut ns = c.config()["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .clone();
    ns.push(json!({"type": "time"}));
    c.namespaces(json!(ns));
    // /proc/uptime follows CLOCK_BOOTTIME, so that is the clock to offset.
    c.config()["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400, "nanosecs": 0}});
    c.args(&["cat", "/proc/uptime", "/proc/self/timens_offsets"]);
    let out = c.run().ok();
    let up: f64 = out
        .stdout
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        up - host > 86000.0,
        "uptime inside {up}, host {host}\n{out}"
    );
}

/// A new network namespace has its loopback up (127.0.0.1 and ::1), as runc and crun set it:
/// programs bind localhost in containers without any other network.
#[test]
fn new_network_namespace_has_loopback_up() {
    let mut c = Container::new("ns-lo");
    c.sh("ip addr show lo");
    let out = c.run().ok();
    assert!(out.stdout.contains("LOOPBACK,UP"), "{out}");
    assert!(out.stdout.contains("inet 127.0.0.1/8"), "{out}");
}

/// `exec` enters every namespace and the cgroup of the container's init, whether the
/// container has a pid namespace of its own (the process is born in it), none (the host's is
/// shared), or a user namespace too: seen from the host, the exec'd process shares each of
/// the init's namespace links and its /proc/PID/cgroup, and lives one pid-namespace level
/// below the host exactly when the init does.
#[test]
fn exec_enters_the_namespaces_and_cgroup_of_the_init() {
    let kinds = ["user", "mnt", "pid", "net", "ipc", "uts", "cgroup"];
    let cases: [(&str, Option<Value>, bool); 3] = [
        ("exec-ns-all", None, false),
        (
            "exec-ns-nopid",
            Some(json!([{"type": "mount"}, {"type": "network"}, {"type": "uts"}, {"type": "ipc"}])),
            false,
        ),
        ("exec-ns-user", None, true),
    ];
    for (name, namespaces, userns) in cases {
        let mut c = Container::new(name);
        if let Some(ns) = namespaces {
            c.namespaces(ns);
        }
        if userns {
            c.user_namespace(100000, 200000);
        }
        c.args(&["sleep", "300"]);
        c.run_detached().ok();
        let init = c.pid().to_string();
        let pid_file = c.root().join("exec.pid");
        let pf = pid_file.to_string_lossy().into_owned();
        let id = c.id.clone();
        c.cmd(&["exec", "--detach", "--pid-file", &pf, &id, "sleep", "300"])
            .ok();
        let pid = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .to_string();
        for k in kinds {
            assert_eq!(ns_link(&pid, k), ns_link(&init, k), "{name}: {k} namespace");
        }
        let cgroup = |p: &str| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
        assert_eq!(cgroup(&pid), cgroup(&init), "{name}: cgroup");
        let nspid = |p: &str| {
            let st = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap();
            status_field(&st, "NSpid")
                .unwrap()
                .split_whitespace()
                .count()
        };
        assert_eq!(nspid(&pid), nspid(&init), "{name}: pid namespace depth");
        // Without a pid namespace of its own, the init's death does not end the process.
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        c.kill("KILL").ok();
        assert!(c.wait_status("stopped", Duration::from_secs(10)), "{name}");
        c.delete().ok();
    }
}

//! Trace mode, deny logging and the seccomp agent hand-over, with real processes.

use nucleus::seccomp::notify_supervisor::Denied;
use nucleus::seccomp::{
    compile, connect_agent, generate_profile, install, log_denied_program, send_listener,
    supervise, trace_program, CompileOptions, ListenerSlot, Program, Supervision, TraceFile,
};
use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

/// Forks a child that installs `p`, publishes its listener in `slot` and runs `body`.
fn spawn(p: &Program, slot: &ListenerSlot, body: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child makes raw syscalls only and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: plain prctl.
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        let code = match install(p) {
            Ok(Some(listener)) => {
                if slot.publish(listener.into_raw_fd(), Duration::from_secs(10)) {
                    body()
                } else {
                    102
                }
            }
            _ => 100,
        };
        // SAFETY: leave the child.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// Supervises `pid`'s filter (installed through `slot`) in LogDenied mode until the
/// process is gone; returns what was denied, in order.
fn denied_log(slot: &ListenerSlot, pid: i32, original: &Program) -> Vec<Denied> {
    let listener = slot.take(pid, Duration::from_secs(10)).unwrap();
    let mut log = Vec::new();
    supervise(
        listener,
        Supervision::LogDenied {
            original: &original.instructions,
        },
        &mut |d| log.push(d.clone()),
    )
    .unwrap();
    log
}

fn wait_exit(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "status {status:#x}");
    libc::WEXITSTATUS(status)
}

/// Distinct syscalls without pointer arguments.
const TRACED: &[(&str, libc::c_long, libc::c_long)] = &[
    ("getppid", libc::SYS_getppid, 0),
    ("getuid", libc::SYS_getuid, 0),
    ("getgid", libc::SYS_getgid, 0),
    ("geteuid", libc::SYS_geteuid, 0),
    ("getegid", libc::SYS_getegid, 0),
    ("getpid", libc::SYS_getpid, 0),
    ("gettid", libc::SYS_gettid, 0),
    ("sched_yield", libc::SYS_sched_yield, 0),
    ("getpgrp", libc::SYS_getpgrp, 0),
    ("getsid", libc::SYS_getsid, 0),
    ("umask", libc::SYS_umask, 0o22),
    ("sched_getscheduler", libc::SYS_sched_getscheduler, 0),
    ("getpgid", libc::SYS_getpgid, 0),
    ("alarm", libc::SYS_alarm, 0),
    ("personality", libc::SYS_personality, 0xffff_ffff),
    ("close", libc::SYS_close, -1),
    ("dup", libc::SYS_dup, -1),
    ("fsync", libc::SYS_fsync, -1),
    ("fchdir", libc::SYS_fchdir, -1),
    ("syncfs", libc::SYS_syncfs, -1),
];

#[test]
fn trace_records_every_distinct_syscall() {
    let dir = tempfile::tempdir().unwrap();
    let trace = TraceFile::beneath(dir.path(), Path::new("trace.ndjson")).unwrap();
    let out = dir.path().join("trace.ndjson");
    let slot = ListenerSlot::new().unwrap();
    let pid = spawn(&trace_program(), &slot, || {
        for &(_, nr, arg) in TRACED {
            for _ in 0..3 {
                // SAFETY: raw syscalls with integer arguments only.
                unsafe { libc::syscall(nr, arg) };
            }
        }
        0
    });
    let listener = slot.take(pid, Duration::from_secs(10)).unwrap();
    let counts = supervise(listener, Supervision::Trace { out: &trace }, &mut |_| {}).unwrap();
    assert_eq!(wait_exit(pid), 0);

    let text = std::fs::read_to_string(&out).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for &(name, nr, _) in TRACED {
        let r = records
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from trace:\n{text}"));
        assert_eq!(r["syscall"], nr);
        assert!(r["count"].as_u64().unwrap() >= 3, "{r}");
        assert_eq!(
            counts[&("x86_64", i32::try_from(nr).unwrap())],
            r["count"].as_u64().unwrap()
        );
    }
    assert!(records.iter().any(|r| r["name"] == "exit_group"));

    // The generated profile runs exactly what was traced.
    let profile = generate_profile(&text).unwrap();
    let spec: LinuxSeccomp = serde_json::from_value(profile).unwrap();
    let prog = compile(&spec, &CompileOptions::default()).unwrap();
    let verdict = |nr: libc::c_long| {
        let d = nucleus::seccomp::bpf_interpreter::SeccompData {
            nr: i32::try_from(nr).unwrap(),
            arch: nucleus::seccomp::syscall_table::AUDIT_ARCH_X86_64,
            instruction_pointer: 0,
            args: [0; 6],
        };
        nucleus::seccomp::bpf_interpreter::run(&prog.instructions, &d).unwrap()
    };
    for &(_, nr, _) in TRACED {
        assert_eq!(verdict(nr), libc::SECCOMP_RET_ALLOW);
    }
    assert_eq!(
        verdict(libc::SYS_mount),
        libc::SECCOMP_RET_ERRNO | libc::EPERM as u32
    );
}

#[test]
fn deny_log_is_lossless_in_a_burst() {
    let spec: LinuxSeccomp = serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}]
    }))
    .unwrap();
    let original = compile(&spec, &CompileOptions::default()).unwrap();
    let watched = log_denied_program(&original).unwrap();
    let slot = ListenerSlot::new().unwrap();
    let pid = spawn(&watched, &slot, || {
        let mut refused = 0;
        for _ in 0..1000 {
            // SAFETY: raw syscall without arguments.
            let r = unsafe { libc::syscall(libc::SYS_getppid) };
            let e = std::io::Error::last_os_error().raw_os_error();
            if r == -1 && e == Some(42) {
                refused += 1;
            }
        }
        // Allowed syscalls do not reach the supervisor.
        // SAFETY: raw syscall without arguments.
        let ok = unsafe { libc::syscall(libc::SYS_getpid) } > 0;
        if refused == 1000 && ok {
            0
        } else {
            1
        }
    });
    let log = denied_log(&slot, pid, &original);
    assert_eq!(wait_exit(pid), 0);
    assert_eq!(log.len(), 1000);
    assert!(log.iter().all(|d| d.name == Some("getppid")
        && d.errno == 42
        && d.pid == pid as u32
        && d.arch == "x86_64"));
}

#[test]
fn notify_listener_goes_to_the_agent_with_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("agent.sock");
    let agent = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let spec: LinuxSeccomp = serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock_path,
        "listenerMetadata": "meta-1",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]
    }))
    .unwrap();
    let prog = compile(&spec, &CompileOptions::default()).unwrap();
    assert!(prog.uses_notify);
    let path = sock_path.to_str().unwrap().to_string();
    // SAFETY: the child leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: plain prctl.
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        let code = (|| {
            // As the runtime does: connect while the path resolves, send after install.
            let agent = connect_agent(&path).ok()?;
            let listener = install(&prog).ok()??;
            // SAFETY: getpid has no arguments.
            let me = unsafe { libc::getpid() };
            let state = json!({"ociVersion": "1.0.2", "id": "c1", "pid": me,
                               "status": "creating", "bundle": "/b"});
            send_listener(
                &agent,
                &path,
                listener,
                Some("meta-1"),
                state.to_string().as_bytes(),
            )
            .ok()?;
            // SAFETY: raw syscall without arguments.
            let r = unsafe { libc::syscall(libc::SYS_getppid) };
            Some(if r == 4242 { 0 } else { 2 })
        })()
        .unwrap_or(1);
        // SAFETY: leave the child.
        unsafe { libc::_exit(code) };
    }
    let (conn, _) = agent.accept().unwrap();
    // Receive the message and the fd.
    let mut buf = vec![0u8; 8192];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            fd = fds.first().copied();
        }
    }
    let len = msg.bytes;
    // SAFETY: a fresh fd received over SCM_RIGHTS.
    let listener = unsafe { OwnedFd::from_raw_fd(fd.expect("no fd received")) };
    let state: serde_json::Value = serde_json::from_slice(&buf[..len]).unwrap();
    assert_eq!(state["metadata"], "meta-1");
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["pid"], pid);
    assert_eq!(state["state"]["id"], "c1");

    // Answer the one notification as an agent would.
    // SAFETY: zeroed request as the kernel requires.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: RECV fills req.
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut req,
        )
    };
    assert_eq!(r, 0);
    assert_eq!(req.data.nr as libc::c_long, libc::SYS_getppid);
    let resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 4242,
        error: 0,
        flags: 0,
    };
    // SAFETY: SEND reads resp.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
    assert_eq!(r, 0);
    assert_eq!(wait_exit(pid), 0);
}

/// Forks a child that installs `p` (publishing a listener if any) and execs `argv` with
/// stdout/stderr on /dev/null.
fn spawn_exec(p: &Program, slot: &ListenerSlot, argv: &[&str]) -> i32 {
    let args: Vec<std::ffi::CString> = argv
        .iter()
        .map(|a| std::ffi::CString::new(*a).unwrap())
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let devnull = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    // SAFETY: the child makes raw syscalls only and leaves by exec or _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: fd juggling and prctl in the child; argv kept alive by the parent's frame.
        unsafe {
            libc::dup2(devnull.as_raw_fd(), 1);
            libc::dup2(devnull.as_raw_fd(), 2);
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            match install(p) {
                Ok(Some(listener)) => {
                    if !slot.publish(listener.into_raw_fd(), Duration::from_secs(10)) {
                        libc::_exit(102);
                    }
                }
                Ok(None) => {}
                Err(_) => libc::_exit(100),
            }
            libc::execv(ptrs[0], ptrs.as_ptr());
            libc::_exit(101);
        }
    }
    pid
}

#[test]
fn generated_profile_runs_the_traced_workload_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let trace = TraceFile::beneath(dir.path(), Path::new("trace.ndjson")).unwrap();
    let out = dir.path().join("trace.ndjson");
    let workload = ["/bin/busybox", "ls", "-l", "/proc/self/"];
    let slot = ListenerSlot::new().unwrap();
    let pid = spawn_exec(&trace_program(), &slot, &workload);
    let listener = slot.take(pid, Duration::from_secs(10)).unwrap();
    supervise(listener, Supervision::Trace { out: &trace }, &mut |_| {}).unwrap();
    assert_eq!(wait_exit(pid), 0);
    let trace = std::fs::read_to_string(&out).unwrap();
    assert!(trace.contains("\"execve\""), "{trace}");

    let spec: LinuxSeccomp = serde_json::from_value(generate_profile(&trace).unwrap()).unwrap();
    let prog = compile(&spec, &CompileOptions::default()).unwrap();
    let pid = spawn_exec(&prog, &slot, &workload);
    assert_eq!(
        wait_exit(pid),
        0,
        "workload failed under its generated profile"
    );

    // A workload doing something else (mkdir) is refused under the same profile.
    let target = dir.path().join("d");
    let other = ["/bin/busybox", "mkdir", target.to_str().unwrap()];
    let pid = spawn_exec(&prog, &slot, &other);
    assert_ne!(wait_exit(pid), 0);
    assert!(!target.exists());
}

#[test]
fn deny_log_survives_exec_of_the_workload() {
    let dir = tempfile::tempdir().unwrap();
    let spec: LinuxSeccomp = serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
    }))
    .unwrap();
    let original = compile(&spec, &CompileOptions::default()).unwrap();
    let watched = log_denied_program(&original).unwrap();
    let slot = ListenerSlot::new().unwrap();
    let target = dir.path().join("d");
    let pid = spawn_exec(
        &watched,
        &slot,
        &["/bin/busybox", "mkdir", target.to_str().unwrap()],
    );
    let log = denied_log(&slot, pid, &original);
    assert_ne!(wait_exit(pid), 0);
    assert!(!target.exists());
    assert!(
        log.iter()
            .any(|d| d.name.is_some_and(|n| n.starts_with("mkdir")) && d.errno == 13),
        "{log:?}"
    );
}

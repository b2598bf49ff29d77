//! Spec behaviours where runc and the runtime-spec part ways or a corner is easy to get
//! wrong: a config without `process`, hostname in a joined UTS namespace, no mount
//! namespace, every rootfsPropagation value, `exec -t`
//! and the container's /dev/console. Checked against runc where runc is right.

use nucleus_integration::*;
use serde_json::{json, Value};
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The runtime under test, then the reference runtime when one is installed.
fn runtimes() -> Vec<PathBuf> {
    let mut v = vec![runtime_path()];
    v.extend(reference_path());
    v
}

fn no_cgroup_leftover(c: &Container) {
    if let Some(p) = c.cgroups_path() {
        assert!(cgroup_dirs(&p).is_empty(), "cgroup left: {p}");
    }
}

// ---- a config without `process` ----

#[test]
fn config_without_process_creates_and_start_fails_without_effect() {
    // runtime.md: `process` is REQUIRED only when start is called, and start "MUST
    // generate an error if process was not set". runc 1.1 refuses the create instead
    // ("process property must not be empty"), so there is nothing to compare with.
    let mut c = Container::new("no-process");
    c.config().as_object_mut().unwrap().remove("process");
    c.create().ok();
    assert_eq!(c.status(), "created");
    let pid = c.pid();
    assert!(pid_alive(pid));
    let out = c.start().fails();
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("level=error"))
        .collect();
    assert_eq!(errors.len(), 1, "one error line expected\n{out}");
    assert!(errors[0].contains("no process"), "{out}");
    // No effect: still created, the init still waiting.
    assert_eq!(c.status(), "created");
    assert!(pid_alive(pid));
    assert!(c.start().fails().all_text().contains("no process"));
    c.delete().ok();
    c.state().fails();
    let start = Instant::now();
    while pid_alive(pid) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!pid_alive(pid), "init {pid} left");
    no_cgroup_leftover(&c);
}

#[test]
fn run_without_process_fails_and_leaves_nothing() {
    let mut c = Container::new("no-process-run");
    c.config().as_object_mut().unwrap().remove("process");
    let out = c.run().fails();
    assert!(out.stderr.contains("no process"), "{out}");
    c.state().fails();
    no_cgroup_leftover(&c);
}

// ---- hostname in a UTS namespace joined by path ----

/// A process in a UTS namespace of its own (`unshare --uts`), killed on drop.
struct UtsHolder(Child);

impl UtsHolder {
    fn new() -> Self {
        let child = Command::new("unshare")
            .args(["--uts", "sleep", "60"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare");
        let pid = child.id().to_string();
        let start = Instant::now();
        while ns_link(&pid, "uts") == ns_link("self", "uts") {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "holder did not unshare uts"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        UtsHolder(child)
    }

    fn ns_path(&self) -> String {
        format!("/proc/{}/ns/uts", self.0.id())
    }

    fn hostname(&self) -> String {
        let out = exec(
            Command::new("nsenter")
                .args(["-t", &self.0.id().to_string(), "-u", "cat"])
                .arg("/proc/sys/kernel/hostname"),
            CMD_TIMEOUT,
        )
        .ok();
        out.stdout.trim().to_string()
    }
}

impl Drop for UtsHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn hostname_applies_to_a_uts_namespace_joined_by_path() {
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for rt in runtimes() {
        let holder = UtsHolder::new();
        let mut c = Container::with_runtime(&rt, "uts-joined");
        c.namespaces(json!([
            {"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "network"},
            {"type": "uts", "path": holder.ns_path()}
        ]));
        c.config()["hostname"] = json!("joined-host");
        c.config()["domainname"] = json!("joined.example");
        c.sh("hostname; cat /proc/sys/kernel/domainname");
        let out = c.run().ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            lines.first(),
            Some(&"joined-host"),
            "{}: {out}",
            rt.display()
        );
        // runc 1.1 leaves the domainname of a joined namespace unset ("(none)").
        if rt == runtime_path() {
            assert_eq!(lines, ["joined-host", "joined.example"], "{out}");
        }
        // The joined namespace was renamed, the host's was not.
        assert_eq!(holder.hostname(), "joined-host", "{}", rt.display());
        assert_eq!(
            fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
            host
        );
    }
}

#[test]
fn hostname_in_the_runtimes_own_uts_namespace_is_refused() {
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for rt in runtimes() {
        let mut c = Container::with_runtime(&rt, "uts-inherited");
        c.namespaces(json!([{"type": "pid"}, {"type": "mount"}]));
        c.config()["hostname"] = json!("not-allowed");
        let out = c.run().fails();
        assert!(out.stderr.contains("hostname"), "{}: {out}", rt.display());
        assert_eq!(
            fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
            host
        );
        c.state().fails();
    }
    // Joined by a path that names the runtime's own: inherited all the same (runc would
    // rename the host; not run against it).
    let mut c = Container::new("uts-own-by-path");
    c.namespaces(
        json!([{"type": "pid"}, {"type": "mount"}, {"type": "uts", "path": "/proc/self/ns/uts"}]),
    );
    c.config()["hostname"] = json!("not-allowed");
    let out = c.run().fails();
    assert!(out.stderr.contains("is the runtime's own"), "{out}");
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host
    );
}

// ---- no mount namespace ----

/// Host mounts at or below `dir`, as (mount point, optional fields) lines.
fn host_mounts_below(dir: &Path) -> Vec<String> {
    let dir = fs::canonicalize(dir).unwrap();
    let d = dir.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            let mp = l.split(' ').nth(4).unwrap_or("");
            mp == d || mp.starts_with(&format!("{d}/"))
        })
        .map(str::to_string)
        .collect()
}

/// The optional (propagation) fields of the host's "/" mount.
fn host_root_propagation() -> String {
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = mi
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .expect("host / in mountinfo")
        .to_string();
    let left = line.split(" - ").next().unwrap();
    left.split(' ').skip(6).collect::<Vec<_>>().join(" ")
}

fn without_mount_ns(c: &mut Container) {
    c.namespaces(json!([{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}]));
}

#[test]
fn without_a_mount_namespace_the_host_mount_table_is_left_as_it_was() {
    // runc 1.1 refuses masked/readonly paths without a mount namespace, makes the host's
    // "/" rslave and leaves every mount it made under the rootfs after delete; nucleus
    // mounts on a private bind of the rootfs and detaches it at delete. Not compared.
    let root_prop = host_root_propagation();
    let mut c = Container::new("no-mntns");
    without_mount_ns(&mut c);
    let rootfs = c.bundle.rootfs();
    assert!(host_mounts_below(&rootfs).is_empty());
    c.sh("ls /; cat /proc/sys/kernel/ostype; wc -c < /proc/timer_list; touch /x; echo rc=$?; sleep 30");
    c.create().ok();
    let pid = c.pid().to_string();
    // The container shares the runtime's (here: the test's) mount namespace.
    assert_eq!(ns_link(&pid, "mnt"), ns_link("self", "mnt"));
    let during = host_mounts_below(&rootfs);
    for want in ["proc", "dev", "dev/pts", "sys"] {
        let p = format!(" {}/{want} ", fs::canonicalize(&rootfs).unwrap().display());
        assert!(
            during.iter().any(|l| l.contains(&p)),
            "no {want} mount: {during:#?}"
        );
    }
    // None of them is a peer of anything: the bind they sit on is private.
    assert!(
        during
            .iter()
            .all(|l| !l.contains("shared:") && !l.contains("master:")),
        "{during:#?}"
    );
    c.start().ok();
    let out = c.wait_stdout(|o| o.contains("rc="), Duration::from_secs(10));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.contains(&"bin") && lines.contains(&"proc"),
        "not in the rootfs: {out}"
    );
    assert!(lines.contains(&"Linux"), "{out}");
    // /proc/timer_list is masked (an empty null device), the root is read-only.
    assert!(lines.contains(&"0"), "{out}");
    assert!(lines.contains(&"rc=1"), "{out}\n{}", c.container_stderr());
    // An exec enters the container's root too (there is no mount namespace to join).
    let ls = c.cmd(&["exec", &c.id, "ls", "/"]).ok().stdout;
    let ls: Vec<&str> = ls.lines().collect();
    assert!(
        ls.contains(&"bin") && !ls.contains(&"usr"),
        "exec not in the rootfs: {ls:?}"
    );
    c.kill("KILL").ok();
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    c.delete().ok();
    assert_eq!(host_mounts_below(&rootfs), Vec::<String>::new());
    assert_eq!(host_root_propagation(), root_prop);
    no_cgroup_leftover(&c);
}

#[test]
fn without_a_mount_namespace_a_failed_create_leaves_no_mount() {
    let mut c = Container::new("no-mntns-fail");
    without_mount_ns(&mut c);
    // Fails after the rootfs bind and the first mounts are made.
    c.add_mount(json!({"destination": "/mnt", "type": "bind", "source": "/no/such/dir", "options": ["rbind"]}));
    c.create().fails();
    assert_eq!(host_mounts_below(&c.bundle.rootfs()), Vec::<String>::new());
    c.state().fails();
    no_cgroup_leftover(&c);
}

#[test]
fn without_a_mount_namespace_delete_force_of_a_running_container_detaches_its_mounts() {
    let mut c = Container::new("no-mntns-force");
    without_mount_ns(&mut c);
    c.args(&["sleep", "30"]);
    c.run_detached().ok();
    assert!(!host_mounts_below(&c.bundle.rootfs()).is_empty());
    c.delete_force().ok();
    assert_eq!(host_mounts_below(&c.bundle.rootfs()), Vec::<String>::new());
}

// ---- rootfsPropagation ----

/// `run` under `unshare -m --propagation shared`: a host whose mounts are shared, as
/// systemd makes them, whatever the machine running the suite does.
fn run_on_shared_host(c: &mut Container) -> Output {
    c.bundle.write_config();
    let b = c.bundle.path().to_str().unwrap().to_string();
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "shared", "--"])
        .arg(&c.runtime)
        .arg("--root")
        .arg(c.root())
        .args(["run", "--bundle", &b, &c.id]);
    exec(&mut cmd, CMD_TIMEOUT)
}

/// The optional fields of the container's "/" and "/proc" as it sees them.
fn root_fields(prop: &str) -> (String, String) {
    let mut c = Container::new(&format!("prop-{prop}"));
    c.config()["linux"]["rootfsPropagation"] = json!(prop);
    c.sh("awk '$5 == \"/\" || $5 == \"/proc\" { f = \"\"; for (i = 7; $i != \"-\"; i++) f = f $i \" \"; print $5 \"=\" f }' /proc/self/mountinfo");
    let out = run_on_shared_host(&mut c).ok();
    let field = |mp: &str| {
        out.stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(&format!("{mp}=")))
            .unwrap_or_else(|| panic!("{mp} not in {out}"))
            .trim()
            .to_string()
    };
    (field("/"), field("/proc"))
}

#[test]
fn rootfs_propagation_shared() {
    let (root, proc_) = root_fields("shared");
    assert!(root.contains("shared:"), "/: {root:?}");
    assert!(
        !proc_.contains("shared:"),
        "shared is not recursive: /proc {proc_:?}"
    );
    let (root, proc_) = root_fields("rshared");
    assert!(
        root.contains("shared:") && proc_.contains("shared:"),
        "{root:?} {proc_:?}"
    );
}

#[test]
fn rootfs_propagation_slave() {
    for p in ["slave", "rslave"] {
        let (root, _) = root_fields(p);
        assert!(root.contains("master:"), "{p}: /: {root:?}");
        assert!(!root.contains("shared:"), "{p}: /: {root:?}");
    }
}

#[test]
fn rootfs_propagation_private() {
    for p in ["private", "rprivate"] {
        let (root, proc_) = root_fields(p);
        assert_eq!(root, "", "{p}: /");
        assert_eq!(proc_, "", "{p}: /proc");
    }
}

#[test]
fn rootfs_propagation_unbindable() {
    // runc 1.1 fails these (EINVAL binding the rootfs below an unbindable "/").
    let (root, proc_) = root_fields("unbindable");
    assert_eq!(root, "unbindable", "/");
    assert_ne!(proc_, "unbindable", "unbindable is not recursive");
    let (root, proc_) = root_fields("runbindable");
    assert_eq!(
        (root.as_str(), proc_.as_str()),
        ("unbindable", "unbindable")
    );
}

// ---- delete of a created container ----

#[test]
fn delete_without_force_of_a_created_container_kills_it_as_runc_does() {
    // The spec says deleting a container that is not stopped is an error; runc kills the
    // init of a created one and deletes it, and containerd's shim relies on that.
    for rt in runtimes() {
        let dir = host_tempdir("it-delete-created-");
        let mut c = Container::with_runtime(&rt, "delete-created-diff");
        let rec = format!("cat > {}/poststop.json", dir.path().display());
        c.config()["hooks"] = json!({"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", rec]}]});
        c.args(&["sleep", "30"]);
        c.create().ok();
        let pid = c.pid();
        c.delete().ok();
        c.state().fails();
        let start = Instant::now();
        while pid_alive(pid) && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!pid_alive(pid), "{}: init left", rt.display());
        no_cgroup_leftover(&c);
        let st: Value =
            serde_json::from_str(&fs::read_to_string(dir.path().join("poststop.json")).unwrap())
                .unwrap();
        assert_eq!(st["status"], "stopped", "{}: {st}", rt.display());
    }
}

// ---- exec -t and the container's /dev/console ----

/// A console socket (`--console-socket`) that receives one pty master per connection.
struct ConsoleSocket {
    _dir: tempfile::TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    fn new() -> Self {
        let dir = host_tempdir("it-console-");
        let path = dir.path().join("sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        ConsoleSocket {
            _dir: dir,
            path,
            listener,
        }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// The master a runtime sent (after the command that sent it returned).
    fn recv_master(&self) -> File {
        use std::os::fd::AsRawFd;
        let start = Instant::now();
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(start.elapsed() < CMD_TIMEOUT, "no console connection");
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        let mut name = [0u8; 256];
        let mut iov = libc::iovec {
            iov_base: name.as_mut_ptr().cast(),
            iov_len: name.len(),
        };
        let mut cbuf = [0u64; 16];
        // SAFETY: msghdr is plain old data; every pointer set below outlives the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        // SAFETY: recvmsg into the buffers described by msg.
        let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
        // SAFETY: msg was filled by recvmsg; CMSG_FIRSTHDR/CMSG_DATA walk its control buffer.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            assert!(
                !cmsg.is_null()
                    && (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_RIGHTS,
                "no fd received"
            );
            let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
            File::from(OwnedFd::from_raw_fd(fd))
        }
    }
}

/// Everything written to a pty master until its slave side closes.
fn drain(master: &mut File) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // EIO: the slave is closed and everything was read.
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).replace('\r', "")
}

/// What a non-terminal exec sees of /dev/console: its device numbers and its mounts.
fn console_view(c: &Container) -> String {
    let out = c
        .cmd(&[
            "exec",
            &c.id,
            "sh",
            "-c",
            "stat -c '%t:%T' /dev/console; grep ' /dev/console ' /proc/self/mountinfo | cut -d' ' -f3-5; readlink /proc/1/fd/0",
        ])
        .ok();
    out.stdout
}

#[test]
fn exec_with_a_terminal_leaves_the_console_alone() {
    for rt in runtimes() {
        let what = rt.display().to_string();
        let mut c = Container::with_runtime(&rt, "exec-tty-console");
        c.config()["process"]["terminal"] = json!(true);
        c.args(&["sleep", "30"]);
        c.bundle.write_config();
        let init_console = ConsoleSocket::new();
        let b = c.bundle.path().to_str().unwrap().to_string();
        let p = c.pid_file().to_str().unwrap().to_string();
        c.cmd(&[
            "create",
            "--bundle",
            &b,
            "--pid-file",
            &p,
            "--console-socket",
            init_console.path(),
            &c.id,
        ])
        .ok();
        // Held for the test: closing the master would hang the init up.
        let _init_master = init_console.recv_master();
        c.start().ok();
        let before = console_view(&c);
        let lines: Vec<&str> = before.lines().collect();
        assert_eq!(lines.len(), 3, "{what}: {before}");
        assert!(
            lines[0].starts_with("88:"),
            "{what}: /dev/console is a pty: {before}"
        );
        let init_tty = lines[2].to_string();

        let exec_console = ConsoleSocket::new();
        let out = c.cmd(&[
            "exec",
            "-d",
            "-t",
            "--console-socket",
            exec_console.path(),
            &c.id,
            "sh",
            "-c",
            "tty; stat -c '%t:%T' $(tty)",
        ]);
        out.ok();
        let seen = drain(&mut exec_console.recv_master());
        let seen: Vec<&str> = seen.lines().map(str::trim).collect();
        assert_eq!(seen.len(), 2, "{what}: {seen:?}");
        assert!(
            seen[0].starts_with("/dev/pts/") && seen[0] != init_tty,
            "{what}: the exec has a pty of its own, not the init's {init_tty}: {seen:?}"
        );
        assert!(seen[1].starts_with("88:"), "{what}: {seen:?}");

        assert_eq!(console_view(&c), before, "{what}: /dev/console changed");
        c.kill("KILL").ok();
        assert!(c.wait_status("stopped", Duration::from_secs(10)));
        c.delete().ok();
    }
}

//! Harness of the nucleus conformance suite.
//!
//! The suite drives any runc-compatible binary through its command line: the runtime under
//! test comes from `NUCLEUS_RUNTIME` (default: the workspace's `target/release/nucleus`), the
//! reference runtime for differential tests from `NUCLEUS_REFERENCE` (default
//! `/usr/sbin/runc`). Every container gets its own bundle and its own `--root` in a temporary
//! directory, and a unique id, so tests run in parallel; `Drop` removes whatever a test left.

use serde_json::{json, Value};
use std::env;
use std::fmt;
use std::fs::{self, File};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where the static busybox of the `busybox-static` package lives on the host.
pub const BUSYBOX: &str = "/usr/bin/busybox";
/// Upper bound for one runtime command; a hang is a failure, not a stuck suite.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);
/// The default `PATH` of `runc spec`.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The runtime under test.
pub fn runtime_path() -> PathBuf {
    if let Some(p) = env::var_os("NUCLEUS_RUNTIME") {
        return PathBuf::from(p);
    }
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        });
    target.join("release").join("nucleus")
}

/// The reference runtime for differential tests, if it is installed.
pub fn reference_path() -> Option<PathBuf> {
    let p = env::var_os("NUCLEUS_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/runc"));
    if p.is_file() {
        Some(p)
    } else {
        None
    }
}

/// The reference runtime a differential test compares with: a test without one fails
/// (hack/deps installs runc), it does not pass having compared nothing.
pub fn reference() -> PathBuf {
    reference_path().expect(
        "no reference runtime for this differential test: install runc (hack/deps) or set NUCLEUS_REFERENCE",
    )
}

/// True when the runtime under test reports itself as runc (`--version`). Used only to skip
/// checks of spec features that the installed runc is known not to implement.
pub fn runtime_is_runc() -> bool {
    let out = exec(Command::new(runtime_path()).arg("--version"), CMD_TIMEOUT);
    out.stdout.starts_with("runc version")
}

/// Skips (returns true and prints why) when the runtime under test is runc and runc is known
/// not to implement `what`. The check still runs against every other runtime.
pub fn skip_known_runc_gap(what: &str) -> bool {
    if runtime_is_runc() {
        eprintln!("NOTICE: skipped under runc, which does not implement {what}");
        return true;
    }
    false
}

/// A unique container id: the test's name, our pid and a counter.
pub fn unique_id(name: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("it-{clean}-{}-{n}", std::process::id())
}

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Output {
    pub argv: Vec<String>,
    /// Exit code, None when killed by a signal.
    pub code: Option<i32>,
    /// The signal that killed the command, if any.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "command: {:?}\nexit code: {:?} signal: {:?} timed out: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.argv, self.code, self.signal, self.timed_out, self.stdout, self.stderr
        )
    }
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the whole output unless the command exited 0.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(self.success(), "expected success\n{self}");
        self
    }

    /// Panics unless the command exited by itself with a non-zero code.
    #[track_caller]
    pub fn fails(self) -> Self {
        assert!(
            !self.timed_out && self.signal.is_none() && self.code.is_some() && self.code != Some(0),
            "expected a clean failure (non-zero exit)\n{self}"
        );
        self
    }

    /// The exit code; panics (with the output) when there is none.
    #[track_caller]
    pub fn code(&self) -> i32 {
        match self.code {
            Some(c) => c,
            None => panic!("command has no exit code\n{self}"),
        }
    }

    /// stdout and stderr together, for matching error messages wherever they went.
    pub fn all_text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

fn read_file_lossy(f: &mut File) -> String {
    let mut buf = Vec::new();
    let _ = f.rewind();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Runs `cmd` with stdin from /dev/null, capturing stdout and stderr.
pub fn exec(cmd: &mut Command, timeout: Duration) -> Output {
    exec_io(cmd, None, None, None, timeout)
}

/// Runs `cmd` with `input` as stdin.
pub fn exec_stdin(cmd: &mut Command, input: &[u8], timeout: Duration) -> Output {
    exec_io(cmd, Some(input), None, None, timeout)
}

/// Runs `cmd`, sending stdout/stderr to the given files when set (they are read back after
/// the command exits), else to anonymous temporary files. Files rather than pipes: a
/// container started by `create` or `run -d` inherits them and would hold a pipe open.
pub fn exec_io(
    cmd: &mut Command,
    input: Option<&[u8]>,
    stdout: Option<&Path>,
    stderr: Option<&Path>,
    timeout: Duration,
) -> Output {
    let argv: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let open_out = |p: Option<&Path>| -> File {
        match p {
            Some(p) => fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(p)
                .unwrap_or_else(|e| panic!("open {}: {e}", p.display())),
            None => tempfile::tempfile().expect("temporary file for output"),
        }
    };
    let mut out = open_out(stdout);
    let mut err = open_out(stderr);
    let stdin = match input {
        Some(data) => {
            let mut f = tempfile::tempfile().expect("temporary file for stdin");
            f.write_all(data).expect("write stdin file");
            f.rewind().expect("rewind stdin file");
            Stdio::from(f)
        }
        None => Stdio::null(),
    };
    cmd.stdin(stdin)
        .stdout(Stdio::from(out.try_clone().expect("dup stdout file")))
        .stderr(Stdio::from(err.try_clone().expect("dup stderr file")));
    // ETXTBSY: a binary a test has just copied (the rootless tests' copy of the runtime) is
    // refused while another test thread's fork still holds the copy's write fd for the
    // instant before that child's execve closes it. Go's os/exec retries the same way.
    let mut child = {
        let mut tries = 0;
        loop {
            match cmd.spawn() {
                Ok(c) => break c,
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("cannot spawn {argv:?}: {e}"),
            }
        }
    };
    // The Command keeps the parent's copies of the stdio files; drop them so the child's
    // exit is the only thing that matters.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut sleep = Duration::from_millis(1);
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => panic!("wait for {argv:?}: {e}"),
        }
        if start.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(sleep);
        sleep = (sleep * 2).min(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    Output {
        argv,
        code: status.code(),
        signal: status.signal(),
        stdout: read_file_lossy(&mut out),
        stderr: read_file_lossy(&mut err),
        timed_out,
    }
}

/// Lays out a busybox rootfs in `rootfs` (the layout of `hack/mkbundle`).
pub fn make_rootfs(rootfs: &Path) {
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is missing: install busybox-static"
    );
    for d in ["bin", "etc", "proc", "sys", "dev", "run", "tmp"] {
        fs::create_dir_all(rootfs.join(d)).expect("create rootfs dir");
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod tmp");
    fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" {
            continue;
        }
        let _ = symlink("busybox", rootfs.join("bin").join(applet));
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .expect("write passwd");
    fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n",
    )
    .expect("write group");
}

/// The `runc spec` default configuration (terminal off, hostname "nucleus"), running `args`.
pub fn default_config(args: &[&str]) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": [DEFAULT_PATH, "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "nucleus",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// A bundle directory (rootfs + config) in a temporary directory.
pub struct Bundle {
    dir: tempfile::TempDir,
    pub config: Value,
}

impl Bundle {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("nucleus-it-bundle-")
            .tempdir()
            .expect("bundle tempdir");
        make_rootfs(&dir.path().join("rootfs"));
        Bundle {
            dir,
            config: default_config(&["true"]),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn write_config(&self) {
        let text = serde_json::to_string_pretty(&self.config).expect("serialize config");
        fs::write(self.path().join("config.json"), text).expect("write config.json");
    }
}

impl Default for Bundle {
    fn default() -> Self {
        Self::new()
    }
}

/// One container id on one runtime, with its own bundle and state root.
pub struct Container {
    pub runtime: PathBuf,
    root: tempfile::TempDir,
    pub bundle: Bundle,
    pub id: String,
    /// Other ids the test used with this root (all get `delete --force` on drop).
    pub extra_ids: Vec<String>,
    /// Extra global flags before the verb (e.g. `--log F`).
    pub global_args: Vec<String>,
}

impl Container {
    /// A container for the runtime under test, running `true` by default.
    pub fn new(name: &str) -> Self {
        Self::with_runtime(&runtime_path(), name)
    }

    pub fn with_runtime(runtime: &Path, name: &str) -> Self {
        assert!(
            runtime.is_file(),
            "runtime {} not found: build it (cargo build --release) or set NUCLEUS_RUNTIME",
            runtime.display()
        );
        let root = tempfile::Builder::new()
            .prefix("nucleus-it-root-")
            .tempdir()
            .expect("root tempdir");
        let id = unique_id(name);
        let mut bundle = Bundle::new();
        // A cgroup path of our own, so host-side checks know where to look (with the
        // systemd driver, a scope of our own: `cgroups_path` says where it lands).
        bundle.config["linux"]["cgroupsPath"] = if systemd_driver() {
            json!(format!("system.slice:nucleus-it:{id}"))
        } else {
            json!(format!("/{id}"))
        };
        Container {
            runtime: runtime.to_path_buf(),
            root,
            bundle,
            id,
            extra_ids: Vec::new(),
            global_args: Vec::new(),
        }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The config to edit before `run`/`create` (which write it).
    pub fn config(&mut self) -> &mut Value {
        &mut self.bundle.config
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.bundle.config["process"]["args"] = json!(args);
        self
    }

    /// Runs `script` with the container's busybox `sh -c`.
    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    /// Appends a mount to config.json.
    pub fn add_mount(&mut self, mount: Value) -> &mut Self {
        self.bundle.config["mounts"]
            .as_array_mut()
            .expect("mounts array")
            .push(mount);
        self
    }

    /// Replaces linux.namespaces.
    pub fn namespaces(&mut self, ns: Value) -> &mut Self {
        self.bundle.config["linux"]["namespaces"] = ns;
        self
    }

    /// Adds a new user namespace mapping container ids 0-65535 to host uids from `host_uid`
    /// and host gids from `host_gid`, and drops the cgroup mounts (a cgroup v1 hierarchy
    /// cannot be mounted from inside a user namespace).
    pub fn user_namespace(&mut self, host_uid: u32, host_gid: u32) -> &mut Self {
        let linux = &mut self.bundle.config["linux"];
        linux["namespaces"]
            .as_array_mut()
            .expect("namespaces array")
            .push(json!({"type": "user"}));
        linux["uidMappings"] = json!([{"containerID": 0, "hostID": host_uid, "size": 65536}]);
        linux["gidMappings"] = json!([{"containerID": 0, "hostID": host_gid, "size": 65536}]);
        self.bundle.config["mounts"]
            .as_array_mut()
            .expect("mounts array")
            .retain(|m| m["type"] != "cgroup");
        self
    }

    /// A Command for the runtime with our --root and global flags (and `--systemd-cgroup`
    /// where the config's cgroupsPath is systemd's `slice:prefix:name`).
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.runtime);
        c.arg("--root").arg(self.root.path());
        let sd = "--systemd-cgroup";
        let systemd_path = self.bundle.config["linux"]["cgroupsPath"]
            .as_str()
            .is_some_and(|p| !p.starts_with('/') && p.contains(':'));
        if systemd_path && !self.global_args.iter().any(|a| a == sd) {
            c.arg(sd);
        }
        c.args(&self.global_args);
        c
    }

    /// Runs the runtime with `args` after the global flags.
    pub fn cmd(&self, args: &[&str]) -> Output {
        exec(self.command().args(args), CMD_TIMEOUT)
    }

    /// `run --bundle B ID` in the foreground (config written first).
    pub fn run(&mut self) -> Output {
        self.bundle.write_config();
        let b = self.bundle.path().to_string_lossy().into_owned();
        let id = self.id.clone();
        exec(
            self.command().args(["run", "--bundle", &b, &id]),
            CMD_TIMEOUT,
        )
    }

    /// `run` with `input` on stdin.
    pub fn run_stdin(&mut self, input: &[u8]) -> Output {
        self.bundle.write_config();
        let b = self.bundle.path().to_string_lossy().into_owned();
        let id = self.id.clone();
        exec_stdin(
            self.command().args(["run", "--bundle", &b, &id]),
            input,
            CMD_TIMEOUT,
        )
    }

    /// The pid file path given to `create`.
    pub fn pid_file(&self) -> PathBuf {
        self.root.path().join("pidfile")
    }

    fn io_path(&self, name: &str) -> PathBuf {
        self.bundle.path().join(name)
    }

    /// `create --bundle B --pid-file P ID` (config written first). The container's stdout
    /// and stderr go to files read later by `container_stdout`/`container_stderr`.
    pub fn create(&mut self) -> Output {
        self.bundle.write_config();
        let b = self.bundle.path().to_string_lossy().into_owned();
        let p = self.pid_file().to_string_lossy().into_owned();
        let id = self.id.clone();
        let (o, e) = (self.io_path("ctr.stdout"), self.io_path("ctr.stderr"));
        exec_io(
            self.command()
                .args(["create", "--bundle", &b, "--pid-file", &p, &id]),
            None,
            Some(&o),
            Some(&e),
            CMD_TIMEOUT,
        )
    }

    /// `run --detach` with the container's stdio to the same files as `create`.
    pub fn run_detached(&mut self) -> Output {
        self.bundle.write_config();
        let b = self.bundle.path().to_string_lossy().into_owned();
        let p = self.pid_file().to_string_lossy().into_owned();
        let id = self.id.clone();
        let (o, e) = (self.io_path("ctr.stdout"), self.io_path("ctr.stderr"));
        exec_io(
            self.command()
                .args(["run", "--detach", "--bundle", &b, "--pid-file", &p, &id]),
            None,
            Some(&o),
            Some(&e),
            CMD_TIMEOUT,
        )
    }

    /// What the container wrote to stdout so far (after `create`/`run_detached`).
    pub fn container_stdout(&self) -> String {
        fs::read_to_string(self.io_path("ctr.stdout")).unwrap_or_default()
    }

    /// Polls the container's stdout until `done` holds for it (or panics after `timeout`).
    #[track_caller]
    pub fn wait_stdout(&self, done: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let out = self.container_stdout();
            if done(&out) {
                return out;
            }
            assert!(
                start.elapsed() < timeout,
                "container output never became complete: {out:?}\nstderr: {}",
                self.container_stderr()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn container_stderr(&self) -> String {
        fs::read_to_string(self.io_path("ctr.stderr")).unwrap_or_default()
    }

    pub fn start(&self) -> Output {
        self.cmd(&["start", &self.id])
    }

    pub fn state(&self) -> Output {
        self.cmd(&["state", &self.id])
    }

    /// The parsed state JSON; panics when `state` fails or prints no JSON.
    #[track_caller]
    pub fn state_json(&self) -> Value {
        let out = self.state().ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state output is not JSON: {e}\n{out}"))
    }

    /// The container status from `state`.
    #[track_caller]
    pub fn status(&self) -> String {
        self.state_json()["status"]
            .as_str()
            .expect("status string")
            .to_string()
    }

    /// The container's init pid from `state`.
    #[track_caller]
    pub fn pid(&self) -> i32 {
        let pid = self.state_json()["pid"].as_i64().expect("pid number");
        i32::try_from(pid).expect("pid fits in an int")
    }

    pub fn kill(&self, signal: &str) -> Output {
        self.cmd(&["kill", &self.id, signal])
    }

    pub fn delete(&self) -> Output {
        self.cmd(&["delete", &self.id])
    }

    pub fn delete_force(&self) -> Output {
        self.cmd(&["delete", "--force", &self.id])
    }

    /// Polls `state` until the status is `want` (true) or `timeout` passes (false).
    pub fn wait_status(&self, want: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            let out = self.state();
            if out.success() {
                if let Ok(v) = serde_json::from_str::<Value>(&out.stdout) {
                    if v["status"] == want {
                        return true;
                    }
                }
            }
            if start.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Creates, starts, waits for the process to stop and returns its output
    /// (stdout, stderr); the container is deleted afterwards.
    #[track_caller]
    pub fn create_start_wait(&mut self) -> (String, String) {
        self.create().ok();
        self.start().ok();
        assert!(
            self.wait_status("stopped", Duration::from_secs(10)),
            "container did not stop"
        );
        self.delete().ok();
        (self.container_stdout(), self.container_stderr())
    }

    /// The container's cgroup path below the cgroup root: the config's cgroupsPath, or
    /// for systemd's `slice:prefix:name` the scope systemd makes for it.
    pub fn cgroups_path(&self) -> Option<String> {
        let p = self.bundle.config["linux"]["cgroupsPath"].as_str()?;
        if p.starts_with('/') || !p.contains(':') {
            return Some(p.to_string());
        }
        let mut parts = p.splitn(3, ':');
        let (slice, prefix, name) = (parts.next()?, parts.next()?, parts.next()?);
        Some(format!("{}/{prefix}-{name}.scope", slice_path(slice)))
    }
}

/// Whether the suite runs containers with the systemd cgroup driver
/// (`NUCLEUS_TEST_CGROUP_DRIVER=systemd`, e.g. `hack/test-vm --systemd-cgroup`: needs systemd
/// as PID 1). Tests that set a cgroupsPath of their own still get the cgroupfs driver.
pub fn systemd_driver() -> bool {
    env::var("NUCLEUS_TEST_CGROUP_DRIVER").is_ok_and(|d| d == "systemd")
}

/// Where systemd puts a slice: `a-b.slice` is `/a.slice/a-b.slice`; `-.slice` (or none) the root.
pub fn slice_path(slice: &str) -> String {
    let Some(stem) = slice
        .strip_suffix(".slice")
        .filter(|s| !s.is_empty() && *s != "-")
    else {
        return String::new();
    };
    let mut out = String::new();
    let mut acc = String::new();
    for part in stem.split('-') {
        if !acc.is_empty() {
            acc.push('-');
        }
        acc.push_str(part);
        out.push_str(&format!("/{acc}.slice"));
    }
    out
}

/// cgroup directories on the host that hold `path` (v1 hierarchies and the v2 mount).
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    let mut out = Vec::new();
    if rel.is_empty() {
        return out;
    }
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.controllers").exists() {
        let p = base.join(rel);
        if p.exists() {
            out.push(p);
        }
        return out;
    }
    if let Ok(rd) = fs::read_dir(base) {
        for e in rd.flatten() {
            let p = e.path().join(rel);
            if p.is_dir() {
                out.push(p);
            }
        }
    }
    out
}

impl Drop for Container {
    fn drop(&mut self) {
        let ids: Vec<String> = std::iter::once(self.id.clone())
            .chain(self.extra_ids.iter().cloned())
            .collect();
        for id in &ids {
            let _ = exec(
                self.command().args(["delete", "--force", id]),
                Duration::from_secs(10),
            );
        }
        // A broken runtime may leave processes and its cgroup; the cgroup path is this test's
        // own (`/<id>`), so whatever is still in it belongs to this test.
        if let Some(p) = self.cgroups_path() {
            let dirs = cgroup_dirs(&p);
            for d in &dirs {
                for pid in fs::read_to_string(d.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                {
                    if let Ok(pid) = pid.trim().parse::<i32>() {
                        // SAFETY: kill(2) with a pid read from this test's own cgroup; no
                        // memory is involved.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
            for d in &dirs {
                for _ in 0..50 {
                    if fs::remove_dir(d).is_ok() || !d.exists() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

/// The namespace link (e.g. "net:[4026531840]") of `pid` for `ns`.
pub fn ns_link(pid: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether this kernel has the namespace kind `ns` (e.g. "time", "cgroup").
pub fn host_has_ns(ns: &str) -> bool {
    Path::new(&format!("/proc/self/ns/{ns}")).exists()
}

/// Whether `pid` is alive and not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// The lines of `text` that start with `prefix`, joined.
pub fn lines_with(text: &str, prefix: &str) -> String {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A field of /proc/<pid>/status-like text (`Name:\tvalue`).
pub fn status_field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    })
}

/// Mount points seen in mountinfo text: (mount point, fs type, mount options, super options).
pub fn parse_mountinfo(text: &str) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split_whitespace().collect();
        let r: Vec<&str> = right.split_whitespace().collect();
        if l.len() < 6 || r.len() < 3 {
            continue;
        }
        out.push((
            l[4].to_string(),
            r[0].to_string(),
            l[5].to_string(),
            r[2].to_string(),
        ));
    }
    out
}

/// The last mount of `dest` in mountinfo text (the one a process sees).
pub fn mount_at(text: &str, dest: &str) -> Option<(String, String, String, String)> {
    parse_mountinfo(text)
        .into_iter()
        .rev()
        .find(|m| m.0 == dest)
}

/// A host directory for a test to share with its container (removed on drop).
pub fn host_tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir")
}

/// Every capability name, in the kernel's bit order (index = capability number).
pub const CAPABILITIES: &[&str] = &[
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
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
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

/// `text` with the value of each member named in `keys` (pretty or compact JSON, a value
/// without commas) replaced by `_`.
pub fn blank_values(text: &str, keys: &[&str]) -> String {
    let mut out = text.to_string();
    for k in keys {
        let pat = format!("\"{k}\":");
        let mut res = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(&pat) {
            let (head, tail) = rest.split_at(i + pat.len());
            res.push_str(head);
            let v = tail.trim_start_matches(' ');
            res.push_str(&tail[..tail.len() - v.len()]);
            res.push('_');
            rest = &v[v.find([',', '\n', '}']).unwrap_or(v.len())..];
        }
        res.push_str(rest);
        out = res;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:0 /tmp/b/rootfs / ro,relatime - ext4 /dev/vda rw
23 22 0:5 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
24 22 0:6 / /dev rw,nosuid shared:3 - tmpfs tmpfs rw,size=65536k,mode=755
25 24 0:7 / /dev rw - tmpfs tmpfs rw
";

    #[test]
    fn mountinfo_fields_and_optional_fields() {
        let m = parse_mountinfo(MOUNTINFO);
        assert_eq!(m.len(), 4);
        assert_eq!(
            m[0],
            ("/".into(), "ext4".into(), "ro,relatime".into(), "rw".into())
        );
        assert_eq!(m[2].3, "rw,size=65536k,mode=755");
        // The last mount on a mount point is the visible one.
        assert_eq!(mount_at(MOUNTINFO, "/dev").unwrap().3, "rw");
        assert!(mount_at(MOUNTINFO, "/sys").is_none());
    }

    #[test]
    fn status_fields() {
        let s = "Name:\tsh\nCapEff:\t0000000000000420\nGroups:\t10 20 \nNoNewPrivs:\t1\n";
        assert_eq!(status_field(s, "CapEff").unwrap(), "0000000000000420");
        assert_eq!(status_field(s, "Groups").unwrap(), "10 20");
        assert_eq!(status_field(s, "Cap"), None);
        assert_eq!(lines_with(s, "Cap"), "CapEff:\t0000000000000420");
    }

    #[test]
    fn ids_are_unique_and_plain() {
        let a = unique_id("a b/c");
        let b = unique_id("a b/c");
        assert_ne!(a, b);
        assert!(
            a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{a}"
        );
    }

    #[test]
    fn exec_captures_code_output_and_timeout() {
        let o = exec(
            Command::new("/bin/sh").args(["-c", "echo out; echo err >&2; exit 4"]),
            CMD_TIMEOUT,
        );
        assert_eq!(
            (o.code, o.stdout.as_str(), o.stderr.as_str()),
            (Some(4), "out\n", "err\n")
        );
        let o = exec_stdin(&mut Command::new("/bin/cat"), b"in", CMD_TIMEOUT);
        assert_eq!(o.stdout, "in");
        let o = exec(
            Command::new("/bin/sleep").arg("5"),
            Duration::from_millis(100),
        );
        assert!(o.timed_out && o.code.is_none());
    }

    #[test]
    fn default_config_is_runc_spec_shaped() {
        let c = default_config(&["echo", "x"]);
        assert_eq!(c["process"]["args"], json!(["echo", "x"]));
        assert_eq!(c["process"]["terminal"], false);
        assert_eq!(c["root"]["path"], "rootfs");
        assert_eq!(c["linux"]["namespaces"].as_array().unwrap().len(), 5);
    }
}

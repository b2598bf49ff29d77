//! `checkpoint` and `restore` through CRIU: a counting busybox container is checkpointed and
//! restored, under a new id, and goes on counting from where it was.
//!
//! CRIU 3.17 (Debian's) refuses kernels newer than it knows ("Unexpected rt vDSO area
//! bounds"), so these tests are ignored in the host's run and run in the hack/vm guest
//! (Debian's 6.1 kernel), where hack/test-vm-guest runs them with --ignored.

use nucleus_integration::*;
use std::ffi::OsStr;
use std::fmt::Debug;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// CRIU under TCG on a loaded host takes tens of seconds for a dump: more than CMD_TIMEOUT.
const CRIU_TIMEOUT: Duration = Duration::from_secs(180);

/// `c.cmd(args)` with CRIU's time.
fn criu_cmd<S: AsRef<OsStr>>(c: &Container, args: &[S]) -> Output {
    exec(c.command().args(args), CRIU_TIMEOUT)
}

/// Checkpoints `c` into the directory `dir` of its root, with `flags` (before the id), and
/// returns that directory.
fn checkpoint(c: &Container, dir: &str, flags: &[&str]) -> PathBuf {
    let images = c.root().join(dir);
    let img = images.to_string_lossy().into_owned();
    let mut args = vec!["checkpoint"];
    args.extend_from_slice(flags);
    args.extend(["--image-path", &img, &c.id]);
    criu_cmd(c, &args).ok();
    images
}

/// `restore --detach` of the images in `images` as `id` from `c`'s bundle, `extra` flags
/// before the id.
fn restore_args(c: &Container, images: &Path, id: &str, extra: &[&str]) -> Vec<String> {
    let b = c.bundle.path().to_string_lossy().into_owned();
    let img = images.to_string_lossy().into_owned();
    let mut args: Vec<String> = ["restore", "--detach", "--image-path", &img, "--bundle", &b]
        .map(String::from)
        .into();
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(id.to_string());
    args
}

/// The container's stdout lines, read as they come from the pipe it was given.
struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn follow(child: &mut Child) -> Self {
        let out = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        Lines(lines)
    }

    fn numbers(&self) -> Vec<u64> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Waits until at least `n` numbers came; returns them.
    #[track_caller]
    fn wait_for(&self, n: usize) -> Vec<u64> {
        let start = Instant::now();
        loop {
            let nums = self.numbers();
            if nums.len() >= n {
                return nums;
            }
            assert!(
                start.elapsed() < CRIU_TIMEOUT,
                "only {} lines came: {:?}",
                nums.len(),
                self.0.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A counter printing 1, 2, 3... to stdout. Its stdio are pipes to the test, as a shim's
/// are (conmon's stdin is /dev/null: see `restore_as_podman_does`).
fn counter(name: &str) -> Container {
    let mut c = Container::new(name);
    c.sh("i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done");
    c
}

/// Runs `args` (after the global flags) with stdio on pipes; waits for the runtime itself to
/// exit and returns it with the pipes still open.
#[track_caller]
fn spawn_piped<S: AsRef<OsStr> + Debug>(c: &Container, args: &[S]) -> (Child, Lines) {
    spawn_io(c, args, Stdio::piped())
}

/// `spawn_piped` with `stdin` as the runtime's (and so the container's) stdin.
#[track_caller]
fn spawn_io<S: AsRef<OsStr> + Debug>(c: &Container, args: &[S], stdin: Stdio) -> (Child, Lines) {
    let mut cmd: Command = c.command();
    cmd.args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn runtime");
    let lines = Lines::follow(&mut child);
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait runtime") {
            if !status.success() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("{args:?} failed: {status}: {err}");
            }
            break;
        }
        assert!(start.elapsed() < CRIU_TIMEOUT, "{args:?} did not return");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, lines)
}

fn run_counter(c: &mut Container) -> (Child, Lines) {
    c.bundle.write_config();
    let b = c.bundle.path().to_string_lossy().into_owned();
    let id = c.id.clone();
    spawn_piped(c, &["run", "--detach", "--bundle", &b, &id])
}

fn restore_as(c: &mut Container, images: &Path, id: &str, extra: &[&str]) -> (Child, Lines) {
    c.extra_ids.push(id.to_string());
    let args = restore_args(c, images, id, extra);
    spawn_piped(c, &args)
}

fn state_of(c: &Container, id: &str) -> Output {
    c.cmd(&["state", id])
}

fn status_of(c: &Container, id: &str) -> String {
    let out = state_of(c, id).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("state JSON");
    v["status"].as_str().unwrap_or_default().to_string()
}

fn pid_of(c: &Container, id: &str) -> i32 {
    let out = state_of(c, id).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("state JSON");
    i32::try_from(v["pid"].as_i64().expect("pid")).expect("a pid fits pid_t")
}

#[test]
#[ignore = "needs a kernel CRIU 3.17 supports: run in the hack/vm guest"]
fn checkpoint_then_restore_under_a_new_id_keeps_counting() {
    let mut c = counter("cr-count");
    let (_run, before) = run_counter(&mut c);
    before.wait_for(3);
    let old_pid = c.pid();
    let id = c.id.clone();
    let images = checkpoint(&c, "images", &[]);
    // Without --leave-running the container is gone: processes, state, cgroup.
    let last = *before.numbers().last().expect("numbers before");
    assert!(
        !pid_alive(old_pid),
        "the checkpointed init {old_pid} still runs"
    );
    let out = state_of(&c, &id).fails();
    assert!(out.stderr.contains("does not exist"), "{out}");
    let cg = c.cgroups_path().expect("cgroups path");
    assert!(
        cgroup_dirs(&cg).is_empty(),
        "cgroup {cg} left after checkpoint"
    );
    assert!(images.join("inventory.img").is_file(), "no images written");

    let new_id = format!("{id}-restored");
    let (_restore, after) = restore_as(&mut c, &images, &new_id, &[]);
    let nums = after.wait_for(3);
    assert!(
        nums[0] > last && nums[0] <= last + 5,
        "restored counter starts at {} after {last} before the checkpoint: {nums:?}",
        nums[0]
    );
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
    assert_eq!(status_of(&c, &new_id), "running");
    let pid = pid_of(&c, &new_id);
    let comm = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        comm.contains("while"),
        "state's pid {pid} is not the counter: {comm:?}"
    );
    // The restored processes are in the new container's cgroup.
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    assert!(cgroup.contains(&cg), "restored init not in {cg}: {cgroup}");
    // Like a created one, a restored container's state dir holds nothing of the restore's
    // own bookkeeping (its record of what to undo, were it killed part-way).
    let mut files: Vec<String> = std::fs::read_dir(c.root().join(&new_id))
        .expect("state dir")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["config.json", "state.json"]);
    c.cmd(&["delete", "--force", &new_id]).ok();
    assert!(
        !pid_alive(pid),
        "restored init {pid} outlived delete --force"
    );
}

#[test]
#[ignore = "needs a kernel CRIU 3.17 supports: run in the hack/vm guest"]
fn leave_running_keeps_the_container_and_restores_a_copy() {
    let mut c = counter("cr-leave");
    let (_run, before) = run_counter(&mut c);
    before.wait_for(2);
    let pid = c.pid();
    let id = c.id.clone();
    let pre = *before.numbers().last().expect("numbers");
    let images = checkpoint(&c, "images", &["--leave-running"]);
    let at = *before.numbers().last().expect("numbers");
    assert_eq!(c.status(), "running");
    assert_eq!(c.pid(), pid);
    before.wait_for(before.numbers().len() + 2);
    let new_id = format!("{id}-copy");
    let (_restore, copy) = restore_as(&mut c, &images, &new_id, &[]);
    let nums = copy.wait_for(2);
    // The copy goes on from the moment of the dump: after what came before the checkpoint
    // began, not after what the container (unfrozen again) printed once it ended.
    assert!(
        nums[0] > pre && nums[0] <= at + 1,
        "copy starts at {} (checkpoint between {pre} and {at})",
        nums[0]
    );
    assert_eq!(status_of(&c, &new_id), "running");
    assert_eq!(c.status(), "running");
}

#[test]
#[ignore = "needs a kernel CRIU 3.17 supports: run in the hack/vm guest"]
fn pre_dump_then_dump_with_parent_restores() {
    let mut c = counter("cr-predump");
    let (_run, before) = run_counter(&mut c);
    before.wait_for(2);
    let id = c.id.clone();
    checkpoint(&c, "pre", &["--pre-dump"]);
    // A pre-dump leaves the container running.
    assert_eq!(c.status(), "running");
    let fin = checkpoint(&c, "final", &["--parent-path", "../pre"]);
    assert!(state_of(&c, &id).fails().stderr.contains("does not exist"));
    let last = *before.numbers().last().expect("numbers");
    let new_id = format!("{id}-restored");
    let (_restore, after) = restore_as(&mut c, &fin, &new_id, &[]);
    let nums = after.wait_for(2);
    assert!(
        nums[0] > last && nums[0] <= last + 5,
        "{nums:?} after {last}"
    );
}

#[test]
#[ignore = "needs a kernel CRIU 3.17 supports: run in the hack/vm guest"]
fn restored_container_pauses_through_its_new_cgroup() {
    let mut c = counter("cr-pause");
    let (_run, before) = run_counter(&mut c);
    before.wait_for(2);
    let id = c.id.clone();
    let images = checkpoint(&c, "images", &[]);
    let new_id = format!("{id}-r");
    let (_restore, after) = restore_as(&mut c, &images, &new_id, &[]);
    after.wait_for(2);
    c.cmd(&["pause", &new_id]).ok();
    assert_eq!(status_of(&c, &new_id), "paused");
    std::thread::sleep(Duration::from_millis(500));
    let frozen = after.numbers().len();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        after.numbers().len(),
        frozen,
        "counting went on while paused"
    );
    c.cmd(&["resume", &new_id]).ok();
    after.wait_for(frozen + 2);
}

#[test]
#[ignore = "needs a kernel CRIU 3.17 supports: run in the hack/vm guest"]
fn restore_bad_input_fails_in_one_line_and_leaves_nothing() {
    let mut c = counter("cr-bad");
    c.bundle.write_config();
    let missing = c.root().join("no-such-images");
    let id = c.id.clone();
    let out = criu_cmd(&c, &restore_args(&c, &missing, &id, &[])).fails();
    assert!(out.stderr.contains("no checkpoint in"), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    assert!(c.cmd(&["list", "-q"]).ok().stdout.trim().is_empty());
    let cg = c.cgroups_path().expect("cgroups path");
    assert!(cgroup_dirs(&cg).is_empty(), "cgroup {cg} left");

    // A running container restored again under its own id.
    let (_run, before) = run_counter(&mut c);
    before.wait_for(2);
    let images = checkpoint(&c, "images", &["--leave-running"]);
    let pid = c.pid();
    let out = criu_cmd(&c, &restore_args(&c, &images, &id, &[])).fails();
    assert!(out.stderr.contains("exists"), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    assert_eq!(c.pid(), pid, "the running container was disturbed");
    assert_eq!(c.status(), "running");
}

/// What Podman's checkpoint/restore does through conmon: the container's stdin is the
/// host's /dev/null (the init gets its own), restore gets --work-path, --pid-file and
/// --no-pivot, and the rootfs of a container imported under a new name lacks the mount
/// points `create` made (a file bind here): restore makes them, and the bind is back.
#[test]
#[ignore = "needs a kernel CRIU 3.17 supports: run in the hack/vm guest"]
fn restore_as_podman_does() {
    let mut c = counter("cr-podman");
    let src = c.root().join("bound-file");
    std::fs::write(&src, "bound-content\n").unwrap();
    c.add_mount(serde_json::json!({
        "destination": "/etc/bound", "type": "bind",
        "source": src.to_string_lossy(), "options": ["bind", "ro"]
    }));
    c.bundle.write_config();
    let b = c.bundle.path().to_string_lossy().into_owned();
    let id = c.id.clone();
    let (_run, before) = spawn_io(&c, &["run", "--detach", "--bundle", &b, &id], Stdio::null());
    before.wait_for(2);
    let images = checkpoint(&c, "images", &[]);
    let last = *before.numbers().last().expect("numbers before");
    let point = c.bundle.rootfs().join("etc/bound");
    std::fs::remove_file(&point).expect("the file bind's mount point was made by create");

    let work = c.root().join("work");
    let pid_file = c.root().join("restored.pid");
    let (w, p) = (
        work.to_string_lossy().into_owned(),
        pid_file.to_string_lossy().into_owned(),
    );
    let new_id = format!("{id}-2");
    let (_restore, after) = restore_as(
        &mut c,
        &images,
        &new_id,
        &["--work-path", &w, "--pid-file", &p, "--no-pivot"],
    );
    let nums = after.wait_for(2);
    assert!(nums[0] > last, "restarted at {} after {last}", nums[0]);
    let pid = pid_of(&c, &new_id);
    assert_eq!(
        std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .trim(),
        pid.to_string()
    );
    assert!(
        work.join("restore.log").is_file(),
        "CRIU's log not in --work-path"
    );
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/root/etc/bound")).unwrap_or_default(),
        "bound-content\n"
    );
    // Its stdin is the container's /dev/null, not the host's.
    use std::os::unix::fs::MetadataExt;
    let fd0 = std::fs::metadata(format!("/proc/{pid}/fd/0")).expect("stat the init's stdin");
    let host = std::fs::metadata("/dev/null").unwrap();
    assert_eq!(fd0.rdev(), host.rdev());
    assert_ne!((fd0.dev(), fd0.ino()), (host.dev(), host.ino()));

    // A terminal's pty through --console-socket is refused in one line, leaving nothing.
    let args = restore_args(
        &c,
        &images,
        &format!("{id}-3"),
        &["--console-socket", "/nonexistent.sock"],
    );
    let out = criu_cmd(&c, &args).fails();
    assert!(out.stderr.contains("--console-socket"), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    let listed = c.cmd(&["list", "-q"]).ok().stdout;
    assert_eq!(listed.trim(), new_id, "{listed}");
    c.cmd(&["delete", "--force", &new_id]).ok();
}

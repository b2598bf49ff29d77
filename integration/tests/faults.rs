//! Nothing left behind, ever: `create` SIGKILLed at moments swept across its whole run, or
//! failing at the Nth of each syscall it makes (strace fault injection), followed by
//! `delete --force`, leaves no state dir, cgroup (in any hierarchy), process or mount; a
//! preserved-fd range with holes is refused without hanging anything; a hook that outlives
//! its timeout is killed with everything it started.

use nucleus_integration::*;
use serde_json::json;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long `delete --force` may take: it must never hang.
const DELETE_TIMEOUT: Duration = Duration::from_secs(20);

/// Pids of live (non-zombie) processes whose argv holds `word` as a whole argument, the
/// fault injector (strace, whose own argv names the id) aside. The intermediate and the
/// init are forks of the runtime, so until `start` their argv is the `create` command's.
fn procs_with_arg(word: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if !cmdline.split(|&b| b == 0).any(|a| a == word.as_bytes()) {
            continue;
        }
        let comm = fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rfind(')')
            .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z'));
        if comm.trim() != "strace" && !zombie {
            out.push(pid);
        }
    }
    out
}

/// Everything of container `id` (cgroupsPath `/<id>`) still on the host; empty when
/// nothing is left. Processes get a moment to finish dying.
fn leftovers(root: &Path, id: &str, rootfs: &str) -> Vec<String> {
    let mut left = Vec::new();
    if root.join(id).exists() {
        left.push(format!("state dir {}", root.join(id).display()));
    }
    for d in cgroup_dirs(&format!("/{id}")) {
        left.push(format!("cgroup {}", d.display()));
    }
    let until = Instant::now() + Duration::from_secs(1);
    let mut procs = procs_with_arg(id);
    while !procs.is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
        procs = procs_with_arg(id);
    }
    for p in procs {
        left.push(format!("process {p}"));
    }
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for l in mi.lines().filter(|l| l.contains(id) || l.contains(rootfs)) {
        left.push(format!("mount {l}"));
    }
    left
}

/// Remove by hand what a broken runtime left, so one leak does not spoil the next case.
fn purge(root: &Path, id: &str) {
    for p in procs_with_arg(id) {
        // SAFETY: kill(2) of a process whose argv names this test's unique container id.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    for d in cgroup_dirs(&format!("/{id}")) {
        for pid in fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse::<i32>().ok())
        {
            // SAFETY: kill(2) of a process in this test's own cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for _ in 0..100 {
            if fs::remove_dir(&d).is_ok() || !d.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let _ = fs::remove_dir_all(root.join(id));
}

/// A bundle running `sleep` with cgroupsPath `/<id>`, and the ids it was used with.
struct Bench {
    c: Container,
    bundle: String,
    rootfs: String,
    n: usize,
}

impl Bench {
    fn new(name: &str) -> Self {
        let mut c = Container::new(name);
        c.args(&["sleep", "60"]);
        // With a profile: the runtime compiles it after its first fork and sends it to the
        // init, one more step of create to be killed in or fail at (and a superset of a
        // create without one).
        c.config()["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]});
        let bundle = c.bundle.path().to_string_lossy().into_owned();
        let rootfs = c.bundle.rootfs().to_string_lossy().into_owned();
        Bench {
            c,
            bundle,
            rootfs,
            n: 0,
        }
    }

    /// A fresh id, its cgroupsPath written into the config.
    fn next_id(&mut self) -> String {
        let id = format!("{}-{}", self.c.id, self.n);
        self.n += 1;
        self.c.config()["linux"]["cgroupsPath"] = json!(format!("/{id}"));
        self.c.bundle.write_config();
        id
    }

    fn create_cmd(&self, id: &str) -> Command {
        let mut cmd = self.c.command();
        cmd.args(["create", "--bundle", &self.bundle, id]);
        cmd
    }

    /// `delete --force` after a create that was killed or failed: it must end in time with
    /// success (or "does not exist"), and leave nothing. Returns what was left.
    fn delete_and_check(&self, id: &str, what: &str) -> Vec<String> {
        let out = exec(
            self.c.command().args(["delete", "--force", id]),
            DELETE_TIMEOUT,
        );
        let mut left = Vec::new();
        if out.timed_out {
            left.push(format!("{what}: delete --force hung"));
        } else if !out.success() && !out.all_text().contains("does not exist") {
            left.push(format!("{what}: delete --force failed\n{out}"));
        }
        for l in leftovers(self.c.root(), id, &self.rootfs) {
            left.push(format!("{what}: {l}"));
        }
        if !left.is_empty() {
            purge(self.c.root(), id);
        }
        left
    }
}

/// How many of the cases left each kind of thing, e.g. "cgroup: 12, process: 3".
fn kinds(leaked: &[Vec<String>]) -> String {
    ["state dir", "cgroup", "process", "mount", "hung", "failed"]
        .iter()
        .map(|k| {
            let n = leaked
                .iter()
                .filter(|case| case.iter().any(|l| l.contains(k)))
                .count();
            format!("{k}: {n}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn spawn_quiet(mut cmd: Command) -> std::process::Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn create")
}

#[test]
fn create_killed_at_any_moment_leaves_nothing_after_delete_force() {
    let mut b = Bench::new("fault-kill");
    // How long a whole create takes here, to sweep the kill across all of it.
    let mut took = Vec::new();
    for _ in 0..3 {
        let id = b.next_id();
        let t = Instant::now();
        let out = exec(&mut b.create_cmd(&id), CMD_TIMEOUT);
        took.push(t.elapsed());
        assert!(out.success(), "create\n{out}");
        let left = b.delete_and_check(&id, "after a whole create");
        assert!(left.is_empty(), "{left:#?}");
    }
    took.sort();
    let span = took[1].mul_f64(1.2).max(Duration::from_millis(10));
    let points = 40u32;
    let mut leaked = Vec::new();
    for i in 0..points {
        let delay = span * i / points;
        let id = b.next_id();
        let mut child = spawn_quiet(b.create_cmd(&id));
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let what = format!("killed after {delay:?}");
        // Even before any delete, no process of an unfinished create lives on: only a
        // container whose create got as far as its state file may keep its init.
        let until = Instant::now() + Duration::from_secs(1);
        let state_file = b.c.root().join(&id).join("state.json");
        let mut orphans = procs_with_arg(&id);
        while !orphans.is_empty() && !state_file.exists() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
            orphans = procs_with_arg(&id);
        }
        let mut left = Vec::new();
        if !orphans.is_empty() && !state_file.exists() {
            left.push(format!(
                "{what}: process {orphans:?} outlived the runtime unrecorded"
            ));
        }
        left.extend(b.delete_and_check(&id, &what));
        if !left.is_empty() {
            leaked.push(left);
        }
    }
    eprintln!(
        "kill sweep: {points} kill points over {span:?} (create takes ~{:?}): {} left something ({})",
        took[1],
        leaked.len(),
        kinds(&leaked)
    );
    assert!(leaked.is_empty(), "{leaked:#?}");
}

#[test]
fn create_failing_at_any_syscall_leaves_nothing_after_delete_force() {
    assert!(
        Path::new("/usr/bin/strace").is_file(),
        "/usr/bin/strace is missing: install strace"
    );
    let mut b = Bench::new("fault-inject");
    // The Nth call of each syscall create makes on its way fails (in any of its
    // processes: -f), with an errno it could really see.
    let cases: &[(&str, &str, &[u32])] = &[
        ("openat", "EACCES", &[1, 4, 8, 16, 30]),
        ("mkdir", "EACCES", &[1, 2, 3, 5]),
        ("write", "EIO", &[1, 2, 4, 8, 16]),
        ("clone", "EAGAIN", &[1, 2]),
        ("clone3", "ENOSYS", &[1]),
        ("flock", "ENOLCK", &[1]),
        ("close_range", "EINVAL", &[1, 2]),
        ("mount", "EPERM", &[1, 3, 8]),
        ("pivot_root", "EINVAL", &[1]),
        ("sendto", "EPIPE", &[1, 3, 5]),
        ("rename", "EIO", &[1, 2]),
        ("socketpair", "EMFILE", &[1]),
        ("mknodat", "EACCES", &[1]),
    ];
    let mut leaked = Vec::new();
    let mut n = 0;
    let mut failed_creates = 0;
    for (sys, errno, whens) in cases {
        for when in *whens {
            n += 1;
            let id = b.next_id();
            let create = b.create_cmd(&id);
            // -D: the tracer is not our child, so we wait for `create` alone, not for the
            // init it leaves waiting for `start`.
            let mut cmd = Command::new("/usr/bin/strace");
            cmd.args(["-f", "-D", "-qq", "-o", "/dev/null", "-e"])
                .arg(format!("inject={sys}:error={errno}:when={when}"))
                .arg(create.get_program())
                .args(create.get_args());
            let out = exec(&mut cmd, CMD_TIMEOUT);
            let what = format!("{sys}#{when} -> {errno}");
            if out.timed_out {
                leaked.push(vec![format!("{what}: create hung\n{out}")]);
                purge(b.c.root(), &id);
                continue;
            }
            let mut left = Vec::new();
            if !out.success() {
                failed_creates += 1;
                // A failed create is never a crash, and undoes itself: nothing is left
                // even before `delete`.
                assert!(out.signal.is_none(), "{what}: create crashed\n{out}");
                for l in leftovers(b.c.root(), &id, &b.rootfs) {
                    left.push(format!("{what}: after the failed create: {l}"));
                }
            }
            left.extend(b.delete_and_check(&id, &what));
            if !left.is_empty() {
                leaked.push(left);
            }
        }
    }
    eprintln!(
        "syscall injection: {n} cases ({failed_creates} made create fail): {} left something ({})",
        leaked.len(),
        kinds(&leaked)
    );
    assert!(leaked.is_empty(), "{leaked:#?}");
    // The injections must have reached create, or this test proves nothing.
    assert!(
        failed_creates * 2 >= n,
        "only {failed_creates} of {n} injections made create fail"
    );
}

#[test]
fn preserved_fds_beyond_those_passed_are_refused_without_hanging() {
    let mut b = Bench::new("fault-fds");
    let runtime = b.c.runtime.to_string_lossy().into_owned();
    let root = b.c.root().to_string_lossy().into_owned();
    // Through a shell, so exactly the fds we mean are open: none, or just fd 3.
    let sh = |script: &str| {
        exec(
            Command::new("/bin/sh").arg("-c").arg(script),
            Duration::from_secs(20),
        )
    };
    for (n, open3) in [(1000, false), (1, false), (2, true)] {
        let id = b.next_id();
        // Whatever else the test harness holds open is closed too.
        let first = if open3 { "3</dev/null" } else { "3<&-" };
        let redirect = format!("{first} 4<&- 5<&- 6<&- 7<&- 8<&- 9<&-");
        let out = sh(&format!(
            "exec {runtime} --root {root} create --preserve-fds {n} --bundle {} {id} {redirect}",
            b.bundle
        ));
        assert!(!out.timed_out, "create hung\n{out}");
        out.clone().fails();
        let missing = if open3 { 1 } else { 0 };
        assert!(
            out.stderr
                .contains(&format!("preserved-fd {missing} (of {n})")),
            "{out}"
        );
        assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
        // Nothing holds the container's lock: every command answers at once.
        let st = exec(b.c.command().args(["state", &id]), Duration::from_secs(5));
        assert!(!st.timed_out, "state hung\n{st}");
        let left = b.delete_and_check(&id, &format!("--preserve-fds {n}"));
        assert!(left.is_empty(), "{left:#?}");
    }
    // With the fd really passed, the container gets it and the state lock stays ours:
    // state, start and delete all go through.
    let id = b.next_id();
    b.c.sh("ls -l /proc/self/fd/3 > /dev/null && sleep 60");
    b.c.config()["linux"]["cgroupsPath"] = json!(format!("/{id}"));
    b.c.bundle.write_config();
    let out = sh(&format!(
        "exec {runtime} --root {root} create --preserve-fds 1 --bundle {} {id} 3</dev/null",
        b.bundle
    ));
    out.ok();
    let st = exec(b.c.command().args(["state", &id]), Duration::from_secs(5));
    assert!(st.stdout.contains("\"created\""), "{st}");
    exec(b.c.command().args(["start", &id]), Duration::from_secs(5)).ok();
    // The container goes on only if it found fd 3.
    std::thread::sleep(Duration::from_millis(300));
    let st = exec(b.c.command().args(["state", &id]), Duration::from_secs(5));
    assert!(st.stdout.contains("\"running\""), "{st}");
    let left = b.delete_and_check(&id, "--preserve-fds 1 with fd 3");
    assert!(left.is_empty(), "{left:#?}");
    // exec: the same check, before the runtime opens the container.
    let id = b.next_id();
    b.c.args(&["sleep", "60"]);
    b.c.config()["linux"]["cgroupsPath"] = json!(format!("/{id}"));
    b.c.bundle.write_config();
    exec(&mut b.create_cmd(&id), CMD_TIMEOUT).ok();
    let out = sh(&format!(
        "exec {runtime} --root {root} exec --preserve-fds 5 {id} true 3<&- 4<&-"
    ));
    assert!(!out.timed_out, "exec hung\n{out}");
    assert_eq!(out.code, Some(255), "{out}");
    assert!(out.stderr.contains("preserved-fd 0 (of 5)"), "{out}");
    let st = exec(b.c.command().args(["state", &id]), Duration::from_secs(5));
    assert!(st.stdout.contains("\"created\""), "{st}");
    let left = b.delete_and_check(&id, "exec --preserve-fds 5");
    assert!(left.is_empty(), "{left:#?}");
}

/// Live processes whose argv is exactly `sleep <secs>`.
fn sleepers(secs: &str) -> Vec<i32> {
    procs_with_arg(secs)
        .into_iter()
        .filter(|p| {
            fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| c.starts_with(b"sleep\0"))
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn hooks_past_their_timeout_are_killed_with_their_children() {
    let mut b = Bench::new("fault-hook");
    // A number no other process sleeps for, one per hook kind.
    let base = 200_000 + (std::process::id() % 10_000) * 8;
    for (i, kind) in ["prestart", "createRuntime", "createContainer", "poststop"]
        .iter()
        .enumerate()
    {
        let secs = (base + u32::try_from(i).unwrap()).to_string();
        let id = b.next_id();
        // The hook starts a sleeper in the background and sleeps in the foreground.
        let hook = json!([{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("sleep {secs} & sleep {secs}; true")],
            "timeout": 1
        }]);
        b.c.config()["hooks"] = json!({ *kind: hook });
        b.c.bundle.write_config();
        let t = Instant::now();
        if *kind == "poststop" {
            exec(&mut b.create_cmd(&id), CMD_TIMEOUT).ok();
            let out = exec(
                b.c.command().args(["delete", "--force", &id]),
                DELETE_TIMEOUT,
            );
            assert!(out.success(), "{kind}: delete\n{out}");
            assert!(out.stderr.contains("timed out after 1s"), "{kind}\n{out}");
        } else {
            let out = exec(&mut b.create_cmd(&id), CMD_TIMEOUT);
            out.clone().fails();
            assert!(out.stderr.contains("timed out after 1s"), "{kind}\n{out}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{kind}: took {:?}",
            t.elapsed()
        );
        let until = Instant::now() + Duration::from_secs(1);
        let mut left = sleepers(&secs);
        while !left.is_empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
            left = sleepers(&secs);
        }
        for p in &left {
            // SAFETY: kill(2) of a sleeper with this test's own unique argument.
            unsafe { libc::kill(*p, libc::SIGKILL) };
        }
        assert!(
            left.is_empty(),
            "{kind}: hook processes outlived the timeout: {left:?}"
        );
        let rest = b.delete_and_check(&id, kind);
        assert!(rest.is_empty(), "{rest:#?}");
    }
}

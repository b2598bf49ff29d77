//! Linux security modules: `process.apparmorProfile` applied as runc applies it (the
//! transition at the container process's execve), for the init and for `exec` (with
//! `exec --apparmor` and `--process`), checked from inside the container (its
//! `attr/apparmor/current`, a read the profile denies) and from the host, and compared with
//! runc on the same bundle.
//!
//! These tests need a kernel with AppArmor and `apparmor_parser` (Debian's `apparmor`
//! package, installed by hack/deps): on other hosts they are ignored, and
//! `hack/test-vm --apparmor lsm` runs them with `--ignored` in a guest booted with AppArmor.
//! Run anywhere else with `--ignored`, they fail (they never pass without AppArmor).
//! Refusals where the kernel lacks the LSM are badinput.rs's cases.

use nucleus_integration::*;
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const NEEDS: &str = "needs AppArmor: run by hack/test-vm in the apparmor guest";

/// A profile loaded into the kernel for the test's lifetime (removed on drop). Its name has
/// dots and dashes, as Podman's `containers-default-0.x.y` has.
struct Profile {
    name: String,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Profile {
    /// Everything allowed except reading and writing below /denied.
    fn load(tag: &str) -> Self {
        assert!(
            Path::new("/sys/kernel/security/apparmor/profiles").exists(),
            "this kernel has no AppArmor enabled ({NEEDS})"
        );
        let name = format!("nucleus-it.{tag}-0.{}", std::process::id());
        let dir = host_tempdir("nucleus-it-apparmor-");
        let file = dir.path().join("profile");
        let text = format!(
            "abi <abi/3.0>,\n\
             profile {name} flags=(attach_disconnected,mediate_deleted) {{\n\
             \x20 file,\n  capability,\n  network,\n  signal,\n  ptrace,\n  unix,\n\
             \x20 mount,\n  umount,\n  pivot_root,\n\
             \x20 deny /denied/** rwklx,\n\
             }}\n"
        );
        fs::write(&file, text).expect("write profile");
        let out = exec(
            Command::new("apparmor_parser").arg("-r").arg(&file),
            Duration::from_secs(120),
        );
        assert!(out.success(), "apparmor_parser -r failed: {out}");
        let loaded = fs::read_to_string("/sys/kernel/security/apparmor/profiles").unwrap();
        assert!(
            loaded.lines().any(|l| l == format!("{name} (enforce)")),
            "{name} is not among the loaded profiles:\n{loaded}"
        );
        Profile {
            name,
            file,
            _dir: dir,
        }
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = exec(
            Command::new("apparmor_parser").arg("-R").arg(&self.file),
            Duration::from_secs(60),
        );
    }
}

/// A container on `runtime` whose rootfs has /denied/secret and /allowed, running `script`.
fn container(runtime: &Path, name: &str, profile: Option<&str>, script: &str) -> Container {
    let mut c = Container::with_runtime(runtime, name);
    let root = c.bundle.rootfs();
    fs::create_dir_all(root.join("denied")).unwrap();
    fs::write(root.join("denied/secret"), "secret\n").unwrap();
    fs::write(root.join("allowed"), "allowed\n").unwrap();
    if let Some(p) = profile {
        c.config()["process"]["apparmorProfile"] = json!(p);
    }
    c.sh(script);
    c
}

const PROBE: &str = "cat /proc/self/attr/apparmor/current; echo; \
     cat /allowed; cat /denied/secret 2>/dev/null || echo DENIED";

/// The label of a task as the kernel reports it (NUL/newline trimmed).
fn label_of(text: &str) -> String {
    text.trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .to_string()
}

/// What a container with `profile` sees: its label, a read allowed and one denied.
fn run_probe(runtime: &Path, profile: Option<&str>) -> Vec<String> {
    let mut c = container(runtime, "probe", profile, PROBE);
    let out = c.run().ok();
    out.stdout
        .lines()
        .map(label_of)
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
#[ignore = "needs AppArmor: run by hack/test-vm in the apparmor guest"]
fn profile_confines_the_container_process() {
    let p = Profile::load("deny");
    let want = vec![
        format!("{} (enforce)", p.name),
        "allowed".to_string(),
        "DENIED".to_string(),
    ];
    let got = run_probe(&runtime_path(), Some(&p.name));
    assert_eq!(got, want, "with process.apparmorProfile");
    // The control: without a profile the same read succeeds.
    let got = run_probe(&runtime_path(), None);
    assert_eq!(
        got,
        ["unconfined", "allowed", "secret"],
        "without a profile"
    );
    // runc, on the same kind of bundle, sees the same.
    if let Some(runc) = reference_path() {
        assert_eq!(run_probe(&runc, Some(&p.name)), want, "runc");
    }
}

/// The init seen from the host, `exec` without and with `--apparmor`, and `exec --process`
/// whose process has no profile (it gets the container's, as in runc).
fn exec_scenario(runtime: &Path, p: &Profile, other: &Profile) -> Vec<String> {
    let mut c = container(runtime, "exec", Some(&p.name), "sleep 100");
    c.run_detached().ok();
    let mut seen = Vec::new();
    let host = fs::read_to_string(format!("/proc/{}/attr/apparmor/current", c.pid()))
        .expect("the init's label from the host");
    seen.push(format!("init: {}", label_of(&host)));
    let id = c.id.clone();
    let probe = |args: &[&str]| {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        let out = c.cmd(&a).ok();
        out.stdout
            .lines()
            .map(label_of)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    seen.push(format!("exec: {}", probe(&[&id, "sh", "-c", PROBE])));
    seen.push(format!(
        "exec --apparmor: {}",
        probe(&["--apparmor", &other.name, &id, "sh", "-c", PROBE])
    ));
    let process = c.bundle.path().join("process.json");
    let pj = json!({
        "args": ["sh", "-c", PROBE],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "env": [DEFAULT_PATH],
    });
    fs::write(&process, serde_json::to_vec(&pj).unwrap()).unwrap();
    let pf = process.to_string_lossy().into_owned();
    seen.push(format!(
        "exec --process: {}",
        probe(&["--process", &pf, &id])
    ));
    seen
}

#[test]
#[ignore = "needs AppArmor: run by hack/test-vm in the apparmor guest"]
fn exec_processes_get_the_profile_or_the_one_asked_for() {
    let p = Profile::load("exec");
    let other = Profile::load("other");
    let got = exec_scenario(&runtime_path(), &p, &other);
    let (mine, theirs) = (
        format!("{} (enforce)", p.name),
        format!("{} (enforce)", other.name),
    );
    let want = vec![
        format!("init: {mine}"),
        format!("exec: {mine} | allowed | DENIED"),
        format!("exec --apparmor: {theirs} | allowed | DENIED"),
        format!("exec --process: {mine} | allowed | DENIED"),
    ];
    assert_eq!(got, want);
    if let Some(runc) = reference_path() {
        // runc 1.1 runs an `exec --process` process without a profile of its own unconfined;
        // current runc (newInitConfig) gives it the container's, as nucleus does: that row is
        // not compared.
        let theirs = exec_scenario(&runc, &p, &other);
        assert_eq!(theirs[..3], want[..3], "runc");
        eprintln!(
            "NOTICE: exec --process without a profile not compared with runc (runc: {:?})",
            theirs[3]
        );
    }
}

#[test]
#[ignore = "needs AppArmor: run by hack/test-vm in the apparmor guest"]
fn profile_applies_as_another_user_and_in_a_user_namespace() {
    let p = Profile::load("userns");
    let want = vec![
        format!("{} (enforce)", p.name),
        "allowed".to_string(),
        "DENIED".to_string(),
    ];
    // Another uid, no_new_privs (the default config's) and a seccomp filter.
    let mut c = container(&runtime_path(), "uid", Some(&p.name), PROBE);
    c.config()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    c.config()["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}]
    });
    let out = c.run().ok();
    let got: Vec<String> = out
        .stdout
        .lines()
        .map(label_of)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(got, want, "uid 1000 with no_new_privs and seccomp");
    // A user namespace (root inside is host uid 100000).
    let mut c = container(&runtime_path(), "userns", Some(&p.name), PROBE);
    c.user_namespace(100000, 200000);
    let out = c.run().ok();
    let got: Vec<String> = out
        .stdout
        .lines()
        .map(label_of)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(got, want, "in a user namespace");
}

/// The lines of stderr that report an error, in the runtime's log format.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// What a failed create left: state dirs under its root, the cgroup, processes, mounts.
fn leftovers(c: &Container) -> Vec<String> {
    let mut left = Vec::new();
    for e in fs::read_dir(c.root()).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            left.push(format!("state dir {}", e.path().display()));
        }
    }
    for d in cgroup_dirs(&format!("/{}", c.id)) {
        left.push(format!("cgroup {}", d.display()));
    }
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&c.id) && pid_alive(pid) {
            left.push(format!("process {pid}: {cmd}"));
        }
    }
    let b = c.bundle.path().to_string_lossy().into_owned();
    for l in fs::read_to_string("/proc/self/mountinfo").unwrap().lines() {
        if l.contains(&b) || l.contains(&c.id) {
            left.push(format!("mount {l}"));
        }
    }
    left
}

#[test]
#[ignore = "needs AppArmor: run by hack/test-vm in the apparmor guest"]
fn unknown_profile_fails_create_with_one_line_and_leaves_nothing() {
    assert!(
        Path::new("/sys/kernel/security/apparmor/profiles").exists(),
        "this kernel has no AppArmor enabled ({NEEDS})"
    );
    let name = format!("nucleus-it.no-such-0.{}", std::process::id());
    let mut c = container(&runtime_path(), "unknown", Some(&name), "true");
    let out = c.create().fails();
    let errs = error_lines(&out.stderr);
    assert_eq!(errs.len(), 1, "want one error line:\n{out}");
    assert!(
        errs[0].contains(&name) && errs[0].contains("AppArmor"),
        "the error names the profile:\n{out}"
    );
    assert_eq!(
        leftovers(&c),
        Vec::<String>::new(),
        "after the failed create"
    );
    if let Some(runc) = reference_path() {
        let mut r = container(&runc, "unknown-runc", Some(&name), "true");
        r.create().fails();
    }
    // An unknown profile for `exec` fails the exec alone; the container runs on.
    let p = Profile::load("exec-unknown");
    let mut c = container(&runtime_path(), "exec-unknown", Some(&p.name), "sleep 100");
    c.run_detached().ok();
    let id = c.id.clone();
    let out = c.cmd(&["exec", "--apparmor", &name, &id, "true"]);
    assert!(
        !out.success(),
        "exec with an unknown profile succeeded:\n{out}"
    );
    let errs = error_lines(&out.stderr);
    assert!(
        errs.len() == 1 && errs[0].contains(&name),
        "want one error line naming the profile:\n{out}"
    );
    assert_eq!(c.status(), "running");
}

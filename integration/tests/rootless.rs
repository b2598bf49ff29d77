//! Rootless containers: the runtime run by an unprivileged user (hack/test-user's, default
//! `nucleus-it`, with subordinate id ranges) on a bundle from `spec --rootless`, the state
//! root defaulting to `$XDG_RUNTIME_DIR/nucleus`. Checked from inside (id maps, setgroups,
//! chown to a subordinate id) and from outside (the host uid of the container's processes,
//! no network namespace, no cgroup made where the user has none, the sealed-memfd copy of
//! the binary, nothing left behind), and against runc run by the same user where runc
//! decides what is right (newuidmap ranges, limits and pause without a cgroup).
//!
//! The test user must exist (hack/test runs hack/test-user first) and newuidmap/newgidmap
//! be installed (hack/deps: uidmap): without them these tests fail.

use nucleus_integration::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The unprivileged user the runtime runs as, and its first subordinate ranges.
struct User {
    name: String,
    uid: u32,
    gid: u32,
    subuid: (u32, u32),
    subgid: (u32, u32),
}

/// `NAME:START:COUNT` of `name` in /etc/subuid or /etc/subgid.
fn sub_range(file: &str, name: &str) -> (u32, u32) {
    let text = fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() == 3 && f[0] == name).then(|| (f[1].parse().ok(), f[2].parse().ok()))
        })
        .and_then(|(s, c)| Some((s?, c?)))
        .unwrap_or_else(|| panic!("{name} has no range in {file}: run hack/test-user"))
}

fn test_user() -> User {
    let name = std::env::var("NUCLEUS_TEST_USER").unwrap_or_else(|_| "nucleus-it".into());
    let id = |flag: &str| -> u32 {
        let out = exec(Command::new("id").args([flag, &name]), CMD_TIMEOUT);
        assert!(
            out.success(),
            "test user {name} is missing: run hack/test-user (hack/test does)\n{out}"
        );
        out.stdout.trim().parse().expect("numeric id")
    };
    for tool in ["/usr/bin/newuidmap", "/usr/bin/newgidmap"] {
        assert!(
            Path::new(tool).is_file(),
            "{tool} is missing: install uidmap (hack/deps)"
        );
    }
    User {
        uid: id("-u"),
        gid: id("-g"),
        subuid: sub_range("/etc/subuid", &name),
        subgid: sub_range("/etc/subgid", &name),
        name,
    }
}

/// A home for one test, owned by the test user: its XDG_RUNTIME_DIR (`xdg`, 0700), a bundle
/// (`bundle`, a busybox rootfs owned by root, config.json the user's) and a copy of the
/// runtime the user can execute wherever the checkout lives.
struct Rootless {
    user: User,
    home: tempfile::TempDir,
    runtime: PathBuf,
    ids: Vec<String>,
}

impl Rootless {
    fn new() -> Self {
        let user = test_user();
        let home = tempfile::Builder::new()
            .prefix("nucleus-it-rootless-")
            .tempdir()
            .expect("tempdir");
        let own = |p: &Path, mode: u32| {
            chown(p, Some(user.uid), Some(user.gid)).expect("chown to the test user");
            fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
        };
        own(home.path(), 0o755);
        for d in ["xdg", "bundle"] {
            fs::create_dir(home.path().join(d)).expect("mkdir");
        }
        own(&home.path().join("xdg"), 0o700);
        own(&home.path().join("bundle"), 0o755);
        make_rootfs(&home.path().join("bundle/rootfs"));
        let runtime = home.path().join("nucleus");
        fs::copy(runtime_path(), &runtime).expect("copy the runtime");
        fs::set_permissions(&runtime, fs::Permissions::from_mode(0o755)).expect("chmod");
        Rootless {
            user,
            home,
            runtime,
            ids: Vec::new(),
        }
    }

    fn bundle(&self) -> PathBuf {
        self.home.path().join("bundle")
    }

    fn xdg(&self) -> PathBuf {
        self.home.path().join("xdg")
    }

    /// A unique container id, deleted (by both runtimes) when the test ends.
    fn id(&mut self, name: &str) -> String {
        let id = unique_id(&format!("rootless-{name}"));
        self.ids.push(id.clone());
        id
    }

    /// `program ARGS` as the test user, in the bundle, with its XDG_RUNTIME_DIR and no
    /// `--root`: the state root is the default one.
    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args)
            .current_dir(self.bundle())
            .env("XDG_RUNTIME_DIR", self.xdg())
            .env("HOME", self.home.path())
            .env("USER", &self.user.name)
            .uid(self.user.uid)
            .gid(self.user.gid);
        c
    }

    /// nucleus as the test user.
    fn nucleus(&self, args: &[&str]) -> Output {
        exec(&mut self.command(&self.runtime, args), CMD_TIMEOUT)
    }

    /// runc as the test user (its state root: $XDG_RUNTIME_DIR/runc).
    fn runc(&self, args: &[&str]) -> Output {
        exec(&mut self.command(&reference(), args), CMD_TIMEOUT)
    }

    /// `create`/`run -d` with the container's stdout and stderr to files of the home.
    fn detached(&self, program: &Path, args: &[&str]) -> Output {
        exec_io(
            &mut self.command(program, args),
            None,
            Some(&self.home.path().join("ctr.stdout")),
            Some(&self.home.path().join("ctr.stderr")),
            CMD_TIMEOUT,
        )
    }

    /// The config `nucleus spec --rootless` writes for the test user, run by that user.
    fn rootless_spec(&self) -> Value {
        let _ = fs::remove_file(self.bundle().join("config.json"));
        self.nucleus(&["spec", "--rootless"]).ok();
        let text = fs::read_to_string(self.bundle().join("config.json")).expect("config.json");
        serde_json::from_str(&text).expect("config.json is JSON")
    }

    fn write_config(&self, config: &Value) {
        let path = self.bundle().join("config.json");
        fs::write(&path, serde_json::to_string_pretty(config).unwrap()).expect("write config");
        chown(&path, Some(self.user.uid), Some(self.user.gid)).expect("chown config");
    }

    /// A directory of the home, owned by the test user, to bind into a container.
    fn user_dir(&self, name: &str) -> PathBuf {
        let d = self.home.path().join(name);
        fs::create_dir(&d).expect("mkdir");
        chown(&d, Some(self.user.uid), Some(self.user.gid)).expect("chown");
        d
    }

    fn state_json(&self, id: &str) -> Value {
        let out = self.nucleus(&["state", id]).ok();
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("state JSON: {e}\n{out}"))
    }

    fn wait_stopped(&self, id: &str) {
        for _ in 0..1000 {
            if self.state_json(id)["status"] == "stopped" {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("container {id} did not stop");
    }

    /// Nothing of the test's containers is left: no state directory in either runtime's
    /// root, no process of the test user, no mount of the home in the host's mount table.
    #[track_caller]
    fn assert_nothing_left(&self) {
        for root in ["nucleus", "runc"] {
            let dir = self.xdg().join(root);
            let left: Vec<String> = fs::read_dir(&dir)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| self.ids.contains(n))
                        .collect()
                })
                .unwrap_or_default();
            assert!(left.is_empty(), "state left in {}: {left:?}", dir.display());
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let procs = user_processes(self.user.uid, &self.runtime);
            if procs.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "processes of the test user left: {procs:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let home = self.home.path().to_string_lossy().into_owned();
        assert!(
            !mounts.contains(&home),
            "a mount of {home} is left in the host's mount table"
        );
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = exec(
                &mut self.command(&self.runtime, &["delete", "--force", id]),
                Duration::from_secs(10),
            );
            if let Some(runc) = reference_path() {
                let _ = exec(
                    &mut self.command(&runc, &["delete", "--force", id]),
                    Duration::from_secs(10),
                );
            }
        }
    }
}

/// Live (non-zombie) processes of `uid` that belong to this test: those whose state or
/// exe is below the test's home, or that run the test's copy of the runtime. Other tests
/// run as the same user in parallel, so the user's processes are not all ours.
fn user_processes(uid: u32, runtime: &Path) -> Vec<(i32, String)> {
    let home = runtime
        .parent()
        .expect("home")
        .to_string_lossy()
        .into_owned();
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let uid_ok = status_field(&status, "Uid")
            .is_some_and(|u| u.split_whitespace().next() == Some(&uid.to_string()));
        let zombie = status_field(&status, "State").is_some_and(|s| s.starts_with('Z'));
        if !uid_ok || zombie {
            continue;
        }
        let root = fs::read_link(format!("/proc/{pid}/root"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cwd = fs::read_link(format!("/proc/{pid}/cwd"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cmd = fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .replace('\0', " ");
        if root.starts_with(&home) || cwd.starts_with(&home) || cmd.contains(&home) {
            out.push((pid, cmd));
        }
    }
    out
}

/// The rootless config running `args`, with runc's three default capabilities.
fn rootless_config(r: &Rootless, args: &[&str]) -> Value {
    let mut c = r.rootless_spec();
    c["process"]["terminal"] = json!(false);
    c["process"]["args"] = json!(args);
    c
}

#[test]
fn lifecycle_as_an_unprivileged_user() {
    let mut r = Rootless::new();
    let id = r.id("life");
    let config = rootless_config(&r, &["sleep", "600"]);
    // What `spec --rootless` gives: the user mapped to root, alone; no network namespace.
    assert_eq!(
        config["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": r.user.uid, "size": 1}])
    );
    assert_eq!(
        config["linux"]["gidMappings"],
        json!([{"containerID": 0, "hostID": r.user.gid, "size": 1}])
    );
    let ns = config["linux"]["namespaces"].to_string();
    assert!(
        ns.contains("\"user\"") && !ns.contains("\"network\""),
        "{ns}"
    );
    r.write_config(&config);
    r.detached(&r.runtime, &["create", &id]).ok();

    // The state root defaulted to $XDG_RUNTIME_DIR/nucleus, the user's.
    let state_dir = r.xdg().join("nucleus").join(&id);
    let meta = fs::metadata(&state_dir)
        .unwrap_or_else(|e| panic!("state dir {}: {e}", state_dir.display()));
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), r.user.uid);
    let st = r.state_json(&id);
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap().to_string();
    // The init runs the runtime from a sealed memfd copy until its execve: an unprivileged
    // user may not mount the read-only bind of the binary.
    let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:nucleus"),
        "the created init's exe is {}",
        exe.display()
    );

    r.nucleus(&["start", &id]).ok();
    assert_eq!(r.state_json(&id)["status"], "running");
    // Outside: the container's root is the user on the host, in a user namespace of its
    // own, in the host's network namespace.
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(
        status_field(&status, "Uid")
            .unwrap()
            .split_whitespace()
            .next(),
        Some(r.user.uid.to_string().as_str()),
        "{status}"
    );
    assert_ne!(ns_link(&pid, "user"), ns_link("self", "user"));
    assert_eq!(ns_link(&pid, "net"), ns_link("self", "net"));
    // No cgroup of its own where the user may make none (this host and the hack/vm guest
    // delegate none to it): the init stays in the cgroup of the runtime's caller.
    let own_cgroup = fs::read_to_string("/proc/self/cgroup").unwrap();
    let parent = own_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .or_else(|| own_cgroup.lines().find_map(|l| l.split(":pids:").nth(1)))
        .expect("a pids or cgroup2 line in /proc/self/cgroup")
        .to_string();
    let init_cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        !init_cgroup.contains(&id),
        "a cgroup was made for the container: {init_cgroup}"
    );
    assert!(
        init_cgroup.lines().any(|l| l.ends_with(&parent)),
        "init cgroups {init_cgroup} do not include the caller's {parent}"
    );

    // Inside: root, mapped to the user alone, setgroups denied (the kernel's rule for an
    // unprivileged gid_map); an exec'd process holds only its stdio.
    let out = r
        .nucleus(&[
            "exec",
            &id,
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; ls /proc/self/fd",
        ])
        .ok();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0"], "{out}");
    assert_eq!(lines[1], ["0", &r.user.uid.to_string(), "1"], "{out}");
    assert_eq!(lines[2], ["0", &r.user.gid.to_string(), "1"], "{out}");
    assert_eq!(lines[3], ["deny"], "{out}");
    // 0 1 2 and the directory ls reads.
    assert_eq!(lines[4..].len(), 4, "fds of an exec'd process: {out}");

    // ps finds the container's processes without a cgroup (by its pid namespace).
    r.nucleus(&["exec", "-d", &id, "sleep", "300"]).ok();
    let ps = r.nucleus(&["ps", "--format", "json", &id]).ok();
    let pids: Vec<i64> = serde_json::from_str(&ps.stdout).expect("ps JSON");
    assert_eq!(pids.len(), 2, "{ps}");
    assert!(pids.contains(&pid.parse().unwrap()), "{ps}");
    // list: the container, owned by the user.
    let list = r.nucleus(&["list", "--format", "json"]).ok();
    let entries: Value = serde_json::from_str(&list.stdout).expect("list JSON");
    let entry = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not listed\n{list}"));
    assert_eq!(entry["owner"], r.user.name.as_str(), "{list}");
    assert_eq!(entry["status"], "running", "{list}");

    r.nucleus(&["kill", "--all", &id, "KILL"]).ok();
    r.wait_stopped(&id);
    r.nucleus(&["delete", &id]).ok();
    assert!(!state_dir.exists(), "state dir left after delete");
    r.nucleus(&["state", &id]).fails();
    r.assert_nothing_left();
}

#[test]
fn run_foreground_and_detached() {
    let mut r = Rootless::new();
    let fg = r.id("fg");
    let config = rootless_config(&r, &["sh", "-c", "echo out-$(id -u); exit 3"]);
    r.write_config(&config);
    let out = r.nucleus(&["run", &fg]);
    assert_eq!(out.code(), 3, "run's status is the container's\n{out}");
    assert_eq!(out.stdout.trim(), "out-0", "{out}");
    // A foreground run deletes its container.
    r.nucleus(&["state", &fg]).fails();

    let bg = r.id("bg");
    let config = rootless_config(&r, &["sleep", "600"]);
    r.write_config(&config);
    r.detached(&r.runtime, &["run", "-d", &bg]).ok();
    assert_eq!(r.state_json(&bg)["status"], "running");
    let pid = i32::try_from(r.state_json(&bg)["pid"].as_i64().unwrap()).unwrap();
    assert!(pid_alive(pid));
    // delete --force of a running container: the process goes too.
    r.nucleus(&["delete", "--force", &bg]).ok();
    assert!(
        !pid_alive(pid),
        "the container's init survived delete --force"
    );
    r.assert_nothing_left();
}

#[test]
fn subordinate_ranges_through_newuidmap_as_runc() {
    let mut r = Rootless::new();
    let data = r.user_dir("data");
    // The mount point: the rootfs is root's, which the container's root (the user) is not.
    fs::create_dir(r.bundle().join("rootfs/data")).unwrap();
    let (su, sg) = (r.user.subuid, r.user.subgid);
    let mut config = rootless_config(
        &r,
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; \
             touch /data/f && chown 1000:1000 /data/f && stat -c '%u:%g' /data/f; rm /data/f",
        ],
    );
    config["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": r.user.uid, "size": 1},
        {"containerID": 1, "hostID": su.0, "size": su.1}
    ]);
    config["linux"]["gidMappings"] = json!([
        {"containerID": 0, "hostID": r.user.gid, "size": 1},
        {"containerID": 1, "hostID": sg.0, "size": sg.1}
    ]);
    // chown needs CAP_CHOWN (in the container's user namespace).
    for set in ["bounding", "effective", "permitted"] {
        config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_CHOWN"));
    }
    config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/data", "type": "bind", "source": data, "options": ["rbind", "rw"]
    }));
    r.write_config(&config);
    let ours = r.id("ranges");
    let out = r.nucleus(&["run", &ours]).ok();
    let want = format!(
        "0 {uid} 1\n1 {} {}\n0 {gid} 1\n1 {} {}\n1000:1000",
        su.0,
        su.1,
        sg.0,
        sg.1,
        uid = r.user.uid,
        gid = r.user.gid
    );
    let norm = |s: &str| -> String {
        s.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(norm(&out.stdout), want, "{out}");
    // Outside, the file chowned to 1000 belonged to subordinate id start + 999 (seen here
    // through a second run that keeps it).
    config["process"]["args"] = json!(["sh", "-c", "touch /data/g && chown 1000:1000 /data/g"]);
    r.write_config(&config);
    let keep = r.id("keep");
    r.nucleus(&["run", &keep]).ok();
    let meta = fs::metadata(data.join("g")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.gid()), (su.0 + 999, sg.0 + 999));
    fs::remove_file(data.join("g")).unwrap();

    // runc, run by the same user on the same config, sees the same.
    config["process"]["args"] = json!([
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; \
         touch /data/f && chown 1000:1000 /data/f && stat -c '%u:%g' /data/f; rm /data/f"
    ]);
    r.write_config(&config);
    let theirs = r.id("ranges-runc");
    let runc = r.runc(&["run", &theirs]).ok();
    assert_eq!(norm(&runc.stdout), norm(&out.stdout), "{runc}");
    r.assert_nothing_left();
}

#[test]
fn limits_without_a_cgroup_fail_as_runc() {
    let mut r = Rootless::new();
    let mut config = rootless_config(&r, &["true"]);
    config["linux"]["resources"] = json!({"memory": {"limit": 64 * 1024 * 1024}});
    r.write_config(&config);
    let theirs = r.id("limit-runc");
    r.runc(&["run", &theirs]).fails();
    let ours = r.id("limit");
    let out = r.nucleus(&["run", &ours]).fails();
    assert!(
        out.stderr.contains("rootless") && out.stderr.contains("cgroup"),
        "the error says why: {out}"
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {out}");
    r.assert_nothing_left();

    // Device rules need privilege: not applied, with a warning, as runc ignores them.
    config["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    r.write_config(&config);
    let dev = r.id("devices");
    let out = r.nucleus(&["run", &dev]).ok();
    assert!(out.stderr.contains("devices not applied"), "{out}");
    let dev_runc = r.id("devices-runc");
    r.runc(&["run", &dev_runc]).ok();
    r.assert_nothing_left();
}

#[test]
fn pause_without_a_freezer_fails_as_runc() {
    let mut r = Rootless::new();
    let config = rootless_config(&r, &["sleep", "600"]);
    r.write_config(&config);
    let theirs = r.id("pause-runc");
    r.detached(&reference(), &["run", "-d", &theirs]).ok();
    r.runc(&["pause", &theirs]).fails();
    r.runc(&["delete", "--force", &theirs]).ok();

    let ours = r.id("pause");
    r.detached(&r.runtime, &["run", "-d", &ours]).ok();
    let out = r.nucleus(&["pause", &ours]).fails();
    assert!(out.stderr.contains("freezer"), "{out}");
    // The container runs on, unfrozen.
    assert_eq!(r.state_json(&ours)["status"], "running");
    r.nucleus(&["resume", &ours]).fails();
    r.nucleus(&["delete", "--force", &ours]).ok();
    r.assert_nothing_left();
}

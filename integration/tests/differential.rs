//! Differential tests: the same bundle under the runtime under test and the reference
//! runtime (runc); what the container sees must be the same.

use nucleus_integration::*;
use serde_json::json;

/// Runs the same config under both runtimes; fails when there is no reference.
fn both(name: &str, edit: &dyn Fn(&mut Container)) -> (Output, Output) {
    let reference = reference();
    let mut ours = Container::new(&format!("diff-{name}"));
    let mut theirs = Container::with_runtime(&reference, &format!("diff-ref-{name}"));
    edit(&mut ours);
    edit(&mut theirs);
    // Everything the container might print about itself that is id-specific is not compared;
    // the cgroup path carries the id, so it is set the same way (relative to each id).
    (ours.run(), theirs.run())
}

#[track_caller]
fn same(name: &str, edit: &dyn Fn(&mut Container), norm: &dyn Fn(&str) -> String) {
    let (ours, theirs) = both(name, edit);
    assert_eq!(
        ours.code, theirs.code,
        "{name}: exit codes differ\nours:\n{ours}\nreference:\n{theirs}"
    );
    let (a, b) = (norm(&ours.stdout), norm(&theirs.stdout));
    // A normaliser that throws everything away would make the comparison vacuous.
    assert!(
        theirs.stdout.trim().is_empty() || !b.trim().is_empty(),
        "{name}: normalised reference output is empty\n{theirs}"
    );
    assert_eq!(
        a, b,
        "{name}: output differs\nours:\n{ours}\nreference:\n{theirs}"
    );
}

fn ident(s: &str) -> String {
    s.to_string()
}

fn sorted_lines(s: &str) -> String {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort();
    v.join("\n")
}

const STATUS_FIELDS: &[&str] = &[
    "Uid",
    "Gid",
    "Groups",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Seccomp",
];

fn status_subset(s: &str) -> String {
    STATUS_FIELDS
        .iter()
        .map(|f| format!("{f}: {}", status_field(s, f).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// mount point, type and per-mount options, sorted; the root's source differs per bundle.
fn mounts(s: &str) -> String {
    let mut v: Vec<String> = parse_mountinfo(s)
        .into_iter()
        .map(|(dest, ty, opts, _)| {
            // Deliberate difference: with a read-only `cgroup` mount on a v1 host, nucleus
            // also makes the tmpfs holding the hierarchies read-only; runc leaves it writable.
            // The hierarchies themselves are compared as they are.
            if dest == "/sys/fs/cgroup" && ty == "tmpfs" {
                let rest = opts.split_once(',').map_or("", |(_, r)| r);
                return format!("{dest} {ty} (ro|rw),{rest}");
            }
            format!("{dest} {ty} {opts}")
        })
        .collect();
    v.sort();
    v.join("\n")
}

#[test]
fn diff_id_default_user() {
    same(
        "id",
        &|c| {
            c.args(&["id"]);
        },
        &ident,
    );
}

#[test]
fn diff_id_user_with_groups() {
    same(
        "id-groups",
        &|c| {
            c.config()["process"]["user"] =
                json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 65534]});
            c.args(&["id"]);
        },
        &ident,
    );
}

#[test]
fn diff_status_caps_default() {
    same(
        "caps",
        &|c| {
            c.args(&["cat", "/proc/self/status"]);
        },
        &status_subset,
    );
}

#[test]
fn diff_status_caps_custom_non_root() {
    same(
        "caps-user",
        &|c| {
            c.config()["process"]["user"] = json!({"uid": 1000, "gid": 1000, "umask": 18});
            c.config()["process"]["noNewPrivileges"] = json!(false);
            c.config()["process"]["capabilities"] = json!({
                "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_ADMIN"],
                "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
                "effective": ["CAP_KILL"],
                "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
                "ambient": ["CAP_NET_RAW"]
            });
            c.args(&["cat", "/proc/self/status"]);
        },
        &status_subset,
    );
}

#[test]
fn diff_hostname() {
    same(
        "hostname",
        &|c| {
            c.config()["hostname"] = json!("diff-host");
            c.args(&["hostname"]);
        },
        &ident,
    );
}

#[test]
fn diff_ulimit() {
    same(
        "ulimit",
        &|c| {
            c.config()["process"]["rlimits"] = json!([
                {"type": "RLIMIT_NOFILE", "soft": 777, "hard": 888},
                {"type": "RLIMIT_STACK", "soft": 4194304, "hard": 8388608}
            ]);
            c.sh("ulimit -a; ulimit -Ha");
        },
        &ident,
    );
}

#[test]
fn diff_mounts_default() {
    same(
        "mounts",
        &|c| {
            c.args(&["cat", "/proc/self/mountinfo"]);
        },
        &mounts,
    );
}

#[test]
fn diff_mounts_writable_root_and_extra() {
    same(
        "mounts-extra",
        &|c| {
            c.config()["root"]["readonly"] = json!(false);
            c.add_mount(json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=2m", "noexec", "nosuid"]}));
            c.add_mount(json!({"destination": "/etc-ro", "type": "bind", "source": "/etc", "options": ["rbind", "ro", "nodev"]}));
            c.sh("cat /proc/self/mountinfo");
        },
        &|s| {
            // The bind of the host /etc carries the host's submounts, if any; keep ours only.
            mounts(s)
                .lines()
                .filter(|l| !l.starts_with("/etc-ro/"))
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
}

#[test]
fn diff_dev() {
    same(
        "dev",
        &|c| {
            c.sh("cd /dev && for f in * pts/* shm mqueue; do stat -c '%N|%F|%a|%u:%g|%t,%T' \"$f\"; done");
        },
        &sorted_lines,
    );
}

#[test]
fn diff_ls_dev() {
    same(
        "ls-dev",
        &|c| {
            c.sh("ls -l /dev /dev/pts");
        },
        &|s| {
            // Times differ between the two runs: keep type/mode, links, owner, group, size
            // or device numbers, and the name.
            s.lines()
                .map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    if f.len() < 9 {
                        return l.to_string();
                    }
                    let dev = f[0].starts_with('c') || f[0].starts_with('b');
                    let (size, rest) = if dev {
                        (format!("{} {}", f[4], f[5]), 9)
                    } else {
                        (f[4].to_string(), 8)
                    };
                    format!(
                        "{} {} {} {} {} {}",
                        f[0],
                        f[1],
                        f[2],
                        f[3],
                        size,
                        f[rest.min(f.len() - 1)..].join(" ")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
}

#[test]
fn diff_env_and_cwd() {
    same(
        "env",
        &|c| {
            c.config()["process"]["env"] = json!([DEFAULT_PATH, "FOO=bar"]);
            c.config()["process"]["cwd"] = json!("/tmp");
            c.sh("env | sort; pwd; umask");
        },
        &ident,
    );
}

#[test]
fn diff_masked_and_readonly() {
    same(
        "masked",
        &|c| {
            c.sh(
                "ls /proc/acpi /sys/firmware 2>&1; wc -c < /proc/keys; wc -c < /proc/timer_list; \
              touch /proc/sys/kernel/x 2>&1; echo 1 > /proc/sysrq-trigger 2>&1; echo done",
            );
        },
        &ident,
    );
}

#[test]
fn diff_exit_codes() {
    for (i, script) in [
        "exit 0",
        "exit 3",
        "exit 255",
        "kill -KILL $$",
        "kill -TERM $$",
    ]
    .iter()
    .enumerate()
    {
        same(
            &format!("exit-{i}"),
            &|c| {
                c.namespaces(json!([{"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]));
                c.sh(script);
            },
            &ident,
        );
    }
}

#[test]
fn diff_missing_executable() {
    let (ours, theirs) = both("noexec", &|c| {
        c.args(&["/no/such/program"]);
    });
    assert!(
        !ours.success() && !theirs.success(),
        "ours:\n{ours}\nreference:\n{theirs}"
    );
}

#[test]
fn diff_user_namespace_view() {
    same(
        "userns",
        &|c| {
            c.user_namespace(300000, 300000);
            c.sh("cat /proc/self/uid_map /proc/self/gid_map; id; grep Cap /proc/self/status; ls -ln / | awk '{print $3, $4, $NF}'");
        },
        &ident,
    );
}

#[test]
fn diff_missing_cwd() {
    same(
        "cwd-missing",
        &|c| {
            c.config()["root"]["readonly"] = json!(false);
            c.config()["process"]["cwd"] = json!("/does/not/exist");
            c.args(&["pwd"]);
        },
        &ident,
    );
}

#[test]
fn diff_rlimit_soft_above_hard() {
    let (ours, theirs) = both("rlimit-inverted", &|c| {
        c.config()["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]);
    });
    assert_eq!(
        ours.success(),
        theirs.success(),
        "ours:\n{ours}\nreference:\n{theirs}"
    );
}

#[test]
fn diff_home_from_passwd() {
    same(
        "home",
        &|c| {
            c.config()["process"]["user"] = json!({"uid": 1000, "gid": 1000});
            c.config()["process"]["env"] = json!([DEFAULT_PATH]);
            c.sh("echo \"HOME=$HOME\"");
        },
        &ident,
    );
}

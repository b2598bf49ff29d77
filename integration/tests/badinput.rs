//! The bad-input corpus: configs and command lines a runtime must refuse at `create`, each
//! with a non-zero exit, one error line naming the problem, and nothing left behind (no
//! state dir under --root, no cgroup, no process, no mount). Where runc is right it must
//! refuse too (differential); the cases where it is not are listed as runc gaps and
//! announced with a NOTICE line. A property test then mutates a valid config at random.

use nucleus_integration::*;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Upper bound for one command of the corpus: a hang is a failure.
const CASE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether runc must refuse the case too.
#[derive(Clone, Copy)]
enum Ref {
    /// runc refuses it as well: compared.
    Same,
    /// runc accepts it (or hangs on it), wrongly: not compared, announced.
    Gap(&'static str),
}

type Edit = Box<dyn Fn(&mut Value, &Path)>;

enum Input {
    /// The default config, edited.
    Config(Edit),
    /// config.json replaced by these bytes.
    Raw(Vec<u8>),
    /// config.json made something else than a regular file.
    File(fn(&Path)),
}

struct Case {
    name: &'static str,
    /// A word the error line must contain (case-insensitive).
    keyword: &'static str,
    reference: Ref,
    input: Input,
}

fn case(
    name: &'static str,
    keyword: &'static str,
    reference: Ref,
    edit: impl Fn(&mut Value, &Path) + 'static,
) -> Case {
    Case {
        name,
        keyword,
        reference,
        input: Input::Config(Box::new(edit)),
    }
}

/// A case that sets one JSON pointer of the default config to `value`.
fn set(name: &'static str, keyword: &'static str, r: Ref, ptr: &'static str, value: Value) -> Case {
    case(name, keyword, r, move |v, _| put(v, ptr, value.clone()))
}

/// Sets `ptr` (creating missing parent objects) to `value`.
fn put(v: &mut Value, ptr: &str, value: Value) {
    let mut cur = v;
    let parts: Vec<&str> = ptr.trim_start_matches('/').split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if let Value::Array(a) = cur {
            let idx: usize = p.parse().expect("array index in pointer");
            if last {
                a[idx] = value;
                return;
            }
            cur = &mut a[idx];
            continue;
        }
        if !cur.is_object() {
            *cur = json!({});
        }
        let obj = cur.as_object_mut().unwrap();
        if last {
            obj.insert(p.to_string(), value);
            return;
        }
        cur = obj.entry(p.to_string()).or_insert_with(|| json!({}));
    }
}

fn remove(v: &mut Value, ptr: &str) {
    let (parent, key) = ptr.rsplit_once('/').unwrap();
    if let Some(o) = v.pointer_mut(parent).and_then(Value::as_object_mut) {
        o.remove(key);
    }
}

fn push(v: &mut Value, ptr: &str, item: Value) {
    v.pointer_mut(ptr)
        .and_then(Value::as_array_mut)
        .unwrap_or_else(|| panic!("{ptr} is not an array"))
        .push(item);
}

fn with_ns(v: &mut Value, ty: &str) {
    push(v, "/linux/namespaces", json!({"type": ty}));
}

fn userns(v: &mut Value) {
    with_ns(v, "user");
    let m = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    v["linux"]["uidMappings"] = m.clone();
    v["linux"]["gidMappings"] = m;
}

fn seccomp(rule: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
}

fn hook(path: &str) -> Value {
    json!([{"path": path}])
}

/// A capability missing from this process's bounding set (the runtime runs with the same
/// one), if any: root on some machines lacks e.g. CAP_SYS_RESOURCE.
fn cap_missing_from_bounding() -> Option<&'static str> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let bnd = u64::from_str_radix(&status_field(&status, "CapBnd")?, 16).ok()?;
    let last: usize = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    CAPABILITIES
        .iter()
        .enumerate()
        .take(last + 1)
        .find(|(i, _)| bnd & (1 << i) == 0)
        .map(|(_, n)| *n)
}

const GAP_CAP_NAME: Ref =
    Ref::Gap("capability names that are no capability (runc warns and ignores them)");
const GAP_TIME: Ref =
    Ref::Gap("linux.timeOffsets (runc 1.1 ignores them without a time namespace)");
const GAP_RDT: Ref = Ref::Gap("refusing linux.intelRdt it cannot apply");
const GAP_NUL: Ref = Ref::Gap("NUL bytes in strings (runc cuts them or fails only at exec)");
const GAP_HOOK: Ref = Ref::Gap("validation of hooks before create (runc 1.1 runs them as given)");
const GAP_NUCLEUS: Ref = Ref::Gap("nucleus's own run.nucleus.* annotations");
const GAP_FILE: Ref =
    Ref::Gap("a config.json that is not a regular file (runc blocks or reads forever)");
const GAP_TYPE: Ref = Ref::Gap("this type check (Go's decoder accepts the value)");
const GAP_DEPTH: Ref = Ref::Gap("a nesting-depth limit on config.json");
const GAP_DOMAIN: Ref = Ref::Gap("domainname (runc 1.1 does not know it)");
const GAP_MAPS: Ref = Ref::Gap("id mappings without a user namespace (runc 1.1 ignores them)");
const GAP_SECCOMP: Ref = Ref::Gap("this seccomp profile check (runc's libseccomp accepts it)");

fn process_cases() -> Vec<Case> {
    use Ref::Same;
    let mut v = vec![
        set(
            "args-empty",
            "process.args",
            Same,
            "/process/args",
            json!([]),
        ),
        set(
            "args-string",
            "process.args",
            Same,
            "/process/args",
            json!("true"),
        ),
        set(
            "args-number",
            "process.args",
            Same,
            "/process/args",
            json!([1]),
        ),
        set(
            "args-null",
            "process.args",
            Same,
            "/process/args",
            Value::Null,
        ),
        case("args-missing", "process.args", Same, |v, _| {
            remove(v, "/process/args")
        }),
        set(
            "exe-not-in-path",
            "executable file not found",
            Same,
            "/process/args",
            json!(["no-such-prog"]),
        ),
        set(
            "exe-empty-name",
            "executable file not found",
            Same,
            "/process/args",
            json!([""]),
        ),
        set(
            "exe-abs-missing",
            "no such file",
            Same,
            "/process/args",
            json!(["/no/such/prog"]),
        ),
        set(
            "exe-is-dir",
            "permission denied",
            Same,
            "/process/args",
            json!(["/bin"]),
        ),
        set(
            "exe-not-executable",
            "permission denied",
            Same,
            "/process/args",
            json!(["/etc/passwd"]),
        ),
        set(
            "exe-path-empty",
            "executable file not found",
            Same,
            "/process/env",
            json!(["PATH=/nonexistent", "X=1"]),
        ),
        set(
            "exe-relative-missing",
            "no such file",
            Same,
            "/process/args",
            json!(["./nope"]),
        ),
        set(
            "args-nul",
            "NUL",
            GAP_NUL,
            "/process/args",
            json!(["echo", "a\u{0}b"]),
        ),
        set(
            "exe-nul",
            "NUL",
            GAP_NUL,
            "/process/args",
            json!(["tr\u{0}ue"]),
        ),
        set(
            "env-string",
            "process.env",
            Same,
            "/process/env",
            json!("PATH=/bin"),
        ),
        set(
            "env-number",
            "process.env",
            Same,
            "/process/env",
            json!([5]),
        ),
        set(
            "env-no-equals",
            "KEY=VALUE",
            Ref::Gap("env entries without '=' (runc 1.1 passes them on)"),
            "/process/env",
            json!(["PATH=/bin", "NOEQUALS"]),
        ),
        set(
            "env-nul",
            "NUL",
            GAP_NUL,
            "/process/env",
            json!(["PATH=/bin", "A=b\u{0}c"]),
        ),
        set(
            "cwd-relative",
            "process.cwd",
            Same,
            "/process/cwd",
            json!("tmp"),
        ),
        set("cwd-empty", "process.cwd", Same, "/process/cwd", json!("")),
        set("cwd-number", "process.cwd", Same, "/process/cwd", json!(7)),
        case("cwd-missing", "cwd", Same, |v, _| remove(v, "/process/cwd")),
        set(
            "cwd-file",
            "not a directory",
            Same,
            "/process/cwd",
            json!("/etc/passwd"),
        ),
        set(
            "cwd-nul",
            "NUL",
            GAP_NUL,
            "/process/cwd",
            json!("/tm\u{0}p"),
        ),
        set(
            "cwd-huge",
            "process.cwd",
            Same,
            "/process/cwd",
            json!("r".repeat(1 << 20)),
        ),
        set(
            "terminal-string",
            "terminal",
            Same,
            "/process/terminal",
            json!("yes"),
        ),
        set(
            "terminal-no-socket",
            "console",
            Same,
            "/process/terminal",
            json!(true),
        ),
        set("process-string", "process", Same, "/process", json!("sh")),
        set(
            "user-string",
            "process.user",
            Same,
            "/process/user",
            json!("root"),
        ),
        set("uid-string", "uid", Same, "/process/user/uid", json!("0")),
        set("uid-negative", "uid", Same, "/process/user/uid", json!(-1)),
        set(
            "uid-2p32",
            "uid",
            Same,
            "/process/user/uid",
            json!(4294967296u64),
        ),
        set(
            "uid-max",
            "uid",
            Same,
            "/process/user/uid",
            json!(4294967295u64),
        ),
        set("uid-float", "uid", Same, "/process/user/uid", json!(1.5)),
        set(
            "uid-above-int",
            "uid",
            Same,
            "/process/user/uid",
            json!(2147483648u64),
        ),
        set("gid-negative", "gid", Same, "/process/user/gid", json!(-1)),
        set(
            "gid-max",
            "gid",
            Same,
            "/process/user/gid",
            json!(4294967295u64),
        ),
        set(
            "gids-string",
            "additionalGids",
            Same,
            "/process/user/additionalGids",
            json!("1,2"),
        ),
        set(
            "gids-max",
            "additionalGids",
            Same,
            "/process/user/additionalGids",
            json!([1, 4294967295u64]),
        ),
        set(
            "gids-negative",
            "additionalGids",
            Same,
            "/process/user/additionalGids",
            json!([-5]),
        ),
        set(
            "umask-string",
            "umask",
            Same,
            "/process/user/umask",
            json!("022"),
        ),
        set(
            "umask-negative",
            "umask",
            Same,
            "/process/user/umask",
            json!(-1),
        ),
        set(
            "username-number",
            "username",
            GAP_TYPE,
            "/process/user/username",
            json!(3),
        ),
        set(
            "caps-string",
            "capabilities",
            Same,
            "/process/capabilities",
            json!("all"),
        ),
        set(
            "caps-bounding-string",
            "bounding",
            Same,
            "/process/capabilities/bounding",
            json!("CAP_KILL"),
        ),
        set(
            "caps-bounding-number",
            "bounding",
            Same,
            "/process/capabilities/bounding",
            json!([12]),
        ),
        set(
            "caps-bounding-test",
            "CAP_TEST",
            GAP_CAP_NAME,
            "/process/capabilities/bounding",
            json!(["CAP_KILL", "CAP_TEST"]),
        ),
        set(
            "caps-effective-test",
            "CAP_TEST",
            GAP_CAP_NAME,
            "/process/capabilities/effective",
            json!(["CAP_TEST"]),
        ),
        set(
            "caps-permitted-test",
            "CAP_TEST",
            GAP_CAP_NAME,
            "/process/capabilities/permitted",
            json!(["CAP_TEST"]),
        ),
        set(
            "caps-inheritable-test",
            "CAP_TEST",
            GAP_CAP_NAME,
            "/process/capabilities/inheritable",
            json!(["CAP_TEST"]),
        ),
        set(
            "caps-ambient-test",
            "CAP_TEST",
            GAP_CAP_NAME,
            "/process/capabilities/ambient",
            json!(["CAP_TEST"]),
        ),
        set(
            "caps-empty-name",
            "is not a capability",
            GAP_CAP_NAME,
            "/process/capabilities/bounding",
            json!([""]),
        ),
        set(
            "caps-huge-name",
            "is not a capability",
            GAP_CAP_NAME,
            "/process/capabilities/bounding",
            json!(["CAP_".to_string() + &"X".repeat(1 << 20)]),
        ),
        set(
            "caps-effective-not-permitted",
            "CAP_SYS_ADMIN",
            Same,
            "/process/capabilities/effective",
            json!(["CAP_KILL", "CAP_SYS_ADMIN"]),
        ),
        set(
            "rlimits-string",
            "rlimits",
            Same,
            "/process/rlimits",
            json!("RLIMIT_NOFILE"),
        ),
        set(
            "rlimit-type-unknown",
            "rlimits",
            Same,
            "/process/rlimits",
            json!([{"type": "RLIMIT_FOO", "hard": 1, "soft": 1}]),
        ),
        set(
            "rlimit-type-missing",
            "rlimits",
            Same,
            "/process/rlimits",
            json!([{"hard": 1, "soft": 1}]),
        ),
        set(
            "rlimit-hard-string",
            "hard",
            Same,
            "/process/rlimits",
            json!([{"type": "RLIMIT_NOFILE", "hard": "1", "soft": 1}]),
        ),
        set(
            "rlimit-hard-negative",
            "hard",
            Same,
            "/process/rlimits",
            json!([{"type": "RLIMIT_NOFILE", "hard": -1, "soft": 1}]),
        ),
        set(
            "rlimit-hard-2p64",
            "hard",
            Same,
            "/process/rlimits",
            json!([{"type": "RLIMIT_NOFILE", "hard": 18446744073709551616.0, "soft": 1}]),
        ),
        set(
            "rlimit-soft-over-hard",
            "rlimit",
            Same,
            "/process/rlimits",
            json!([{"type": "RLIMIT_NOFILE", "hard": 64, "soft": 128}]),
        ),
        set(
            "rlimit-hard-over-own",
            "rlimit",
            Same,
            "/process/rlimits",
            json!([{"type": "RLIMIT_NOFILE", "hard": 99999999u64, "soft": 1024}]),
        ),
        set(
            "rlimit-nproc-soft-over-hard",
            "rlimit",
            Same,
            "/process/rlimits",
            json!([{"type": "RLIMIT_NPROC", "hard": 1, "soft": 2}]),
        ),
        set(
            "nnp-string",
            "noNewPrivileges",
            Same,
            "/process/noNewPrivileges",
            json!("true"),
        ),
        set(
            "oom-string",
            "oomScoreAdj",
            Same,
            "/process/oomScoreAdj",
            json!("5"),
        ),
        set(
            "oom-out-of-range",
            "oom_score_adj",
            Same,
            "/process/oomScoreAdj",
            json!(5000),
        ),
        set(
            "oom-huge",
            "oomScoreAdj",
            Same,
            "/process/oomScoreAdj",
            json!(1u64 << 40),
        ),
        set(
            "apparmor-without-lsm",
            "AppArmor",
            Same,
            "/process/apparmorProfile",
            json!("nucleus-test"),
        ),
        set(
            "selinux-label-without-lsm",
            "SELinux",
            Same,
            "/process/selinuxLabel",
            json!("system_u:system_r:container_t:s0"),
        ),
        set(
            "mount-label-without-lsm",
            "SELinux",
            Ref::Gap("linux.mountLabel without SELinux (runc 1.1 ignores it)"),
            "/linux/mountLabel",
            json!("system_u:object_r:container_file_t:s0"),
        ),
        set(
            "console-size-string",
            "consoleSize",
            Same,
            "/process/consoleSize",
            json!("80x24"),
        ),
        set(
            "io-priority-class",
            "ioPriority",
            Ref::Gap("process.ioPriority (runc 1.1 does not know it)"),
            "/process/ioPriority",
            json!({"class": "IOPRIO_CLASS_FOO", "priority": 0}),
        ),
        set(
            "scheduler-policy",
            "scheduler",
            Ref::Gap("process.scheduler (runc 1.1 does not know it)"),
            "/process/scheduler",
            json!({"policy": "SCHED_FOO"}),
        ),
    ];
    v.push(case(
        "gids-too-many",
        "supplementary groups",
        Same,
        |v, _| {
            v["process"]["user"]["additionalGids"] = json!((0..70000).collect::<Vec<u32>>());
        },
    ));
    if let Some(cap) = cap_missing_from_bounding() {
        v.push(set(
            "caps-permitted-not-in-own-bounding",
            cap,
            Same,
            "/process/capabilities/permitted",
            json!([cap]),
        ));
        v.push(set(
            "caps-effective-not-in-own-bounding",
            cap,
            Same,
            "/process/capabilities/effective",
            json!([cap]),
        ));
    }
    v
}

fn config_cases() -> Vec<Case> {
    use Ref::Same;
    vec![
        Case {
            name: "empty-file",
            keyword: "config.json",
            reference: Same,
            input: Input::Raw(Vec::new()),
        },
        Case {
            name: "not-json",
            keyword: "config.json",
            reference: Same,
            input: Input::Raw(b"{\"ociVersion\": ".to_vec()),
        },
        Case {
            name: "top-array",
            keyword: "config.json",
            reference: Same,
            input: Input::Raw(b"[]".to_vec()),
        },
        Case {
            name: "top-null",
            keyword: "config.json",
            reference: Same,
            input: Input::Raw(b"null".to_vec()),
        },
        Case {
            name: "top-string",
            keyword: "config.json",
            reference: Same,
            input: Input::Raw(b"\"config\"".to_vec()),
        },
        Case {
            name: "binary-garbage",
            keyword: "config.json",
            reference: Same,
            input: Input::Raw((0u8..=255).cycle().take(4096).collect()),
        },
        Case {
            name: "deep-nesting",
            keyword: "recursion",
            reference: GAP_DEPTH,
            input: Input::Raw(
                format!("{{\"x\":{}{}}}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            ),
        },
        Case {
            name: "config-fifo",
            keyword: "FIFO",
            reference: GAP_FILE,
            input: Input::File(mkfifo),
        },
        Case {
            name: "config-device",
            keyword: "device",
            reference: GAP_FILE,
            input: Input::File(|p| std::os::unix::fs::symlink("/dev/zero", p).unwrap()),
        },
        Case {
            name: "config-dir",
            keyword: "directory",
            reference: Same,
            input: Input::File(|p| fs::create_dir(p).unwrap()),
        },
        Case {
            name: "config-missing",
            keyword: "config.json",
            reference: Same,
            input: Input::File(|_| {}),
        },
        Case {
            name: "config-symlink-loop",
            keyword: "config.json",
            reference: Same,
            input: Input::File(|p| std::os::unix::fs::symlink("config.json", p).unwrap()),
        },
        Case {
            name: "config-too-large",
            keyword: "too large",
            reference: Ref::Gap("a size limit on config.json"),
            input: Input::File(|p| {
                let f = fs::File::create(p).unwrap();
                f.set_len(65 << 20).unwrap();
            }),
        },
        set(
            "version-missing",
            "ociVersion",
            Ref::Gap("a missing ociVersion"),
            "/ociVersion",
            Value::Null,
        ),
        set(
            "version-number",
            "ociVersion",
            Same,
            "/ociVersion",
            json!(1),
        ),
        set(
            "version-empty",
            "ociVersion",
            Ref::Gap("an empty ociVersion"),
            "/ociVersion",
            json!(""),
        ),
        set("root-string", "root", Same, "/root", json!("rootfs")),
        case("root-missing", "root", Same, |v, _| remove(v, "/root")),
        set(
            "root-path-empty",
            "root.path",
            Same,
            "/root/path",
            json!(""),
        ),
        set(
            "root-path-missing",
            "does not exist",
            Same,
            "/root/path",
            json!("no-such-rootfs"),
        ),
        set(
            "root-path-file",
            "not a directory",
            Same,
            "/root/path",
            json!("rootfs/etc/passwd"),
        ),
        set("root-path-number", "root", Same, "/root/path", json!(1)),
        set(
            "root-path-nul",
            "NUL",
            GAP_NUL,
            "/root/path",
            json!("root\u{0}fs"),
        ),
        set(
            "root-readonly-string",
            "readonly",
            Same,
            "/root/readonly",
            json!("yes"),
        ),
        set(
            "hostname-no-uts",
            "hostname",
            Same,
            "/linux/namespaces",
            json!([{"type": "mount"}, {"type": "pid"}]),
        ),
        set("hostname-number", "hostname", Same, "/hostname", json!(5)),
        set(
            "hostname-nul",
            "NUL",
            GAP_NUL,
            "/hostname",
            json!("ho\u{0}st"),
        ),
        set(
            "hostname-too-long",
            "hostname",
            Same,
            "/hostname",
            json!("h".repeat(100)),
        ),
        set(
            "hostname-huge",
            "hostname",
            Same,
            "/hostname",
            json!("h".repeat(1 << 20)),
        ),
        case("domainname-no-uts", "domainname", GAP_DOMAIN, |v, _| {
            v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}]);
            remove(v, "/hostname");
            v["domainname"] = json!("example.org");
        }),
        set(
            "domainname-too-long",
            "domainname",
            GAP_DOMAIN,
            "/domainname",
            json!("d".repeat(100)),
        ),
        set(
            "annotations-string",
            "annotations",
            Same,
            "/annotations",
            json!("a=b"),
        ),
        set(
            "annotation-value-number",
            "annotations",
            Same,
            "/annotations",
            json!({"a": 1}),
        ),
        set(
            "annotation-nucleus-unknown",
            "run.nucleus.seccomp.nope",
            GAP_NUCLEUS,
            "/annotations",
            json!({"run.nucleus.seccomp.nope": "1"}),
        ),
        set(
            "annotation-seccomp-mode",
            "run.nucleus.seccomp.mode",
            GAP_NUCLEUS,
            "/annotations",
            json!({"run.nucleus.seccomp.mode": "bogus"}),
        ),
        case(
            "annotation-huge-and-bad-field",
            "process.cwd",
            Same,
            |v, _| {
                v["annotations"] = json!({"big": "a".repeat(1 << 20)});
                v["process"]["cwd"] = json!("relative");
            },
        ),
        set("hooks-string", "hooks", Same, "/hooks", json!("x")),
        set(
            "hooks-prestart-string",
            "prestart",
            Same,
            "/hooks/prestart",
            json!("/bin/true"),
        ),
        set(
            "hook-path-missing",
            "path",
            Same,
            "/hooks/prestart",
            json!([{"args": ["x"]}]),
        ),
        set(
            "hook-prestart-relative",
            "absolute",
            GAP_HOOK,
            "/hooks/prestart",
            hook("bin/true"),
        ),
        set(
            "hook-create-runtime-relative",
            "absolute",
            GAP_HOOK,
            "/hooks/createRuntime",
            hook("true"),
        ),
        set(
            "hook-create-container-relative",
            "absolute",
            GAP_HOOK,
            "/hooks/createContainer",
            hook("./x"),
        ),
        set(
            "hook-start-container-relative",
            "absolute",
            GAP_HOOK,
            "/hooks/startContainer",
            hook("x"),
        ),
        set(
            "hook-poststart-relative",
            "absolute",
            GAP_HOOK,
            "/hooks/poststart",
            hook("x"),
        ),
        set(
            "hook-poststop-relative",
            "absolute",
            GAP_HOOK,
            "/hooks/poststop",
            hook("x"),
        ),
        set(
            "hook-prestart-not-found",
            "/no/such/hook",
            Same,
            "/hooks/prestart",
            hook("/no/such/hook"),
        ),
        set(
            "hook-prestart-fails",
            "prestart",
            Same,
            "/hooks/prestart",
            hook("/bin/false"),
        ),
        set(
            "hook-create-runtime-fails",
            "createRuntime",
            Same,
            "/hooks/createRuntime",
            hook("/bin/false"),
        ),
        set(
            "hook-create-container-fails",
            "createContainer",
            Same,
            "/hooks/createContainer",
            hook("/bin/false"),
        ),
        set(
            "hook-timeout-zero",
            "timeout",
            GAP_HOOK,
            "/hooks/prestart",
            json!([{"path": "/bin/true", "timeout": 0}]),
        ),
        set(
            "hook-timeout-negative",
            "timeout",
            GAP_HOOK,
            "/hooks/prestart",
            json!([{"path": "/bin/true", "timeout": -1}]),
        ),
        set(
            "hook-timeout-string",
            "timeout",
            Same,
            "/hooks/prestart",
            json!([{"path": "/bin/true", "timeout": "1"}]),
        ),
        set(
            "hook-args-string",
            "args",
            Same,
            "/hooks/prestart",
            json!([{"path": "/bin/true", "args": "x"}]),
        ),
        set(
            "hook-env-number",
            "env",
            Same,
            "/hooks/prestart",
            json!([{"path": "/bin/true", "env": [1]}]),
        ),
        set(
            "hook-path-nul",
            "NUL",
            GAP_NUL,
            "/hooks/prestart",
            hook("/bin/tr\u{0}ue"),
        ),
        set(
            "hook-timeout-expires",
            "timed out",
            GAP_HOOK,
            "/hooks/prestart",
            json!([{"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}]),
        ),
        set("mounts-string", "mounts", Same, "/mounts", json!("/proc")),
        set(
            "mounts-object",
            "mounts",
            Same,
            "/mounts",
            json!({"destination": "/x"}),
        ),
        case("mount-no-destination", "destination", Same, |v, _| {
            push(v, "/mounts", json!({"type": "tmpfs", "source": "tmpfs"}))
        }),
        case("mount-destination-number", "destination", Same, |v, _| {
            push(v, "/mounts", json!({"destination": 5, "type": "tmpfs"}))
        }),
        case("mount-destination-nul", "NUL", GAP_NUL, |v, _| {
            push(
                v,
                "/mounts",
                json!({"destination": "/a\u{0}b", "type": "tmpfs", "source": "tmpfs"}),
            )
        }),
        case(
            "mount-bind-source-missing",
            "/no/such/source",
            Same,
            |v, _| {
                push(
                    v,
                    "/mounts",
                    json!({"destination": "/mnt", "type": "bind", "source": "/no/such/source", "options": ["bind"]}),
                )
            },
        ),
        case("mount-fs-unknown", "nosuchfs", Same, |v, _| {
            push(
                v,
                "/mounts",
                json!({"destination": "/mnt", "type": "nosuchfs", "source": "x"}),
            )
        }),
        case("mount-options-string", "options", Same, |v, _| {
            push(
                v,
                "/mounts",
                json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": "ro"}),
            )
        }),
        case("mount-options-number", "options", Same, |v, _| {
            push(
                v,
                "/mounts",
                json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": [1]}),
            )
        }),
        case("mount-tmpfs-bad-size", "/mnt", Same, |v, _| {
            push(
                v,
                "/mounts",
                json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["size=abc"]}),
            )
        }),
        case("mount-source-nul", "NUL", GAP_NUL, |v, _| {
            push(
                v,
                "/mounts",
                json!({"destination": "/mnt", "type": "bind", "source": "/t\u{0}mp", "options": ["bind"]}),
            )
        }),
        case("mount-type-number", "type", Same, |v, _| {
            push(
                v,
                "/mounts",
                json!({"destination": "/mnt", "type": 1, "source": "x"}),
            )
        }),
        case(
            "mount-dest-huge",
            "too long",
            Ref::Gap("a destination longer than PATH_MAX (runc creates what it can)"),
            |v, _| {
                push(
                    v,
                    "/mounts",
                    json!({"destination": format!("/{}", "d/".repeat(3000)), "type": "tmpfs", "source": "tmpfs"}),
                )
            },
        ),
    ]
}

fn linux_cases() -> Vec<Case> {
    use Ref::Same;
    vec![
        set("linux-string", "linux", Same, "/linux", json!("x")),
        set(
            "namespaces-string",
            "namespaces",
            Same,
            "/linux/namespaces",
            json!("pid"),
        ),
        case("namespace-unknown", "namespaces", Same, |v, _| {
            with_ns(v, "foo")
        }),
        case("namespace-duplicate", "duplicate", Same, |v, _| {
            with_ns(v, "pid")
        }),
        case("namespace-type-number", "namespaces", Same, |v, _| {
            push(v, "/linux/namespaces", json!({"type": 1}))
        }),
        case("namespace-path-relative", "absolute", Same, |v, _| {
            push(
                v,
                "/linux/namespaces",
                json!({"type": "cgroup", "path": "ns/cgroup"}),
            )
        }),
        set(
            "namespace-path-missing",
            "/no/such/ns",
            Same,
            "/linux/namespaces",
            json!([{"type": "mount"}, {"type": "uts"}, {"type": "network", "path": "/no/such/ns"}]),
        ),
        set(
            "namespace-path-not-ns",
            "/etc/passwd",
            Same,
            "/linux/namespaces",
            json!([{"type": "mount"}, {"type": "uts"}, {"type": "network", "path": "/etc/passwd"}]),
        ),
        set(
            "namespace-path-wrong-kind",
            "namespace",
            Same,
            "/linux/namespaces",
            json!([{"type": "mount"}, {"type": "uts"}, {"type": "network", "path": "/proc/self/ns/ipc"}]),
        ),
        set(
            "namespace-path-nul",
            "NUL",
            GAP_NUL,
            "/linux/namespaces",
            json!([{"type": "mount"}, {"type": "uts"}, {"type": "network", "path": "/proc/self/ns/n\u{0}et"}]),
        ),
        set(
            "uid-mappings-no-userns",
            "user namespace",
            GAP_MAPS,
            "/linux/uidMappings",
            json!([{"containerID": 0, "hostID": 100000, "size": 1}]),
        ),
        set(
            "gid-mappings-no-userns",
            "user namespace",
            GAP_MAPS,
            "/linux/gidMappings",
            json!([{"containerID": 0, "hostID": 100000, "size": 1}]),
        ),
        case("uid-mapping-string", "uidMappings", Same, |v, _| {
            userns(v);
            v["linux"]["uidMappings"] = json!([{"containerID": "0", "hostID": 100000, "size": 1}]);
        }),
        case("uid-mapping-size-zero", "map", Same, |v, _| {
            userns(v);
            v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 0}]);
        }),
        case("uid-mapping-overlap", "map", Same, |v, _| {
            userns(v);
            v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 10}, {"containerID": 5, "hostID": 200000, "size": 10}]);
        }),
        case("uid-mapping-host-huge", "uidMappings", Same, |v, _| {
            userns(v);
            v["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 4294967296u64, "size": 1}]);
        }),
        case(
            "userns-uid-unmapped",
            "5000",
            Ref::Gap("user checks before create (runc fails at init, same result)"),
            |v, _| {
                userns(v);
                let m = json!([{"containerID": 0, "hostID": 100000, "size": 1000}]);
                v["linux"]["uidMappings"] = m.clone();
                v["linux"]["gidMappings"] = m;
                v["process"]["user"]["uid"] = json!(5000);
            },
        ),
        case("userns-gid-unmapped", "gid", Same, |v, _| {
            userns(v);
            let m = json!([{"containerID": 0, "hostID": 100000, "size": 1000}]);
            v["linux"]["uidMappings"] = m.clone();
            v["linux"]["gidMappings"] = m;
            v["process"]["user"]["additionalGids"] = json!([4000]);
        }),
        case(
            "time-offsets-no-timens",
            "time namespace",
            GAP_TIME,
            |v, _| v["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 1, "nanosecs": 0}}),
        ),
        case("time-offsets-string", "timeOffsets", GAP_TIME, |v, _| {
            v["linux"]["timeOffsets"] = json!({"monotonic": {"secs": "1"}})
        }),
        set(
            "intel-rdt",
            "intelRdt",
            GAP_RDT,
            "/linux/intelRdt",
            json!({"closID": "nucleus-test"}),
        ),
        set(
            "sysctl-string",
            "sysctl",
            Same,
            "/linux/sysctl",
            json!("net.ipv4.ip_forward=1"),
        ),
        set(
            "sysctl-value-number",
            "sysctl",
            Same,
            "/linux/sysctl",
            json!({"net.ipv4.ip_forward": 1}),
        ),
        set(
            "sysctl-not-namespaced",
            "vm.swappiness",
            Same,
            "/linux/sysctl",
            json!({"vm.swappiness": "10"}),
        ),
        case(
            "sysctl-net-host-netns",
            "net.ipv4.ip_forward",
            Same,
            |v, _| {
                v["linux"]["namespaces"] =
                    json!([{"type": "mount"}, {"type": "pid"}, {"type": "uts"}]);
                v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
            },
        ),
        set(
            "sysctl-hostname",
            "kernel.hostname",
            Same,
            "/linux/sysctl",
            json!({"kernel.hostname": "x"}),
        ),
        set(
            "sysctl-dotdot",
            "sysctl",
            Same,
            "/linux/sysctl",
            json!({"net/../../../etc/x": "1"}),
        ),
        set(
            "sysctl-empty-key",
            "sysctl",
            Same,
            "/linux/sysctl",
            json!({"": "1"}),
        ),
        set(
            "sysctl-unknown-key",
            "net.ipv4.no_such_sysctl",
            Same,
            "/linux/sysctl",
            json!({"net.ipv4.no_such_sysctl": "1"}),
        ),
        set(
            "sysctl-bad-value",
            "net.ipv4.ip_forward",
            Same,
            "/linux/sysctl",
            json!({"net.ipv4.ip_forward": "notanumber"}),
        ),
        set(
            "sysctl-key-nul",
            "NUL",
            GAP_NUL,
            "/linux/sysctl",
            json!({"net.ipv4.ip_fo\u{0}rward": "1"}),
        ),
        set(
            "resources-string",
            "resources",
            Same,
            "/linux/resources",
            json!("x"),
        ),
        set(
            "memory-limit-string",
            "limit",
            Same,
            "/linux/resources/memory",
            json!({"limit": "1G"}),
        ),
        set(
            "memory-limit-one-byte",
            "memory",
            Same,
            "/linux/resources/memory",
            json!({"limit": 1}),
        ),
        set(
            "memory-limit-4k",
            "memory",
            Same,
            "/linux/resources/memory",
            json!({"limit": 4096}),
        ),
        set(
            "memory-limit-float",
            "limit",
            Same,
            "/linux/resources/memory",
            json!({"limit": 1.5}),
        ),
        set(
            "memory-swap-below-limit",
            "swap",
            Same,
            "/linux/resources/memory",
            json!({"limit": 104857600, "swap": 52428800}),
        ),
        set(
            "memory-swappiness-200",
            "swappiness",
            Ref::Gap("memory.swappiness on cgroup v2 (runc 1.1 checks it on v1 only)"),
            "/linux/resources/memory",
            json!({"swappiness": 200}),
        ),
        set(
            "cpu-shares-string",
            "shares",
            Same,
            "/linux/resources/cpu",
            json!({"shares": "1024"}),
        ),
        set(
            "cpu-quota-string",
            "quota",
            Same,
            "/linux/resources/cpu",
            json!({"quota": "max"}),
        ),
        set(
            "cpu-cpus-garbage",
            "cpus",
            Same,
            "/linux/resources/cpu",
            json!({"cpus": "abc"}),
        ),
        set(
            "cpu-cpus-absent",
            "cpus",
            Same,
            "/linux/resources/cpu",
            json!({"cpus": "4096"}),
        ),
        set(
            "cpu-mems-garbage",
            "mems",
            Same,
            "/linux/resources/cpu",
            json!({"mems": "x-y"}),
        ),
        set(
            "cpu-period-huge",
            "period",
            Same,
            "/linux/resources/cpu",
            json!({"period": 100000000000u64, "quota": 1000}),
        ),
        set(
            "pids-limit-string",
            "pids",
            Same,
            "/linux/resources/pids",
            json!({"limit": "10"}),
        ),
        set(
            "blkio-weight-string",
            "weight",
            Same,
            "/linux/resources/blockIO",
            json!({"weight": "500"}),
        ),
        set(
            "blkio-weight-huge",
            "weight",
            Same,
            "/linux/resources/blockIO",
            json!({"weight": 70000}),
        ),
        set(
            "hugepage-size-bad",
            "hugepage",
            Same,
            "/linux/resources/hugepageLimits",
            json!([{"pageSize": "3MB", "limit": 1}]),
        ),
        set(
            "hugepage-limit-string",
            "limit",
            Same,
            "/linux/resources/hugepageLimits",
            json!([{"pageSize": "2MB", "limit": "x"}]),
        ),
        set(
            "res-devices-string",
            "devices",
            Same,
            "/linux/resources/devices",
            json!("all"),
        ),
        set(
            "res-device-type-bad",
            "type",
            Same,
            "/linux/resources/devices",
            json!([{"allow": true, "type": "x", "access": "rwm"}]),
        ),
        set(
            "res-device-allow-string",
            "allow",
            Same,
            "/linux/resources/devices",
            json!([{"allow": "yes", "access": "rwm"}]),
        ),
        set(
            "res-device-major-string",
            "major",
            Same,
            "/linux/resources/devices",
            json!([{"allow": true, "type": "c", "major": "1", "access": "rwm"}]),
        ),
        set(
            "net-classid-string",
            "classID",
            Same,
            "/linux/resources/network",
            json!({"classID": "x"}),
        ),
        set(
            "unified-string",
            "unified",
            Same,
            "/linux/resources/unified",
            json!("memory.max=1"),
        ),
        set(
            "unified-value-number",
            "unified",
            Same,
            "/linux/resources/unified",
            json!({"memory.max": 1}),
        ),
        set(
            "devices-string",
            "devices",
            Same,
            "/linux/devices",
            json!("/dev/fuse"),
        ),
        set(
            "device-type-bad",
            "type",
            Same,
            "/linux/devices",
            json!([{"path": "/dev/x", "type": "q", "major": 1, "minor": 3}]),
        ),
        set(
            "device-path-missing",
            "path",
            GAP_TYPE,
            "/linux/devices",
            json!([{"type": "c", "major": 1, "minor": 3}]),
        ),
        set(
            "device-major-string",
            "major",
            Same,
            "/linux/devices",
            json!([{"path": "/dev/x", "type": "c", "major": "1", "minor": 3}]),
        ),
        set(
            "device-path-nul",
            "NUL",
            GAP_NUL,
            "/linux/devices",
            json!([{"path": "/dev/n\u{0}ull2", "type": "c", "major": 1, "minor": 3}]),
        ),
        set(
            "device-mode-string",
            "fileMode",
            Same,
            "/linux/devices",
            json!([{"path": "/dev/x", "type": "c", "major": 1, "minor": 3, "fileMode": "0666"}]),
        ),
        set(
            "seccomp-string",
            "seccomp",
            Same,
            "/linux/seccomp",
            json!("default"),
        ),
        set(
            "seccomp-default-action-bad",
            "defaultAction",
            Same,
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_FOO"}),
        ),
        set(
            "seccomp-default-action-missing",
            "defaultAction",
            GAP_TYPE,
            "/linux/seccomp",
            json!({"syscalls": []}),
        ),
        set(
            "seccomp-syscalls-string",
            "syscalls",
            Same,
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": "x"}),
        ),
        set(
            "seccomp-action-bad",
            "action",
            Same,
            "/linux/seccomp",
            seccomp(json!({"names": ["mkdir"], "action": "SCMP_ACT_FOO"})),
        ),
        set(
            "seccomp-names-string",
            "names",
            Same,
            "/linux/seccomp",
            seccomp(json!({"names": "mkdir", "action": "SCMP_ACT_ERRNO"})),
        ),
        set(
            "seccomp-errno-4095",
            "errnoRet",
            Same,
            "/linux/seccomp",
            seccomp(json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4095})),
        ),
        set(
            "seccomp-errno-huge",
            "errnoRet",
            Same,
            "/linux/seccomp",
            seccomp(json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000})),
        ),
        set(
            "seccomp-errno-negative",
            "errnoRet",
            Same,
            "/linux/seccomp",
            seccomp(json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": -1})),
        ),
        set(
            "seccomp-default-errno-huge",
            "defaultErrnoRet",
            GAP_SECCOMP,
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000, "syscalls": [{"names": ["execve", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}),
        ),
        set(
            "seccomp-arg-index",
            "index",
            Same,
            "/linux/seccomp",
            seccomp(
                json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}),
            ),
        ),
        set(
            "seccomp-arg-op-bad",
            "op",
            Same,
            "/linux/seccomp",
            seccomp(
                json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]}),
            ),
        ),
        set(
            "seccomp-arg-value-string",
            "value",
            Same,
            "/linux/seccomp",
            seccomp(
                json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": "1", "op": "SCMP_CMP_EQ"}]}),
            ),
        ),
        set(
            "seccomp-arch-bad",
            "architectures",
            Same,
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_FOO"]}),
        ),
        set(
            "seccomp-flag-bad",
            "flags",
            Same,
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FOO"]}),
        ),
        set(
            "seccomp-notify-no-listener",
            "listenerPath",
            Same,
            "/linux/seccomp",
            seccomp(json!({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"})),
        ),
        set(
            "seccomp-notify-default",
            "NOTIFY",
            Same,
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/no/such/sock"}),
        ),
        set(
            "seccomp-listener-missing",
            "/no/such/sock",
            Same,
            "/linux/seccomp",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/no/such/sock", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
        ),
        set(
            "masked-paths-string",
            "maskedPaths",
            Same,
            "/linux/maskedPaths",
            json!("/proc/kcore"),
        ),
        set(
            "masked-paths-number",
            "maskedPaths",
            Same,
            "/linux/maskedPaths",
            json!([1]),
        ),
        set(
            "masked-path-nul",
            "NUL",
            GAP_NUL,
            "/linux/maskedPaths",
            json!(["/proc/kc\u{0}ore"]),
        ),
        set(
            "readonly-paths-number",
            "readonlyPaths",
            Same,
            "/linux/readonlyPaths",
            json!([1]),
        ),
        set(
            "rootfs-propagation-bad",
            "rootfsPropagation",
            Same,
            "/linux/rootfsPropagation",
            json!("sideways"),
        ),
        set(
            "rootfs-propagation-number",
            "rootfsPropagation",
            Same,
            "/linux/rootfsPropagation",
            json!(1),
        ),
        set(
            "cgroups-path-number",
            "cgroupsPath",
            Same,
            "/linux/cgroupsPath",
            json!(1),
        ),
        set(
            "personality-bad",
            "personality",
            Ref::Gap("linux.personality (runc 1.1 does not know it)"),
            "/linux/personality",
            json!({"domain": "LINUX_FOO"}),
        ),
        set(
            "personality-string",
            "personality",
            Same,
            "/linux/personality",
            json!("LINUX"),
        ),
        set(
            "mount-label-number",
            "mountLabel",
            Same,
            "/linux/mountLabel",
            json!(1),
        ),
        set(
            "mount-ns-path-bad",
            "/no/such/mnt",
            Same,
            "/linux/namespaces",
            json!([{"type": "mount", "path": "/no/such/mnt"}, {"type": "pid"}, {"type": "uts"}]),
        ),
    ]
}

fn mkfifo(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo(3) on a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// What is left of a container `id` after a failed command: state dirs under `root`,
/// its cgroup, processes naming it, mounts of `bundle` or naming it.
fn leftovers(root: &Path, id: &str, bundle: &Path) -> Vec<String> {
    let mut left = Vec::new();
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                left.push(format!("state dir {}", e.path().display()));
            }
        }
    }
    for d in cgroup_dirs(&format!("/{id}")) {
        left.push(format!("cgroup {}", d.display()));
    }
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let cmd = fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(id) && pid_alive(pid) {
                left.push(format!("process {pid}: {cmd}"));
            }
        }
    }
    let b = bundle.to_string_lossy();
    for l in fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
    {
        if l.contains(b.as_ref()) || l.contains(id) {
            left.push(format!("mount {l}"));
        }
    }
    left
}

/// The lines of a runtime's stderr that report an error (logrus text format).
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("level=error") || l.starts_with("error"))
        .collect()
}

/// Checks a refusal: clean non-zero exit, exactly one error line that names the problem
/// and is readable, no panic. Returns what is wrong.
fn check_refusal(out: &Output, keyword: &str) -> Vec<String> {
    let mut bad = Vec::new();
    if out.timed_out {
        bad.push("timed out".into());
    }
    if out.signal.is_some() || out.code == Some(0) || out.code.is_none() {
        bad.push(format!("exit code {:?}, signal {:?}", out.code, out.signal));
    }
    if out.code == Some(101) || out.stderr.contains("panicked") {
        bad.push("panicked".into());
    }
    let errs = error_lines(&out.stderr);
    if errs.len() != 1 {
        bad.push(format!("{} error lines, want 1", errs.len()));
    }
    if let Some(l) = errs.first() {
        if !l.to_lowercase().contains(&keyword.to_lowercase()) {
            bad.push(format!("error line does not name {keyword:?}"));
        }
        if l.len() > 1500 {
            bad.push(format!("error line is {} bytes long", l.len()));
        }
    }
    bad
}

/// Writes the case's config.json into `bundle` for container `id`.
fn write_input(input: &Input, bundle: &Path, id: &str) {
    let cfg = bundle.join("config.json");
    let _ = fs::remove_file(&cfg);
    let _ = fs::remove_dir(&cfg);
    match input {
        Input::Config(edit) => {
            let mut v = default_config(&["true"]);
            v["linux"]["cgroupsPath"] = json!(format!("/{id}"));
            edit(&mut v, bundle);
            fs::write(&cfg, serde_json::to_vec(&v).unwrap()).unwrap();
        }
        Input::Raw(bytes) => fs::write(&cfg, bytes).unwrap(),
        Input::File(make) => make(&cfg),
    }
}

fn create_cmd(runtime: &Path, root: &Path, bundle: &Path, id: &str) -> Output {
    exec(
        Command::new(runtime)
            .arg("--root")
            .arg(root)
            .args(["create", "--bundle"])
            .arg(bundle)
            .arg(id),
        CASE_TIMEOUT,
    )
}

fn force_delete(runtime: &Path, root: &Path, id: &str) {
    let _ = exec(
        Command::new(runtime)
            .arg("--root")
            .arg(root)
            .args(["delete", "--force", id]),
        CASE_TIMEOUT,
    );
    for d in cgroup_dirs(&format!("/{id}")) {
        let _ = fs::remove_dir(d);
    }
}

/// Runs the cases against the runtime under test (and runc where it must agree); panics
/// listing every case that went wrong.
fn run_corpus(group: &str, cases: Vec<Case>) {
    let bundle = Bundle::new();
    let ours = runtime_path();
    // Each case says how runc must answer: without runc the corpus fails, it does not pass
    // half-checked.
    let reference = Some(reference());
    let (mut compared, mut gaps) = (0, 0);
    let mut failures = Vec::new();
    for c in &cases {
        // "Without the LSM" holds only on a host whose kernel lacks it (the v1 build machine
        // does; the v2 guest has SELinux but no policy, which counts as without, as in runc;
        // the AppArmor guest has AppArmor).
        let lsm_present = match c.name {
            "apparmor-without-lsm" => apparmor_enabled(),
            "selinux-label-without-lsm" | "mount-label-without-lsm" => selinux_enabled(),
            _ => false,
        };
        if lsm_present {
            eprintln!(
                "NOTICE: {group}/{}: this kernel has that LSM; case not applicable here",
                c.name
            );
            continue;
        }
        let root = host_tempdir("nucleus-badinput-root-");
        let id = unique_id(&format!("bad-{}", c.name));
        write_input(&c.input, bundle.path(), &id);
        let out = create_cmd(&ours, root.path(), bundle.path(), &id);
        let mut bad = check_refusal(&out, c.keyword);
        bad.extend(leftovers(root.path(), &id, bundle.path()));
        if !bad.is_empty() {
            failures.push(format!("[{}] {}\n{out}", c.name, bad.join("; ")));
        }
        force_delete(&ours, root.path(), &id);
        match (c.reference, reference.as_deref()) {
            (Ref::Gap(what), _) => {
                gaps += 1;
                eprintln!(
                    "NOTICE: {group}/{}: not compared with runc, which does not check {what}",
                    c.name
                );
            }
            (Ref::Same, Some(runc)) => {
                compared += 1;
                let rroot = host_tempdir("nucleus-badinput-runc-");
                let rid = unique_id(&format!("ref-{}", c.name));
                write_input(&c.input, bundle.path(), &rid);
                let out = create_cmd(runc, rroot.path(), bundle.path(), &rid);
                if out.success() || out.timed_out {
                    failures.push(format!(
                        "[{}] runc accepts it too (differential)\n{out}",
                        c.name
                    ));
                }
                force_delete(runc, rroot.path(), &rid);
            }
            (Ref::Same, None) => {}
        }
    }
    eprintln!(
        "{group} corpus: {} cases, {compared} compared with runc, {gaps} runc gaps",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// The same tests nucleus makes (src/spec.rs), as runc: AppArmor loaded and enabled;
/// selinuxfs mounted and a policy loaded (without one every task is `kernel`).
fn apparmor_enabled() -> bool {
    Path::new("/sys/kernel/security/apparmor").is_dir()
        && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim_start().starts_with('Y'))
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").is_file()
        && fs::read("/proc/thread-self/attr/current")
            .is_ok_and(|c| c.split(|&b| b == 0 || b == b'\n').next() != Some(b"kernel".as_slice()))
}

#[test]
fn corpus_process() {
    run_corpus("process", process_cases());
}

#[test]
fn corpus_config() {
    run_corpus("config", config_cases());
}

#[test]
fn corpus_linux() {
    run_corpus("linux", linux_cases());
}

/// `run.nucleus.landlock.*` annotations a less-trusted caller may get wrong: refused at
/// `create` with the annotation named, nothing left (a path missing in the container is
/// found by the init, after the mounts; best-effort there, so that a kernel below Landlock
/// ABI 5, such as the hack/vm guest's, gets that far).
fn landlock_cases() -> Vec<Case> {
    let ann = |name: &'static str, keyword: &'static str, value: Value| {
        set(name, keyword, GAP_NUCLEUS, "/annotations", value)
    };
    let many = vec!["/a"; 257].join(",");
    vec![
        ann(
            "landlock-unknown",
            "run.nucleus.landlock.nope",
            json!({"run.nucleus.landlock.nope": "1"}),
        ),
        ann(
            "landlock-state-annotation-in-config",
            "run.nucleus.landlock.abi",
            json!({"run.nucleus.landlock.abi": "9"}),
        ),
        ann(
            "landlock-read-empty",
            "run.nucleus.landlock.read",
            json!({"run.nucleus.landlock.read": ""}),
        ),
        ann(
            "landlock-read-relative",
            "run.nucleus.landlock.read",
            json!({"run.nucleus.landlock.read": "etc"}),
        ),
        ann(
            "landlock-write-dotdot",
            "run.nucleus.landlock.write",
            json!({"run.nucleus.landlock.write": "/tmp/../etc"}),
        ),
        ann(
            "landlock-exec-empty-entry",
            "run.nucleus.landlock.exec",
            json!({"run.nucleus.landlock.exec": "/bin,,/sbin"}),
        ),
        ann(
            "landlock-path-nul",
            "run.nucleus.landlock.read",
            json!({"run.nucleus.landlock.read": "/etc\u{0}x"}),
        ),
        ann(
            "landlock-too-many-paths",
            "run.nucleus.landlock.read",
            json!({ "run.nucleus.landlock.read": many }),
        ),
        ann(
            "landlock-bind-name",
            "run.nucleus.landlock.tcp-bind",
            json!({"run.nucleus.landlock.tcp-bind": "http"}),
        ),
        ann(
            "landlock-connect-above",
            "run.nucleus.landlock.tcp-connect",
            json!({"run.nucleus.landlock.tcp-connect": "70000"}),
        ),
        ann(
            "landlock-connect-backwards",
            "run.nucleus.landlock.tcp-connect",
            json!({"run.nucleus.landlock.tcp-connect": "90-80"}),
        ),
        ann(
            "landlock-connect-empty",
            "run.nucleus.landlock.tcp-connect",
            json!({"run.nucleus.landlock.tcp-connect": ""}),
        ),
        ann(
            "landlock-mode",
            "run.nucleus.landlock.mode",
            json!({"run.nucleus.landlock.mode": "strict", "run.nucleus.landlock.read": "/"}),
        ),
        ann(
            "landlock-path-missing",
            "run.nucleus.landlock.read",
            json!({"run.nucleus.landlock.read": "/nonexistent", "run.nucleus.landlock.exec": "/bin",
                   "run.nucleus.landlock.mode": "best-effort"}),
        ),
        ann(
            "landlock-path-missing-best-effort",
            "run.nucleus.landlock.write",
            json!({"run.nucleus.landlock.write": "/tmp,/data", "run.nucleus.landlock.mode": "best-effort"}),
        ),
    ]
}

#[test]
fn corpus_landlock() {
    run_corpus("landlock", landlock_cases());
}

/// Command-line misuse: (name, keyword, runc refuses too, args after --root; `{id}` and
/// `{bundle}` are substituted).
const CLI_CASES: &[(&str, &str, bool, &[&str])] = &[
    (
        "create-no-id",
        "ID",
        true,
        &["create", "--bundle", "{bundle}"],
    ),
    (
        "create-id-slash",
        "id",
        true,
        &["create", "--bundle", "{bundle}", "a/b"],
    ),
    (
        "create-id-dotdot",
        "id",
        true,
        &["create", "--bundle", "{bundle}", ".."],
    ),
    (
        "create-id-dot",
        "id",
        true,
        &["create", "--bundle", "{bundle}", "."],
    ),
    (
        "create-id-empty",
        "id",
        true,
        &["create", "--bundle", "{bundle}", ""],
    ),
    (
        "create-id-space",
        "id",
        true,
        &["create", "--bundle", "{bundle}", "a b"],
    ),
    (
        "create-id-newline",
        "id",
        true,
        &["create", "--bundle", "{bundle}", "a\nb"],
    ),
    (
        "create-bundle-missing",
        "/no/such/bundle",
        true,
        &["create", "--bundle", "/no/such/bundle", "{id}"],
    ),
    (
        "create-bundle-file",
        "config.json",
        true,
        &["create", "--bundle", "/etc/passwd", "{id}"],
    ),
    (
        "create-console-socket-missing",
        "console",
        true,
        &[
            "create",
            "--bundle",
            "{bundle}",
            "--console-socket",
            "/no/such/sock",
            "{id}",
        ],
    ),
    (
        "create-preserve-fds-garbage",
        "preserve-fds",
        true,
        &[
            "create",
            "--bundle",
            "{bundle}",
            "--preserve-fds",
            "x",
            "{id}",
        ],
    ),
    (
        "create-pid-file-dir-missing",
        "pid",
        true,
        &[
            "create",
            "--bundle",
            "{bundle}",
            "--pid-file",
            "/no/such/dir/pid",
            "{id}",
        ],
    ),
    ("start-missing", "does not exist", true, &["start", "{id}"]),
    ("state-missing", "does not exist", true, &["state", "{id}"]),
    (
        "kill-missing",
        "does not exist",
        true,
        &["kill", "{id}", "KILL"],
    ),
    (
        "delete-missing",
        "does not exist",
        true,
        &["delete", "{id}"],
    ),
    (
        "exec-missing",
        "does not exist",
        true,
        &["exec", "{id}", "true"],
    ),
    ("pause-missing", "does not exist", true, &["pause", "{id}"]),
    ("unknown-verb", "frobnicate", true, &["frobnicate"]),
];

#[test]
fn corpus_cli() {
    let bundle = Bundle::new();
    let ours = runtime_path();
    let reference = Some(reference());
    let mut failures = Vec::new();
    let mut compared = 0;
    for &(name, keyword, runc_too, args) in CLI_CASES {
        let mut runtimes = vec![(ours.clone(), true)];
        if let (Some(r), true) = (&reference, runc_too) {
            runtimes.push((r.clone(), false));
            compared += 1;
        }
        for (rt, is_ours) in runtimes {
            let root = host_tempdir("nucleus-badinput-cli-");
            let id = unique_id(&format!("cli-{name}"));
            write_input(&Input::Config(Box::new(|_, _| {})), bundle.path(), &id);
            let argv: Vec<String> = args
                .iter()
                .map(|a| {
                    a.replace("{id}", &id)
                        .replace("{bundle}", &bundle.path().to_string_lossy())
                })
                .collect();
            let out = exec(
                Command::new(&rt).arg("--root").arg(root.path()).args(&argv),
                CASE_TIMEOUT,
            );
            let mut bad = Vec::new();
            if is_ours {
                bad = check_cli_refusal(&out, keyword);
                bad.extend(leftovers(root.path(), &id, bundle.path()));
            } else if out.success() || out.timed_out {
                bad.push("runc accepts it too (differential)".into());
            }
            if !bad.is_empty() {
                failures.push(format!("[{name}] {}\n{out}", bad.join("; ")));
            }
            force_delete(&rt, root.path(), &id);
        }
    }
    eprintln!(
        "cli corpus: {} cases, {compared} compared with runc",
        CLI_CASES.len()
    );
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Usage errors come from the argument parser, which prints usage after its first line:
/// that first line must name the problem.
fn check_cli_refusal(out: &Output, keyword: &str) -> Vec<String> {
    let mut bad = Vec::new();
    if out.timed_out || out.signal.is_some() || out.code == Some(0) || out.code.is_none() {
        bad.push(format!("not a clean failure: code {:?}", out.code));
    }
    if out.stderr.contains("panicked") {
        bad.push("panicked".into());
    }
    let first = out
        .stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    if !first.to_lowercase().contains(&keyword.to_lowercase()) {
        bad.push(format!("first stderr line does not name {keyword:?}"));
    }
    bad
}

#[test]
fn duplicate_id_is_refused_and_the_first_container_survives() {
    let mut c = Container::new("bad-dup");
    c.args(&["sleep", "30"]);
    c.create().ok();
    let pid = c.pid();
    let out = c.create();
    let bad = check_refusal(&out, "exists");
    assert!(bad.is_empty(), "{bad:?}\n{out}");
    assert_eq!(c.status(), "created");
    assert!(pid_alive(pid));
    c.delete_force().ok();
    assert!(
        !pid_alive(pid) || {
            std::thread::sleep(Duration::from_millis(200));
            !pid_alive(pid)
        }
    );
    assert!(leftovers(c.root(), &c.id, c.bundle.path()).is_empty());
}

#[test]
fn large_configs_work() {
    // 300 KB, 1 MB and 10 MB of annotations: the state the init receives carries them.
    for size in [300usize << 10, 1 << 20, 10 << 20] {
        let mut c = Container::new("bad-large");
        c.sh("echo ok");
        c.config()["annotations"] = json!({"big": "a".repeat(size)});
        let out = c.run();
        assert!(
            out.success() && out.stdout.contains("ok"),
            "{size} bytes\n{}",
            short(&out)
        );
        assert!(leftovers(c.root(), &c.id, c.bundle.path()).is_empty());
    }
}

fn short(out: &Output) -> String {
    let s = out.to_string();
    if s.len() > 4000 {
        format!("{}…", &s[..4000])
    } else {
        s
    }
}

/// xorshift64*: a deterministic PRNG, so a failing mutation can be replayed by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        // Below n, a usize.
        usize::try_from(self.next() % n as u64).expect("below n")
    }
}

/// A random value of a random kind: wrong types, huge numbers, long strings, deep nesting.
fn random_value(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(u64::MAX),
        4 => json!(i64::MIN),
        5 => json!(1e308),
        6 => json!("x".repeat(1 + rng.below(300_000))),
        7 => json!(""),
        8 => json!([]),
        9 => json!({}),
        10 => {
            let depth = 1 + rng.below(400);
            let mut v = json!(0);
            for _ in 0..depth {
                v = json!([v]);
            }
            v
        }
        _ => json!(["CAP_TEST", "/no/such", "..", "a\u{0}b"][rng.below(4)]),
    }
}

/// Mutates one random node of `v`: replaced by a random value, or removed from its parent.
fn mutate(v: &mut Value, rng: &mut Rng) -> String {
    let mut path = String::new();
    let mut cur = v;
    loop {
        let n = match cur {
            Value::Object(m) => m.len(),
            Value::Array(a) => a.len(),
            _ => 0,
        };
        // Stop here sometimes, and always at a leaf.
        if n == 0 || rng.below(4) == 0 {
            let new = random_value(rng);
            let desc = format!("{path} = {}", short_json(&new));
            *cur = new;
            return desc;
        }
        let i = rng.below(n);
        let remove_child = rng.below(6) == 0;
        match cur {
            Value::Object(m) => {
                let key = m.keys().nth(i).unwrap().clone();
                if remove_child {
                    m.remove(&key);
                    return format!("remove {path}/{key}");
                }
                path.push('/');
                path.push_str(&key);
                cur = m.get_mut(&key).unwrap();
            }
            Value::Array(a) => {
                if remove_child {
                    a.remove(i);
                    return format!("remove {path}/{i}");
                }
                path.push_str(&format!("/{i}"));
                cur = &mut a[i];
            }
            _ => unreachable!(),
        }
    }
}

fn short_json(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}… ({} bytes)", &s[..60], s.len())
    } else {
        s
    }
}

#[test]
fn random_mutations_never_panic_hang_or_leak() {
    let bundle = Bundle::new();
    let ours = runtime_path();
    let mut failures = Vec::new();
    let (mut refused, mut accepted) = (0, 0);
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let root = host_tempdir("nucleus-badinput-prop-");
        let id = unique_id("prop");
        let mut v = default_config(&["true"]);
        v["linux"]["cgroupsPath"] = json!(format!("/{id}"));
        let mut what = Vec::new();
        for _ in 0..1 + rng.below(3) {
            what.push(mutate(&mut v, &mut rng));
        }
        fs::write(
            bundle.path().join("config.json"),
            serde_json::to_vec(&v).unwrap(),
        )
        .unwrap();
        let out = create_cmd(&ours, root.path(), bundle.path(), &id);
        let mut bad = Vec::new();
        if out.timed_out {
            bad.push("hung (10 s)".to_string());
        }
        if out.stderr.contains("panicked")
            || matches!(out.code, Some(101) | Some(134))
            || out.signal.is_some()
        {
            bad.push("panicked or crashed".to_string());
        }
        if out.success() {
            accepted += 1;
            force_delete(&ours, root.path(), &id);
        } else {
            refused += 1;
            if error_lines(&out.stderr).len() != 1 {
                bad.push("refusal without exactly one error line".to_string());
            }
        }
        // Accepted or not, once deleted nothing may remain.
        force_delete(&ours, root.path(), &id);
        let left = leftovers(root.path(), &id, bundle.path());
        if !left.is_empty() {
            bad.push(format!("left behind: {left:?}"));
        }
        if !bad.is_empty() {
            failures.push(format!(
                "seed {seed} ({}): {}\n{}",
                what.join(", "),
                bad.join("; "),
                short(&out)
            ));
        }
    }
    eprintln!("property test: {refused} refused, {accepted} accepted");
    assert!(
        failures.is_empty(),
        "{} mutations failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

//! Loading and checking a bundle's `config.json`, and the default config `nucleus spec` writes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

pub const CONFIG_FILE: &str = "config.json";

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("open {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is {kind}, not a regular file")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{path} is too large ({size} bytes, the limit is {max})")]
    TooLarge { path: PathBuf, size: u64, max: u64 },
    #[error("invalid {file}: field {field}: {msg}")]
    Parse {
        file: String,
        field: String,
        msg: String,
    },
    #[error("invalid config.json: {0}")]
    Invalid(String),
    #[error("rootfs ({path}) does not exist")]
    NoRootfs { path: PathBuf },
    #[error("File {0} exists. Remove it first")]
    Exists(String),
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Parse JSON into an OCI type, naming the offending field on failure (e.g.
/// `process.capabilities.bounding[0]`).
pub fn parse<T: serde::de::DeserializeOwned>(file: &str, data: &[u8]) -> Result<T, SpecError> {
    from_value(file, parse_value(file, data)?)
}

/// The JSON tree of a file, for checks before it becomes an OCI type (no second pass
/// through `from_value`, which would copy the whole tree).
pub fn parse_value(file: &str, data: &[u8]) -> Result<serde_json::Value, SpecError> {
    serde_json::from_slice(data).map_err(|e| SpecError::Parse {
        file: file.to_string(),
        field: "(syntax)".into(),
        msg: clip_message(&e.to_string()),
    })
}

/// The one way OCI types are read from JSON (config, state, process, resources): through
/// a `Value`, so the large generated deserializers of the OCI types exist once in the
/// binary, which keeps the runtime's resident size down.
pub fn from_value<T: serde::de::DeserializeOwned>(
    file: &str,
    v: serde_json::Value,
) -> Result<T, SpecError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let field = e.path().to_string();
        SpecError::Parse {
            file: file.to_string(),
            field: if field == "." {
                "(top level)".into()
            } else {
                field
            },
            msg: clip_message(&e.into_inner().to_string()),
        }
    })
}

/// The largest config.json read: far above any real one (Podman's are a few KB), and it
/// bounds the memory a hostile file can make the runtime take.
pub const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// Read `bundle/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, SpecError> {
    let path = bundle.join(CONFIG_FILE);
    let data = read_regular(&path, MAX_CONFIG_BYTES)?;
    let mut v = parse_value(CONFIG_FILE, &data)?;
    check_no_nul(&v, &mut String::new())?;
    check_capability_names(&mut v)?;
    from_value(CONFIG_FILE, v)
}

/// Read a file that must be a regular one of at most `max` bytes. Opened non-blocking, so
/// a FIFO (or a device) put there is refused instead of blocking the runtime forever.
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, SpecError> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let read_err = |source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(read_err)?;
    let meta = f.metadata().map_err(read_err)?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let kind = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(SpecError::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    if meta.len() > max {
        return Err(SpecError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            max,
        });
    }
    let mut data = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // `take` also bounds a file that grows while it is read.
    f.take(max + 1).read_to_end(&mut data).map_err(read_err)?;
    if data.len() as u64 > max {
        return Err(SpecError::TooLarge {
            path: path.to_path_buf(),
            size: data.len() as u64,
            max,
        });
    }
    Ok(data)
}

/// The host path of the root filesystem, resolved against the bundle (`bundle` is
/// canonical already).
pub fn rootfs_path(spec: &Spec, bundle: &Path) -> Result<PathBuf, SpecError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| SpecError::Invalid("root must be set".into()))?;
    let p = root.path();
    if p.as_os_str().is_empty() {
        return Err(SpecError::Invalid("root.path must not be empty".into()));
    }
    let full = if p.is_absolute() {
        p.clone()
    } else {
        bundle.join(p)
    };
    if let Some(dir) = plain_dir_below(bundle, p) {
        return Ok(dir);
    }
    match std::fs::canonicalize(&full) {
        Ok(c) if c.is_dir() => Ok(c),
        Ok(_) => Err(SpecError::Invalid(format!(
            "root.path {} is not a directory",
            full.display()
        ))),
        Err(_) => Err(SpecError::NoRootfs { path: full }),
    }
}

/// `bundle`/`rel` when `rel` is relative, of plain names only, and each is a directory and
/// no symlink: then it is canonical as it stands, found with one lstat per name rather than
/// a readlink per component of the whole path (realpath).
fn plain_dir_below(bundle: &Path, rel: &Path) -> Option<PathBuf> {
    let mut dir = bundle.to_path_buf();
    for c in rel.components() {
        let std::path::Component::Normal(name) = c else {
            return None;
        };
        dir.push(name);
        if !std::fs::symlink_metadata(&dir).ok()?.is_dir() {
            return None;
        }
    }
    Some(dir)
}

/// The checks runc makes before it touches anything, so that a bad config fails early and
/// leaves nothing behind.
pub fn validate(spec: &Spec) -> Result<(), SpecError> {
    let bad = |m: String| Err(SpecError::Invalid(m));
    if spec.version().is_empty() {
        return bad("ociVersion must be set".into());
    }
    // `process` is optional until `start` (runtime.md, start): a config without one
    // creates a container that `start` then refuses.
    if let Some(process) = spec.process() {
        validate_process(process, spec.linux().as_ref())?;
    }
    validate_linux(spec)
}

/// The checks of `process`, when the config has one.
fn validate_process(
    process: &oci_spec::runtime::Process,
    linux: Option<&oci_spec::runtime::Linux>,
) -> Result<(), SpecError> {
    let bad = |m: String| Err(SpecError::Invalid(m));
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return bad("process.args must not be empty".into());
    }
    if !process.cwd().is_absolute() {
        return bad(format!(
            "process.cwd {:?} must be an absolute path",
            process.cwd()
        ));
    }
    let user = process.user();
    let ids = [("uid", user.uid()), ("gid", user.gid())]
        .into_iter()
        .chain(
            user.additional_gids()
                .iter()
                .flatten()
                .map(|g| ("additionalGids", *g)),
        );
    for (what, id) in ids {
        if id > i32::MAX as u32 {
            return bad(format!(
                "process.user.{what} {id} is out of range (uids and gids must be in 0-2147483647)"
            ));
        }
    }
    for e in process.env().iter().flatten() {
        if !e.contains('=') {
            return bad(format!(
                "process.env entry {} is not KEY=VALUE",
                clip(&format!("{e:?}"))
            ));
        }
    }
    lsm(process, linux)
}

fn validate_linux(spec: &Spec) -> Result<(), SpecError> {
    let bad = |m: String| Err(SpecError::Invalid(m));
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    if linux.intel_rdt().is_some() {
        return bad(
            "linux.intelRdt is not supported by nucleus (no resctrl support); remove it".into(),
        );
    }
    // The same checks as `update`'s, before any cgroup file is written.
    if let Some(r) = linux.resources() {
        crate::cgroups::validate(r).map_err(|e| SpecError::Invalid(e.to_string()))?;
    }
    let mut seen = HashSet::new();
    let mut has_user = false;
    let mut uts = false;
    for ns in linux.namespaces().iter().flatten() {
        if !seen.insert(ns.typ()) {
            return bad(format!(
                "linux.namespaces: duplicate namespace {:?}",
                ns.typ()
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return bad(format!(
                    "linux.namespaces: path {} of {:?} must be absolute",
                    p.display(),
                    ns.typ()
                ));
            }
        }
        has_user |= ns.typ() == LinuxNamespaceType::User;
        uts |= ns.typ() == LinuxNamespaceType::Uts;
    }
    let new_time = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|ns| ns.typ() == LinuxNamespaceType::Time && ns.path().is_none());
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) && !new_time {
        return bad(
            "linux.timeOffsets need a new time namespace (add {\"type\": \"time\"} to linux.namespaces)"
                .into(),
        );
    }
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if maps && !has_user {
        return bad("linux.uidMappings/gidMappings need a user namespace".into());
    }
    // A UTS namespace joined by path is the container's own too; only the runtime's
    // (inherited) one must never be renamed.
    if spec.hostname().is_some() || spec.domainname().is_some() {
        if !uts {
            return bad("hostname/domainname need a uts namespace (add {\"type\": \"uts\"} to linux.namespaces)".into());
        }
        let joined = linux
            .namespaces()
            .iter()
            .flatten()
            .find(|ns| ns.typ() == LinuxNamespaceType::Uts)
            .and_then(|ns| ns.path().as_ref());
        if let Some(p) = joined.filter(|p| same_file(p, Path::new("/proc/self/ns/uts"))) {
            return bad(format!(
                "hostname/domainname: the uts namespace {} is the runtime's own",
                p.display()
            ));
        }
    }
    if let Some(prop) = linux.rootfs_propagation() {
        if !matches!(
            prop.as_str(),
            "" | "shared"
                | "rshared"
                | "slave"
                | "rslave"
                | "private"
                | "rprivate"
                | "unbindable"
                | "runbindable"
        ) {
            return bad(format!("linux.rootfsPropagation {prop:?} is not valid"));
        }
    }
    for k in linux.sysctl().iter().flatten().map(|(k, _)| k) {
        check_sysctl(k, &seen)?;
    }
    Ok(())
}

/// Whether `a` and `b` name the same file (a namespace, here).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Where the kernel has AppArmor loaded and enabled (the test runc and libapparmor make).
fn apparmor_enabled() -> bool {
    Path::new("/sys/kernel/security/apparmor").is_dir()
        && std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim_start().starts_with('Y'))
}

/// Where SELinux is enabled, as go-selinux (runc) decides: selinuxfs is mounted and a
/// policy is loaded. Without a policy every task is `kernel` and the kernel accepts any
/// label written to attr/exec without applying it: a label would then be silently lost.
fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").is_file()
        && std::fs::read("/proc/thread-self/attr/current")
            .is_ok_and(|c| c.split(|&b| b == 0 || b == b'\n').next() != Some(b"kernel"))
}

/// The Linux security module settings. Where the kernel lacks the LSM a config asks for,
/// it is refused, as runc refuses it: a container never runs with less confinement than
/// asked without the caller knowing. Where the LSM exists, the init and `exec` apply them
/// (`process::lsm`, the mounts for `linux.mountLabel`).
pub fn lsm(
    process: &oci_spec::runtime::Process,
    linux: Option<&oci_spec::runtime::Linux>,
) -> Result<(), SpecError> {
    if let Some(p) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if !apparmor_enabled() {
            return Err(SpecError::Invalid(format!(
                "process.apparmorProfile {} is set, but AppArmor is not enabled in this kernel",
                clip(&format!("{p:?}"))
            )));
        }
    }
    let labels = [
        ("process.selinuxLabel", process.selinux_label().as_deref()),
        (
            "linux.mountLabel",
            linux.and_then(|l| l.mount_label().as_deref()),
        ),
    ];
    for (field, label) in labels {
        if let Some(l) = label.filter(|l| !l.is_empty()) {
            if !selinux_enabled() {
                return Err(SpecError::Invalid(format!(
                    "{field} {} is set, but SELinux is not enabled in this kernel (or has no policy loaded)",
                    clip(&format!("{l:?}"))
                )));
            }
        }
    }
    Ok(())
}

/// A sysctl is only writable for the container when it lives in a namespace the container
/// has to itself; anything else would change the host (the rules runc applies).
fn check_sysctl(key: &str, ns: &HashSet<LinuxNamespaceType>) -> Result<(), SpecError> {
    let k = key.replace('/', ".");
    let bad = |m: String| Err(SpecError::Invalid(m));
    if k.is_empty() || k.split('.').any(|c| c.is_empty() || c == "..") {
        return bad(format!("linux.sysctl key {key:?} is not valid"));
    }
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
        if ns.contains(&LinuxNamespaceType::Ipc) {
            return Ok(());
        }
        return bad(format!(
            "sysctl {key:?} is not allowed in the host's ipc namespace"
        ));
    }
    if k.starts_with("net.") {
        if ns.contains(&LinuxNamespaceType::Network) {
            return Ok(());
        }
        return bad(format!(
            "sysctl {key:?} is not allowed in the host's network namespace"
        ));
    }
    if ns.contains(&LinuxNamespaceType::Uts) {
        match k.as_str() {
            "kernel.domainname" => return Ok(()),
            "kernel.hostname" => {
                return bad(format!(
                    "sysctl {key:?} is not allowed as it conflicts with the OCI \"hostname\" field"
                ))
            }
            _ => {}
        }
    }
    bad(format!(
        "sysctl {key:?} is not in a separate kernel namespace"
    ))
}

/// No string that reaches the kernel may hold a NUL byte (it would be cut short there,
/// or fail only at exec): checked over the whole config, keys included, except the
/// annotations, which are the caller's own data. `at` is the JSON path so far.
fn check_no_nul(v: &serde_json::Value, at: &mut String) -> Result<(), SpecError> {
    // The walk below builds each value's path as it goes (an allocation per array
    // element: 400 for a seccomp profile); it runs only to name a NUL found.
    if !has_nul(v, true) {
        return Ok(());
    }
    check_no_nul_at(v, at)
}

/// Whether a string or key of `v` holds a NUL byte; the top level's `annotations` are
/// not looked at.
fn has_nul(v: &serde_json::Value, top: bool) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(|x| has_nul(x, false)),
        Value::Object(m) => m
            .iter()
            .any(|(k, x)| k.contains('\0') || (!(top && k == "annotations") && has_nul(x, false))),
        _ => false,
    }
}

fn check_no_nul_at(v: &serde_json::Value, at: &mut String) -> Result<(), SpecError> {
    use serde_json::Value;
    let nul = |at: &str, s: &str| {
        SpecError::Invalid(format!(
            "{}: {} contains a NUL byte",
            if at.is_empty() { "(top level)" } else { at },
            clip(&format!("{s:?}"))
        ))
    };
    match v {
        Value::String(s) if s.contains('\0') => Err(nul(at, s)),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                check_no_nul_at(x, at)?;
                at.truncate(len);
            }
            Ok(())
        }
        Value::Object(m) => {
            for (k, x) in m {
                let len = at.len();
                if !at.is_empty() {
                    at.push('.');
                }
                at.push_str(k);
                if k.contains('\0') {
                    return Err(nul(at, k));
                }
                if at != "annotations" {
                    check_no_nul_at(x, at)?;
                }
                at.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The longest error message printed whole.
pub const MESSAGE_CHARS: usize = 1000;

/// An error message made readable: each run of more than `CLIP_CHARS` non-blank characters
/// (a value from the caller, quoted by a library) is cut, and a message still longer than
/// `MESSAGE_CHARS` keeps its head and tail, where the problem and its cause are named.
pub fn clip_message(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(MESSAGE_CHARS * 2));
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        out.push_str(&clip(run));
        run.clear();
    };
    for c in msg.chars() {
        if c.is_whitespace() {
            flush(&mut run, &mut out);
            out.push(if c == '\n' || c == '\r' { ' ' } else { c });
        } else {
            run.push(c);
        }
    }
    flush(&mut run, &mut out);
    let n = out.chars().count();
    if n <= MESSAGE_CHARS {
        return out;
    }
    let head: String = out.chars().take(MESSAGE_CHARS * 3 / 4).collect();
    let tail: String = out.chars().skip(n - MESSAGE_CHARS / 5).collect();
    format!("{head} … {tail}")
}

/// Capability names are checked before the config is typed: a name that is no capability
/// at all (`CAP_TEST`) is an error naming it; a real capability the running kernel lacks
/// (above /proc/sys/kernel/cap_last_cap) is dropped with a warning, as runc does, so one
/// config serves kernels old and new. Wrong types are left to the typed parse.
fn check_capability_names(v: &mut serde_json::Value) -> Result<(), SpecError> {
    check_capability_names_with(v, crate::process::caps::last_cap())
}

fn check_capability_names_with(v: &mut serde_json::Value, last: u8) -> Result<(), SpecError> {
    let Some(caps) = v
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return Ok(());
    };
    for (set, list) in caps.iter_mut() {
        let Some(arr) = list.as_array_mut() else {
            continue;
        };
        let mut keep = Vec::with_capacity(arr.len());
        for c in arr.drain(..) {
            let Some(name) = c.as_str() else {
                keep.push(c);
                continue;
            };
            let Ok(cap) = serde_json::from_value::<oci_spec::runtime::Capability>(c.clone()) else {
                return Err(SpecError::Invalid(format!(
                    "process.capabilities.{set}: {} is not a capability",
                    clip(&format!("{name:?}"))
                )));
            };
            if crate::process::caps::index_of(&cap).is_some_and(|i| i <= last) {
                keep.push(c);
            } else {
                crate::warn!(
                    "capability {name} in process.capabilities.{set} is not known to this kernel, ignored"
                );
            }
        }
        *arr = keep;
    }
    Ok(())
}

/// The longest user-supplied value quoted whole in an error message.
pub const CLIP_CHARS: usize = 160;

/// `s` cut to a readable length for an error message (with an ellipsis and the full
/// length when cut): values come from callers and may be megabytes long.
pub fn clip(s: &str) -> String {
    if s.chars().count() <= CLIP_CHARS {
        return s.to_string();
    }
    let head: String = s.chars().take(CLIP_CHARS).collect();
    format!("{head}… ({} bytes)", s.len())
}

/// The default config written by `nucleus spec`: the same container runc's `spec` makes.
pub const DEFAULT_CONFIG: &str = r#"{
  "ociVersion": "1.2.0",
  "process": {
    "terminal": true,
    "user": { "uid": 0, "gid": 0 },
    "args": [ "sh" ],
    "env": [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "TERM=xterm"
    ],
    "cwd": "/",
    "capabilities": {
      "bounding": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
      "effective": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
      "permitted": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
      "ambient": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ]
    },
    "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": true },
  "hostname": "nucleus",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
      "options": [ "nosuid", "strictatime", "mode=755", "size=65536k" ] },
    { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
      "options": [ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" ] },
    { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
      "options": [ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" ] },
    { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
      "options": [ "nosuid", "noexec", "nodev" ] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs",
      "options": [ "nosuid", "noexec", "nodev", "ro" ] },
    { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
      "options": [ "nosuid", "noexec", "nodev", "relatime", "ro" ] }
  ],
  "linux": {
    "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
    "namespaces": [
      { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
      { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" }
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
}
"#;

/// `nucleus spec --rootless`: the default config made runnable by the unprivileged user
/// `uid`:`gid`, as runc's: a user namespace mapping that user (alone) to root, no network
/// namespace (the user could not configure its interfaces), /sys bound from the host
/// (sysfs cannot be mounted without a network namespace of one's own), no uid=/gid= mount
/// options (those ids are not mapped), no cgroup settings (the user may have no cgroup).
pub fn rootless_config(uid: u32, gid: u32) -> String {
    use serde_json::json;
    let mut v: serde_json::Value =
        serde_json::from_str(DEFAULT_CONFIG).expect("the default config is JSON");
    let linux = &mut v["linux"];
    if let Some(ns) = linux["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != "network" && n["type"] != "user");
        ns.push(json!({"type": "user"}));
    }
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    if let Some(o) = linux.as_object_mut() {
        o.remove("resources");
    }
    for m in v["mounts"].as_array_mut().into_iter().flatten() {
        if m["destination"] == "/sys" {
            *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            continue;
        }
        if let Some(opts) = m["options"].as_array_mut() {
            opts.retain(|o| {
                o.as_str()
                    .is_none_or(|s| !s.starts_with("uid=") && !s.starts_with("gid="))
            });
        }
    }
    let mut text = serde_json::to_string_pretty(&v).expect("a JSON value serializes");
    text.push('\n');
    text
}

/// `nucleus spec [--rootless]`: write the default config (the rootless one for the calling
/// user) into `bundle`, never over an existing one.
pub fn write_default(bundle: &Path, rootless: bool) -> Result<(), SpecError> {
    use std::io::Write;
    let path = bundle.join(CONFIG_FILE);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                SpecError::Exists(CONFIG_FILE.into())
            } else {
                SpecError::Write {
                    path: path.clone(),
                    source,
                }
            }
        })?;
    let text = if rootless {
        rootless_config(
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        )
    } else {
        DEFAULT_CONFIG.to_string()
    };
    f.write_all(text.as_bytes())
        .map_err(|source| SpecError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_path_is_canonical_however_named() {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::create_dir_all(bundle.join("a/b")).unwrap();
        std::fs::create_dir(bundle.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink("elsewhere", bundle.join("link")).unwrap();
        std::fs::write(bundle.join("file"), "").unwrap();
        let spec_with = |root: &str| -> Spec {
            serde_json::from_value(serde_json::json!({
                "ociVersion": "1.0.2", "root": {"path": root}
            }))
            .unwrap()
        };
        let got = |root: &str| rootfs_path(&spec_with(root), &bundle);
        assert_eq!(got("a/b").unwrap(), bundle.join("a/b"));
        assert_eq!(got("./a/b/").unwrap(), bundle.join("a/b"));
        assert_eq!(got("a/../elsewhere").unwrap(), bundle.join("elsewhere"));
        assert_eq!(got("link").unwrap(), bundle.join("elsewhere"));
        assert_eq!(
            got(bundle.join("link").to_str().unwrap()).unwrap(),
            bundle.join("elsewhere")
        );
        assert!(matches!(got("file"), Err(SpecError::Invalid(_))));
        assert!(matches!(got("missing"), Err(SpecError::NoRootfs { .. })));
    }

    #[test]
    fn default_config_parses_and_validates() {
        let s: Spec = parse(CONFIG_FILE, DEFAULT_CONFIG.as_bytes()).unwrap();
        validate(&s).unwrap();
    }

    #[test]
    fn a_nul_is_found_and_named_anywhere_but_in_the_annotations() {
        let check = |j: serde_json::Value| check_no_nul(&j, &mut String::new());
        let names: Vec<String> = (0..400).map(|i| format!("call{i}")).collect();
        let clean = serde_json::json!({"linux": {"seccomp": {"syscalls": [{"names": names}]}},
            "annotations": {"a\u{0}": "b\u{0}"}});
        check(clean.clone()).unwrap();
        let mut bad = clean.clone();
        bad["linux"]["seccomp"]["syscalls"][0]["names"][399] = "read\u{0}".into();
        let e = check(bad).unwrap_err().to_string();
        assert!(
            e.contains(": linux.seccomp.syscalls[0].names[399]: ") && e.contains("NUL"),
            "{e}"
        );
        // Only the top level's annotations are the caller's own data.
        let mut nested = clean.clone();
        nested["linux"]["annotations"] = serde_json::json!({"k": "v\u{0}"});
        let e = check(nested).unwrap_err().to_string();
        assert!(e.contains(": linux.annotations.k: "), "{e}");
        let mut key = clean;
        key["process"] = serde_json::json!({"env\u{0}": []});
        let e = check(key).unwrap_err().to_string();
        assert!(e.contains(": process.env"), "{e}");
    }

    #[test]
    fn parse_error_names_the_field() {
        let bad = DEFAULT_CONFIG.replacen("\"CAP_KILL\"", "\"CAP_NOPE\"", 1);
        let e = parse::<Spec>(CONFIG_FILE, bad.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("process.capabilities.bounding"), "{e}");
    }

    #[test]
    fn validation_names_the_problem() {
        let mut v: serde_json::Value = serde_json::from_str(DEFAULT_CONFIG).unwrap();
        v["process"]["cwd"] = "relative".into();
        let s: Spec = serde_json::from_value(v.clone()).unwrap();
        assert!(validate(&s)
            .unwrap_err()
            .to_string()
            .contains("process.cwd"));
        v["process"]["cwd"] = "/".into();
        v["process"]["args"] = serde_json::json!([]);
        let s: Spec = serde_json::from_value(v).unwrap();
        assert!(validate(&s)
            .unwrap_err()
            .to_string()
            .contains("process.args"));
    }

    #[test]
    fn process_is_optional_until_start() {
        let mut v: serde_json::Value = serde_json::from_str(DEFAULT_CONFIG).unwrap();
        v.as_object_mut().unwrap().remove("process");
        let s: Spec = serde_json::from_value(v).unwrap();
        validate(&s).unwrap();
    }

    #[test]
    fn hostname_needs_a_uts_namespace_new_or_joined() {
        let mut v: serde_json::Value = serde_json::from_str(DEFAULT_CONFIG).unwrap();
        // A path that is not the runtime's own namespace (whether it exists is create's
        // business).
        v["linux"]["namespaces"] =
            serde_json::json!([{"type": "mount"}, {"type": "uts", "path": "/run/holder/uts"}]);
        let s: Spec = serde_json::from_value(v.clone()).unwrap();
        validate(&s).unwrap();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}]);
        let s: Spec = serde_json::from_value(v.clone()).unwrap();
        let e = validate(&s).unwrap_err().to_string();
        assert!(
            e.contains("hostname/domainname need a uts namespace"),
            "{e}"
        );
        // Joining the runtime's own by path is no different from inheriting it.
        v["linux"]["namespaces"] =
            serde_json::json!([{"type": "mount"}, {"type": "uts", "path": "/proc/self/ns/uts"}]);
        let s: Spec = serde_json::from_value(v).unwrap();
        let e = validate(&s).unwrap_err().to_string();
        assert!(e.contains("is the runtime's own"), "{e}");
    }

    #[test]
    fn sysctls_need_their_namespace() {
        let ns = |l: &[LinuxNamespaceType]| l.iter().copied().collect::<HashSet<_>>();
        use LinuxNamespaceType::*;
        check_sysctl("net.ipv4.ip_forward", &ns(&[Network])).unwrap();
        check_sysctl("net/ipv4/ip_forward", &ns(&[Network])).unwrap();
        assert!(check_sysctl("net.ipv4.ip_forward", &ns(&[Ipc])).is_err());
        check_sysctl("kernel.shmmax", &ns(&[Ipc])).unwrap();
        check_sysctl("fs.mqueue.msg_max", &ns(&[Ipc])).unwrap();
        assert!(check_sysctl("kernel.shmmax", &ns(&[Network])).is_err());
        check_sysctl("kernel.domainname", &ns(&[Uts])).unwrap();
        assert!(check_sysctl("kernel.hostname", &ns(&[Uts])).is_err());
        let e = check_sysctl("vm.swappiness", &ns(&[Uts, Ipc, Network])).unwrap_err();
        assert!(e.to_string().contains("not in a separate kernel namespace"));
        assert!(check_sysctl("net..x", &ns(&[Network])).is_err());
    }

    #[test]
    fn capability_names_are_checked() {
        let mut v: serde_json::Value = serde_json::from_str(DEFAULT_CONFIG).unwrap();
        v["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_KILL", "CAP_NOPE"]);
        let e = check_capability_names_with(&mut v, 40)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"CAP_NOPE\" is not a capability") && e.contains("bounding"),
            "{e}"
        );
        // A real capability above the kernel's last one (CAP_BPF is 39) is dropped.
        v["process"]["capabilities"]["bounding"] =
            serde_json::json!(["CAP_KILL", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]);
        check_capability_names_with(&mut v, 38).unwrap();
        assert_eq!(
            v["process"]["capabilities"]["bounding"],
            serde_json::json!(["CAP_KILL"])
        );
        // Wrong types are left for the typed parse to name.
        v["process"]["capabilities"]["bounding"] = serde_json::json!([7]);
        check_capability_names_with(&mut v, 40).unwrap();
        assert!(from_value::<Spec>(CONFIG_FILE, v).is_err());
    }

    #[test]
    fn messages_stay_readable() {
        let v = format!("x{}", "y".repeat(1 << 20));
        let m = clip_message(&format!("invalid type: string {v:?}, expected u32"));
        assert!(m.len() < 400, "{}", m.len());
        assert!(m.starts_with("invalid type: string \"xyyy") && m.ends_with("expected u32"));
        let words = "ab ".repeat(100_000);
        let m = clip_message(&format!("bad {words}: Permission denied\nmore"));
        assert!(m.chars().count() < MESSAGE_CHARS + 10, "{}", m.len());
        assert!(m.ends_with("Permission denied more"), "{m}");
        assert_eq!(clip_message("short: fine"), "short: fine");
    }

    #[test]
    fn clip_cuts_long_values() {
        assert_eq!(clip("short"), "short");
        let long = "x".repeat(1 << 20);
        let c = clip(&long);
        assert!(c.len() < 300 && c.ends_with("(1048576 bytes)"), "{c}");
    }

    #[test]
    fn spec_refuses_to_overwrite() {
        let d = tempfile::tempdir().unwrap();
        write_default(d.path(), false).unwrap();
        let e = write_default(d.path(), true).unwrap_err().to_string();
        assert_eq!(e, "File config.json exists. Remove it first");
    }

    #[test]
    fn rootless_config_maps_the_user_and_drops_what_needs_root() {
        let v: serde_json::Value = serde_json::from_str(&rootless_config(1000, 1001)).unwrap();
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(ns.contains(&"user") && !ns.contains(&"network"), "{ns:?}");
        assert_eq!(v["linux"]["uidMappings"][0]["hostID"], 1000);
        assert_eq!(v["linux"]["gidMappings"][0]["hostID"], 1001);
        assert_eq!(v["linux"]["gidMappings"][0]["size"], 1);
        assert!(v["linux"].get("resources").is_none());
        let text = v["mounts"].to_string();
        assert!(!text.contains("gid=") && text.contains("rbind"), "{text}");
        let spec: Spec = parse(CONFIG_FILE, rootless_config(0, 0).as_bytes()).unwrap();
        validate(&spec).unwrap();
    }
}

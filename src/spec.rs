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
    let v: serde_json::Value = serde_json::from_slice(data).map_err(|e| SpecError::Parse {
        file: file.to_string(),
        field: "(syntax)".into(),
        msg: e.to_string(),
    })?;
    from_value(file, v)
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
            msg: e.into_inner().to_string(),
        }
    })
}

/// Read `bundle/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, SpecError> {
    let path = bundle.join(CONFIG_FILE);
    let data = std::fs::read(&path).map_err(|source| SpecError::Read {
        path: path.clone(),
        source,
    })?;
    let mut v: serde_json::Value = parse(CONFIG_FILE, &data)?;
    drop_unknown_capabilities(&mut v);
    from_value(CONFIG_FILE, v)
}

/// The host path of the root filesystem, resolved against the bundle.
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
    match std::fs::canonicalize(&full) {
        Ok(c) if c.is_dir() => Ok(c),
        Ok(_) => Err(SpecError::Invalid(format!(
            "root.path {} is not a directory",
            full.display()
        ))),
        Err(_) => Err(SpecError::NoRootfs { path: full }),
    }
}

/// The checks runc makes before it touches anything, so that a bad config fails early and
/// leaves nothing behind.
pub fn validate(spec: &Spec) -> Result<(), SpecError> {
    let bad = |m: String| Err(SpecError::Invalid(m));
    if spec.version().is_empty() {
        return bad("ociVersion must be set".into());
    }
    let Some(process) = spec.process() else {
        return bad("process must be set".into());
    };
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return bad("process.args must not be empty".into());
    }
    if !process.cwd().is_absolute() {
        return bad(format!(
            "process.cwd {:?} must be an absolute path",
            process.cwd()
        ));
    }
    for e in process.env().iter().flatten() {
        if !e.contains('=') {
            return bad(format!("process.env entry {e:?} is not KEY=VALUE"));
        }
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let mut seen = HashSet::new();
    let mut has_user = false;
    let mut new_uts = false;
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
        new_uts |= ns.typ() == LinuxNamespaceType::Uts && ns.path().is_none();
    }
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if maps && !has_user {
        return bad("linux.uidMappings/gidMappings need a user namespace".into());
    }
    if (spec.hostname().is_some() || spec.domainname().is_some()) && !new_uts {
        return bad("hostname/domainname need a new uts namespace".into());
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

/// Capabilities this build does not know are dropped with a warning rather than failing
/// the whole config (runc does the same), so one config serves kernels old and new.
fn drop_unknown_capabilities(v: &mut serde_json::Value) {
    let Some(caps) = v
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return;
    };
    for (set, list) in caps.iter_mut() {
        let Some(arr) = list.as_array_mut() else {
            continue;
        };
        arr.retain(|c| {
            let known = serde_json::from_value::<oci_spec::runtime::Capability>(c.clone()).is_ok();
            if !known {
                crate::warn!("unknown capability {c} in process.capabilities.{set}, ignored");
            }
            known
        });
    }
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

/// `nucleus spec`: write the default config into `bundle`, never over an existing one.
pub fn write_default(bundle: &Path) -> Result<(), SpecError> {
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
    f.write_all(DEFAULT_CONFIG.as_bytes())
        .map_err(|source| SpecError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses_and_validates() {
        let s: Spec = parse(CONFIG_FILE, DEFAULT_CONFIG.as_bytes()).unwrap();
        validate(&s).unwrap();
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
    fn unknown_capabilities_are_dropped() {
        let mut v: serde_json::Value = serde_json::from_str(DEFAULT_CONFIG).unwrap();
        v["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_KILL", "CAP_NOPE"]);
        drop_unknown_capabilities(&mut v);
        assert_eq!(
            v["process"]["capabilities"]["bounding"],
            serde_json::json!(["CAP_KILL"])
        );
    }

    #[test]
    fn spec_refuses_to_overwrite() {
        let d = tempfile::tempdir().unwrap();
        write_default(d.path()).unwrap();
        let e = write_default(d.path()).unwrap_err().to_string();
        assert_eq!(e, "File config.json exists. Remove it first");
    }
}

//! `nucleus features`: what this runtime supports, in the runc/OCI features format.

use serde_json::{json, Value};

use crate::state::OCI_VERSION;

/// Annotations nucleus acts on, with their accepted values.
pub const ANNOTATIONS: &[(&str, &str)] = &[
    ("run.nucleus.seccomp.mode", "enforce|trace"),
    (
        "run.nucleus.seccomp.trace-file",
        "path (default: seccomp-trace.ndjson in the bundle)",
    ),
    ("run.nucleus.seccomp.log-denied", "true|false"),
    (
        "run.nucleus.seccomp.builtin-filters",
        "default|hardened|strict|all|none|comma-separated syscall names",
    ),
    (
        "run.nucleus.landlock.read",
        "comma-separated absolute container paths (read)",
    ),
    (
        "run.nucleus.landlock.write",
        "comma-separated absolute container paths (read-write)",
    ),
    (
        "run.nucleus.landlock.exec",
        "comma-separated absolute container paths (read, execute)",
    ),
    (
        "run.nucleus.landlock.tcp-bind",
        "none|comma-separated ports or ranges (8000-8099)",
    ),
    (
        "run.nucleus.landlock.tcp-connect",
        "none|comma-separated ports or ranges (8000-8099)",
    ),
    ("run.nucleus.landlock.mode", "enforce|best-effort"),
];

fn capabilities() -> Vec<String> {
    let last = crate::procinfo::cap_last_cap();
    let mut all: Vec<caps::Capability> = caps::all()
        .into_iter()
        .filter(|c| c.index() <= last)
        .collect();
    all.sort_by_key(|c| c.index());
    all.iter().map(|c| c.to_string()).collect()
}

/// `features` annotation: "true" when `checkpoint` and `restore` can run (CRIU installed).
pub const CHECKPOINT_ENABLED: &str = "run.nucleus.checkpoint.enabled";

pub fn value() -> Value {
    let mut ann = serde_json::Map::new();
    ann.insert(
        "run.nucleus.version".into(),
        env!("CARGO_PKG_VERSION").into(),
    );
    for (k, v) in ANNOTATIONS {
        ann.insert((*k).into(), (*v).into());
    }
    // The kernel's Landlock ABI version (0: no Landlock).
    ann.insert(
        crate::landlock::STATE_ABI.into(),
        crate::landlock::abi().to_string().into(),
    );
    // `checkpoint`/`restore` are built in and run CRIU: enabled where it is installed
    // (runc's annotation of the same meaning: org.opencontainers.runc.checkpoint.enabled).
    ann.insert(
        CHECKPOINT_ENABLED.into(),
        crate::container::criu_available().to_string().into(),
    );
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": crate::rootfs::options::KNOWN_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": capabilities(),
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": true},
            "seccomp": crate::seccomp::features(),
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": ann
    })
}

pub fn json() -> String {
    serde_json::to_string_pretty(&value()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_our_annotations_and_kernel_caps() {
        let v = super::value();
        assert!(v["annotations"]["run.nucleus.seccomp.mode"].is_string());
        assert_eq!(
            v["annotations"]["run.nucleus.landlock.abi"],
            crate::landlock::abi().to_string()
        );
        let caps = v["linux"]["capabilities"].as_array().unwrap();
        assert_eq!(caps[0], "CAP_CHOWN");
        assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
    }
}

//! What `nucleus features` reports about seccomp (the OCI features document).

use oci_spec::runtime::{Arch, LinuxSeccompAction, Seccomp, SeccompBuilder};

/// Filter flags nucleus understands, with the seccomp(2) bits to probe them.
const KNOWN_FLAGS: &[(&str, u64)] = &[
    // Accepted and ignored: the filter is installed while the process is single-threaded.
    ("SECCOMP_FILTER_FLAG_TSYNC", libc::SECCOMP_FILTER_FLAG_TSYNC),
    (
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    ),
    ("SECCOMP_FILTER_FLAG_LOG", libc::SECCOMP_FILTER_FLAG_LOG),
    (
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        // Only valid together with NEW_LISTENER.
        libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
    ),
];

/// Whether the kernel knows `flags`: with a NULL program it answers EFAULT for known flags
/// and EINVAL for unknown ones, installing nothing.
fn kernel_supports(flags: u64) -> bool {
    // SAFETY: a NULL program makes seccomp(2) fail before it changes anything.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// The `linux.seccomp` part of the features document.
pub fn features() -> Seccomp {
    let supported: Vec<String> = KNOWN_FLAGS
        .iter()
        .filter(|(_, bits)| kernel_supports(*bits))
        .map(|(name, _)| name.to_string())
        .collect();
    SeccompBuilder::default()
        .enabled(true)
        .actions(vec![
            LinuxSeccompAction::ScmpActAllow,
            LinuxSeccompAction::ScmpActErrno,
            LinuxSeccompAction::ScmpActKill,
            LinuxSeccompAction::ScmpActKillProcess,
            LinuxSeccompAction::ScmpActKillThread,
            LinuxSeccompAction::ScmpActLog,
            LinuxSeccompAction::ScmpActNotify,
            LinuxSeccompAction::ScmpActTrace,
            LinuxSeccompAction::ScmpActTrap,
        ])
        .operators(
            [
                "SCMP_CMP_EQ",
                "SCMP_CMP_GE",
                "SCMP_CMP_GT",
                "SCMP_CMP_LE",
                "SCMP_CMP_LT",
                "SCMP_CMP_MASKED_EQ",
                "SCMP_CMP_NE",
            ]
            .map(String::from)
            .to_vec(),
        )
        .archs(vec![
            Arch::ScmpArchX32,
            Arch::ScmpArchX86,
            Arch::ScmpArchX86_64,
        ])
        .known_flags(
            KNOWN_FLAGS
                .iter()
                .map(|(n, _)| n.to_string())
                .collect::<Vec<_>>(),
        )
        .supported_flags(supported)
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_actions_and_kernel_flags() {
        let f = features();
        assert_eq!(f.enabled(), &Some(true));
        assert_eq!(f.actions().as_ref().map(Vec::len), Some(9));
        let supported = f.supported_flags().clone().unwrap();
        // Present since Linux 4.14 / 4.17.
        assert!(supported.contains(&"SECCOMP_FILTER_FLAG_LOG".to_string()));
        assert!(supported.contains(&"SECCOMP_FILTER_FLAG_SPEC_ALLOW".to_string()));
        let json = serde_json::to_value(&f).unwrap();
        assert!(json["knownFlags"].is_array() && json["archs"][2] == "SCMP_ARCH_X86_64");
        // The probe installed nothing.
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        assert!(status
            .lines()
            .any(|l| l.starts_with("Seccomp:") && l.ends_with('0')));
    }
}

//! What the kernel itself refuses a container's processes, known when its filter is built:
//! the capabilities they can ever hold, their user namespace, and two sysctls read from the
//! runtime's /proc/sys. The built-in merge drops a rule only where these facts show the
//! kernel already refuses everything the rule refuses, for every process holding the filter.

use std::collections::HashSet;
use std::os::fd::AsFd;

use oci_spec::runtime::{Capability, Process};

use crate::rootfs::procfs;

/// The user namespace of the processes holding the filter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserNs {
    /// The runtime's own (maybe the initial one): capable() can pass there.
    #[default]
    Runtime,
    /// One the runtime creates, a child of its own: capabilities held in it never count
    /// for capable(), which checks the initial user namespace.
    New,
    /// One joined by path: it may be the initial one, or outside the runtime's.
    Joined,
}

/// Facts about the processes a filter is built for. The default knows nothing: no rule is
/// dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelFacts {
    /// Every capability a process holding the filter can ever have: the union of its
    /// process's bounding, permitted, effective, inheritable and ambient sets (exec and
    /// file capabilities cannot add one outside them). None: no `capabilities` section, the
    /// process keeps the runtime's.
    pub capabilities: Option<HashSet<Capability>>,
    pub user_ns: UserNs,
    /// `dev.tty.legacy_tiocsti` (Linux 6.2 and later); None where absent or unreadable.
    pub legacy_tiocsti: Option<bool>,
    /// `user.max_user_namespaces` of the runtime's user namespace; None if unreadable.
    pub max_user_namespaces: Option<u64>,
}

impl KernelFacts {
    /// The facts for `process` (the container's init or an exec'd process), the sysctls read
    /// now.
    pub fn read(process: Option<&Process>, user_ns: UserNs) -> KernelFacts {
        let sys = procfs::runtime_sysctls().ok();
        let sysctl = |rel| sys.as_ref().and_then(|s| procfs::sysctl(s.as_fd(), rel));
        KernelFacts {
            capabilities: process.map(held_capabilities).unwrap_or(None),
            user_ns,
            legacy_tiocsti: sysctl("dev/tty/legacy_tiocsti").map(|v| v != 0),
            max_user_namespaces: sysctl("user/max_user_namespaces"),
        }
    }

    /// Some process holding the filter may have `cap` in some user namespace.
    pub fn may_hold(&self, cap: Capability) -> bool {
        self.capabilities.as_ref().is_none_or(|s| s.contains(&cap))
    }

    /// capable(`cap`) can pass for some process holding the filter: it holds `cap` and is
    /// in the initial user namespace.
    pub fn capable(&self, cap: Capability) -> bool {
        self.user_ns != UserNs::New && self.may_hold(cap)
    }

    /// No process holding the filter can create a user namespace: the runtime's user
    /// namespace, an ancestor of theirs, allows none (inc_ucount() checks every ancestor's
    /// limit).
    pub fn no_user_namespaces(&self) -> bool {
        self.user_ns != UserNs::Joined && self.max_user_namespaces == Some(0)
    }
}

fn held_capabilities(p: &Process) -> Option<HashSet<Capability>> {
    let c = p.capabilities().as_ref()?;
    let sets = [
        c.bounding(),
        c.permitted(),
        c.effective(),
        c.inheritable(),
        c.ambient(),
    ];
    Some(sets.into_iter().flatten().flatten().copied().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctls_are_read_from_procfs() {
        let want: u64 = std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let sys = procfs::runtime_sysctls().unwrap();
        let sys = sys.as_fd();
        assert_eq!(procfs::sysctl(sys, "user/max_user_namespaces"), Some(want));
        assert_eq!(procfs::sysctl(sys, "user/no_such_sysctl"), None);
        assert_eq!(
            procfs::sysctl(sys, "kernel/osrelease"),
            None,
            "not a number"
        );
    }

    #[test]
    fn capabilities_are_the_union_of_the_sets() {
        let p: Process = serde_json::from_value(serde_json::json!({
            "cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": ["CAP_KILL"], "inheritable": ["CAP_SYS_ADMIN"]}
        }))
        .unwrap();
        let f = KernelFacts::read(Some(&p), UserNs::Runtime);
        assert!(f.may_hold(Capability::SysAdmin) && f.capable(Capability::Kill));
        assert!(!f.may_hold(Capability::SysResource));
        let none: Process = serde_json::from_value(
            serde_json::json!({"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}}),
        )
        .unwrap();
        let f = KernelFacts::read(Some(&none), UserNs::Runtime);
        assert!(
            f.capable(Capability::SysResource),
            "no section keeps every capability"
        );
        let f = KernelFacts::read(Some(&none), UserNs::New);
        assert!(f.may_hold(Capability::SysAdmin) && !f.capable(Capability::SysAdmin));
    }
}

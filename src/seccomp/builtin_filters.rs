//! Built-in argument filters, merged into a profile where it allows a hardened syscall
//! unconditionally. What a built-in rule refuses gets the profile's default action, so a
//! refused call fails the way the profile fails everything else (clone3 alone gets ENOSYS,
//! which libc needs to fall back to clone).
//!
//! Two strengths. The default set refuses only what no ordinary workload needs and what
//! widens the kernel's attack surface: namespace creation through clone/clone3/unshare,
//! terminal injection and line-discipline ioctls, PR_SET_MM, socket domains beyond
//! unix/inet/inet6/netlink (and packet in a private network namespace) including through
//! i386 socketcall, limits of other processes, exotic personalities. JITs (V8, HotSpot,
//! LuaJIT, .NET), `ulimit`, terminals and network tools run unchanged. `strict` adds rules
//! that some workloads inherently break: W^X for mprotect/pkey_mprotect (every JIT),
//! no execveat(AT_EMPTY_PATH) (fexecve), and allowlists instead of denylists for ioctl
//! requests and prctl options.

use super::policy::{is_permissive, ArgCond, CmpOp, CondRule, Policy, SyscallRules};
use super::SeccompError;
use std::collections::BTreeSet;

/// Which built-in filters are merged (`run.nucleus.seccomp.builtin-filters`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum BuiltinFilters {
    /// The rules that break no mainstream workload (`default`).
    #[default]
    Default,
    /// Every rule at its strictest (`strict`, also spelled `all`).
    All,
    None,
    /// The strict rule of each named syscall.
    Only(BTreeSet<String>),
}

/// The syscalls that have a built-in filter.
pub const BUILTIN_SYSCALLS: &[&str] = &[
    "clone",
    "clone3",
    "execveat",
    "ioctl",
    "mprotect",
    "personality",
    "pkey_mprotect",
    "prctl",
    "prlimit64",
    "socket",
    "socketcall",
    "unshare",
];

/// The syscalls filtered by the default set.
pub const DEFAULT_SYSCALLS: &[&str] = &[
    "clone",
    "clone3",
    "ioctl",
    "personality",
    "prctl",
    "prlimit64",
    "socket",
    "socketcall",
    "unshare",
];

/// How strict the rule merged for one syscall is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strength {
    Default,
    Strict,
}

impl BuiltinFilters {
    /// Parses `default`, `strict` (or `all`), `none` or a comma list of syscall names having
    /// a built-in filter.
    pub fn parse(s: &str) -> Result<Self, SeccompError> {
        match s.trim() {
            "default" => Ok(Self::Default),
            "strict" | "all" => Ok(Self::All),
            "none" | "" => Ok(Self::None),
            list => {
                let mut set = BTreeSet::new();
                for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    if !BUILTIN_SYSCALLS.contains(&name) {
                        return Err(SeccompError::UnknownBuiltinFilter(name.to_string()));
                    }
                    set.insert(name.to_string());
                }
                Ok(Self::Only(set))
            }
        }
    }

    /// The rule merged for `name`, if any.
    pub fn strength(&self, name: &str) -> Option<Strength> {
        match self {
            Self::Default => DEFAULT_SYSCALLS
                .contains(&name)
                .then_some(Strength::Default),
            Self::All => BUILTIN_SYSCALLS.contains(&name).then_some(Strength::Strict),
            Self::None => None,
            Self::Only(set) => set.contains(name).then_some(Strength::Strict),
        }
    }

    pub fn includes(&self, name: &str) -> bool {
        self.strength(name).is_some()
    }
}

const CLONE_NS_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// prctl options an unprivileged workload legitimately uses (PR_SET_MM, PR_SET_PTRACER of
/// any pid and friends stay out).
const PRCTL_ALLOWED: &[u32] = &[
    libc::PR_SET_PDEATHSIG as u32,
    libc::PR_GET_PDEATHSIG as u32,
    libc::PR_GET_DUMPABLE as u32,
    libc::PR_SET_DUMPABLE as u32,
    libc::PR_GET_KEEPCAPS as u32,
    libc::PR_SET_KEEPCAPS as u32,
    libc::PR_SET_NAME as u32,
    libc::PR_GET_NAME as u32,
    libc::PR_GET_SECCOMP as u32,
    libc::PR_SET_SECCOMP as u32,
    libc::PR_CAPBSET_READ as u32,
    libc::PR_CAPBSET_DROP as u32,
    libc::PR_GET_SECUREBITS as u32,
    libc::PR_SET_SECUREBITS as u32,
    libc::PR_GET_TIMERSLACK as u32,
    libc::PR_SET_TIMERSLACK as u32,
    libc::PR_MCE_KILL as u32,
    libc::PR_MCE_KILL_GET as u32,
    libc::PR_SET_CHILD_SUBREAPER as u32,
    libc::PR_GET_CHILD_SUBREAPER as u32,
    libc::PR_SET_NO_NEW_PRIVS as u32,
    libc::PR_GET_NO_NEW_PRIVS as u32,
    libc::PR_GET_TID_ADDRESS as u32,
    libc::PR_SET_THP_DISABLE as u32,
    libc::PR_GET_THP_DISABLE as u32,
    libc::PR_CAP_AMBIENT as u32,
    libc::PR_GET_SPECULATION_CTRL as u32,
    libc::PR_SET_SPECULATION_CTRL as u32,
    // PR_SET_VMA: glibc names anonymous mappings with it.
    0x5356_4d41,
    // PR_SET_MDWE / PR_GET_MDWE
    65,
    66,
    libc::PR_SET_PTRACER as u32,
    libc::PR_GET_TIMING as u32,
    libc::PR_GET_ENDIAN as u32,
    libc::PR_GET_FP_MODE as u32,
    // PR_GET_AUXV
    0x4155_5856,
];

/// prctl options the default set refuses: rewriting the process's memory map layout.
const PRCTL_DENIED: &[u32] = &[libc::PR_SET_MM as u32];

/// ioctl requests: terminals, generic fd control, file cloning and interface queries.
const IOCTL_ALLOWED: &[u32] = &[
    0x5401,      // TCGETS
    0x5413,      // TIOCGWINSZ
    0x541B,      // FIONREAD
    0x5421,      // FIONBIO
    0x5451,      // FIOCLEX
    0x5450,      // FIONCLEX
    0x5452,      // FIOASYNC
    0x5460,      // FIOQSIZE
    0x5402,      // TCSETS
    0x5403,      // TCSETSW
    0x5404,      // TCSETSF
    0x5405,      // TCGETA
    0x5406,      // TCSETA
    0x5407,      // TCSETAW
    0x5408,      // TCSETAF
    0x5409,      // TCSBRK
    0x540A,      // TCXONC
    0x540B,      // TCFLSH
    0x540E,      // TIOCSCTTY
    0x540F,      // TIOCGPGRP
    0x5410,      // TIOCSPGRP
    0x5411,      // TIOCOUTQ
    0x5414,      // TIOCSWINSZ
    0x5415,      // TIOCMGET
    0x5422,      // TIOCNOTTY
    0x5425,      // TCSBRKP
    0x5429,      // TIOCGSID
    0x5441,      // TIOCGPTPEER
    0x802C_542A, // TCGETS2
    0x402C_542B, // TCSETS2
    0x402C_542C, // TCSETSW2
    0x402C_542D, // TCSETSF2
    0x8004_5430, // TIOCGPTN
    0x4004_5431, // TIOCSPTLCK
    0x8004_5432, // TIOCGDEV
    0x8901,      // FIOSETOWN
    0x8903,      // FIOGETOWN
    0x8905,      // SIOCATMARK
    0x8906,      // SIOCGSTAMP
    0x8907,      // SIOCGSTAMPNS
    0x8910,      // SIOCGIFNAME
    0x8912,      // SIOCGIFCONF
    0x8913,      // SIOCGIFFLAGS
    0x8915,      // SIOCGIFADDR
    0x8917,      // SIOCGIFDSTADDR
    0x8919,      // SIOCGIFBRDADDR
    0x891B,      // SIOCGIFNETMASK
    0x891D,      // SIOCGIFMETRIC
    0x8921,      // SIOCGIFMTU
    0x8927,      // SIOCGIFHWADDR
    0x8933,      // SIOCGIFINDEX
    0x8935,      // SIOCGIFPFLAGS
    0x8938,      // SIOCGIFCOUNT
    0x8942,      // SIOCGIFTXQLEN
    0x8946,      // SIOCETHTOOL
    0x8970,      // SIOCGIFMAP
    0x8B01,      // SIOCGIWNAME
    0x8004_5200, // RNDGETENTCNT
    0x4004_9409, // FICLONE
    0x4020_940D, // FICLONERANGE
    0xC018_9436, // FIDEDUPERANGE
    0x8008_6601, // FS_IOC_GETFLAGS
    0xC020_660B, // FS_IOC_FIEMAP
];

/// ioctl requests the default set refuses: typing into the controlling terminal (TIOCSTI),
/// console redirection and control (TIOCCONS, TIOCLINUX), line disciplines (TIOCSETD, a
/// door to rarely used kernel code) and serial port reconfiguration (TIOCSSERIAL).
const IOCTL_DENIED: &[u32] = &[0x5412, 0x541D, 0x541C, 0x5423, 0x541F];

const PERSONALITY_ALLOWED: &[u32] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

fn socket_domains(new_netns: bool) -> Vec<u32> {
    let mut d = vec![
        libc::AF_UNIX as u32,
        libc::AF_INET as u32,
        libc::AF_INET6 as u32,
        libc::AF_NETLINK as u32,
    ];
    // In a private network namespace packet sockets see only the container's interfaces.
    if new_netns {
        d.push(libc::AF_PACKET as u32);
    }
    d
}

/// `(int)arg == v`: the kernel reads these arguments as 32-bit ints.
fn int_eq(index: u8, v: u32) -> ArgCond {
    ArgCond::new(index, CmpOp::MaskedEq, 0xffff_ffff, v as u64)
}

fn allow_any_of(index: u8, values: &[u32]) -> SyscallRules {
    SyscallRules {
        conditional: values
            .iter()
            .map(|&v| CondRule {
                conds: vec![int_eq(index, v)],
                action: libc::SECCOMP_RET_ALLOW,
            })
            .collect(),
        ..Default::default()
    }
}

fn allow_if(cond: ArgCond) -> SyscallRules {
    SyscallRules {
        conditional: vec![CondRule {
            conds: vec![cond],
            action: libc::SECCOMP_RET_ALLOW,
        }],
        ..Default::default()
    }
}

/// `deny` for calls whose argument `index` is one of `values`, allowed otherwise.
fn deny_any_of(index: u8, values: &[u32], deny: u32) -> SyscallRules {
    SyscallRules {
        conditional: values
            .iter()
            .map(|&v| CondRule {
                conds: vec![int_eq(index, v)],
                action: deny,
            })
            .collect(),
        unconditional: Some(libc::SECCOMP_RET_ALLOW),
        ..Default::default()
    }
}

fn no_namespace_flags() -> SyscallRules {
    allow_if(ArgCond::new(0, CmpOp::MaskedEq, CLONE_NS_FLAGS, 0))
}

/// socketcall(2)'s SYS_SOCKET: its arguments sit in memory a filter cannot read, so the
/// i386 way around the socket domain rule is closed whole.
const SYS_SOCKET: u32 = 1;

/// The rules a built-in filter puts in place of an unconditional allow, with a description.
fn builtin_rules(
    name: &str,
    strength: Strength,
    deny: u32,
    new_netns: bool,
) -> Option<(SyscallRules, String)> {
    let strict = strength == Strength::Strict;
    Some(match name {
        "clone" | "unshare" => (
            no_namespace_flags(),
            "allowed without namespace flags".into(),
        ),
        "clone3" => (
            SyscallRules {
                conditional: vec![],
                unconditional: Some(super::policy::SECCOMP_RET_ERRNO_ENOSYS),
                ..Default::default()
            },
            // Its flags live in memory a filter cannot read; libc falls back to clone.
            "fails with ENOSYS so libc falls back to clone".into(),
        ),
        "execveat" => (
            allow_if(ArgCond::new(
                4,
                CmpOp::MaskedEq,
                libc::AT_EMPTY_PATH as u64,
                0,
            )),
            "allowed without AT_EMPTY_PATH".into(),
        ),
        "mprotect" | "pkey_mprotect" => {
            let wx = (libc::PROT_WRITE | libc::PROT_EXEC) as u64;
            (
                SyscallRules {
                    conditional: vec![CondRule {
                        conds: vec![ArgCond::new(2, CmpOp::MaskedEq, wx, wx)],
                        action: deny,
                    }],
                    unconditional: Some(libc::SECCOMP_RET_ALLOW),
                    ..Default::default()
                },
                "PROT_WRITE|PROT_EXEC together refused".into(),
            )
        }
        "socket" => {
            let d = socket_domains(new_netns);
            (allow_any_of(0, &d), format!("domains {d:?} allowed"))
        }
        "socketcall" => (
            deny_any_of(0, &[SYS_SOCKET], deny),
            "SYS_SOCKET refused (the socket domain rule cannot see its arguments)".into(),
        ),
        "prctl" if strict => (
            allow_any_of(0, PRCTL_ALLOWED),
            format!("{} options allowed", PRCTL_ALLOWED.len()),
        ),
        "prctl" => (
            deny_any_of(0, PRCTL_DENIED, deny),
            format!("options {PRCTL_DENIED:?} refused"),
        ),
        "ioctl" if strict => (
            allow_any_of(1, IOCTL_ALLOWED),
            format!("{} requests allowed", IOCTL_ALLOWED.len()),
        ),
        "ioctl" => (
            deny_any_of(1, IOCTL_DENIED, deny),
            format!("requests {IOCTL_DENIED:x?} refused"),
        ),
        "prlimit64" => (
            SyscallRules {
                conditional: vec![
                    CondRule {
                        conds: vec![int_eq(0, 0)],
                        action: libc::SECCOMP_RET_ALLOW,
                    },
                    CondRule {
                        conds: vec![ArgCond::new(2, CmpOp::Eq, 0, 0)],
                        action: libc::SECCOMP_RET_ALLOW,
                    },
                ],
                ..Default::default()
            },
            "its own limits (pid 0), or reading another process's".into(),
        ),
        "personality" => (
            allow_any_of(0, PERSONALITY_ALLOWED),
            format!("personalities {PERSONALITY_ALLOWED:x?} allowed"),
        ),
        _ => return None,
    })
}

/// Merges the selected built-in filters into `policy`; returns what was done, for debug logs.
pub fn merge(policy: &mut Policy, which: &BuiltinFilters, new_netns: bool) -> Vec<String> {
    let mut log = Vec::new();
    if *which == BuiltinFilters::None {
        return log;
    }
    if is_permissive(policy.default_action) {
        log.push("seccomp: default action lets syscalls run; built-in filters not merged".into());
        return log;
    }
    let deny = policy.default_action;
    for &name in BUILTIN_SYSCALLS {
        let Some(strength) = which.strength(name) else {
            continue;
        };
        let Some(current) = policy.rules.get_mut(name) else {
            continue;
        };
        if !current.conditional.is_empty() || current.unconditional != Some(libc::SECCOMP_RET_ALLOW)
        {
            log.push(format!(
                "seccomp: {name} has its own rules in the profile; built-in filter not merged"
            ));
            continue;
        }
        if let Some((rules, what)) = builtin_rules(name, strength, deny, new_netns) {
            *current = SyscallRules {
                nrs: current.nrs,
                first_match: true,
                ..rules
            };
            log.push(format!(
                "seccomp: built-in filter merged for {name}: {what}"
            ));
        }
    }
    log
}

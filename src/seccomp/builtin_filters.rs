//! Built-in argument filters, merged into a profile where it allows a hardened syscall
//! unconditionally. What a built-in rule refuses gets the profile's default action, so a
//! refused call fails the way the profile fails everything else (clone3 alone gets ENOSYS,
//! which libc needs to fall back to clone).
//!
//! Three levels, one table ([`BUILTINS`]: each syscall with the lowest level that merges
//! its rule). The `default` set never takes a hot syscall out of the kernel's seccomp action
//! cache: running any filter at all costs a call ~18 ns more than the cache's answer, so it
//! filters only syscalls that are rare and whose own cost dwarfs a filter run: socket
//! domains beyond unix/inet/inet6/netlink (and packet in a private network namespace),
//! including through i386 socketcall, limits of other processes, exotic personalities.
//! ioctl, prctl, clone, clone3 and unshare are left as the profile says, as under runc.
//! `hardened` adds the rules on those hot syscalls that break no ordinary workload:
//! namespace creation through clone/clone3/unshare, terminal injection and line-discipline
//! ioctls, PR_SET_MM. JITs (V8, HotSpot, LuaJIT, .NET), `ulimit`, terminals and network
//! tools run unchanged under both. `strict` adds rules that some workloads inherently break:
//! W^X for mprotect/pkey_mprotect (every JIT), no execveat(AT_EMPTY_PATH) (fexecve), and
//! allowlists instead of denylists for ioctl requests and prctl options.
//!
//! A `hardened` rule is left out where the kernel already refuses everything it refuses to
//! every process the filter is built for ([`KernelFacts`]): TIOCCONS and TIOCSTI without a
//! reachable CAP_SYS_ADMIN, namespace flags where no namespace can be created. The others
//! stay: the kernel lets an unprivileged process reach what they refuse.

use super::kernel_facts::KernelFacts;
use super::policy::{is_permissive, ArgCond, CmpOp, CondRule, Policy, SyscallRules};
use super::SeccompError;
use oci_spec::runtime::Capability;
use std::collections::BTreeSet;

/// Which built-in filters are merged (`run.nucleus.seccomp.builtin-filters`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum BuiltinFilters {
    /// The rules that keep every hot syscall in the kernel's action cache (`default`).
    #[default]
    Default,
    /// The default's and those on hot syscalls that break no mainstream workload
    /// (`hardened`).
    Hardened,
    /// Every rule at its strictest (`strict`, also spelled `all`).
    All,
    None,
    /// The strict rule of each named syscall.
    Only(BTreeSet<String>),
}

/// The level of a built-in rule: the lowest set that merges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Default,
    Hardened,
    Strict,
}

/// Every syscall having a built-in filter, with the lowest level that merges it. ioctl,
/// prctl, clone, clone3 and unshare are hot: a rule on them makes every call run the
/// filter, so they start at `hardened`.
pub const BUILTINS: &[(&str, Level)] = &[
    ("clone", Level::Hardened),
    ("clone3", Level::Hardened),
    ("execveat", Level::Strict),
    ("ioctl", Level::Hardened),
    ("mprotect", Level::Strict),
    ("personality", Level::Default),
    ("pkey_mprotect", Level::Strict),
    ("prctl", Level::Hardened),
    ("prlimit64", Level::Default),
    ("socket", Level::Default),
    ("socketcall", Level::Default),
    ("unshare", Level::Hardened),
];

/// The syscalls that have a built-in filter.
pub fn builtin_syscalls() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|&(name, _)| name)
}

fn level_of(name: &str) -> Option<Level> {
    BUILTINS.iter().find(|&&(n, _)| n == name).map(|&(_, l)| l)
}

/// How strict the rule merged for one syscall is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strength {
    /// The rule of the default and hardened sets (denylists for ioctl and prctl).
    Default,
    Strict,
}

impl BuiltinFilters {
    /// Parses `default`, `hardened`, `strict` (or `all`), `none` or a comma list of syscall
    /// names having a built-in filter.
    pub fn parse(s: &str) -> Result<Self, SeccompError> {
        match s.trim() {
            "default" => Ok(Self::Default),
            "hardened" => Ok(Self::Hardened),
            "strict" | "all" => Ok(Self::All),
            "none" | "" => Ok(Self::None),
            list => {
                let mut set = BTreeSet::new();
                for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    if level_of(name).is_none() {
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
        let level = level_of(name)?;
        match self {
            Self::Default => (level == Level::Default).then_some(Strength::Default),
            Self::Hardened => (level <= Level::Hardened).then_some(Strength::Default),
            Self::All => Some(Strength::Strict),
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

/// prctl options the hardened set refuses: rewriting the process's memory map layout.
/// Never dropped: prctl_set_mm() (kernel/sys.c) asks capable(CAP_SYS_RESOURCE) only after
/// handing PR_SET_MM_MAP and PR_SET_MM_MAP_SIZE to prctl_set_mm_map(), which needs no
/// capability at all (only a new exe_fd needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN in
/// the caller's own user namespace): with CONFIG_CHECKPOINT_RESTORE, as distributions build,
/// any process can rewrite its code, data, brk, stack, argument, environment and auxv
/// bounds.
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

/// ioctl requests the hardened set refuses: typing into the controlling terminal (TIOCSTI),
/// console redirection and control (TIOCCONS, TIOCLINUX), line disciplines (TIOCSETD, a
/// door to rarely used kernel code) and serial port reconfiguration (TIOCSSERIAL).
const IOCTL_DENIED: &[(u32, &str)] = &[
    (0x5412, "TIOCSTI"),
    (0x541D, "TIOCCONS"),
    (0x541C, "TIOCLINUX"),
    (0x5423, "TIOCSETD"),
    (0x541F, "TIOCSSERIAL"),
];

/// Why the kernel already refuses `request` to every process `facts` describe, if it does
/// (drivers/tty/tty_io.c unless said otherwise). The others stay filtered:
/// - TIOCLINUX: tioclinux() (drivers/tty/vt/vt.c) lets a process use most subcommands on
///   its own controlling tty when that is a virtual console; a VT handed to the container
///   (a device, an inherited stdio fd) can become one through tiocsctty() without any
///   capability when no session holds it.
/// - TIOCSETD: tiocsetd() checks no capability, and tty_ldisc_get() (tty_ldisc.c) loads a
///   line discipline module for anyone while dev.tty.ldisc_autoload is 1; with it 0, the
///   disciplines already loaded stay reachable on any pty the container opens (/dev/ptmx).
/// - TIOCSSERIAL: tty_tiocsserial() leaves the check to the driver; uart_set_info()
///   (serial_core.c) lets anyone change the user-settable flags and divisor of a serial
///   port they have open, and a serial port can reach the container as a device or as an
///   inherited stdio fd.
fn ioctl_refused_by_kernel(request: u32, facts: &KernelFacts) -> Option<&'static str> {
    let admin = facts.capable(Capability::SysAdmin);
    match request {
        // tioccons(): capable(CAP_SYS_ADMIN) first.
        0x541D if !admin => Some(
            "tioccons() needs CAP_SYS_ADMIN in the initial user namespace, which no process \
             of the container can hold",
        ),
        // tiocsti(): without CAP_SYS_ADMIN, -EIO while dev.tty.legacy_tiocsti is 0, before
        // the controlling-tty test (a container can make a tty no session holds its own).
        0x5412 if !admin && facts.legacy_tiocsti == Some(false) => Some(
            "tiocsti() refuses it without CAP_SYS_ADMIN in the initial user namespace while \
             dev.tty.legacy_tiocsti is 0, and no process of the container can hold it",
        ),
        _ => None,
    }
}

/// Why the kernel already refuses every namespace flag of clone, clone3 and unshare to the
/// processes `facts` describe, if it does: a user namespace needs no capability, but
/// create_user_ns() (kernel/user_namespace.c) fails when inc_ucount() finds an ancestor
/// namespace's user.max_user_namespaces reached; every other namespace needs
/// ns_capable(CAP_SYS_ADMIN) in the caller's user namespace (copy_namespaces() and
/// unshare_nsproxy_namespaces(), kernel/nsproxy.c), which a process without the
/// capability in any of its sets can only get from a new user namespace.
fn namespaces_refused_by_kernel(facts: &KernelFacts) -> Option<&'static str> {
    (facts.no_user_namespaces() && !facts.may_hold(Capability::SysAdmin)).then_some(
        "user.max_user_namespaces is 0 and no process of the container can hold \
         CAP_SYS_ADMIN: the kernel creates no namespace for it",
    )
}

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

/// The strict allowlist or the default denylist of argument `index`'s values.
fn allow_or_deny(
    strict: bool,
    index: u8,
    allowed: &[u32],
    denied: &[u32],
    deny: u32,
    what: &str,
) -> (SyscallRules, String) {
    if strict {
        let n = allowed.len();
        (allow_any_of(index, allowed), format!("{n} {what} allowed"))
    } else {
        let list: Vec<String> = denied.iter().map(|v| format!("{v:#x}")).collect();
        let d = deny_any_of(index, denied, deny);
        (d, format!("{what} {} refused", list.join(", ")))
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
    ioctl_denied: &[u32],
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
        "prctl" => allow_or_deny(strict, 0, PRCTL_ALLOWED, PRCTL_DENIED, deny, "options"),
        "ioctl" => allow_or_deny(strict, 1, IOCTL_ALLOWED, ioctl_denied, deny, "requests"),
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
/// A rule of the default or hardened set the kernel already enforces for every process
/// `facts` describes is dropped (whole, or one ioctl request of it), and the log says why;
/// strict rules are always merged.
pub fn merge(
    policy: &mut Policy,
    which: &BuiltinFilters,
    new_netns: bool,
    facts: &KernelFacts,
) -> Vec<String> {
    let mut log = Vec::new();
    if *which == BuiltinFilters::None {
        return log;
    }
    if is_permissive(policy.default_action) {
        log.push("seccomp: default action lets syscalls run; built-in filters not merged".into());
        return log;
    }
    let deny = policy.default_action;
    let mut ioctl_denied = Vec::new();
    for &(request, name) in IOCTL_DENIED {
        match ioctl_refused_by_kernel(request, facts) {
            Some(why) if which.strength("ioctl") == Some(Strength::Default) => log.push(format!(
                "seccomp: built-in filter does not check ioctl {name}: {why}"
            )),
            _ => ioctl_denied.push(request),
        }
    }
    for name in builtin_syscalls() {
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
        if strength == Strength::Default {
            let pruned = match name {
                "clone" | "clone3" | "unshare" => namespaces_refused_by_kernel(facts),
                "ioctl" if ioctl_denied.is_empty() => {
                    Some("the kernel refuses every request it would")
                }
                _ => None,
            };
            if let Some(why) = pruned {
                log.push(format!(
                    "seccomp: built-in filter for {name} not merged: {why}"
                ));
                continue;
            }
        }
        if let Some((rules, what)) = builtin_rules(name, strength, deny, new_netns, &ioctl_denied) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::kernel_facts::UserNs;
    use std::collections::HashSet;

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

    /// Podman's default capabilities: neither CAP_SYS_ADMIN nor CAP_SYS_RESOURCE.
    fn podman_caps() -> HashSet<Capability> {
        use Capability::*;
        [
            Chown,
            DacOverride,
            Fowner,
            Fsetid,
            Kill,
            NetBindService,
            Setfcap,
            Setgid,
            Setpcap,
            Setuid,
            SysChroot,
        ]
        .into()
    }

    fn facts(extra: &[Capability], legacy_tiocsti: bool, max_userns: u64) -> KernelFacts {
        let mut caps = podman_caps();
        caps.extend(extra.iter().copied());
        KernelFacts {
            capabilities: Some(caps),
            user_ns: UserNs::Runtime,
            legacy_tiocsti: Some(legacy_tiocsti),
            max_user_namespaces: Some(max_userns),
        }
    }

    /// The merged policy and its log, for a profile allowing the default set's syscalls.
    fn merged(which: &BuiltinFilters, facts: &KernelFacts) -> (Policy, Vec<String>) {
        let spec = serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 95,
            "syscalls": [{"names": ["ioctl", "prctl", "clone", "clone3", "unshare", "getpid",
                                    "prlimit64", "socket", "socketcall", "personality"],
                          "action": "SCMP_ACT_ALLOW"}]}))
        .unwrap();
        let mut policy = Policy::from_spec(&spec).unwrap();
        let log = merge(&mut policy, which, false, facts);
        (policy, log)
    }

    fn decide(p: &Policy, name: &str, args: [u64; 6]) -> u32 {
        p.rules[name].decide(&args, false, p.default_action)
    }

    fn ioctl(p: &Policy, request: u32) -> u32 {
        decide(p, "ioctl", [0, request.into(), 0, 0, 0, 0])
    }

    const TIOCSTI: u32 = 0x5412;
    const TIOCCONS: u32 = 0x541D;
    const NEWUSER: u64 = libc::CLONE_NEWUSER as u64;

    /// The default set leaves every hot syscall as the profile says (one unconditional
    /// allow: the kernel's action cache answers it) and filters the rare ones.
    #[test]
    fn default_keeps_hot_syscalls_out_of_the_filter() {
        let (p, log) = merged(&BuiltinFilters::Default, &facts(&[], true, 1000));
        let deny = p.default_action;
        for name in ["ioctl", "prctl", "clone", "clone3", "unshare"] {
            let r = &p.rules[name];
            assert!(
                r.conditional.is_empty() && r.unconditional == Some(ALLOW),
                "{name}: {r:?}"
            );
            assert!(
                !log.iter().any(|l| l.contains(&format!("for {name}:"))),
                "{log:?}"
            );
        }
        assert_eq!(ioctl(&p, TIOCSTI), ALLOW);
        assert_eq!(decide(&p, "clone", [NEWUSER, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(decide(&p, "prlimit64", [99, 7, 0x1000, 0, 0, 0]), deny);
        assert_eq!(decide(&p, "prlimit64", [0, 7, 0x1000, 0, 0, 0]), ALLOW);
        assert_eq!(decide(&p, "socket", [17, 3, 0, 0, 0, 0]), deny);
        assert_eq!(decide(&p, "socketcall", [1, 0, 0, 0, 0, 0]), deny);
        assert_eq!(
            decide(&p, "personality", [0x0400_0000, 0, 0, 0, 0, 0]),
            deny
        );

        // hardened: the default's rules and those on the hot syscalls.
        let (h, _) = merged(&BuiltinFilters::Hardened, &facts(&[], true, 1000));
        for name in [
            "ioctl",
            "prctl",
            "clone",
            "clone3",
            "unshare",
            "prlimit64",
            "socket",
        ] {
            assert!(
                h.rules[name].unconditional != Some(ALLOW) || !h.rules[name].conditional.is_empty(),
                "{name}"
            );
        }
        assert_eq!(ioctl(&h, TIOCSTI), deny);
        assert_eq!(decide(&h, "prlimit64", [99, 7, 0x1000, 0, 0, 0]), deny);
    }

    #[test]
    fn levels_parse_and_nest() {
        assert_eq!(
            BuiltinFilters::parse("hardened").unwrap(),
            BuiltinFilters::Hardened
        );
        assert_eq!(BuiltinFilters::parse("all").unwrap(), BuiltinFilters::All);
        assert!(BuiltinFilters::parse("ioctl,nosuch").is_err());
        let sets = [
            BuiltinFilters::Default,
            BuiltinFilters::Hardened,
            BuiltinFilters::All,
        ];
        for (name, level) in BUILTINS {
            // Every syscall of the table has a rule, and each set includes the one below.
            assert!(
                builtin_rules(name, Strength::Strict, 1, false, &[]).is_some(),
                "{name}"
            );
            let included: Vec<bool> = sets.iter().map(|s| s.includes(name)).collect();
            let expected = [*level == Level::Default, *level <= Level::Hardened, true];
            assert_eq!(included, expected, "{name}");
            assert!(!BuiltinFilters::None.includes(name));
        }
        assert!(!BuiltinFilters::All.includes("getpid"));
    }

    #[test]
    fn unknown_facts_drop_nothing() {
        let (p, log) = merged(&BuiltinFilters::Hardened, &KernelFacts::default());
        let deny = p.default_action;
        for (request, _) in IOCTL_DENIED {
            assert_eq!(ioctl(&p, *request), deny, "{request:#x}");
        }
        assert_eq!(ioctl(&p, 0x5401), ALLOW);
        assert_eq!(decide(&p, "prctl", [35, 14, 0, 0, 0, 0]), deny);
        assert_eq!(decide(&p, "clone", [NEWUSER, 0, 0, 0, 0, 0]), deny);
        assert!(!log.iter().any(|l| l.contains("does not check")), "{log:?}");
    }

    #[test]
    fn tioccons_is_left_to_the_kernel_without_cap_sys_admin() {
        let (p, log) = merged(&BuiltinFilters::Hardened, &facts(&[], true, 1000));
        let deny = p.default_action;
        assert_eq!(ioctl(&p, TIOCCONS), ALLOW);
        assert!(log
            .iter()
            .any(|l| l.contains("ioctl TIOCCONS: tioccons() needs CAP_SYS_ADMIN")));
        // legacy_tiocsti 1: a tty no session holds can become the container's own.
        for r in [TIOCSTI, 0x541C, 0x5423, 0x541F] {
            assert_eq!(ioctl(&p, r), deny, "{r:#x}");
        }
        // PR_SET_MM_MAP needs no capability: the rule stays without CAP_SYS_RESOURCE.
        assert_eq!(decide(&p, "prctl", [35, 14, 0, 0, 0, 0]), deny);
        assert_eq!(decide(&p, "prctl", [15, 0, 0, 0, 0, 0]), ALLOW);
        // User namespaces are allowed (max_user_namespaces 1000): namespace flags stay refused.
        assert_eq!(decide(&p, "clone", [NEWUSER, 0, 0, 0, 0, 0]), deny);
        assert_eq!(decide(&p, "unshare", [NEWUSER, 0, 0, 0, 0, 0]), deny);

        let (p, _) = merged(
            &BuiltinFilters::Hardened,
            &facts(&[Capability::SysAdmin], false, 1000),
        );
        assert_eq!(ioctl(&p, TIOCCONS), deny, "CAP_SYS_ADMIN passes tioccons()");
        assert_eq!(ioctl(&p, TIOCSTI), deny, "CAP_SYS_ADMIN passes tiocsti()");
    }

    #[test]
    fn tiocsti_is_left_to_the_kernel_when_legacy_tiocsti_is_off() {
        let (p, log) = merged(&BuiltinFilters::Hardened, &facts(&[], false, 1000));
        assert_eq!(ioctl(&p, TIOCSTI), ALLOW);
        assert_eq!(ioctl(&p, TIOCCONS), ALLOW);
        assert!(log
            .iter()
            .any(|l| l.contains("ioctl TIOCSTI: tiocsti() refuses it")));
        assert_eq!(ioctl(&p, 0x541C), p.default_action, "TIOCLINUX stays");

        // In a user namespace of its own capable() never passes, whatever the sets hold.
        let own = KernelFacts {
            capabilities: None,
            user_ns: UserNs::New,
            legacy_tiocsti: Some(false),
            max_user_namespaces: Some(1000),
        };
        let (p, _) = merged(&BuiltinFilters::Hardened, &own);
        assert_eq!((ioctl(&p, TIOCSTI), ioctl(&p, TIOCCONS)), (ALLOW, ALLOW));
        // A joined one may be the initial user namespace.
        let joined = KernelFacts {
            user_ns: UserNs::Joined,
            ..own
        };
        let (p, _) = merged(&BuiltinFilters::Hardened, &joined);
        assert_eq!(ioctl(&p, TIOCSTI), p.default_action);
        assert_eq!(ioctl(&p, TIOCCONS), p.default_action);
    }

    #[test]
    fn namespace_rules_go_only_when_the_kernel_creates_no_namespace() {
        let (p, log) = merged(&BuiltinFilters::Hardened, &facts(&[], true, 0));
        for name in ["clone", "clone3", "unshare"] {
            assert_eq!(decide(&p, name, [NEWUSER, 0, 0, 0, 0, 0]), ALLOW, "{name}");
            assert!(
                log.iter()
                    .any(|l| l
                        .contains(&format!("{name} not merged: user.max_user_namespaces is 0"))),
                "{log:?}"
            );
        }
        // CAP_SYS_ADMIN creates the other namespaces without a user namespace.
        let (p, _) = merged(
            &BuiltinFilters::Hardened,
            &facts(&[Capability::SysAdmin], true, 0),
        );
        let newns = libc::CLONE_NEWNS as u64;
        assert_eq!(
            decide(&p, "unshare", [newns, 0, 0, 0, 0, 0]),
            p.default_action
        );
        assert_eq!(
            decide(&p, "clone3", [0; 6]),
            super::super::policy::SECCOMP_RET_ERRNO_ENOSYS
        );
        // A joined user namespace need not descend from the runtime's.
        let joined = KernelFacts {
            user_ns: UserNs::Joined,
            ..facts(&[], true, 0)
        };
        let (p, _) = merged(&BuiltinFilters::Hardened, &joined);
        assert_eq!(
            decide(&p, "clone", [NEWUSER, 0, 0, 0, 0, 0]),
            p.default_action
        );
    }

    #[test]
    fn strict_rules_are_always_merged() {
        let (p, log) = merged(&BuiltinFilters::All, &facts(&[], false, 0));
        assert_eq!(ioctl(&p, TIOCCONS), p.default_action);
        assert_eq!(ioctl(&p, TIOCSTI), p.default_action);
        assert_eq!(
            decide(&p, "clone", [NEWUSER, 0, 0, 0, 0, 0]),
            p.default_action
        );
        assert!(!log
            .iter()
            .any(|l| l.contains("not merged") || l.contains("does not check")));
    }
}

//! The OCI `linux.seccomp` section turned into a normalized, architecture-independent policy:
//! per syscall name, an ordered list of argument-conditional rules and an optional
//! unconditional action. A profile's rules take libseccomp's precedence (see
//! [`super::rule_tree`]): an unconditional rule overrides every conditional one, and the
//! conditional ones are merged into libseccomp's tree. Built-in rules (`first_match`) are
//! tried in order, then the unconditional action; otherwise the default action applies.

use super::SeccompError;
use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a: syscall names are short, trusted keys; SipHash's flood resistance buys nothing
/// here and cost a fifth of the whole compile.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// Rules by syscall name.
pub type RuleMap = HashMap<String, SyscallRules, BuildHasherDefault<Fnv>>;

use super::rule_tree::Tree;
use super::syscall_table::Arch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & value) == value_two`
    MaskedEq,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgCond {
    pub index: u8,
    pub op: CmpOp,
    pub value: u64,
    pub value_two: u64,
}

impl ArgCond {
    pub fn new(index: u8, op: CmpOp, value: u64, value_two: u64) -> Self {
        Self {
            index,
            op,
            value,
            value_two,
        }
    }

    /// Whether `arg` satisfies the condition; `bits32` compares low halves only.
    pub fn matches(&self, arg: u64, bits32: bool) -> bool {
        let m = if bits32 { 0xffff_ffff } else { u64::MAX };
        let (a, v, v2) = (arg & m, self.value & m, self.value_two & m);
        match self.op {
            CmpOp::Ne => a != v,
            CmpOp::Lt => a < v,
            CmpOp::Le => a <= v,
            CmpOp::Eq => a == v,
            CmpOp::Ge => a >= v,
            CmpOp::Gt => a > v,
            CmpOp::MaskedEq => a & v == v2,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CondRule {
    /// All must hold (AND).
    pub conds: Vec<ArgCond>,
    pub action: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyscallRules {
    pub conditional: Vec<CondRule>,
    pub unconditional: Option<u32>,
    /// The syscall's numbers, indexed by [`Arch::index`]; all `None` when not resolved yet.
    pub nrs: [Option<u32>; 3],
    /// The conditional rules are tried in order (built-in rules); otherwise they take
    /// libseccomp's precedence.
    pub first_match: bool,
}

impl SyscallRules {
    pub fn decide(&self, args: &[u64; 6], bits32: bool, default_action: u32) -> u32 {
        if !self.first_match {
            if let Some(a) = self.unconditional {
                return a;
            }
            return Tree::build(&self.conditional, bits32)
                .ok()
                .and_then(|t| t.decide(args))
                .unwrap_or(default_action);
        }
        self.conditional
            .iter()
            .find(|r| {
                r.conds
                    .iter()
                    .all(|c| c.matches(args[c.index as usize], bits32))
            })
            .map(|r| r.action)
            .or(self.unconditional)
            .unwrap_or(default_action)
    }
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub default_action: u32,
    /// `defaultErrnoRet` as given (for the -ENOSYS stub decision).
    pub default_errno_ret: Option<u32>,
    pub arches: Vec<Arch>,
    /// The architectures the profile names (runc puts its -ENOSYS stub on these only).
    pub listed_arches: Vec<Arch>,
    pub flags: u64,
    pub rules: RuleMap,
    pub warnings: Vec<String>,
}

pub const SECCOMP_RET_ERRNO_ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

/// The `SECCOMP_RET_*` value of an OCI action. ERRNO and TRACE carry `errnoRet`, EPERM when
/// absent (as runc does).
pub fn action_value(action: LinuxSeccompAction, errno_ret: Option<u32>) -> u32 {
    let data = errno_ret.unwrap_or(libc::EPERM as u32) & 0xffff;
    match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            libc::SECCOMP_RET_KILL_THREAD
        }
        LinuxSeccompAction::ScmpActKillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => libc::SECCOMP_RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => libc::SECCOMP_RET_ERRNO | data,
        LinuxSeccompAction::ScmpActTrace => libc::SECCOMP_RET_TRACE | data,
        LinuxSeccompAction::ScmpActLog => libc::SECCOMP_RET_LOG,
        LinuxSeccompAction::ScmpActAllow => libc::SECCOMP_RET_ALLOW,
        LinuxSeccompAction::ScmpActNotify => libc::SECCOMP_RET_USER_NOTIF,
    }
}

/// Whether an action lets the syscall run.
pub fn is_permissive(action: u32) -> bool {
    action == libc::SECCOMP_RET_ALLOW || action == libc::SECCOMP_RET_LOG
}

fn op(o: LinuxSeccompOperator) -> CmpOp {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => CmpOp::Ne,
        LinuxSeccompOperator::ScmpCmpLt => CmpOp::Lt,
        LinuxSeccompOperator::ScmpCmpLe => CmpOp::Le,
        LinuxSeccompOperator::ScmpCmpEq => CmpOp::Eq,
        LinuxSeccompOperator::ScmpCmpGe => CmpOp::Ge,
        LinuxSeccompOperator::ScmpCmpGt => CmpOp::Gt,
        LinuxSeccompOperator::ScmpCmpMaskedEq => CmpOp::MaskedEq,
    }
}

/// Whether libseccomp drops every condition of `rule` on 32-bit arguments.
fn noop_on_32bit(rule: &CondRule) -> bool {
    rule.conds
        .iter()
        .all(|c| c.op == CmpOp::MaskedEq && super::bpf::lo32(c.value) == 0)
}

/// The kernel's MAX_ERRNO: a seccomp filter's errno is returned as `-errno`, and values
/// from here up do not read as errors to the caller (runc refuses them too).
pub const MAX_ERRNO: u32 = 4095;

fn check_errno(field: impl FnOnce() -> String, v: Option<u32>) -> Result<(), SeccompError> {
    match v {
        Some(value) if value >= MAX_ERRNO => Err(SeccompError::BadErrnoRet {
            field: field(),
            value,
        }),
        _ => Ok(()),
    }
}

impl Policy {
    pub fn from_spec(spec: &LinuxSeccomp) -> Result<Self, SeccompError> {
        let mut warnings = Vec::new();
        check_errno(
            || "linux.seccomp.defaultErrnoRet".into(),
            spec.default_errno_ret(),
        )?;
        for (i, sc) in spec.syscalls().iter().flatten().enumerate() {
            check_errno(|| format!("linux.seccomp.syscalls[{i}]"), sc.errno_ret())?;
        }
        let default_action = action_value(spec.default_action(), spec.default_errno_ret());
        if default_action == libc::SECCOMP_RET_USER_NOTIF {
            return Err(SeccompError::NotifyAsDefault);
        }

        // The native ABI is always filtered, as libseccomp always includes it.
        let mut arches = vec![Arch::X86_64];
        let mut listed_arches = Vec::new();
        for a in spec.architectures().iter().flatten() {
            let arch = match a {
                OciArch::ScmpArchNative | OciArch::ScmpArchX86_64 => Arch::X86_64,
                OciArch::ScmpArchX86 => Arch::X86,
                OciArch::ScmpArchX32 => Arch::X32,
                other => {
                    // An x86_64 kernel never reports these arches, so their rules are dead.
                    warnings.push(format!(
                        "seccomp: architecture {other} cannot occur on an x86_64 kernel; ignored"
                    ));
                    continue;
                }
            };
            if !arches.contains(&arch) {
                arches.push(arch);
            }
            if !listed_arches.contains(&arch) {
                listed_arches.push(arch);
            }
        }

        let mut flags = 0u64;
        for f in spec.flags().iter().flatten() {
            flags |= match f {
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                    libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
                }
                LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                    libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
                }
                // The filter is installed before any other thread exists.
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 0,
            };
        }

        let mut rules = RuleMap::with_capacity_and_hasher(512, Default::default());
        for (i, sc) in spec.syscalls().iter().flatten().enumerate() {
            let action = action_value(sc.action(), sc.errno_ret());
            let args = sc.args().as_deref().unwrap_or(&[]);
            let mut conds = Vec::with_capacity(args.len());
            for a in args {
                if a.index() >= 6 {
                    return Err(SeccompError::BadArgIndex {
                        entry: i,
                        index: a.index(),
                    });
                }
                conds.push(ArgCond::new(
                    u8::try_from(a.index()).expect("index checked to be 0..=5 above"),
                    op(a.op()),
                    a.value(),
                    a.value_two().unwrap_or(0),
                ));
            }
            // runc: the same argument compared twice in one entry means "any of them".
            let mut seen = [0u8; 6];
            conds.iter().for_each(|c| seen[c.index as usize] += 1);
            let alternatives: Vec<Vec<ArgCond>> = if seen.iter().any(|&n| n > 1) {
                conds.iter().map(|c| vec![*c]).collect()
            } else {
                vec![conds]
            };
            for name in sc.names() {
                if !rules.contains_key(name.as_str()) {
                    let nrs = Arch::resolve_all(name);
                    if nrs.iter().all(Option::is_none) {
                        warnings.push(format!(
                            "seccomp: unknown syscall {name:?} in syscalls[{i}] ignored"
                        ));
                        continue;
                    }
                    let fresh = SyscallRules {
                        nrs,
                        ..Default::default()
                    };
                    rules.insert(name.clone(), fresh);
                }
                let Some(entry) = rules.get_mut(name.as_str()) else {
                    continue;
                };
                if action == default_action {
                    // runc skips these (libseccomp refuses a rule repeating the default
                    // action); the name still counts for the -ENOSYS stub.
                    continue;
                }
                for conds in &alternatives {
                    // A condition with mask 0 always holds: libseccomp drops it.
                    let noop = |c: &ArgCond| c.op == CmpOp::MaskedEq && c.value == 0;
                    if conds.iter().all(noop) {
                        // As libseccomp: an unconditional rule replaces the conditional ones
                        // and later rules are ignored.
                        match entry.unconditional {
                            Some(prev) if prev != action => warnings.push(format!(
                                "seccomp: syscall {name:?} has several unconditional actions; \
                                 keeping the first ({prev:#x}), ignoring {action:#x}"
                            )),
                            Some(_) => {}
                            // A rule whose conditions are no-ops on 32-bit arguments (mask
                            // with a zero low word) is already unconditional there: only
                            // libseccomp's tree can tell which rule wins on which arch.
                            None if entry.conditional.iter().any(noop_on_32bit) => {
                                entry.conditional.push(CondRule {
                                    conds: vec![],
                                    action,
                                });
                            }
                            None => {
                                entry.conditional.clear();
                                entry.unconditional = Some(action);
                            }
                        }
                    } else if entry.unconditional.is_none() {
                        entry.conditional.push(CondRule {
                            conds: conds.clone(),
                            action,
                        });
                    }
                }
            }
        }

        // libseccomp refuses a rule giving an existing condition another action.
        let bits: &[bool] = if arches.iter().any(|a| a.args_are_32bit()) {
            &[false, true]
        } else {
            &[false]
        };
        for (name, r) in &rules {
            for &bits32 in bits {
                if Tree::build(&r.conditional, bits32).is_err() {
                    return Err(SeccompError::RuleConflict { name: name.clone() });
                }
            }
        }

        Ok(Policy {
            default_action,
            default_errno_ret: spec.default_errno_ret(),
            arches,
            listed_arches,
            flags,
            rules,
            warnings,
        })
    }

    /// The verdict this policy gives a syscall, by name (`None` name: a number no listed
    /// syscall has).
    pub fn decide(&self, name: Option<&str>, args: &[u64; 6], bits32: bool) -> u32 {
        name.and_then(|n| self.rules.get(n))
            .map(|r| r.decide(args, bits32, self.default_action))
            .unwrap_or(self.default_action)
    }

    pub fn uses_notify(&self) -> bool {
        self.rules.values().any(|r| {
            r.unconditional == Some(libc::SECCOMP_RET_USER_NOTIF)
                || r.conditional
                    .iter()
                    .any(|c| c.action == libc::SECCOMP_RET_USER_NOTIF)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(extra: &str) -> LinuxSeccomp {
        let text = format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"{extra}}}]}}"#
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn errno_ret_must_be_an_errno() {
        Policy::from_spec(&profile(r#","errnoRet":4094"#)).unwrap();
        let e = Policy::from_spec(&profile(r#","errnoRet":4095"#))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("syscalls[0]") && e.contains("4095"), "{e}");
        let mut p = profile("");
        p.set_default_errno_ret(Some(u32::MAX));
        let e = Policy::from_spec(&p).err().unwrap().to_string();
        assert!(e.contains("defaultErrnoRet"), "{e}");
    }
}

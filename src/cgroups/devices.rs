//! Device access rules: conversion from the spec, runc's default allow list, the v1
//! devices controller, and the effective rule set both v1 and the v2 BPF program enforce.

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::files::{read_file, write_each, write_file};
use super::CgroupError;

pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
pub const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DevType {
    All,
    Block,
    Char,
}

/// One rule; `None` major/minor is the wildcard `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub typ: DevType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl Rule {
    const fn allow_char(major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
        Rule {
            allow: true,
            typ: DevType::Char,
            major,
            minor,
            access,
        }
    }

    /// The v1 devices.allow/devices.deny syntax, e.g. `c 1:3 rwm`.
    pub fn v1_string(&self) -> String {
        let t = match self.typ {
            DevType::All => 'a',
            DevType::Block => 'b',
            DevType::Char => 'c',
        };
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        format!(
            "{t} {}:{} {}",
            num(self.major),
            num(self.minor),
            access_string(self.access)
        )
    }
}

pub fn access_string(access: u8) -> String {
    let mut s = String::new();
    if access & ACC_READ != 0 {
        s.push('r');
    }
    if access & ACC_WRITE != 0 {
        s.push('w');
    }
    if access & ACC_MKNOD != 0 {
        s.push('m');
    }
    s
}

fn parse_access(s: &str) -> Option<u8> {
    s.chars().try_fold(0u8, |acc, c| match c {
        'r' => Some(acc | ACC_READ),
        'w' => Some(acc | ACC_WRITE),
        'm' => Some(acc | ACC_MKNOD),
        _ => None,
    })
}

/// runc's default allow list, appended after the spec's rules.
pub const DEFAULT_ALLOWED: &[Rule] = &[
    Rule::allow_char(None, None, ACC_MKNOD),
    Rule {
        allow: true,
        typ: DevType::Block,
        major: None,
        minor: None,
        access: ACC_MKNOD,
    },
    Rule::allow_char(Some(1), Some(3), ACC_ALL), // /dev/null
    Rule::allow_char(Some(1), Some(8), ACC_ALL), // /dev/random
    Rule::allow_char(Some(1), Some(7), ACC_ALL), // /dev/full
    Rule::allow_char(Some(5), Some(0), ACC_ALL), // /dev/tty
    Rule::allow_char(Some(1), Some(5), ACC_ALL), // /dev/zero
    Rule::allow_char(Some(1), Some(9), ACC_ALL), // /dev/urandom
    Rule::allow_char(Some(136), None, ACC_ALL),  // /dev/pts/*
    Rule::allow_char(Some(5), Some(2), ACC_ALL), // /dev/ptmx
    Rule::allow_char(Some(10), Some(200), ACC_ALL), // /dev/net/tun
];

/// Convert the spec's rules (validated) and append the default allow list.
pub fn rules_from_spec(spec: Option<&Vec<LinuxDeviceCgroup>>) -> Result<Vec<Rule>, CgroupError> {
    let mut out = Vec::new();
    for d in spec.into_iter().flatten() {
        let bad = |reason: &str| CgroupError::DeviceRule {
            rule: format!(
                "{{allow: {}, type: {:?}, major: {:?}, minor: {:?}, access: {:?}}}",
                d.allow(),
                d.typ().map(|t| t.as_str().to_string()),
                d.major(),
                d.minor(),
                d.access()
            ),
            reason: reason.to_string(),
        };
        let typ = match d.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DevType::All,
            LinuxDeviceType::B => DevType::Block,
            LinuxDeviceType::C => DevType::Char,
            LinuxDeviceType::U | LinuxDeviceType::P => {
                return Err(bad("type must be one of \"a\", \"b\", \"c\""))
            }
        };
        let num = |n: Option<i64>, what: &str| -> Result<Option<u32>, CgroupError> {
            match n {
                None | Some(-1) => Ok(None),
                Some(v) => u32::try_from(v)
                    .ok()
                    .filter(|v| *v <= i32::MAX as u32)
                    .map(Some)
                    .ok_or_else(|| bad(&format!("{what} must be -1 or 0..=2147483647"))),
            }
        };
        let access = match d.access().as_deref() {
            None | Some("") => ACC_ALL,
            Some(a) => parse_access(a).ok_or_else(|| bad("access may only contain r, w, m"))?,
        };
        out.push(Rule {
            allow: d.allow(),
            typ,
            major: num(d.major(), "major")?,
            minor: num(d.minor(), "minor")?,
            access,
        });
    }
    out.extend_from_slice(DEFAULT_ALLOWED);
    Ok(out)
}

/// The effective state after applying rules the way the v1 kernel controller does:
/// a default plus exceptions matched exactly on type/major/minor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    pub default_allow: bool,
    pub exceptions: Vec<Rule>,
}

impl Effective {
    /// Start from deny-all, as runc does.
    pub fn from_rules(rules: &[Rule]) -> Effective {
        let mut e = Effective {
            default_allow: false,
            exceptions: Vec::new(),
        };
        for r in rules {
            e.apply(r);
        }
        e.exceptions.sort_by_key(|r| (r.typ, r.major, r.minor));
        e
    }

    fn apply(&mut self, r: &Rule) {
        if r.typ == DevType::All {
            self.default_allow = r.allow;
            self.exceptions.clear();
            return;
        }
        let pos = self
            .exceptions
            .iter()
            .position(|e| (e.typ, e.major, e.minor) == (r.typ, r.major, r.minor));
        if r.allow == self.default_allow {
            if let Some(i) = pos {
                self.exceptions[i].access &= !r.access;
                if self.exceptions[i].access == 0 {
                    self.exceptions.remove(i);
                }
            }
        } else if let Some(i) = pos {
            self.exceptions[i].access |= r.access;
        } else {
            let mut ex = *r;
            ex.allow = !self.default_allow;
            self.exceptions.push(ex);
        }
    }

    /// Parse a v1 devices.list. With a default-allow state the kernel shows only
    /// `a *:* rwm` and hides the exceptions, so those are unknown (treated as none).
    fn from_list(list: &str) -> Option<Effective> {
        let mut e = Effective {
            default_allow: false,
            exceptions: Vec::new(),
        };
        for line in list.lines().filter(|l| !l.trim().is_empty()) {
            let mut it = line.split_whitespace();
            let (t, nums, acc) = (it.next()?, it.next()?, it.next()?);
            let (maj, min) = nums.split_once(':')?;
            let num = |s: &str| -> Option<Option<u32>> {
                if s == "*" {
                    Some(None)
                } else {
                    s.parse().ok().map(Some)
                }
            };
            let typ = match t {
                "a" => {
                    e.default_allow = true;
                    continue;
                }
                "b" => DevType::Block,
                "c" => DevType::Char,
                _ => return None,
            };
            e.exceptions.push(Rule {
                allow: true,
                typ,
                major: num(maj)?,
                minor: num(min)?,
                access: parse_access(acc)?,
            });
        }
        e.exceptions.sort_by_key(|r| (r.typ, r.major, r.minor));
        Some(e)
    }
}

/// Program the v1 devices controller. When devices.list already shows the wanted
/// default-deny state (a repeated apply, e.g. `update`) nothing is written, so running
/// containers do not see the transient deny-all.
pub fn apply_v1(dir: &Path, rules: &[Rule]) -> Result<(), CgroupError> {
    let target = Effective::from_rules(rules);
    // Only a default-deny state is fully visible in devices.list (the kernel hides the
    // exceptions of a default-allow one), so only then can the comparison be trusted.
    if !target.default_allow {
        let current = read_file(dir, "devices.list")
            .ok()
            .and_then(|l| Effective::from_list(&l));
        if current.as_ref() == Some(&target) {
            return Ok(());
        }
    }
    // Start from deny-all, unless the first rule is that very write (a spec's usual
    // `{"allow": false, "access": "rwm"}`): writing it twice costs an open, a write and a
    // close.
    let deny_all = Rule {
        allow: false,
        typ: DevType::All,
        major: None,
        minor: None,
        access: ACC_ALL,
    };
    if rules.first() != Some(&deny_all) {
        write_file(dir, "devices.deny", "a")?;
    }
    // Consecutive rules for the same file go through one open of it.
    for run in rules.chunk_by(|a, b| a.allow == b.allow) {
        let file = if run[0].allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        let lines: Vec<String> = run.iter().map(Rule::v1_string).collect();
        write_each(dir, file, &lines)?;
    }
    Ok(())
}

/// For tests: a `linux.resources.devices` entry in devices.list's words, `"c 1:11 rw"` or
/// `"b 8:* r"`, where `*` is a field the entry leaves out (`"* *:* rwm"`: every device).
#[cfg(test)]
pub(crate) fn spec_rule(allow: bool, words: &str) -> LinuxDeviceCgroup {
    fn field(w: &str) -> Option<&str> {
        (w != "*").then_some(w)
    }
    let [typ, numbers, access] = words.split(' ').collect::<Vec<_>>()[..] else {
        panic!("{words:?}: not TYPE MAJOR:MINOR ACCESS");
    };
    let (major, minor) = numbers.split_once(':').expect("MAJOR:MINOR");
    let number = |w: &str| field(w).map(|n| n.parse::<i64>().expect("a device number"));
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(field(typ).map(|t| match t {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        "u" => LinuxDeviceType::U,
        "p" => LinuxDeviceType::P,
        _ => panic!("{words:?}: no device type {t:?}"),
    }));
    r.set_major(number(major));
    r.set_minor(number(minor));
    r.set_access(field(access).map(String::from));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_runc_devices_list() {
        // devices.list of a runc 1.1 container whose spec only has deny-all.
        let runc_list = "b *:* m\nc *:* m\nc 1:3 rwm\nc 1:5 rwm\nc 1:7 rwm\nc 1:8 rwm\nc 1:9 rwm\nc 5:0 rwm\nc 5:2 rwm\nc 10:200 rwm\nc 136:* rwm\n";
        let deny_all = vec![spec_rule(false, "* *:* rwm")];
        let rules = rules_from_spec(Some(&deny_all)).unwrap();
        assert_eq!(
            Some(Effective::from_rules(&rules)),
            Effective::from_list(runc_list)
        );
        assert_eq!(rules[0].v1_string(), "a *:* rwm");
        assert_eq!(rules[3].v1_string(), "c 1:3 rwm");
        assert_eq!(rules[9].v1_string(), "c 136:* rwm");
    }

    #[test]
    fn kernel_like_emulation() {
        let spec = vec![
            spec_rule(true, "b 8:0 r"),
            spec_rule(true, "b 8:0 w"),
            // The default list comes after the spec's rules (as in runc), so /dev/null
            // ends up allowed despite this deny.
            spec_rule(false, "c 1:3 *"),
        ];
        let e = Effective::from_rules(&rules_from_spec(Some(&spec)).unwrap());
        assert!(!e.default_allow);
        let b8 = e
            .exceptions
            .iter()
            .find(|r| r.typ == DevType::Block && r.major == Some(8))
            .unwrap();
        assert_eq!(access_string(b8.access), "rw");
        assert!(e
            .exceptions
            .iter()
            .any(|r| r.major == Some(1) && r.minor == Some(3)));

        let allow_all = vec![spec_rule(true, "* *:* rwm")];
        let e = Effective::from_rules(&rules_from_spec(Some(&allow_all)).unwrap());
        assert!(e.default_allow);
        // Allow rules on top of allow-all change nothing.
        assert!(e.exceptions.is_empty());
    }

    #[test]
    fn invalid_rules_are_named() {
        let bad = vec![spec_rule(true, "p *:* *")];
        let err = rules_from_spec(Some(&bad)).unwrap_err().to_string();
        assert!(err.contains("type must be"), "{err}");
        let bad = vec![spec_rule(true, "c *:* rx")];
        let err = rules_from_spec(Some(&bad)).unwrap_err().to_string();
        assert!(err.contains("access") && err.contains("rx"), "{err}");
    }
}

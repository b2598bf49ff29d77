//! nucleus's seccomp compiler against libseccomp (via python3-seccomp, test-time only) and
//! against the policy's own evaluation, decision by decision, through a cBPF interpreter.

mod seccomp_support;

use nucleus::seccomp::bpf;
use nucleus::seccomp::bpf_interpreter;
use nucleus::seccomp::policy::Policy;
use nucleus::seccomp::syscall_table::X32_SYSCALL_BIT;
use nucleus::seccomp::{compile, effective_policy, BuiltinFilters, CompileOptions, Layout};
use oci_spec::runtime::LinuxSeccomp;
use seccomp_support::{expected, read_bpf, sample_data, OPS};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";
const HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seccomp_libseccomp.py");

fn python() -> &'static str {
    // python3-seccomp is a Debian package: use the system interpreter.
    "/usr/bin/python3"
}

/// libseccomp's program for `profile` (as runc builds it), with libseccomp's own rendering of its rule trees (its PFC text);
/// `None` when libseccomp refuses a rule as conflicting (EEXIST).
fn libseccomp_or_refusal(
    profile: &serde_json::Value,
) -> (Option<(Vec<libc::sock_filter>, Pfc)>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profile.json");
    let out = dir.path().join("out.bpf");
    std::fs::write(&p, serde_json::to_vec(profile).unwrap()).unwrap();
    let o = Command::new(python())
        .args([HELPER, "bpf"])
        .arg(&p)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "libseccomp helper failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let res: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let skipped: BTreeSet<String> = res["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut profile = profile.clone();
    for sc in profile["syscalls"].as_array_mut().unwrap() {
        let names = sc["names"].as_array_mut().unwrap();
        names.retain(|n| !skipped.contains(n.as_str().unwrap()));
    }
    if let Some(e) = res["error"].as_str() {
        assert!(e.contains("errno = -17"), "libseccomp: {e}");
        eprintln!("libseccomp refuses {}: {e}", res["rule"]);
        return (None, profile);
    }
    let pfc = Pfc::parse(&std::fs::read_to_string(out.with_extension("bpf.pfc")).unwrap());
    (Some((read_bpf(&out), pfc)), profile)
}

fn podman_profile() -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("podman.json");
    let s = Command::new(python())
        .args([HELPER, "convert", PODMAN_PROFILE])
        .arg(&out)
        .status()
        .unwrap();
    assert!(s.success());
    serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
}

fn no_extras() -> CompileOptions {
    CompileOptions {
        builtin: BuiltinFilters::None,
        enosys_stub: false,
        ..Default::default()
    }
}

/// Checks ours (both layouts) against libseccomp and the policy; returns the sample count.
/// Checks ours (both layouts) against libseccomp and the policy; returns the sample count.
/// Syscalls with argument rules are compared with libseccomp's rule trees (its PFC) and
/// must also match its BPF, unless `defects_allowed` (see [`Pfc`]).
fn check_against_libseccomp(profile: serde_json::Value) -> usize {
    check_against_libseccomp_counting(profile, false, &[]).0
}

fn check_against_libseccomp_counting(
    profile: serde_json::Value,
    defects_allowed: bool,
    extra: &[bpf_interpreter::SeccompData],
) -> (usize, usize) {
    let (theirs, profile) = libseccomp_or_refusal(&profile);
    let (theirs, pfc) = theirs.unwrap_or_else(|| panic!("libseccomp refused {profile}"));
    bpf_interpreter::check(&theirs).unwrap();
    let spec: LinuxSeccomp = serde_json::from_value(profile.clone()).unwrap();
    let policy = effective_policy(&spec, &no_extras()).unwrap();
    let mut data = sample_data(&policy);
    data.extend_from_slice(extra);
    let mut defects = 0;
    for layout in [Layout::CachePrefixBitmap, Layout::Bitmap] {
        let opts = CompileOptions {
            layout,
            ..no_extras()
        };
        let ours = compile(&spec, &opts).unwrap().instructions;
        bpf_interpreter::check(&ours).unwrap();
        for d in &data {
            let want = expected(&policy, d);
            let mut lib = bpf_interpreter::run(&theirs, d).unwrap();
            if let Some(arch) = conditional_arch(&policy, d) {
                let tree = pfc.decide(arch, d.nr as u32, &d.args);
                if tree != lib {
                    assert!(
                        defects_allowed,
                        "libseccomp's BPF departs from its tree for {d:x?}: {lib:#x} vs {tree:#x}\n{profile}"
                    );
                    defects += 1;
                }
                lib = tree;
            }
            let got = bpf_interpreter::run(&ours, d).unwrap();
            assert_eq!(
                lib, want,
                "libseccomp vs policy model for {d:x?}\n{profile}"
            );
            assert_eq!(
                got, lib,
                "{layout:?}: ours vs libseccomp for {d:x?}\n{profile}"
            );
        }
    }
    (data.len(), defects / 2)
}

/// The PFC architecture name when `d` is a syscall with argument rules in `policy`.
fn conditional_arch(policy: &Policy, d: &bpf_interpreter::SeccompData) -> Option<&'static str> {
    use nucleus::seccomp::syscall_table::{Arch, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
    let nr = d.nr as u32;
    let (arch, name) = match d.arch {
        AUDIT_ARCH_I386 if policy.arches.contains(&Arch::X86) => (Arch::X86, "x86"),
        AUDIT_ARCH_X86_64 if nr & X32_SYSCALL_BIT != 0 => {
            if !policy.arches.contains(&Arch::X32) || nr == u32::MAX {
                return None;
            }
            (Arch::X32, "x32")
        }
        AUDIT_ARCH_X86_64 => (Arch::X86_64, "x86_64"),
        _ => return None,
    };
    let r = policy.rules.get(arch.name_of(nr)?)?;
    (!r.conditional.is_empty() && r.unconditional.is_none()).then_some(name)
}

#[test]
fn podman_profile_matches_libseccomp() {
    if !Path::new(PODMAN_PROFILE).exists() {
        panic!("{PODMAN_PROFILE} missing: install golang-github-containers-common");
    }
    let n = check_against_libseccomp(podman_profile());
    assert!(n > 2000);
}

fn made_up_profiles() -> Vec<serde_json::Value> {
    use serde_json::json;
    vec![
        // Deny-list on an allow default, every operator on 64-bit values, all arches.
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5},
                {"names": ["mount", "umount2", "reboot"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["ptrace"], "action": "SCMP_ACT_TRAP"},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                 "args": [{"index": 0, "value": 0x1_0000_0008u64, "op": "SCMP_CMP_GT"}]},
                {"names": ["ioctl"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 1, "value": 0x5401, "op": "SCMP_CMP_NE"},
                          {"index": 2, "value": 0xffff_0000_0000u64, "op": "SCMP_CMP_LT"}]},
                {"names": ["mprotect"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
                 "args": [{"index": 2, "value": 6, "valueTwo": 6, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
                 "args": [{"index": 0, "value": 17, "op": "SCMP_CMP_GE"}]},
                {"names": ["kill"], "action": "SCMP_ACT_LOG",
                 "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_LE"}]},
                {"names": ["tgkill"], "action": "SCMP_ACT_TRACE", "errnoRet": 3,
                 "args": [{"index": 5, "value": 0xffff_ffff_ffff_fff0u64, "op": "SCMP_CMP_EQ"}]},
                {"names": ["no_such_syscall"], "action": "SCMP_ACT_KILL"}
            ]
        }),
        // Allow-list with EPERM default, x86_64 only, multiple arg rules per syscall and
        // repeated indexes (runc's "any of" rule).
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["read", "write", "close", "exit", "exit_group", "getppid", "brk",
                           "mmap", "munmap", "rt_sigaction", "rt_sigreturn", "futex"],
                 "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                          {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                          {"index": 0, "value": 0xffffffffu64, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0x7e020000u64, "valueTwo": 0,
                           "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["openat"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 2, "value": 3, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"},
                          {"index": 0, "value": 100, "op": "SCMP_CMP_LT"}]},
                {"names": ["openat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30,
                 "args": [{"index": 2, "value": 3, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["getpid", "gettid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
            ]
        }),
        // Kill default with x86 only as extra arch and many non-allow groups (bitmaps).
        json!({
            "defaultAction": "SCMP_ACT_KILL_PROCESS",
            "architectures": ["SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["read", "write", "openat", "close", "fstat", "newfstatat", "lseek",
                           "pread64", "pwrite64", "readv", "writev", "exit_group",
                           "getuid", "getgid", "geteuid", "getegid", "getppid", "getpgrp"],
                 "action": "SCMP_ACT_ALLOW"},
                {"names": ["chmod", "fchmod", "chown", "fchown", "lchown", "fchownat",
                           "fchmodat", "utime", "utimes", "utimensat", "mknod", "mknodat"],
                 "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["setuid", "setgid", "setreuid", "setregid", "setresuid",
                           "setresgid", "setgroups", "setfsuid", "setfsgid"],
                 "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["getrandom"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["uname"], "action": "SCMP_ACT_LOG"},
                {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_GT"},
                          {"index": 1, "value": 15, "op": "SCMP_CMP_LE"}]}
            ]
        }),
    ]
}

/// Every x86_64 syscall with an argument rule (hack/bench-scale's largest profile): rules
/// that end alike share their code, so the program fits the kernel's 4096 instructions as
/// libseccomp's does, and decides as libseccomp's.
#[test]
fn argument_rules_on_every_syscall_fit_as_libseccomps() {
    use nucleus::seccomp::syscall_table::Arch;
    let rules: Vec<serde_json::Value> = (0..=Arch::X86_64.max_nr())
        .filter_map(|nr| Arch::X86_64.name_of(nr).map(|n| (nr, n)))
        .map(|(nr, name)| {
            serde_json::json!({"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                "args": [{"index": 0, "value": 0x5_ca1e_0000u64 + 64 * u64::from(nr), "op": "SCMP_CMP_EQ"},
                         {"index": 1, "value": 1, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]})
        })
        .collect();
    assert!(rules.len() > 350, "{} syscalls", rules.len());
    let profile = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"], "syscalls": rules});
    let (theirs, _) = libseccomp_or_refusal(&profile);
    let theirs = theirs.expect("libseccomp takes the profile").0.len();
    let spec: LinuxSeccomp = serde_json::from_value(profile.clone()).unwrap();
    for layout in [Layout::CachePrefixBitmap, Layout::Bitmap] {
        let opts = CompileOptions {
            layout,
            ..no_extras()
        };
        let ours = compile(&spec, &opts)
            .unwrap_or_else(|e| panic!("{layout:?}: {e} (libseccomp: {theirs} instructions)"))
            .instructions
            .len();
        assert!(
            ours * 2 <= theirs * 3,
            "{layout:?}: {ours} instructions, libseccomp {theirs}"
        );
    }
    check_against_libseccomp(profile);
}

#[test]
fn made_up_profiles_match_libseccomp() {
    for p in made_up_profiles() {
        check_against_libseccomp(p);
    }
}

/// The two cases and hand-picked overlaps: rules on different arguments, the same
/// argument with different operators, masked equality, 64-bit values, every action.
fn overlapping_profiles() -> Vec<serde_json::Value> {
    use serde_json::json;
    let arg = |i: u64, op: &str, v: u64| json!({"index": i, "op": op, "value": v});
    let masked = |i: u64, m: u64, v: u64| json!({"index": i, "op": "SCMP_CMP_MASKED_EQ", "value": m, "valueTwo": v});
    vec![
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [arg(0, "SCMP_CMP_EQ", 2)]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [arg(1, "SCMP_CMP_EQ", 1)]}]}),
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [arg(0, "SCMP_CMP_LT", 5)]},
            {"names": ["getpriority"], "action": "SCMP_ACT_KILL_PROCESS",
             "args": [arg(1, "SCMP_CMP_GT", 5)]}]}),
        json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures":
                ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": [
            {"names": ["getpriority", "setpriority"], "action": "SCMP_ACT_TRAP",
             "args": [arg(0, "SCMP_CMP_GE", 1)]},
            {"names": ["getpriority", "setpriority"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(0, "SCMP_CMP_GT", 0x1_0000_0002)]},
            {"names": ["getpriority", "setpriority"], "action": "SCMP_ACT_LOG",
             "args": [arg(0, "SCMP_CMP_LE", 7)]},
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9,
             "args": [arg(0, "SCMP_CMP_NE", 3), arg(1, "SCMP_CMP_EQ", 0)]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [masked(0, 0xff, 8)]},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [masked(0, 0xf0, 0)]},
            {"names": ["personality"], "action": "SCMP_ACT_KILL",
             "args": [masked(0, 0x1_0000_0000, 0x1_0000_0000)]},
            {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
             "args": [arg(2, "SCMP_CMP_EQ", 1), arg(0, "SCMP_CMP_LT", 3)]},
            {"names": ["lseek"], "action": "SCMP_ACT_TRACE", "errnoRet": 7,
             "args": [arg(1, "SCMP_CMP_GE", 100)]},
            {"names": ["lseek"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(1, "SCMP_CMP_LT", 3)]}]}),
        // The argument rules of integration/tests/seccomp.rs's mixed profile, which runs in
        // containers under runc too: libseccomp's BPF must agree with its trees there.
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [
            {"names": ["getpriority"], "action": "SCMP_ACT_TRAP",
             "args": [arg(1, "SCMP_CMP_EQ", 6)]},
            {"names": ["getpriority"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(2, "SCMP_CMP_GT", 0x1_0000_0002)]},
            {"names": ["getpriority"], "action": "SCMP_ACT_LOG",
             "args": [arg(0, "SCMP_CMP_EQ", 7)]},
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9,
             "args": [arg(0, "SCMP_CMP_EQ", 3)]},
            {"names": ["getpriority"], "action": "SCMP_ACT_KILL_THREAD",
             "args": [masked(1, 0xf0, 0xf0)]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [masked(0, 0xff, 7)]},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [masked(0, 0xf0, 0)]},
            {"names": ["personality"], "action": "SCMP_ACT_KILL_PROCESS",
             "args": [masked(0, 0x1_0000_0000, 0x1_0000_0000)]},
            {"names": ["personality"], "action": "SCMP_ACT_TRACE", "errnoRet": 5,
             "args": [arg(0, "SCMP_CMP_EQ", 0xf0)]}]}),
        // A shorter rule with the same action prunes a longer one; an unconditional rule
        // replaces conditional ones and ignores later ones; rules repeating the default
        // action are skipped.
        json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["getsid"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(0, "SCMP_CMP_EQ", 2), arg(1, "SCMP_CMP_EQ", 1)]},
            {"names": ["getsid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3,
             "args": [arg(0, "SCMP_CMP_EQ", 2), arg(2, "SCMP_CMP_EQ", 3)]},
            {"names": ["getsid"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(1, "SCMP_CMP_EQ", 1)]},
            {"names": ["getpgid"], "action": "SCMP_ACT_ERRNO",
             "args": [arg(0, "SCMP_CMP_EQ", 1)]},
            {"names": ["getpgid"], "action": "SCMP_ACT_ALLOW",
             "args": [arg(0, "SCMP_CMP_LE", 1)]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
             "args": [arg(0, "SCMP_CMP_EQ", 17)]},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [arg(0, "SCMP_CMP_EQ", 2)]}]}),
    ]
}

#[test]
fn overlapping_rules_take_libseccomp_precedence() {
    for (i, p) in overlapping_profiles().into_iter().enumerate() {
        // Profile 2 makes libseccomp's BPF depart from its trees (see Pfc); nucleus follows
        // the trees.
        let (_, defects) = check_against_libseccomp_counting(p, i == 2, &[]);
        assert!(
            i != 2 || defects > 0,
            "profile 2 no longer shows libseccomp's BPF defect"
        );
    }
}

/// splitmix64: a fixed seed makes every run test the same profiles.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[usize::try_from(self.next() % v.len() as u64).expect("an index below v.len()")]
    }
}

/// Values the random rules compare with and the samples probe: neighbours and 64-bit
/// halves collide often, so rules overlap.
const VALUES: &[u64] = &[
    0,
    1,
    2,
    3,
    5,
    6,
    0xf0,
    0xff,
    0x1_0000_0000,
    0x1_0000_0002,
    0xffff_ffff,
    u64::MAX,
];
const MASKS: &[u64] = &[0xff, 0xf0, 0x3, 0x1_0000_00ff, 0xffff_ffff_0000_0000, 0];

/// A random profile of overlapping argument rules for a few syscalls.
fn random_profile(rng: &mut Rng) -> serde_json::Value {
    use serde_json::json;
    let actions = [
        json!({"action": "SCMP_ACT_ALLOW"}),
        json!({"action": "SCMP_ACT_LOG"}),
        json!({"action": "SCMP_ACT_TRAP"}),
        json!({"action": "SCMP_ACT_KILL_PROCESS"}),
        json!({"action": "SCMP_ACT_KILL_THREAD"}),
        json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 13}),
        json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 22}),
        json!({"action": "SCMP_ACT_ERRNO"}),
        json!({"action": "SCMP_ACT_TRACE", "errnoRet": 7}),
    ];
    let default = rng.pick(&actions[..8]).clone();
    let mut syscalls = Vec::new();
    for name in ["getpriority", "lseek", "personality"] {
        for _ in 0..1 + rng.next() % 6 {
            let mut entry = rng.pick(&actions).clone();
            let mut args = Vec::new();
            let n = match rng.next() % 8 {
                0 => 0,
                1..=4 => 1,
                5 | 6 => 2,
                _ => 3,
            };
            for _ in 0..n {
                let index = rng.next() % 3;
                let op = *rng.pick(OPS);
                let value = if op == "SCMP_CMP_MASKED_EQ" {
                    *rng.pick(MASKS)
                } else {
                    *rng.pick(VALUES)
                };
                args.push(json!({"index": index, "op": op, "value": value,
                                 "valueTwo": *rng.pick(VALUES) & 0x1_0000_00f3}));
            }
            entry["names"] = json!([name]);
            if !args.is_empty() {
                entry["args"] = json!(args);
            }
            syscalls.push(entry);
        }
    }
    let mut p = json!({"defaultAction": default["action"], "syscalls": syscalls});
    if let Some(e) = default.get("errnoRet") {
        p["defaultErrnoRet"] = e.clone();
    }
    if rng.next() % 3 == 0 {
        p["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
    }
    p
}

/// Every combination of VALUES (and their neighbours) in the first three arguments of the
/// randomly filtered syscalls, on each architecture.
fn combination_samples(arches: &[(u32, [u32; 3])]) -> Vec<bpf_interpreter::SeccompData> {
    let mut vals: BTreeSet<u64> = BTreeSet::new();
    for &v in VALUES.iter().chain(MASKS) {
        for w in [
            v,
            v.wrapping_add(1),
            v.wrapping_sub(1),
            v | 0xf,
            v & 0xffff_ffff,
        ] {
            vals.insert(w);
        }
    }
    let vals: Vec<u64> = vals.into_iter().collect();
    let mut out = Vec::new();
    for &(arch, nrs) in arches {
        for nr in nrs {
            for &a in &vals {
                for &b in VALUES {
                    for &c in [0, 3, 0x1_0000_0002, u64::MAX].iter() {
                        out.push(bpf_interpreter::SeccompData {
                            nr: nr as i32,
                            arch,
                            instruction_pointer: 0,
                            args: [a, b, c, 0, 0, 0],
                        });
                        out.push(bpf_interpreter::SeccompData {
                            nr: nr as i32,
                            arch,
                            instruction_pointer: 0,
                            args: [c, a, b, 0, 0, 0],
                        });
                    }
                }
            }
        }
    }
    out
}

#[test]
fn random_overlapping_profiles_match_libseccomp() {
    use nucleus::seccomp::syscall_table::{AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
    // getpriority, lseek, personality on x86_64, x32 and i386.
    let data = combination_samples(&[
        (AUDIT_ARCH_X86_64, [140, 8, 135]),
        (
            AUDIT_ARCH_X86_64,
            [
                X32_SYSCALL_BIT | 140,
                X32_SYSCALL_BIT | 8,
                X32_SYSCALL_BIT | 135,
            ],
        ),
        (AUDIT_ARCH_I386, [96, 19, 136]),
    ]);
    let mut rng = Rng(0x0005_ecc0_u64);
    let (mut compared, mut refused, mut samples, mut defects) = (0, 0, 0, 0);
    for i in 0..150 {
        let profile = random_profile(&mut rng);
        let (theirs, profile) = libseccomp_or_refusal(&profile);
        let spec: LinuxSeccomp = serde_json::from_value(profile.clone()).unwrap();
        let ours = compile(&spec, &no_extras());
        let Some(_) = theirs else {
            assert!(
                matches!(
                    ours,
                    Err(nucleus::seccomp::SeccompError::RuleConflict { .. })
                ),
                "profile {i}: libseccomp refuses it, nucleus compiled it: {profile}"
            );
            refused += 1;
            continue;
        };
        compile(&spec, &no_extras()).unwrap_or_else(|e| panic!("profile {i}: {e}: {profile}"));
        let (n, d) = check_against_libseccomp_counting(profile, true, &data);
        samples += n;
        defects += d;
        compared += 1;
    }
    eprintln!(
        "{compared} random profiles compared on {samples} inputs, {refused} refused by both; \
         libseccomp's BPF departs from its own rule trees on {defects} inputs"
    );
    assert!(
        compared > 100 && refused > 0,
        "{compared} compared, {refused} refused"
    );
}

/// libseccomp's PFC export: the rule trees as it means them, one block per architecture.
/// libseccomp 2.5.4's BPF can test a stale accumulator when a subtree falls back to the next
/// node of its parent level (it skips the reload when the previous sibling loaded the same
/// word); nucleus emits what the trees say, so argument decisions are checked against these
/// and, where the BPF has no such fall-back, against the BPF too.
struct Pfc {
    arches: Vec<(String, Vec<Stmt>)>,
}

enum Stmt {
    If {
        cond: PfcCond,
        then: Vec<Stmt>,
        els: Vec<Stmt>,
    },
    Action(u32),
}

struct PfcCond {
    /// None: `$syscall`; Some((index, Some(hi))): a half of a 64-bit argument.
    arg: Option<(usize, Option<bool>)>,
    mask: u32,
    op: String,
    value: u64,
}

impl Pfc {
    fn parse(text: &str) -> Pfc {
        let mut lines = Vec::new();
        let mut names = Vec::new();
        for l in text.lines() {
            let t = l.trim_start();
            if let Some(rest) = t.strip_prefix("# filter for arch ") {
                names.push(rest.split(' ').next().unwrap().to_string());
            }
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            lines.push((l.len() - t.len(), t.to_string()));
        }
        let mut pos = 0;
        let top = Self::block(&lines, &mut pos, 0);
        let mut arches = Vec::new();
        let mut names = names.into_iter();
        for s in top {
            if let Stmt::If { then, .. } = s {
                arches.push((names.next().unwrap(), then));
            }
        }
        Pfc { arches }
    }

    fn block(lines: &[(usize, String)], pos: &mut usize, indent: usize) -> Vec<Stmt> {
        let mut out = Vec::new();
        while *pos < lines.len() && lines[*pos].0 == indent {
            let t = &lines[*pos].1;
            if let Some(c) = t.strip_prefix("if (").and_then(|c| c.strip_suffix(')')) {
                let cond = Self::cond(c);
                *pos += 1;
                let then = Self::block(lines, pos, indent + 2);
                let mut els = Vec::new();
                if *pos < lines.len() && lines[*pos].0 == indent && lines[*pos].1 == "else" {
                    *pos += 1;
                    els = Self::block(lines, pos, indent + 2);
                }
                out.push(Stmt::If { cond, then, els });
            } else if let Some(a) = t.strip_prefix("action ").and_then(|a| a.strip_suffix(';')) {
                out.push(Stmt::Action(Self::action(a)));
                *pos += 1;
            } else if t == "else" {
                return out;
            } else {
                panic!("unexpected PFC line {t:?}");
            }
        }
        out
    }

    fn cond(c: &str) -> PfcCond {
        let w: Vec<&str> = c.split_whitespace().collect();
        let (lhs, mask, op, v) = match w.as_slice() {
            [l, "&", m, op, v] => (*l, u32::from_str_radix(&m[2..], 16).unwrap(), *op, *v),
            [l, op, v] => (*l, u32::MAX, *op, *v),
            _ => panic!("PFC condition {c:?}"),
        };
        let arg = match lhs {
            "$arch" | "$syscall" => None,
            a => {
                let a = a.strip_prefix("$a").unwrap();
                let (i, half) = match a.split_once('.') {
                    Some((i, "hi32")) => (i, Some(true)),
                    Some((i, _)) => (i, Some(false)),
                    None => (a, None),
                };
                Some((i.parse().unwrap(), half))
            }
        };
        PfcCond {
            arg,
            mask,
            op: op.to_string(),
            value: v.parse().unwrap(),
        }
    }

    fn action(a: &str) -> u32 {
        let arg = |p: &str| a[p.len()..a.len() - 1].parse::<u32>().unwrap();
        match a {
            "ALLOW" => libc::SECCOMP_RET_ALLOW,
            "KILL" => libc::SECCOMP_RET_KILL_THREAD,
            "KILL_PROCESS" => libc::SECCOMP_RET_KILL_PROCESS,
            "TRAP" => libc::SECCOMP_RET_TRAP,
            "LOG" => libc::SECCOMP_RET_LOG,
            "NOTIFY" => libc::SECCOMP_RET_USER_NOTIF,
            _ if a.starts_with("ERRNO(") => libc::SECCOMP_RET_ERRNO | arg("ERRNO("),
            _ if a.starts_with("TRACE(") => libc::SECCOMP_RET_TRACE | arg("TRACE("),
            _ => panic!("PFC action {a:?}"),
        }
    }

    fn eval(stmts: &[Stmt], nr: u32, args: &[u64; 6]) -> Option<u32> {
        for s in stmts {
            match s {
                Stmt::Action(a) => return Some(*a),
                Stmt::If { cond, then, els } => {
                    let x = match cond.arg {
                        None => nr,
                        Some((i, None)) => bpf::lo32(args[i]),
                        Some((i, Some(true))) => bpf::hi32(args[i]),
                        Some((i, Some(false))) => bpf::lo32(args[i]),
                    };
                    let x = u64::from(x & cond.mask);
                    let holds = match cond.op.as_str() {
                        "==" => x == cond.value,
                        ">" => x > cond.value,
                        ">=" => x >= cond.value,
                        op => panic!("PFC operator {op}"),
                    };
                    if let Some(a) = Self::eval(if holds { then } else { els }, nr, args) {
                        return Some(a);
                    }
                }
            }
        }
        None
    }

    /// libseccomp's verdict for syscall `nr` (as the PFC numbers it) of `arch`.
    fn decide(&self, arch: &str, nr: u32, args: &[u64; 6]) -> u32 {
        let (_, body) = self
            .arches
            .iter()
            .find(|(n, _)| n == arch)
            .unwrap_or_else(|| panic!("no PFC block for {arch}"));
        Self::eval(body, nr, args).expect("every PFC block ends in its default action")
    }
}

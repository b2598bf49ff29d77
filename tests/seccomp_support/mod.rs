//! Shared by the seccomp integration tests (and the benchmark example, which reads raw
//! programs too): the reference model of a policy's verdicts, the seccomp_data samples that
//! probe a program, the comparison operators random rules draw from, and the reader of
//! libseccomp's exported programs.
#![allow(dead_code)]

use nucleus::seccomp::bpf_interpreter::SeccompData;
use nucleus::seccomp::compiler::BAD_ARCH_ACTION;
use nucleus::seccomp::policy::Policy;
use nucleus::seccomp::syscall_table::{Arch, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use std::collections::BTreeSet;
use std::path::Path;

pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

/// Every argument comparison of the OCI profile format.
pub const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// A raw program as libseccomp's `seccomp_export_bpf` writes it: `struct sock_filter`s in
/// the host's (little-endian) byte order.
pub fn read_bpf(path: impl AsRef<Path>) -> Vec<libc::sock_filter> {
    let path = path.as_ref();
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

/// What the policy says for one seccomp_data, including the architecture handling
/// libseccomp (and so runc) applies.
pub fn expected(policy: &Policy, d: &SeccompData) -> u32 {
    let nr = d.nr as u32;
    let arch = match d.arch {
        AUDIT_ARCH_X86_64 if nr & X32_SYSCALL_BIT != 0 => {
            if policy.arches.contains(&Arch::X32) {
                Arch::X32
            } else if nr == u32::MAX {
                Arch::X86_64
            } else {
                return BAD_ARCH_ACTION;
            }
        }
        AUDIT_ARCH_X86_64 => Arch::X86_64,
        AUDIT_ARCH_I386 if policy.arches.contains(&Arch::X86) => Arch::X86,
        _ => return BAD_ARCH_ACTION,
    };
    let name = if arch == Arch::X32 && nr == u32::MAX {
        None
    } else {
        arch.name_of(nr)
    };
    policy.decide(name, &d.args, arch.args_are_32bit())
}

/// Argument vectors probing every constant the policy compares with.
pub fn arg_samples(policy: &Policy) -> Vec<[u64; 6]> {
    let mut vals: BTreeSet<u64> = [0, 1, u64::MAX, 0xffff_ffff, 1 << 32, 0x8000_0000].into();
    for r in policy.rules.values() {
        for c in r.conditional.iter().flat_map(|r| r.conds.iter()) {
            for v in [
                c.value,
                c.value_two,
                c.value | c.value_two,
                c.value & !c.value_two,
            ] {
                for w in [
                    v,
                    v.wrapping_add(1),
                    v.wrapping_sub(1),
                    v ^ (1 << 32),
                    v ^ 0xffff_ffff_0000_0000,
                    v & 0xffff_ffff,
                ] {
                    vals.insert(w);
                }
            }
        }
    }
    let vals: Vec<u64> = vals.into_iter().collect();
    let mut out = Vec::new();
    // Each value in every position, plus mixed vectors.
    for (i, &v) in vals.iter().enumerate() {
        let mut a = [0u64; 6];
        for (j, slot) in a.iter_mut().enumerate() {
            *slot = vals[(i + j * 7) % vals.len()];
        }
        out.push(a);
        out.push([v; 6]);
    }
    out
}

pub fn sample_data(policy: &Policy) -> Vec<SeccompData> {
    let samples = arg_samples(policy);
    let conditional: BTreeSet<(u32, u32)> = Arch::ALL
        .iter()
        .flat_map(|&a| {
            policy
                .rules
                .iter()
                .filter(|(_, r)| !r.conditional.is_empty())
                .filter_map(move |(n, _)| a.resolve(n).map(|nr| (a.audit_arch(), nr)))
        })
        .collect();
    let mut out = Vec::new();
    let mut push = |arch: u32, nr: u32| {
        let args: Vec<[u64; 6]> = if conditional.contains(&(arch, nr)) {
            samples.clone()
        } else {
            vec![[0; 6], [u64::MAX; 6]]
        };
        for a in args {
            out.push(SeccompData {
                nr: nr as i32,
                arch,
                instruction_pointer: 0,
                args: a,
            });
        }
    };
    for nr in (0..=Arch::X86_64.max_nr() + 20).chain([u32::MAX, 0x7fff_ffff]) {
        push(AUDIT_ARCH_X86_64, nr);
    }
    for nr in 0..=Arch::X32.max_nr() + 20 {
        push(AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | nr);
    }
    for nr in (0..=Arch::X86.max_nr() + 20).chain([u32::MAX]) {
        push(AUDIT_ARCH_I386, nr);
    }
    for nr in [0, 1, 59, 110, 300] {
        push(AUDIT_ARCH_AARCH64, nr);
        push(0, nr);
    }
    out
}

//! nucleus's seccomp compiler against libseccomp (via python3-seccomp, test-time only) and
//! against the policy's own evaluation, decision by decision, through a cBPF interpreter.

mod seccomp_support;

use nucleus::seccomp::bpf_interpreter;
use nucleus::seccomp::{compile, effective_policy, BuiltinFilters, CompileOptions, Layout};
use oci_spec::runtime::LinuxSeccomp;
use seccomp_support::{expected, sample_data};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";
const HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seccomp_libseccomp.py");

fn python() -> &'static str {
    // python3-seccomp is a Debian package: use the system interpreter.
    "/usr/bin/python3"
}

fn read_bpf(path: &Path) -> Vec<libc::sock_filter> {
    let raw = std::fs::read(path).unwrap();
    raw.chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

/// libseccomp's program for `profile` (as runc builds it), with the names it could not
/// resolve removed from the returned profile so both compilers see the same rules.
fn libseccomp(profile: &serde_json::Value) -> (Vec<libc::sock_filter>, serde_json::Value) {
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
    (read_bpf(&out), profile)
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
fn check_against_libseccomp(profile: serde_json::Value) -> usize {
    let (theirs, profile) = libseccomp(&profile);
    bpf_interpreter::check(&theirs).unwrap();
    let spec: LinuxSeccomp = serde_json::from_value(profile).unwrap();
    let policy = effective_policy(&spec, &no_extras()).unwrap();
    let data = sample_data(&policy);
    for layout in [Layout::CachePrefixBitmap, Layout::Bitmap] {
        let opts = CompileOptions {
            layout,
            ..no_extras()
        };
        let ours = compile(&spec, &opts).unwrap().instructions;
        bpf_interpreter::check(&ours).unwrap();
        for d in &data {
            let want = expected(&policy, d);
            let lib = bpf_interpreter::run(&theirs, d).unwrap();
            let got = bpf_interpreter::run(&ours, d).unwrap();
            assert_eq!(lib, want, "libseccomp vs policy model for {d:x?}");
            assert_eq!(got, lib, "{layout:?}: ours vs libseccomp for {d:x?}");
        }
    }
    data.len()
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

#[test]
fn made_up_profiles_match_libseccomp() {
    for p in made_up_profiles() {
        check_against_libseccomp(p);
    }
}

//! Properties of compiled programs: random policies, built-in filter merges, the kernel
//! cache's view of the prefix, the -ENOSYS stub and the size limit.

mod seccomp_support;

use nucleus::seccomp::bpf::{BPF_ABS, BPF_JA, BPF_LD, BPF_W};
use nucleus::seccomp::bpf_interpreter::{self, cache_emulates_allow, SeccompData};
use nucleus::seccomp::builtin_filters::builtin_syscalls;
use nucleus::seccomp::policy::is_permissive;
use nucleus::seccomp::syscall_table::{Arch, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
use nucleus::seccomp::{
    compile, effective_policy, BuiltinFilters, CompileOptions, Layout, SeccompError,
};
use oci_spec::runtime::LinuxSeccomp;
use seccomp_support::{expected, sample_data, OPS};
use serde_json::json;

/// xorshift64*: deterministic, no extra dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        // Below n, a usize.
        usize::try_from(self.next() % n as u64).expect("below n")
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_LOG",
    "SCMP_ACT_TRACE",
];

fn random_profile(rng: &mut Rng) -> serde_json::Value {
    let names: Vec<&str> = (0..=Arch::X86_64.max_nr())
        .filter_map(|nr| Arch::X86_64.name_of(nr))
        .collect();
    let values = [
        0u64,
        1,
        6,
        0x5401,
        0xffff_ffff,
        1 << 32,
        u64::MAX,
        0x8000_0000_0000_0000,
    ];
    let mut syscalls = Vec::new();
    for _ in 0..(10 + rng.below(80)) {
        let n = 1 + rng.below(4);
        let entry_names: Vec<&str> = (0..n).map(|_| *rng.pick(&names)).collect();
        let mut e = json!({"names": entry_names, "action": rng.pick(ACTIONS)});
        if rng.below(3) == 0 {
            e["errnoRet"] = json!(rng.below(200));
        }
        if rng.below(3) == 0 {
            let args: Vec<serde_json::Value> = (0..1 + rng.below(3))
                .map(|_| {
                    json!({"index": rng.below(6), "value": rng.pick(&values),
                           "valueTwo": rng.pick(&values), "op": rng.pick(OPS)})
                })
                .collect();
            e["args"] = json!(args);
        }
        syscalls.push(e);
        // Runs of "any of these values" rules, which compile to search trees.
        if rng.below(6) == 0 {
            let name = *rng.pick(&names);
            let index = rng.below(6);
            let action = *rng.pick(ACTIONS);
            let masked = rng.below(2) == 0;
            for _ in 0..(3 + rng.below(8)) {
                let v = (rng.next() % 40) | if rng.below(5) == 0 { 1 << 32 } else { 0 };
                let arg = if masked {
                    json!({"index": index, "value": 0xffff_ffffu64, "valueTwo": v,
                           "op": "SCMP_CMP_MASKED_EQ"})
                } else {
                    json!({"index": index, "value": v, "op": "SCMP_CMP_EQ"})
                };
                syscalls.push(json!({"names": [name], "action": action, "args": [arg]}));
            }
        }
    }
    let arches: Vec<&str> = ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        .into_iter()
        .filter(|_| rng.below(2) == 0)
        .collect();
    json!({
        "defaultAction": rng.pick(&ACTIONS[1..]),
        "defaultErrnoRet": rng.below(100),
        "architectures": arches,
        "syscalls": syscalls,
    })
}

fn assert_program_follows_policy(spec: &LinuxSeccomp, opts: &CompileOptions) {
    let policy = effective_policy(spec, opts).unwrap();
    let prog = compile(spec, opts).unwrap().instructions;
    bpf_interpreter::check(&prog).unwrap();
    for d in sample_data(&policy) {
        let want = expected(&policy, &d);
        let got = bpf_interpreter::run(&prog, &d).unwrap();
        assert_eq!(got, want, "{:?} for {d:x?}", opts.layout);
        // The safety property spelled out: never a pass where the policy denies.
        assert!(!is_permissive(got) || is_permissive(want));
    }
}

#[test]
fn random_policies_compile_to_what_they_say() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..30 {
        let spec: LinuxSeccomp = serde_json::from_value(random_profile(&mut rng)).unwrap();
        for layout in [Layout::CachePrefixBitmap, Layout::Bitmap] {
            for builtin in [
                BuiltinFilters::None,
                BuiltinFilters::Default,
                BuiltinFilters::Hardened,
                BuiltinFilters::All,
            ] {
                let opts = CompileOptions {
                    layout,
                    builtin,
                    enosys_stub: false,
                    ..Default::default()
                };
                assert_program_follows_policy(&spec, &opts);
            }
        }
    }
}

fn allow_list_profile() -> LinuxSeccomp {
    serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["read", "write", "getppid", "exit_group", "clone", "clone3",
                                "execveat", "ioctl", "mprotect", "pkey_mprotect", "prctl",
                                "socket", "prlimit64", "personality", "openat",
                                "socketcall", "unshare"],
                      "action": "SCMP_ACT_ALLOW"}]
    }))
    .unwrap()
}

fn verdict(prog: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let d = SeccompData {
        nr: nr as i32,
        arch,
        instruction_pointer: 0,
        args,
    };
    bpf_interpreter::run(prog, &d).unwrap()
}

#[test]
fn builtin_merge_changes_exactly_the_builtin_syscalls() {
    let spec = allow_list_profile();
    let off = CompileOptions {
        builtin: BuiltinFilters::None,
        enosys_stub: false,
        ..Default::default()
    };
    let on = CompileOptions {
        builtin: BuiltinFilters::All,
        ..off.clone()
    };
    let merged = effective_policy(&spec, &on).unwrap();
    let plain = effective_policy(&spec, &off).unwrap();
    let program = compile(&spec, &on).unwrap();
    bpf_interpreter::check(&program.instructions).unwrap();
    for name in builtin_syscalls() {
        assert!(
            program
                .debug
                .iter()
                .any(|m| m.contains(&format!("for {name}:"))),
            "merge of {name} not logged: {:?}",
            program.debug
        );
    }
    let mut changed = std::collections::BTreeSet::new();
    for d in sample_data(&merged) {
        let got = bpf_interpreter::run(&program.instructions, &d).unwrap();
        assert_eq!(got, expected(&merged, &d), "{d:x?}");
        if got != expected(&plain, &d) {
            let arch = match (d.arch, d.nr as u32 & 0x4000_0000 != 0) {
                (AUDIT_ARCH_X86_64, false) => Arch::X86_64,
                (AUDIT_ARCH_X86_64, true) => Arch::X32,
                _ => Arch::X86,
            };
            let name = arch.name_of(d.nr as u32).unwrap();
            assert!(
                builtin_syscalls().any(|n| n == name),
                "{name} changed by the merge"
            );
            changed.insert(name);
        }
    }
    assert_eq!(changed.len(), builtin_syscalls().count(), "{changed:?}");

    // The concrete rules, refused calls getting the profile's errno (EPERM here).
    let p = &program.instructions;
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let allow = libc::SECCOMP_RET_ALLOW;
    let x = AUDIT_ARCH_X86_64;
    let nr = |n: &str| Arch::X86_64.resolve(n).unwrap();
    let rwx = (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u64;
    assert_eq!(
        verdict(p, x, nr("mprotect"), [0, 4096, rwx, 0, 0, 0]),
        eperm
    );
    assert_eq!(verdict(p, x, nr("mprotect"), [0, 4096, 5, 0, 0, 0]), allow);
    assert_eq!(verdict(p, x, nr("ioctl"), [1, 0x5401, 0, 0, 0, 0]), allow);
    assert_eq!(
        verdict(p, x, nr("ioctl"), [1, 0xffff_ffff_0000_5401, 0, 0, 0, 0]),
        allow
    );
    assert_eq!(verdict(p, x, nr("ioctl"), [1, 0x5412, 0, 0, 0, 0]), eperm); // TIOCSTI
    let newns = libc::CLONE_NEWNS as u64;
    assert_eq!(verdict(p, x, nr("clone"), [newns, 0, 0, 0, 0, 0]), eperm);
    assert_eq!(
        verdict(p, x, nr("clone"), [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]),
        allow
    );
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    assert_eq!(verdict(p, x, nr("clone3"), [0; 6]), enosys);
    assert_eq!(verdict(p, x, nr("socket"), [2, 1, 0, 0, 0, 0]), allow);
    assert_eq!(verdict(p, x, nr("socket"), [17, 3, 0, 0, 0, 0]), eperm);
    assert_eq!(verdict(p, x, nr("prlimit64"), [0, 7, 0, 1, 0, 0]), allow);
    // Its own limits may be set (pid 0), another process's only read.
    assert_eq!(
        verdict(p, x, nr("prlimit64"), [0, 7, 0x1000, 0, 0, 0]),
        allow
    );
    assert_eq!(
        verdict(p, x, nr("prlimit64"), [1234, 7, 0x1000, 0, 0, 0]),
        eperm
    );
    assert_eq!(
        verdict(p, x, nr("prlimit64"), [1234, 7, 0, 0x1000, 0, 0]),
        allow
    );
    assert_eq!(verdict(p, x, nr("unshare"), [newns, 0, 0, 0, 0, 0]), eperm);
    assert_eq!(
        verdict(
            p,
            x,
            nr("unshare"),
            [libc::CLONE_FILES as u64, 0, 0, 0, 0, 0]
        ),
        allow
    );
    let i386 = AUDIT_ARCH_I386;
    let socketcall = Arch::X86.resolve("socketcall").unwrap();
    assert_eq!(verdict(p, i386, socketcall, [1, 0x1000, 0, 0, 0, 0]), eperm);
    assert_eq!(verdict(p, i386, socketcall, [3, 0x1000, 0, 0, 0, 0]), allow);
    assert_eq!(
        verdict(p, x, nr("execveat"), [3, 0, 0, 0, 0x1000, 0]),
        eperm
    );
    assert_eq!(
        verdict(p, x, nr("prctl"), [libc::PR_SET_NAME as u64, 0, 0, 0, 0, 0]),
        allow
    );
    assert_eq!(
        verdict(p, x, nr("prctl"), [libc::PR_SET_MM as u64, 0, 0, 0, 0, 0]),
        eperm
    );
    assert_eq!(
        verdict(p, x, nr("personality"), [0xffff_ffff, 0, 0, 0, 0, 0]),
        allow
    );
    assert_eq!(
        verdict(p, x, nr("personality"), [0x0040_0000, 0, 0, 0, 0, 0]),
        eperm
    );

    // A network namespace of its own widens the socket domains.
    let netns = compile(
        &spec,
        &CompileOptions {
            new_netns: true,
            ..on.clone()
        },
    )
    .unwrap();
    assert_eq!(
        verdict(&netns.instructions, x, nr("socket"), [17, 3, 0, 0, 0, 0]),
        allow
    );

    // A comma list merges only what it names.
    let only = compile(
        &spec,
        &CompileOptions {
            builtin: BuiltinFilters::parse("mprotect").unwrap(),
            ..on
        },
    )
    .unwrap();
    assert_eq!(
        verdict(&only.instructions, x, nr("mprotect"), [0, 1, rwx, 0, 0, 0]),
        eperm
    );
    assert_eq!(
        verdict(&only.instructions, x, nr("ioctl"), [1, 0x5412, 0, 0, 0, 0]),
        allow
    );
}

#[test]
fn cache_prefix_makes_allowed_syscalls_cacheable() {
    let spec = allow_list_profile();
    let opts = CompileOptions::default();
    let policy = effective_policy(&spec, &opts).unwrap();
    for (layout, cached) in [(Layout::CachePrefixBitmap, true), (Layout::Bitmap, false)] {
        let prog = compile(
            &spec,
            &CompileOptions {
                layout,
                ..opts.clone()
            },
        )
        .unwrap()
        .instructions;
        for arch in [Arch::X86_64, Arch::X86] {
            for nr in 0..=arch.max_nr() + 10 {
                let name = arch.name_of(nr);
                let rules = name.and_then(|n| policy.rules.get(n));
                let always = rules.is_some_and(|r| {
                    r.conditional.is_empty() && r.unconditional == Some(libc::SECCOMP_RET_ALLOW)
                });
                let emulated = cache_emulates_allow(&prog, arch.audit_arch(), nr);
                // Sound in both layouts; complete only with the prefix.
                assert!(!emulated || always, "{layout:?} {arch:?} {name:?}");
                if always {
                    assert_eq!(emulated, cached, "{layout:?} {arch:?} {name:?}");
                }
            }
        }
    }
}

/// Follows the program as long as it only loads the architecture or the syscall number and
/// jumps on them; returns the instructions run so far and the first other instruction.
fn dispatch_path(prog: &[libc::sock_filter], arch: u32, nr: u32) -> (usize, libc::sock_filter) {
    const LD_ABS: u16 = BPF_LD | BPF_W | BPF_ABS;
    let (mut a, mut pc, mut steps) = (0u32, 0usize, 0usize);
    loop {
        let insn = prog[pc];
        let op = insn.code & !0x07;
        let taken = match (insn.code & 0x07, insn.k) {
            (0, 0) if insn.code == LD_ABS => {
                a = nr;
                None
            }
            (0, 4) if insn.code == LD_ABS => {
                a = arch;
                None
            }
            (5, k) if op == BPF_JA => {
                pc += usize::try_from(k).unwrap();
                None
            }
            (5, k) if insn.code & 0x08 == 0 => Some(match op {
                0x10 => a == k,
                0x20 => a > k,
                0x30 => a >= k,
                0x40 => a & k != 0,
                _ => panic!("jump {insn:?}"),
            }),
            _ => return (steps, insn),
        };
        steps += 1;
        pc += 1 + match taken {
            Some(true) => usize::from(insn.jt),
            Some(false) => usize::from(insn.jf),
            None => 0,
        };
    }
}

#[test]
fn argument_filtered_syscalls_come_right_after_the_arch_check() {
    // The kernel cache cannot skip the filter for them: their dispatch is what each call
    // pays, so it is the shortest of the program. ioctl, the most frequent, comes first.
    let spec = allow_list_profile();
    let ld_arg = |insn: libc::sock_filter| insn.code == BPF_LD | BPF_W | BPF_ABS && insn.k >= 16;
    for layout in [Layout::CachePrefixBitmap, Layout::Bitmap] {
        for builtin in [BuiltinFilters::Hardened, BuiltinFilters::All] {
            let opts = CompileOptions {
                layout,
                builtin: builtin.clone(),
                ..Default::default()
            };
            let policy = effective_policy(&spec, &opts).unwrap();
            let prog = compile(&spec, &opts).unwrap().instructions;
            for (arch, arch_check) in [(Arch::X86_64, 2), (Arch::X86, 3)] {
                let filtered: Vec<u32> = policy
                    .rules
                    .iter()
                    .filter(|(_, r)| !r.conditional.is_empty())
                    .filter_map(|(name, _)| arch.resolve(name))
                    .collect();
                assert!(filtered.len() >= 6, "{builtin:?} {arch:?}: {filtered:?}");
                // ld arch, the arch test(s), ld nr; ioctl and mprotect one test each, a
                // balanced tree over the n others: at most ceil(log2(n)) + 1 tests.
                let frequent = ["ioctl", "mprotect"].map(|n| arch.resolve(n));
                let others = filtered
                    .iter()
                    .filter(|&&nr| !frequent.contains(&Some(nr)))
                    .count();
                let tree = usize::try_from(others.next_power_of_two().ilog2()).unwrap() + 1;
                // And a `ja` where the chain lies beyond a conditional jump's reach.
                let bound = arch_check + 1 + 2 + tree + 1;
                for &nr in &filtered {
                    let (steps, insn) = dispatch_path(&prog, arch.audit_arch(), nr);
                    assert!(
                        ld_arg(insn),
                        "{layout:?} {builtin:?} {arch:?} {nr}: {insn:?}"
                    );
                    assert!(
                        steps <= bound,
                        "{layout:?} {builtin:?} {arch:?} {nr}: {steps}"
                    );
                }
                let ioctl = arch.resolve("ioctl").unwrap();
                let (steps, insn) = dispatch_path(&prog, arch.audit_arch(), ioctl);
                // ld nr and one test, perhaps a `ja` to a far chain; then its request.
                assert!(steps <= arch_check + 3, "{builtin:?} {arch:?}: {steps}");
                assert_eq!(insn.k, 24, "{builtin:?} {arch:?}");
            }
        }
    }
}

#[test]
fn enosys_stub_covers_numbers_above_the_profile() {
    let spec = allow_list_profile();
    let p = compile(&spec, &CompileOptions::default())
        .unwrap()
        .instructions;
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let max = Arch::X86_64.resolve("clone3").unwrap(); // highest number the profile names
    assert_eq!(verdict(&p, AUDIT_ARCH_X86_64, max + 1, [0; 6]), enosys);
    assert_eq!(verdict(&p, AUDIT_ARCH_X86_64, 1000, [0; 6]), enosys);
    assert_eq!(verdict(&p, AUDIT_ARCH_X86_64, max - 1, [0; 6]), eperm);
    assert_eq!(verdict(&p, AUDIT_ARCH_I386, 1000, [0; 6]), enosys);
    assert_eq!(
        verdict(&p, AUDIT_ARCH_X86_64, 0x4000_0000 | 1000, [0; 6]),
        enosys
    );
    // Unknown architecture: killed, as with runc.
    assert_eq!(
        verdict(&p, 0xc000_00b7, 1, [0; 6]),
        libc::SECCOMP_RET_KILL_THREAD
    );
}

/// As runc: the stub guards only the architectures the profile lists; with none listed,
/// numbers above the profile get the default action.
#[test]
fn enosys_stub_only_on_listed_architectures() {
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let max = Arch::X86_64.resolve("clone3").unwrap();
    let mut unlisted = allow_list_profile();
    unlisted.set_architectures(None);
    let p = compile(&unlisted, &CompileOptions::default())
        .unwrap()
        .instructions;
    assert_eq!(verdict(&p, AUDIT_ARCH_X86_64, max + 1, [0; 6]), eperm);
    assert_eq!(verdict(&p, AUDIT_ARCH_X86_64, 1000, [0; 6]), eperm);
    let mut x86_only = allow_list_profile();
    x86_only.set_architectures(Some(vec![oci_spec::runtime::Arch::ScmpArchX86]));
    let p = compile(&x86_only, &CompileOptions::default())
        .unwrap()
        .instructions;
    assert_eq!(verdict(&p, AUDIT_ARCH_X86_64, 1000, [0; 6]), eperm);
    assert_eq!(verdict(&p, AUDIT_ARCH_I386, 1000, [0; 6]), enosys);
}

#[test]
fn oversized_program_is_a_clear_error() {
    let rules: Vec<serde_json::Value> = (0..3000u64)
        .map(|i| {
            json!({"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 1, "value": (i << 32) | i, "op": "SCMP_CMP_EQ"}]})
        })
        .collect();
    let spec: LinuxSeccomp =
        serde_json::from_value(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules}))
            .unwrap();
    match compile(&spec, &CompileOptions::default()) {
        Err(e @ SeccompError::ProgramTooLong { .. }) => {
            assert!(e.to_string().contains("4096"), "{e}")
        }
        other => panic!("expected ProgramTooLong, got {other:?}"),
    }
}

#[test]
fn unknown_names_warn_and_bad_index_errors() {
    let spec: LinuxSeccomp = serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read", "frobnicate"], "action": "SCMP_ACT_ALLOW"}]
    }))
    .unwrap();
    let p = compile(&spec, &CompileOptions::default()).unwrap();
    assert!(
        p.warnings.iter().any(|w| w.contains("frobnicate")),
        "{:?}",
        p.warnings
    );
    let spec: LinuxSeccomp = serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]
    }))
    .unwrap();
    let e = compile(&spec, &CompileOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains("syscalls[0]") && e.to_string().contains('6'),
        "{e}"
    );
    let spec: LinuxSeccomp = serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]
    }))
    .unwrap();
    let e = compile(&spec, &CompileOptions::default()).unwrap_err();
    assert!(e.to_string().contains("listenerPath"), "{e}");
}

#[test]
fn long_jumps_use_trampolines_and_stay_exact() {
    // Many argument rules push the default-action return far from the early checks (as
    // libseccomp merges them, each `>` rule's subtree is the whole merged `!=` level: the
    // program grows quadratically, so the count stays within the kernel's limit).
    let mut rules = Vec::new();
    for (i, name) in ["ioctl", "fcntl", "socket", "prctl", "personality"]
        .iter()
        .enumerate()
    {
        for v in 0..12u64 {
            rules.push(json!({"names": [name], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 1, "value": v * 7 + i as u64, "op": "SCMP_CMP_GT"},
                         {"index": 2, "value": v, "op": "SCMP_CMP_NE"}]}));
        }
    }
    let spec: LinuxSeccomp = serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86"],
        "syscalls": rules}))
    .unwrap();
    for layout in [Layout::CachePrefixBitmap, Layout::Bitmap] {
        let opts = CompileOptions {
            layout,
            enosys_stub: false,
            ..Default::default()
        };
        let prog = compile(&spec, &opts).unwrap().instructions;
        assert!(prog.len() > 1000, "{}", prog.len());
        let far_ja = prog
            .iter()
            .any(|i| u32::from(i.code) == (libc::BPF_JMP | libc::BPF_JA) && i.k > 255);
        assert!(far_ja, "{layout:?}: no long jump exercised");
        assert_program_follows_policy(&spec, &opts);
    }
}

#[test]
fn compilation_is_deterministic() {
    let spec = allow_list_profile();
    let a = compile(&spec, &CompileOptions::default())
        .unwrap()
        .instructions;
    for _ in 0..5 {
        let b = compile(&spec, &CompileOptions::default())
            .unwrap()
            .instructions;
        let same = a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k));
        assert!(same);
    }
}

#[test]
fn default_builtins_refuse_only_what_no_workload_needs() {
    let spec = allow_list_profile();
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    let allow = libc::SECCOMP_RET_ALLOW;
    let x = AUDIT_ARCH_X86_64;
    let nr = |n: &str| Arch::X86_64.resolve(n).unwrap();
    let rwx = (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u64;
    let newuser = libc::CLONE_NEWUSER as u64;
    assert_eq!(CompileOptions::default().builtin, BuiltinFilters::Default);
    for builtin in [BuiltinFilters::Default, BuiltinFilters::Hardened] {
        let opts = CompileOptions {
            enosys_stub: false,
            builtin: builtin.clone(),
            ..Default::default()
        };
        let program = compile(&spec, &opts).unwrap();
        let merged = effective_policy(&spec, &opts).unwrap();
        for d in sample_data(&merged) {
            assert_eq!(
                bpf_interpreter::run(&program.instructions, &d).unwrap(),
                expected(&merged, &d),
                "{builtin:?} {d:x?}"
            );
        }
        let p = &program.instructions;
        // The hot syscalls stay as the profile says by default (the kernel's cache answers
        // them without running the filter); hardened refuses TIOCSTI, PR_SET_MM and
        // namespaces, the same way through clone, clone3 and unshare.
        let hardened = builtin == BuiltinFilters::Hardened;
        let (refused, clone3) = if hardened {
            (eperm, enosys)
        } else {
            (allow, allow)
        };
        let cases = [
            // JITs (W^X is strict-only), fexecve.
            ("mprotect", [0, 4096, rwx, 0, 0, 0], allow),
            ("pkey_mprotect", [0, 4096, rwx, 0, 0, 0], allow),
            ("execveat", [3, 0, 0, 0, 0x1000, 0], allow),
            // Network tools and terminals.
            ("ioctl", [1, 0x8942, 0, 0, 0, 0], allow),
            ("ioctl", [1, 0x8970, 0, 0, 0, 0], allow),
            ("ioctl", [1, 0x891d, 0, 0, 0, 0], allow),
            ("ioctl", [1, 0x8946, 0, 0, 0, 0], allow),
            ("ioctl", [1, 0x5401, 0, 0, 0, 0], allow),
            ("ioctl", [1, 0x8914, 0, 0, 0, 0], allow),
            ("prctl", [libc::PR_SET_PTRACER as u64, 0, 0, 0, 0, 0], allow),
            // setrlimit on itself (glibc: prlimit64(0, ...)), not on others.
            ("prlimit64", [0, 7, 0x1000, 0, 0, 0], allow),
            ("prlimit64", [99, 7, 0x1000, 0, 0, 0], eperm),
            ("socket", [17, 3, 0, 0, 0, 0], eperm),
            ("ioctl", [1, 0x5412, 0, 0, 0, 0], refused),
            ("ioctl", [1, 0xffff_ffff_0000_5412, 0, 0, 0, 0], refused),
            ("prctl", [libc::PR_SET_MM as u64, 0, 0, 0, 0, 0], refused),
            ("clone", [newuser, 0, 0, 0, 0, 0], refused),
            ("unshare", [newuser, 0, 0, 0, 0, 0], refused),
            ("clone3", [0; 6], clone3),
        ];
        for (name, args, want) in cases {
            assert_eq!(
                verdict(p, x, nr(name), args),
                want,
                "{builtin:?} {name} {args:x?}"
            );
        }
        for name in ["ioctl", "prctl", "clone", "clone3", "unshare"] {
            for arch in [Arch::X86_64, Arch::X86] {
                let n = arch.resolve(name).unwrap();
                assert_eq!(
                    cache_emulates_allow(p, arch.audit_arch(), n),
                    !hardened,
                    "{builtin:?} {arch:?} {name}"
                );
            }
        }
    }
}

//! Seccomp benchmark driver (run through `hack/bench-seccomp`).
//!
//! - `seccomp_bench compile PROFILE.json LIBSECCOMP.bpf`: compile time and program length of
//!   both layouts, and per probe syscall the BPF instructions each program executes and
//!   whether the kernel's action cache can skip the filter.
//! - `seccomp_bench exec FILTER SOURCE PROGRAM [ARGS...]`: installs a filter and execs PROGRAM
//!   (the syscall-loop probe). FILTER is `prefix` or `bitmap` (the default built-in filters),
//!   `prefix-hardened`, `prefix-strict` (every built-in at its strictest) or
//!   `prefix-no-builtins` (SOURCE: an OCI
//!   profile compiled by nucleus), or `bpf` (SOURCE: a raw program, e.g. libseccomp's).
//! - `seccomp_bench load BUNDLE N`: loads BUNDLE's config.json and compiles its profile
//!   the way `create` does, N times in a loop, printing nothing: a workload to profile
//!   (`perf record -e cpu-clock`, callgrind) or time from outside.

use nucleus::seccomp::{compile, install, BuiltinFilters, CompileOptions, Layout, Program};
use oci_spec::runtime::LinuxSeccomp;
use std::ffi::CString;
use std::time::Instant;

#[path = "../tests/seccomp_support/mod.rs"]
mod seccomp_support;
use seccomp_support::read_bpf;

fn read_profile(path: &str) -> LinuxSeccomp {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_slice(&data).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn compile_times(path: &str) {
    let spec = read_profile(path);
    let t = Instant::now();
    let first = compile(&spec, &CompileOptions::default()).unwrap();
    println!(
        "first compile in a fresh process: {:.1} µs ({} warnings, {} merges logged)",
        t.elapsed().as_nanos() as f64 / 1000.0,
        first.warnings.len(),
        first.debug.len()
    );
    for layout in [Layout::CachePrefixBitmap, Layout::Bitmap] {
        let opts = CompileOptions {
            layout,
            ..Default::default()
        };
        let n = 2000;
        let mut times: Vec<f64> = (0..n)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(compile(&spec, &opts).unwrap());
                t.elapsed().as_nanos() as f64 / 1000.0
            })
            .collect();
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let len = compile(&spec, &opts).unwrap().instructions.len();
        println!(
            "{layout:?}: median {:.1} µs, min {:.1} µs, p90 {:.1} µs; {len} instructions",
            times[n / 2],
            times[0],
            times[n * 9 / 10]
        );
    }
}

/// Instructions executed for each probe syscall, and whether the kernel cache skips the filter.
fn paths(profile: &str, libseccomp_bpf: &str) {
    use nucleus::seccomp::bpf_interpreter::{cache_emulates_allow, run_counting, SeccompData};
    use nucleus::seccomp::syscall_table::AUDIT_ARCH_X86_64;
    let spec = read_profile(profile);
    let mut programs = Vec::new();
    for (name, layout, builtin) in [
        (
            "nucleus-prefix",
            Layout::CachePrefixBitmap,
            BuiltinFilters::Default,
        ),
        ("nucleus-bitmap", Layout::Bitmap, BuiltinFilters::Default),
        (
            "nucleus-prefix-hardened",
            Layout::CachePrefixBitmap,
            BuiltinFilters::Hardened,
        ),
        (
            "nucleus-prefix-strict",
            Layout::CachePrefixBitmap,
            BuiltinFilters::All,
        ),
        (
            "nucleus-prefix-nobuiltin",
            Layout::CachePrefixBitmap,
            BuiltinFilters::None,
        ),
    ] {
        let opts = CompileOptions {
            layout,
            builtin,
            ..Default::default()
        };
        programs.push((name, compile(&spec, &opts).unwrap().instructions));
    }
    programs.push(("libseccomp", read_bpf(libseccomp_bpf)));
    // The calls of hack/seccomp-syscall-loop.c, with its arguments.
    let probes: [(&str, i64, [u64; 6]); 8] = [
        ("getppid", libc::SYS_getppid, [0; 6]),
        (
            "personality",
            libc::SYS_personality,
            [0xffff_ffff, 0, 0, 0, 0, 0],
        ),
        ("ioctl", libc::SYS_ioctl, [3, libc::FIONREAD, 0, 0, 0, 0]),
        ("mprotect", libc::SYS_mprotect, [0x1000, 4096, 1, 0, 0, 0]),
        ("prctl", libc::SYS_prctl, [3, 0, 0, 0, 0, 0]),
        ("socket", libc::SYS_socket, [1, 0x7f, 0, 0, 0, 0]),
        ("clone", libc::SYS_clone, [0x800, 0, 0, 0, 0, 0]),
        ("acct", libc::SYS_acct, [0; 6]),
    ];
    println!("\n== BPF instructions executed per call (C: the kernel cache skips the filter)");
    print!("{:<12}", "syscall");
    for (name, _) in &programs {
        print!("{name:>26}");
    }
    println!();
    for (pname, nr, args) in probes {
        print!("{pname:<12}");
        let nr = i32::try_from(nr).expect("syscall numbers fit in an int");
        let d = SeccompData {
            nr,
            arch: AUDIT_ARCH_X86_64,
            instruction_pointer: 0,
            args,
        };
        for (_, p) in &programs {
            let (_, steps) = run_counting(p, &d).unwrap();
            let cached = cache_emulates_allow(p, AUDIT_ARCH_X86_64, nr.unsigned_abs());
            print!(
                "{:>26}",
                if cached {
                    "C".to_string()
                } else {
                    steps.to_string()
                }
            );
        }
        println!();
    }
}

fn exec_under(filter: &str, source: &str, argv: &[String]) -> ! {
    let program = match filter {
        "bpf" => Program {
            instructions: read_bpf(source),
            flags: 0,
            uses_notify: false,
            warnings: vec![],
            debug: vec![],
        },
        _ => {
            let opts = CompileOptions {
                layout: if filter == "bitmap" {
                    Layout::Bitmap
                } else {
                    Layout::CachePrefixBitmap
                },
                builtin: match filter {
                    "prefix-no-builtins" => BuiltinFilters::None,
                    "prefix-hardened" => BuiltinFilters::Hardened,
                    "prefix-strict" => BuiltinFilters::All,
                    _ => BuiltinFilters::Default,
                },
                ..Default::default()
            };
            compile(&read_profile(source), &opts).unwrap()
        }
    };
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_str()).unwrap())
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: plain prctl, required before installing a filter unprivileged-style.
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    install(&program).expect("installing the filter");
    // SAFETY: argv is a null-terminated array of C strings kept alive above.
    unsafe { libc::execv(ptrs[0], ptrs.as_ptr()) };
    panic!("exec {}: {}", argv[0], std::io::Error::last_os_error());
}

fn load_loop(bundle: &str, n: usize) {
    let bundle = std::path::Path::new(bundle);
    for _ in 0..n {
        let spec = nucleus::spec::load(bundle).unwrap();
        nucleus::spec::validate(&spec).unwrap();
        let section = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
        if let Some(s) = section {
            std::hint::black_box(compile(s, &CompileOptions::default()).unwrap());
        }
        std::hint::black_box(spec);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("compile") => {
            compile_times(&args[2]);
            paths(&args[2], &args[3]);
        }
        Some("exec") => exec_under(&args[2], &args[3], &args[4..]),
        Some("load") => load_loop(&args[2], args[3].parse().expect("N: a count")),
        _ => {
            eprintln!("usage: seccomp_bench compile PROFILE | exec FILTER SOURCE PROGRAM [ARGS]");
            std::process::exit(2);
        }
    }
}

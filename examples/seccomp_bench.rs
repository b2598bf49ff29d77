//! Seccomp benchmark (run through `hack/bench-seccomp`): compile time and program length for
//! a profile, and the per-syscall cost of an allowed, arg-filtered and denied syscalls under
//! no filter, nucleus's two layouts and libseccomp's program for the same profile (what runc
//! and crun install).
//!
//! usage: seccomp_bench PROFILE.json LIBSECCOMP.bpf [ITERATIONS]

use nucleus::seccomp::{compile, install, BuiltinFilters, CompileOptions, Layout, Program};
use oci_spec::runtime::LinuxSeccomp;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Instant;

struct Case {
    name: &'static str,
    run: fn(*mut libc::c_void) -> libc::c_long,
}

const CASES: &[Case] = &[
    Case {
        name: "getppid (allowed)",
        // SAFETY (all cases): raw syscalls on our own fd/mapping, no memory handed out.
        run: |_| unsafe { libc::syscall(libc::SYS_getppid) },
    },
    Case {
        name: "ioctl FIONREAD (arg-filtered)",
        run: |_| {
            let mut n: libc::c_int = 0;
            unsafe { libc::syscall(libc::SYS_ioctl, 0, libc::FIONREAD, &mut n) }
        },
    },
    Case {
        name: "personality query (arg-filtered)",
        run: |_| unsafe { libc::syscall(libc::SYS_personality, 0xffff_ffffu64) },
    },
    Case {
        name: "mprotect R (arg-filtered)",
        run: |page| unsafe { libc::syscall(libc::SYS_mprotect, page, 4096, libc::PROT_READ) },
    },
    Case {
        name: "acct (denied)",
        run: |_| unsafe { libc::syscall(libc::SYS_acct, 0) },
    },
];

/// Nanoseconds per call of each case, measured in a child under `filter`.
fn measure(filter: Option<&Program>, iters: u32) -> Vec<f64> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh fds from pipe2, owned here.
    let (mut rd, wr) = unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    // SAFETY: the benchmark process is single-threaded.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        drop(rd);
        let mut wr = wr;
        // SAFETY: anonymous mapping for mprotect.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        // SAFETY: stdin is replaced by the read end of a pipe so FIONREAD is valid.
        unsafe { libc::dup2(wr.as_raw_fd() - 1, 0) };
        // SAFETY: no_new_privs before installing the filter.
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        if let Some(p) = filter {
            install(p).expect("install");
        }
        let mut out = Vec::new();
        for c in CASES {
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = Instant::now();
                for _ in 0..iters {
                    std::hint::black_box((c.run)(page));
                }
                best = best.min(t.elapsed().as_nanos() as f64 / iters as f64);
            }
            out.push(best);
        }
        let s: Vec<String> = out.iter().map(|v| v.to_string()).collect();
        let _ = wr.write_all(s.join(" ").as_bytes());
        // SAFETY: leave the child without unwinding into the parent's state.
        unsafe { libc::_exit(0) };
    }
    drop(wr);
    let mut s = String::new();
    rd.read_to_string(&mut s).unwrap();
    let mut status = 0;
    // SAFETY: our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    s.split_whitespace().map(|v| v.parse().unwrap()).collect()
}

fn read_bpf(path: &str) -> Vec<libc::sock_filter> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let profile = std::fs::read(&args[1]).expect("profile");
    let spec: LinuxSeccomp = serde_json::from_slice(&profile).expect("profile JSON");
    let iters: u32 = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(200_000);
    let theirs = Program {
        instructions: read_bpf(&args[2]),
        flags: 0,
        uses_notify: false,
        warnings: vec![],
        debug: vec![],
    };

    println!("== compile time ({}), builtin filters on", args[1]);
    let t = Instant::now();
    let first = compile(&spec, &CompileOptions::default()).unwrap();
    println!(
        "first compile in this process (cold caches): {:.1} µs",
        t.elapsed().as_nanos() as f64 / 1000.0
    );
    for w in &first.warnings {
        println!("  warning: {w}");
    }
    for d in &first.debug {
        println!("  debug: {d}");
    }
    let mut programs = Vec::new();
    for layout in [Layout::CachePrefixBitmap, Layout::Bitmap] {
        let opts = CompileOptions {
            layout,
            builtin: BuiltinFilters::All,
            ..Default::default()
        };
        let n = 2000;
        let mut times = Vec::with_capacity(n);
        let mut p = None;
        for _ in 0..n {
            let t = Instant::now();
            p = Some(compile(&spec, &opts).unwrap());
            times.push(t.elapsed().as_nanos() as f64 / 1000.0);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let p = p.unwrap();
        println!(
            "{layout:?}: median {:.1} µs, p90 {:.1} µs, {} instructions",
            times[n / 2],
            times[n * 9 / 10],
            p.instructions.len()
        );
        programs.push((format!("nucleus {layout:?}"), p));
    }
    // Without the built-in argument filters ioctl and mprotect are plain allows, as with runc.
    let plain = CompileOptions {
        builtin: BuiltinFilters::None,
        ..Default::default()
    };
    programs.push((
        "nucleus prefix, no built-ins".into(),
        compile(&spec, &plain).unwrap(),
    ));
    println!(
        "libseccomp (runc/crun): {} instructions",
        theirs.instructions.len()
    );

    let rounds = 5;
    println!("\n== per-syscall cost, ns/call (min over {rounds} interleaved rounds x 5 x {iters})");
    let mut filters: Vec<(String, Option<&Program>)> = vec![("no filter".into(), None)];
    for (name, p) in &programs {
        filters.push((name.clone(), Some(p)));
    }
    filters.push(("libseccomp (runc/crun)".into(), Some(&theirs)));
    let mut rows: Vec<(String, Vec<f64>)> = filters
        .iter()
        .map(|(n, _)| (n.clone(), vec![f64::MAX; CASES.len()]))
        .collect();
    for _ in 0..rounds {
        for (i, (_, f)) in filters.iter().enumerate() {
            for (best, v) in rows[i].1.iter_mut().zip(measure(*f, iters)) {
                *best = best.min(v);
            }
        }
    }
    let none = rows[0].1.clone();
    let lib = rows[rows.len() - 1].1.clone();
    print!("{:<34}", "syscall");
    for (name, _) in &rows {
        print!("{name:>26}");
    }
    println!();
    for (i, c) in CASES.iter().enumerate() {
        print!("{:<34}", c.name);
        for (_, r) in &rows {
            print!("{:>26.1}", r[i]);
        }
        println!();
    }
    println!("\n== extra cost over no filter, relative to libseccomp's extra cost");
    for (name, r) in &rows[1..rows.len() - 1] {
        println!("{name}:");
        for (i, c) in CASES.iter().enumerate() {
            let ours = r[i] - none[i];
            let theirs = lib[i] - none[i];
            println!(
                "  {:<34} +{:>7.1} ns vs +{:>7.1} ns  ratio {:.2}",
                c.name,
                ours,
                theirs,
                if theirs.abs() > 0.5 {
                    ours / theirs
                } else {
                    f64::NAN
                }
            );
        }
    }
}

//! A tiny workload for seccomp tests: makes exactly the syscalls a test asks for and prints
//! what the kernel answered. Runs inside containers with the host's libraries bind-mounted.

use std::process::ExitCode;

/// Harmless syscalls without arguments that matter, each made once by `distinct`.
const DISTINCT: &[(&str, libc::c_long)] = &[
    ("getpid", libc::SYS_getpid),
    ("getppid", libc::SYS_getppid),
    ("getuid", libc::SYS_getuid),
    ("geteuid", libc::SYS_geteuid),
    ("getgid", libc::SYS_getgid),
    ("getegid", libc::SYS_getegid),
    ("gettid", libc::SYS_gettid),
    ("getpgrp", libc::SYS_getpgrp),
    ("sched_yield", libc::SYS_sched_yield),
    ("getcpu", libc::SYS_getcpu),
    ("setsid", libc::SYS_setsid),
    ("alarm", libc::SYS_alarm),
    ("umask", libc::SYS_umask),
    ("getsid", libc::SYS_getsid),
    ("getpgid", libc::SYS_getpgid),
    ("getpriority", libc::SYS_getpriority),
    ("sched_getscheduler", libc::SYS_sched_getscheduler),
    ("personality", libc::SYS_personality),
    ("times", libc::SYS_times),
    ("sysinfo", libc::SYS_sysinfo),
];

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

extern "C" fn on_sigsys(_: libc::c_int) {
    // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer is static.
    unsafe {
        libc::write(1, b"trap\n".as_ptr().cast(), 5);
        libc::_exit(0);
    }
}

/// One syscall in a forked child; what happened to it.
fn call_in_child(nr: libc::c_long, args: [u64; 3]) -> String {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // SAFETY: the probe is single-threaded; the child only makes the syscall, async-signal-
    // safe writes and _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: installs a plain handler for SIGSYS in the child (SCMP_ACT_TRAP delivers it).
        unsafe {
            libc::signal(
                libc::SIGSYS,
                on_sigsys as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
        // SAFETY: the tested syscalls (getpriority, socket, personality, unassigned numbers) take
        // only integers and act on the short-lived child alone.
        let r = unsafe { libc::syscall(nr, args[0], args[1], args[2]) };
        let line = if r >= 0 {
            "ok\n".to_string()
        } else {
            format!("err {}\n", errno())
        };
        // SAFETY: writes a live buffer, then leaves without running atexit handlers.
        unsafe {
            libc::write(1, line.as_ptr().cast(), line.len());
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFSIGNALED(status) {
        format!("signal {}", libc::WTERMSIG(status))
    } else {
        String::new()
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        // Every syscall of DISTINCT once (arguments chosen to be no-ops).
        Some("distinct") => {
            for (name, nr) in DISTINCT {
                println!("{name}");
                // SAFETY: each call gets arguments that make it a query or a no-op:
                // alarm(0), umask(022), personality(0xffffffff) (query), times/sysinfo(NULL)
                // fail with EFAULT harmlessly.
                unsafe {
                    match *nr {
                        libc::SYS_alarm => libc::syscall(*nr, 0),
                        libc::SYS_umask => libc::syscall(*nr, 0o22),
                        libc::SYS_personality => libc::syscall(*nr, 0xffff_ffffu64),
                        libc::SYS_getpriority => libc::syscall(*nr, 0, 0),
                        _ => libc::syscall(*nr, 0, 0, 0),
                    }
                };
            }
            ExitCode::SUCCESS
        }
        // `burst N NAME`: NAME (getpriority or sethostname-free variants) N times, counting
        // the failures.
        Some("burst") => {
            let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
            let mut failed = 0;
            for _ in 0..n {
                // SAFETY: getpriority(PRIO_PROCESS, 0) only reads.
                if unsafe { libc::syscall(libc::SYS_getpriority, 0, 0) } < 0 {
                    failed += 1;
                }
            }
            println!("burst {n} failed {failed} errno {}", errno());
            ExitCode::SUCCESS
        }
        // A writable and executable mapping: refused under the W^X rule.
        Some("wx") => {
            // SAFETY: an anonymous private mapping we own, then mprotect on it.
            let r = unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                libc::mprotect(
                    p,
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                )
            };
            println!(
                "mprotect-wx {} errno {}",
                r,
                if r < 0 { errno() } else { 0 }
            );
            ExitCode::SUCCESS
        }
        // An ioctl outside any tty allowlist (FIFREEZE on /): answered by the filter.
        // `ioctl [REQUEST]`: the request in hex, FIFREEZE by default.
        Some("ioctl") => {
            let req = args
                .get(2)
                .and_then(|r| u64::from_str_radix(r.trim_start_matches("0x"), 16).ok())
                .unwrap_or(0xc004_5877);
            // SAFETY: ioctl on fd 0 with a null argument; every request used here either
            // fails on it or is refused before the call.
            let r = unsafe { libc::ioctl(0, req as libc::c_ulong, 0) };
            println!("ioctl {} errno {}", r, if r < 0 { errno() } else { 0 });
            ExitCode::SUCCESS
        }
        // `calls NR:A0:A1:A2 ...` (hex): each syscall made once in a child of its own, one
        // line each: `ok`, `err ERRNO`, `trap` (SIGSYS delivered) or `signal N` (killed).
        Some("calls") => {
            for spec in &args[2..] {
                let v: Vec<u64> = spec
                    .split(':')
                    .map(|x| u64::from_str_radix(x, 16).unwrap_or(0))
                    .collect();
                let a = |i: usize| v.get(i).copied().unwrap_or(0);
                let killed = call_in_child(a(0) as libc::c_long, [a(1), a(2), a(3)]);
                if !killed.is_empty() {
                    println!("{killed}");
                }
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: nucleus-probe distinct|burst N|wx|ioctl|calls SPEC...");
            ExitCode::from(2)
        }
    }
}

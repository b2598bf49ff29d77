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

/// `NAME R ERRNO` for the result of a call returning -1 on failure.
fn report(name: &str, r: libc::c_int) {
    println!("{name} {r} errno {}", if r < 0 { errno() } else { 0 });
}

/// A new pty pair: (master, slave), neither a controlling tty yet.
fn pty() -> (libc::c_int, libc::c_int) {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: opens a pty master, unlocks it and opens its peer; plain integer arguments
    // but for TIOCSPTLCK's pointer to a live int.
    unsafe {
        let m = libc::open(c"/dev/ptmx".as_ptr(), flags);
        let unlock: libc::c_int = 0;
        libc::ioctl(m, libc::TIOCSPTLCK, &unlock);
        (m, libc::ioctl(m, libc::TIOCGPTPEER, flags))
    }
}

/// `tty`: what the kernel and the filter answer a process without a controlling tty, on a
/// pty another session holds (`steal`: TIOCSCTTY with 1, `held-tiocsti`) and on one it
/// makes its own (`sctty`, `tiocsti`, `tioccons`).
fn tty() {
    let (_held_m, held) = pty();
    let mut sync = [0 as libc::c_int; 2];
    // SAFETY: a pipe, then a fork of this single-threaded probe; the child makes the pty its
    // controlling tty in a session of its own, reports and waits to be killed.
    let child = unsafe {
        libc::pipe2(sync.as_mut_ptr(), libc::O_CLOEXEC);
        let pid = libc::fork();
        if pid == 0 {
            libc::setsid();
            let r = libc::ioctl(held, libc::TIOCSCTTY, 0);
            let b = [u8::from(r == 0)];
            libc::write(sync[1], b.as_ptr().cast(), 1);
            loop {
                libc::pause();
            }
        }
        pid
    };
    let mut b = [0u8];
    // SAFETY: reads one byte into a live buffer.
    unsafe { libc::read(sync[0], b.as_mut_ptr().cast(), 1) };
    println!("held {}", b[0]);
    let ch = b'x';
    // SAFETY: tty ioctls on fds this probe owns: an integer argument or a pointer to a live
    // byte (TIOCSTI).
    unsafe {
        report("steal", libc::ioctl(held, libc::TIOCSCTTY, 1));
        report("held-tiocsti", libc::ioctl(held, libc::TIOCSTI, &ch));
        libc::kill(child, libc::SIGKILL);
        libc::waitpid(child, std::ptr::null_mut(), 0);
        libc::setsid();
        let (_own_m, own) = pty();
        report("sctty", libc::ioctl(own, libc::TIOCSCTTY, 0));
        report("tiocsti", libc::ioctl(own, libc::TIOCSTI, &ch));
        report("tioccons", libc::ioctl(own, libc::TIOCCONS, 0));
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
        // SAFETY: the tested syscalls (getpriority, socket, personality, prctl, unassigned
        // numbers) take integers (prctl's PR_SET_MM a null address, refused with EFAULT)
        // and act on the short-lived child alone. The unused arguments are 0, not leftovers.
        let r = unsafe { libc::syscall(nr, args[0], args[1], args[2], 0u64, 0u64, 0u64) };
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

/// `deny-set-mm PROGRAM ARGS...`: runs PROGRAM with prctl(PR_SET_MM, ...) refused (EPERM)
/// by a seccomp filter, as a kernel without CONFIG_CHECKPOINT_RESTORE refuses it. Needs
/// CAP_SYS_ADMIN (no no_new_privs is set, so PROGRAM keeps what an execve would give it).
fn deny_set_mm(program: &[String]) -> ExitCode {
    let Some(path) = program.first() else {
        eprintln!("usage: nucleus-probe deny-set-mm PROGRAM ARGS...");
        return ExitCode::from(2);
    };
    // The BPF opcodes and the numbers compared are small constants: the conversions hold.
    let narrow = |v: u32| u16::try_from(v).expect("a BPF opcode");
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: narrow(code),
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: narrow(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K),
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    // struct seccomp_data: nr at 0, args[0] at 16 (its low half on x86_64).
    let mut prog = [
        stmt(load, 0),
        jeq(
            u32::try_from(libc::SYS_prctl).expect("a syscall number"),
            0,
            3,
        ),
        stmt(load, 16),
        jeq(libc::PR_SET_MM as u32, 0, 1),
        stmt(ret, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
    ];
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).expect("a short program"),
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: installs the filter program above, which lives across the call.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        eprintln!("deny-set-mm: seccomp: errno {}", errno());
        return ExitCode::FAILURE;
    }
    let err = std::os::unix::process::CommandExt::exec(
        std::process::Command::new(path).args(&program[1..]),
    );
    eprintln!("deny-set-mm: exec {path}: {err}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("deny-set-mm") => deny_set_mm(&args[2..]),
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
        Some("tty") => {
            tty();
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

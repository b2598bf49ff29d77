//! Compiled programs in the real kernel: each case forks a child that installs a filter and
//! reports through its exit status. The child does only raw syscalls after fork.

use nucleus::seccomp::builtin_filters::BuiltinFilters;
use nucleus::seccomp::{compile, install, CompileOptions, Layout, Program};
use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;

/// Compiled with every built-in filter at its strictest.
fn program(profile: serde_json::Value, layout: Layout) -> Program {
    let spec: LinuxSeccomp = serde_json::from_value(profile).unwrap();
    compile(
        &spec,
        &CompileOptions {
            layout,
            builtin: BuiltinFilters::All,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Runs `body` in a child under `p`; returns the raw wait status.
fn in_child(p: &Program, body: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child only makes raw syscalls and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: plain prctl; required to install a filter without CAP_SYS_ADMIN semantics.
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        let code = match install(p) {
            Ok(_) => body(),
            Err(_) => 100,
        };
        // SAFETY: leaving the forked child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    status
}

fn exit_code(status: i32) -> i32 {
    assert!(
        libc::WIFEXITED(status),
        "child did not exit normally: {status:#x}"
    );
    libc::WEXITSTATUS(status)
}

fn errno_of(ret: libc::c_long) -> i32 {
    if ret < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    }
}

#[test]
fn denied_syscall_gets_the_profile_errno() {
    for layout in [Layout::CachePrefixBitmap, Layout::Bitmap] {
        let p = program(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}]}),
            layout,
        );
        let status = in_child(&p, || {
            // SAFETY: raw syscall without arguments.
            let r = unsafe { libc::syscall(libc::SYS_getppid) };
            errno_of(r)
        });
        assert_eq!(exit_code(status), 42, "{layout:?}");
    }
}

#[test]
fn kill_actions_kill() {
    for action in ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS"] {
        let p = program(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getppid"], "action": action}]}),
            Layout::CachePrefixBitmap,
        );
        let status = in_child(&p, || {
            // SAFETY: raw syscall without arguments.
            unsafe { libc::syscall(libc::SYS_getppid) };
            0
        });
        assert!(libc::WIFSIGNALED(status), "{action}: {status:#x}");
        assert_eq!(libc::WTERMSIG(status), libc::SIGSYS, "{action}");
    }
}

#[test]
fn allow_list_with_builtin_wx_refusal() {
    for layout in [Layout::CachePrefixBitmap, Layout::Bitmap] {
        let p = program(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13, "syscalls": [
                {"names": ["exit_group", "exit", "mprotect", "getppid", "ioctl"],
                 "action": "SCMP_ACT_ALLOW"}]}),
            layout,
        );
        // SAFETY: anonymous private mapping, unmapped by the child's exit.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(page, libc::MAP_FAILED);
        let status = in_child(&p, || {
            // SAFETY: changing protection of our own mapping; raw syscalls.
            unsafe {
                let wx = libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC;
                if errno_of(libc::syscall(libc::SYS_mprotect, page, 4096, wx)) != 13 {
                    return 1;
                }
                if libc::syscall(
                    libc::SYS_mprotect,
                    page,
                    4096,
                    libc::PROT_READ | libc::PROT_EXEC,
                ) != 0
                {
                    return 2;
                }
                if errno_of(libc::syscall(libc::SYS_getpid)) != 13 {
                    return 3;
                }
                if libc::syscall(libc::SYS_getppid) <= 0 {
                    return 4;
                }
                // TIOCSTI is not on the ioctl allowlist; FIONREAD is (EBADF: it ran).
                if errno_of(libc::syscall(libc::SYS_ioctl, -1, libc::TIOCSTI, 0)) != 13 {
                    return 5;
                }
                if errno_of(libc::syscall(libc::SYS_ioctl, -1, libc::FIONREAD, 0)) != libc::EBADF {
                    return 6;
                }
            }
            0
        });
        // SAFETY: unmapping the page mapped above.
        unsafe { libc::munmap(page, 4096) };
        assert_eq!(exit_code(status), 0, "{layout:?}");
    }
}

/// An i386 syscall from this 64-bit process (`int 0x80` enters the compat ABI).
#[cfg(target_arch = "x86_64")]
fn int80(nr: u32) -> i32 {
    let ret: u64;
    // SAFETY: i386 syscall entry; the numbers used take no pointer arguments.
    unsafe {
        std::arch::asm!("int 0x80", inlateout("rax") nr as u64 => ret,
                        out("r8") _, out("r9") _, out("r10") _, out("r11") _);
    }
    // An i386 syscall returns in eax: the low 32 bits of rax are the result.
    #[allow(clippy::cast_possible_truncation)]
    let eax = ret as u32;
    i32::from_ne_bytes(eax.to_ne_bytes())
}

#[test]
#[cfg(target_arch = "x86_64")]
fn compat_x86_syscalls_use_their_own_numbers() {
    // Whether this kernel runs i386 syscalls at all (ia32 emulation can be off).
    let probe = in_child(
        &program(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"]}),
            Layout::CachePrefixBitmap,
        ),
        || (int80(64) > 0) as i32,
    );
    assert!(
        libc::WIFEXITED(probe) && libc::WEXITSTATUS(probe) == 1,
        "this kernel runs no i386 syscalls (IA32_EMULATION off; wait status {probe:#x}): \
         the compat paths of the filter cannot be checked here"
    );
    for layout in [Layout::CachePrefixBitmap, Layout::Bitmap] {
        let p = program(
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                   "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7}]}),
            layout,
        );
        // i386 getppid is 64, i386 20 is getpid; x86_64 64 is semget.
        let status = in_child(&p, || {
            if int80(64) != -7 {
                return 1;
            }
            if int80(20) <= 0 {
                return 2;
            }
            0
        });
        assert_eq!(exit_code(status), 0, "{layout:?}");
        // Without the x86 arch in the profile, an i386 syscall is a bad arch: killed.
        let p = program(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"]}),
            layout,
        );
        let status = in_child(&p, || int80(20));
        assert!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS);
    }
}

#[test]
fn profile_flags_are_passed_to_the_kernel() {
    let p = program(
        json!({"defaultAction": "SCMP_ACT_ALLOW",
               "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                         "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_TSYNC"],
               "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9}]}),
        Layout::CachePrefixBitmap,
    );
    assert_eq!(
        p.flags,
        libc::SECCOMP_FILTER_FLAG_LOG
            | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
    );
    // Without a listener WAIT_KILLABLE_RECV is dropped (the kernel would refuse it).
    let status = in_child(&p, || {
        // SAFETY: raw syscall without arguments.
        errno_of(unsafe { libc::syscall(libc::SYS_getppid) })
    });
    assert_eq!(exit_code(status), 9);
    // With one, all flags reach the kernel and a listener comes back.
    let p = program(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent",
               "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
               "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]}),
        Layout::CachePrefixBitmap,
    );
    // SAFETY: the child leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: plain prctl.
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        let code = match install(&p) {
            Ok(Some(fd)) => {
                // SAFETY: F_GETFD on the fd we own.
                let fl =
                    unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&fd), libc::F_GETFD) };
                if fl & libc::FD_CLOEXEC != 0 {
                    0
                } else {
                    3
                }
            }
            Ok(None) => 2,
            Err(_) => 1,
        };
        // SAFETY: leave the child.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(exit_code(status), 0);
}

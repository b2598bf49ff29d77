//! Trace mode and deny logging through seccomp user notification, which loses nothing
//! (unlike audit records read from /dev/kmsg under printk's rate limit, and unlike
//! SECCOMP_FILTER_FLAG_LOG, which never logs allowed syscalls).
//!
//! - Trace: every syscall notifies the supervisor, which counts it and lets it continue.
//! - Log denied: the profile's program with every `ERRNO` verdict turned into a notification;
//!   the supervisor runs the original program on the notified syscall, logs it and answers
//!   with the errno the profile gives. KILL/TRAP verdicts are left to the kernel.
//!
//! Hand-over: after installing, the container process publishes the listener's fd number in
//! a [`ListenerSlot`] (shared memory: sending it over a socket would need syscalls that, in
//! trace mode, wait for a supervisor that does not have the listener yet); the supervisor
//! takes the fd with pidfd_getfd(2) and wakes the process, which waited on a futex so that
//! its exec could not close the listener first.

use super::bpf_interpreter::{self, SeccompData};
use super::syscall_table::{Arch, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use super::{Program, SeccompError};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// SECCOMP_USER_NOTIF_FLAG_CONTINUE (1), in the width of seccomp_notif_resp.flags.
const NOTIF_FLAG_CONTINUE: u32 = 1;
const _: () = assert!(libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE == 1);

/// The trace-mode filter: every syscall of every architecture goes to the supervisor.
pub fn trace_program() -> Program {
    Program {
        instructions: vec![super::bpf::stmt(
            super::bpf::BPF_RET | super::bpf::BPF_K,
            libc::SECCOMP_RET_USER_NOTIF,
        )],
        flags: 0,
        uses_notify: true,
        warnings: vec![],
        debug: vec![],
    }
}

/// `p` with its ERRNO verdicts sent to the supervisor instead (see [`supervise`]).
pub fn log_denied_program(p: &Program) -> Result<Program, SeccompError> {
    if p.uses_notify {
        return Err(SeccompError::NotifyConflict);
    }
    let mut out = p.clone();
    for insn in &mut out.instructions {
        if insn.code == super::bpf::BPF_RET | super::bpf::BPF_K
            && insn.k & libc::SECCOMP_RET_ACTION_FULL == libc::SECCOMP_RET_ERRNO
        {
            insn.k = libc::SECCOMP_RET_USER_NOTIF;
        }
    }
    out.uses_notify = true;
    Ok(out)
}

/// Two words of shared memory, mapped before fork, through which the container process tells
/// the supervisor its listener fd number and learns that the supervisor has taken it.
pub struct ListenerSlot {
    /// `[fd number (-1: not yet), taken (0/1)]`
    ptr: *mut [AtomicI32; 2],
}

// SAFETY: the slot is atomics in a mapping owned by this value.
unsafe impl Send for ListenerSlot {}

fn futex(word: &AtomicI32, op: libc::c_int, val: i32, timeout: Option<&libc::timespec>) {
    let t = timeout.map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: a futex op on a live atomic in a shared mapping (no FUTEX_PRIVATE_FLAG: the
    // waiter and the waker are different processes).
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), op, val, t) };
}

impl ListenerSlot {
    pub fn new() -> Result<Self, SeccompError> {
        // SAFETY: a fresh anonymous shared mapping; checked for failure below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(SeccompError::Supervisor {
                what: "mapping the listener slot",
                source: std::io::Error::last_os_error(),
            });
        }
        let ptr = ptr as *mut [AtomicI32; 2];
        // SAFETY: the mapping is page-aligned, zero-filled and large enough.
        unsafe { (*ptr)[0].store(-1, Ordering::SeqCst) };
        Ok(Self { ptr })
    }

    fn words(&self) -> &[AtomicI32; 2] {
        // SAFETY: valid for the lifetime of self (unmapped in Drop).
        unsafe { &*self.ptr }
    }

    /// In the container process, right after [`super::install`]: publishes the listener and
    /// waits (futex, no allocation) until the supervisor has taken it, so that exec cannot
    /// close it first. `false`: not taken within `timeout`.
    pub fn publish(&self, fd: RawFd, timeout: Duration) -> bool {
        let [slot, taken] = self.words();
        slot.store(fd, Ordering::SeqCst);
        let step = libc::timespec {
            tv_sec: 0,
            tv_nsec: 50_000_000,
        };
        let rounds = (timeout.as_millis() / 50).max(1);
        for _ in 0..rounds {
            if taken.load(Ordering::SeqCst) == 1 {
                return true;
            }
            futex(taken, libc::FUTEX_WAIT, 0, Some(&step));
        }
        taken.load(Ordering::SeqCst) == 1
    }

    /// In the supervisor: waits for the fd number, duplicates it out of process `pid` and
    /// releases the waiting container process.
    pub fn take(&self, pid: i32, timeout: Duration) -> Result<OwnedFd, SeccompError> {
        let [slot, taken] = self.words();
        let deadline = Instant::now() + timeout;
        loop {
            let fd = slot.load(Ordering::SeqCst);
            if fd >= 0 {
                let listener = take_listener(pid, fd)?;
                taken.store(1, Ordering::SeqCst);
                futex(taken, libc::FUTEX_WAKE, i32::MAX, None);
                return Ok(listener);
            }
            if Instant::now() > deadline {
                return Err(SeccompError::Supervisor {
                    what: "waiting for the container process to publish its listener",
                    source: std::io::Error::from(std::io::ErrorKind::TimedOut),
                });
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Drop for ListenerSlot {
    fn drop(&mut self) {
        // SAFETY: unmapping the page mapped in new().
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, 4096) };
    }
}

/// Duplicates fd `fd` of process `pid` into this process (close-on-exec).
pub fn take_listener(pid: i32, fd: RawFd) -> Result<OwnedFd, SeccompError> {
    let err = |what| SeccompError::Supervisor {
        what,
        source: std::io::Error::last_os_error(),
    };
    // SAFETY: pidfd_open returns a new fd or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(err("pidfd_open of the container process"));
    }
    // SAFETY: pidfd is a fresh fd we own.
    let pidfd = unsafe { crate::sys::owned_fd(pidfd) }
        .map_err(|_| err("pidfd_open of the container process"))?;
    // SAFETY: pidfd_getfd returns a new close-on-exec fd or -1.
    let got = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if got < 0 {
        return Err(err("pidfd_getfd of the seccomp listener"));
    }
    // SAFETY: a fresh fd we own.
    unsafe { crate::sys::owned_fd(got) }.map_err(|_| err("pidfd_getfd of the seccomp listener"))
}

/// What the supervisor does with notifications.
pub enum Supervision<'a> {
    /// Count every syscall and let it run; the counts are written to `out` as NDJSON
    /// (rewritten whenever a new syscall appears, and at the end).
    Trace { out: &'a super::TraceFile },
    /// Report and refuse what `original` (the program before [`log_denied_program`]) refuses.
    LogDenied { original: &'a [libc::sock_filter] },
}

/// A syscall the profile refused, as reported by [`supervise`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    /// In the supervisor's pid namespace.
    pub pid: u32,
    pub arch: &'static str,
    pub nr: i32,
    pub name: Option<&'static str>,
    pub errno: i32,
}

/// Trace counts by (arch, syscall number).
pub type TraceCounts = BTreeMap<(&'static str, i32), u64>;

fn arch_of(data: &SeccompData) -> Option<Arch> {
    match data.arch {
        AUDIT_ARCH_X86_64 if data.nr as u32 & X32_SYSCALL_BIT != 0 => Some(Arch::X32),
        AUDIT_ARCH_X86_64 => Some(Arch::X86_64),
        AUDIT_ARCH_I386 => Some(Arch::X86),
        _ => None,
    }
}

fn trace_ndjson(counts: &TraceCounts) -> String {
    let mut s = String::new();
    for (&(arch, nr), &count) in counts {
        let name = match arch {
            "x32" => Arch::X32.name_of(nr as u32),
            "x86" => Arch::X86.name_of(nr as u32),
            _ => Arch::X86_64.name_of(nr as u32),
        };
        let rec = serde_json::json!({"syscall": nr, "name": name, "count": count, "arch": arch});
        s.push_str(&rec.to_string());
        s.push('\n');
    }
    s
}

fn write_trace(out: &super::TraceFile, counts: &TraceCounts) -> Result<(), SeccompError> {
    out.replace(trace_ndjson(counts).as_bytes())
}

/// Serves notifications until every process using the filter is gone. Runs in a monitor
/// process (no threads needed); `on_denied` receives each refused syscall.
pub fn supervise(
    listener: OwnedFd,
    what: Supervision<'_>,
    on_denied: &mut dyn FnMut(&Denied),
) -> Result<TraceCounts, SeccompError> {
    if let Supervision::LogDenied { original } = &what {
        bpf_interpreter::check(original)?;
    }
    let mut counts = TraceCounts::new();
    let fd = listener.as_raw_fd();
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, -1) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(SeccompError::Supervisor {
                what: "polling the seccomp listener",
                source: e,
            });
        }
        if pfd.revents & libc::POLLIN == 0 {
            // POLLHUP: no process uses the filter any more.
            break;
        }
        // SAFETY: the kernel requires a zeroed seccomp_notif; all-zero is a valid value.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: RECV fills `req`.
        if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                // The notifying task died or was interrupted before we read it.
                Some(libc::ENOENT) | Some(libc::EINTR) => continue,
                _ => {
                    return Err(SeccompError::Supervisor {
                        what: "receiving a seccomp notification",
                        source: e,
                    })
                }
            }
        }
        let data = SeccompData {
            nr: req.data.nr,
            arch: req.data.arch,
            instruction_pointer: req.data.instruction_pointer,
            args: req.data.args,
        };
        let arch = arch_of(&data);
        let mut resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 0,
            error: 0,
            flags: 0,
        };
        match &what {
            Supervision::Trace { out } => {
                let key = (arch.map_or("unknown", Arch::name), data.nr);
                let c = counts.entry(key).or_insert(0);
                *c += 1;
                if *c == 1 {
                    write_trace(out, &counts)?;
                }
                resp.flags = NOTIF_FLAG_CONTINUE;
            }
            Supervision::LogDenied { original } => {
                let verdict = bpf_interpreter::run(original, &data).unwrap_or(0);
                let errno = if verdict & libc::SECCOMP_RET_ACTION_FULL == libc::SECCOMP_RET_ERRNO {
                    (verdict & libc::SECCOMP_RET_DATA) as i32
                } else {
                    libc::EPERM
                };
                resp.error = -errno;
                on_denied(&Denied {
                    pid: req.pid,
                    arch: arch.map_or("unknown", Arch::name),
                    nr: data.nr,
                    name: arch.and_then(|a| a.name_of(data.nr as u32)),
                    errno,
                });
            }
        }
        // SAFETY: SEND reads `resp`.
        if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) } < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(SeccompError::Supervisor {
                    what: "answering a seccomp notification",
                    source: e,
                });
            }
        }
    }
    if let Supervision::Trace { out } = what {
        write_trace(out, &counts)?;
    }
    Ok(counts)
}

/// A minimal OCI seccomp profile allowing exactly the syscalls of a trace (NDJSON records
/// with `name` and optional `arch`), denying the rest with EPERM.
pub fn generate_profile(trace_ndjson: &str) -> Result<serde_json::Value, SeccompError> {
    let mut names = std::collections::BTreeSet::new();
    let mut arches = std::collections::BTreeSet::from(["SCMP_ARCH_X86_64"]);
    for (i, line) in trace_ndjson.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let rec: serde_json::Value =
            serde_json::from_str(line).map_err(|e| SeccompError::TraceRecord {
                line: i + 1,
                reason: e.to_string(),
            })?;
        match rec.get("arch").and_then(|a| a.as_str()) {
            Some("x86") => {
                arches.insert("SCMP_ARCH_X86");
            }
            Some("x32") => {
                arches.insert("SCMP_ARCH_X32");
            }
            _ => {}
        }
        match rec.get("name").and_then(|n| n.as_str()) {
            Some(n) => {
                names.insert(n.to_string());
            }
            None => {
                return Err(SeccompError::TraceRecord {
                    line: i + 1,
                    reason: "no syscall name (unknown syscall number)".into(),
                })
            }
        }
    }
    Ok(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "architectures": arches,
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
    }))
}

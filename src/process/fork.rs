//! How the runtime makes its children: every fork of the runtime goes through
//! `fork_child` (or `fork_child_into`, born in a cgroup2 directory), and every child leaves
//! through `exit_child`. A child is a copy of the runtime's memory with one thread; it runs
//! plain code and ends with `_exit`, never with Rust's exit handlers (stdio flushes, atexit
//! callbacks of the copied runtime). Also the fd and cgroup-directory helpers the fork
//! sequences share.

use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::unistd::{fork, ForkResult, Pid};

use crate::cgroups::Cgroup;

#[derive(Debug, thiserror::Error)]
pub enum ForkError {
    #[error("fork: {0}")]
    Fork(nix::Error),
    #[error(
        "cannot fork the runtime: it runs {0} threads, and a fork copies only the calling one"
    )]
    Threads(usize),
    #[error("cannot count the runtime's threads in /proc/self/task: {0}")]
    Task(std::io::Error),
    #[error("cannot start a process in the container's cgroup {path}: {source}")]
    IntoCgroup { path: String, source: nix::Error },
    #[error("open cgroup {path}: {source}")]
    OpenCgroup {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
}

/// Set in every child made here: a fork of a single-threaded process is single-threaded,
/// and children start no threads, so they need not look again (their /proc may be a
/// container's, where /proc/self does not name them).
static IN_CHILD: AtomicBool = AtomicBool::new(false);

/// Refuse to fork a process that runs more than one thread: the child would hold copies of
/// locks (the allocator's, stdio's) that threads gone in the child may have held.
fn check_single_threaded() -> Result<(), ForkError> {
    if IN_CHILD.load(Ordering::Relaxed) {
        return Ok(());
    }
    // The directory's entries are the threads (plus "." and "..", which read_dir skips).
    let n = std::fs::read_dir("/proc/self/task")
        .map_err(ForkError::Task)?
        .count();
    if n > 1 {
        return Err(ForkError::Threads(n));
    }
    Ok(())
}

fn child_started(r: ForkResult) -> ForkResult {
    if r.is_child() {
        IN_CHILD.store(true, Ordering::Relaxed);
    }
    r
}

/// Fork a child of this (single-threaded) process. The child must leave by `exit_child`.
pub fn fork_child() -> Result<ForkResult, ForkError> {
    check_single_threaded()?;
    fork_checked()
}

fn fork_checked() -> Result<ForkResult, ForkError> {
    // SAFETY: the process is single-threaded (checked above), so the child may run
    // arbitrary code after the fork.
    let r = unsafe { fork() }.map_err(ForkError::Fork)?;
    Ok(child_started(r))
}

/// The only way out of a child made by `fork_child`: `_exit`, so none of the copied
/// runtime's exit handlers run in it.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: _exit ends this process at once; it touches no memory of ours.
    unsafe { libc::_exit(code) }
}

/// In a child of the runtime: be killed when the runtime dies, so a runtime killed
/// part-way leaves no intermediate behind. The parent may have died before the prctl.
pub fn die_with_parent(runtime: Pid) {
    // SAFETY: prctl with constant arguments; affects only this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    if nix::unistd::getppid() != runtime {
        exit_child(1);
    }
}

pub fn open_cgroup_dir(p: &Path) -> Result<std::fs::File, ForkError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(p)
        .map_err(|source| ForkError::OpenCgroup {
            path: p.display().to_string(),
            source,
        })
}

/// linux/sched.h (libc's constant is a c_int, too narrow for it).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The kernel's `struct clone_args` (clone3(2)), up to the `cgroup` field.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Fork a child straight into the cgroup2 directory `dir` (no migration, so none of the
/// global lock a migration takes); see `clone_child`. Where the kernel cannot (no clone3,
/// or one older than its `cgroup` field), the child is forked and `cg` moves it in.
pub fn fork_child_into(dir: &std::fs::File, cg: Option<&Cgroup>) -> Result<ForkResult, ForkError> {
    let path = cg
        .and_then(|c| c.path(""))
        .unwrap_or_else(|| Path::new("(unified)"));
    let (res, placed) = clone_child(0, Some((dir, path)))?;
    if let (false, ForkResult::Parent { child }, Some(cg)) = (placed, &res, cg) {
        cg.add_process(child.as_raw())?;
    }
    Ok(res)
}

/// Fork a child of this (single-threaded) process in the new namespaces `ns` (CLONE_NEW*
/// flags, which a clone applies to the child itself: with CLONE_NEWPID it is pid 1 of its
/// namespace) and, given `into` (a cgroup2 directory and its path, for messages), born in
/// that cgroup. The bool says whether it was: kernels without clone3 (ENOSYS, also what
/// seccomp profiles around a runtime in a container answer) or whose clone3 predates the
/// `cgroup` field (E2BIG, before 5.7) get a clone(2) with the same namespaces, and the
/// caller places the child. Any other error is the cgroup refusing the process (e.g.
/// EOPNOTSUPP for a cgroup below a thread root) and is returned: a fork after a failed
/// clone3 would be refused too, and once the failed clone3 has used up a new pid
/// namespace's pid 1 it fails with a misleading ENOMEM. The child must leave by
/// `exit_child`.
pub fn clone_child(
    ns: u64,
    into: Option<(&std::fs::File, &Path)>,
) -> Result<(ForkResult, bool), ForkError> {
    check_single_threaded()?;
    let mut args = CloneArgs {
        flags: ns,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some((dir, _)) = into {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = dir.as_raw_fd() as u64;
    }
    // SAFETY: clone3 without CLONE_VM and without a stack behaves as fork(2) in this
    // single-threaded process; `args` is a valid clone_args of the size we pass.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        0 => return Ok((child_started(ForkResult::Child), into.is_some())),
        p if p > 0 => {
            let child = Pid::from_raw(crate::sys::int_result(p).map_err(ForkError::Fork)?);
            return Ok((ForkResult::Parent { child }, into.is_some()));
        }
        _ => {}
    }
    let errno = nix::errno::Errno::last();
    if !matches!(errno, nix::errno::Errno::ENOSYS | nix::errno::Errno::E2BIG) {
        return Err(match into {
            Some((_, path)) => ForkError::IntoCgroup {
                path: path.display().to_string(),
                source: errno,
            },
            None => ForkError::Fork(errno),
        });
    }
    if ns == 0 {
        return Ok((fork_checked()?, false));
    }
    // SAFETY: clone(2) without CLONE_VM and with a null stack is fork(2) with `ns`, in
    // this single-threaded process; the tid and tls arguments are unused without the
    // flags that name them.
    let r = unsafe { libc::syscall(libc::SYS_clone, ns | libc::SIGCHLD as u64, 0, 0, 0, 0) };
    match crate::sys::int_result(r).map_err(ForkError::Fork)? {
        0 => Ok((child_started(ForkResult::Child), false)),
        p => Ok((
            ForkResult::Parent {
                child: Pid::from_raw(p),
            },
            false,
        )),
    }
}

/// Close every fd from `first` upward except those in `keep`. Where close_range(2) fails
/// (an old kernel, a seccomp filter around the runtime), each open fd is closed by itself:
/// an fd left open here could be the state lock, and a child holding it would block every
/// later command on the container.
pub fn close_fds_except(first: RawFd, keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&k| k >= first).collect();
    keep.sort_unstable();
    let mut lo = first;
    let mut failed = false;
    for k in keep.iter().copied().chain(std::iter::once(RawFd::MAX)) {
        if k > lo {
            let hi = if k == RawFd::MAX {
                libc::c_uint::MAX
            } else {
                (k - 1) as libc::c_uint
            };
            // SAFETY: closing fds of this (forked) process that nothing here uses any more.
            let r = unsafe { libc::syscall(libc::SYS_close_range, lo as libc::c_uint, hi, 0) };
            failed |= r != 0;
        }
        lo = k.saturating_add(1);
    }
    if failed {
        for fd in open_fds_from(first) {
            if keep.binary_search(&fd).is_err() {
                // SAFETY: as above, one fd at a time.
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// The open fds of this process from `first` upward: /proc/self/fd, or every number below
/// the fd limit when /proc cannot be read.
pub fn open_fds_from(first: RawFd) -> Vec<RawFd> {
    if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
        // The directory's own fd is listed too; it is closed once `rd` is dropped.
        return rd
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<RawFd>().ok())
            .filter(|&fd| fd >= first)
            .collect();
    }
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft.min(1 << 20) as RawFd)
        .unwrap_or(1 << 16);
    (first..limit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_running_threads_is_not_forked() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv());
        let r = fork_child();
        drop(tx);
        let _ = t.join();
        assert!(
            matches!(r, Err(ForkError::Threads(n)) if n >= 2),
            "fork_child in a threaded process: {:?}",
            r.map(|f| f.is_parent())
        );
    }
}

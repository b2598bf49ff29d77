use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{open, ContainerError, Runtime};
use crate::hooks;
use crate::state::{self, ContainerDir, ContainerState, CreatingRecord, ProcRecord, Status};

/// `nucleus delete`: a stopped (or never started) container is torn down; a running one
/// only with `force`.
pub fn delete(rt: &Runtime, id: &str, force: bool) -> Result<(), ContainerError> {
    let (dir, st, status) = match open(rt, id) {
        Ok(x) => x,
        // As runc: --force also clears what a create that died part-way left without a
        // state file, and succeeds for an id that does not exist at all.
        Err(ContainerError::State(state::StateError::NotExist)) if force => {
            return remove_partial(rt, id);
        }
        Err(e) => return Err(e),
    };
    match status {
        Status::Stopped | Status::Created => {}
        _ if force => {}
        s => {
            return Err(ContainerError::WrongState(format!(
                "cannot delete container {id} that is not stopped: {s}"
            )))
        }
    }
    destroy(dir, &st, status)
}

/// Kill whatever is left, remove the cgroup, run poststop hooks, remove the state.
pub fn destroy(
    dir: ContainerDir,
    st: &ContainerState,
    status: Status,
) -> Result<(), ContainerError> {
    release(st, status)?;
    if !hooks::of_hooks(st.hooks.as_ref(), hooks::Kind::Poststop).is_empty() {
        let mut st = st.clone();
        if let Err(e) = dir.load_annotations(&mut st) {
            crate::warn!("{e}");
        }
        let json = st.hook_json(Status::Stopped);
        hooks::run_all_warn(st.hooks.as_ref(), hooks::Kind::Poststop, &json);
    }
    dir.remove()?;
    Ok(())
}

/// End every process of the container (and its seccomp monitor) and remove its cgroup:
/// what both `delete` and a failed `create` must undo.
pub(crate) fn release(st: &ContainerState, status: Status) -> Result<(), ContainerError> {
    if status != Status::Stopped {
        kill_and_wait(st);
    }
    if let Some(m) = st.monitor_pid {
        let _ = nix::sys::signal::kill(Pid::from_raw(m), Signal::SIGKILL);
    }
    if let Some(cg) = st.cgroup.as_ref() {
        // Processes that outlived the init (no pid namespace) must not keep the cgroup alive.
        let _ = cg.kill_all(Signal::SIGKILL);
        cg.destroy()?;
    }
    if let Some(m) = st.host_rootfs_mount.as_ref() {
        crate::rootfs::detach_host_rootfs(&m.path, m.below, m.ours)?;
    }
    Ok(())
}

/// Undo a create that was killed before it wrote its state file, from the record it
/// keeps of what it made: its processes, its cgroup, its directory.
fn remove_partial(rt: &Runtime, id: &str) -> Result<(), ContainerError> {
    let Some(dir) = rt.root.open_any(id)? else {
        return Ok(());
    };
    // The create finished while we waited for its lock.
    if dir.has_state() {
        drop(dir);
        return delete(rt, id, true);
    }
    if let Some(rec) = dir.load_creating() {
        release_partial(&rec)?;
    }
    dir.remove()?;
    Ok(())
}

/// End the recorded processes of a create that did not finish and remove its cgroup.
pub(crate) fn release_partial(rec: &CreatingRecord) -> Result<(), ContainerError> {
    let deadline = Instant::now() + KILL_WAIT;
    for p in &rec.procs {
        kill_recorded(*p, deadline);
    }
    if let Some(cg) = rec.cgroup.as_ref() {
        // A child that joined the cgroup after its parent was recorded, or whose own
        // record was never written, is found here.
        let _ = cg.kill_all(Signal::SIGKILL);
        wait_cgroup_empty(cg, deadline);
        cg.destroy()?;
    }
    if let Some(m) = rec.host_rootfs_mount.as_ref() {
        crate::rootfs::detach_host_rootfs(&m.path, m.below, m.ours)?;
    }
    Ok(())
}

/// How long delete waits for killed processes to be gone: never forever.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// SIGKILL the process `p` names, only if it is still that process (a pidfd taken before
/// its start time is checked pins it), and wait until it has exited or `deadline`.
fn kill_recorded(p: ProcRecord, deadline: Instant) {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, p.pid, 0) };
    if fd < 0 {
        return;
    }
    // SAFETY: the fd was just returned by pidfd_open and is owned by nothing else.
    let Ok(fd) = (unsafe { crate::sys::owned_fd(fd) }) else {
        return;
    };
    if state::process_start_time(p.pid) != Some(p.start) {
        return;
    }
    // SAFETY: pidfd_send_signal on a pidfd we own, with no siginfo.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    // A pidfd polls readable once its process has exited.
    let left = deadline.saturating_duration_since(Instant::now());
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd, bounded timeout.
    unsafe { libc::poll(&mut pfd, 1, ms) };
}

/// Wait (bounded) until no process is left in the cgroup, so its removal does not race
/// with exiting tasks.
fn wait_cgroup_empty(cg: &crate::cgroups::Cgroup, deadline: Instant) {
    while Instant::now() < deadline {
        match cg.pids() {
            Ok(p) if !p.is_empty() => std::thread::sleep(Duration::from_millis(1)),
            _ => return,
        }
    }
}

fn kill_and_wait(st: &ContainerState) {
    if let Some(cg) = st.cgroup.as_ref() {
        let _ = cg.kill_all(Signal::SIGKILL);
    }
    let pid = Pid::from_raw(st.pid);
    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    let deadline = Instant::now() + KILL_WAIT;
    while state::process_start_time(st.pid) == Some(st.pid_start) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{open, ContainerError, Runtime};
use crate::hooks;
use crate::state::{self, ContainerDir, ContainerState, Status};

/// `nucleus delete`: a stopped (or never started) container is torn down; a running one
/// only with `force`.
pub fn delete(rt: &Runtime, id: &str, force: bool) -> Result<(), ContainerError> {
    let (dir, st, status) = match open(rt, id) {
        Ok(x) => x,
        // As runc: --force also clears a directory a create that died early left without a
        // state file, and succeeds for an id that does not exist at all.
        Err(ContainerError::State(state::StateError::NotExist)) if force => {
            rt.root.remove_stale(id)?;
            return Ok(());
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
    let json = serde_json::to_vec(&st.oci(Status::Stopped, false)).unwrap_or_default();
    hooks::run_all_warn(&st.config, hooks::Kind::Poststop, &json);
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
    Ok(())
}

fn kill_and_wait(st: &ContainerState) {
    if let Some(cg) = st.cgroup.as_ref() {
        let _ = cg.kill_all(Signal::SIGKILL);
    }
    let pid = Pid::from_raw(st.pid);
    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(10);
    while state::process_start_time(st.pid) == Some(st.pid_start) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use super::{open, ContainerError, Runtime};
use crate::hooks;
use crate::state::Status;

/// `nucleus start`: release the init blocked on the exec fifo, then run poststart hooks.
pub fn start(rt: &Runtime, id: &str) -> Result<(), ContainerError> {
    let (dir, mut st, status) = open(rt, id)?;
    match status {
        Status::Created => {}
        Status::Stopped => {
            return Err(ContainerError::WrongState(
                "cannot start a container that has stopped".into(),
            ))
        }
        Status::Running => {
            return Err(ContainerError::WrongState(
                "cannot start an already running container".into(),
            ))
        }
        other => {
            return Err(ContainerError::WrongState(format!(
                "cannot start a container in the {other} state"
            )))
        }
    }
    // runtime.md: start "MUST generate an error if process was not set"; refused before
    // the init is woken, so the container stays created and can be deleted.
    if st.no_process {
        return Err(ContainerError::WrongState(format!(
            "cannot start container {id}: its config.json has no process"
        )));
    }
    let fifo = dir.fifo_path();
    // Non-blocking: if the init is gone there is no reader and open fails with ENXIO
    // instead of hanging.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ENXIO) {
                ContainerError::WrongState("cannot start a container that has stopped".into())
            } else {
                super::io_err(format!("open exec fifo {}", fifo.display()))(e)
            }
        })?;
    f.write_all(&[0])
        .map_err(super::io_err("write exec fifo"))?;
    drop(f);
    std::fs::remove_file(&fifo).map_err(super::io_err("remove exec fifo"))?;
    // Poststart hooks run once the user process runs (after any startContainer hook).
    if hooks::of_hooks(st.hooks.as_ref(), hooks::Kind::Poststart).is_empty() {
        return Ok(());
    }
    wait_for_exec(st.pid, st.pid_start);
    dir.load_annotations(&mut st)?;
    let json = st.hook_json(Status::Running);
    hooks::run_all_warn(st.hooks.as_ref(), hooks::Kind::Poststart, &json);
    Ok(())
}

/// Wait until the init has exec'd the container process (its executable is no longer this
/// runtime's) or is gone.
fn wait_for_exec(pid: i32, pid_start: u64) {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &str| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let ours = id("/proc/self/exe");
    let theirs = format!("/proc/{pid}/exe");
    while crate::state::process_start_time(pid) == Some(pid_start) && id(&theirs) == ours {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

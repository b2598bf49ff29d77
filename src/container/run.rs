use nix::sys::signal::{SigSet, Signal};

use super::{create, delete, start, ContainerError, CreateOptions, Runtime};

/// `nucleus run`: create and start; in the foreground, forward signals to the container,
/// wait for it, delete it and return its exit code (128+signal if killed).
pub fn run(rt: &Runtime, opts: &CreateOptions, detach: bool) -> Result<i32, ContainerError> {
    if detach {
        create(rt, opts)?;
        start_or_destroy(rt, &opts.id)?;
        return Ok(0);
    }
    // Block the signals we forward before forking, so none is lost between the fork and
    // the wait loop; the children unblock them.
    let mut forward = SigSet::all();
    for s in [Signal::SIGKILL, Signal::SIGSTOP] {
        forward.remove(s);
    }
    forward
        .thread_block()
        .map_err(|e| super::io_err("block signals")(e.into()))?;
    // Become the init's reaper once the intermediate process exits.
    // SAFETY: prctl with constant arguments; affects only this process.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let st = create(rt, opts)?;
    start_or_destroy(rt, &opts.id)?;
    let code = super::exec::wait_forwarding(st.pid, &forward);
    let (dir, st, status) = super::open(rt, &opts.id)?;
    delete::destroy(dir, &st, status)?;
    Ok(code)
}

fn start_or_destroy(rt: &Runtime, id: &str) -> Result<(), ContainerError> {
    if let Err(e) = start(rt, id) {
        if let Ok((dir, st, status)) = super::open(rt, id) {
            let _ = delete::destroy(dir, &st, status);
        }
        return Err(e);
    }
    Ok(())
}

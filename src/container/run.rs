use super::{create, delete, start, tty, ContainerError, CreateOptions, Runtime};

/// `nucleus run`: create and start; in the foreground, forward signals to the container,
/// wait for it, delete it and return its exit code (128+signal if killed).
pub fn run(rt: &Runtime, opts: &CreateOptions, detach: bool) -> Result<i32, ContainerError> {
    if detach {
        let (_, spawned) = create::create_with_console(rt, opts, None, None, false)?;
        commit_and_start(rt, &opts.id, spawned)?;
        return Ok(0);
    }
    let forward = super::exec::foreground()?;
    // Read once here (for run's own pty) and handed to create; a config that does not load
    // is left to create to report, after its own checks.
    let loaded = crate::spec::load(&opts.bundle).ok();
    let terminal = opts.console_socket.is_none() && wants_terminal(loaded.as_ref());
    let (ours, theirs) = if terminal {
        let (a, b) = tty::socket_pair()?;
        (Some(a), Some(b))
    } else {
        (None, None)
    };
    // The handle lives until `start`: were we killed before, the init would exit.
    let (st, spawned) = create::create_with_console(rt, opts, loaded, theirs, false)?;
    let master = match ours.as_ref().map(tty::recv_master).transpose() {
        Ok(m) => m,
        Err(e) => {
            if let Ok((dir, st, status)) = super::open(rt, &opts.id) {
                let _ = delete::destroy(dir, &st, status);
            }
            return Err(e);
        }
    };
    commit_and_start(rt, &opts.id, spawned)?;
    let code = match master {
        Some(m) => tty::proxy_and_wait(m, st.pid, &forward)?,
        None => super::exec::wait_forwarding(st.pid, &forward),
    };
    let (dir, st, status) = super::open(rt, &opts.id)?;
    delete::destroy(dir, &st, status)?;
    Ok(code)
}

/// Whether the bundle asks for a terminal (for `run`'s own pty).
fn wants_terminal(config: Option<&oci_spec::runtime::Spec>) -> bool {
    config
        .and_then(|s| s.process().as_ref().and_then(|p| p.terminal()))
        .unwrap_or(false)
}

/// Tell the init its create completed, then `start` it: the init, its wait made of
/// read(2) alone under its seccomp filter, reads Created, then the exec fifo. Until the
/// commit, `run` killed makes the init exit; after it, the container stays created.
fn commit_and_start(
    rt: &Runtime,
    id: &str,
    spawned: Option<crate::process::spawn::Spawned>,
) -> Result<(), ContainerError> {
    let r = match spawned {
        Some(s) => s.commit().map_err(ContainerError::from),
        None => Ok(()),
    };
    r.and_then(|()| start(rt, id)).inspect_err(|_| {
        if let Ok((dir, st, status)) = super::open(rt, id) {
            let _ = delete::destroy(dir, &st, status);
        }
    })
}

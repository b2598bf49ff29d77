use super::{create, delete, start, tty, ContainerError, CreateOptions, Runtime};

/// `nucleus run`: create and start; in the foreground, forward signals to the container,
/// wait for it, delete it and return its exit code (128+signal if killed).
pub fn run(rt: &Runtime, opts: &CreateOptions, detach: bool) -> Result<i32, ContainerError> {
    if detach {
        let (_, spawned) = create::create_with_console(rt, opts, None, false)?;
        start_or_destroy(rt, &opts.id)?;
        // Started: the init goes on whatever becomes of the handle.
        drop(spawned);
        return Ok(0);
    }
    let forward = super::exec::foreground()?;
    let terminal = opts.console_socket.is_none() && wants_terminal(opts);
    let (ours, theirs) = if terminal {
        let (a, b) = tty::socket_pair()?;
        (Some(a), Some(b))
    } else {
        (None, None)
    };
    // The handle lives until `start`: were we killed before, the init would exit.
    let (st, spawned) = create::create_with_console(rt, opts, theirs, false)?;
    let master = match ours.as_ref().map(tty::recv_master).transpose() {
        Ok(m) => m,
        Err(e) => {
            if let Ok((dir, st, status)) = super::open(rt, &opts.id) {
                let _ = delete::destroy(dir, &st, status);
            }
            return Err(e);
        }
    };
    start_or_destroy(rt, &opts.id)?;
    drop(spawned);
    let code = match master {
        Some(m) => tty::proxy_and_wait(m, st.pid, &forward)?,
        None => super::exec::wait_forwarding(st.pid, &forward),
    };
    let (dir, st, status) = super::open(rt, &opts.id)?;
    delete::destroy(dir, &st, status)?;
    Ok(code)
}

/// Whether the bundle asks for a terminal (read again here only for `run`'s own pty). Only
/// `process.terminal` is parsed: the rest of a config (megabytes of mounts, env and
/// annotations in some) is skipped, not built twice; `create` reads it whole.
fn wants_terminal(opts: &CreateOptions) -> bool {
    #[derive(serde::Deserialize)]
    struct Process {
        terminal: Option<bool>,
    }
    #[derive(serde::Deserialize)]
    struct Config {
        process: Option<Process>,
    }
    let path = opts.bundle.join(crate::spec::CONFIG_FILE);
    crate::spec::read_regular(&path, crate::spec::MAX_CONFIG_BYTES)
        .ok()
        .and_then(|data| serde_json::from_slice::<Config>(&data).ok())
        .and_then(|c| c.process?.terminal)
        .unwrap_or(false)
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

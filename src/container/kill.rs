use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{open, ContainerError, Runtime};
use crate::state::Status;

/// Parse a signal as runc does: a number, or a name with or without the SIG prefix.
pub fn parse_signal(s: &str) -> Result<Signal, ContainerError> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| ContainerError::Signal(s.into()));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| ContainerError::Signal(s.into()))
}

/// `nucleus kill`: signal the init, or every process of the container with `all`.
pub fn kill(rt: &Runtime, id: &str, sig: Signal, all: bool) -> Result<(), ContainerError> {
    let (_dir, st, status) = open(rt, id)?;
    if status == Status::Stopped && !all {
        return Err(ContainerError::NotRunning);
    }
    if all {
        match st.cgroup.as_ref() {
            Some(cg) if cg.tracks_processes() => {
                cg.kill_all(sig)?;
                return Ok(());
            }
            // Rootless without a cgroup: the processes of its pid namespace.
            Some(_) if status != Status::Stopped => {
                for pid in super::pid_namespace_members(st.pid) {
                    match nix::sys::signal::kill(Pid::from_raw(pid), sig) {
                        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                        Err(e) => {
                            return Err(super::io_err(format!("kill {pid} with {sig}"))(e.into()))
                        }
                    }
                }
                return Ok(());
            }
            _ => {}
        }
    }
    nix::sys::signal::kill(Pid::from_raw(st.pid), sig)
        .map_err(|e| super::io_err(format!("kill {} with {sig}", st.pid))(e.into()))?;
    // A frozen task (v1 freezer) acts on SIGKILL only once thawed; other signals wait for
    // `resume`, as runc does.
    if sig == Signal::SIGKILL && status == Status::Paused {
        if let Some(cg) = st.cgroup.as_ref() {
            cg.thaw()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_number_and_name() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("SIGTERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("term").unwrap(), Signal::SIGTERM);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}

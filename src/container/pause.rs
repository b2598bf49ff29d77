use super::{open, ContainerError, Runtime};
use crate::cgroups::Cgroup;
use crate::state::Status;

fn cgroup_of<'a>(cg: Option<&'a Cgroup>, id: &str) -> Result<&'a Cgroup, ContainerError> {
    cg.ok_or_else(|| {
        ContainerError::Other(format!(
            "container {id} has no cgroup in its state file, so it cannot be frozen"
        ))
    })
}

/// `nucleus pause`: freeze every process of a created or running container. As runc, any
/// other state (stopped, already paused) is "container not running".
pub fn pause(rt: &Runtime, id: &str) -> Result<(), ContainerError> {
    let (_dir, st, status) = open(rt, id)?;
    let cg = cgroup_of(st.cgroup.as_ref(), id)?;
    // status() reports `created` before `paused`; a frozen created container is paused.
    let frozen = cg.is_frozen()?;
    match status {
        Status::Running | Status::Created if !frozen => {}
        _ => return Err(ContainerError::NotRunning),
    }
    cg.freeze()?;
    Ok(())
}

/// `nucleus resume`: thaw a paused container; "container not paused" otherwise.
pub fn resume(rt: &Runtime, id: &str) -> Result<(), ContainerError> {
    let (_dir, st, status) = open(rt, id)?;
    let cg = cgroup_of(st.cgroup.as_ref(), id)?;
    if status == Status::Stopped || !cg.is_frozen()? {
        return Err(ContainerError::WrongState("container not paused".into()));
    }
    cg.thaw()?;
    Ok(())
}

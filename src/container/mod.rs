//! Container lifecycle verbs over the state directory: create, start, state, kill, delete,
//! run and list.

mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod start;
mod tty;
mod update;

pub use checkpoint::{
    checkpoint, criu_available, restore, CgroupsMode, CheckpointOptions, CriuOptions,
    RestoreOptions,
};
pub use create::{create, CreateOptions};
pub use delete::{delete, destroy};
pub use events::{events, parse_duration, Event, EventsOptions};
pub use exec::{exec, ExecOptions};
pub use kill::{kill, parse_signal};
pub use list::{list, ListEntry};
pub use pause::{pause, resume};
pub use ps::{filter_ps_output, ps, PsFormat};
pub use run::run;
pub use start::start;
pub use update::{
    changes_from_flags, changes_from_json, merge, parse_ram_in_bytes, update, UpdateError,
    UpdateOptions,
};

use crate::state::{self, ContainerDir, ContainerState, Root, Status};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Spawn(#[from] crate::process::spawn::SpawnError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Console(#[from] crate::process::console::ConsoleError),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Landlock(#[from] crate::landlock::LandlockError),
    #[error("{0}")]
    WrongState(String),
    #[error("container not running")]
    NotRunning,
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("invalid signal {0:?}")]
    Signal(String),
    #[error("{0}")]
    Other(String),
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ContainerError {
    let what = what.into();
    move |source| ContainerError::Io { what, source }
}

/// `--preserve-fds N` hands fds 3..3+N to the container: each must be open. A hole would
/// be filled by the next fd the runtime opens (its state lock, say) and so hand that to the
/// container. Call it before the runtime opens anything of its own.
pub fn check_preserved_fds(n: i32) -> Result<(), ContainerError> {
    if n < 0 {
        return Err(ContainerError::Other(format!(
            "invalid --preserve-fds {n}: must not be negative"
        )));
    }
    for i in 0..n {
        let fd = 3 + i;
        // SAFETY: F_GETFD only reads the flags of an fd number, open or not.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            return Err(ContainerError::Other(format!(
                "unable to stat preserved-fd {i} (of {n}): fd {fd} is not open"
            )));
        }
    }
    Ok(())
}

/// Global options every verb shares.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: Root,
    pub systemd_cgroup: bool,
    /// runc's rootless cgroup manager (`--rootless`, by default when run by a non-root
    /// user): cgroups the user has no permission for are left out, not an error.
    pub rootless_cgroups: bool,
}

/// The processes of a live container whose cgroup lists none (rootless, no cgroup the user
/// may use): every process in the init's pid namespace when it has one of its own, else
/// the init alone. Processes of other users are not visible to a rootless runtime anyway.
pub(crate) fn pid_namespace_members(init: i32) -> Vec<i32> {
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(theirs) = ns(&init.to_string()) else {
        return Vec::new();
    };
    if ns("self").as_ref() == Some(&theirs) {
        return vec![init];
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![init];
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| ns(&p.to_string()).as_ref() == Some(&theirs))
        .collect()
}

/// The live status of a container, derived from its init process, exec fifo and freezer.
pub fn status(dir: &ContainerDir, st: &ContainerState) -> Status {
    if st.pid <= 0 {
        return Status::Stopped;
    }
    match state::process_start_time(st.pid) {
        Some(t) if t == st.pid_start => {}
        _ => return Status::Stopped,
    }
    // Frozen first: a container paused before `start` is paused, and must not start.
    if st
        .cgroup
        .as_ref()
        .is_some_and(|c| c.is_frozen().unwrap_or(false))
    {
        return Status::Paused;
    }
    if dir.fifo_path().exists() {
        return Status::Created;
    }
    Status::Running
}

/// Make the state dir of a container being created (or restored) with `record` in it:
/// what the verb makes is recorded before it is made, so `delete --force` can undo it
/// killed at any point. Without its record the dir is removed again.
fn create_state_dir(
    rt: &Runtime,
    id: &str,
    record: &state::CreatingRecord,
) -> Result<ContainerDir, ContainerError> {
    let dir = rt.root.create(id)?;
    if let Err(e) = dir.save_creating(record) {
        let _ = dir.remove();
        return Err(e.into());
    }
    Ok(dir)
}

/// Open a container and load its state (with the lock held by the returned dir).
pub fn open(
    rt: &Runtime,
    id: &str,
) -> Result<(ContainerDir, ContainerState, Status), ContainerError> {
    let dir = rt.root.open(id)?;
    let st = dir.load()?;
    let s = status(&dir, &st);
    Ok((dir, st, s))
}

/// `nucleus state`: the OCI state JSON, indented as runc prints it.
pub fn state_json(rt: &Runtime, id: &str) -> Result<String, ContainerError> {
    let (dir, mut st, s) = open(rt, id)?;
    dir.load_annotations(&mut st)?;
    serde_json::to_string_pretty(&st.oci(s)).map_err(|e| ContainerError::Other(e.to_string()))
}

//! The fork sequence that makes a container init, run in the runtime process.
//!
//! Where the namespaces allow it (`Plan::needs_intermediate`), the runtime's child is the
//! init: cloned into a new pid namespace (pid 1 of it) and, on a hybrid host, born in the
//! container's cgroup2 directory; it joins and unshares the other namespaces, moves itself
//! into the v1 cgroups and goes on as the init. Otherwise:
//! runtime ──fork──▶ intermediate: joins namespaces by path, unshares the user namespace
//! (the runtime writes its id maps), then the others ──fork──▶ init (pid 1 of a new pid
//! namespace, since unshare(CLONE_NEWPID) applies to children). The intermediate reports
//! the init's pid and exits. Both steps are one code path (`setup_child`, `make_namespaces`).
//! Every child is a fork of a single-threaded runtime, so no re-exec of the runtime
//! binary is needed.

use std::os::fd::{AsRawFd, RawFd};

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};
use oci_spec::runtime::LinuxNamespaceType;

use super::fork::{self, ForkError};
use super::init::{self, InitConfig};
use crate::cgroups::Cgroup;
use crate::namespaces::{self, Plan};
use crate::sync::{self, ChildEnd, RuntimeEnd, SyncError};

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(transparent)]
    Fork(#[from] ForkError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("{0}")]
    Child(String),
    #[error(transparent)]
    Namespace(#[from] namespaces::NamespaceError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    #[error("{0}")]
    Hook(String),
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    #[error("runtime fd {fd} lies among the {n} preserved fds (3..{end}) handed to the container", end = 3 + n)]
    FdInPreservedRange { fd: RawFd, n: i32 },
    #[error("record {what}: {msg}")]
    Record { what: &'static str, msg: String },
    #[error("open the container's root {path}: {source}")]
    Root {
        path: String,
        source: std::io::Error,
    },
    #[error("write oom_score_adj {value} of the container init: {source}")]
    Oom { value: i32, source: std::io::Error },
}

/// Sets the calling process's oom_score_adj through the runtime's own /proc (the host's,
/// before any namespace is joined): nothing mounted in a container can redirect the write.
/// Children inherit the value.
fn set_own_oom_score_adj(value: i32) -> Result<(), SpawnError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open("/proc/self/oom_score_adj")
        .and_then(|mut f| f.write_all(value.to_string().as_bytes()))
        .map_err(|source| SpawnError::Oom { value, source })
}

/// What the runtime hands the fork sequence: the init's part, passed on to it whole by
/// the intermediate, and what only the runtime and the intermediate use.
pub struct SpawnRequest<'a> {
    pub init: InitConfig<'a>,
    /// The namespaces of `init.spec`, worked out once by the caller.
    pub plan: &'a Plan,
    pub cgroup: Option<&'a Cgroup>,
    /// The fd locking the container's state dir: must never reach a child.
    pub state_lock: Option<RawFd>,
}

/// An init set up and recorded in the container's state, waiting for `start`. Until
/// `commit` (or `start`) it also watches this channel and exits on its EOF: a runtime
/// killed before its create completed leaves no init waiting forever.
pub struct Spawned {
    pub pid: i32,
    chan: RuntimeEnd,
}

impl Spawned {
    /// Wait until the init, past Ready, has become the container process up to its
    /// execve (user, capabilities, seccomp filter, Landlock): it does that while the
    /// runtime records the container, and a failure there fails the create.
    pub fn prepared(&self) -> Result<(), SpawnError> {
        self.chan.prepared()?;
        Ok(())
    }

    /// Tell the init its create completed: from now on only `start` or a kill ends its
    /// wait. (Dropping the handle after `start` is as good.)
    pub fn commit(self) -> Result<(), SpawnError> {
        self.chan.created()?;
        Ok(())
    }
}

/// Fail unless every fd the runtime itself holds lies above the preserved range: the
/// children keep 3..3+N whole, so one of ours there would reach the container (the state
/// lock in it would block every later command on the container).
fn check_internal_fds(req: &SpawnRequest<'_>, chans: [RawFd; 2]) -> Result<(), SpawnError> {
    let end = 3i64 + i64::from(req.init.preserve_fds);
    let ours = chans
        .into_iter()
        .chain(std::iter::once(req.init.fifo.as_raw_fd()))
        .chain(req.init.console.as_ref().map(|c| c.as_raw_fd()))
        .chain(
            req.init
                .seccomp
                .and_then(|f| f.agent())
                .map(|a| a.as_raw_fd()),
        )
        .chain(req.state_lock);
    for fd in ours {
        if fd >= 3 && i64::from(fd) < end {
            return Err(SpawnError::FdInPreservedRange {
                fd,
                n: req.init.preserve_fds,
            });
        }
    }
    Ok(())
}

/// Start the init and wait until it is set up. `runtime_hooks` runs prestart and
/// createRuntime hooks in the runtime when the init asks for them; `record` is called with
/// the pid of each process started (the intermediate, then the init) before it can make
/// anything the caller would have to undo. Returns the init, waiting for `commit`. On
/// error every process started here is gone.
pub fn spawn(
    req: SpawnRequest<'_>,
    state_json: impl Fn(i32) -> String,
    mut runtime_hooks: impl FnMut(i32) -> Result<(), String>,
    mut record: impl FnMut(i32) -> Result<(), SpawnError>,
) -> Result<Spawned, SpawnError> {
    let plan = req.plan;
    let (ours, theirs) = sync::pair()?;
    // The init is re-parented to us when the intermediate exits, so that if it dies during
    // setup without a word (killed by the OOM killer, say) we can tell how it died.
    // SAFETY: prctl with constant arguments; affects only this process.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    check_internal_fds(&req, [ours.raw(), theirs.raw()])?;
    let folded = folds(plan, req.cgroup);
    let (child, placed) = if folded {
        // Born in the cgroup2 directory where it can be made before the process (hybrid);
        // moved into the v1 ones by itself once its namespaces exist.
        let unified = req
            .cgroup
            .map(Cgroup::precreate_unified)
            .transpose()?
            .flatten();
        let dir = unified.map(fork::open_cgroup_dir).transpose()?;
        let ns = if plan.creates(LinuxNamespaceType::Pid) {
            nix::sched::CloneFlags::CLONE_NEWPID.bits() as u64
        } else {
            0
        };
        let into = dir.as_ref().zip(unified);
        // Born non-dumpable, as `exec`'s child: without a new pid namespace it is in the
        // runtime's, holding the runtime's fds until `setup_child` closes them. (No user
        // namespace here, so the runtime writes nothing in its /proc entries.)
        let undumpable = super::sealed_exe::Dumpable::off();
        let cloned = fork::clone_child(ns, into);
        match cloned? {
            (ForkResult::Child, _) => {
                drop(ours);
                drop(dir);
                // No PDEATHSIG: this process outlives the runtime as the container's init.
                // A runtime killed before the create completed ends its next receive.
                setup_child(req, plan, theirs, true)
            }
            (ForkResult::Parent { child }, placed) => {
                drop(undumpable);
                (child, placed || into.is_none())
            }
        }
    } else {
        let runtime = nix::unistd::getpid();
        match fork::fork_child()? {
            ForkResult::Child => {
                drop(ours);
                fork::die_with_parent(runtime);
                setup_child(req, plan, theirs, false)
            }
            ForkResult::Parent { child } => (child, true),
        }
    };
    drop(theirs);
    // Folded, the child is the init from the start.
    let mut init_pid = folded.then_some(child.as_raw());
    let result = record(child.as_raw()).and_then(|()| {
        if !placed {
            if let Some(cg) = req.cgroup {
                cg.add_process_unified(child.as_raw())?;
            }
        }
        drive(
            &req,
            &ours,
            child,
            &mut init_pid,
            &state_json,
            &mut runtime_hooks,
            &mut record,
        )
    });
    // A child that failed may have closed the channel under one of our sends: its own
    // error is still queued, and says more than EPIPE.
    let result = match result {
        Err(SpawnError::Sync(SyncError::Child(e))) => Err(SpawnError::Child(e)),
        Err(SpawnError::Sync(e)) => match ours.child_error() {
            Some(child_err) => Err(SpawnError::Child(child_err)),
            // Our own send failed with the children alive, waiting for it: they are
            // killed below, and how they died would hide the cause.
            None if matches!(e, SyncError::Send(_)) && !ours.children_gone() => {
                Err(SpawnError::Sync(e))
            }
            // The channel is closed and nothing said why: every child holding it is gone.
            // How they died is the message.
            None => Err(death_cause(&req, child, init_pid).unwrap_or(SpawnError::Sync(e))),
        },
        // The cgroup is made while the child joins namespaces. If that failed first, the
        // cgroup step fails too (systemd cannot place a process that has exited), and the
        // child's queued error is the cause. No other init exists yet: it is forked only
        // after this step, so once the child is gone the channel ends.
        Err(e @ SpawnError::Cgroup(_)) if init_pid.is_none() || folded => {
            let _ = kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
            init_pid = None;
            Err(ours.child_error().map_or(e, SpawnError::Child))
        }
        r => r,
    };
    // Folded, the child is the init (reaped by death_cause or below); the intermediate
    // has exited or is about to once it reported the init's pid.
    let init_pid = init_pid.filter(|&p| p != child.as_raw());
    if result.is_err() {
        if let Some(p) = init_pid {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        let _ = kill(child, Signal::SIGKILL);
    }
    if result.is_err() || !folded {
        let _ = waitpid(child, None);
    }
    if result.is_err() {
        if let Some(p) = init_pid {
            // Reaped here as we are its subreaper (unless death_cause reaped it already).
            let _ = waitpid(Pid::from_raw(p), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        }
    }
    result.map(|()| Spawned {
        pid: init_pid.unwrap_or(child.as_raw()),
        chan: ours,
    })
}

/// Why the container's processes died during setup without sending an error: the OOM
/// killer in the container's cgroup (with the memory limit that caused it), or a signal or
/// exit status of the init (or of the intermediate, if it died before forking the init).
/// Reaps them. None when nothing more is known.
fn death_cause(req: &SpawnRequest<'_>, child: Pid, init_pid: Option<i32>) -> Option<SpawnError> {
    use nix::sys::wait::WaitStatus;
    // EOF on the channel means every process holding its other end is gone (or going):
    // these waits do not block for long. The init is our child once the intermediate
    // exited, as we are a subreaper.
    let inter = waitpid(child, None).ok();
    let init = match init_pid {
        Some(p) if p == child.as_raw() => inter,
        p => p.and_then(|p| waitpid(Pid::from_raw(p), None).ok()),
    };
    // Which process's end tells the story: the init once it exists.
    let (who, status) = match (init_pid, init, inter) {
        (Some(_), st, _) => ("container init", st),
        (None, _, st) => ("container setup process", st),
    };
    let ooms = req
        .cgroup
        .and_then(|cg| cg.oom_kill_count().ok())
        .unwrap_or(0);
    if ooms > 0 {
        let limit = req
            .init
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.memory().as_ref())
            .and_then(|m| m.limit());
        let limit = match limit {
            Some(l) => format!("linux.resources.memory.limit is {l} bytes"),
            None => "the cgroup's memory limit".to_string(),
        };
        return Some(SpawnError::Child(format!(
            "{who} was killed by the OOM killer during setup: {limit}, too low to start the container"
        )));
    }
    let how = match status? {
        WaitStatus::Signaled(_, sig, _) => format!("was killed by signal {sig}"),
        WaitStatus::Exited(_, code) => format!("exited with status {code}"),
        _ => return None,
    };
    Some(SpawnError::Child(format!(
        "{who} {how} during setup, before reporting an error"
    )))
}

fn drive(
    req: &SpawnRequest<'_>,
    chan: &RuntimeEnd,
    child: Pid,
    init_pid: &mut Option<i32>,
    state_json: &impl Fn(i32) -> String,
    runtime_hooks: &mut impl FnMut(i32) -> Result<(), String>,
    record: &mut impl FnMut(i32) -> Result<(), SpawnError>,
) -> Result<(), SpawnError> {
    // The cgroup is made while the child builds its namespaces, on the other core. The
    // systemd driver puts the child in the unit: the init, or the intermediate that then
    // forks the init there.
    if let Some(cg) = req.cgroup {
        // Applied even without `linux.resources`: the default device rules always hold.
        let none = oci_spec::runtime::LinuxResources::default();
        let resources = req
            .init
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref());
        let no_annotations = std::collections::HashMap::new();
        let annotations = req
            .init
            .spec
            .annotations()
            .as_ref()
            .unwrap_or(&no_annotations);
        cg.setup(child.as_raw(), resources.unwrap_or(&none), annotations)?;
    }
    // The steps in the order the child and the init take them (make_namespaces,
    // init::prepare), each decided from the same spec on both sides.
    let plan = req.plan;
    let steps = chan.setup();
    if plan.new_user {
        steps.id_maps(|| {
            Ok::<_, SpawnError>(namespaces::write_id_maps(child.as_raw(), req.init.spec)?)
        })?;
    }
    match req.cgroup {
        None => {}
        Some(cg) if plan.has(LinuxNamespaceType::User) => {
            steps.cgroup_join(|| Ok::<_, SpawnError>(cg.add_process(child.as_raw())?))?
        }
        Some(_) => steps.cgroup_ready()?,
    }
    let (p, state) = match *init_pid {
        Some(p) => (p, steps.init_is_child()),
        None => {
            let (p, state) = steps.init_pid()?;
            *init_pid = Some(p);
            record(p)?;
            (p, state)
        }
    };
    let init = state.send(if init::needs_state(req.init.spec) {
        state_json(p)
    } else {
        String::new()
    })?;
    // The init builds its mounts meanwhile, and takes the filter once they are made.
    if let Some(f) = req.init.seccomp {
        if let Some(program) =
            f.compile_deferred(req.init.spec, req.init.spec.process().as_ref())?
        {
            init.seccomp(&program)?;
        }
    }
    if init::needs_runtime_hooks(req.init.spec) {
        init.hooks(|| runtime_hooks(p).map_err(SpawnError::Hook))?;
    }
    if let Some(ids) = init.ready()? {
        crate::landlock::report(ids);
    }
    Ok(())
}

/// The runtime's child: the intermediate, or the init itself when `folded`. Never returns.
fn setup_child(req: SpawnRequest<'_>, plan: &Plan, chan: ChildEnd, folded: bool) -> ! {
    let _ = SigSet::empty().thread_set_mask();
    let mut keep: Vec<RawFd> = vec![chan.raw()];
    keep.push(req.init.fifo.as_raw_fd());
    if let Some(c) = req.init.console.as_ref() {
        keep.push(c.as_raw_fd());
    }
    if let Some(a) = req.init.seccomp.and_then(|f| f.agent()) {
        keep.push(a.as_raw_fd());
    }
    fork::close_fds_except(3 + req.init.preserve_fds, &keep);
    if let Some(l) = req.state_lock {
        // Above the preserved range (checked before the fork), so already closed: this
        // only makes sure, whatever close_range did.
        // SAFETY: closing our copy of the lock fd; the runtime keeps its own.
        unsafe { libc::close(l) };
    }
    let made = make_namespaces(&req, plan, &chan, folded).and_then(|unified| {
        if folded {
            return Ok(ForkResult::Child);
        }
        match unified {
            Some(dir) => Ok(fork::fork_child_into(&dir, req.cgroup)?),
            None => Ok(fork::fork_child()?),
        }
    });
    match made {
        Ok(ForkResult::Parent { child }) => {
            let _ = chan.init_pid(child.as_raw());
            fork::exit_child(0)
        }
        Ok(ForkResult::Child) => init::run(req.init, plan, chan),
        Err(e) => {
            let _ = chan.error(&e.to_string());
            fork::exit_child(1)
        }
    }
}

/// The namespaces and the cgroup of the init-to-be, in the runtime's child. Returns the
/// cgroup2 directory an intermediate forks the init into (a folded child is in it
/// already: born there, or placed by systemd).
fn make_namespaces(
    req: &SpawnRequest<'_>,
    plan: &Plan,
    chan: &ChildEnd,
    folded: bool,
) -> Result<Option<std::fs::File>, SpawnError> {
    // Written here, still host root in the host's /proc, and inherited by the init: the
    // init itself, non-dumpable and perhaps a mapped root, may not write its own file.
    if let Some(adj) = req
        .init
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.oom_score_adj())
    {
        set_own_oom_score_adj(adj)?;
    }
    let joins = plan.open_joins()?;
    namespaces::join(&joins)?;
    drop(joins);
    if plan.new_user {
        namespaces::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)?;
        chan.id_maps()?;
    }
    if plan.has(LinuxNamespaceType::User) {
        let root = nix::unistd::Uid::from_raw(0);
        let groot = nix::unistd::Gid::from_raw(0);
        nix::unistd::setresgid(groot, groot, groot)
            .and_then(|()| nix::unistd::setresuid(root, root, root))
            .map_err(|e| {
                SpawnError::Child(format!(
                    "become root in the user namespace (is uid/gid 0 mapped?): {e}"
                ))
            })?;
    }
    // Every namespace but the cgroup one is made before joining the cgroup, so that their
    // kernel memory is not charged to the container (a container must start under a tight
    // memory limit). The init makes the cgroup namespace itself: it alone is in all of
    // the container's cgroups (born into the cgroup2 one), so the namespace's root is
    // right in every hierarchy. A folded child is in its new pid namespace already.
    let mut later = nix::sched::CloneFlags::CLONE_NEWCGROUP;
    if folded {
        later |= nix::sched::CloneFlags::CLONE_NEWPID;
    }
    namespaces::unshare(plan.new - later)?;
    let unified = match req.cgroup {
        None => None,
        // A mapped root has no rights on the host's cgroup files: the runtime moves us.
        Some(_) if plan.has(LinuxNamespaceType::User) => {
            chan.cgroup_join()?;
            None
        }
        Some(cg) => {
            chan.cgroup_ready()?;
            let unified = cg.join_self()?;
            if folded {
                None
            } else {
                unified.map(fork::open_cgroup_dir).transpose()?
            }
        }
    };
    if plan.creates(LinuxNamespaceType::Time) {
        namespaces::write_time_offsets(req.init.spec)?;
    }
    // The init is the runtime's binary inside the container's pid namespace until its
    // execve: it is non-dumpable before any process of the container exists, so its /proc
    // entries stay closed to the container.
    super::sealed_exe::make_undumpable();
    Ok(unified)
}

/// Whether the runtime's child can be the init itself: no namespace needs a process in
/// between, and its cgroup can be entered without a migration under the kernel's global
/// lock, whose RCU grace period costs milliseconds: on v1 it moves itself (`tasks`), on a
/// hybrid host it is born in the cgroup2 directory, and systemd places it. On a v2 host
/// the one directory holds the limits too: being born in it would charge the namespaces'
/// kernel memory to the container and make it only after the cgroup is; moving in itself
/// would wait for the grace period. There the intermediate is forked, which makes its
/// namespaces while the runtime makes the cgroup and forks the init into it.
fn folds(plan: &Plan, cgroup: Option<&Cgroup>) -> bool {
    !plan.needs_intermediate()
        && cgroup.is_none_or(|cg| {
            cg.mode() != crate::cgroups::CgroupMode::V2 || cg.systemd_unit().is_some()
        })
}

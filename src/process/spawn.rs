//! The fork sequence that makes a container init, run in the runtime process.
//!
//! runtime ──fork──▶ intermediate: joins namespaces by path, unshares the user namespace
//! (the runtime writes its id maps), then the others ──fork──▶ init (pid 1 of a new pid
//! namespace, since unshare(CLONE_NEWPID) applies to children). The intermediate reports
//! the init's pid and exits. Both children are forks of a single-threaded runtime, so no
//! re-exec of the runtime binary is needed.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::filter::SeccompSetup;
use super::init::{self, InitConfig};
use crate::cgroups::Cgroup;
use crate::namespaces::{self, Plan};
use crate::sync::{self, Channel, Msg, SyncError};

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("fork: {0}")]
    Fork(nix::Error),
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
}

pub struct SpawnRequest<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    /// The exec fifo, opened read-write by the runtime (the init may lack the rights to
    /// open it itself, e.g. as a mapped root in a user namespace).
    pub fifo: std::fs::File,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    pub console: Option<OwnedFd>,
    pub cgroup: Option<&'a Cgroup>,
    pub seccomp: Option<&'a SeccompSetup>,
}

/// Start the init and wait until it is set up and blocked on the exec fifo. `runtime_hooks`
/// runs prestart and createRuntime hooks in the runtime when the init asks for them.
/// Returns the init's host pid. On error every process started here is gone.
pub fn spawn(
    req: SpawnRequest<'_>,
    state_json: impl Fn(i32) -> String,
    mut runtime_hooks: impl FnMut(i32) -> Result<(), String>,
) -> Result<i32, SpawnError> {
    let plan = Plan::from_spec(req.spec);
    let (ours, theirs) = sync::pair()?;
    // SAFETY: the runtime is single-threaded here (no threads are ever started before a
    // container is spawned), so the child may run arbitrary code after fork.
    let child = match unsafe { fork() }.map_err(SpawnError::Fork)? {
        ForkResult::Child => {
            drop(ours);
            intermediate(req, plan, theirs)
        }
        ForkResult::Parent { child } => child,
    };
    drop(theirs);
    let mut init_pid = None;
    let result = drive(
        &req,
        &ours,
        child,
        &mut init_pid,
        &state_json,
        &mut runtime_hooks,
    );
    // A child that failed may have closed the channel under one of our sends: its own
    // error is still queued, and says more than EPIPE.
    let result = match result {
        Err(SpawnError::Sync(e)) => match ours.recv() {
            Ok(Msg::Error(child_err)) => Err(SpawnError::Child(child_err)),
            _ => Err(SpawnError::Sync(e)),
        },
        r => r,
    };
    if result.is_err() {
        if let Some(p) = init_pid {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        let _ = kill(child, Signal::SIGKILL);
    }
    let _ = waitpid(child, None);
    if result.is_err() {
        if let Some(p) = init_pid {
            // Reaped here when we are its subreaper (run); otherwise init (pid 1) reaps it.
            let _ = waitpid(Pid::from_raw(p), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        }
    }
    result.map(|()| init_pid.unwrap_or(0))
}

fn drive(
    req: &SpawnRequest<'_>,
    chan: &Channel,
    child: Pid,
    init_pid: &mut Option<i32>,
    state_json: &impl Fn(i32) -> String,
    runtime_hooks: &mut impl FnMut(i32) -> Result<(), String>,
) -> Result<(), SpawnError> {
    // The cgroup is made while the intermediate builds its namespaces, on the other core.
    // The systemd driver puts the intermediate in the unit; it then forks the init there.
    if let Some(cg) = req.cgroup {
        // Applied even without `linux.resources`: the default device rules always hold.
        let none = oci_spec::runtime::LinuxResources::default();
        let resources = req
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref());
        let no_annotations = std::collections::HashMap::new();
        let annotations = req.spec.annotations().as_ref().unwrap_or(&no_annotations);
        cg.setup(child.as_raw(), resources.unwrap_or(&none), annotations)?;
    }
    loop {
        match chan.recv()? {
            Msg::WaitCgroup => chan.send(&Msg::CgroupReady)?,
            Msg::JoinCgroup => {
                if let Some(cg) = req.cgroup {
                    cg.add_process(child.as_raw())?;
                }
                chan.send(&Msg::Continue)?;
            }
            Msg::MapIds => {
                namespaces::write_id_maps(child.as_raw(), req.spec)?;
                chan.send(&Msg::MapsDone)?;
            }
            Msg::InitPid(p) => {
                *init_pid = Some(p);
                chan.send(&Msg::State(state_json(p)))?;
            }
            Msg::RunHooks => {
                let pid = init_pid.unwrap_or(0);
                runtime_hooks(pid).map_err(SpawnError::Hook)?;
                chan.send(&Msg::HooksDone)?;
            }
            Msg::Ready => return Ok(()),
            Msg::Error(e) => return Err(SpawnError::Child(e)),
            other => {
                return Err(SyncError::Unexpected {
                    got: other,
                    want: "init progress",
                }
                .into())
            }
        }
    }
}

/// The intermediate process: never returns.
fn intermediate(req: SpawnRequest<'_>, plan: Plan, chan: Channel) -> ! {
    let _ = SigSet::empty().thread_set_mask();
    let mut keep: Vec<RawFd> = vec![chan.raw()];
    keep.push(req.fifo.as_raw_fd());
    if let Some(c) = req.console.as_ref() {
        keep.push(c.as_raw_fd());
    }
    if let Some(a) = req.seccomp.and_then(|f| f.agent.as_ref()) {
        keep.push(a.as_raw_fd());
    }
    close_fds_except(3 + req.preserve_fds, &keep);
    match intermediate_inner(&req, &plan, &chan) {
        Ok(ForkResult::Parent { child }) => {
            let _ = chan.send(&Msg::InitPid(child.as_raw()));
            std::process::exit(0)
        }
        Ok(ForkResult::Child) => {
            let cfg = InitConfig {
                spec: req.spec,
                plan: &plan,
                rootfs: req.rootfs,
                bundle: req.bundle,
                fifo: req.fifo,
                no_pivot: req.no_pivot,
                console: req.console,
                preserve_fds: req.preserve_fds,
                seccomp: req.seccomp,
            };
            init::run(cfg, chan)
        }
        Err(e) => {
            let _ = chan.send(&Msg::Error(e.to_string()));
            std::process::exit(1)
        }
    }
}

fn intermediate_inner(
    req: &SpawnRequest<'_>,
    plan: &Plan,
    chan: &Channel,
) -> Result<ForkResult, SpawnError> {
    let joins = plan.open_joins()?;
    namespaces::join(&joins)?;
    drop(joins);
    if plan.new_user {
        namespaces::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)?;
        chan.send(&Msg::MapIds)?;
        chan.expect(Msg::MapsDone, "id maps")?;
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
    // right in every hierarchy.
    let cgroupns = nix::sched::CloneFlags::CLONE_NEWCGROUP;
    namespaces::unshare(plan.new - cgroupns)?;
    let unified = match req.cgroup {
        None => None,
        // A mapped root has no rights on the host's cgroup files: the runtime moves us.
        Some(_) if plan.has(LinuxNamespaceType::User) => {
            chan.send(&Msg::JoinCgroup)?;
            chan.expect(Msg::Continue, "cgroup joined")?;
            None
        }
        Some(cg) => {
            chan.send(&Msg::WaitCgroup)?;
            chan.expect(Msg::CgroupReady, "cgroup ready")?;
            cg.join_self()?.map(open_cgroup_dir).transpose()?
        }
    };
    if plan.creates(LinuxNamespaceType::Time) {
        namespaces::write_time_offsets(req.spec)?;
    }
    match unified {
        Some(dir) => fork_into_cgroup(&dir, req.cgroup),
        // SAFETY: still single-threaded (a fork of a single-threaded process).
        None => unsafe { fork() }.map_err(SpawnError::Fork),
    }
}

pub(crate) fn open_cgroup_dir(p: &Path) -> Result<std::fs::File, SpawnError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(p)
        .map_err(|e| SpawnError::Child(format!("open cgroup {}: {e}", p.display())))
}

/// linux/sched.h (libc's constant is a c_int, too narrow for it).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The kernel's `struct clone_args` (clone3(2)), up to the `cgroup` field.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Fork the init straight into the cgroup2 directory `dir` (no migration, so none of the
/// global lock a migration takes). Kernels without CLONE_INTO_CGROUP get a plain fork and
/// a cgroup.procs write for the child.
pub(crate) fn fork_into_cgroup(
    dir: &std::fs::File,
    cg: Option<&Cgroup>,
) -> Result<ForkResult, SpawnError> {
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: dir.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM and without a stack behaves as fork(2) in this
    // single-threaded process; `args` is a valid clone_args of the size we pass.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        0 => Ok(ForkResult::Child),
        p if p > 0 => Ok(ForkResult::Parent {
            child: Pid::from_raw(p as i32),
        }),
        _ => {
            // SAFETY: as above.
            let res = unsafe { fork() }.map_err(SpawnError::Fork)?;
            if let (ForkResult::Parent { child }, Some(cg)) = (&res, cg) {
                cg.add_process(child.as_raw())?;
            }
            Ok(res)
        }
    }
}

/// Close every fd from `first` upward except those in `keep`.
pub(crate) fn close_fds_except(first: RawFd, keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&k| k >= first).collect();
    keep.sort_unstable();
    let mut lo = first;
    for k in keep.into_iter().chain(std::iter::once(RawFd::MAX)) {
        if k > lo {
            let hi = if k == RawFd::MAX {
                libc::c_uint::MAX
            } else {
                (k - 1) as libc::c_uint
            };
            // SAFETY: closing fds of this (forked) process that nothing here uses any more.
            unsafe { libc::syscall(libc::SYS_close_range, lo as libc::c_uint, hi, 0) };
        }
        lo = k.saturating_add(1);
    }
}

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
    #[error("cannot start a process in the container's cgroup {path}: {source}")]
    IntoCgroup { path: String, source: nix::Error },
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
    /// The fd locking the container's state dir: must never reach a child.
    pub state_lock: Option<RawFd>,
    pub landlock: Option<&'a crate::landlock::Plan>,
}

/// An init set up and recorded in the container's state, waiting for `start`. Until
/// `commit` (or `start`) it also watches this channel and exits on its EOF: a runtime
/// killed before its create completed leaves no init waiting forever.
pub struct Spawned {
    pub pid: i32,
    chan: Channel,
}

impl Spawned {
    /// Tell the init its create completed: from now on only `start` or a kill ends its
    /// wait. (Dropping the handle after `start` is as good.)
    pub fn commit(self) -> Result<(), SpawnError> {
        self.chan.send(&Msg::Created)?;
        Ok(())
    }
}

/// Fail unless every fd the runtime itself holds lies above the preserved range: the
/// children keep 3..3+N whole, so one of ours there would reach the container (the state
/// lock in it would block every later command on the container).
fn check_internal_fds(req: &SpawnRequest<'_>, chans: [RawFd; 2]) -> Result<(), SpawnError> {
    let end = 3i64 + i64::from(req.preserve_fds);
    let ours = chans
        .into_iter()
        .chain(std::iter::once(req.fifo.as_raw_fd()))
        .chain(req.console.as_ref().map(|c| c.as_raw_fd()))
        .chain(
            req.seccomp
                .and_then(|f| f.agent.as_ref())
                .map(|a| a.as_raw_fd()),
        )
        .chain(req.state_lock);
    for fd in ours {
        if fd >= 3 && i64::from(fd) < end {
            return Err(SpawnError::FdInPreservedRange {
                fd,
                n: req.preserve_fds,
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
    let plan = Plan::from_spec(req.spec);
    let (ours, theirs) = sync::pair()?;
    // The init is re-parented to us when the intermediate exits, so that if it dies during
    // setup without a word (killed by the OOM killer, say) we can tell how it died.
    // SAFETY: prctl with constant arguments; affects only this process.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    check_internal_fds(&req, [ours.raw(), theirs.raw()])?;
    let runtime = nix::unistd::getpid();
    // SAFETY: the runtime is single-threaded here (no threads are ever started before a
    // container is spawned), so the child may run arbitrary code after fork.
    let child = match unsafe { fork() }.map_err(SpawnError::Fork)? {
        ForkResult::Child => {
            drop(ours);
            die_with_parent(runtime);
            intermediate(req, plan, theirs)
        }
        ForkResult::Parent { child } => child,
    };
    drop(theirs);
    let mut init_pid = None;
    let result = record(child.as_raw()).and_then(|()| {
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
        Err(SpawnError::Sync(e)) => match ours.recv() {
            Ok(Msg::Error(child_err)) => Err(SpawnError::Child(child_err)),
            // The channel is closed and nothing said why: every child holding it is gone.
            // How they died is the message.
            _ => Err(death_cause(&req, child, init_pid).unwrap_or(SpawnError::Sync(e))),
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
            // Reaped here as we are its subreaper (unless death_cause reaped it already).
            let _ = waitpid(Pid::from_raw(p), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        }
    }
    result.map(|()| Spawned {
        pid: init_pid.unwrap_or(0),
        chan: ours,
    })
}

/// In a child of the runtime: be killed when the runtime dies, so a runtime killed
/// part-way leaves no intermediate behind. The parent may have died before the prctl.
fn die_with_parent(runtime: Pid) {
    // SAFETY: prctl with constant arguments; affects only this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    if nix::unistd::getppid() != runtime {
        std::process::exit(1);
    }
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
    let init = init_pid.and_then(|p| waitpid(Pid::from_raw(p), None).ok());
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
    chan: &Channel,
    child: Pid,
    init_pid: &mut Option<i32>,
    state_json: &impl Fn(i32) -> String,
    runtime_hooks: &mut impl FnMut(i32) -> Result<(), String>,
    record: &mut impl FnMut(i32) -> Result<(), SpawnError>,
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
                record(p)?;
                chan.send(&Msg::State(state_json(p)))?;
            }
            Msg::RunHooks => {
                let pid = init_pid.unwrap_or(0);
                runtime_hooks(pid).map_err(SpawnError::Hook)?;
                chan.send(&Msg::HooksDone)?;
            }
            Msg::Landlock(ids) => crate::landlock::report(ids),
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
    if let Some(l) = req.state_lock {
        // Above the preserved range (checked before the fork), so already closed: this
        // only makes sure, whatever close_range did.
        // SAFETY: closing our copy of the lock fd; the runtime keeps its own.
        unsafe { libc::close(l) };
    }
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
                landlock: req.landlock,
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
    // Written here, still host root in the host's /proc, and inherited by the init: the
    // init itself, non-dumpable and perhaps a mapped root, may not write its own file.
    if let Some(adj) = req.spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        set_own_oom_score_adj(adj)?;
    }
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
    // The init is the runtime's binary inside the container's pid namespace until its
    // execve: it is born non-dumpable, so its /proc entries stay closed to the container.
    super::sealed_exe::make_undumpable();
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
/// global lock a migration takes). Kernels without clone3 or CLONE_INTO_CGROUP (ENOSYS,
/// E2BIG, EINVAL: refused before any process exists) get a plain fork and a cgroup.procs
/// write for the child. Any other error is the cgroup refusing the process (e.g. EOPNOTSUPP
/// for a cgroup below a thread root) and is returned: a fork after a failed clone3 would be
/// refused too, and once the failed clone3 has used up a new pid namespace's pid 1 it fails
/// with a misleading ENOMEM.
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
            let errno = nix::errno::Errno::last();
            if !matches!(
                errno,
                nix::errno::Errno::ENOSYS | nix::errno::Errno::E2BIG | nix::errno::Errno::EINVAL
            ) {
                return Err(SpawnError::IntoCgroup {
                    path: cg
                        .and_then(|c| c.path(""))
                        .map_or_else(|| "(unified)".into(), |p| p.display().to_string()),
                    source: errno,
                });
            }
            // SAFETY: as above.
            let res = unsafe { fork() }.map_err(SpawnError::Fork)?;
            if let (ForkResult::Parent { child }, Some(cg)) = (&res, cg) {
                cg.add_process(child.as_raw())?;
            }
            Ok(res)
        }
    }
}

/// Close every fd from `first` upward except those in `keep`. Where close_range(2) fails
/// (an old kernel, a seccomp filter around the runtime), each open fd is closed by itself:
/// an fd left open here could be the state lock, and a child holding it would block every
/// later command on the container.
pub(crate) fn close_fds_except(first: RawFd, keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&k| k >= first).collect();
    keep.sort_unstable();
    let mut lo = first;
    let mut failed = false;
    for k in keep.iter().copied().chain(std::iter::once(RawFd::MAX)) {
        if k > lo {
            let hi = if k == RawFd::MAX {
                libc::c_uint::MAX
            } else {
                (k - 1) as libc::c_uint
            };
            // SAFETY: closing fds of this (forked) process that nothing here uses any more.
            let r = unsafe { libc::syscall(libc::SYS_close_range, lo as libc::c_uint, hi, 0) };
            failed |= r != 0;
        }
        lo = k.saturating_add(1);
    }
    if failed {
        for fd in open_fds_from(first) {
            if keep.binary_search(&fd).is_err() {
                // SAFETY: as above, one fd at a time.
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// The open fds of this process from `first` upward: /proc/self/fd, or every number below
/// the fd limit when /proc cannot be read.
pub(crate) fn open_fds_from(first: RawFd) -> Vec<RawFd> {
    if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
        // The directory's own fd is listed too; it is closed once `rd` is dropped.
        return rd
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<RawFd>().ok())
            .filter(|&fd| fd >= first)
            .collect();
    }
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft.min(1 << 20) as RawFd)
        .unwrap_or(1 << 16);
    (first..limit).collect()
}

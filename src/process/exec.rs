//! `exec`: a new process inside a running container. The runtime's child joins the
//! container init's cgroup and every namespace (user first) and, where the container has a
//! pid namespace of its own, forks the process (a joined pid namespace applies to children
//! only; see [`exec`]), which takes the container's seccomp filter, capabilities, user and
//! rlimits and execs.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::signal::SigSet;
use nix::unistd::{ForkResult, Pid};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use super::filter::{Filter, SeccompSetup};
use super::fork::{self, close_fds_except, open_cgroup_dir};
use super::init::{self, InitError};
use super::{console, setup};
use crate::cgroups::Cgroup;
use crate::namespaces::{self, Plan};
use crate::sync::{self, SyncError};

use super::spawn::SpawnError;

pub struct ExecRequest<'a> {
    pub process: &'a Process,
    /// Host pid of the container init whose namespaces the process joins.
    pub init_pid: i32,
    /// The container's namespace plan (which namespaces it has).
    pub plan: &'a Plan,
    pub cgroup: Option<&'a Cgroup>,
    pub console: Option<OwnedFd>,
    pub preserve_fds: i32,
    pub seccomp: Option<&'a Filter>,
    /// The container's config (its `linux.seccomp`, for a deferred filter).
    pub config: &'a Spec,
    /// The container's Landlock confinement, from its state.
    pub landlock: Option<&'a crate::landlock::Plan>,
    /// The container's state, for the seccomp agent.
    pub state_json: Vec<u8>,
    /// The caller waits for the process (not `--detach`).
    pub foreground: bool,
}

/// Namespaces to join for an exec, in the order they must be joined.
fn exec_plan(container: &Plan, init_pid: i32) -> Plan {
    let mut plan = Plan::empty();
    for t in [
        LinuxNamespaceType::User,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Time,
        LinuxNamespaceType::Mount,
    ] {
        if container.has(t) {
            let p = format!("/proc/{init_pid}/ns/{}", namespaces::kind(t));
            plan.join.push((t, p.into()));
        }
    }
    plan
}

/// Start the process; returns its host pid once it has exec'd (the sync socket closes on
/// exec), or the error that stopped it.
///
/// Without a pid namespace of its own the container shares the runtime's: the process is
/// the runtime's own child. With one, an intermediate joins the namespaces (the pid
/// namespace applies to its children only) and forks the process. The process is never
/// born inside the container's pid namespace straight from the runtime, though the runtime
/// could enter it for its children: a child holds the runtime's fds from its birth until it
/// closes them, the cgroup2 directory it is born into (CLONE_INTO_CGROUP) among them, and a
/// process sharing that pid namespace with CAP_SYS_PTRACE over the host's user namespace
/// (a container without a user namespace of its own, a debugging sidecar) reads them
/// through /proc/PID/fd despite non-dumpability (runc's CVE-2016-9962). The intermediate
/// closes them in the host's pid namespace, before the process exists.
pub fn exec(req: ExecRequest<'_>) -> Result<i32, SpawnError> {
    let plan = exec_plan(req.plan, req.init_pid);
    // Open the namespaces now: /proc/PID/ns of the init may be gone by the time a child
    // would look, and errors are clearer here.
    let joins = plan.open_joins()?;
    // Without a mount namespace of its own the container is a chroot in the runtime's:
    // the process enters the init's root instead of a mount namespace.
    let root = if req.plan.has(LinuxNamespaceType::Mount) {
        None
    } else {
        let path = format!("/proc/{}/root", req.init_pid);
        let dir = std::fs::File::open(&path).map_err(|source| SpawnError::Root { path, source })?;
        Some(dir)
    };
    let (ours, theirs) = sync::pair()?;
    // The first child is born in the cgroup2 directory (no migration, so none of the
    // global lock a migration takes) and closes that host directory before anything else:
    // nothing inside the container ever holds an fd of a host directory.
    let unified = req
        .cgroup
        .and_then(Cgroup::unified_dir)
        .map(open_cgroup_dir)
        .transpose()?;
    let intermediate = joins.iter().any(|(t, ..)| *t == LinuxNamespaceType::Pid);
    // Born non-dumpable: without a pid namespace of its own, the container sees the child
    // while it still holds the runtime's fds, and only CAP_SYS_PTRACE over the host's user
    // namespace may reach them through /proc/PID/fd or ptrace meanwhile. (An intermediate
    // is out of the container's sight.)
    let dumpable = (!intermediate).then(super::sealed_exe::Dumpable::off);
    let forked = match &unified {
        Some(dir) => match fork::fork_child_into(dir, req.cgroup) {
            // Rootless, a cgroup the user may not move processes into is not joined, as
            // runc's rootless manager ignores that error.
            Err(fork::ForkError::IntoCgroup {
                source: nix::errno::Errno::EACCES | nix::errno::Errno::EPERM,
                ..
            }) if req.cgroup.is_some_and(Cgroup::is_rootless) => fork::fork_child(),
            r => r,
        },
        None => fork::fork_child(),
    };
    drop(unified);
    if let Ok(ForkResult::Child) = forked {
        drop(ours);
        let _ = SigSet::empty().thread_set_mask();
        let mut keep: Vec<RawFd> = vec![theirs.raw()];
        keep.extend(joins.iter().map(|(_, _, f)| f.as_raw_fd()));
        keep.extend(root.as_ref().map(|f| f.as_raw_fd()));
        if let Some(c) = req.console.as_ref() {
            keep.push(c.as_raw_fd());
        }
        if let Some(a) = req.seccomp.and_then(|f| f.agent()) {
            keep.push(a.as_raw_fd());
        }
        close_fds_except(3 + req.preserve_fds, &keep);
        let entered = enter(&joins, req.cgroup).and_then(|()| match intermediate {
            true => Ok(fork::fork_child()?),
            false => Ok(ForkResult::Child),
        });
        match entered {
            Ok(ForkResult::Parent { child }) => {
                let _ = theirs.init_pid(child.as_raw());
                fork::exit_child(0)
            }
            Ok(ForkResult::Child) => {
                drop(joins);
                let e = match enter_root(root) {
                    Ok(()) => run_process(req, &theirs),
                    Err(e) => e,
                };
                let _ = theirs.error(&e.to_string());
                fork::exit_child(127)
            }
            Err(e) => {
                let _ = theirs.error(&e.to_string());
                fork::exit_child(1)
            }
        }
    }
    drop(dumpable);
    let child = match forked? {
        ForkResult::Parent { child } => child,
        ForkResult::Child => unreachable!("the child went on above"),
    };
    drop(theirs);
    drop(joins);
    let result = (|| {
        // Compiled while the child joins the namespaces; the process takes it before its
        // last steps.
        let deferred = match req.seccomp {
            Some(f) => f.compile_deferred(req.config, Some(req.process))?,
            None => None,
        };
        if let Some(program) = deferred {
            if let Err(e) = ours.exec_seccomp(&program) {
                // The children are gone: what they said before says more than EPIPE.
                if intermediate {
                    ours.exec_pid()?;
                }
                ours.exec_done()?;
                return Err(e.into());
            }
        }
        let pid = if intermediate {
            match ours.exec_pid() {
                Ok(p) => p,
                Err(SyncError::Child(e)) => return Err(SpawnError::Child(e)),
                Err(e) => return Err(e.into()),
            }
        } else {
            child.as_raw()
        };
        // The process hands its listener over before it execs: the monitor must be there
        // first.
        if let Some(f) = req.seccomp.and_then(Filter::ready) {
            f.start_monitor(pid, req.foreground)?;
        }
        match ours.exec_done() {
            Ok(()) => Ok(pid),
            Err(SyncError::Child(e)) => {
                // The intermediate's child; without one, `child` itself, reaped below.
                if intermediate {
                    let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
                }
                Err(SpawnError::Child(e))
            }
            Err(e) => Err(e.into()),
        }
    })();
    if result.is_err() {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
    }
    // The intermediate exits once it has forked; the process itself is waited for by the
    // caller (or nobody, detached) unless it failed.
    if intermediate || result.is_err() {
        let _ = nix::sys::wait::waitpid(child, None);
    }
    result
}

/// What the first child does before the process goes on: joins the container's v1 cgroups
/// (moving itself, still host root in the host's mount namespace, which spares the global
/// migration lock; it was born in the cgroup2 one) and namespaces, user first and mount
/// last.
fn enter(
    joins: &[(LinuxNamespaceType, std::path::PathBuf, std::fs::File)],
    cgroup: Option<&Cgroup>,
) -> Result<(), SpawnError> {
    if let Some(cg) = cgroup {
        cg.join_self()?;
    }
    namespaces::join(joins)?;
    // As for the init: the process is non-dumpable inside the container (joining a user
    // namespace may have changed that).
    super::sealed_exe::make_undumpable();
    Ok(())
}

/// chroot into the container's root (an fd of the init's /proc/PID/root), when there is
/// no mount namespace to join.
fn enter_root(root: Option<std::fs::File>) -> Result<(), InitError> {
    let Some(dir) = root else {
        return Ok(());
    };
    let sys = |what: &str| {
        let what = what.to_string();
        move |e: nix::Error| InitError::Sys {
            what,
            source: e.into(),
        }
    };
    nix::unistd::fchdir(&dir).map_err(sys("chdir to the container's root"))?;
    nix::unistd::chroot(".").map_err(sys("chroot to the container's root"))?;
    nix::unistd::chdir("/").map_err(sys("chdir to /"))
}

fn run_process(req: ExecRequest<'_>, chan: &sync::ChildEnd) -> InitError {
    let p = req.process;
    let r = (|| -> Result<init::Never, InitError> {
        nix::unistd::setsid().map_err(|e| InitError::Sys {
            what: "setsid".into(),
            source: e.into(),
        })?;
        if let Some(sock) = req.console {
            let size = p.console_size().map(console::size);
            console::setup_exec(sock, size)?;
        }
        setup::apply_rlimits(p.rlimits().as_deref().unwrap_or(&[]))?;
        let users = setup::UserDb::default();
        let env = setup::environment(&users, p.env().as_deref().unwrap_or(&[]), p.user().uid());
        let args = p.args().as_deref().unwrap_or(&[]);
        let exe = setup::lookup(args.first().map_or("", String::as_str), &env)?;
        // As in the init (see there): while still root with every capability, before
        // no_new_privs and the seccomp filter; effective at the execve. runc's exec writes
        // it later (after its user switch), which only changes what could refuse the write.
        super::lsm::Lsm::of(p).apply_on_exec()?;
        let landlock = req.landlock.map(|p| p.build()).transpose()?;
        let received = match req.seccomp {
            Some(Filter::Deferred(_)) => Some(SeccompSetup::received(chan.seccomp()?)),
            _ => None,
        };
        init::become_process(
            p,
            req.preserve_fds,
            req.plan,
            req.seccomp.and_then(Filter::ready).or(received.as_ref()),
            landlock.as_ref(),
            &req.state_json,
            &users,
            &exe,
            &env,
        )
    })();
    match r {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

//! The container init: a fork of the runtime, already in the container's namespaces and
//! cgroup. It builds the rootfs, reports Ready to the runtime, becomes the container
//! process up to its execve (user, capabilities, seccomp, Landlock) while the runtime
//! records the container, reports that, blocks on the exec fifo until `start`, then runs
//! the startContainer hooks and execs. No re-exec of the runtime binary happens.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use super::filter::{Filter, SeccompSetup};
use super::setup::{self, SetupError};
use super::{caps, console, lsm};
use crate::hooks;
use crate::namespaces::Plan;
use crate::rootfs::RootfsSetup;
use crate::seccomp;
use crate::sync::ChildEnd;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Caps(#[from] caps::CapsError),
    #[error(transparent)]
    Console(#[from] console::ConsoleError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error(transparent)]
    Namespace(#[from] crate::namespaces::NamespaceError),
    #[error(transparent)]
    Lsm(#[from] lsm::LsmError),
    #[error(transparent)]
    Landlock(#[from] crate::landlock::LandlockError),
    #[error("{what}: {source}")]
    Sys {
        what: String,
        source: std::io::Error,
    },
    #[error("the container has no process to start (config.json has no \"process\")")]
    NoProcess,
}

fn sys(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> InitError {
    let what = what.into();
    move |source| InitError::Sys { what, source }
}

/// What the init needs, all prepared by the runtime before the fork: `SpawnRequest` carries
/// it whole, and the intermediate hands it on with the namespace `Plan` it derived from `spec`.
pub struct InitConfig<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    /// The exec fifo, opened read-write by the runtime (the init may lack the rights to
    /// open it itself, e.g. as a mapped root in a user namespace).
    pub fifo: File,
    pub no_pivot: bool,
    pub console: Option<OwnedFd>,
    pub preserve_fds: i32,
    pub seccomp: Option<&'a Filter>,
    pub landlock: Option<&'a crate::landlock::Plan>,
}

/// Run the init; never returns. Setup errors go to the runtime over `chan` until the init
/// reports `Prepared`; after that (`start`, startContainer hooks, the execve) they can only
/// go to stderr.
pub fn run(cfg: InitConfig<'_>, plan: &Plan, chan: ChildEnd) -> ! {
    let prepared = prepare(&cfg, plan, &chan).and_then(|p| {
        // While the runtime records the container: everything of becoming the process that
        // does not wait for `start`, off `run`'s critical path (runc's init too switches
        // user, drops capabilities and loads the filter before it waits on exec.fifo).
        enter(&cfg, plan, &chan, &p)?;
        chan.prepared()?;
        Ok(p)
    });
    match prepared {
        Ok(prepared) => {
            // The runtime may die before its create completes: then this init must not
            // wait for a `start` that will never come. `run` too says Created, right
            // before its `start`.
            if !chan.created() {
                super::fork::exit_child(1);
            }
            drop(chan);
            let err = finish(&cfg, prepared);
            eprintln!("nucleus init: {err}");
            super::fork::exit_child(127)
        }
        Err(e) => {
            let _ = chan.error(&e.to_string());
            super::fork::exit_child(1)
        }
    }
}

/// After Ready: become the container process up to its execve. Without a `process` there
/// is nothing to become (`start` refuses such a container before it reaches the init).
fn enter(
    cfg: &InitConfig<'_>,
    plan: &Plan,
    chan: &ChildEnd,
    p: &Prepared,
) -> Result<(), InitError> {
    let (Some(proc_), Some(_)) = (cfg.spec.process().as_ref(), p.launch.as_ref()) else {
        return Ok(());
    };
    let seccomp = cfg.seccomp.and_then(Filter::ready).or(p.seccomp.as_ref());
    if let Some(f) = seccomp {
        // What the init still makes once the filter is in: a profile refusing it fails
        // here, at create, with its name, instead of a container that cannot start.
        f.check_runs(&after_filter_syscalls(&cfg.fifo, chan))?;
    }
    enter_process(
        proc_,
        cfg.preserve_fds,
        plan,
        seccomp,
        p.landlock.as_ref(),
        &p.state_json,
        &p.users,
    )
}

/// The syscalls (name, number, arguments as made) the init makes between loading its
/// filter and the execve, besides those of becoming the process: `prepared` (write),
/// `created` (read), the read of `start`'s byte. Only read and write, as a profile is surest
/// to allow them (runc's init needs openat, write and close there). The execve and a
/// startContainer hook's calls are the workload's, refused at `start` as under runc.
fn after_filter_syscalls(fifo: &File, chan: &ChildEnd) -> [(&'static str, i64, [u64; 6]); 3] {
    use std::os::fd::AsRawFd;
    let fd = |raw: i32| u64::try_from(raw).unwrap_or_default();
    let (c, f) = (fd(chan.raw()), fd(fifo.as_raw_fd()));
    [
        ("write", libc::SYS_write, [c, 0, 11, 0, 0, 0]),
        ("read", libc::SYS_read, [c, 0, 256, 0, 0, 0]),
        ("read", libc::SYS_read, [f, 0, 1, 0, 0, 0]),
    ]
}

struct Prepared {
    /// The container state with the init's host pid, for hooks and the seccomp agent.
    state_json: Vec<u8>,
    /// The resolved executable and environment; None without a `process` (optional
    /// until `start`, which refuses such a container before it reaches the init).
    launch: Option<(PathBuf, Vec<String>)>,
    landlock: Option<crate::landlock::Ruleset>,
    /// The container's /etc/passwd and /etc/group as read before Ready.
    users: setup::UserDb,
    /// The filter the runtime compiled while the init set up ([`Filter::Deferred`]).
    seccomp: Option<SeccompSetup>,
}

fn prepare(cfg: &InitConfig<'_>, plan: &Plan, chan: &ChildEnd) -> Result<Prepared, InitError> {
    let spec = cfg.spec;
    let state_json = chan.state()?.into_bytes();
    nix::unistd::setsid().map_err(|e| sys("setsid")(e.into()))?;
    if plan.creates(LinuxNamespaceType::Cgroup) {
        crate::namespaces::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)?;
    }
    if plan.creates(LinuxNamespaceType::Network) {
        crate::namespaces::loopback_up()?;
    }
    // A UTS namespace joined by path is the container's too (spec::validate refuses
    // hostname/domainname where the runtime's own would be renamed).
    if plan.has(LinuxNamespaceType::Uts) {
        if let Some(h) = spec.hostname() {
            nix::unistd::sethostname(h).map_err(|e| sys(format!("sethostname {h}"))(e.into()))?;
        }
        if let Some(d) = spec.domainname() {
            set_domainname(d)?;
        }
    }
    // While /proc is not yet the container's.
    setup::note_ignored_signals();
    let rootfs = RootfsSetup {
        spec,
        rootfs: cfg.rootfs,
        bundle: cfg.bundle,
        no_pivot: cfg.no_pivot,
        user_ns: plan.has(LinuxNamespaceType::User),
    };
    rootfs.prepare()?;
    // The runtime compiled a deferred filter while the mounts were made.
    let seccomp = match cfg.seccomp {
        Some(Filter::Deferred(_)) => Some(SeccompSetup::received(chan.seccomp()?)),
        _ => None,
    };
    if needs_runtime_hooks(spec) {
        chan.hooks()?;
    }
    hooks::run_all(spec, hooks::Kind::CreateContainer, &state_json)?;
    rootfs.pivot()?;
    write_sysctls(spec)?;
    // The AppArmor profile and SELinux label for the execve, where runc's init sets the
    // profile: the rootfs is built, and the process is still root with every capability,
    // before no_new_privs, the seccomp filter and the capability and user switch (all after
    // Ready). They take effect only at the execve, so that order confines nothing less;
    // it decides what could refuse the write: no seccomp profile of the container's, no
    // no_new_privs rule (which forbids a confined task to change its profile), and a
    // private procfs can still be made (before the masks of `finalize`, as for sysctls).
    // Failing here fails `create`, with the profile's name, not the container's start.
    if let Some(proc_) = spec.process() {
        lsm::Lsm::of(proc_).apply_on_exec()?;
    }
    rootfs.finalize()?;
    // After the masks: a /dev/null the rootfs planted (a symlink, a file) is refused by the
    // masked-path check first, whose message names the real problem.
    rootfs.reopen_stdio_dev_null()?;
    let users = setup::UserDb::default();
    let launch = match spec.process() {
        Some(proc_) => Some(prepare_process(cfg, plan, proc_, &users)?),
        None => None,
    };
    // Inside the container, its mounts all made: the ruleset's paths are the container's.
    let landlock = cfg.landlock.map(|p| p.build()).transpose()?;
    chan.ready(landlock.as_ref().map(|r| r.identities.clone()))?;
    Ok(Prepared {
        state_json,
        launch,
        landlock,
        users,
        seccomp,
    })
}

/// What `process` needs before Ready: the terminal, rlimits, personality, and every
/// check of what could otherwise fail between `start` and the execve.
fn prepare_process(
    cfg: &InitConfig<'_>,
    plan: &Plan,
    proc_: &Process,
    users: &setup::UserDb,
) -> Result<(PathBuf, Vec<String>), InitError> {
    let spec = cfg.spec;
    if let Some(sock) = cfg.console.as_ref() {
        let sock = sock.try_clone().map_err(sys("dup console socket"))?;
        let size = proc_.console_size().map(console::size);
        console::setup(sock, size)?;
    }
    setup::apply_rlimits(proc_.rlimits().as_deref().unwrap_or(&[]))?;
    // oom_score_adj: set by the intermediate, still host root, and inherited (spawn.rs).
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        setup::apply_personality(p)?;
    }
    let env = setup::environment(
        users,
        proc_.env().as_deref().unwrap_or(&[]),
        proc_.user().uid(),
    );
    let args = proc_.args().as_deref().unwrap_or(&[]);
    let exe = setup::lookup(&args[0], &env)?;
    // Whatever can fail between `start` and the execve is checked now, so that it fails
    // `create` with its cause instead.
    setup::check_user(
        users,
        proc_.user(),
        plan.has(LinuxNamespaceType::User),
        setgroups_allowed(plan),
    )?;
    if let Some(c) = proc_.capabilities() {
        caps::check_sets(c)?;
    }
    Ok((exe, env))
}

/// Whether the init asks the runtime for its prestart and createRuntime hooks (`spawn`
/// expects the request by the same rule).
pub(crate) fn needs_runtime_hooks(spec: &Spec) -> bool {
    !hooks::of(spec, hooks::Kind::Prestart).is_empty()
        || !hooks::of(spec, hooks::Kind::CreateRuntime).is_empty()
}

/// Whether the init uses the container state `spawn` sends it (createContainer and
/// startContainer hooks, a seccomp agent); without, `spawn` sends an empty one: the state
/// carries every annotation, and a large config's would be copied to the init for nothing.
pub(crate) fn needs_state(spec: &Spec) -> bool {
    !hooks::of(spec, hooks::Kind::CreateContainer).is_empty()
        || !hooks::of(spec, hooks::Kind::StartContainer).is_empty()
        || spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .is_some_and(|s| s.listener_path().is_some())
}

fn set_domainname(d: &str) -> Result<(), InitError> {
    // SAFETY: setdomainname reads exactly len bytes from the slice.
    let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
    if r != 0 {
        return Err(sys(format!("setdomainname {d}"))(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn write_sysctls(spec: &Spec) -> Result<(), InitError> {
    let Some(map) = spec.linux().as_ref().and_then(|l| l.sysctl().clone()) else {
        return Ok(());
    };
    if map.is_empty() {
        return Ok(());
    }
    // A private procfs: nothing mounted over the container's /proc/sys can take the write.
    let proc = crate::rootfs::procfs::private_procfs()
        .map_err(|e| sys("open a private procfs for sysctls")(e.into()))?;
    for (k, v) in map {
        let rel = std::path::PathBuf::from(format!("sys/{}", k.replace('.', "/")));
        crate::rootfs::procfs::write(std::os::fd::AsFd::as_fd(&proc), &rel, v.as_bytes())
            .map_err(|e| sys(format!("write sysctl {k}"))(e.into()))?;
    }
    Ok(())
}

/// After `Prepared`: wait for `start`, run the startContainer hooks, exec.
fn finish(cfg: &InitConfig<'_>, p: Prepared) -> InitError {
    match finish_inner(cfg, p) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

pub(crate) enum Never {}

fn finish_inner(cfg: &InitConfig<'_>, p: Prepared) -> Result<Never, InitError> {
    let mut b = [0u8; 1];
    loop {
        match (&cfg.fifo).read(&mut b) {
            Ok(1) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(sys("read exec fifo")(e)),
        }
    }
    let (Some(proc_), Some((exe, env))) = (cfg.spec.process().as_ref(), p.launch.as_ref()) else {
        return Err(InitError::NoProcess);
    };
    // As runc runs them: in the container, as its user, with its capabilities, filter and
    // no_new_privs, right before the execve.
    hooks::run_all(cfg.spec, hooks::Kind::StartContainer, &p.state_json)?;
    let args = proc_.args().as_deref().unwrap_or(&[]);
    Err(setup::exec(exe, args, env).into())
}

/// The last steps shared by the init and `exec`: [`enter_process`], then the execve.
#[allow(clippy::too_many_arguments)]
pub(crate) fn become_process(
    proc_: &Process,
    preserve_fds: i32,
    plan: &Plan,
    seccomp: Option<&SeccompSetup>,
    landlock: Option<&crate::landlock::Ruleset>,
    state_json: &[u8],
    users: &setup::UserDb,
    exe: &Path,
    env: &[String],
) -> Result<Never, InitError> {
    enter_process(
        proc_,
        preserve_fds,
        plan,
        seccomp,
        landlock,
        state_json,
        users,
    )?;
    let args = proc_.args().as_deref().unwrap_or(&[]);
    Err(setup::exec(exe, args, env).into())
}

/// Everything of becoming the container process but the execve: fds, capabilities, user,
/// cwd, umask, no_new_privs, Landlock, seccomp. The init makes it before it waits for
/// `start`, `exec` right before its execve.
fn enter_process(
    proc_: &Process,
    preserve_fds: i32,
    plan: &Plan,
    seccomp: Option<&SeccompSetup>,
    landlock: Option<&crate::landlock::Ruleset>,
    state_json: &[u8],
    users: &setup::UserDb,
) -> Result<(), InitError> {
    setup::cloexec_from(3 + preserve_fds)?;
    let nnp = proc_.no_new_privileges().unwrap_or(false);
    // Without no_new_privs the filter and the Landlock ruleset must go in while we still
    // hold CAP_SYS_ADMIN. The ruleset first: a profile refusing the landlock syscalls
    // cannot then prevent it.
    if !nnp {
        if let Some(l) = landlock {
            l.restrict_self()?;
        }
        if let Some(f) = seccomp {
            f.install(state_json)?;
        }
    }
    if let Some(c) = proc_.capabilities() {
        caps::apply_bounding(c)?;
    }
    // SAFETY: PR_SET_KEEPCAPS keeps permitted caps across the uid switch below.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    setup::switch_user(users, proc_.user(), setgroups_allowed(plan))?;
    // A uid change sets dumpability from fs.suid_dumpable, which a host may set to 1.
    super::sealed_exe::make_undumpable();
    // SAFETY: back to the default: later uid changes by the workload drop caps as usual.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    let cwd = proc_.cwd();
    crate::rootfs::chdir_in_root(cwd).map_err(|source| SetupError::Cwd {
        cwd: cwd.display().to_string(),
        source,
    })?;
    if let Some(c) = proc_.capabilities() {
        caps::apply_sets(c)?;
    }
    if let Some(m) = proc_.user().umask() {
        nix::sys::stat::umask(Mode::from_bits_truncate(m));
    }
    if nnp {
        // SAFETY: prctl with constant arguments; affects only this process.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(sys("set no_new_privs")(std::io::Error::last_os_error()));
        }
        if let Some(l) = landlock {
            l.restrict_self()?;
        }
        if let Some(f) = seccomp {
            f.install(state_json)?;
        }
    }
    Ok(())
}

/// setgroups(2) is refused in a user namespace whose /proc/PID/setgroups says deny.
fn setgroups_allowed(plan: &Plan) -> bool {
    if !plan.has(LinuxNamespaceType::User) {
        return true;
    }
    crate::procinfo::read_to_string("/proc/self/setgroups").map_or(true, |s| s.trim() != "deny")
}

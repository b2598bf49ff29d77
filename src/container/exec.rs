use std::path::PathBuf;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{Capability, Process};

use super::{open, ContainerError, Runtime};
use crate::namespaces::Plan;
use crate::process::console;
use crate::process::exec::{self, ExecRequest};
use crate::process::filter::Filter;
use crate::spec;
use crate::state::Status;

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub id: String,
    /// `--process FILE`: the whole process as JSON; other process flags are then ignored.
    pub process_file: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// `--user UID[:GID]`
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub preserve_fds: i32,
    pub ignore_paused: bool,
    /// `--apparmor PROFILE`: instead of the container's profile.
    pub apparmor: Option<String>,
    /// `--process-label LABEL`: instead of the container's SELinux label.
    pub process_label: Option<String>,
}

/// The process to run: from `--process`, or the container's own process with the flags
/// applied, as runc builds it. Either way a process without an AppArmor profile or SELinux
/// label of its own gets the container's (runc's newInitConfig): an `exec` never escapes
/// the confinement of the container it enters unless the caller names another.
fn build_process(base: &Process, o: &ExecOptions) -> Result<Process, ContainerError> {
    let mut p = build_process_fields(base, o)?;
    let unset = |s: &Option<String>| s.as_deref().is_none_or(str::is_empty);
    if unset(p.apparmor_profile()) {
        p.set_apparmor_profile(base.apparmor_profile().clone());
    }
    if unset(p.selinux_label()) {
        p.set_selinux_label(base.selinux_label().clone());
    }
    // The exec'd process's settings (maybe from flags), not config.json's: no such prefix.
    spec::lsm(&p, None).map_err(|e| match e {
        spec::SpecError::Invalid(m) => ContainerError::Other(m),
        e => e.into(),
    })?;
    Ok(p)
}

fn build_process_fields(base: &Process, o: &ExecOptions) -> Result<Process, ContainerError> {
    if let Some(f) = &o.process_file {
        let data = std::fs::read(f)
            .map_err(super::io_err(format!("read process file {}", f.display())))?;
        let p: Process = spec::parse(&f.display().to_string(), &data)?;
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(ContainerError::Other("args must not be empty".into()));
        }
        return Ok(p);
    }
    if o.args.is_empty() {
        return Err(ContainerError::Other(
            "exec: no command given (usage: nucleus exec [options] <container-id> <command> [args...])".into(),
        ));
    }
    let mut p = base.clone();
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    let mut env = p.env().clone().unwrap_or_default();
    env.extend(o.env.iter().cloned());
    p.set_env(Some(env));
    if let Some(c) = &o.cwd {
        p.set_cwd(c.clone());
    }
    if let Some(u) = &o.user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (u.as_str(), None),
        };
        let bad = || ContainerError::Other(format!("invalid --user {u:?}: want UID[:GID]"));
        let user = p.user_mut();
        user.set_uid(uid.parse().map_err(|_| bad())?);
        if let Some(g) = gid {
            user.set_gid(g.parse().map_err(|_| bad())?);
        }
    }
    if !o.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(o.additional_gids.clone()));
    }
    if !o.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &o.caps {
            let cap: Capability =
                serde_json::from_value(serde_json::Value::String(name.clone()))
                    .map_err(|_| ContainerError::Other(format!("unknown capability {name:?}")))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            caps.set_ambient(add(caps.ambient()));
        }
        p.set_capabilities(Some(caps));
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    // runc: the flags override the container's settings; with `--process` they are ignored.
    if let Some(a) = o.apparmor.as_ref().filter(|a| !a.is_empty()) {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = o.process_label.as_ref().filter(|l| !l.is_empty()) {
        p.set_selinux_label(Some(l.clone()));
    }
    Ok(p)
}

/// `nucleus exec`: returns the exit code of the process (0 with `detach`).
pub fn exec(rt: &Runtime, o: &ExecOptions) -> Result<i32, ContainerError> {
    super::check_preserved_fds(o.preserve_fds)?;
    let (dir, mut st, status) = open(rt, &o.id)?;
    match status {
        Status::Running | Status::Created => {}
        Status::Paused if o.ignore_paused => {}
        Status::Paused => {
            return Err(ContainerError::WrongState(
                "cannot exec in a paused container (use --ignore-paused to override)".into(),
            ))
        }
        _ => {
            return Err(ContainerError::WrongState(
                "cannot exec in a stopped container".into(),
            ))
        }
    }
    let config = dir.load_config()?;
    dir.load_annotations(&mut st)?;
    let base = config.process().clone().unwrap_or_default();
    let process = build_process(&base, o)?;
    let terminal = process.terminal().unwrap_or(false);
    let console = console::for_process(terminal, o.console_socket.as_deref(), None)?;
    let plan = Plan::from_spec(&config);
    let seccomp = Filter::prepare(&config, Some(&process), &plan, &st.annotations, &st.bundle)?;
    let landlock = crate::landlock::Plan::from_state(&st.annotations, &st.landlock_ids)?;
    let state_json = st.hook_json(status);
    // The lock is only needed to read a consistent state; a long-running exec must not
    // block other commands on this container.
    drop(dir);
    let forward = if o.detach {
        SigSet::empty()
    } else {
        foreground()?
    };
    let pid = exec::exec(ExecRequest {
        process: &process,
        init_pid: st.pid,
        plan: &plan,
        cgroup: st.cgroup.as_ref(),
        console,
        preserve_fds: o.preserve_fds,
        seccomp: seccomp.as_ref(),
        config: &config,
        landlock: landlock.as_ref(),
        state_json,
        foreground: !o.detach,
    })?;

    if let Some(p) = o.pid_file.as_deref() {
        super::create::write_pid_file(p, pid)?;
    }
    if o.detach {
        return Ok(0);
    }
    Ok(wait_forwarding(pid, &forward))
}

/// Set up the runtime to stay with a process in the foreground: block the signals it
/// forwards (before forking, so none is lost before the wait loop; children unblock them)
/// and become the reaper of the process once the intermediate exits. Returns the set to
/// wait on.
pub(crate) fn foreground() -> Result<SigSet, ContainerError> {
    let mut forward = SigSet::all();
    forward.remove(Signal::SIGKILL);
    forward.remove(Signal::SIGSTOP);
    forward
        .thread_block()
        .map_err(|e| super::io_err("block signals")(e.into()))?;
    // SAFETY: prctl with constant arguments; affects only this process.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    Ok(forward)
}

/// Forward signals to `pid` until it exits; its exit code, or 128+signal.
pub(crate) fn wait_forwarding(pid: i32, set: &SigSet) -> i32 {
    let target = Pid::from_raw(pid);
    loop {
        let Ok(sig) = set.wait() else { continue };
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(target, sig);
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == target => return code,
                Ok(WaitStatus::Signaled(p, s, _)) if p == target => return 128 + s as i32,
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

//! The seccomp filter a container process gets: compiled from the bundle by the runtime,
//! installed by the process itself right before exec, and, in trace or deny-log mode,
//! served by a monitor process the runtime leaves behind.
//!
//! An enforced profile whose children inherit nothing of it (no listener slot, no agent
//! connection: the common case, e.g. Podman's default profile) is compiled by the runtime
//! after it forks, while its children build the namespaces and mounts, and sent to the
//! process over the sync channel ([`Filter::Deferred`]): the compile is then off the
//! critical path on a machine with a second CPU.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::unistd::ForkResult;
use oci_spec::runtime::{LinuxNamespaceType, LinuxSeccomp, Process, Spec};

use super::fork;
use crate::namespaces::Plan;
use crate::seccomp::{
    self, Annotations, BuiltinFilters, KernelFacts, ListenerSlot, SeccompError, SupervisionPlan,
    UserNs,
};

/// A container process's filter as the runtime holds it when it forks.
pub enum Filter {
    /// Compiled before the fork: trace and deny-log modes (the children inherit the
    /// monitor's listener slot) and SCMP_ACT_NOTIFY profiles (the agent's connection).
    Ready(SeccompSetup),
    /// Compiled by the runtime after the fork ([`Deferred::compile`]) and received by the
    /// process with `ChildEnd::seccomp` before it reports ready.
    Deferred(Deferred),
}

/// How to compile an enforced profile once the children are on their way.
pub struct Deferred {
    builtin: BuiltinFilters,
    new_netns: bool,
    user_ns: UserNs,
}

pub struct SeccompSetup {
    pub program: seccomp::Program,
    /// Connected seccomp agent socket for SCMP_ACT_NOTIFY profiles.
    pub agent: Option<OwnedFd>,
    pub listener_path: String,
    pub metadata: Option<String>,
    supervision: Option<(SupervisionPlan, ListenerSlot)>,
}

/// How long the container process waits at install for the monitor to take its listener.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);

impl Filter {
    /// The filter of `process` (the container's init or an exec'd process) from the
    /// container's `linux.seccomp` section and annotations; None when it gets no filter.
    /// Everything that can be checked without compiling is checked here; an enforced
    /// profile without SCMP_ACT_NOTIFY is left for [`Deferred::compile`]. `plan`: the
    /// container's namespaces, as the caller worked them out from `spec`.
    pub fn prepare(
        spec: &Spec,
        process: Option<&Process>,
        plan: &Plan,
        annotations: &HashMap<String, String>,
        bundle: &Path,
    ) -> Result<Option<Filter>, SeccompError> {
        let ann = Annotations::parse(annotations)?;
        let section = section(spec);
        let new_netns = plan.creates(LinuxNamespaceType::Network);
        let user_ns = if plan.creates(LinuxNamespaceType::User) {
            UserNs::New
        } else if plan.has(LinuxNamespaceType::User) {
            UserNs::Joined
        } else {
            UserNs::Runtime
        };
        let inherited = ann.mode == seccomp::Mode::Trace || ann.log_denied;
        if section.is_some_and(|s| !inherited && !seccomp::names_notify(s)) {
            return Ok(Some(Filter::Deferred(Deferred {
                builtin: ann.builtin,
                new_netns,
                user_ns,
            })));
        }
        let facts = || KernelFacts::read(process, user_ns);
        let Some(setup) = seccomp::prepare(section, &ann, bundle, new_netns, facts)? else {
            return Ok(None);
        };
        log_notes(&setup.program);
        let supervision = match setup.supervision {
            Some(plan) => Some((plan, ListenerSlot::new()?)),
            None => None,
        };
        let listener_path = section
            .and_then(|s| s.listener_path().as_ref())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let agent = if setup.program.uses_notify && supervision.is_none() {
            Some(seccomp::connect_agent(&listener_path)?)
        } else {
            None
        };
        Ok(Some(Filter::Ready(SeccompSetup {
            program: setup.program,
            agent,
            listener_path,
            metadata: section.and_then(|s| s.listener_metadata().clone()),
            supervision,
        })))
    }

    /// The filter compiled before the fork, if it was.
    pub fn ready(&self) -> Option<&SeccompSetup> {
        match self {
            Filter::Ready(s) => Some(s),
            Filter::Deferred(_) => None,
        }
    }

    /// The seccomp agent's connection, which the children must keep.
    pub fn agent(&self) -> Option<&OwnedFd> {
        self.ready().and_then(|s| s.agent.as_ref())
    }

    /// A deferred filter compiled from `spec` (the one given to [`Filter::prepare`]) for
    /// `process`, to send to it; None when there is none to send.
    pub fn compile_deferred(
        &self,
        spec: &Spec,
        process: Option<&Process>,
    ) -> Result<Option<seccomp::Program>, SeccompError> {
        match (self, section(spec)) {
            (Filter::Deferred(d), Some(s)) => d.compile(s, process).map(Some),
            _ => Ok(None),
        }
    }
}

fn section(spec: &Spec) -> Option<&LinuxSeccomp> {
    spec.linux().as_ref().and_then(|l| l.seccomp().as_ref())
}

impl Deferred {
    /// Compile `section` for `process`, the kernel facts read now from the runtime's
    /// /proc/sys; its notes are logged here, once.
    fn compile(
        &self,
        section: &LinuxSeccomp,
        process: Option<&Process>,
    ) -> Result<seccomp::Program, SeccompError> {
        let opts = seccomp::CompileOptions {
            builtin: self.builtin.clone(),
            new_netns: self.new_netns,
            facts: KernelFacts::read(process, self.user_ns),
            ..Default::default()
        };
        let program = seccomp::compile(section, &opts)?;
        log_notes(&program);
        Ok(program)
    }
}

/// Profiles written for many architectures name syscalls x86 lacks; runc skips them
/// silently, and callers such as conmon show a runtime's stderr to the user.
fn log_notes(program: &seccomp::Program) {
    for w in &program.warnings {
        crate::debug!("{w}");
    }
    for d in &program.debug {
        crate::debug!("{d}");
    }
}

impl SeccompSetup {
    /// The filter a process received over the sync channel ([`Filter::Deferred`]).
    pub fn received(program: seccomp::Program) -> SeccompSetup {
        SeccompSetup {
            program,
            agent: None,
            listener_path: String::new(),
            metadata: None,
            supervision: None,
        }
    }

    /// Load the filter into this process; hand the notify listener to the agent or to
    /// nucleus's own monitor.
    pub fn install(&self, state_json: &[u8]) -> Result<(), SeccompError> {
        let listener = seccomp::install(&self.program)?;
        match (listener, self.agent.as_ref(), self.supervision.as_ref()) {
            (Some(l), _, Some((_, slot))) => {
                let fd = l.into_raw_fd();
                let taken = slot.publish(fd, HANDOVER_TIMEOUT);
                // SAFETY: our copy of the listener (the monitor holds its own if taken).
                unsafe { libc::close(fd) };
                if !taken {
                    return Err(SeccompError::Supervisor {
                        what: "handing the listener to the seccomp monitor",
                        source: std::io::Error::from(std::io::ErrorKind::TimedOut),
                    });
                }
            }
            (Some(l), Some(agent), None) => {
                seccomp::send_listener(
                    agent,
                    &self.listener_path,
                    l,
                    self.metadata.as_deref(),
                    state_json,
                )?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks that the filter lets `calls` (name, number, arguments) run, as the profile
    /// decides them: in deny-log mode the profile's own program (the installed one sends
    /// what it refuses to the monitor, which refuses it), in trace mode nothing is refused.
    pub fn check_runs(&self, calls: &[(&'static str, i64, [u64; 6])]) -> Result<(), SeccompError> {
        match self.supervision.as_ref().map(|(plan, _)| plan) {
            Some(SupervisionPlan::Trace { .. }) => Ok(()),
            Some(SupervisionPlan::LogDenied { original }) => seccomp::check_runs(original, calls),
            None => seccomp::check_runs(&self.program.instructions, calls),
        }
    }

    /// In trace or deny-log mode, leave a monitor process that takes the listener from
    /// `pid` once it installs its filter, and serves it until every process using the
    /// filter is gone. Returns the monitor's pid. Without a log file the deny log goes to
    /// stderr, which the monitor keeps only when `keep_stderr` (a foreground `run`/`exec`,
    /// whose caller waits anyway): holding a caller's stderr pipe open past the runtime's
    /// exit would stall callers such as conmon that read it to EOF.
    pub fn start_monitor(&self, pid: i32, keep_stderr: bool) -> Result<Option<i32>, SeccompError> {
        let Some((plan, slot)) = self.supervision.as_ref() else {
            return Ok(None);
        };
        let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| {
            SeccompError::Supervisor {
                what: "creating the monitor pipe",
                source: e.into(),
            }
        })?;
        match fork::fork_child() {
            Err(e) => Err(SeccompError::Supervisor {
                what: "forking the seccomp monitor",
                source: std::io::Error::other(e),
            }),
            Ok(ForkResult::Child) => {
                drop(rd);
                let _ = nix::unistd::setsid();
                match fork::fork_child() {
                    Ok(ForkResult::Parent { child }) => {
                        let _ = nix::unistd::write(&wr, &child.as_raw().to_ne_bytes());
                        fork::exit_child(0)
                    }
                    Ok(ForkResult::Child) => {
                        drop(wr);
                        redirect_stdio_to_null(keep_stderr && crate::logger::fd().is_none());
                        // Nothing the runtime held (the container's state lock above all)
                        // may stay open in a process that outlives it; the log stays.
                        // The trace file's directory (beneath the bundle) stays too.
                        let keep: Vec<i32> = crate::logger::fd()
                            .into_iter()
                            .chain(plan.kept_fd())
                            .collect();
                        fork::close_fds_except(3, &keep);
                        shed_inherited_memory();
                        let code = match monitor(plan, slot, pid) {
                            Ok(()) => 0,
                            Err(e) => {
                                crate::warn!("seccomp monitor for pid {pid}: {e}");
                                1
                            }
                        };
                        fork::exit_child(code)
                    }
                    Err(_) => fork::exit_child(1),
                }
            }
            Ok(ForkResult::Parent { child }) => {
                drop(wr);
                let _ = nix::sys::wait::waitpid(child, None);
                let mut b = [0u8; 4];
                match nix::unistd::read(&rd, &mut b) {
                    Ok(4) => Ok(Some(i32::from_ne_bytes(b))),
                    _ => Err(SeccompError::Supervisor {
                        what: "starting the seccomp monitor",
                        source: std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
                    }),
                }
            }
        }
    }
}

/// The monitor is a fork of the runtime and lives as long as the container: it gives back
/// the heap the runtime had freed (about half of the runtime's heap after a `create`).
fn shed_inherited_memory() {
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe { libc::malloc_trim(0) };
}

fn redirect_stdio_to_null(keep_stderr: bool) {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..if keep_stderr { 2 } else { 3 } {
            // SAFETY: dup2 onto our own stdio; `null` stays valid for the call.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

/// The monitor: wait for the listener (the init installs its filter after Ready, `exec`'s process before its execve),
/// then serve it.
fn monitor(plan: &SupervisionPlan, slot: &ListenerSlot, pid: i32) -> Result<(), SeccompError> {
    let listener = loop {
        match slot.take(pid, Duration::from_millis(500)) {
            Ok(l) => break l,
            Err(e) => {
                if crate::state::process_start_time(pid).is_none() {
                    return Err(e);
                }
            }
        }
    };
    seccomp::supervise(listener, plan.as_supervision(), &mut |d| {
        crate::warn!(
            "seccomp denied syscall {} (nr {}, arch {}) of pid {}: errno {}",
            d.name.unwrap_or("?"),
            d.nr,
            d.arch,
            d.pid,
            d.errno
        );
    })?;
    Ok(())
}

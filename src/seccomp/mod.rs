//! Seccomp: the OCI `linux.seccomp` profile compiled to classic BPF by our own compiler
//! (bitmap and cache-friendly dispatch, built-in argument filters), installed with
//! seccomp(2), and the notify listener handed to a seccomp agent as runc does.
//!
//! Runtime switches (OCI annotations, see [`Annotations`]):
//! - `run.nucleus.seccomp.mode` = `enforce` (default) | `trace`: trace lets every syscall run
//!   and records each distinct one with its count to `run.nucleus.seccomp.trace-file`
//!   (default `seccomp-trace.ndjson` in the bundle) as NDJSON
//!   `{"syscall": 39, "name": "getpid", "count": 3, "arch": "x86_64"}`;
//!   [`generate_profile`] turns such a trace into a minimal profile.
//! - `run.nucleus.seccomp.log-denied` = `true` | `false`: each syscall the profile refuses
//!   with an errno is reported (name, number, pid) and still refused with that errno.
//! - `run.nucleus.seccomp.builtin-filters` = `default` (default) | `hardened` | `strict`
//!   (or `all`) | `none` | comma list of `clone, clone3, execveat, ioctl, mprotect,
//!   personality, pkey_mprotect, prctl, prlimit64, socket, socketcall, unshare`: where the
//!   profile allows one of these unconditionally, nucleus's argument rules replace the
//!   allow; what they refuse gets the profile's default action, except clone3, which gets
//!   ENOSYS so that libc falls back to clone (whose flags a filter can read). `default`
//!   leaves the hot syscalls (ioctl, prctl, clone, clone3, unshare) in the kernel's action
//!   cache; `hardened` filters them too (see [`builtin_filters`]).
//!
//! Flow for a container: [`prepare`] or [`compile`] in the runtime, before forking the
//! container init or (an enforced profile without notify) while it sets up, the program then
//! sent to it over the sync channel; in the init, right before exec, [`install`] the program and,
//! when [`Setup::supervision`] is set, [`ListenerSlot::publish`] the returned fd; in the
//! monitor, [`ListenerSlot::take`] it and run [`supervise`]. With SCMP_ACT_NOTIFY in the
//! profile (and no supervision), the listener goes to the agent with [`send_listener`].

// The compiler, the syscall tables, the BPF argument layout and the notify decoder speak
// only the ABIs an x86_64 kernel runs (x86_64, x32, i386): built for another architecture
// they would install filters checking the wrong AUDIT_ARCH and syscall numbers.
#[cfg(not(target_arch = "x86_64"))]
compile_error!(
    "nucleus's seccomp support targets x86_64 kernels only (see seccomp/syscall_table.rs)"
);

pub mod annotations;
pub mod bpf;
pub mod bpf_interpreter;
pub mod builtin_filters;
pub mod compiler;
pub mod features;
pub mod install;
pub mod kernel_facts;
pub mod notify_supervisor;
pub mod policy;
pub mod rule_tree;
pub mod syscall_table;
pub mod trace_file;

pub use annotations::{Annotations, Mode};
pub use builtin_filters::BuiltinFilters;
pub use compiler::Layout;
pub use features::features;
pub use install::{connect_agent, install, send_listener};
pub use kernel_facts::{KernelFacts, UserNs};
pub use notify_supervisor::{
    generate_profile, log_denied_program, supervise, trace_program, Denied, ListenerSlot,
    Supervision,
};
pub use trace_file::TraceFile;

use oci_spec::runtime::LinuxSeccomp;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp.syscalls[{entry}]: argument index {index} out of range (0..=5)")]
    BadArgIndex { entry: usize, index: usize },
    #[error("{field}: errnoRet {value} is out of range (errno values are below {max})", max = policy::MAX_ERRNO)]
    BadErrnoRet { field: String, value: u32 },
    #[error(
        "linux.seccomp: two rules for syscall {name} give the same argument condition \
         different actions (libseccomp, and so runc, refuses this too)"
    )]
    RuleConflict { name: String },
    #[error("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action")]
    NotifyAsDefault,
    #[error(
        "linux.seccomp: SCMP_ACT_NOTIFY is used but listenerPath is not set; set \
         linux.seccomp.listenerPath to the seccomp agent's socket"
    )]
    NotifyWithoutListener,
    #[error(
        "seccomp program has {len} instructions, more than the kernel's limit of {max}; \
         simplify the profile (fewer argument rules)"
    )]
    ProgramTooLong { len: usize, max: usize },
    #[error("unknown built-in seccomp filter {0:?}; known: {known}", known = builtin_filters::builtin_syscalls().collect::<Vec<_>>().join(", "))]
    UnknownBuiltinFilter(String),
    #[error("annotation {annotation}={value:?} is invalid: expected {expected}")]
    BadAnnotation {
        annotation: String,
        value: String,
        expected: String,
    },
    #[error("unknown annotation {0}: known are run.nucleus.seccomp.mode, .trace-file, .log-denied, .builtin-filters")]
    UnknownAnnotation(String),
    #[error("installing the seccomp filter (seccomp(2) flags {flags:#x}): {source}{hint}")]
    Install {
        flags: u64,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("seccomp listener: {what} {path}: {source}")]
    Listener {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("seccomp listener: container state JSON: {0}")]
    StateJson(String),
    #[error(
        "run.nucleus.seccomp.mode=trace and log-denied need the seccomp notify listener, but \
         the profile already uses SCMP_ACT_NOTIFY (a process can have only one listener)"
    )]
    NotifyConflict,
    #[error("seccomp supervisor: {what}: {source}")]
    Supervisor {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("annotation run.nucleus.seccomp.trace-file={path:?}: {reason}")]
    TracePath { path: String, reason: String },
    #[error("writing seccomp trace file {path}: {source}")]
    TraceFile {
        path: String,
        source: std::io::Error,
    },
    #[error("seccomp program rejected: {0}")]
    InvalidProgram(#[from] bpf_interpreter::BpfCheckError),
    #[error("seccomp trace line {line}: {reason}")]
    TraceRecord { line: usize, reason: String },
    #[error(
        "linux.seccomp refuses {name}(2), which the container init makes after it loads the \
         filter, to wait for `start`; allow {name}"
    )]
    InitNeeds { name: &'static str },
}

/// How a profile is compiled.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    pub builtin: BuiltinFilters,
    pub layout: Layout,
    /// The container has its own network namespace (wider socket domain allowlist).
    pub new_netns: bool,
    /// What the kernel refuses the filtered processes anyway (default rules it makes
    /// redundant are dropped); the default knows nothing.
    pub facts: KernelFacts,
    /// runc's -ENOSYS stub: syscalls numbered above every syscall the profile names fail
    /// with ENOSYS instead of the default action (unless that action lets them run).
    pub enosys_stub: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            builtin: BuiltinFilters::Default,
            layout: Layout::CachePrefixBitmap,
            new_netns: false,
            facts: KernelFacts::default(),
            enosys_stub: true,
        }
    }
}

/// A compiled filter, ready for [`install`].
#[derive(Clone, Debug)]
pub struct Program {
    pub instructions: Vec<libc::sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` from the profile.
    pub flags: u64,
    /// Some rule returns SCMP_ACT_NOTIFY: install with a listener.
    pub uses_notify: bool,
    /// Things the caller should log as warnings (unknown syscall names, foreign arches).
    pub warnings: Vec<String>,
    /// Things the caller should log at debug level (built-in filter merges).
    pub debug: Vec<String>,
}

/// Compiles `spec` for an x86_64 kernel.
pub fn compile(spec: &LinuxSeccomp, opts: &CompileOptions) -> Result<Program, SeccompError> {
    let mut policy = policy::Policy::from_spec(spec)?;
    let debug = builtin_filters::merge(&mut policy, &opts.builtin, opts.new_netns, &opts.facts);
    let uses_notify = policy.uses_notify();
    if uses_notify && spec.listener_path().is_none() {
        return Err(SeccompError::NotifyWithoutListener);
    }
    let instructions = compiler::generate(&policy, opts.layout, opts.enosys_stub)?;
    Ok(Program {
        instructions,
        flags: policy.flags,
        uses_notify,
        warnings: policy.warnings,
        debug,
    })
}

/// Checks that `instructions` let each of `calls` (name, x86_64 syscall number, arguments)
/// run: allowed, logged, or left to a listener (SCMP_ACT_NOTIFY: its agent decides).
/// Killed, trapped, failed or traced (without a tracer it fails), the first is the error.
pub fn check_runs(
    instructions: &[libc::sock_filter],
    calls: &[(&'static str, i64, [u64; 6])],
) -> Result<(), SeccompError> {
    for &(name, nr, args) in calls {
        let data = bpf_interpreter::SeccompData {
            nr: i32::try_from(nr).unwrap_or(-1),
            arch: syscall_table::AUDIT_ARCH_X86_64,
            instruction_pointer: 0,
            args,
        };
        let action = bpf_interpreter::run(instructions, &data)? & libc::SECCOMP_RET_ACTION_FULL;
        if !matches!(
            action,
            libc::SECCOMP_RET_ALLOW | libc::SECCOMP_RET_LOG | libc::SECCOMP_RET_USER_NOTIF
        ) {
            return Err(SeccompError::InitNeeds { name });
        }
    }
    Ok(())
}

/// Whether `spec` may involve a notify listener (a rule or the default action
/// SCMP_ACT_NOTIFY, or a `listenerPath`): its agent connection is made before the runtime
/// forks, so such a profile is compiled first.
pub fn names_notify(spec: &LinuxSeccomp) -> bool {
    use oci_spec::runtime::LinuxSeccompAction::ScmpActNotify;
    spec.listener_path().is_some()
        || spec.default_action() == ScmpActNotify
        || spec
            .syscalls()
            .iter()
            .flatten()
            .any(|s| s.action() == ScmpActNotify)
}

/// What a container gets: the program its init installs and, for trace mode or deny
/// logging, what the supervisor does with the listener.
#[derive(Clone, Debug)]
pub struct Setup {
    pub program: Program,
    pub supervision: Option<SupervisionPlan>,
}

#[derive(Clone, Debug)]
pub enum SupervisionPlan {
    Trace { out: TraceFile },
    LogDenied { original: Vec<libc::sock_filter> },
}

impl SupervisionPlan {
    /// An fd the process serving the plan must keep open.
    pub fn kept_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match self {
            SupervisionPlan::Trace { out } => Some(out.dir_fd().as_raw_fd()),
            SupervisionPlan::LogDenied { .. } => None,
        }
    }

    pub fn as_supervision(&self) -> Supervision<'_> {
        match self {
            SupervisionPlan::Trace { out } => Supervision::Trace { out },
            SupervisionPlan::LogDenied { original } => Supervision::LogDenied { original },
        }
    }
}

/// Builds the seccomp setup of a container from its `linux.seccomp` section (if any) and
/// annotations, for processes `facts` describes. `None`: no filter at all. `facts` is asked
/// only when a profile is compiled (it reads sysctls): a container without one pays nothing.
pub fn prepare(
    spec: Option<&LinuxSeccomp>,
    annotations: &Annotations,
    bundle: &std::path::Path,
    new_netns: bool,
    facts: impl FnOnce() -> KernelFacts,
) -> Result<Option<Setup>, SeccompError> {
    if annotations.mode == Mode::Trace {
        return Ok(Some(Setup {
            program: trace_program(),
            supervision: Some(SupervisionPlan::Trace {
                out: annotations.trace_file(bundle)?,
            }),
        }));
    }
    let Some(spec) = spec else {
        return Ok(None);
    };
    let opts = CompileOptions {
        builtin: annotations.builtin.clone(),
        new_netns,
        facts: facts(),
        ..Default::default()
    };
    let program = compile(spec, &opts)?;
    if !annotations.log_denied {
        return Ok(Some(Setup {
            program,
            supervision: None,
        }));
    }
    let watched = log_denied_program(&program)?;
    Ok(Some(Setup {
        supervision: Some(SupervisionPlan::LogDenied {
            original: program.instructions,
        }),
        program: watched,
    }))
}

/// The policy `compile` would compile (after the built-in merge), for checking programs.
pub fn effective_policy(
    spec: &LinuxSeccomp,
    opts: &CompileOptions,
) -> Result<policy::Policy, SeccompError> {
    let mut policy = policy::Policy::from_spec(spec)?;
    builtin_filters::merge(&mut policy, &opts.builtin, opts.new_netns, &opts.facts);
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn spec(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn prepare_follows_the_annotations() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path();
        let profile = spec(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}));
        let plain = Annotations::default();
        // Without a profile the facts (sysctl reads) are never asked for.
        let unasked = || -> KernelFacts { unreachable!("facts read without a profile") };
        assert!(prepare(None, &plain, bundle, false, unasked)
            .unwrap()
            .is_none());
        let s = prepare(Some(&profile), &plain, bundle, false, KernelFacts::default)
            .unwrap()
            .unwrap();
        assert!(s.supervision.is_none() && !s.program.uses_notify);

        let mut a = HashMap::new();
        a.insert(annotations::MODE.to_string(), "trace".to_string());
        let trace = Annotations::parse(&a).unwrap();
        let s = prepare(None, &trace, bundle, false, KernelFacts::default)
            .unwrap()
            .unwrap();
        assert!(s.program.uses_notify);
        match s.supervision {
            Some(SupervisionPlan::Trace { out }) => {
                assert_eq!(out.shown(), bundle.join(annotations::DEFAULT_TRACE_FILE))
            }
            other => panic!("{other:?}"),
        }

        let mut a = HashMap::new();
        a.insert(annotations::LOG_DENIED.to_string(), "true".to_string());
        let log = Annotations::parse(&a).unwrap();
        let s = prepare(Some(&profile), &log, bundle, false, KernelFacts::default)
            .unwrap()
            .unwrap();
        assert!(s.program.uses_notify);
        assert!(matches!(
            s.supervision,
            Some(SupervisionPlan::LogDenied { .. })
        ));

        let agent = spec(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock",
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]}));
        let e = prepare(Some(&agent), &log, bundle, false, KernelFacts::default).unwrap_err();
        assert!(matches!(e, SeccompError::NotifyConflict), "{e}");
    }
}

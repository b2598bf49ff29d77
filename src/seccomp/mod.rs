//! Seccomp: the OCI `linux.seccomp` profile compiled to classic BPF by our own compiler
//! (bitmap and cache-friendly dispatch, built-in argument filters), installed with
//! seccomp(2), and the notify listener handed to a seccomp agent as runc does.

pub mod annotations;
pub mod bpf;
pub mod bpf_interpreter;
pub mod builtin_filters;
pub mod compiler;
pub mod install;
pub mod notify_supervisor;
pub mod policy;
pub mod syscall_table;

pub use annotations::{Annotations, Mode};
pub use builtin_filters::BuiltinFilters;
pub use compiler::Layout;
pub use install::{connect_agent, install, send_listener};
pub use notify_supervisor::{
    generate_profile, log_denied_program, supervise, trace_program, ListenerSlot, Supervision,
};

use oci_spec::runtime::LinuxSeccomp;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp.syscalls[{entry}]: argument index {index} out of range (0..=5)")]
    BadArgIndex { entry: usize, index: usize },
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
    #[error("unknown built-in seccomp filter {0:?}; known: {known}", known = builtin_filters::BUILTIN_SYSCALLS.join(", "))]
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
    #[error("writing seccomp trace file {path}: {source}")]
    TraceFile {
        path: String,
        source: std::io::Error,
    },
    #[error("seccomp trace line {line}: {reason}")]
    TraceRecord { line: usize, reason: String },
}

/// How a profile is compiled.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    pub builtin: BuiltinFilters,
    pub layout: Layout,
    /// The container has its own network namespace (wider socket domain allowlist).
    pub new_netns: bool,
    /// runc's -ENOSYS stub: syscalls numbered above every syscall the profile names fail
    /// with ENOSYS instead of the default action (unless that action lets them run).
    pub enosys_stub: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            builtin: BuiltinFilters::All,
            layout: Layout::CachePrefixBitmap,
            new_netns: false,
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
    let debug = builtin_filters::merge(&mut policy, &opts.builtin, opts.new_netns);
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

/// The policy `compile` would compile (after the built-in merge), for checking programs.
pub fn effective_policy(
    spec: &LinuxSeccomp,
    opts: &CompileOptions,
) -> Result<policy::Policy, SeccompError> {
    let mut policy = policy::Policy::from_spec(spec)?;
    builtin_filters::merge(&mut policy, &opts.builtin, opts.new_netns);
    Ok(policy)
}

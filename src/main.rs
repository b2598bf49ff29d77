//! The `nucleus` command line: runc-compatible verbs and global flags over the library.

// The process starts at `main` below, not through std's start-up (see `start_up`).
#![cfg_attr(not(test), no_main)]

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, FromArgMatches, Parser, Subcommand};

use nucleus::container::{self, CreateOptions, Runtime};
use nucleus::logger::{self, Format};
use nucleus::state::{Root, DEFAULT_ROOT, OCI_VERSION};

/// What `checkpoint` and `restore` both pass to CRIU (runc's flags).
#[derive(Args, Debug)]
struct CriuArgs {
    /// Directory of the checkpoint images (default: ./checkpoint)
    #[arg(long = "image-path")]
    image_path: Option<PathBuf>,
    /// Directory for CRIU's logs and work files (default: the image path)
    #[arg(long = "work-path")]
    work_path: Option<PathBuf>,
    /// Allow established TCP connections
    #[arg(long = "tcp-established")]
    tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    ext_unix_sk: bool,
    /// Allow shell jobs (a terminal shared with the caller)
    #[arg(long = "shell-job")]
    shell_job: bool,
    /// Handle file locks
    #[arg(long = "file-locks")]
    file_locks: bool,
    /// How CRIU handles cgroups: soft, full, strict or ignore
    #[arg(long = "manage-cgroups-mode", default_value = "soft")]
    manage_cgroups_mode: String,
    /// Create this namespace empty instead of checkpointing/restoring it (network)
    #[arg(long = "empty-ns")]
    empty_ns: Vec<String>,
    /// Deduplicate the images against the parent's as they are written
    #[arg(long = "auto-dedup")]
    auto_dedup: bool,
}

impl CriuArgs {
    fn options(self) -> Result<container::CriuOptions> {
        let image_path = match self.image_path {
            Some(p) => p,
            None => std::env::current_dir()?.join("checkpoint"),
        };
        Ok(container::CriuOptions {
            image_path,
            work_path: self.work_path,
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            manage_cgroups_mode: self.manage_cgroups_mode.parse()?,
            empty_ns: self.empty_ns,
            auto_dedup: self.auto_dedup,
        })
    }
}

#[derive(Args, Debug)]
struct CheckpointArgs {
    #[command(flatten)]
    criu: CriuArgs,
    /// Directory of a previous (pre-)dump, relative to the image path or absolute
    #[arg(long = "parent-path")]
    parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint
    #[arg(long = "leave-running")]
    leave_running: bool,
    /// Dump the memory only, to make a later dump (--parent-path) faster
    #[arg(long = "pre-dump")]
    pre_dump: bool,
    id: String,
}

#[derive(Args, Debug)]
struct RestoreArgs {
    #[command(flatten)]
    criu: CriuArgs,
    /// Path to the bundle directory
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Return once the container is restored instead of waiting for it
    #[arg(short, long)]
    detach: bool,
    /// File to write the restored init's pid to
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Do not become the subreaper of the restored processes
    #[arg(long = "no-subreaper")]
    no_subreaper: bool,
    /// AF_UNIX socket to receive the restored terminal's master (terminal containers)
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Accepted as runc accepts it: CRIU, not a pivot_root of nucleus, sets the restored root
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// LSM profile for the restored processes, TYPE:NAME (apparmor:P, selinux:LABEL)
    #[arg(long = "lsm-profile")]
    lsm_profile: Option<String>,
    /// SELinux mount context for the restored mounts
    #[arg(long = "lsm-mount-context")]
    lsm_mount_context: Option<String>,
    id: String,
}

#[derive(Parser, Debug)]
#[command(
    name = "nucleus",
    about = "An OCI runtime, a drop-in replacement for runc",
    disable_version_flag = true,
    // runc (Go's flag parsing) takes a repeated flag, the last one winning: callers that
    // add their own global flags to a configured set rely on it.
    args_override_self = true
)]
struct Cli {
    #[command(flatten)]
    global: Globals,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

// The flags before the verb (and, being global, after it too). Not a doc comment: on a
// flattened struct it would become the command's about text.
#[derive(Args, Debug)]
struct Globals {
    /// Root directory for container state [default: /run/nucleus; for a non-root user
    /// (or root of a user namespace) with XDG_RUNTIME_DIR set, $XDG_RUNTIME_DIR/nucleus]
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Log file (default: stderr)
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Enable debug logging
    #[arg(long, global = true)]
    debug: bool,
    /// Use the systemd cgroup driver
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Rootless cgroup management: cgroups the user may not use are left out [default: auto,
    /// true when not run by root]
    #[arg(long, global = true, value_name = "true|false|auto", num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Print version information
    #[arg(short = 'v', long = "version")]
    version: bool,
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// Path to the bundle directory
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// File to write the container init's pid to
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is true
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Do not use pivot_root (for ramdisk roots)
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not create a new session keyring (accepted for compatibility)
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass N additional fds (3..3+N) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    id: String,
}

impl CreateArgs {
    fn options(&self, foreground: bool) -> CreateOptions {
        CreateOptions {
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            preserve_fds: self.preserve_fds,
            foreground,
        }
    }
}

#[derive(Args, Debug)]
struct ExecArgs {
    /// Path to a process.json to run
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Unix socket that receives the pty master
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Detach from the process
    #[arg(short, long)]
    detach: bool,
    /// File to write the process's pid to
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE)
    #[arg(short, long)]
    env: Vec<String>,
    /// Working directory inside the container
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// UID[:GID] to run as
    #[arg(short, long)]
    user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Add a capability
    #[arg(short, long)]
    cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Pass N additional fds
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    /// Run in a sub-cgroup (accepted; the process joins the container cgroup)
    #[arg(long)]
    cgroup: Vec<String>,
    /// Exec even if the container is paused
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    /// Set the AppArmor profile for the process
    #[arg(long = "apparmor")]
    apparmor: Option<String>,
    /// Set the SELinux label for the process
    #[arg(long = "process-label")]
    process_label: Option<String>,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Args, Debug)]
struct UpdateArgs {
    /// Path to a file with the resources to update (OCI LinuxResources JSON), or '-' for
    /// standard input; all other options are then ignored
    #[arg(short, long)]
    resources: Option<PathBuf>,
    /// Per cgroup block IO weight, from 10 to 1000
    #[arg(long = "blkio-weight", allow_hyphen_values = true)]
    blkio_weight: Option<String>,
    /// CPU CFS period (usecs) for hardcapping; 0 to use the system default
    #[arg(long = "cpu-period", allow_hyphen_values = true)]
    cpu_period: Option<String>,
    /// CPU CFS hardcap limit (usecs): allowed cpu time in a given period
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    cpu_quota: Option<String>,
    /// CPU shares (relative weight vs. other containers)
    #[arg(
        long = "cpu-share",
        visible_alias = "cpu-shares",
        allow_hyphen_values = true
    )]
    cpu_share: Option<String>,
    /// CPU realtime period (usecs) for hardcapping; 0 to use the system default
    #[arg(long = "cpu-rt-period", allow_hyphen_values = true)]
    cpu_rt_period: Option<String>,
    /// CPU realtime hardcap limit (usecs): allowed cpu time in a given period
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    cpu_rt_runtime: Option<String>,
    /// CPU(s) to use
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory node(s) to use
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Kernel memory limit (ignored, as in runc)
    #[arg(long = "kernel-memory", allow_hyphen_values = true)]
    kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit (ignored, as in runc)
    #[arg(long = "kernel-memory-tcp", allow_hyphen_values = true)]
    kernel_memory_tcp: Option<String>,
    /// Memory limit (bytes, or with a unit: 64m, 1g); -1 for unlimited
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory reservation or soft limit (bytes, or with a unit)
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Total memory usage (memory + swap); -1 for unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Maximum number of pids in the container; -1 for unlimited
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<String>,
    /// Intel RDT/CAT L3 cache schema
    #[arg(long = "l3-cache-schema")]
    l3_cache_schema: Option<String>,
    /// Intel RDT/MBA memory bandwidth schema
    #[arg(long = "mem-bw-schema")]
    mem_bw_schema: Option<String>,
    id: String,
}

impl UpdateArgs {
    fn options(self) -> container::UpdateOptions {
        container::UpdateOptions {
            id: self.id,
            resources: self.resources,
            memory: self.memory,
            memory_swap: self.memory_swap,
            memory_reservation: self.memory_reservation,
            kernel_memory: self.kernel_memory,
            kernel_memory_tcp: self.kernel_memory_tcp,
            cpu_shares: self.cpu_share,
            cpu_quota: self.cpu_quota,
            cpu_period: self.cpu_period,
            cpu_rt_runtime: self.cpu_rt_runtime,
            cpu_rt_period: self.cpu_rt_period,
            cpuset_cpus: self.cpuset_cpus,
            cpuset_mems: self.cpuset_mems,
            pids_limit: self.pids_limit,
            blkio_weight: self.blkio_weight,
            l3_cache_schema: self.l3_cache_schema,
            mem_bw_schema: self.mem_bw_schema,
        }
    }
}

// The verbs' own flags, each a struct so that `parse` can define one verb alone (none has a
// doc comment: it would replace the verb's about text).
#[derive(Args, Debug)]
struct IdArgs {
    id: String,
}

#[derive(Args, Debug)]
struct KillArgs {
    /// Signal every process in the container
    #[arg(short, long)]
    all: bool,
    id: String,
    #[arg(default_value = "SIGTERM")]
    signal: String,
}

#[derive(Args, Debug)]
struct DeleteArgs {
    /// Kill the container first if it is running
    #[arg(short, long)]
    force: bool,
    id: String,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    create: CreateArgs,
    /// Detach from the container's process
    #[arg(short, long)]
    detach: bool,
    /// Accepted for compatibility
    #[arg(long = "keep")]
    keep: bool,
}

/// The command line. clap builds the definition of every verb (and copies the global flags
/// into each) before it parses: ~0.6 M instructions, most of a short command's own work,
/// paid at each start of the runtime. The verbs of a container's lifecycle are first parsed
/// against a command that defines that verb alone (found in argv as the re-exec does); when
/// that parse succeeds the full one would give the same result (the same definitions, with
/// fewer alternatives), and anything else (help, a usage error, another verb) goes through
/// the full command, so every message and exit status stays the full parser's.
/// A usage error, help or version comes back as clap's error for the caller to print: clap's
/// own exit would skip [`main`]'s reaping of the protected copy's closer, which then
/// outlives the command.
fn parse() -> Result<Cli, clap::Error> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match parse_one_verb(&args) {
        Some(cli) => Ok(cli),
        None => Cli::try_parse_from(args),
    }
}

/// The command line parsed against a command that defines only its verb, if it is one of the
/// lifecycle's and the parse succeeds (see [`parse`]).
fn parse_one_verb(args: &[std::ffi::OsString]) -> Option<Cli> {
    let one = match verb(args.iter().skip(1).cloned()).as_deref() {
        Some("create") => CreateArgs::augment_args(clap::Command::new("create")),
        Some("run") => RunArgs::augment_args(clap::Command::new("run")),
        Some("exec") => ExecArgs::augment_args(clap::Command::new("exec")),
        Some("start") => IdArgs::augment_args(clap::Command::new("start")),
        Some("state") => IdArgs::augment_args(clap::Command::new("state")),
        Some("kill") => KillArgs::augment_args(clap::Command::new("kill")),
        Some("delete") => DeleteArgs::augment_args(clap::Command::new("delete")),
        _ => return None,
    };
    let top = Globals::augment_args(clap::Command::new("nucleus"))
        .disable_version_flag(true)
        .args_override_self(true)
        .subcommand(one);
    let matches = top.try_get_matches_from(args).ok()?;
    Cli::from_arg_matches(&matches).ok()
}

#[derive(Subcommand, Debug)]
enum SeccompCmd {
    /// Turn a trace (NDJSON from run.nucleus.seccomp.mode=trace) into a minimal OCI profile
    Generate { trace: PathBuf },
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a container (its process waits for `start`)
    Create(CreateArgs),
    /// Start the process of a created container
    Start(IdArgs),
    /// Print the state of a container as JSON
    State(IdArgs),
    /// Send a signal to the container init (default SIGTERM)
    Kill(KillArgs),
    /// Delete a container and everything it holds
    Delete(DeleteArgs),
    /// Create and start a container
    Run(RunArgs),
    /// List containers
    List {
        /// table or json
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Print only the ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// Run a new process inside a running container
    Exec(Box<ExecArgs>),
    /// Suspend all processes of the container (freezer)
    Pause { id: String },
    /// Resume the processes of a paused container
    Resume { id: String },
    /// Update the resource limits of a running container
    Update(Box<UpdateArgs>),
    /// Print container events (stats, OOM kills) as JSON lines
    Events {
        /// Print the container's stats once and exit
        #[arg(long)]
        stats: bool,
        /// Stats collection interval (Go duration: 5s, 500ms, 1m)
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// List the processes running inside a container
    Ps {
        /// table or json
        #[arg(short, long, default_value = "table")]
        format: String,
        /// The container id, then options for the host ps (default -ef). As in runc,
        /// everything after the id goes to ps, flags included.
        #[arg(
            value_name = "ID [PS_ARGS]",
            required = true,
            num_args = 1..,
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        args: Vec<String>,
    },
    /// Checkpoint a running container with CRIU
    Checkpoint(CheckpointArgs),
    /// Restore a container from a CRIU checkpoint
    Restore(RestoreArgs),
    /// Print the features this runtime supports as JSON
    Features,
    /// Seccomp tools
    #[command(subcommand)]
    Seccomp(SeccompCmd),
    /// Write a default config.json into the bundle
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
}

fn version_text() -> String {
    format!(
        "nucleus version {}\ncommit: {}\nspec: {}\nseccomp: built-in compiler\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("NUCLEUS_COMMIT").unwrap_or("unknown"),
        OCI_VERSION
    )
}

/// The process's entry, called by the C library's start-up. Without std's own (`lang_start`),
/// each start of the runtime (one per command, two where the protection of the binary has
/// to re-execute it: see sealed_exe) skips
/// what nucleus does not need: reading /proc/self/maps for the main thread's stack guard,
/// a signal stack and SIGSEGV/SIGBUS handlers for a stack-overflow message (an overflow
/// still kills the process with SIGSEGV), and their teardown at exit: 17 syscalls a start.
/// What nucleus relies on is in [`start_up`]. Arguments still come from
/// `std::env::args_os` (on glibc, std takes them from its `.init_array` hook, not from
/// `lang_start`); panics still print and abort (`panic = "abort"`).
#[cfg_attr(not(test), no_mangle)]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    start_up();
    let code = command();
    // No process of this command outlives it (see sealed_exe::reap_helper).
    nucleus::process::sealed_exe::reap_helper();
    // std flushed stdout as `main` returned; the C library's exit does not know Rust's buffer.
    let _ = std::io::stdout().lock().flush();
    libc::c_int::from(code)
}

/// What std's start-up gave the runtime and it still needs:
/// - fds 0, 1 and 2 open: a closed one is opened on /dev/null, so no file the runtime opens
///   later (a state file, a container's pipe) becomes a standard stream by accident;
/// - SIGPIPE ignored: a write to a closed pipe is an EPIPE error, not death. The verbs that
///   only print take the default back (`command`), and `process::setup` resets every
///   ignored signal before a container process's execve.
fn start_up() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll on a live array of three pollfds; a zero timeout only reports.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    for p in &fds {
        let closed = if r < 0 {
            // SAFETY: fcntl with an integer command on an fd number.
            let r = unsafe { libc::fcntl(p.fd, libc::F_GETFD) };
            r < 0 && nix::errno::Errno::last() == nix::errno::Errno::EBADF
        } else {
            p.revents & libc::POLLNVAL != 0
        };
        // Not close-on-exec: it stands for a standard stream, which children inherit. The
        // lowest free number is the closed one.
        // SAFETY: a NUL-terminated path; the fd is left open on purpose.
        if closed && unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) } != p.fd {
            // As std does: a process whose standard streams cannot be made safe stops.
            std::process::abort();
        }
    }
    // SAFETY: setting one signal's disposition to ignore; no handler is involved.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

fn command() -> u8 {
    // Verbs that put processes into a container run from a copy of the binary nobody can
    // write (moving onto a read-only copy of it if needed), before any other work.
    let sealed = if enters_container(std::env::args_os().skip(1)) {
        Some(nucleus::process::sealed_exe::ensure())
    } else {
        None
    };
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout, usage errors to stderr, as clap's exit does.
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(1);
        }
    };
    if matches!(
        cli.cmd,
        Some(
            Cmd::State(_) | Cmd::List { .. } | Cmd::Ps { .. } | Cmd::Features | Cmd::Events { .. }
        )
    ) {
        // A verb that only prints ends quietly when its reader goes away (`nucleus list |
        // head`), as runc does, instead of panicking on the EPIPE Rust's default turns it into.
        // SAFETY: resetting one signal's disposition to its default; no handler is involved.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let format: Format = match cli.global.log_format.parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    // Before the log file is opened: it would otherwise fill a hole in the preserved
    // range and reach the container.
    let preserved = match &cli.cmd {
        Some(Cmd::Create(a)) | Some(Cmd::Run(RunArgs { create: a, .. })) => a.preserve_fds,
        Some(Cmd::Exec(a)) => a.preserve_fds,
        _ => 0,
    };
    let fds = container::check_preserved_fds(preserved);
    if let Err(e) = logger::init(cli.global.log.as_deref(), format, cli.global.debug) {
        eprintln!("{e}");
        return 1;
    }
    // The argv look is only a shortcut: what clap parsed decides.
    let sealed = match (&cli.cmd, sealed) {
        (Some(Cmd::Create(_) | Cmd::Run(_) | Cmd::Exec(_)), None) => {
            Some(nucleus::process::sealed_exe::ensure())
        }
        (_, s) => s,
    };
    if let Some(Err(e)) = sealed {
        report(&e.into());
        return 1;
    }
    if let Err(e) = fds {
        report(&anyhow::Error::from(e));
        // runc exits 255 when exec's process could not be started.
        return if matches!(cli.cmd, Some(Cmd::Exec(_))) {
            255
        } else {
            1
        };
    }
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            1
        }
    }
}

/// Whether the verb (the first word after the global flags) is one that starts processes
/// inside a container. A cheap look at argv, so the move onto the protected copy (or a
/// re-exec) happens before clap runs.
fn enters_container(args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    matches!(verb(args).as_deref(), Some("create" | "run" | "exec"))
}

/// The first word after the global flags (what clap will take for the verb, unless the
/// command line is malformed).
fn verb(args: impl Iterator<Item = std::ffi::OsString>) -> Option<String> {
    const FLAGS_WITH_VALUE: [&str; 3] = ["--root", "--log", "--log-format"];
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        let a = a.into_string().ok()?;
        let optional_value = a == "--rootless"
            && args
                .peek()
                .is_some_and(|v| v == "true" || v == "false" || v == "auto");
        if FLAGS_WITH_VALUE.contains(&a.as_str()) || optional_value {
            args.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// Log a failure as runc does: an error line in the log, and the bare message on stderr
/// too when the log goes to a file.
fn report(e: &anyhow::Error) {
    let msg = nucleus::spec::clip_message(&one_line(e));
    logger::log(logger::Level::Error, &msg);
    if logger::has_file() {
        let _ = writeln!(std::io::stderr(), "{msg}");
    }
}

/// The error and its causes on one line, each cause once: library errors already name
/// their source in their own message.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

/// runc's rule for the state root: `$XDG_RUNTIME_DIR/nucleus` for a non-root user who has
/// a runtime directory (root's /run is not theirs to write), and for root of a user namespace
/// (rootless Podman's) unless `$USER` says root; else /run/nucleus.
fn default_root() -> PathBuf {
    let honor_xdg = !nix::unistd::geteuid().is_root()
        || (in_user_namespace() && std::env::var("USER").map_or(true, |u| u != "root"));
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(x) if !x.is_empty() && honor_xdg => PathBuf::from(x).join("nucleus"),
        _ => PathBuf::from(DEFAULT_ROOT),
    }
}

/// runc's `--rootless` (true, false or auto, the default): whether cgroups are managed as
/// for an unprivileged user (those the user may not use are left out). Auto: when not run
/// by root, or run by root of a user namespace (which may not own the host's cgroups).
fn rootless_cgroups(flag: Option<&str>) -> Result<bool> {
    match flag {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        None | Some("auto") => Ok(!nix::unistd::geteuid().is_root() || in_user_namespace()),
        Some(other) => {
            anyhow::bail!("invalid --rootless value {other:?}: want true, false or auto")
        }
    }
}

/// Whether this process runs in a user namespace other than the initial one (whose
/// uid_map maps every id onto itself).
/// Read once: the state root and `--rootless` both ask.
fn in_user_namespace() -> bool {
    static IN_USERNS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN_USERNS.get_or_init(|| {
        // One read: procfs returns every line that fits, and the identity map is one short
        // line (what does not fit is no identity map).
        let mut buf = [0u8; 256];
        std::fs::File::open("/proc/self/uid_map")
            .and_then(|mut f| std::io::Read::read(&mut f, &mut buf))
            .is_ok_and(|n| {
                let m = String::from_utf8_lossy(&buf[..n]);
                m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"]
            })
    })
}

fn dispatch(cli: Cli) -> Result<u8> {
    if cli.global.version {
        print!("{}", version_text());
        return Ok(0);
    }
    let Some(cmd) = cli.cmd else {
        anyhow::bail!("no command given; see nucleus --help");
    };
    let rt = Runtime {
        root: Root::new(cli.global.root.unwrap_or_else(default_root)),
        systemd_cgroup: cli.global.systemd_cgroup,
        rootless_cgroups: rootless_cgroups(cli.global.rootless.as_deref())?,
    };
    match cmd {
        Cmd::Create(a) => {
            container::create(&rt, &a.options(false))?;
        }
        Cmd::Start(IdArgs { id }) => container::start(&rt, &id)?,
        Cmd::State(IdArgs { id }) => {
            // As runc: the JSON without a newline after it.
            let mut out = std::io::stdout().lock();
            out.write_all(container::state_json(&rt, &id)?.as_bytes())?;
            out.flush()?;
        }
        Cmd::Kill(KillArgs { all, id, signal }) => {
            let sig = container::parse_signal(&signal)?;
            container::kill(&rt, &id, sig, all)?;
        }
        Cmd::Delete(DeleteArgs { force, id }) => container::delete(&rt, &id, force)?,
        Cmd::Run(RunArgs { create, detach, .. }) => {
            let code = container::run(&rt, &create.options(!detach), detach)?;
            return Ok(code.clamp(0, 255) as u8);
        }
        Cmd::List { format, quiet } => print_list(&rt, &format, quiet)?,
        Cmd::Exec(a) => {
            let o = container::ExecOptions {
                id: a.id,
                process_file: a.process,
                args: a.args,
                tty: a.tty,
                console_socket: a.console_socket,
                detach: a.detach,
                pid_file: a.pid_file,
                env: a.env,
                cwd: a.cwd,
                user: a.user,
                additional_gids: a.additional_gids,
                caps: a.cap,
                no_new_privs: a.no_new_privs,
                preserve_fds: a.preserve_fds,
                ignore_paused: a.ignore_paused,
                apparmor: a.apparmor,
                process_label: a.process_label,
            };
            // runc exits 255 when the process could not be started.
            return match container::exec(&rt, &o) {
                Ok(code) => Ok(code.clamp(0, 255) as u8),
                Err(e) => {
                    report(&anyhow::Error::from(e));
                    Ok(255)
                }
            };
        }
        Cmd::Pause { id } => container::pause(&rt, &id)?,
        Cmd::Resume { id } => container::resume(&rt, &id)?,
        Cmd::Update(a) => {
            container::update(&rt, &a.options())?;
        }
        Cmd::Events {
            stats,
            interval,
            id,
        } => {
            let o = container::EventsOptions {
                id,
                stats,
                interval: container::parse_duration(&interval)?,
            };
            container::events(&rt, &o, &mut std::io::stdout().lock())?;
        }
        Cmd::Ps { format, args } => {
            let format: container::PsFormat = format.parse()?;
            let (id, ps_args) = args.split_first().context("ps: missing container id")?;
            // `--` is how the issue spells the separation; runc would pass it on to ps.
            let ps_args = ps_args.strip_prefix(&["--".to_string()]).unwrap_or(ps_args);
            container::ps(&rt, id, format, ps_args, &mut std::io::stdout().lock())?;
        }
        Cmd::Checkpoint(a) => {
            let o = container::CheckpointOptions {
                id: a.id,
                criu: a.criu.options()?,
                parent_path: a.parent_path,
                leave_running: a.leave_running,
                pre_dump: a.pre_dump,
            };
            container::checkpoint(&rt, &o)?;
        }
        Cmd::Restore(a) => {
            let o = container::RestoreOptions {
                id: a.id,
                bundle: a.bundle,
                criu: a.criu.options()?,
                detach: a.detach,
                pid_file: a.pid_file,
                no_subreaper: a.no_subreaper,
                console_socket: a.console_socket,
                lsm_profile: a.lsm_profile,
                lsm_mount_context: a.lsm_mount_context,
            };
            let _ = a.no_pivot;
            let code = container::restore(&rt, &o)?;
            return Ok(code.clamp(0, 255) as u8);
        }
        Cmd::Features => println!("{}", nucleus::features::json()),
        Cmd::Seccomp(SeccompCmd::Generate { trace }) => {
            let text = std::fs::read_to_string(&trace)
                .with_context(|| format!("read trace {}", trace.display()))?;
            let profile = nucleus::seccomp::generate_profile(&text)?;
            println!("{}", serde_json::to_string_pretty(&profile)?);
        }
        // `spec --rootless` (runc's flag of `spec`) reaches us as the global flag.
        Cmd::Spec { bundle } => {
            nucleus::spec::write_default(&bundle, cli.global.rootless.as_deref() == Some("true"))?
        }
    }
    Ok(0)
}

fn print_list(rt: &Runtime, format: &str, quiet: bool) -> Result<()> {
    let entries = container::list(rt, format == "json" && !quiet)?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for e in &entries {
            writeln!(out, "{}", e.id)?;
        }
        return Ok(());
    }
    match format {
        // runc's: `null` for no containers.
        "json" if entries.is_empty() => writeln!(out, "null")?,
        "json" => writeln!(
            out,
            "{}",
            serde_json::to_string(&entries).context("encode list")?
        )?,
        "table" => {
            let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"];
            let rows: Vec<[String; 6]> = entries
                .iter()
                .map(|e| {
                    [
                        e.id.clone(),
                        e.pid.to_string(),
                        e.status.clone(),
                        e.bundle.clone(),
                        e.created.clone(),
                        if e.owner.is_empty() {
                            "root".into()
                        } else {
                            e.owner.clone()
                        },
                    ]
                })
                .collect();
            // runc's tabwriter: columns at least 12 wide, 3 spaces of padding.
            let mut widths = header.map(|h| h.len());
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.len());
                }
            }
            let line = |cells: Vec<&str>| {
                let mut s = String::new();
                for (i, c) in cells.iter().enumerate() {
                    if i + 1 == cells.len() {
                        s.push_str(c);
                    } else {
                        let w = (widths[i] + 3).max(12);
                        s.push_str(&format!("{c:<w$}"));
                    }
                }
                s
            };
            writeln!(out, "{}", line(header.to_vec()))?;
            for r in &rows {
                writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
            }
        }
        other => anyhow::bail!("invalid format option {other:?}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{enters_container, parse_one_verb, Cli};
    use clap::{CommandFactory, Parser};

    fn argv(line: &str) -> Vec<std::ffi::OsString> {
        std::iter::once("nucleus")
            .chain(line.split_whitespace())
            .map(std::ffi::OsString::from)
            .collect()
    }

    #[test]
    fn the_full_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_lifecycle_verb_parsed_alone_gives_what_the_full_parser_gives() {
        for line in [
            "create c",
            "--root /r --log l --log-format json --debug create -b /b --pid-file p --console-socket s --no-pivot --no-new-keyring --preserve-fds 2 c",
            "run -d --keep --bundle /b c",
            "--root /a --root /b run c --root /c",
            "--systemd-cgroup --rootless false run --detach c",
            "exec -t -d -e A=B --env C=D --cwd / -u 0:0 -g 1 -g 2 --cap CAP_KILL -p p.json c sh -c 'x'",
            "exec c true -- --not-a-flag",
            "--debug exec --preserve-fds 1 --pid-file p c ls -l",
            "start c",
            "state c",
            "state --root /r c",
            "kill c",
            "kill -a c 9",
            "kill --all c SIGKILL",
            "delete c",
            "delete -f c",
            "--rootless true delete --force c",
        ] {
            let args = argv(line);
            let one = parse_one_verb(&args).unwrap_or_else(|| panic!("{line}: not parsed alone"));
            let full = Cli::try_parse_from(&args).unwrap();
            assert_eq!(format!("{one:?}"), format!("{full:?}"), "{line}");
        }
    }

    #[test]
    fn anything_else_is_left_to_the_full_parser() {
        for line in [
            "",
            "--version",
            "--help",
            "help run",
            "run --help",
            "run",
            "run a b",
            "state",
            "kill c SIGKILL extra",
            "run --bogus c",
            "--root",
            "list",
            "ps c",
            "features",
            "checkpoint c",
            "frobnicate c",
            // clap takes `delete` for the value of --rootless: an error, the full parser's.
            "--rootless delete --force c",
        ] {
            assert!(parse_one_verb(&argv(line)).is_none(), "{line:?}");
        }
    }

    fn verb(args: &[&str]) -> bool {
        enters_container(args.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn the_verbs_that_enter_a_container_are_found_after_global_flags() {
        assert!(verb(&["create", "x"]));
        assert!(verb(&[
            "--root",
            "/r",
            "--log",
            "l.json",
            "--log-format",
            "json",
            "run",
            "x"
        ]));
        assert!(verb(&["--debug", "--root=/r", "exec", "x", "sh"]));
        assert!(verb(&["--systemd-cgroup", "--rootless", "create", "x"]));
        assert!(verb(&["--rootless", "false", "run", "x"]));
        assert!(!verb(&["--rootless", "true", "state", "x"]));
        assert!(!verb(&["--root", "create", "state", "x"]));
        assert!(!verb(&["state", "create"]));
        assert!(!verb(&["--version"]));
        assert!(!verb(&[]));
    }
}

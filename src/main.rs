//! The `nucleus` command line: runc-compatible verbs and global flags over the library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

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
    #[command(subcommand)]
    cmd: Option<Cmd>,
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
    Start { id: String },
    /// Print the state of a container as JSON
    State { id: String },
    /// Send a signal to the container init (default SIGTERM)
    Kill {
        /// Signal every process in the container
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container and everything it holds
    Delete {
        /// Kill the container first if it is running
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create and start a container
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Detach from the container's process
        #[arg(short, long)]
        detach: bool,
        /// Accepted for compatibility
        #[arg(long = "keep")]
        keep: bool,
    },
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

fn main() -> ExitCode {
    let code = command();
    // No process of this command outlives it (see sealed_exe::reap_helper).
    nucleus::process::sealed_exe::reap_helper();
    code
}

fn command() -> ExitCode {
    // Verbs that put processes into a container run from a copy of the binary nobody can
    // write (re-executing once if needed), before any other work.
    let sealed = if enters_container(std::env::args_os().skip(1)) {
        Some(nucleus::process::sealed_exe::ensure())
    } else {
        None
    };
    let cli = Cli::parse();
    if matches!(
        cli.cmd,
        Some(
            Cmd::State { .. }
                | Cmd::List { .. }
                | Cmd::Ps { .. }
                | Cmd::Features
                | Cmd::Events { .. }
        )
    ) {
        // A verb that only prints ends quietly when its reader goes away (`nucleus list |
        // head`), as runc does, instead of panicking on the EPIPE Rust's default turns it into.
        // SAFETY: resetting one signal's disposition to its default; no handler is involved.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let format: Format = match cli.log_format.parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    // Before the log file is opened: it would otherwise fill a hole in the preserved
    // range and reach the container.
    let preserved = match &cli.cmd {
        Some(Cmd::Create(a)) | Some(Cmd::Run { create: a, .. }) => a.preserve_fds,
        Some(Cmd::Exec(a)) => a.preserve_fds,
        _ => 0,
    };
    let fds = container::check_preserved_fds(preserved);
    if let Err(e) = logger::init(cli.log.as_deref(), format, cli.debug) {
        eprintln!("{e}");
        return ExitCode::from(1);
    }
    // The argv look is only a shortcut: what clap parsed decides.
    let sealed = match (&cli.cmd, sealed) {
        (Some(Cmd::Create(_) | Cmd::Run { .. } | Cmd::Exec(_)), None) => {
            Some(nucleus::process::sealed_exe::ensure())
        }
        (_, s) => s,
    };
    if let Some(Err(e)) = sealed {
        report(&e.into());
        return ExitCode::from(1);
    }
    if let Err(e) = fds {
        report(&anyhow::Error::from(e));
        // runc exits 255 when exec's process could not be started.
        return ExitCode::from(if matches!(cli.cmd, Some(Cmd::Exec(_))) {
            255
        } else {
            1
        });
    }
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report(&e);
            ExitCode::from(1)
        }
    }
}

/// Whether the verb (the first word after the global flags) is one that starts processes
/// inside a container. A cheap look at argv, so the re-exec happens before clap runs.
fn enters_container(mut args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    const FLAGS_WITH_VALUE: [&str; 3] = ["--root", "--log", "--log-format"];
    while let Some(a) = args.next() {
        let Some(a) = a.to_str() else { return false };
        if FLAGS_WITH_VALUE.contains(&a) {
            args.next();
        } else if !a.starts_with('-') {
            return matches!(a, "create" | "run" | "exec");
        }
    }
    false
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
fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
}

fn dispatch(cli: Cli) -> Result<u8> {
    if cli.version {
        print!("{}", version_text());
        return Ok(0);
    }
    let Some(cmd) = cli.cmd else {
        anyhow::bail!("no command given; see nucleus --help");
    };
    let rt = Runtime {
        root: Root::new(cli.root.unwrap_or_else(default_root)),
        systemd_cgroup: cli.systemd_cgroup,
        rootless_cgroups: rootless_cgroups(cli.rootless.as_deref())?,
    };
    match cmd {
        Cmd::Create(a) => {
            container::create(&rt, &a.options(false))?;
        }
        Cmd::Start { id } => container::start(&rt, &id)?,
        Cmd::State { id } => {
            // As runc: the JSON without a newline after it.
            let mut out = std::io::stdout().lock();
            out.write_all(container::state_json(&rt, &id)?.as_bytes())?;
            out.flush()?;
        }
        Cmd::Kill { all, id, signal } => {
            let sig = container::parse_signal(&signal)?;
            container::kill(&rt, &id, sig, all)?;
        }
        Cmd::Delete { force, id } => container::delete(&rt, &id, force)?,
        Cmd::Run { create, detach, .. } => {
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
            nucleus::spec::write_default(&bundle, cli.rootless.as_deref() == Some("true"))?
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
    use super::enters_container;

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
        assert!(!verb(&["--root", "create", "state", "x"]));
        assert!(!verb(&["state", "create"]));
        assert!(!verb(&["--version"]));
        assert!(!verb(&[]));
    }
}

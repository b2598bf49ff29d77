//! `checkpoint` and `restore` through CRIU's command line (Debian's `criu`), with runc's
//! flags: the container's bind mounts are described to CRIU as external mounts (recorded by
//! their destination, bound again from the new bundle's sources on restore), its cgroup is
//! CRIU's cgroup root, and the rootfs is bound to a directory of the container's state for
//! CRIU to restore the mount namespace into.

use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{create::write_pid_file, delete, ContainerError, Runtime};
use crate::cgroups::Cgroup;
use crate::spec;
use crate::state::{self, ContainerState, CreatingRecord, Status};

/// How CRIU treats the container's cgroups (`--manage-cgroups-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgroupsMode {
    #[default]
    Soft,
    Full,
    Strict,
    Ignore,
}

impl std::str::FromStr for CgroupsMode {
    type Err = ContainerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "soft" => Ok(CgroupsMode::Soft),
            "full" => Ok(CgroupsMode::Full),
            "strict" => Ok(CgroupsMode::Strict),
            "ignore" => Ok(CgroupsMode::Ignore),
            _ => Err(ContainerError::Other(format!(
                "invalid --manage-cgroups-mode {s:?}: want soft, full, strict or ignore"
            ))),
        }
    }
}

impl CgroupsMode {
    fn arg(self) -> &'static str {
        match self {
            CgroupsMode::Soft => "--manage-cgroups=soft",
            CgroupsMode::Full => "--manage-cgroups=full",
            CgroupsMode::Strict => "--manage-cgroups=strict",
            CgroupsMode::Ignore => "--manage-cgroups=ignore",
        }
    }
}

/// What both `checkpoint` and `restore` pass to CRIU.
#[derive(Debug, Clone, Default)]
pub struct CriuOptions {
    pub image_path: PathBuf,
    /// CRIU's work directory (logs); the image directory when not given.
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: CgroupsMode,
    /// Namespaces CRIU makes empty instead of restoring (runc: `network`).
    pub empty_ns: Vec<String>,
    pub auto_dedup: bool,
}

#[derive(Debug, Clone, Default)]
pub struct CheckpointOptions {
    pub id: String,
    pub criu: CriuOptions,
    /// A pre-dump's image directory, relative to the image directory or absolute.
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub pre_dump: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub criu: CriuOptions,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub no_subreaper: bool,
    /// Where a terminal container's restored pty master would go (refused: see `restore`).
    pub console_socket: Option<PathBuf>,
    /// CRIU's --lsm-profile (TYPE:NAME) for the restored processes.
    pub lsm_profile: Option<String>,
    /// CRIU's --lsm-mount-context for the restored mounts.
    pub lsm_mount_context: Option<String>,
}

/// Whether CRIU, which `checkpoint` and `restore` run, is installed (`features` reports it).
pub fn criu_available() -> bool {
    criu_binary().is_ok()
}

fn criu_binary() -> Result<PathBuf, ContainerError> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/sbin:/usr/bin"));
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("criu"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            ContainerError::Other("criu not found in PATH: install CRIU (package criu)".into())
        })
}

impl CriuOptions {
    fn work_dir(&self) -> &Path {
        self.work_path.as_deref().unwrap_or(&self.image_path)
    }

    /// The flags common to dump and restore.
    fn common_args(&self, log: &str) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![
            "--images-dir".into(),
            self.image_path.clone().into(),
            "--work-dir".into(),
            self.work_dir().into(),
            "--log-file".into(),
            log.into(),
            "-v4".into(),
            self.manage_cgroups_mode.arg().into(),
        ];
        for (on, flag) in [
            (self.tcp_established, "--tcp-established"),
            (self.ext_unix_sk, "--ext-unix-sk"),
            (self.shell_job, "--shell-job"),
            (self.file_locks, "--file-locks"),
            (self.auto_dedup, "--auto-dedup"),
        ] {
            if on {
                a.push(flag.into());
            }
        }
        for ns in &self.empty_ns {
            a.push("--empty-ns".into());
            a.push(ns.into());
        }
        a
    }
}

/// `network` (runc's spelling) is CRIU's `net`; only the network namespace can be left empty.
fn check_empty_ns(names: &mut [String]) -> Result<(), ContainerError> {
    for n in names.iter_mut() {
        match n.as_str() {
            "network" | "net" => *n = "net".into(),
            other => {
                return Err(ContainerError::Other(format!(
                    "invalid --empty-ns {other:?}: only network can be left empty"
                )))
            }
        }
    }
    Ok(())
}

/// The spec's bind mounts: (destination, source resolved against the bundle).
fn bind_mounts(spec: &oci_spec::runtime::Spec, bundle: &Path) -> Vec<(PathBuf, PathBuf)> {
    spec.mounts()
        .iter()
        .flatten()
        .filter(|m| {
            m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind")
        })
        .filter_map(|m| {
            let src = m.source().as_ref()?;
            Some((m.destination().clone(), bundle.join(src)))
        })
        .collect()
}

/// The first error CRIU logged that names a cause (its kernel probes and the closing
/// "FAILED" summaries do not), for the one-line message.
fn criu_error(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("Error (")).collect();
    errors
        .iter()
        .find(|l| !l.contains("criu/tun.c") && !l.contains("FAILED"))
        .or(errors.last())
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| "no error in its log".to_string())
}

/// runc's record of the init's stdio (`descriptors.json` in the image directory): what fds
/// 0-2 were, so that pipes to the old caller can be swapped for the restorer's.
const DESCRIPTORS: &str = "descriptors.json";

fn save_descriptors(pid: i32, images: &Path) -> Result<(), ContainerError> {
    let fds: Vec<String> = (0..3)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let path = images.join(DESCRIPTORS);
    std::fs::write(&path, serde_json::to_vec(&fds).unwrap_or_default())
        .map_err(super::io_err(format!("write {}", path.display())))
}

/// `--inherit-fd` for each of the old init's stdio that was a pipe: the restored process
/// gets the restorer's fd of that number instead.
fn inherit_stdio(images: &Path) -> Result<Vec<OsString>, ContainerError> {
    let path = images.join(DESCRIPTORS);
    let fds: Vec<String> = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| ContainerError::Other(format!("{}: {e}", path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(super::io_err(format!("read {}", path.display()))(e)),
    };
    let mut args = Vec::new();
    for (fd, what) in fds.iter().enumerate().take(3) {
        if what.starts_with("pipe:") {
            args.push("--inherit-fd".into());
            args.push(format!("fd[{fd}]:{what}").into());
        }
    }
    Ok(args)
}

/// Runs CRIU with `args`; its own messages go to its log. A restore gives CRIU the caller's
/// stdio, which `--inherit-fd` hands on to the restored processes; a dump keeps it from them.
/// Nothing is read from CRIU's pipes: restored processes may hold them open.
fn run_criu(args: &[OsString], log: &Path, stdio: bool) -> Result<(), ContainerError> {
    let criu = criu_binary()?;
    let mut cmd = Command::new(&criu);
    cmd.args(args);
    if !stdio {
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
    }
    let status = cmd
        .status()
        .map_err(super::io_err(format!("run {}", criu.display())))?;
    if status.success() {
        return Ok(());
    }
    let verb = args
        .first()
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    Err(ContainerError::Other(format!(
        "criu {verb} failed ({status}): {} (log: {})",
        criu_error(log),
        log.display()
    )))
}

fn make_dir(p: &Path) -> Result<(), ContainerError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(super::io_err(format!("create {}", p.display())))
}

/// `nucleus checkpoint`: dump the running container's process tree into the image
/// directory. Without --leave-running (or --pre-dump) CRIU ends the processes and the
/// container is then deleted, as runc does.
pub fn checkpoint(rt: &Runtime, opts: &CheckpointOptions) -> Result<(), ContainerError> {
    let mut criu = opts.criu.clone();
    check_empty_ns(&mut criu.empty_ns)?;
    let (dir, st, status) = super::open(rt, &opts.id)?;
    if status != Status::Running {
        return Err(ContainerError::WrongState(format!(
            "cannot checkpoint container {} that is not running: {status}",
            opts.id
        )));
    }
    make_dir(&criu.image_path)?;
    make_dir(criu.work_dir())?;
    save_descriptors(st.pid, &criu.image_path)?;
    let log = if opts.pre_dump {
        "pre-dump.log"
    } else {
        "dump.log"
    };
    let mut args: Vec<OsString> = vec![if opts.pre_dump { "pre-dump" } else { "dump" }.into()];
    args.extend(["--tree".into(), st.pid.to_string().into()]);
    args.extend(["--root".into(), st.rootfs.clone().into()]);
    args.extend(criu.common_args(log));
    if let Some(cg) = st.cgroup.as_ref() {
        // CRIU freezes the tree through its cgroup, which new children cannot escape.
        let freezer = cg.path("freezer").or_else(|| cg.unified_dir());
        if let Some(f) = freezer {
            args.extend(["--freeze-cgroup".into(), f.into()]);
        }
    }
    for (dest, _) in bind_mounts(&dir.load_config()?, &st.bundle) {
        let d = dest.to_string_lossy();
        args.extend(["--ext-mount-map".into(), format!("{d}:{d}").into()]);
    }
    if opts.leave_running && !opts.pre_dump {
        args.push("--leave-running".into());
    }
    if opts.pre_dump || opts.parent_path.is_some() {
        args.push("--track-mem".into());
    }
    if let Some(p) = opts.parent_path.as_ref() {
        args.extend(["--prev-images-dir".into(), p.clone().into()]);
    }
    run_criu(&args, &criu.work_dir().join(log), false)?;
    if opts.pre_dump || opts.leave_running {
        return Ok(());
    }
    // CRIU has ended the processes: the container is stopped; remove it.
    delete::destroy(dir, &st, Status::Stopped)
}

/// `nucleus restore`: a new container `id` from the bundle, whose processes CRIU restores
/// from the image directory. With --detach it returns once they run; otherwise it stays
/// with the init, deletes the container when it exits and returns its exit code.
pub fn restore(rt: &Runtime, opts: &RestoreOptions) -> Result<i32, ContainerError> {
    let mut criu = opts.criu.clone();
    check_empty_ns(&mut criu.empty_ns)?;
    state::validate_id(&opts.id)?;
    if !criu.image_path.join("inventory.img").is_file() {
        return Err(ContainerError::Other(format!(
            "no checkpoint in {}: inventory.img not found",
            criu.image_path.display()
        )));
    }
    // As runc: the work directory (CRIU's log) is made when missing.
    make_dir(criu.work_dir())?;
    let bundle = std::fs::canonicalize(&opts.bundle)
        .map_err(super::io_err(format!("bundle {}", opts.bundle.display())))?;
    let mut config = spec::load(&bundle)?;
    spec::validate(&config)?;
    let rootfs = spec::rootfs_path(&config, &bundle)?;
    if let Some(sock) = opts.console_socket.as_deref() {
        return Err(ContainerError::Other(format!(
            "restore --console-socket {} is not supported: CRIU hands the restored pty master \
             only over its RPC socket, which nucleus does not use; restore with --shell-job",
            sock.display()
        )));
    }
    if config
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
        && !criu.shell_job
    {
        return Err(ContainerError::Other(
            "cannot restore a container with process.terminal: only --shell-job restores keep a terminal".into(),
        ));
    }
    if rt.systemd_cgroup {
        Cgroup::check_systemd_annotations(&config.annotations().clone().unwrap_or_default())?;
    }
    let cgroup = Cgroup::new(
        config
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned())
            .as_deref(),
        &opts.id,
        rt.systemd_cgroup,
    )?;
    let forward = if opts.detach {
        None
    } else {
        Some(super::exec::foreground()?)
    };
    if opts.no_subreaper {
        // SAFETY: prctl with constant arguments; affects only this process.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) };
    }
    let record = CreatingRecord {
        cgroup: Some(cgroup.clone()),
        procs: Vec::new(),
        host_rootfs_mount: None,
    };
    let dir = super::create_state_dir(rt, &opts.id, &record)?;
    let annotations = config.annotations().clone().unwrap_or_default();
    let mut st = ContainerState::creating(
        opts.id.clone(),
        bundle.clone(),
        rootfs.clone(),
        &config,
        annotations,
        cgroup,
    );
    let criu_root = dir.state_path().with_file_name("criu-root");
    let lsm = (
        opts.lsm_profile.as_deref(),
        opts.lsm_mount_context.as_deref(),
    );
    let res = restore_into(&st, &config, &criu, &criu_root, lsm);
    // CRIU's mount namespace holds its own copy of the root: ours is no longer needed.
    let _ = umount2(&criu_root, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir(&criu_root);
    let pid = match res {
        Ok(pid) => pid,
        Err(e) => {
            let _ = delete::release(&st, Status::Stopped);
            let _ = dir.remove();
            return Err(e);
        }
    };
    st.pid = pid;
    st.pid_start = state::process_start_time(pid).unwrap_or(0);
    dir.save_config(&mut config)?;
    dir.save_annotations(&st.annotations)?;
    dir.save(&st)?;
    dir.drop_creating()?;
    if let Some(p) = opts.pid_file.as_deref() {
        write_pid_file(p, pid)?;
    }
    let Some(forward) = forward else {
        return Ok(0);
    };
    drop(dir);
    let code = super::exec::wait_forwarding(pid, &forward);
    let (dir, st, status) = super::open(rt, &opts.id)?;
    delete::destroy(dir, &st, status)?;
    Ok(code)
}

/// Make the cgroup, bind the rootfs for CRIU and run `criu restore`; the restored init's pid.
fn restore_into(
    st: &ContainerState,
    config: &oci_spec::runtime::Spec,
    criu: &CriuOptions,
    criu_root: &Path,
    lsm: (Option<&str>, Option<&str>),
) -> Result<i32, ContainerError> {
    let cg = st.cgroup.as_ref().expect("cgroup set at restore");
    let resources = config
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    // systemd makes a scope only around a process: this one, which CRIU (its child) and
    // so the restored processes inherit, as runc places CRIU; it leaves once CRIU is done.
    let own = if cg.systemd_unit().is_some() {
        let own = crate::cgroups::OwnCgroups::current()?;
        cg.setup(nix::unistd::getpid().as_raw(), &resources, &st.annotations)?;
        Some(own)
    } else {
        cg.create()?;
        cg.apply(&resources)?;
        None
    };
    let res = run_restore(st, config, criu, criu_root, cg, lsm);
    if let Some(own) = own {
        own.rejoin()?;
    }
    res
}

fn run_restore(
    st: &ContainerState,
    config: &oci_spec::runtime::Spec,
    criu: &CriuOptions,
    criu_root: &Path,
    cg: &Cgroup,
    lsm: (Option<&str>, Option<&str>),
) -> Result<i32, ContainerError> {
    crate::rootfs::create_restore_mountpoints(config, &st.rootfs, &st.bundle)?;
    make_dir(criu_root)?;
    mount(
        Some(&st.rootfs),
        criu_root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| {
        super::io_err(format!(
            "bind {} to {}",
            st.rootfs.display(),
            criu_root.display()
        ))(e.into())
    })?;
    let pid_file = criu_root.with_file_name("criu.pid");
    let log = "restore.log";
    let mut args: Vec<OsString> = vec!["restore".into()];
    args.extend(["--root".into(), criu_root.into()]);
    args.extend(criu.common_args(log));
    args.extend([
        "--restore-detached".into(),
        "--restore-sibling".into(),
        "--pidfile".into(),
        pid_file.clone().into(),
    ]);
    // The restored processes go to the new container's cgroup, wherever the old one was.
    if let Some(rel) = cg
        .paths()
        .values()
        .next()
        .zip(cg.mounts().values().next())
        .and_then(|(p, m)| p.strip_prefix(m).ok().map(Path::to_path_buf))
    {
        args.extend(["--cgroup-root".into(), Path::new("/").join(rel).into()]);
    }
    if let Some(p) = lsm.0 {
        args.extend(["--lsm-profile".into(), p.into()]);
    }
    if let Some(c) = lsm.1 {
        args.extend(["--lsm-mount-context".into(), c.into()]);
    }
    args.extend(inherit_stdio(&criu.image_path)?);
    for (dest, src) in bind_mounts(config, &st.bundle) {
        args.extend([
            "--ext-mount-map".into(),
            format!("{}:{}", dest.display(), src.display()).into(),
        ]);
    }
    run_criu(&args, &criu.work_dir().join(log), true)?;
    let text = std::fs::read_to_string(&pid_file)
        .map_err(super::io_err(format!("read {}", pid_file.display())))?;
    let _ = std::fs::remove_file(&pid_file);
    text.trim()
        .parse()
        .map_err(|_| ContainerError::Other(format!("criu wrote no pid to {}", pid_file.display())))
}

use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;

use super::{ContainerError, Runtime};
use crate::cgroups::Cgroup;
use crate::hooks;
use crate::process::console;
use crate::process::filter::Filter;
use crate::process::init::InitConfig;
use crate::process::spawn::{self, SpawnRequest};
use crate::spec;
use crate::state::{self, ContainerDir, ContainerState, CreatingRecord, ProcRecord, Status};

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    /// `run` without --detach: a terminal may then be used without a console socket
    /// only if the caller handles it; we require the socket like `create` does.
    pub foreground: bool,
}

/// `nucleus create`: set the container up with its init blocked until `start`. On error
/// nothing is left behind: no state dir, cgroup or process.
pub fn create(rt: &Runtime, opts: &CreateOptions) -> Result<ContainerState, ContainerError> {
    create_with_console(rt, opts, None, None, true).map(|(st, _)| st)
}

/// `create` where the caller (foreground `run`) supplies its own end of a console socket
/// pair when the config asks for a terminal and no `--console-socket` was given. With
/// `commit` the init is told the create completed; without, the init exits if the returned
/// handle is dropped before `start` (`run` keeps it until then). `loaded`: the bundle's
/// config when the caller has read it already (`run`), so it is parsed once.
pub(crate) fn create_with_console(
    rt: &Runtime,
    opts: &CreateOptions,
    loaded: Option<oci_spec::runtime::Spec>,
    own_console: Option<std::os::fd::OwnedFd>,
    commit: bool,
) -> Result<(ContainerState, Option<spawn::Spawned>), ContainerError> {
    // First, before this create opens anything: a preserved range with a hole in it would
    // be filled by the runtime's own fds (the state lock) and handed to the container.
    super::check_preserved_fds(opts.preserve_fds)?;
    state::validate_id(&opts.id)?;
    let bundle = std::fs::canonicalize(&opts.bundle)
        .map_err(super::io_err(format!("bundle {}", opts.bundle.display())))?;
    let mut config = match loaded {
        Some(config) => config,
        None => spec::load(&bundle)?,
    };
    spec::validate(&config)?;
    let rootfs = spec::rootfs_path(&config, &bundle)?;
    hooks::validate(&config)?;
    let mut annotations = config.annotations().clone().unwrap_or_default();
    let landlock = crate::landlock::Plan::prepare(&annotations)?;
    if let Some(p) = &landlock {
        annotations.extend(p.state_annotations());
    }
    // The container's namespaces, worked out once for the filter and the spawn.
    let plan = crate::namespaces::Plan::from_spec(&config);
    let seccomp_prog = Filter::prepare(
        &config,
        config.process().as_ref(),
        &plan,
        &annotations,
        &bundle,
    )?;
    let terminal = config
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let console = console::for_process(terminal, opts.console_socket.as_deref(), own_console)?;
    if rt.systemd_cgroup {
        Cgroup::check_systemd_annotations(&annotations)?;
    }
    let cgroups_path = config
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned());
    let mut cgroup = Cgroup::new(cgroups_path.as_deref(), &opts.id, rt.systemd_cgroup)?;
    if rt.rootless_cgroups {
        rootless_cgroup(&mut cgroup, &config, cgroups_path.is_some())?;
    }
    // Without a mount namespace of its own, the init binds the rootfs in the host's:
    // what is mounted there now tells that bind apart from what was there before.
    let host_rootfs_mount = if crate::rootfs::shares_runtime_mount_ns(&config) {
        let below = crate::rootfs::mount_id(&rootfs).map_err(|e| {
            super::io_err(format!("mount id of rootfs {}", rootfs.display()))(e.into())
        })?;
        Some(state::HostRootfsMount {
            path: rootfs.clone(),
            below,
            ours: None,
        })
    } else {
        None
    };
    let mut record = CreatingRecord {
        cgroup: Some(cgroup.clone()),
        procs: Vec::new(),
        host_rootfs_mount: host_rootfs_mount.clone(),
    };
    let dir = super::create_state_dir(rt, &opts.id, &record)?;
    // The copy of the config the later verbs read (exec, checkpoint, update): written
    // once, before the state file that makes the container exist.
    if let Err(e) = dir.save_config(&mut config) {
        let _ = dir.remove();
        return Err(e.into());
    }
    let mut st = ContainerState {
        host_rootfs_mount,
        landlock,
        ..ContainerState::creating(
            opts.id.clone(),
            bundle.clone(),
            rootfs.clone(),
            &config,
            annotations,
            cgroup,
        )
    };
    match setup(
        &dir,
        &mut st,
        &config,
        &plan,
        &mut record,
        opts,
        console,
        seccomp_prog,
        commit,
    ) {
        Ok(spawned) => Ok((st, spawned)),
        Err(e) => {
            cleanup(dir, &st, &record);
            Err(e)
        }
    }
}

/// runc's rootless cgroup manager: the hierarchies the user may not use are left out (an
/// error only when a limit needs one); device rules are not applied, with a warning when
/// the config has its own. Without a pid namespace of its own and without a cgroup, the
/// container's processes cannot all be found again: runc warns about that too.
fn rootless_cgroup(
    cgroup: &mut Cgroup,
    config: &oci_spec::runtime::Spec,
    explicit_path: bool,
) -> Result<(), ContainerError> {
    let linux = config.linux().as_ref();
    let resources = linux.and_then(|l| l.resources().as_ref());
    let left_out = cgroup.drop_inaccessible(explicit_path, resources)?;
    for p in &left_out {
        crate::debug!(
            "rootless: no permission on cgroup {}, not used",
            p.display()
        );
    }
    if resources
        .and_then(|r| r.devices().as_ref())
        .is_some_and(|d| !d.is_empty())
    {
        crate::warn!(
            "rootless: linux.resources.devices not applied (device cgroup rules need privilege; the user namespace limits device access)"
        );
    }
    let own_pid_ns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none()
            })
        });
    if !left_out.is_empty() && !own_pid_ns {
        crate::warn!(
            "rootless container with no cgroup and no pid namespace of its own: its processes cannot all be found to be killed"
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn setup(
    dir: &ContainerDir,
    st: &mut ContainerState,
    config: &oci_spec::runtime::Spec,
    plan: &crate::namespaces::Plan,
    record: &mut CreatingRecord,
    opts: &CreateOptions,
    console: Option<std::os::fd::OwnedFd>,
    seccomp_prog: Option<Filter>,
    commit: bool,
) -> Result<Option<spawn::Spawned>, ContainerError> {
    let fifo = dir.fifo_path();
    // The owner's alone (the umask can only narrow it): writing it starts the container,
    // and the state root (0711) lets other users reach it by id. The init gets it as an fd.
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600))
        .map_err(|e| super::io_err(format!("mkfifo {}", fifo.display()))(e.into()))?;
    let cg = st.cgroup.as_ref().expect("cgroup set at create");
    // The state the prestart, createRuntime, createContainer and startContainer hooks
    // get: "created", as runtime.md's lifecycle has it from step 3 (the environment is
    // made, the user program has not run); runc says "creating" until start (README).
    let hook_state = |pid: i32, st: &ContainerState| st.hook_json_pid(Status::Created, pid);
    let req = SpawnRequest {
        init: InitConfig {
            spec: config,
            rootfs: &st.rootfs,
            bundle: &st.bundle,
            fifo: open_fifo(&fifo)?,
            no_pivot: opts.no_pivot,
            preserve_fds: opts.preserve_fds,
            console,
            seccomp: seccomp_prog.as_ref(),
            landlock: st.landlock.as_ref(),
        },
        plan,
        cgroup: Some(cg),
        state_lock: Some(dir.lock_fd()),
    };
    let st_ref = &*st;
    let state_for = |pid: i32| String::from_utf8(hook_state(pid, st_ref)).unwrap_or_default();
    // The last process recorded and its start time: the init's, read once for both.
    let last_recorded = std::cell::Cell::new((0, 0));
    let mut record_pid = |pid: i32| {
        // A process already gone needs no undoing.
        if let Some(p) = ProcRecord::of(pid) {
            last_recorded.set((p.pid, p.start));
            record.procs.push(p);
            dir.save_creating(record)
                .map_err(|e| spawn::SpawnError::Record {
                    what: "container process",
                    msg: e.to_string(),
                })?;
        }
        Ok(())
    };
    let spawned = spawn::spawn(
        req,
        state_for,
        |pid| {
            let json = hook_state(pid, st_ref);
            hooks::run_all(config, hooks::Kind::Prestart, &json)
                .and_then(|()| hooks::run_all(config, hooks::Kind::CreateRuntime, &json))
                .map_err(|e| e.to_string())
        },
        &mut record_pid,
    )?;
    let pid = spawned.pid;
    if let Some(m) = st.host_rootfs_mount.as_mut() {
        // The init reported ready: its bind is the topmost mount at the rootfs now.
        m.ours = crate::rootfs::mount_id(&m.path)
            .ok()
            .filter(|&id| id != m.below);
    }
    st.pid = pid;
    if let Some(p) = st.landlock.as_mut() {
        p.record(crate::landlock::take_reported())?;
        st.landlock_ids = p.paths.iter().filter_map(|r| r.id).collect();
    }
    st.pid_start = match last_recorded.get() {
        (p, start) if p == pid => start,
        _ => state::process_start_time(pid).unwrap_or(0),
    };
    if let Some(f) = seccomp_prog.as_ref().and_then(Filter::ready) {
        st.monitor_pid = f.start_monitor(pid, opts.foreground)?;
        if let Some(m) = st.monitor_pid {
            record_pid(m)?;
        }
    }
    // The annotations first: the state file is what makes the container exist.
    dir.save_annotations(&st.annotations)?;
    dir.save(st)?;
    dir.drop_creating()?;
    // The init became the container process up to its execve meanwhile; what failed there
    // fails the create (the caller undoes it), never the container's start. Before the pid
    // file, which names a container only once it exists.
    spawned.prepared()?;
    if let Some(p) = opts.pid_file.as_deref() {
        write_pid_file(p, pid)?;
    }
    if commit {
        // Last: the init wakes for it as we are about to exit anyway.
        spawned.commit()?;
        return Ok(None);
    }
    Ok(Some(spawned))
}

/// Opened read-write, so the open never blocks and the init can block reading it until
/// `start` writes a byte.
fn open_fifo(path: &Path) -> Result<std::fs::File, ContainerError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(super::io_err(format!("open exec fifo {}", path.display())))
}

/// Undo a create that failed part-way; no poststop hooks, as no container came to be.
fn cleanup(dir: ContainerDir, st: &ContainerState, record: &CreatingRecord) {
    let status = if st.pid > 0 {
        Status::Created
    } else {
        Status::Stopped
    };
    if let Err(e) = super::delete::release(st, status) {
        crate::warn!("{e}");
    }
    // Whatever the state did not know of yet (the seccomp monitor, a process that
    // escaped the kill above).
    if let Err(e) = super::delete::release_partial(record) {
        crate::warn!("{e}");
    }
    if let Err(e) = dir.remove() {
        crate::warn!("{e}");
    }
}

/// Digits only, no newline, replaced atomically: what containerd and conmon read.
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<(), ContainerError> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(super::io_err("current dir"))?
            .join(path)
    };
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = abs.with_file_name(format!(".{name}"));
    std::fs::write(&tmp, pid.to_string())
        .map_err(super::io_err(format!("write pid file {}", tmp.display())))?;
    std::fs::rename(&tmp, &abs).map_err(super::io_err(format!("write pid file {}", abs.display())))
}

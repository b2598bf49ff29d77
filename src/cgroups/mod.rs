//! Container cgroups on v1, v2 and hybrid hosts, driven through cgroupfs as runc's `fs`/`fs2`
//! drivers do: directory discovery, creation, joining, resources, freezer, signalling, removal.
//!
//! A [`Cgroup`] is plain data (serialisable into the container's state file) so that later
//! commands can act on the same directories without recomputing them.

mod dbus;
mod devices;
mod devices_bpf;
mod files;
mod hierarchy;
mod oom;
pub mod stats;
mod systemd;
mod v1;
mod v2;
mod validate;

pub use validate::{validate, InvalidResource};

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use files::{read_file, write_file};
pub use hierarchy::clean_cgroups_path;
use hierarchy::{Hierarchies, Mount};
pub use oom::OomWatch;
pub use stats::Stats;
pub use systemd::SystemdError;
use systemd::{Systemd, Unit};

/// Errors of cgroup management. Each names the file, path or field involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("systemd cgroup driver requested but systemd is not running")]
    SystemdNotRunning,
    #[error(
        "cgroupsPath {path:?} is not of the form \"slice:prefix:name\" required by the systemd cgroup driver"
    )]
    SystemdPathFormat { path: String },
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    #[error("cgroupsPath {path:?} uses \"..\" to climb above its cgroup root")]
    PathEscapes { path: String },
    #[error("no cgroup filesystem is mounted (nothing of type cgroup or cgroup2 in /proc/self/mountinfo)")]
    NoCgroupMounts,
    #[error("the devices cgroup controller is not mounted; refusing to run a container without device restrictions")]
    DevicesControllerMissing,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("cannot create cgroup directory {path}: {source}")]
    Mkdir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot remove cgroup directory {path}: {source}")]
    Rmdir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unexpected content {content:?} in {path}")]
    Parse { path: PathBuf, content: String },
    #[error(
        "cannot set {field}: the {controller} cgroup controller is not available on this host"
    )]
    ControllerMissing {
        field: String,
        controller: &'static str,
    },
    #[error("invalid {field} value {value}: {reason}")]
    InvalidResource {
        field: String,
        value: String,
        reason: String,
    },
    #[error("{field} is not supported on cgroup {mode}")]
    Unsupported { field: String, mode: &'static str },
    #[error("no freezer is available for this cgroup (v1 freezer controller not mounted or cgroup.freeze missing in {path})")]
    FreezerUnavailable { path: PathBuf },
    #[error("timed out after {millis} ms waiting for {path} to report {wanted}")]
    FreezeTimeout {
        path: PathBuf,
        wanted: &'static str,
        millis: u128,
    },
    #[error("cannot send {signal} to pid {pid}: {source}")]
    Signal {
        signal: Signal,
        pid: i32,
        source: nix::Error,
    },
    #[error("the cgroup v2 state records no cgroup2 directory (state file damaged?)")]
    NoUnifiedDir,
    #[error("device cgroup BPF program: {op} failed: {source}")]
    Bpf {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("invalid device cgroup rule {rule}: {reason}")]
    DeviceRule { rule: String, reason: String },
    #[error("cannot set {controller} limit ({field}): container could not join or create cgroup (rootless, no permission on {path})")]
    RootlessLimit {
        field: String,
        controller: String,
        path: PathBuf,
    },
    #[error("rootless needs no limits and no cgroupsPath when no permission is granted for cgroups: cannot create {path}")]
    RootlessNoPermission { path: PathBuf },
    #[error("cannot toggle freezer: the container has no freezer cgroup (rootless, no permission on {path})")]
    RootlessNoFreezer { path: PathBuf },
}

/// Which cgroup layout the host uses.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    /// Only v1 controller hierarchies.
    V1,
    /// v1 controller hierarchies plus a cgroup2 hierarchy (usually /sys/fs/cgroup/unified).
    Hybrid,
    /// Only the unified cgroup2 hierarchy.
    V2,
}

/// One directory of the container cgroup and the mount point of its hierarchy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CgroupDir {
    pub mount: PathBuf,
    pub path: PathBuf,
}

/// A container's cgroup: one directory per hierarchy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    mode: CgroupMode,
    /// Keyed like runc's `cgroup_paths`: v1 controller names (`name=systemd` included) and
    /// `""` for the cgroup2 hierarchy (the only key on v2).
    dirs: BTreeMap<String, CgroupDir>,
    /// Who makes and removes the cgroup; chosen once at create.
    #[serde(default)]
    driver: Driver,
    /// runc's rootless cgroup manager: the runtime runs unprivileged, so joining fails
    /// quietly and device rules (which need privilege) are not applied.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    rootless: bool,
    /// The directories, keyed as `dirs`, a rootless create had no permission to make or
    /// join (see [`Cgroup::drop_inaccessible`]): a limit for one of them fails naming it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    inaccessible: BTreeMap<String, CgroupDir>,
}

/// The cgroup manager behind a [`Cgroup`], as crun's manager table: cgroupfs (nucleus makes
/// the directories) or systemd (a transient unit made over D-Bus, the rest through the same
/// files). Pause, kill --all, ps, events and stats are the same for both.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    #[default]
    Cgroupfs,
    Systemd(Unit),
}

/// How long freeze/thaw wait for the kernel to report the new state.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

impl Cgroup {
    /// The cgroup for container `container_id` on this host. `cgroups_path` is
    /// linux.cgroupsPath: absolute (below each hierarchy's mount point) or relative to the
    /// caller's own cgroup; `None` means `<own cgroup>/<container_id>` like runc.
    pub fn new(
        cgroups_path: Option<&str>,
        container_id: &str,
        systemd: bool,
    ) -> Result<Self, CgroupError> {
        if systemd {
            // The path's form is checked before anything is asked of systemd.
            Unit::from_cgroups_path(cgroups_path, container_id)?;
            check_systemd()?;
            let unit = Unit::for_caller(cgroups_path, container_id)?;
            let hier = Hierarchies::from_host()?;
            let mut cg = Self::from_hierarchies(&hier, &unit.path)?;
            cg.driver = Driver::Systemd(unit);
            return Ok(cg);
        }
        let inner = inner_path(cgroups_path, container_id)?;
        let hier = Hierarchies::from_host()?;
        Self::from_hierarchies(&hier, &inner)
    }

    /// Check the `org.systemd.property.*` annotations the systemd driver passes to the unit
    /// (runc's syntax), before anything is made.
    pub fn check_systemd_annotations(
        annotations: &HashMap<String, String>,
    ) -> Result<(), CgroupError> {
        systemd::annotation_properties(annotations)?;
        Ok(())
    }

    /// The systemd unit of a cgroup made by the systemd driver.
    pub fn systemd_unit(&self) -> Option<&str> {
        match &self.driver {
            Driver::Systemd(u) => Some(&u.name),
            Driver::Cgroupfs => None,
        }
    }

    /// Make the cgroup for the container whose first process is `pid` and apply `r`. The
    /// systemd driver asks systemd for the unit with `pid` in it (the resources systemd
    /// knows and the annotations as its properties), then makes the directories systemd
    /// does not (v1 controllers it leaves alone) and writes every resource to the files.
    pub fn setup(
        &self,
        pid: i32,
        r: &oci_spec::runtime::LinuxResources,
        annotations: &HashMap<String, String>,
    ) -> Result<(), CgroupError> {
        if let Driver::Systemd(unit) = &self.driver {
            let mut props = systemd::resource_properties(r, self.mode)?;
            props.extend(systemd::annotation_properties(annotations)?);
            Systemd::connect_for(unit)?.start(unit, pid, props)?;
            systemd::check_placement(pid, unit)?;
        }
        self.create()?;
        self.apply_files(r)
    }

    /// A cgroup below a cgroupfs tree rooted at `root` laid out like a standard host:
    /// v1 controllers at `root/<controller>` (`name=systemd` at `root/systemd`), the unified
    /// hierarchy at `root` (v2) or `root/unified` (hybrid). The caller's own cgroup is taken
    /// to be `/` everywhere. Used to point the manager at a fake tree.
    pub fn at_root(
        root: &Path,
        mode: CgroupMode,
        v1_controllers: &[&str],
        cgroups_path: Option<&str>,
        container_id: &str,
    ) -> Result<Self, CgroupError> {
        let inner = inner_path(cgroups_path, container_id)?;
        let mut hier = Hierarchies::default();
        let slash = PathBuf::from("/");
        if mode != CgroupMode::V2 {
            for c in v1_controllers {
                let dir = c.strip_prefix("name=").unwrap_or(c);
                hier.v1.insert(
                    c.to_string(),
                    Mount {
                        mount_point: root.join(dir),
                        root: slash.clone(),
                    },
                );
            }
        }
        match mode {
            CgroupMode::V1 => {}
            CgroupMode::Hybrid => {
                hier.unified = Some(Mount {
                    mount_point: root.join("unified"),
                    root: slash,
                })
            }
            CgroupMode::V2 => {
                hier.unified = Some(Mount {
                    mount_point: root.to_path_buf(),
                    root: slash,
                })
            }
        }
        let cg = Self::from_hierarchies(&hier, &inner)?;
        if cg.mode != mode {
            return Err(CgroupError::NoCgroupMounts);
        }
        Ok(cg)
    }

    fn from_hierarchies(hier: &Hierarchies, inner: &Path) -> Result<Self, CgroupError> {
        let mode = hier.mode()?;
        let dirs = hier.container_dirs(inner)?;
        // Running without the devices controller would silently give the container every
        // device of the host; runc refuses too.
        if mode != CgroupMode::V2 && !dirs.contains_key("devices") {
            return Err(CgroupError::DevicesControllerMissing);
        }
        Ok(Cgroup {
            mode,
            dirs,
            driver: Driver::Cgroupfs,
            rootless: false,
            inaccessible: BTreeMap::new(),
        })
    }

    /// runc's rootless cgroup manager, for a runtime run by an unprivileged user: when
    /// `linux.cgroupsPath` is unset (`explicit_path` false), the hierarchies whose container
    /// directory the user may not make or join (no delegation: the usual case on cgroup v1
    /// and without systemd) are left out instead of failing the create, as runc ignores
    /// EPERM/EACCES/EROFS there; a limit that needs one of them then fails (see
    /// [`Cgroup::apply`]). With an explicit path nothing is left out: a permission error
    /// fails the create as runc's does. Returns the directories left out.
    pub fn drop_inaccessible(
        &mut self,
        explicit_path: bool,
        r: Option<&oci_spec::runtime::LinuxResources>,
    ) -> Result<Vec<PathBuf>, CgroupError> {
        self.rootless = true;
        if explicit_path || !matches!(self.driver, Driver::Cgroupfs) {
            return Ok(Vec::new());
        }
        let denied: Vec<(String, CgroupDir)> = self
            .dirs
            .iter()
            .filter(|(_, d)| !may_make_or_join(&d.path))
            .map(|(k, d)| (k.clone(), d.clone()))
            .collect();
        for (key, dir) in &denied {
            self.dirs.remove(key);
            self.inaccessible.insert(key.clone(), dir.clone());
        }
        if self.mode == CgroupMode::V2 {
            if let (Some(dir), Some(r)) = (self.inaccessible.get(""), r) {
                if v2::needs_controllers(r) {
                    return Err(CgroupError::RootlessNoPermission {
                        path: dir.path.clone(),
                    });
                }
            }
        }
        let mut paths: Vec<PathBuf> = denied.into_iter().map(|(_, d)| d.path).collect();
        paths.dedup();
        Ok(paths)
    }

    /// Whether a cgroup directory lists the container's processes: false for a rootless
    /// container whose directories were all left out.
    pub fn tracks_processes(&self) -> bool {
        self.procs_dir().is_some()
    }

    /// Whether this cgroup is managed as runc's rootless manager does.
    pub fn is_rootless(&self) -> bool {
        self.rootless
    }

    /// A rootless error for what needs `controller` when its directory was left out.
    fn rootless_error(&self, e: CgroupError) -> CgroupError {
        match e {
            CgroupError::ControllerMissing { field, controller } if self.rootless => {
                match self.inaccessible.get(controller) {
                    Some(d) => CgroupError::RootlessLimit {
                        field,
                        controller: controller.to_string(),
                        path: d.path.clone(),
                    },
                    None => CgroupError::ControllerMissing { field, controller },
                }
            }
            e => e,
        }
    }

    /// The host layout this cgroup lives in.
    pub fn mode(&self) -> CgroupMode {
        self.mode
    }

    /// runc's `cgroup_paths`: controller (or `""` for cgroup2) → directory.
    pub fn paths(&self) -> BTreeMap<String, PathBuf> {
        self.dirs
            .iter()
            .map(|(k, d)| (k.clone(), d.path.clone()))
            .collect()
    }

    /// Controller (or `""` for cgroup2) → mount point of its hierarchy.
    pub fn mounts(&self) -> BTreeMap<String, PathBuf> {
        self.dirs
            .iter()
            .map(|(k, d)| (k.clone(), d.mount.clone()))
            .collect()
    }

    /// The directory of one v1 controller (`""` = the cgroup2 directory).
    pub fn path(&self, controller: &str) -> Option<&Path> {
        self.dirs.get(controller).map(|d| d.path.as_path())
    }

    /// Each distinct directory once (v1 controllers mounted together share one).
    fn unique_dirs(&self) -> Vec<(&str, &CgroupDir)> {
        let mut seen: Vec<&Path> = Vec::new();
        let mut out = Vec::new();
        for (k, d) in &self.dirs {
            if !seen.contains(&d.path.as_path()) {
                seen.push(&d.path);
                out.push((k.as_str(), d));
            }
        }
        out
    }

    /// Create the directory in every hierarchy. On v2 the controllers available at each level
    /// are enabled in the parents' cgroup.subtree_control; on v1 cpuset directories get the
    /// parent's cpus/mems so tasks can join them. On failure the directories made here are
    /// removed again (and only those: a pre-existing cgroup is left alone).
    pub fn create(&self) -> Result<(), CgroupError> {
        let mut created = Vec::new();
        let res = self.create_dirs(&mut created);
        if res.is_err() {
            for dir in created.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        res
    }

    fn create_dirs(&self, created: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
        for (key, dir) in self.unique_dirs() {
            if key.is_empty() && self.mode == CgroupMode::V2 {
                v2::create_with_controllers(dir, created)?;
            } else {
                mkdir_all(&dir.path, created)?;
                if key == "cpuset" {
                    v1::init_cpuset(dir)?;
                }
            }
        }
        Ok(())
    }

    /// Move `pid` into the cgroup in every hierarchy.
    /// Rootless, a directory the user may not join is skipped, as runc's rootless manager
    /// ignores that error.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        let value = pid.to_string();
        for (_, dir) in self.unique_dirs() {
            let res = write_file(&dir.path, "cgroup.procs", &value);
            self.unless_rootless_denied(res)?;
        }
        Ok(())
    }

    /// `res`, with a permission error ignored when rootless.
    fn unless_rootless_denied(&self, res: Result<(), CgroupError>) -> Result<(), CgroupError> {
        match res {
            Err(CgroupError::Write { source, .. })
                if self.rootless
                    && matches!(
                        source.raw_os_error(),
                        Some(libc::EACCES | libc::EPERM | libc::EROFS)
                    ) =>
            {
                Ok(())
            }
            res => res,
        }
    }

    /// Move the calling process, which must be single-threaded, into the cgroup without
    /// the kernel's global threadgroup lock, whose RCU grace period makes every other
    /// migration cost milliseconds: on v1 a thread moving itself (`0` written to `tasks`)
    /// skips it. The cgroup2 hierarchy has no such door; its directory is returned so the
    /// caller can fork its child straight into it (clone3 with CLONE_INTO_CGROUP).
    pub fn join_self(&self) -> Result<Option<&Path>, CgroupError> {
        let mut unified = None;
        for (key, dir) in self.unique_dirs() {
            if key.is_empty() {
                unified = Some(dir.path.as_path());
            } else {
                self.unless_rootless_denied(write_file(&dir.path, "tasks", "0"))?;
            }
        }
        Ok(unified)
    }

    /// On a hybrid host with the cgroupfs driver: make the container's cgroup2 directory
    /// now, before its first process exists, and return it, so that process can be born in
    /// it (clone3 with CLONE_INTO_CGROUP) while the rest of the cgroup is made. Hybrid only:
    /// its cgroup2 hierarchy has no controllers, so nothing is charged or limited there,
    /// and the v1 ones are joined later, after the namespaces are made (see `join_self`).
    /// None elsewhere (v1 has no cgroup2 directory; on v2 the directory carries the limits;
    /// systemd places the process itself).
    pub fn precreate_unified(&self) -> Result<Option<&Path>, CgroupError> {
        if self.mode != CgroupMode::Hybrid || self.systemd_unit().is_some() {
            return Ok(None);
        }
        let Some(dir) = self.path("") else {
            return Ok(None);
        };
        mkdir_all(dir, &mut Vec::new())?;
        Ok(Some(dir))
    }

    /// Move `pid` into the cgroup2 directory alone: the first process, made before the
    /// rest of the cgroup, where the kernel could not fork it in (`precreate_unified`).
    pub fn add_process_unified(&self, pid: i32) -> Result<(), CgroupError> {
        match self.path("") {
            Some(dir) => write_file(dir, "cgroup.procs", &pid.to_string()),
            None => Ok(()),
        }
    }

    /// The cgroup2 directory of the container, on v2 and hybrid hosts.
    pub fn unified_dir(&self) -> Option<&Path> {
        self.path("")
    }

    /// Apply `r` (the complete resources of the container: for an update, the stored ones with
    /// the changes merged in). Safe to call again on a live cgroup. Device rules are always
    /// applied: without any, the container gets runc's default allow list.
    pub fn apply(&self, r: &oci_spec::runtime::LinuxResources) -> Result<(), CgroupError> {
        if let Driver::Systemd(unit) = &self.driver {
            let props = systemd::resource_properties(r, self.mode)?;
            Systemd::connect_for(unit)?.set(unit, props)?;
        }
        self.apply_files(r)
    }

    /// Write `r` to the cgroup files (both drivers).
    /// Rootless, device rules are not applied (they need privilege: runc ignores their
    /// errors), and a limit whose directory was left out fails naming it.
    fn apply_files(&self, r: &oci_spec::runtime::LinuxResources) -> Result<(), CgroupError> {
        let res = match self.mode {
            CgroupMode::V1 | CgroupMode::Hybrid => v1::apply(&self.dirs, r, !self.rootless),
            CgroupMode::V2 => match self.path("") {
                Some(dir) => v2::apply(dir, r, !self.rootless),
                // Left out at create, with no limit needing it (drop_inaccessible).
                None if self.rootless && !v2::needs_controllers(r) => Ok(()),
                None => match self.inaccessible.get("") {
                    Some(d) => Err(CgroupError::RootlessNoPermission {
                        path: d.path.clone(),
                    }),
                    None => Err(CgroupError::NoUnifiedDir),
                },
            },
        };
        res.map_err(|e| self.rootless_error(e))
    }

    /// The directory whose cgroup.procs files list the container's processes.
    fn procs_dir(&self) -> Option<&Path> {
        let order: &[&str] = match self.mode {
            CgroupMode::V2 => &[""],
            _ => &["pids", "freezer", "devices", "memory", "cpu"],
        };
        order
            .iter()
            .find_map(|k| self.path(k))
            .or_else(|| self.dirs.values().next().map(|d| d.path.as_path()))
    }

    /// The cgroup2 directory of a v2 cgroup.
    fn unified(&self) -> Result<&Path, CgroupError> {
        self.path("").ok_or(CgroupError::NoUnifiedDir)
    }

    /// Every pid in the container cgroup and its descendants. Empty when the cgroup is gone.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut out = Vec::new();
        if let Some(dir) = self.procs_dir() {
            if dir.exists() {
                collect_pids(dir, &mut out)?;
            }
        }
        Ok(out)
    }

    /// The freezer directory and whether it is v1 (`freezer.state`) or v2 (`cgroup.freeze`).
    fn freezer(&self) -> Result<(&Path, bool), CgroupError> {
        let key = if self.mode == CgroupMode::V2 {
            ""
        } else {
            "freezer"
        };
        if let Some(d) = self.inaccessible.get(key) {
            return Err(CgroupError::RootlessNoFreezer {
                path: d.path.clone(),
            });
        }
        match self.mode {
            CgroupMode::V2 => {
                let p = self.unified()?;
                if p.join("cgroup.freeze").exists() {
                    Ok((p, false))
                } else {
                    Err(CgroupError::FreezerUnavailable {
                        path: p.to_path_buf(),
                    })
                }
            }
            _ => match self.path("freezer") {
                Some(p) => Ok((p, true)),
                None => Err(CgroupError::FreezerUnavailable {
                    path: self
                        .dirs
                        .values()
                        .next()
                        .map(|d| d.path.clone())
                        .unwrap_or_default(),
                }),
            },
        }
    }

    /// Freeze every process of the container; returns once the kernel reports it frozen.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        let (dir, is_v1) = self.freezer()?;
        let res = if is_v1 {
            wait_state(dir, "freezer.state", "FROZEN", Some("FROZEN"), |s| {
                s == "FROZEN"
            })
        } else {
            write_file(dir, "cgroup.freeze", "1")?;
            wait_state(dir, "cgroup.events", "frozen 1", None, |s| {
                s.lines().any(|l| l == "frozen 1")
            })
        };
        if res.is_err() {
            // A half-frozen container is worse than a running one.
            let _ = self.thaw();
        }
        res
    }

    /// Thaw the container.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        let (dir, is_v1) = self.freezer()?;
        if is_v1 {
            wait_state(dir, "freezer.state", "THAWED", Some("THAWED"), |s| {
                s == "THAWED"
            })
        } else {
            write_file(dir, "cgroup.freeze", "0")?;
            wait_state(dir, "cgroup.events", "frozen 0", None, |s| {
                !s.lines().any(|l| l == "frozen 1")
            })
        }
    }

    /// Whether the container is frozen (paused). False when no freezer exists or the cgroup
    /// is gone.
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        let Ok((dir, is_v1)) = self.freezer() else {
            return Ok(false);
        };
        let (file, frozen) = if is_v1 {
            ("freezer.state", "FROZEN")
        } else {
            ("cgroup.freeze", "1")
        };
        // Read straight away (no stat of the directory first): a cgroup gone is NotFound.
        match read_file(dir, file) {
            Ok(s) => Ok(s == frozen),
            Err(CgroupError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Send `sig` to every process of the container. SIGKILL on v2 uses cgroup.kill when the
    /// kernel has it. Otherwise the cgroup is frozen while signalling so nothing forks past
    /// the signal, then thawed; a container that was paused before stays paused unless the
    /// signal is SIGKILL (which must be able to take effect).
    pub fn kill_all(&self, sig: Signal) -> Result<(), CgroupError> {
        if self.mode == CgroupMode::V2 && sig == Signal::SIGKILL {
            if let Some(dir) = self.path("") {
                if dir.join("cgroup.kill").exists() {
                    return write_file(dir, "cgroup.kill", "1");
                }
            }
        }
        let can_freeze = self.freezer().map(|(d, _)| d.exists()).unwrap_or(false);
        let was_frozen = can_freeze && self.is_frozen()?;
        // No process left (the common case at `delete`): nothing can fork, so there is
        // nothing to freeze, signal or thaw.
        if matches!(self.pids().as_deref(), Ok([])) {
            if was_frozen && sig == Signal::SIGKILL {
                self.thaw()?;
            }
            return Ok(());
        }
        let froze = can_freeze && !was_frozen && self.freeze().is_ok();
        let signalled = self.pids().and_then(|pids| {
            let mut first_err = None;
            for pid in pids {
                match nix::sys::signal::kill(Pid::from_raw(pid), sig) {
                    Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                    Err(source) => {
                        first_err.get_or_insert(CgroupError::Signal {
                            signal: sig,
                            pid,
                            source,
                        });
                    }
                }
            }
            first_err.map_or(Ok(()), Err)
        });
        if froze || (was_frozen && sig == Signal::SIGKILL) {
            self.thaw()?;
        }
        signalled
    }

    /// Remove the directory (and any sub-cgroups the container made) from every hierarchy,
    /// retrying while the kernel still reports it busy. Missing directories are fine.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        if let Driver::Systemd(unit) = &self.driver {
            // What systemd leaves (sub-cgroups the container made, v1 directories nucleus
            // made itself) is removed below either way.
            if let Err(e) = Systemd::connect_for(unit).and_then(|mut s| s.stop(unit)) {
                first_err = Some(CgroupError::Systemd(e));
            }
        }
        for (_, dir) in self.unique_dirs() {
            if let Err(e) = remove_tree(&dir.path) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Whether the container cgroup exists in any hierarchy.
    pub fn exists(&self) -> bool {
        self.dirs.values().any(|d| d.path.is_dir())
    }

    /// Resource usage in runc's `events --stats` shape.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        match self.mode {
            CgroupMode::V2 => stats::v2_stats(self.unified()?),
            _ => stats::v1_stats(&self.dirs),
        }
    }

    /// A pollable notifier of OOM kills in the container, for `events`.
    pub fn watch_oom(&self) -> Result<OomWatch, CgroupError> {
        match self.mode {
            CgroupMode::V2 => OomWatch::v2(self.unified()?),
            _ => match self.dirs.get("memory") {
                Some(d) => OomWatch::v1(&d.path),
                None => Err(CgroupError::ControllerMissing {
                    field: "OOM notifications".into(),
                    controller: "memory",
                }),
            },
        }
    }

    /// How many processes of the container the OOM killer has killed so far (v2:
    /// memory.events oom_kill; v1: memory.oom_control oom_kill). 0 without a memory
    /// controller.
    pub fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        let (dir, file) = match self.mode {
            CgroupMode::V2 => (self.unified()?, "memory.events"),
            _ => match self.path("memory") {
                Some(d) => (d, "memory.oom_control"),
                None => return Ok(0),
            },
        };
        if !dir.join(file).exists() {
            return Ok(0);
        }
        let content = read_file(dir, file)?;
        Ok(files::keyed_value(&content, "oom_kill").unwrap_or(0))
    }
}

/// Whether the caller may make `dir` (write and search access on its nearest existing
/// ancestor) or, when it exists, join it (write access to its cgroup.procs). access(2)
/// answers as mkdir(2) and open(2) would: EACCES, or EROFS on a read-only cgroupfs.
fn may_make_or_join(dir: &Path) -> bool {
    use nix::unistd::{faccessat, AccessFlags};
    let eaccess = nix::fcntl::AtFlags::AT_EACCESS;
    if dir.is_dir() {
        return faccessat(
            nix::fcntl::AT_FDCWD,
            &dir.join("cgroup.procs"),
            AccessFlags::W_OK,
            eaccess,
        )
        .is_ok();
    }
    let mut anc = dir.parent();
    while let Some(a) = anc {
        if a.is_dir() {
            return faccessat(
                nix::fcntl::AT_FDCWD,
                a,
                AccessFlags::W_OK | AccessFlags::X_OK,
                eaccess,
            )
            .is_ok();
        }
        anc = a.parent();
    }
    false
}

/// The hierarchy-relative path of the container cgroup.
fn inner_path(cgroups_path: Option<&str>, container_id: &str) -> Result<PathBuf, CgroupError> {
    match cgroups_path.filter(|p| !p.is_empty()) {
        Some(p) => clean_cgroups_path(p),
        None => clean_cgroups_path(container_id),
    }
}

/// The calling process's own cgroup directory in each hierarchy: where it goes back to
/// after a stay in a container's cgroup (`restore` under the systemd driver places itself
/// in the new unit so that CRIU, its child, restores the processes there).
#[derive(Debug, Clone)]
pub struct OwnCgroups(Vec<PathBuf>);

impl OwnCgroups {
    pub fn current() -> Result<Self, CgroupError> {
        let hier = Hierarchies::from_host()?;
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mounts = hier
            .v1
            .iter()
            .map(|(k, m)| (k.as_str(), m))
            .chain(hier.unified.iter().map(|m| ("", m)));
        for (key, m) in mounts {
            let Some(own) = hier.own.get(key) else {
                continue;
            };
            let rel = own.strip_prefix(&m.root).unwrap_or(own);
            let rel = rel.strip_prefix("/").unwrap_or(rel);
            let dir = m.mount_point.join(rel);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        Ok(OwnCgroups(dirs))
    }

    /// Move the calling process back into these cgroups.
    pub fn rejoin(&self) -> Result<(), CgroupError> {
        let pid = std::process::id().to_string();
        for d in &self.0 {
            write_file(d, "cgroup.procs", &pid)?;
        }
        Ok(())
    }
}

/// The systemd driver needs systemd as the host's init.
fn check_systemd() -> Result<(), CgroupError> {
    // systemd's own test for "booted with systemd" (sd_booted).
    if !Path::new("/run/systemd/system").is_dir() {
        return Err(CgroupError::SystemdNotRunning);
    }
    Ok(())
}

/// `mkdir -p`, recording each directory it made in `created` (parents first).
/// The directory itself is tried first (usually only it is missing); its parents only when
/// that fails for want of them.
fn mkdir_all(path: &Path, created: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    let mut parents_done = false;
    loop {
        match std::fs::create_dir(path) {
            Ok(()) => {
                created.push(path.to_path_buf());
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !parents_done => {
                if let Some(parent) = path.parent() {
                    mkdir_all(parent, created)?;
                }
                parents_done = true;
            }
            Err(source) => {
                return Err(CgroupError::Mkdir {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let content = match crate::procinfo::read_to_string(dir.join("cgroup.procs")) {
        Ok(c) => c,
        // The cgroup (or a child) went away while walking it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.join("cgroup.procs"),
                source,
            })
        }
    };
    for line in content.lines().filter(|l| !l.is_empty()) {
        let pid = line.trim().parse().map_err(|_| CgroupError::Parse {
            path: dir.join("cgroup.procs"),
            content: line.to_string(),
        })?;
        if !out.contains(&pid) {
            out.push(pid);
        }
    }
    for child in sub_cgroups(dir)? {
        collect_pids(&child, out)?;
    }
    Ok(())
}

fn sub_cgroups(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    // Usually the container made no sub-cgroups and its tasks are gone: one rmdir. Else
    // (EBUSY: children or tasks left) the children go first, then rmdir is retried.
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    for child in sub_cgroups(dir)? {
        remove_tree(&child)?;
    }
    let mut delay = Duration::from_millis(10);
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            // Exiting tasks keep the cgroup busy for a moment after they are reaped.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 8 => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(200));
                tries += 1;
            }
            Err(source) => {
                return Err(CgroupError::Rmdir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Poll `dir/file` until `done` holds, (re)writing `write` first and every few rounds (the v1
/// freezer can get stuck in FREEZING when a task is in an uninterruptible state).
fn wait_state(
    dir: &Path,
    file: &'static str,
    wanted: &'static str,
    write: Option<&str>,
    done: impl Fn(&str) -> bool,
) -> Result<(), CgroupError> {
    let start = Instant::now();
    let mut round: u32 = 0;
    loop {
        if let Some(w) = write {
            if round % 50 == 0 {
                write_file(dir, file, w)?;
            }
        }
        if done(&read_file(dir, file)?) {
            return Ok(());
        }
        if start.elapsed() > FREEZE_TIMEOUT {
            return Err(CgroupError::FreezeTimeout {
                path: dir.join(file),
                wanted,
                millis: FREEZE_TIMEOUT.as_millis(),
            });
        }
        std::thread::sleep(Duration::from_micros(if round < 100 { 100 } else { 2000 }));
        round += 1;
    }
}

#[cfg(test)]
mod tests;

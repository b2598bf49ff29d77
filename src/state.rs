//! Per-container state under `--root`: one directory per container holding `state.json`
//! (written atomically) and the `exec.fifo` the init blocks on until `start`.
//!
//! `state.json` is small whatever the config's size: what every verb needs, and of the
//! config only its hooks. The bundle's config as `create` read it is `config.json`, and the
//! state's annotations are `annotations.json`: each written once by `create` and read only
//! by the verbs that need it (`exec`, `checkpoint`, `update`; `state` and hooks for the
//! annotations), so `start`, `kill`, `pause`, `list` and `delete` cost the same for a
//! config of 4 MiB as for one of 4 KiB. A `state.json` of the layout before (the config
//! copied in it) is moved to this one by the first verb that loads it.
//!
//! Every command that touches a container holds an exclusive `flock` on its directory, so
//! concurrent commands on one id run one after the other.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;

pub const DEFAULT_ROOT: &str = "/run/nucleus";
pub const STATE_FILE: &str = "state.json";
/// The bundle's config as `create` read it (updated by `update`).
pub const CONFIG_FILE: &str = "config.json";
/// The state's annotations (the config's and the runtime's own), when there are any.
pub const ANNOTATIONS_FILE: &str = "annotations.json";
pub const EXEC_FIFO: &str = "exec.fifo";
/// What a create in progress has made so far: written before each thing it records exists,
/// so `delete --force` can undo a create that was killed at any point; removed once the
/// state file is written (from then on the state says what to undo).
pub const CREATING_FILE: &str = "creating.json";
/// The OCI runtime-spec version nucleus implements.
pub const OCI_VERSION: &str = "1.2.0";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container does not exist")]
    NotExist,
    #[error("container with id exists: {0}")]
    Exists(String),
    #[error("invalid container id {0:?}: only letters, digits, '_', '+', '-' and '.' are allowed, and not '.' or '..'")]
    InvalidId(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corrupt state file {path}: {msg}")]
    Corrupt { path: PathBuf, msg: String },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Container status as the OCI spec names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
    Paused,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
        })
    }
}

/// What nucleus remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    /// Host pid of the container init; 0 once it is known to be gone.
    pub pid: i32,
    /// Start time of the init (field 22 of /proc/PID/stat): guards against pid reuse.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub owner: String,
    /// Kept in `annotations.json`, not in `state.json`: empty after [`ContainerDir::load`]
    /// until [`ContainerDir::load_annotations`] reads them.
    #[serde(skip)]
    pub annotations: HashMap<String, String>,
    pub cgroup: Option<Cgroup>,
    /// The config's hooks: all that `start` and `delete` need of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The config has no `process`, so `start` must refuse.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_process: bool,
    /// Host pid of the seccomp supervisor (trace / deny-log), if any.
    #[serde(default)]
    pub monitor_pid: Option<i32>,
    /// Without a mount namespace of its own: the rootfs bind made in the host's.
    #[serde(default)]
    pub host_rootfs_mount: Option<HostRootfsMount>,
    /// The Landlock confinement of the container's processes while `create` makes it (not
    /// saved: `exec` makes it again from the annotations and `landlock_ids`).
    #[serde(skip)]
    pub landlock: Option<crate::landlock::Plan>,
    /// The identities (device, inode) of the paths the init's Landlock ruleset names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub landlock_ids: Vec<crate::landlock::Identity>,
    /// A state file of the layout before has the config in it: skipped unparsed here, its
    /// presence sends [`ContainerDir::load`] the long way.
    #[serde(default, rename = "config", skip_serializing)]
    pub(crate) legacy_config: Option<serde::de::IgnoredAny>,
}

/// The bind of the rootfs onto itself that a container without a mount namespace of its
/// own makes in the host's (see `rootfs::detach_host_rootfs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRootfsMount {
    pub path: PathBuf,
    /// The mount topmost at `path` before the create.
    pub below: u64,
    /// The bind's own mount id, once the init has made it.
    pub ours: Option<u64>,
}

/// A process a create started, named by pid and start time so a recycled pid is never
/// mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRecord {
    pub pid: i32,
    pub start: u64,
}

impl ProcRecord {
    /// The record of live process `pid`, or None if it is already gone.
    pub fn of(pid: i32) -> Option<Self> {
        process_start_time(pid).map(|start| ProcRecord { pid, start })
    }
}

/// Everything a create has made or is about to make, before its state file exists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreatingRecord {
    /// The container cgroup: recorded before any of its directories is made.
    pub cgroup: Option<Cgroup>,
    /// The intermediate, the init and the seccomp monitor, as each comes to be.
    #[serde(default)]
    pub procs: Vec<ProcRecord>,
    /// Recorded before the init may make it.
    #[serde(default)]
    pub host_rootfs_mount: Option<HostRootfsMount>,
}

/// What `state` prints: the OCI state and, as runc prints them, rootfs, created and owner,
/// in runc's order (`pid` before `status`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(
        skip_serializing_if = "HashMap::is_empty",
        serialize_with = "serialize_sorted"
    )]
    pub annotations: &'a HashMap<String, String>,
    /// After the annotations, where runc puts it.
    pub owner: &'a str,
}

/// The state hooks get on stdin (and a seccomp agent with the listener): the runtime spec's
/// `State` as runc writes it, byte for byte in shape: `status` before `pid`, no `pid` when
/// there is no process (poststop), nothing beyond the spec's members.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: Status,
    #[serde(skip_serializing_if = "no_pid")]
    pub pid: i32,
    pub bundle: &'a Path,
    #[serde(
        skip_serializing_if = "HashMap::is_empty",
        serialize_with = "serialize_sorted"
    )]
    pub annotations: &'a HashMap<String, String>,
}

fn no_pid(pid: &i32) -> bool {
    *pid == 0
}

/// A map with its keys in order, as Go's encoding/json writes maps (runc's `state`, `list`).
pub fn serialize_sorted<S: serde::Serializer>(
    m: &HashMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(m.iter().collect::<std::collections::BTreeMap<_, _>>())
}

impl ContainerState {
    /// The state of a container that `create` or `restore` is making: no init yet, created
    /// now, by the runtime's user.
    pub fn creating(
        id: String,
        bundle: PathBuf,
        rootfs: PathBuf,
        config: &oci_spec::runtime::Spec,
        annotations: HashMap<String, String>,
        cgroup: Cgroup,
    ) -> Self {
        ContainerState {
            id,
            pid: 0,
            pid_start: 0,
            bundle,
            rootfs,
            created: crate::logger::rfc3339_now(true),
            owner: String::new(),
            annotations,
            cgroup: Some(cgroup),
            hooks: config.hooks().clone(),
            no_process: config.process().is_none(),
            monitor_pid: None,
            host_rootfs_mount: None,
            landlock: None,
            landlock_ids: Vec::new(),
            legacy_config: None,
        }
    }

    /// The state `nucleus state` prints for `status`.
    pub fn oci(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: OCI_VERSION,
            id: &self.id,
            pid: self.pid_in(status),
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            annotations: &self.annotations,
        }
    }

    /// The state hooks get for `status`, as JSON.
    pub fn hook_json(&self, status: Status) -> Vec<u8> {
        self.hook_json_pid(status, self.pid_in(status))
    }

    /// [`Self::hook_json`] with `pid` (one not yet recorded in the state).
    pub fn hook_json_pid(&self, status: Status, pid: i32) -> Vec<u8> {
        let s = SpecState {
            oci_version: OCI_VERSION,
            id: &self.id,
            status,
            pid,
            bundle: &self.bundle,
            annotations: &self.annotations,
        };
        serde_json::to_vec(&s).unwrap_or_default()
    }

    fn pid_in(&self, status: Status) -> i32 {
        if status == Status::Stopped {
            0
        } else {
            self.pid
        }
    }
}

/// runc's rule for ids: `^[\w+-\.]+$`, and never `.` or `..`, so an id is always one plain
/// path component under the state root.
pub fn validate_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(StateError::InvalidId(id.to_string()))
    }
}

/// The state root (`--root`).
#[derive(Debug, Clone)]
pub struct Root {
    pub path: PathBuf,
}

/// An open, locked container directory. The lock is released on drop.
#[derive(Debug)]
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    _lock: OwnedFd,
}

impl Root {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Root { path: path.into() }
    }

    fn ensure(&self) -> Result<(), StateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.path)
            .map_err(io("create state root", &self.path))
    }

    /// Make the directory of a new container and lock it. Fails if the id is taken.
    pub fn create(&self, id: &str) -> Result<ContainerDir, StateError> {
        validate_id(id)?;
        self.ensure()?;
        let path = self.path.join(id);
        match fs::DirBuilder::new().mode(0o711).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(id.to_string()))
            }
            Err(e) => return Err(io("create state dir", &path)(e)),
        }
        let lock = match lock_dir(&path) {
            Ok(l) => l,
            Err(e) => {
                // Nothing else can be in it yet: no lock, no directory.
                let _ = fs::remove_dir(&path);
                return Err(e);
            }
        };
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            _lock: lock,
        })
    }

    /// Lock a container's directory whatever its condition (a create killed part-way
    /// leaves one without a state file); None if there is no such directory.
    pub fn open_any(&self, id: &str) -> Result<Option<ContainerDir>, StateError> {
        if validate_id(id).is_err() {
            return Ok(None);
        }
        let path = self.path.join(id);
        match lock_dir(&path) {
            Ok(lock) => Ok(Some(ContainerDir {
                id: id.to_string(),
                path,
                _lock: lock,
            })),
            Err(StateError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Lock an existing container's directory; "container does not exist" otherwise.
    pub fn open(&self, id: &str) -> Result<ContainerDir, StateError> {
        validate_id(id).map_err(|_| StateError::NotExist)?;
        let path = self.path.join(id);
        let lock = match lock_dir(&path) {
            Ok(l) => l,
            Err(StateError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotExist)
            }
            Err(e) => return Err(e),
        };
        // A concurrent delete may have removed the directory while we waited for the lock.
        if !path.join(STATE_FILE).exists() {
            return Err(StateError::NotExist);
        }
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            _lock: lock,
        })
    }

    /// Ids of all containers with a state file, sorted.
    pub fn list(&self) -> Result<Vec<String>, StateError> {
        let rd = match fs::read_dir(&self.path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("read state root", &self.path)(e)),
        };
        let mut ids: Vec<String> = rd
            .filter_map(Result::ok)
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn lock_dir(path: &Path) -> Result<OwnedFd, StateError> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map_err(io("open state dir", path))?;
    // SAFETY: flock on an fd we own; blocks until the lock is granted.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    if r != 0 {
        return Err(io("lock state dir", path)(std::io::Error::last_os_error()));
    }
    Ok(OwnedFd::from(f))
}

impl ContainerDir {
    pub fn state_path(&self) -> PathBuf {
        self.path.join(STATE_FILE)
    }

    /// The fd holding the directory's lock: no child the runtime forks may keep it.
    pub fn lock_fd(&self) -> std::os::fd::RawFd {
        self._lock.as_raw_fd()
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// The state, without its annotations (see [`ContainerDir::load_annotations`]). A
    /// state file of the layout before, with the config in it, is moved to today's first.
    pub fn load(&self) -> Result<ContainerState, StateError> {
        let (p, data) = self.read_state()?;
        // Straight from the text (not through a `Value`, as `spec::parse` goes): `list`
        // loads one state per container.
        let st: ContainerState =
            serde_json::from_slice(&data).map_err(|e| StateError::Corrupt {
                path: p.clone(),
                msg: e.to_string(),
            })?;
        if st.legacy_config.is_none() {
            return Ok(st);
        }
        let corrupt = |e: crate::spec::SpecError| StateError::Corrupt {
            path: p.clone(),
            msg: e.to_string(),
        };
        let mut v = crate::spec::parse_value(STATE_FILE, &data).map_err(corrupt)?;
        let legacy = v.as_object_mut().and_then(|o| {
            let config = o.remove("config")?;
            Some((config, o.remove("annotations")))
        });
        let mut st: ContainerState = crate::spec::from_value(STATE_FILE, v).map_err(corrupt)?;
        if let Some((config, annotations)) = legacy {
            let mut config: oci_spec::runtime::Spec =
                crate::spec::from_value(STATE_FILE, config).map_err(corrupt)?;
            st.annotations = match annotations {
                Some(a) => crate::spec::from_value(STATE_FILE, a).map_err(corrupt)?,
                None => HashMap::new(),
            };
            st.hooks = config.hooks().clone();
            st.no_process = config.process().is_none();
            // state.json last: until it is replaced, the old file is still whole.
            self.save_config(&mut config)?;
            self.save_annotations(&st.annotations)?;
            self.save(&st)?;
        }
        Ok(st)
    }

    /// Fill in the state's annotations from `annotations.json` (none if there is no such
    /// file: a container without annotations has none).
    pub fn load_annotations(&self, st: &mut ContainerState) -> Result<(), StateError> {
        let p = self.path.join(ANNOTATIONS_FILE);
        st.annotations = match crate::procinfo::read(&p) {
            Ok(data) => serde_json::from_slice(&data).map_err(|e| StateError::Corrupt {
                path: p,
                msg: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(io("read", &p)(e)),
        };
        Ok(())
    }

    /// The bundle's config as `create` read it (`update` keeps its resources current),
    /// without its annotations: they are the state's ([`ContainerDir::load_annotations`]).
    pub fn load_config(&self) -> Result<oci_spec::runtime::Spec, StateError> {
        let p = self.path.join(CONFIG_FILE);
        let data = match crate::procinfo::read(&p) {
            Ok(data) => data,
            Err(e) => return Err(io("read", &p)(e)),
        };
        crate::spec::parse(CONFIG_FILE, &data).map_err(|e| StateError::Corrupt {
            path: p,
            msg: e.to_string(),
        })
    }

    /// Write the copy of the config (once, at create; again only when `update` changes it),
    /// without its annotations: the state has them ([`ContainerDir::save_annotations`]) and
    /// they are most of a large config, so they are not written twice. `config` is left as
    /// it was (borrowed mutably only to lend its annotations out meanwhile).
    pub fn save_config(&self, config: &mut oci_spec::runtime::Spec) -> Result<(), StateError> {
        let annotations = config.annotations_mut().take();
        let res = self.write_json(CONFIG_FILE, config);
        *config.annotations_mut() = annotations;
        res
    }

    /// Write the state's annotations (once, at create): none, no file.
    pub fn save_annotations(&self, a: &HashMap<String, String>) -> Result<(), StateError> {
        if a.is_empty() {
            return match fs::remove_file(self.path.join(ANNOTATIONS_FILE)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(io("remove", &self.path.join(ANNOTATIONS_FILE))(e))
                }
                _ => Ok(()),
            };
        }
        self.write_json(ANNOTATIONS_FILE, a)
    }

    fn read_state(&self) -> Result<(PathBuf, Vec<u8>), StateError> {
        let p = self.state_path();
        match crate::procinfo::read(&p) {
            Ok(data) => Ok((p, data)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StateError::NotExist),
            Err(e) => Err(io("read", &p)(e)),
        }
    }

    /// Write state.json through a temporary file and rename, so a reader never sees half.
    /// The annotations are not in it (see [`ContainerDir::save_annotations`]).
    pub fn save(&self, st: &ContainerState) -> Result<(), StateError> {
        self.write_json(STATE_FILE, st)
    }

    /// Replace the record of what a create in progress has made (atomically, as state.json).
    pub fn save_creating(&self, rec: &CreatingRecord) -> Result<(), StateError> {
        self.write_json(CREATING_FILE, rec)
    }

    /// The create is done (its state file written): the record of what it was making is
    /// no longer needed, and a created container's directory holds only what it needs.
    pub fn drop_creating(&self) -> Result<(), StateError> {
        let p = self.path.join(CREATING_FILE);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &p)(e)),
            _ => Ok(()),
        }
    }

    /// The record a create left, if it wrote one (an unreadable one counts as none: it
    /// is only ever replaced whole, so it can only be missing).
    pub fn load_creating(&self) -> Option<CreatingRecord> {
        let data = crate::procinfo::read(self.path.join(CREATING_FILE)).ok()?;
        serde_json::from_slice(&data).ok()
    }

    pub fn has_state(&self) -> bool {
        self.state_path().exists()
    }

    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StateError> {
        let p = self.path.join(name);
        let tmp = self.path.join(format!(".{name}.tmp"));
        let data = serde_json::to_vec(value).map_err(|e| StateError::Corrupt {
            path: p.clone(),
            msg: e.to_string(),
        })?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(io("write", &tmp))?;
        // No fsync: the rename alone keeps readers from a half-written file, and state
        // lives on tmpfs (/run) where nothing survives a crash anyway; an fsync here costs
        // milliseconds on every create on disk-backed roots.
        f.write_all(&data).map_err(io("write", &tmp))?;
        fs::rename(&tmp, &p).map_err(io("rename", &p))
    }

    /// Remove the directory and everything in it.
    pub fn remove(self) -> Result<(), StateError> {
        // What a finished container leaves is its records: unlinked by name, the
        // directory is then empty, which saves remove_dir_all's stat, open and listing.
        // Anything else in it (a FIFO of a container never started) takes the long way.
        for name in [STATE_FILE, CONFIG_FILE, ANNOTATIONS_FILE, CREATING_FILE] {
            let _ = fs::remove_file(self.path.join(name));
        }
        match fs::remove_dir(&self.path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) => {}
        }
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove state dir", &self.path)(e)),
        }
    }
}

/// Start time of a process in clock ticks since boot, or None if it is gone.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = crate::procinfo::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = crate::procinfo::stat_fields(&stat)?;
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // The fields start at 3; starttime is field 22.
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_single_safe_components() {
        for ok in ["a", "abc-1_2+3.x", "A9"] {
            validate_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "../x", "a/b", "a b", "x\0", "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn create_refuses_existing_and_open_reports_missing() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path().join("r"));
        assert!(matches!(root.open("x"), Err(StateError::NotExist)));
        let d = root.create("x").unwrap();
        drop(d);
        assert!(matches!(root.create("x"), Err(StateError::Exists(_))));
        // No state file yet: still "does not exist" to other commands.
        assert!(matches!(root.open("x"), Err(StateError::NotExist)));
        assert!(root.list().unwrap().is_empty());
    }

    fn sample(config: &oci_spec::runtime::Spec) -> ContainerState {
        let mut st = ContainerState::creating(
            "x".into(),
            "/b".into(),
            "/b/rootfs".into(),
            config,
            HashMap::from([("k".to_string(), "v".to_string())]),
            Cgroup::new(None, "x", false).unwrap(),
        );
        st.pid = 42;
        st.pid_start = 7;
        st.created = "2026-11-30T00:00:00Z".into();
        st.owner = "root".into();
        st.monitor_pid = Some(9);
        st
    }

    fn big_config() -> oci_spec::runtime::Spec {
        let mut config = oci_spec::runtime::Spec::default();
        let many: HashMap<String, String> = (0..2000)
            .map(|i| (format!("org.example.a{i}"), "v".repeat(100)))
            .collect();
        config.set_annotations(Some(many));
        let hook = oci_spec::runtime::HookBuilder::default()
            .path("/bin/true")
            .build()
            .unwrap();
        let hooks = oci_spec::runtime::HooksBuilder::default()
            .poststop(vec![hook])
            .build()
            .unwrap();
        config.set_hooks(Some(hooks));
        config
    }

    /// state.json holds neither the config nor the annotations, whatever their size: the
    /// verbs that load the state (start, kill, delete, list) read a file of a few hundred
    /// bytes; the config and annotations come back whole from their own files.
    #[test]
    fn state_file_stays_small_and_the_rest_reads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path().join("r"));
        let d = root.create("x").unwrap();
        let mut config = big_config();
        let mut st = sample(&config);
        st.annotations = config.annotations().clone().unwrap();
        d.save_config(&mut config).unwrap();
        assert_eq!(config.annotations().as_ref(), Some(&st.annotations));
        d.save_annotations(&st.annotations).unwrap();
        d.save(&st).unwrap();
        let len = fs::metadata(d.state_path()).unwrap().len();
        assert!(len < 2048, "state.json is {len} bytes");
        let mut back = d.load().unwrap();
        assert!(back.annotations.is_empty());
        assert_eq!(back.hooks, st.hooks);
        assert!(!back.no_process);
        assert_eq!(
            (back.pid, back.pid_start, back.monitor_pid),
            (42, 7, Some(9))
        );
        d.load_annotations(&mut back).unwrap();
        assert_eq!(back.annotations, st.annotations);
        let copy = d.load_config().unwrap();
        assert_eq!(copy.annotations(), &None);
        assert_eq!(copy.hooks(), config.hooks());
        for status in [Status::Running, Status::Stopped] {
            assert_eq!(
                serde_json::to_value(back.oci(status)).unwrap(),
                serde_json::to_value(st.oci(status)).unwrap()
            );
        }
        // No annotations, no file; a config without process is remembered as such.
        let mut bare = oci_spec::runtime::Spec::default();
        bare.set_process(None);
        let mut st = sample(&bare);
        st.annotations.clear();
        d.save_annotations(&st.annotations).unwrap();
        d.save(&st).unwrap();
        assert!(!d.path.join(ANNOTATIONS_FILE).exists());
        let mut back = d.load().unwrap();
        assert!(back.no_process && back.hooks.is_none());
        back.annotations.insert("stale".into(), "x".into());
        d.load_annotations(&mut back).unwrap();
        assert!(back.annotations.is_empty());
        std::fs::write(d.state_path(), b"{\"id\":").unwrap();
        assert!(matches!(d.load(), Err(StateError::Corrupt { .. })));
    }

    /// A state.json of the layout before (config and annotations in it) still loads, and
    /// is moved to today's layout on the way: the next load reads the small file.
    #[test]
    fn old_layout_is_read_and_moved() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::new(tmp.path().join("r"));
        let d = root.create("x").unwrap();
        let config = big_config();
        let st = sample(&config);
        let mut old = serde_json::to_value(&st).unwrap();
        let o = old.as_object_mut().unwrap();
        o.remove("hooks");
        o.insert(
            "annotations".into(),
            serde_json::to_value(&st.annotations).unwrap(),
        );
        o.insert("config".into(), serde_json::to_value(&config).unwrap());
        fs::write(d.state_path(), serde_json::to_vec(&old).unwrap()).unwrap();
        let mut back = d.load().unwrap();
        assert_eq!(back.hooks, config.hooks().clone());
        assert!(!back.no_process);
        let text = fs::read_to_string(d.state_path()).unwrap();
        assert!(!text.contains("\"config\"") && !text.contains("org.example.a1"));
        d.load_annotations(&mut back).unwrap();
        assert_eq!(back.annotations, st.annotations);
        assert_eq!(d.load_config().unwrap().hooks(), config.hooks());
        assert_eq!(
            serde_json::to_value(d.load().unwrap().oci(Status::Running)).unwrap()["id"],
            "x"
        );
        d.remove().unwrap();
        assert!(!tmp.path().join("r/x").exists());
    }

    #[test]
    fn own_start_time_is_readable() {
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some());
        assert!(process_start_time(i32::MAX).is_none());
    }
}

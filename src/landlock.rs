//! Landlock confinement of a container's processes, asked for with `run.nucleus.landlock.*`
//! annotations: which container paths keep read, read-write or execute access, which TCP
//! ports may be bound or connected to; everything else is denied for the access rights the
//! kernel's Landlock ABI handles.
//!
//! The runtime parses the annotations and decides what the kernel can enforce ([`Plan`],
//! before anything is made, so a bad annotation fails `create` with nothing to undo). The
//! container init opens the paths inside the container (after pivot_root, with openat2
//! resolution confined to its root) and builds the ruleset before it reports ready; the
//! ruleset is applied right before the seccomp filter, the last steps before the execve.
//! An `exec`'d process builds the same ruleset from the container's state (its annotations,
//! the ABI decided at create, the identities of the paths the init opened), and refuses to
//! run if a path no longer names the file the init confined (a container process may have
//! swapped it for a symlink since). No serde types of its own: the state keeps only plain
//! values, which keeps the runtime binary small.
//!
//! Raw syscalls (three of them, one struct each): the kernel's uapi is small and stable.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::OFlag;

pub const PREFIX: &str = "run.nucleus.landlock.";
pub const READ: &str = "run.nucleus.landlock.read";
pub const WRITE: &str = "run.nucleus.landlock.write";
pub const EXEC: &str = "run.nucleus.landlock.exec";
pub const TCP_BIND: &str = "run.nucleus.landlock.tcp-bind";
pub const TCP_CONNECT: &str = "run.nucleus.landlock.tcp-connect";
pub const MODE: &str = "run.nucleus.landlock.mode";

/// State annotations nucleus adds to a confined container (refused in a config).
pub const STATE_ABI: &str = "run.nucleus.landlock.abi";
pub const STATE_HANDLED: &str = "run.nucleus.landlock.handled";
pub const STATE_UNSUPPORTED: &str = "run.nucleus.landlock.unsupported";

/// At most this many paths per annotation.
pub const MAX_PATHS: usize = 256;

// linux/landlock.h
const CREATE_RULESET_VERSION: libc::c_uint = 1;
const RULE_PATH_BENEATH: libc::c_int = 1;
const RULE_NET_PORT: libc::c_int = 2;

const FS_EXECUTE: u64 = 1 << 0;
const FS_WRITE_FILE: u64 = 1 << 1;
const FS_READ_FILE: u64 = 1 << 2;
const FS_READ_DIR: u64 = 1 << 3;
const FS_TRUNCATE: u64 = 1 << 14;
const FS_IOCTL_DEV: u64 = 1 << 15;
/// Every file system right nucleus knows (ABI 5).
const FS_ALL: u64 = (1 << 16) - 1;
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;

/// Rights names, as reported in state annotations and errors.
const FS_NAMES: [&str; 16] = [
    "execute",
    "write-file",
    "read-file",
    "read-dir",
    "remove-dir",
    "remove-file",
    "make-char",
    "make-dir",
    "make-reg",
    "make-sock",
    "make-fifo",
    "make-block",
    "make-sym",
    "refer",
    "truncate",
    "ioctl-dev",
];
const NET_NAMES: [&str; 2] = ["tcp-bind", "tcp-connect"];

/// `read`: list directories, read files.
const READ_ACCESS: u64 = FS_READ_FILE | FS_READ_DIR;
/// `exec`: read and execute.
const EXEC_ACCESS: u64 = READ_ACCESS | FS_EXECUTE;
/// `write`: every right but execute (create, remove, rename, truncate, device ioctls).
const WRITE_ACCESS: u64 = FS_ALL & !FS_EXECUTE;
/// The rights a rule on a file that is not a directory may carry (the kernel refuses more).
const FILE_ACCESS: u64 = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV;

/// The kernel, as errors and warnings name it.
fn kernel(abi: u32) -> String {
    if abi == 0 {
        "this kernel has no Landlock, so it".to_string()
    } else {
        format!("this kernel's Landlock ABI {abi}")
    }
}

/// The file system rights Landlock ABI `abi` handles.
fn fs_of_abi(abi: u32) -> u64 {
    match abi {
        0 => 0,
        1 => (1 << 13) - 1,
        2 => (1 << 14) - 1,
        3 | 4 => (1 << 15) - 1,
        _ => FS_ALL,
    }
}

/// The network rights Landlock ABI `abi` handles.
fn net_of_abi(abi: u32) -> u64 {
    if abi >= 4 {
        NET_BIND_TCP | NET_CONNECT_TCP
    } else {
        0
    }
}

fn names(fs: u64, net: u64) -> Vec<&'static str> {
    let bits = |mask: u64, names: &'static [&'static str]| {
        names
            .iter()
            .enumerate()
            .filter(move |(i, _)| mask & (1 << i) != 0)
            .map(|(_, n)| *n)
    };
    bits(fs, &FS_NAMES).chain(bits(net, &NET_NAMES)).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    #[error("annotation {annotation}={value:?} is invalid: {problem}")]
    BadAnnotation {
        annotation: String,
        value: String,
        problem: String,
    },
    #[error("unknown annotation {0}: known are run.nucleus.landlock.read, .write, .exec, .tcp-bind, .tcp-connect, .mode")]
    UnknownAnnotation(String),
    #[error("annotation run.nucleus.landlock.mode=enforce: {kernel} cannot enforce {missing}; run.nucleus.landlock.mode=best-effort applies what it can")]
    Unenforceable { kernel: String, missing: String },
    #[error("annotation {annotation}: {path} inside the container: {errno}")]
    Path {
        annotation: String,
        path: String,
        errno: Errno,
    },
    #[error("annotation {annotation}: {path} inside the container is no longer the file the container was confined to at create (replaced since): not confining this process to another")]
    Changed { annotation: String, path: String },
    #[error("landlock: {what}: {errno}")]
    Sys { what: &'static str, errno: Errno },
    #[error("landlock: restricting the process needs no_new_privileges or CAP_SYS_ADMIN in its user namespace")]
    NoPrivilege,
    #[error("landlock: the container init reported {got} confined paths, {want} expected")]
    Report { got: usize, want: usize },
    #[error("landlock: the container state's {STATE_ABI}={0:?} is not an ABI version")]
    StateAbi(String),
}

fn bad(annotation: &str, value: &str, problem: impl Into<String>) -> LandlockError {
    LandlockError::BadAnnotation {
        annotation: annotation.to_string(),
        value: crate::spec::clip(value),
        problem: problem.into(),
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// `create` fails unless the kernel can enforce every right asked for.
    #[default]
    Enforce,
    /// What the kernel cannot enforce is logged and left out.
    BestEffort,
}

/// The annotations, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub mode: Mode,
    /// (annotation, container path, rights), in annotation then list order.
    pub paths: Vec<(&'static str, String, u64)>,
    /// Ports that may be bound, when binding is confined.
    pub bind: Option<Vec<u16>>,
    /// Ports that may be connected to, when connecting is confined.
    pub connect: Option<Vec<u16>>,
}

fn parse_paths(annotation: &str, value: &str) -> Result<Vec<String>, LandlockError> {
    let mut out = Vec::new();
    for entry in value.split(',') {
        let p = entry.trim();
        let why = if p.is_empty() {
            Some("an empty entry (want comma-separated absolute container paths)".to_string())
        } else if p.contains('\0') {
            Some("a path contains a NUL byte".into())
        } else if !p.starts_with('/') {
            Some(format!("{p:?} is not an absolute path"))
        } else if Path::new(p).components().any(|c| c.as_os_str() == "..") {
            Some(format!("{p:?} contains \"..\""))
        } else if p.len() >= libc::PATH_MAX as usize {
            Some(format!(
                "a path is longer than {} bytes",
                libc::PATH_MAX - 1
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return Err(bad(annotation, value, why));
        }
        out.push(p.to_string());
    }
    if out.len() > MAX_PATHS {
        return Err(bad(
            annotation,
            value,
            format!("{} paths, at most {MAX_PATHS}", out.len()),
        ));
    }
    Ok(out)
}

fn parse_port(annotation: &str, value: &str, s: &str) -> Result<u16, LandlockError> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            annotation,
            value,
            format!("{s:?} is not a port (want none, or comma-separated ports 0-65535 or ranges such as 8000-8099)"),
        ));
    }
    s.parse()
        .map_err(|_| bad(annotation, value, format!("port {s} is above 65535")))
}

fn parse_ports(annotation: &str, value: &str) -> Result<Vec<u16>, LandlockError> {
    if value.trim() == "none" {
        return Ok(Vec::new());
    }
    let mut ports = Vec::new();
    for entry in value.split(',') {
        let e = entry.trim();
        match e.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (
                    parse_port(annotation, value, a.trim())?,
                    parse_port(annotation, value, b.trim())?,
                );
                if a > b {
                    return Err(bad(annotation, value, format!("range {e} is backwards")));
                }
                ports.extend(a..=b);
            }
            None => ports.push(parse_port(annotation, value, e)?),
        }
    }
    ports.sort_unstable();
    ports.dedup();
    Ok(ports)
}

impl Config {
    /// The `run.nucleus.landlock.*` annotations; None when there is nothing to confine.
    pub fn parse(annotations: &HashMap<String, String>) -> Result<Option<Config>, LandlockError> {
        let mut c = Config::default();
        for (key, value) in crate::annotation::under(annotations, PREFIX) {
            let (name, rights) = match key.as_str() {
                READ => (READ, READ_ACCESS),
                WRITE => (WRITE, WRITE_ACCESS),
                EXEC => (EXEC, EXEC_ACCESS),
                TCP_BIND => {
                    c.bind = Some(parse_ports(key, value)?);
                    continue;
                }
                TCP_CONNECT => {
                    c.connect = Some(parse_ports(key, value)?);
                    continue;
                }
                MODE => {
                    let modes = [
                        ("enforce", Mode::Enforce),
                        ("best-effort", Mode::BestEffort),
                    ];
                    c.mode = crate::annotation::one_of(value, &modes)
                        .map_err(|words| bad(key, value, format!("expected {words}")))?;
                    continue;
                }
                _ => return Err(LandlockError::UnknownAnnotation(key.clone())),
            };
            for p in parse_paths(key, value)? {
                c.paths.push((name, p, rights));
            }
        }
        let confines = !c.paths.is_empty() || c.bind.is_some() || c.connect.is_some();
        Ok(confines.then_some(c))
    }
}

/// The Landlock ABI version of the running kernel; 0 without Landlock (not built in, or
/// not enabled at boot).
pub fn abi() -> u32 {
    // SAFETY: the version query reads no memory (NULL attribute, size 0).
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(r).unwrap_or(0)
}

/// A file's identity, (device, inode): what a path named at create must still be at `exec`.
pub type Identity = [u64; 2];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRule {
    pub annotation: &'static str,
    pub path: String,
    pub access: u64,
    /// Set once the init has opened it.
    pub id: Option<Identity>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRule {
    pub access: u64,
    pub port: u16,
}

/// What a container's processes get: the annotations against the kernel's ABI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub abi: u32,
    pub mode: Mode,
    pub handled_fs: u64,
    pub handled_net: u64,
    pub paths: Vec<PathRule>,
    pub ports: Vec<PortRule>,
    /// Rights asked for that the kernel cannot enforce (best-effort only).
    pub unsupported: Vec<&'static str>,
    /// The same, said shortly for a log line.
    unsupported_said: String,
}

impl Plan {
    /// The container's plan from its annotations on this kernel; None when it asks for no
    /// confinement. Logs what best-effort leaves out.
    pub fn prepare(annotations: &HashMap<String, String>) -> Result<Option<Plan>, LandlockError> {
        let Some(c) = Config::parse(annotations)? else {
            return Ok(None);
        };
        let p = Plan::decide(c, abi())?;
        if !p.unsupported.is_empty() {
            crate::warn!(
                "landlock: {} cannot enforce {}: left unconfined ({MODE}=best-effort)",
                kernel(p.abi),
                p.unsupported_said
            );
        }
        Ok(Some(p))
    }

    /// The plan `create` made, from the container's state: its annotations (the config's
    /// and the ones [`Plan::state_annotations`] added) and the identities the init
    /// reported. None for a container without Landlock.
    pub fn from_state(
        annotations: &HashMap<String, String>,
        ids: &[Identity],
    ) -> Result<Option<Plan>, LandlockError> {
        let Some(abi) = annotations.get(STATE_ABI) else {
            return Ok(None);
        };
        let abi = abi
            .parse()
            .map_err(|_| LandlockError::StateAbi(abi.clone()))?;
        let config: HashMap<String, String> = annotations
            .iter()
            .filter(|(k, _)| ![STATE_ABI, STATE_HANDLED, STATE_UNSUPPORTED].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let Some(c) = Config::parse(&config)? else {
            return Ok(None);
        };
        let mut p = Plan::decide(c, abi)?;
        p.record(ids.to_vec())?;
        Ok(Some(p))
    }

    /// `config` on a kernel with Landlock ABI `abi`.
    pub fn decide(c: Config, abi: u32) -> Result<Plan, LandlockError> {
        let want_fs = if c.paths.is_empty() { 0 } else { FS_ALL };
        let want_net = c.bind.as_ref().map_or(0, |_| NET_BIND_TCP)
            | c.connect.as_ref().map_or(0, |_| NET_CONNECT_TCP);
        let (handled_fs, handled_net) = (want_fs & fs_of_abi(abi), want_net & net_of_abi(abi));
        let missing = names(want_fs & !handled_fs, want_net & !handled_net);
        // Said shortly when no file system right at all is there.
        let said: Vec<&str> = if handled_fs == 0 && want_fs != 0 {
            std::iter::once("file system access")
                .chain(names(0, want_net & !handled_net))
                .collect()
        } else {
            missing.clone()
        };
        if !missing.is_empty() && c.mode == Mode::Enforce {
            return Err(LandlockError::Unenforceable {
                kernel: kernel(abi),
                missing: said.join(", "),
            });
        }
        let paths = c
            .paths
            .into_iter()
            .filter(|_| handled_fs != 0)
            .map(|(annotation, path, access)| PathRule {
                annotation,
                path,
                access: access & handled_fs,
                id: None,
            })
            .collect();
        let mut ports = Vec::new();
        for (right, list) in [(NET_BIND_TCP, &c.bind), (NET_CONNECT_TCP, &c.connect)] {
            if handled_net & right != 0 {
                for &port in list.iter().flatten() {
                    ports.push(PortRule {
                        access: right,
                        port,
                    });
                }
            }
        }
        Ok(Plan {
            abi,
            mode: c.mode,
            handled_fs,
            handled_net,
            paths,
            ports,
            unsupported: missing,
            unsupported_said: said.join(", "),
        })
    }

    /// What `state` shows of the plan: the ABI, the rights confined, what was left out.
    pub fn state_annotations(&self) -> Vec<(String, String)> {
        let mut out = vec![
            (STATE_ABI.to_string(), self.abi.to_string()),
            (
                STATE_HANDLED.to_string(),
                names(self.handled_fs, self.handled_net).join(","),
            ),
        ];
        if !self.unsupported.is_empty() {
            out.push((STATE_UNSUPPORTED.to_string(), self.unsupported.join(",")));
        }
        out
    }

    /// The identities the init reported for the plan's paths (in order), for `exec`.
    pub fn record(&mut self, ids: Vec<Identity>) -> Result<(), LandlockError> {
        if ids.len() != self.paths.len() {
            return Err(LandlockError::Report {
                got: ids.len(),
                want: self.paths.len(),
            });
        }
        for (p, id) in self.paths.iter_mut().zip(ids) {
            p.id = Some(id);
        }
        Ok(())
    }

    /// Builds the ruleset in the calling process, whose root is the container's: each path
    /// is opened O_PATH beneath that root (symlinks resolved inside it, no magic links).
    /// Where the plan holds identities (an `exec`), every path must still be that file.
    pub fn build(&self) -> Result<Ruleset, LandlockError> {
        if self.handled_fs == 0 && self.handled_net == 0 {
            return Ok(Ruleset {
                fd: None,
                identities: Vec::new(),
            });
        }
        let attr = RulesetAttr {
            handled_access_fs: self.handled_fs,
            handled_access_net: self.handled_net,
        };
        // A kernel before ABI 4 knows only the first field: pass only what it knows.
        let size = if self.handled_net == 0 {
            std::mem::size_of::<u64>()
        } else {
            std::mem::size_of::<RulesetAttr>()
        };
        // SAFETY: `attr` is a live landlock_ruleset_attr of at least `size` bytes.
        let r = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &attr as *const RulesetAttr,
                size,
                0u32,
            )
        };
        let fd = sys_fd(r, "landlock_create_ruleset")?;
        let mut identities = Vec::with_capacity(self.paths.len());
        if !self.paths.is_empty() {
            let root = nix::fcntl::open(
                "/",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|errno| LandlockError::Sys {
                what: "open the container's root",
                errno,
            })?;
            for rule in &self.paths {
                identities.push(add_path(&fd, root.as_fd(), rule)?);
            }
        }
        for p in &self.ports {
            let attr = NetPortAttr {
                allowed_access: p.access,
                port: u64::from(p.port),
            };
            add_rule(&fd, RULE_NET_PORT, &attr as *const NetPortAttr as *const u8)?;
        }
        Ok(Ruleset {
            fd: Some(fd),
            identities,
        })
    }
}

fn add_path(
    ruleset: &OwnedFd,
    root: std::os::fd::BorrowedFd<'_>,
    rule: &PathRule,
) -> Result<Identity, LandlockError> {
    let path_err = |errno| LandlockError::Path {
        annotation: rule.annotation.to_string(),
        path: rule.path.clone(),
        errno,
    };
    let fd = crate::rootfs::resolve::open_path(root, Path::new(&rule.path)).map_err(path_err)?;
    let st = nix::sys::stat::fstat(fd.as_fd()).map_err(path_err)?;
    let id: Identity = [st.st_dev, st.st_ino];
    if rule.id.is_some_and(|want| want != id) {
        return Err(LandlockError::Changed {
            annotation: rule.annotation.to_string(),
            path: rule.path.clone(),
        });
    }
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let attr = PathBeneathAttr {
        allowed_access: if is_dir {
            rule.access
        } else {
            rule.access & FILE_ACCESS
        },
        parent_fd: fd.as_raw_fd(),
    };
    add_rule(
        ruleset,
        RULE_PATH_BENEATH,
        &attr as *const PathBeneathAttr as *const u8,
    )?;
    Ok(id)
}

fn sys_fd(r: libc::c_long, what: &'static str) -> Result<OwnedFd, LandlockError> {
    // SAFETY: `r` is the result of a syscall that returns a new fd (close-on-exec: Landlock
    // always sets it) that nothing else owns, or fails.
    unsafe { crate::sys::owned_fd(r) }.map_err(|errno| LandlockError::Sys { what, errno })
}

fn add_rule(ruleset: &OwnedFd, kind: libc::c_int, attr: *const u8) -> Result<(), LandlockError> {
    // SAFETY: `attr` points to the live attribute struct of `kind` (path beneath or net
    // port); the kernel copies it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            kind,
            attr,
            0u32,
        )
    };
    if r != 0 {
        return Err(LandlockError::Sys {
            what: "landlock_add_rule",
            errno: Errno::last(),
        });
    }
    Ok(())
}

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

#[repr(C)]
struct NetPortAttr {
    allowed_access: u64,
    port: u64,
}

/// A built ruleset, applied with [`Ruleset::restrict_self`]; its fd is close-on-exec.
#[derive(Debug)]
pub struct Ruleset {
    fd: Option<OwnedFd>,
    /// The identities of the plan's paths, in order.
    pub identities: Vec<Identity>,
}

impl Ruleset {
    /// Confines the calling process and its future children. The kernel's rule: the
    /// caller has no_new_privs set, or CAP_SYS_ADMIN in its user namespace.
    pub fn restrict_self(&self) -> Result<(), LandlockError> {
        let Some(fd) = self.fd.as_ref() else {
            return Ok(());
        };
        // SAFETY: landlock_restrict_self on our ruleset fd, no flags; affects this thread,
        // the only one.
        let r = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd.as_raw_fd(), 0u32) };
        match r {
            0 => Ok(()),
            _ if Errno::last() == Errno::EPERM => Err(LandlockError::NoPrivilege),
            _ => Err(LandlockError::Sys {
                what: "landlock_restrict_self",
                errno: Errno::last(),
            }),
        }
    }
}

/// Identities the init reported over the sync channel, until `create` records them.
static REPORTED: Mutex<Vec<Identity>> = Mutex::new(Vec::new());

/// Called by the runtime when the init reports the identities of its confined paths.
pub fn report(ids: Vec<Identity>) {
    if let Ok(mut r) = REPORTED.lock() {
        *r = ids;
    }
}

/// The identities last reported (and forgets them).
pub fn take_reported() -> Vec<Identity> {
    REPORTED
        .lock()
        .map(|mut r| std::mem::take(&mut *r))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::map;

    fn parse(kv: &[(&str, &str)]) -> Result<Option<Config>, LandlockError> {
        Config::parse(&map(kv))
    }

    #[test]
    fn no_annotations_no_confinement() {
        assert_eq!(parse(&[("org.other", "x")]).unwrap(), None);
        assert_eq!(parse(&[(MODE, "best-effort")]).unwrap(), None);
    }

    #[test]
    fn lists_and_ports() {
        let c = parse(&[
            (READ, "/, /etc"),
            (WRITE, "/tmp"),
            (EXEC, "/bin"),
            (TCP_CONNECT, "80,443, 8000-8002"),
            (TCP_BIND, "none"),
            (MODE, "best-effort"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.mode, Mode::BestEffort);
        assert_eq!(
            c.paths,
            vec![
                (EXEC, "/bin".to_string(), EXEC_ACCESS),
                (READ, "/".to_string(), READ_ACCESS),
                (READ, "/etc".to_string(), READ_ACCESS),
                (WRITE, "/tmp".to_string(), WRITE_ACCESS),
            ]
        );
        assert_eq!(c.connect, Some(vec![80, 443, 8000, 8001, 8002]));
        assert_eq!(c.bind, Some(vec![]));
    }

    #[test]
    fn bad_values_name_the_annotation() {
        for (k, v, word) in [
            (READ, "", "empty entry"),
            (READ, "/a,,/b", "empty entry"),
            (WRITE, "tmp", "not an absolute"),
            (WRITE, "/tmp/../etc", "\"..\""),
            (EXEC, "/bin\0", "NUL"),
            (TCP_BIND, "", "not a port"),
            (TCP_BIND, "65536", "above 65535"),
            (TCP_CONNECT, "+80", "not a port"),
            (TCP_CONNECT, "90-80", "backwards"),
            (TCP_CONNECT, "80,none", "not a port"),
            (MODE, "strict", "enforce or best-effort"),
        ] {
            let msg = parse(&[(k, v)]).unwrap_err().to_string();
            assert!(msg.contains(k) && msg.contains(word), "{k}={v:?}: {msg}");
        }
        let many = vec!["/a"; MAX_PATHS + 1].join(",");
        assert!(parse(&[(READ, &many)]).is_err());
        let msg = parse(&[("run.nucleus.landlock.abi", "9")])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("unknown annotation run.nucleus.landlock.abi"),
            "{msg}"
        );
    }

    fn config(mode: Mode) -> Config {
        parse(&[(WRITE, "/tmp"), (TCP_CONNECT, "80")])
            .unwrap()
            .map(|c| Config { mode, ..c })
            .unwrap()
    }

    #[test]
    fn enforce_needs_every_right() {
        let p = Plan::decide(config(Mode::Enforce), 7).unwrap();
        assert_eq!((p.handled_fs, p.handled_net), (FS_ALL, NET_CONNECT_TCP));
        assert!(p.unsupported.is_empty());
        assert_eq!(
            p.ports,
            vec![PortRule {
                access: NET_CONNECT_TCP,
                port: 80
            }]
        );
        assert_eq!(p.paths[0].access, WRITE_ACCESS);
        let msg = Plan::decide(config(Mode::Enforce), 3)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(MODE) && msg.contains("ABI 3") && msg.contains("ioctl-dev, tcp-connect"),
            "{msg}"
        );
        let msg = Plan::decide(config(Mode::Enforce), 0)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("no Landlock"), "{msg}");
    }

    #[test]
    fn best_effort_keeps_what_the_abi_has() {
        let p = Plan::decide(config(Mode::BestEffort), 3).unwrap();
        assert_eq!(p.handled_fs, fs_of_abi(3));
        assert_eq!(p.handled_net, 0);
        assert!(p.ports.is_empty());
        assert_eq!(p.paths[0].access, WRITE_ACCESS & !FS_IOCTL_DEV);
        assert_eq!(p.unsupported, vec!["ioctl-dev", "tcp-connect"]);
        let ann: HashMap<_, _> = p.state_annotations().into_iter().collect();
        assert_eq!(ann[STATE_ABI], "3");
        assert_eq!(ann[STATE_UNSUPPORTED], "ioctl-dev,tcp-connect");
        assert!(
            ann[STATE_HANDLED].starts_with("execute,write-file,")
                && ann[STATE_HANDLED].ends_with("truncate")
        );
        let none = Plan::decide(config(Mode::BestEffort), 0).unwrap();
        assert_eq!((none.handled_fs, none.handled_net), (0, 0));
        assert!(none.paths.is_empty());
    }

    #[test]
    fn record_checks_the_count() {
        let mut p = Plan::decide(config(Mode::Enforce), 7).unwrap();
        assert!(p.record(vec![]).is_err());
        p.record(vec![[1, 2]]).unwrap();
        assert_eq!(p.paths[0].id, Some([1, 2]));
    }

    #[test]
    fn the_state_gives_back_the_plan() {
        let mut ann = map(&[(WRITE, "/tmp"), (TCP_CONNECT, "80"), (MODE, "best-effort")]);
        let c = Config::parse(&ann).unwrap().unwrap();
        let mut want = Plan::decide(c, 3).unwrap();
        ann.extend(want.state_annotations());
        let got = Plan::from_state(&ann, &[[7, 8]]).unwrap().unwrap();
        want.record(vec![[7, 8]]).unwrap();
        assert_eq!(got, want);
        assert_eq!(
            Plan::from_state(&map(&[(WRITE, "/tmp")]), &[]).unwrap(),
            None
        );
        ann.insert(STATE_ABI.into(), "x".into());
        assert!(Plan::from_state(&ann, &[[7, 8]]).is_err());
    }

    #[test]
    fn uapi_layout() {
        assert_eq!(std::mem::size_of::<PathBeneathAttr>(), 12);
        assert_eq!(std::mem::size_of::<NetPortAttr>(), 16);
        assert_eq!(std::mem::size_of::<RulesetAttr>(), 16);
    }
}

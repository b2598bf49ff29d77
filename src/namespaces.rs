//! Which namespaces a container gets: new ones to unshare, existing ones to join by path.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("open {kind} namespace {path}: {source}")]
    Open {
        kind: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("join {kind} namespace {path}: {source}")]
    Join {
        kind: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
    #[error("unshare {flags:?}: {source}")]
    Unshare {
        flags: CloneFlags,
        source: nix::Error,
    },
    #[error("write {path}: {source}")]
    Map {
        path: String,
        source: std::io::Error,
    },
    #[error("{tool} (for the id mappings of a user namespace as an unprivileged user): {msg}")]
    MapTool { tool: &'static str, msg: String },
    #[error("linux.timeOffsets: unknown clock {0:?} (want monotonic or boottime)")]
    Clock(String),
    #[error("bring up the loopback interface of the new network namespace: {0}")]
    Loopback(nix::Error),
}

/// Brings `lo` up in the calling process's (new) network namespace, as runc and crun do:
/// programs bind 127.0.0.1 and ::1 in containers without any other network.
pub fn loopback_up() -> Result<(), NamespaceError> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    use std::os::fd::AsRawFd;
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(NamespaceError::Loopback)?;
    // SAFETY: an all-zero ifreq is a valid value of this plain C struct.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we pass, which outlives
    // both calls; the socket is a live fd.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(NamespaceError::Loopback(nix::Error::last()));
        }
        // IFF_UP is 0x1: ifr_flags is a short.
        #[allow(clippy::cast_possible_truncation)]
        let up = libc::IFF_UP as libc::c_short;
        req.ifr_ifru.ifru_flags |= up;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(NamespaceError::Loopback(nix::Error::last()));
        }
    }
    Ok(())
}

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

pub fn kind(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// The namespace plan of a container.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Namespaces to create, as unshare flags (user excluded: it goes first, on its own).
    pub new: CloneFlags,
    pub new_user: bool,
    /// Namespaces to join, user first (joining it first is what lets the others be joined
    /// with the capabilities it grants).
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
}

impl Plan {
    pub fn empty() -> Plan {
        Plan {
            new: CloneFlags::empty(),
            new_user: false,
            join: Vec::new(),
        }
    }

    pub fn from_spec(spec: &Spec) -> Plan {
        let mut plan = Plan::empty();
        let nss = spec.linux().as_ref().and_then(|l| l.namespaces().clone());
        for ns in nss.unwrap_or_default() {
            match ns.path() {
                Some(p) => plan.join.push((ns.typ(), p.clone())),
                None if ns.typ() == LinuxNamespaceType::User => plan.new_user = true,
                None => plan.new |= flag(ns.typ()),
            }
        }
        plan.join
            .sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
        plan
    }

    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        if t == LinuxNamespaceType::User {
            return self.new_user || self.join.iter().any(|(j, _)| *j == t);
        }
        self.new.contains(flag(t)) || self.join.iter().any(|(j, _)| *j == t)
    }

    pub fn creates(&self, t: LinuxNamespaceType) -> bool {
        if t == LinuxNamespaceType::User {
            return self.new_user;
        }
        self.new.contains(flag(t))
    }

    /// Whether the container init needs a parent of its own between it and the runtime:
    /// for a user namespace (new, its id maps written between its unshare and the other
    /// namespaces, which it must own; or joined), a pid namespace joined by path, and a new
    /// time namespace, all of which a process enters only through a child it makes after
    /// the unshare or setns. Otherwise the runtime's own child becomes the init.
    pub fn needs_intermediate(&self) -> bool {
        self.has(LinuxNamespaceType::User)
            || self.creates(LinuxNamespaceType::Time)
            || self.join.iter().any(|(t, _)| *t == LinuxNamespaceType::Pid)
    }

    /// Open every namespace to join before joining any: after the first setns the paths may
    /// no longer resolve the same way.
    pub fn open_joins(&self) -> Result<Vec<(LinuxNamespaceType, PathBuf, File)>, NamespaceError> {
        self.join
            .iter()
            .map(|(t, p)| {
                File::open(p)
                    .map(|f| (*t, p.clone(), f))
                    .map_err(|source| NamespaceError::Open {
                        kind: kind(*t),
                        path: p.clone(),
                        source,
                    })
            })
            .collect()
    }
}

pub fn join(opened: &[(LinuxNamespaceType, PathBuf, File)]) -> Result<(), NamespaceError> {
    for (t, p, f) in opened {
        nix::sched::setns(f.as_fd(), flag(*t)).map_err(|source| NamespaceError::Join {
            kind: kind(*t),
            path: p.clone(),
            source,
        })?;
    }
    Ok(())
}

pub fn unshare(flags: CloneFlags) -> Result<(), NamespaceError> {
    if flags.is_empty() {
        return Ok(());
    }
    nix::sched::unshare(flags).map_err(|source| NamespaceError::Unshare { flags, source })
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Write uid/gid maps for `pid`, which has just unshared its user namespace, as runc
/// does: directly when the kernel lets the caller (root; an unprivileged user mapping only
/// itself, once setgroups is denied as the kernel requires for such a gid_map), else, for
/// an unprivileged user (subordinate id ranges), through the setuid `newuidmap` and
/// `newgidmap` (Debian's uidmap), which check /etc/subuid and /etc/subgid and handle
/// setgroups themselves.
pub fn write_id_maps(pid: i32, spec: &Spec) -> Result<(), NamespaceError> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let uids = linux.uid_mappings().as_deref().unwrap_or(&[]);
    let gids = linux.gid_mappings().as_deref().unwrap_or(&[]);
    let unprivileged = !nix::unistd::geteuid().is_root();
    if unprivileged && maps_only(gids, nix::unistd::getegid().as_raw()) {
        let path = format!("/proc/{pid}/setgroups");
        match std::fs::write(&path, "deny") {
            // A kernel older than 3.19 has no such file, and no such rule.
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(NamespaceError::Map { path, source: e })
            }
            _ => {}
        }
    }
    write_map(pid, "uid_map", "newuidmap", uids, unprivileged)?;
    write_map(pid, "gid_map", "newgidmap", gids, unprivileged)
}

/// Whether `maps` is the single mapping of host id `id` (to any one container id).
fn maps_only(maps: &[LinuxIdMapping], id: u32) -> bool {
    matches!(maps, [m] if m.host_id() == id && m.size() == 1)
}

fn write_map(
    pid: i32,
    file: &str,
    tool: &'static str,
    maps: &[LinuxIdMapping],
    unprivileged: bool,
) -> Result<(), NamespaceError> {
    if maps.is_empty() {
        return Ok(());
    }
    let path = format!("/proc/{pid}/{file}");
    match std::fs::write(&path, map_text(maps)) {
        Ok(()) => Ok(()),
        Err(e) if unprivileged && e.raw_os_error() == Some(libc::EPERM) => {
            run_map_tool(tool, pid, maps)
        }
        Err(source) => Err(NamespaceError::Map { path, source }),
    }
}

/// `newuidmap PID ID HOSTID SIZE...` (or newgidmap), found in PATH as runc finds it.
fn run_map_tool(
    tool: &'static str,
    pid: i32,
    maps: &[LinuxIdMapping],
) -> Result<(), NamespaceError> {
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(tool);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| NamespaceError::MapTool {
            tool,
            msg: if e.kind() == std::io::ErrorKind::NotFound {
                "not found in PATH (install the uidmap package)".into()
            } else {
                e.to_string()
            },
        })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let msg = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    Err(NamespaceError::MapTool {
        tool,
        msg: format!("{}: {msg}", out.status),
    })
}

/// Clock offsets for a new time namespace; must be written before any process enters it.
pub fn write_time_offsets(spec: &Spec) -> Result<(), NamespaceError> {
    let Some(offsets) = spec.linux().as_ref().and_then(|l| l.time_offsets().clone()) else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        if clock != "monotonic" && clock != "boottime" {
            return Err(NamespaceError::Clock(clock));
        }
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    let path = "/proc/self/timens_offsets".to_string();
    std::fs::write(&path, text).map_err(|source| NamespaceError::Map { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_splits_new_and_joined_user_first() {
        let v = serde_json::json!({
            "ociVersion": "1.2.0",
            "linux": {"namespaces": [
                {"type": "network", "path": "/proc/1/ns/net"},
                {"type": "pid"}, {"type": "mount"},
                {"type": "user", "path": "/proc/1/ns/user"}
            ]}
        });
        let spec: Spec = serde_json::from_value(v).unwrap();
        let p = Plan::from_spec(&spec);
        assert_eq!(p.new, CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS);
        assert!(!p.new_user);
        assert_eq!(p.join[0].0, LinuxNamespaceType::User);
        assert!(p.has(LinuxNamespaceType::Network));
        assert!(!p.creates(LinuxNamespaceType::Network));
    }

    #[test]
    fn id_maps_are_kernel_format() {
        let m: Vec<LinuxIdMapping> =
            serde_json::from_value(serde_json::json!([{"containerID":0,"hostID":1000,"size":10}]))
                .unwrap();
        assert_eq!(map_text(&m), "0 1000 10\n");
    }

    #[test]
    fn only_a_single_own_id_is_a_map_the_user_writes_itself() {
        let m =
            |v: serde_json::Value| -> Vec<LinuxIdMapping> { serde_json::from_value(v).unwrap() };
        assert!(maps_only(
            &m(serde_json::json!([{"containerID":0,"hostID":1000,"size":1}])),
            1000
        ));
        assert!(!maps_only(
            &m(serde_json::json!([{"containerID":0,"hostID":1000,"size":2}])),
            1000
        ));
        assert!(!maps_only(
            &m(serde_json::json!([{"containerID":0,"hostID":1001,"size":1}])),
            1000
        ));
        assert!(!maps_only(
            &m(serde_json::json!([
                {"containerID":0,"hostID":1000,"size":1},
                {"containerID":1,"hostID":100000,"size":65536}
            ])),
            1000
        ));
    }
}

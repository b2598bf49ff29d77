//! Process attributes applied inside the container just before exec: rlimits, user and
//! groups, personality, OOM score, environment, fds, and the exec itself.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxPersonality, LinuxPersonalityDomain, PosixRlimit, PosixRlimitType, User,
};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("setrlimit {kind:?} (soft {soft}, hard {hard}): {source}")]
    Rlimit {
        kind: PosixRlimitType,
        soft: u64,
        hard: u64,
        source: std::io::Error,
    },
    #[error("personality {0:?}: {1}")]
    Personality(String, std::io::Error),
    #[error("{call}({id}): {source}")]
    User {
        call: &'static str,
        id: String,
        source: nix::Error,
    },
    // runc's (Go's) wording, lowercase: Docker maps "no such file or directory" to exit 127.
    #[error("exec: {prog:?}: stat {prog}: {}", errno_text(.source))]
    Stat {
        prog: String,
        source: std::io::Error,
    },
    #[error("exec: {0:?}: permission denied (not an executable file)")]
    NotExecutable(String),
    #[error(
        "process.user: cannot set {what} {id}: it is not mapped in the container's user namespace"
    )]
    Unmapped { what: &'static str, id: u32 },
    #[error("process.user: {n} supplementary groups, more than the kernel's limit of {max}")]
    TooManyGroups { n: usize, max: usize },
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotFound(String),
    #[error("exec {path}: {source}")]
    Exec { path: String, source: nix::Error },
    #[error("chdir to cwd ({cwd}) set in config.json failed: {source}")]
    Cwd { cwd: String, source: nix::Error },
    #[error("close fds: {0}")]
    Fds(std::io::Error),
    #[error("invalid string {0:?} (contains NUL)")]
    Nul(String),
}

fn resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub fn apply_rlimits(limits: &[PosixRlimit]) -> Result<(), SetupError> {
    for l in limits {
        let r = libc::rlimit {
            rlim_cur: l.soft(),
            rlim_max: l.hard(),
        };
        // SAFETY: setrlimit reads the struct we pass by pointer; it lives for the call.
        if unsafe { libc::setrlimit(resource(l.typ()), &r) } != 0 {
            return Err(SetupError::Rlimit {
                kind: l.typ(),
                soft: l.soft(),
                hard: l.hard(),
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

pub fn apply_personality(p: &LinuxPersonality) -> Result<(), SetupError> {
    let domain = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality(2) takes a plain integer and only changes this process's ABI flags.
    if unsafe { libc::personality(domain) } == -1 {
        return Err(SetupError::Personality(
            format!("{:?}", p.domain()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// The container's /etc/passwd and /etc/group (read after pivot_root), each read at most
/// once however many look-ups need it: HOME, the check before Ready and the user switch
/// after `start` share one reading, taken at create as runc's init does.
#[derive(Default)]
pub struct UserDb {
    passwd: std::cell::OnceCell<Option<String>>,
    group: std::cell::OnceCell<Option<String>>,
}

impl UserDb {
    fn passwd(&self) -> Option<&str> {
        self.passwd
            .get_or_init(|| crate::procinfo::read_to_string("/etc/passwd").ok())
            .as_deref()
    }

    fn group(&self) -> Option<&str> {
        self.group
            .get_or_init(|| crate::procinfo::read_to_string("/etc/group").ok())
            .as_deref()
    }
}

/// A passwd entry of the container's /etc/passwd.
struct PasswdEntry {
    name: String,
    home: String,
}

fn passwd_entry(db: &UserDb, uid: u32) -> Option<PasswdEntry> {
    db.passwd()?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| PasswdEntry {
            name: f[0].to_string(),
            home: f[5].to_string(),
        })
    })
}

/// Groups of the container's /etc/group that list `name` as a member.
fn member_groups(db: &UserDb, name: &str) -> Vec<u32> {
    let Some(text) = db.group() else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[3].split(',').any(|m| m == name))
                .then(|| f[2].parse().ok())
                .flatten()
        })
        .collect()
}

/// The user's home from the container's passwd, for a HOME the config does not set.
fn home_of(db: &UserDb, uid: u32) -> String {
    passwd_entry(db, uid).map_or_else(|| "/".to_string(), |e| e.home)
}

/// The supplementary groups: those the container's /etc/group gives the user, plus
/// additionalGids.
fn supplementary_groups(db: &UserDb, user: &User) -> Vec<u32> {
    let mut groups: Vec<u32> = passwd_entry(db, user.uid())
        .map(|e| member_groups(db, &e.name))
        .unwrap_or_default();
    groups.extend(user.additional_gids().iter().flatten().copied());
    groups.dedup();
    groups
}

/// Switch to the configured uid/gid with supplementary groups: those the container's
/// /etc/group gives the user, plus additionalGids. `setgroups_allowed` is false in a user
/// namespace whose setgroups is denied.
pub fn switch_user(db: &UserDb, user: &User, setgroups_allowed: bool) -> Result<(), SetupError> {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    if setgroups_allowed {
        let groups = supplementary_groups(db, user);
        let gids: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
        setgroups(&gids).map_err(|source| SetupError::User {
            call: "setgroups",
            id: format!("{groups:?}"),
            source,
        })?;
    }
    let g = Gid::from_raw(user.gid());
    setresgid(g, g, g).map_err(|source| SetupError::User {
        call: "setresgid",
        id: user.gid().to_string(),
        source,
    })?;
    let u = Uid::from_raw(user.uid());
    setresuid(u, u, u).map_err(|source| SetupError::User {
        call: "setresuid",
        id: user.uid().to_string(),
        source,
    })
}

/// Check, before the init reports ready, that `switch_user` will succeed: in a user
/// namespace every id must be mapped (setresuid/setgroups refuse unmapped ones).
pub fn check_user(
    db: &UserDb,
    user: &User,
    in_user_ns: bool,
    setgroups_allowed: bool,
) -> Result<(), SetupError> {
    if setgroups_allowed {
        let n = supplementary_groups(db, user).len();
        // The kernel's NGROUPS_MAX, which kernel.ngroups_max (read-only) reports: the file
        // is read only for a list that long.
        const NGROUPS_MAX: usize = 65536;
        if n > NGROUPS_MAX {
            let max = crate::rootfs::procfs::runtime_sysctl("kernel/ngroups_max")
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(NGROUPS_MAX);
            if n > max {
                return Err(SetupError::TooManyGroups { n, max });
            }
        }
    }
    if !in_user_ns {
        return Ok(());
    }
    let mapped = |file: &str, id: u32| {
        crate::procinfo::read_to_string(file).map_or(true, |text| id_mapped(&text, id))
    };
    if !mapped("/proc/self/uid_map", user.uid()) {
        return Err(SetupError::Unmapped {
            what: "uid",
            id: user.uid(),
        });
    }
    let mut gids = vec![user.gid()];
    if setgroups_allowed {
        gids.extend(user.additional_gids().iter().flatten().copied());
    }
    for g in gids {
        if !mapped("/proc/self/gid_map", g) {
            return Err(SetupError::Unmapped { what: "gid", id: g });
        }
    }
    Ok(())
}

/// Whether `id` falls in one of the lines (inside, outside, count) of an id map.
fn id_mapped(map: &str, id: u32) -> bool {
    map.lines().any(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        f.len() == 3 && (f[0]..f[0] + f[2]).contains(&u64::from(id))
    })
}

/// An OS error as Go prints it: the C library's text in lowercase, no "(os error N)".
fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_lowercase(),
        None => e.to_string(),
    }
}

/// Find the program as execvp would, with the container's PATH. A path is checked as
/// runc checks it at create: it must exist and be an executable regular file.
pub fn lookup(prog: &str, env: &[String]) -> Result<PathBuf, SetupError> {
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return match p.metadata() {
            Err(e) => Err(SetupError::Stat {
                prog: crate::spec::clip(prog),
                source: e,
            }),
            Ok(_) if !is_executable(&p) => Err(SetupError::NotExecutable(crate::spec::clip(prog))),
            Ok(_) => Ok(p),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(prog);
        if is_executable(&cand) {
            return Ok(cand);
        }
    }
    Err(SetupError::NotFound(prog.to_string()))
}

fn is_executable(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) on a valid NUL-terminated path.
    let ok = unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0;
    ok && p.metadata().is_ok_and(|m| m.is_file())
}

/// Mark every fd from `first` upward close-on-exec, so only stdio and the preserved fds
/// reach the container process.
pub fn cloexec_from(first: i32) -> Result<(), SetupError> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on fds of this process.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return Ok(());
    }
    // close_range refused (old kernel, a filter around the runtime): one fd at a time.
    for fd in super::fork::open_fds_from(first) {
        // SAFETY: F_SETFD only sets the close-on-exec flag of one of our fds.
        let r = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EBADF) {
                return Err(SetupError::Fds(e));
            }
        }
    }
    Ok(())
}

fn cstrings(v: &[String]) -> Result<Vec<CString>, SetupError> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| SetupError::Nul(s.clone())))
        .collect()
}

/// The signals this process ignores, when known: [`note_ignored_signals`] read them. Only
/// those need resetting before the execve (see [`reset_ignored_signals`]).
static IGNORED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// Records the signals this process ignores (SigIgn of /proc/self/status, read only from a
/// procfs), so that the reset before the execve makes one rt_sigaction per ignored signal
/// instead of 62. The init calls it before pivot_root, while /proc is still the host's (or
/// the joined mount namespace's); nothing it runs afterwards ignores a signal. Unknown (no
/// procfs there), every signal is reset as before.
pub fn note_ignored_signals() {
    if let Some(mask) = read_ignored_signals() {
        let _ = IGNORED.set(mask);
    }
}

fn read_ignored_signals() -> Option<u64> {
    use std::io::Read;
    use std::os::fd::AsFd;
    let mut f = std::fs::File::open("/proc/self/status").ok()?;
    let fs = nix::sys::statfs::fstatfs(f.as_fd()).ok()?;
    if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
        return None;
    }
    let mut text = String::with_capacity(4096);
    f.read_to_string(&mut text).ok()?;
    sig_ign_mask(&text)
}

/// The SigIgn mask of a /proc/PID/status text.
fn sig_ign_mask(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// Every signal back to its default disposition. An ignored signal stays ignored across
/// execve: the runtime ignores SIGPIPE (its start-up, main.rs), and the runtime's caller may
/// have ignored others (nohup: SIGHUP). Without this a container process would inherit them
/// (`yes | head` would never end); under runc every signal starts at its default. Handled
/// signals are reset by execve itself. The raw syscall reaches glibc's internal real-time
/// signals too, which the process is about to leave behind with the execve.
fn reset_ignored_signals() {
    let ignored = IGNORED.get().copied();
    let default = libc::sigaction {
        sa_sigaction: libc::SIG_DFL,
        // SAFETY: sigset_t is a plain bit set; all-zero is the empty set.
        sa_mask: unsafe { std::mem::zeroed() },
        sa_flags: 0,
        sa_restorer: None,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        if ignored.is_some_and(|m| m & (1u64 << (sig - 1)) == 0) {
            continue;
        }
        // SAFETY: rt_sigaction with a valid struct and the kernel's sigset size (8 bytes);
        // SIG_DFL installs no handler. A failure leaves that one signal as it was.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &default as *const libc::sigaction,
                std::ptr::null_mut::<libc::sigaction>(),
                8usize,
            )
        };
    }
}

/// execve; returns only on failure.
pub fn exec(path: &Path, args: &[String], env: &[String]) -> SetupError {
    let p = match CString::new(path.as_os_str().as_bytes()) {
        Ok(p) => p,
        Err(_) => return SetupError::Nul(path.display().to_string()),
    };
    let (a, e) = match (cstrings(args), cstrings(env)) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(x), _) | (_, Err(x)) => return x,
    };
    reset_ignored_signals();
    match nix::unistd::execve(&p, &a, &e) {
        Err(source) => SetupError::Exec {
            path: path.display().to_string(),
            source,
        },
        Ok(never) => match never {},
    }
}

/// The environment of the container process: config env, with HOME from the container's
/// passwd when the config does not set it (as runc does).
pub fn environment(db: &UserDb, env: &[String], uid: u32) -> Vec<String> {
    let mut out = env.to_vec();
    if !out.iter().any(|e| e.starts_with("HOME=")) {
        out.push(format!("HOME={}", home_of(db, uid)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_uses_path_and_reports_missing() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(lookup("sh", &env).unwrap().ends_with("sh"));
        assert_eq!(lookup("/bin/sh", &env).unwrap(), PathBuf::from("/bin/sh"));
        let e = lookup("/x/y", &env).unwrap_err().to_string();
        assert!(
            e == "exec: \"/x/y\": stat /x/y: no such file or directory",
            "{e}"
        );
        let e = lookup("/etc/passwd", &env).unwrap_err().to_string();
        assert!(e.contains("permission denied"), "{e}");
        let e = lookup("/", &env).unwrap_err().to_string();
        assert!(e.contains("permission denied"), "{e}");
        let e = lookup("no-such-prog-xyz", &env).unwrap_err().to_string();
        assert_eq!(
            e,
            "exec: \"no-such-prog-xyz\": executable file not found in $PATH"
        );
    }

    #[test]
    fn id_maps_are_read() {
        let map = "         0     100000       1000\n      1000       5000          1\n";
        assert!(id_mapped(map, 0) && id_mapped(map, 999) && id_mapped(map, 1000));
        assert!(!id_mapped(map, 1001) && !id_mapped(map, 5000));
    }

    #[test]
    fn sig_ign_is_parsed() {
        let status = "Name:\tx\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001001\nSigCgt:\t0\n";
        assert_eq!(sig_ign_mask(status), Some(0x1001));
        assert_eq!(sig_ign_mask("Name:\tx\n"), None);
        // This test process (Rust's runtime ignores SIGPIPE) reads its own.
        let mask = read_ignored_signals().expect("SigIgn of /proc/self/status");
        assert_ne!(mask & (1 << (libc::SIGPIPE - 1)), 0, "{mask:#x}");
    }

    #[test]
    fn home_is_added_once() {
        let db = UserDb::default();
        let env = environment(&db, &["HOME=/h".into()], 0);
        assert_eq!(env, vec!["HOME=/h".to_string()]);
        let env = environment(&db, &[], 0);
        assert!(env[0].starts_with("HOME="));
    }
}

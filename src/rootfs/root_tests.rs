//! Real setups inside a forked child with its own mount namespace (needs root). Each test
//! checks, from the child, the resulting mount table and files, and, from the parent, that
//! nothing leaked into the host's mount table.

use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe2, ForkResult};
use oci_spec::runtime::{LinuxDeviceBuilder, LinuxDeviceType, MountBuilder, Spec};

use super::{RootfsError, RootfsSetup};
use crate::procinfo::mountinfo::{self, MountInfo};

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(format!($($arg)*));
        }
    };
}

/// For the tests marked `#[ignore = "needs root"]`: run with `--include-ignored` (as
/// hack/test does, as root), they fail rather than pass without root.
fn need_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (it is ignored unless run with --include-ignored)"
    );
}

/// Runs `f` in a forked child in a new mount namespace and returns its verdict.
fn in_child(f: impl FnOnce() -> Check) -> Check {
    forked(|| {
        unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare: {e}"))?;
        f()
    })
}

/// Held while a test writes an executable and around fork, so that no forked child of
/// another test thread inherits a writable fd of it (exec would fail with ETXTBSY).
static FORK_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` in a forked child and returns its verdict.
fn forked(f: impl FnOnce() -> Check) -> Check {
    let (rd, wr) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    let guard = FORK_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // SAFETY: the child only runs the test closure and leaves with _exit, never returning
    // into the test harness.
    let pid = unsafe { fork() };
    drop(guard);
    match pid.map_err(|e| e.to_string())? {
        ForkResult::Child => {
            drop(rd);
            // A panic must not unwind into the test harness of the forked copy.
            let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .unwrap_or_else(|_| Err("panicked".to_string()));
            let code = match verdict {
                Ok(()) => 0,
                Err(msg) => {
                    let _ = nix::unistd::write(wr.as_fd(), msg.as_bytes());
                    1
                }
            };
            // SAFETY: _exit is async-signal-safe and skips the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(wr);
            let mut msg = String::new();
            let _ = std::fs::File::from(rd).read_to_string(&mut msg);
            match waitpid(child, None).map_err(|e| e.to_string())? {
                WaitStatus::Exited(_, 0) => Ok(()),
                other => Err(format!("child {other:?}: {msg}")),
            }
        }
    }
}

/// A bundle in a temp dir with an empty rootfs holding busybox (when available).
struct Bundle {
    _dir: tempfile::TempDir,
    /// Canonical path, taken before any pivot makes the host paths unreachable.
    path: PathBuf,
}

impl Bundle {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("rootfs/bin")).expect("mkdir rootfs");
        if Path::new("/usr/bin/busybox").exists() {
            let _guard = FORK_LOCK.lock().unwrap_or_else(|p| p.into_inner());
            std::fs::copy("/usr/bin/busybox", dir.path().join("rootfs/bin/busybox"))
                .expect("copy busybox");
        }
        let path = std::fs::canonicalize(dir.path()).expect("canonicalize");
        Self { _dir: dir, path }
    }

    fn bundle(&self) -> PathBuf {
        self.path.clone()
    }

    fn rootfs(&self) -> PathBuf {
        self.bundle().join("rootfs")
    }

    /// No host mount may mention the bundle after the child is gone.
    fn check_no_leak(&self) -> Check {
        let host = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        let b = self.bundle();
        ensure!(
            !host.contains(b.to_str().unwrap_or("?")),
            "mount leaked into the host:\n{host}"
        );
        Ok(())
    }
}

fn mounts_in_child() -> Result<Vec<MountInfo>, String> {
    mountinfo::read_self().map_err(|e| e.to_string())
}

fn find<'a>(m: &'a [MountInfo], point: &str) -> Result<&'a MountInfo, String> {
    m.iter()
        .rev()
        .find(|i| i.mount_point == Path::new(point))
        .ok_or_else(|| format!("no mount at {point}: {m:#?}"))
}

fn mount_opts(point: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let line = text
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(point))
        .ok_or_else(|| format!("no mount at {point}"))?;
    Ok(line
        .split(' ')
        .nth(5)
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect())
}

/// `stage` given the setup of `spec` on `b`'s rootfs.
fn with_setup<T>(
    spec: &Spec,
    b: &Bundle,
    no_pivot: bool,
    user_ns: bool,
    stage: impl FnOnce(&RootfsSetup<'_>) -> T,
) -> T {
    let rootfs = b.rootfs();
    let bundle = b.bundle();
    stage(&RootfsSetup {
        spec,
        rootfs: &rootfs,
        bundle: &bundle,
        no_pivot,
        user_ns,
    })
}

/// The mounts before the pivot, as the init makes them in its mount namespace.
fn prepare(spec: &Spec, b: &Bundle, user_ns: bool) -> Result<(), RootfsError> {
    with_setup(spec, b, false, user_ns, |setup| setup.prepare())
}

fn run_setup(spec: &Spec, b: &Bundle, no_pivot: bool, user_ns: bool) -> Check {
    with_setup(spec, b, no_pivot, user_ns, |setup| {
        setup.prepare().map_err(|e| format!("prepare: {e}"))?;
        setup.pivot().map_err(|e| format!("pivot: {e}"))?;
        setup.finalize().map_err(|e| format!("finalize: {e}"))
    })
}

#[test]
#[ignore = "needs root"]
fn default_spec_full_setup() {
    need_root();
    let b = Bundle::new();
    let mut spec = Spec::default();
    if let Some(p) = spec.process_mut() {
        p.set_cwd("/work/dir".into());
    }
    let res = in_child(|| {
        run_setup(&spec, &b, false, false)?;
        ensure!(Path::new("/work/dir").is_dir(), "cwd not created");
        let m = mounts_in_child()?;
        for point in [
            "/",
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
        ] {
            find(&m, point)?;
        }
        ensure!(find(&m, "/proc")?.fstype == "proc", "proc type");
        ensure!(
            find(&m, "/dev/pts")?
                .super_options
                .iter()
                .any(|o| o == "ptmxmode=666"),
            "devpts options: {:?}",
            find(&m, "/dev/pts")?
        );
        ensure!(
            find(&m, "/dev/shm")?
                .super_options
                .iter()
                .any(|o| o == "size=65536k"),
            "shm size"
        );
        ensure!(
            mount_opts("/")?.contains(&"ro".to_string()),
            "root not read-only"
        );
        ensure!(
            mount_opts("/sys")?.contains(&"ro".to_string()),
            "/sys not read-only"
        );
        ensure!(
            mount_opts("/proc/sys")?.contains(&"ro".to_string()),
            "/proc/sys not read-only"
        );
        ensure!(
            mount_opts("/dev/shm")?.iter().any(|o| o == "noexec"),
            "/dev/shm exec"
        );
        // The old root is gone: every mount is one of ours.
        let bundle = b.bundle();
        ensure!(
            m.iter().all(|i| !i.mount_point.starts_with(&bundle) && !i.mount_point.starts_with("/home")),
            "old root visible: {m:#?}"
        );
        ensure!(
            std::env::current_dir().map_err(|e| e.to_string())? == Path::new("/"),
            "cwd"
        );
        // Masked paths: files become /dev/null, directories an empty read-only tmpfs.
        let keys = std::fs::metadata("/proc/keys").map_err(|e| format!("/proc/keys: {e}"))?;
        ensure!(
            keys.file_type().is_char_device() && keys.rdev() == nix::sys::stat::makedev(1, 3),
            "/proc/keys not masked"
        );
        for file in ["/proc/kcore", "/proc/timer_list", "/proc/sched_debug"] {
            if let Ok(md) = std::fs::metadata(file) {
                ensure!(
                    md.rdev() == nix::sys::stat::makedev(1, 3),
                    "{file} not masked"
                );
            }
        }
        let firmware = find(&m, "/sys/firmware")?;
        ensure!(
            firmware.fstype == "tmpfs",
            "/sys/firmware type {}",
            firmware.fstype
        );
        ensure!(
            mount_opts("/sys/firmware")?.contains(&"ro".to_string()),
            "/sys/firmware writable"
        );
        ensure!(
            std::fs::read_dir("/sys/firmware")
                .map_err(|e| e.to_string())?
                .count()
                == 0,
            "/sys/firmware not empty"
        );
        // Devices and links.
        for (dev, major, minor) in [
            ("null", 1, 3),
            ("zero", 1, 5),
            ("full", 1, 7),
            ("random", 1, 8),
            ("urandom", 1, 9),
            ("tty", 5, 0),
        ] {
            let md =
                std::fs::metadata(format!("/dev/{dev}")).map_err(|e| format!("/dev/{dev}: {e}"))?;
            ensure!(md.file_type().is_char_device(), "/dev/{dev} type");
            ensure!(
                md.rdev() == nix::sys::stat::makedev(major, minor),
                "/dev/{dev} numbers"
            );
            ensure!(
                md.mode() & 0o7777 == 0o666,
                "/dev/{dev} mode {:o}",
                md.mode()
            );
        }
        for (link, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
        ] {
            let t = std::fs::read_link(format!("/dev/{link}"))
                .map_err(|e| format!("/dev/{link}: {e}"))?;
            ensure!(t == Path::new(target), "/dev/{link} -> {}", t.display());
        }
        ensure!(
            std::fs::read_link("/dev/core").is_ok() == Path::new("/proc/kcore").exists(),
            "/dev/core"
        );
        // Root is read-only, tmpfs /dev is not.
        ensure!(std::fs::write("/newfile", b"").is_err(), "root writable");
        std::fs::write("/dev/shm/ok", b"").map_err(|e| format!("/dev/shm: {e}"))?;
        // cgroup hierarchies (v1 host: one per hierarchy, read-only).
        if Path::new("/sys/fs/cgroup/cpu").exists() || Path::new("/sys/fs/cgroup/memory").exists() {
            let cg: Vec<_> = m
                .iter()
                .filter(|i| i.mount_point.starts_with("/sys/fs/cgroup/"))
                .collect();
            ensure!(!cg.is_empty(), "no cgroup hierarchies");
            ensure!(
                mount_opts("/sys/fs/cgroup")?.contains(&"ro".to_string()),
                "cgroup tmpfs writable"
            );
        }
        Ok(())
    });
    res.and_then(|()| b.check_no_leak()).expect("default spec");
}

#[test]
#[ignore = "needs root"]
fn symlink_out_of_rootfs_does_not_touch_the_host() {
    need_root();
    let b = Bundle::new();
    let host_dir = tempfile::tempdir().expect("tempdir");
    let host_dir_path = std::fs::canonicalize(host_dir.path()).expect("canonicalize");
    symlink(&host_dir_path, b.rootfs().join("mnt")).expect("symlink");
    symlink("/etc", b.rootfs().join("etc2")).expect("symlink");
    std::fs::write(b.bundle().join("hosts"), b"127.0.0.1 x\n").expect("write");
    let mut spec = Spec::default();
    spec.set_mounts(Some(vec![
        MountBuilder::default()
            .destination("/mnt")
            .typ("tmpfs")
            .source("tmpfs")
            .build()
            .expect("m"),
        MountBuilder::default()
            .destination("/etc/hosts")
            .typ("bind")
            .source("hosts")
            .options(vec!["bind".into(), "ro".into()])
            .build()
            .expect("m"),
    ]));
    spec.set_linux(None);
    spec.set_root(None);
    let res = in_child(|| {
        let rootfs = b.rootfs();
        prepare(&spec, &b, false).map_err(|e| format!("prepare: {e}"))?;
        let m = mounts_in_child()?;
        ensure!(
            m.iter().all(|i| i.mount_point != host_dir_path),
            "mounted over the host dir"
        );
        ensure!(
            m.iter().all(|i| i.mount_point != Path::new("/etc/hosts")),
            "mounted over host /etc/hosts"
        );
        let inside = rootfs.join(host_dir_path.strip_prefix("/").unwrap_or(&host_dir_path));
        find(&m, inside.to_str().unwrap_or("?"))?;
        find(&m, rootfs.join("etc/hosts").to_str().unwrap_or("?"))?;
        ensure!(
            std::fs::read(rootfs.join("etc/hosts")).map_err(|e| e.to_string())? == b"127.0.0.1 x\n",
            "hosts content"
        );
        Ok(())
    });
    res.and_then(|()| b.check_no_leak())
        .expect("symlink escape");
    assert_eq!(
        std::fs::read_dir(host_dir.path())
            .expect("read_dir")
            .count(),
        0,
        "host dir touched"
    );
}

#[test]
#[ignore = "needs root"]
fn no_pivot_user_ns_devices_and_mount_options() {
    need_root();
    let b = Bundle::new();
    std::fs::create_dir_all(b.bundle().join("data/sub")).expect("mkdir");
    let mut spec = Spec::default();
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.retain(|m| m.destination() != Path::new("/sys/fs/cgroup"));
    mounts.push(
        MountBuilder::default()
            .destination("/data")
            .typ("none")
            .source("data")
            .options(vec![
                "rbind".into(),
                "rro".into(),
                "nosuid".into(),
                "noatime".into(),
                "rprivate".into(),
            ])
            .build()
            .expect("m"),
    );
    mounts.push(
        MountBuilder::default()
            .destination("/etc")
            .typ("tmpfs")
            .source("tmpfs")
            .options(vec!["tmpcopyup".into(), "ro".into(), "mode=755".into()])
            .build()
            .expect("m"),
    );
    for m in mounts
        .iter_mut()
        .filter(|m| m.destination() == Path::new("/dev"))
    {
        let mut opts = m.options().clone().unwrap_or_default();
        opts.push("ro".into());
        m.set_options(Some(opts));
    }
    std::fs::create_dir_all(b.rootfs().join("etc/sub")).expect("mkdir etc");
    std::fs::write(b.rootfs().join("etc/sub/hostname"), b"image\n").expect("write");
    spec.set_mounts(Some(mounts));
    if let Some(linux) = spec.linux_mut() {
        linux.set_devices(Some(vec![LinuxDeviceBuilder::default()
            .path("/dev/fuse")
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(229)
            .file_mode(0o600u32)
            .build()
            .expect("device")]));
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
    }
    let res = in_child(|| {
        // Inner mount on the bind source, to check that rbind + rro reaches it.
        nix::mount::mount(
            Some("tmpfs"),
            &b.bundle().join("data/sub"),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|e| format!("inner tmpfs: {e}"))?;
        run_setup(&spec, &b, true, true)?;
        let m = mounts_in_child()?;
        // With user_ns the devices are bind mounts of the host's nodes.
        find(&m, "/dev/null")?;
        find(&m, "/dev/fuse")?;
        let md = std::fs::metadata("/dev/null").map_err(|e| e.to_string())?;
        ensure!(md.rdev() == nix::sys::stat::makedev(1, 3), "/dev/null");
        let data = mount_opts("/data")?;
        ensure!(
            data.contains(&"ro".into())
                && data.contains(&"nosuid".into())
                && data.contains(&"noatime".into()),
            "/data {data:?}"
        );
        ensure!(
            mount_opts("/data/sub")?.contains(&"ro".into()),
            "rro did not reach /data/sub"
        );
        ensure!(find(&m, "/data")?.optional.is_empty(), "/data not private");
        ensure!(find(&m, "/etc")?.fstype == "tmpfs", "/etc not tmpfs");
        ensure!(
            mount_opts("/etc")?.contains(&"ro".to_string()),
            "/etc writable"
        );
        let copied = std::fs::read("/etc/sub/hostname").map_err(|e| format!("copy-up: {e}"))?;
        ensure!(copied == b"image\n", "copy-up content");
        ensure!(
            mount_opts("/dev")?.contains(&"ro".to_string()),
            "/dev writable"
        );
        ensure!(
            std::env::current_dir().map_err(|e| e.to_string())? == Path::new("/"),
            "cwd"
        );
        ensure!(
            Path::new("/bin/busybox").exists() || !Path::new("/usr/bin/busybox").exists(),
            "not chrooted"
        );
        Ok(())
    });
    res.and_then(|()| b.check_no_leak())
        .expect("no-pivot setup");
}

#[test]
#[ignore = "needs root"]
fn errors_leave_nothing_behind() {
    need_root();
    let b = Bundle::new();
    symlink("/etc", b.rootfs().join("proc")).expect("symlink");
    let spec = Spec::default();
    let res = in_child(|| match prepare(&spec, &b, false) {
        Err(e) if e.to_string().contains("symlink") => Ok(()),
        other => Err(format!("expected a symlink refusal, got {other:?}")),
    });
    res.and_then(|()| b.check_no_leak()).expect("refusal");
}

/// Runs busybox inside the finished rootfs, as the container process would, and checks
/// what it sees. With NUCLEUS_SHOW_MOUNTINFO set the table is printed, for comparing by
/// eye with `runc run` on the same bundle.
#[test]
#[ignore = "needs root"]
fn busybox_runs_in_the_finished_rootfs() {
    need_root();
    assert!(
        Path::new("/usr/bin/busybox").exists(),
        "needs /usr/bin/busybox (installed by hack/deps)"
    );
    let b = Bundle::new();
    let spec = Spec::default();
    let res = in_child(|| {
        run_setup(&spec, &b, false, false)?;
        let out = std::fs::File::create("/dev/shm/mountinfo").map_err(|e| e.to_string())?;
        let status = std::process::Command::new("/bin/busybox")
            .args(["cat", "/proc/self/mountinfo"])
            .stdout(out)
            .status()
            .map_err(|e| format!("exec busybox: {e}"))?;
        ensure!(status.success(), "busybox: {status}");
        let text = std::fs::read_to_string("/dev/shm/mountinfo").map_err(|e| e.to_string())?;
        if std::env::var_os("NUCLEUS_SHOW_MOUNTINFO").is_some() {
            eprintln!("{text}");
        }
        let points: Vec<&str> = text.lines().filter_map(|l| l.split(' ').nth(4)).collect();
        for want in [
            "/",
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/proc/keys",
            "/proc/sys",
            "/sys/firmware",
        ] {
            ensure!(points.contains(&want), "{want} missing from:\n{text}");
        }
        Ok(())
    });
    res.and_then(|()| b.check_no_leak()).expect("busybox");
}

/// Enters a new user namespace mapping only root, as a rootless-style container would.
fn enter_user_ns() -> Check {
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| format!("unshare user: {e}"))?;
    std::fs::write("/proc/self/uid_map", "0 0 1").map_err(|e| format!("uid_map: {e}"))?;
    std::fs::write("/proc/self/setgroups", "deny").map_err(|e| format!("setgroups: {e}"))?;
    std::fs::write("/proc/self/gid_map", "0 0 1").map_err(|e| format!("gid_map: {e}"))?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare mount: {e}"))
}

#[test]
#[ignore = "needs root"]
fn user_ns_keeps_locked_flags_and_falls_back_for_sysfs() {
    need_root();
    let b = Bundle::new();
    let locked = b.bundle().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    let bind = |opts: &[&str]| {
        MountBuilder::default()
            .destination("/data")
            .typ("bind")
            .source("locked")
            .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .expect("mount")
    };
    let mut clear_locked = Spec::default();
    clear_locked.set_mounts(Some(vec![bind(&["bind", "dev"])]));
    let mut spec = Spec::default();
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.retain(|m| m.destination() != Path::new("/sys/fs/cgroup"));
    mounts.push(bind(&["bind", "ro"]));
    // gid 5 is not mapped in this user namespace (runc's rootless spec drops it too).
    for m in mounts
        .iter_mut()
        .filter(|m| m.destination() == Path::new("/dev/pts"))
    {
        let opts = m.options().clone().unwrap_or_default();
        m.set_options(Some(opts.into_iter().filter(|o| o != "gid=5").collect()));
    }
    spec.set_mounts(Some(mounts));
    let res = in_child(|| {
        // Flags set in the initial user namespace become locked for the container.
        nix::mount::mount(
            Some("tmpfs"),
            &locked,
            Some("tmpfs"),
            nix::mount::MsFlags::MS_NOSUID
                | nix::mount::MsFlags::MS_NODEV
                | nix::mount::MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|e| format!("locked tmpfs: {e}"))?;
        enter_user_ns()?;
        forked(|| {
            unshare(CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
            match prepare(&clear_locked, &b, true) {
                Err(e) if e.to_string().contains("/data") && e.to_string().contains("EPERM") => {
                    Ok(())
                }
                other => Err(format!(
                    "clearing a locked flag: expected EPERM naming /data, got {other:?}"
                )),
            }
        })?;
        // proc and mqueue need pid and IPC namespaces owned by the user namespace.
        unshare(CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWIPC)
            .map_err(|e| format!("unshare pid, ipc: {e}"))?;
        forked(|| {
            run_setup(&spec, &b, false, true)?;
            let m = mounts_in_child()?;
            let data = mount_opts("/data")?;
            for want in ["ro", "nosuid", "nodev", "noexec"] {
                ensure!(
                    data.iter().any(|o| o == want),
                    "/data lost {want}: {data:?}"
                );
            }
            let sys = find(&m, "/sys")?;
            ensure!(sys.fstype == "sysfs", "/sys type {}", sys.fstype);
            ensure!(
                mount_opts("/sys")?.contains(&"ro".to_string()),
                "/sys writable"
            );
            find(&m, "/dev/null")?;
            find(&m, "/dev/tty")?;
            let null = std::fs::metadata("/dev/null").map_err(|e| e.to_string())?;
            ensure!(null.rdev() == nix::sys::stat::makedev(1, 3), "/dev/null");
            ensure!(
                mount_opts("/")?.contains(&"ro".to_string()),
                "root writable"
            );
            let keys = std::fs::metadata("/proc/keys").map_err(|e| format!("/proc/keys: {e}"))?;
            ensure!(
                keys.rdev() == nix::sys::stat::makedev(1, 3),
                "/proc/keys not masked"
            );
            Ok(())
        })
    });
    res.and_then(|()| b.check_no_leak())
        .expect("user namespace");
}

#[test]
#[ignore = "needs root"]
fn shared_root_propagation_does_not_leak_to_the_parent_namespace() {
    need_root();
    let b = Bundle::new();
    let mut spec = Spec::default();
    if let Some(l) = spec.linux_mut() {
        l.set_rootfs_propagation(Some("rshared".into()));
    }
    let mut bad = spec.clone();
    if let Some(l) = bad.linux_mut() {
        l.set_rootfs_propagation(Some("sideways".into()));
    }
    let res = in_child(|| {
        // This namespace plays the host, with shared mounts like a systemd host.
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            nix::mount::MsFlags::MS_SHARED | nix::mount::MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("make / rshared: {e}"))?;
        forked(|| {
            unshare(CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
            match prepare(&bad, &b, false) {
                Err(e) if e.to_string().contains("sideways") => {}
                other => return Err(format!("bad propagation accepted: {other:?}")),
            }
            run_setup(&spec, &b, false, false)?;
            let root = find(&mounts_in_child()?, "/")?.clone();
            ensure!(root.is_shared(), "/ not shared: {root:?}");
            Ok(())
        })?;
        let host = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
        let bundle = b.bundle();
        ensure!(
            !host.contains(bundle.to_str().unwrap_or("?")),
            "leaked into the parent namespace:\n{host}"
        );
        Ok(())
    });
    res.and_then(|()| b.check_no_leak()).expect("rshared");
}

#[test]
#[ignore = "needs root"]
fn console_is_the_pty_slave() {
    need_root();
    let b = Bundle::new();
    let spec = Spec::default();
    let res = in_child(|| {
        run_setup(&spec, &b, false, false)?;
        let master = nix::pty::posix_openpt(
            nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
        )
        .map_err(|e| format!("openpt: {e}"))?;
        nix::pty::grantpt(&master).map_err(|e| e.to_string())?;
        nix::pty::unlockpt(&master).map_err(|e| e.to_string())?;
        // SAFETY: single-threaded forked child; nothing else calls ptsname concurrently.
        let name = unsafe { nix::pty::ptsname(&master) }.map_err(|e| e.to_string())?;
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&name)
            .map_err(|e| format!("{name}: {e}"))?;
        super::mount_console(slave.as_fd()).map_err(|e| e.to_string())?;
        let want = slave.metadata().map_err(|e| e.to_string())?.rdev();
        let got = std::fs::metadata("/dev/console")
            .map_err(|e| e.to_string())?
            .rdev();
        ensure!(
            want == got,
            "/dev/console is {got:#x}, pty slave {name} is {want:#x}"
        );
        Ok(())
    });
    res.and_then(|()| b.check_no_leak()).expect("console");
}

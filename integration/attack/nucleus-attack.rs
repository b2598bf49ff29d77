//! A hostile program for the security tests: run inside a container, it tries to reach the
//! host's nucleus binary and host directories through every other visible process, the way
//! CVE-2019-5736 and CVE-2024-21626 did. Built statically by build.rs (no libraries needed
//! in the container), with std only.
//!
//! usage: nucleus-attack HOST_DEV:HOST_INO scan | watch SECONDS [EXPECT_COMM]
//! Prints one line per finding; `VULN ...` lines are breaches. Exit 3 when any was found.
//! `watch` keeps scanning new processes and reports how many nucleus processes it caught.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const O_PATH: i32 = 0o10000000;
const ST_RDONLY: u64 = 1;
const ETXTBSY: i32 = 26;

#[repr(C)]
struct StatVfs {
    f_bsize: u64,
    f_frsize: u64,
    f_blocks: u64,
    f_bfree: u64,
    f_bavail: u64,
    f_files: u64,
    f_ffree: u64,
    f_favail: u64,
    f_fsid: u64,
    f_flag: u64,
    f_namemax: u64,
    spare: [i32; 6],
}

extern "C" {
    fn fstatvfs(fd: i32, buf: *mut StatVfs) -> i32;
}

struct Attack {
    host: (u64, u64),
    mounts: HashSet<u64>,
    vulns: usize,
}

fn mount_id_of(fd: &File) -> Option<u64> {
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
}

fn own_mounts() -> HashSet<u64> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect()
}

fn open_path(p: &str) -> std::io::Result<File> {
    OpenOptions::new().read(true).custom_flags(O_PATH).open(p)
}

impl Attack {
    fn vuln(&mut self, what: String) {
        self.vulns += 1;
        println!("VULN {what}");
    }

    /// `f` (an O_PATH fd reached through `via`): the host binary on a writable mount, or a
    /// directory of a mount the container does not have, is a breach.
    fn judge(&mut self, via: &str, f: &File) {
        let Ok(md) = f.metadata() else { return };
        if (md.dev(), md.ino()) == self.host {
            let mut vfs = std::mem::MaybeUninit::<StatVfs>::zeroed();
            // SAFETY: fstatvfs fills the struct (glibc's x86_64 layout) for a live fd.
            let ro = unsafe { fstatvfs(f.as_raw_fd(), vfs.as_mut_ptr()) } == 0
                // SAFETY: initialised by the successful call (or zeroed).
                && unsafe { vfs.assume_init() }.f_flag & ST_RDONLY != 0;
            let reopen = format!("/proc/self/fd/{}", f.as_raw_fd());
            match OpenOptions::new().write(true).open(&reopen) {
                Ok(_) => self.vuln(format!("{via}: host binary opened for writing")),
                Err(e) if e.raw_os_error() == Some(ETXTBSY) && !ro => {
                    self.vuln(format!("{via}: host binary on a writable mount (busy now)"))
                }
                Err(e) => println!("SAFE {via}: host binary reached but not writable: {e}"),
            }
        } else if md.is_dir() {
            if let Some(id) = mount_id_of(f) {
                if !self.mounts.contains(&id) {
                    self.vuln(format!("{via}: directory of a mount outside the container"));
                }
            }
        }
    }

    fn scan_pid(&mut self, pid: u32) {
        let exe = format!("/proc/{pid}/exe");
        if let Ok(f) = open_path(&exe) {
            self.judge(&exe, &f);
        }
        for dir in ["map_files", "fd"] {
            let d = format!("/proc/{pid}/{dir}");
            let Ok(entries) = fs::read_dir(&d) else { continue };
            for e in entries.flatten() {
                let p = format!("{d}/{}", e.file_name().to_string_lossy());
                if let Ok(f) = open_path(&p) {
                    self.judge(&p, &f);
                }
            }
        }
    }
}

fn pids() -> Vec<u32> {
    let me = std::process::id();
    fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|&p| p != me)
                .collect()
        })
        .unwrap_or_default()
}

fn comm(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: nucleus-attack DEV:INO scan | watch SECONDS [COMM]";
    let host = args
        .get(1)
        .and_then(|s| s.split_once(':'))
        .and_then(|(d, i)| Some((d.parse().ok()?, i.parse().ok()?)))
        .expect(usage);
    let mut a = Attack {
        host,
        mounts: own_mounts(),
        vulns: 0,
    };
    match args.get(2).map(String::as_str) {
        Some("scan") => {
            for p in pids() {
                a.scan_pid(p);
            }
        }
        Some("watch") => {
            let secs: u64 = args.get(3).and_then(|s| s.parse().ok()).expect(usage);
            let want = args.get(4).cloned().unwrap_or_else(|| "nucleus".into());
            let end = Instant::now() + Duration::from_secs(secs);
            let mut caught = HashSet::new();
            while Instant::now() < end {
                for p in pids() {
                    if comm(p) == want {
                        caught.insert(p);
                        a.scan_pid(p);
                    }
                }
            }
            println!("caught={}", caught.len());
        }
        _ => panic!("{usage}"),
    }
    println!("vulns={}", a.vulns);
    std::process::exit(if a.vulns > 0 { 3 } else { 0 });
}

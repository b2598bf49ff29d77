//! `nucleus update`: change the resources of a live container, with runc 1.1's flags and
//! `--resources` JSON (an OCI LinuxResources object, from a file or `-` for stdin).
//!
//! As in runc, a zero or empty value means "leave unchanged", and only the fields runc's
//! update honours are taken from the JSON (memory limit/reservation/swap, the cpu fields,
//! blockIO weight, pids limit, unified; plus cpu burst/idle, which newer runc honours):
//! containerd sends the container's whole resources, devices included, and those must not
//! be re-applied as a side effect. The changes are merged into the resources stored in
//! state.json, the complete result is applied, and only then saved.

use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use super::{open, ContainerError, Runtime};
use crate::state::Status;

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("invalid value for --{flag}: {value:?}: {reason}")]
    Flag {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Value(#[from] crate::cgroups::InvalidResource),
    #[error("cannot read resources from {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot parse resources from {path} (want an OCI LinuxResources JSON object): {source}"
    )]
    Parse {
        path: PathBuf,
        source: crate::spec::SpecError,
    },
    #[error("Intel RDT/{feature}: {what} is not enabled (no resctrl filesystem is mounted)")]
    RdtNotEnabled {
        feature: &'static str,
        what: &'static str,
    },
    #[error("--{flag}: Intel RDT is not managed by nucleus")]
    RdtUnsupported { flag: &'static str },
}

impl From<UpdateError> for ContainerError {
    fn from(e: UpdateError) -> Self {
        ContainerError::Other(e.to_string())
    }
}

/// The command line of `update`. Values are the raw flag strings, parsed as runc parses them.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    pub id: String,
    /// `--resources FILE|-`: when set, every other flag is ignored (as in runc).
    pub resources: Option<PathBuf>,
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub memory_reservation: Option<String>,
    pub kernel_memory: Option<String>,
    pub kernel_memory_tcp: Option<String>,
    pub cpu_shares: Option<String>,
    pub cpu_quota: Option<String>,
    pub cpu_period: Option<String>,
    pub cpu_rt_runtime: Option<String>,
    pub cpu_rt_period: Option<String>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<String>,
    pub blkio_weight: Option<String>,
    pub l3_cache_schema: Option<String>,
    pub mem_bw_schema: Option<String>,
}

/// A size as docker's `units.RAMInBytes` reads it: a decimal number, an optional space, an
/// optional binary unit (k, m, g, t, p; any case) optionally followed by `i` and/or `b`
/// ("64m", "1.5G", "512KiB", "100b"). `-1` is accepted as "unlimited".
pub fn parse_ram_in_bytes(s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    let bad = || format!("invalid size: '{s}'");
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, rest) = s.split_at(num_end);
    if num.is_empty() || !num.starts_with(|c: char| c.is_ascii_digit()) || num.ends_with('.') {
        return Err(bad());
    }
    let size: f64 = num.parse().map_err(|_| bad())?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest).to_ascii_lowercase();
    let mut chars = rest.chars().peekable();
    let mult: f64 = match chars.peek() {
        Some('k') => 1024f64,
        Some('m') => 1024f64.powi(2),
        Some('g') => 1024f64.powi(3),
        Some('t') => 1024f64.powi(4),
        Some('p') => 1024f64.powi(5),
        _ => 1.0,
    };
    if mult != 1.0 {
        chars.next();
        if chars.peek() == Some(&'i') {
            chars.next();
        }
    }
    if chars.peek() == Some(&'b') {
        chars.next();
    }
    if chars.next().is_some() {
        return Err(bad());
    }
    let bytes = size * mult;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(format!("invalid size: '{s}': too large"));
    }
    // Whole bytes of a size checked to fit above (runc's units parser rounds down too).
    #[allow(clippy::cast_possible_truncation)]
    let whole = bytes as i64;
    Ok(whole)
}

fn flag_err(flag: &'static str, value: &str, reason: impl Into<String>) -> UpdateError {
    UpdateError::Flag {
        flag,
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn ram_flag(flag: &'static str, v: &Option<String>) -> Result<Option<i64>, UpdateError> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => parse_ram_in_bytes(s)
            .map(|n| (n != 0).then_some(n))
            .map_err(|r| flag_err(flag, s, r)),
    }
}

fn num_flag<T: std::str::FromStr + Default + PartialEq>(
    flag: &'static str,
    v: &Option<String>,
    want: &str,
) -> Result<Option<T>, UpdateError> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<T>()
            .map(|n| (n != T::default()).then_some(n))
            .map_err(|_| flag_err(flag, s, format!("want {want}"))),
    }
}

fn str_flag(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.is_empty())
}

/// Whether a resctrl filesystem is mounted (the only way Intel RDT could be enabled).
fn resctrl_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| m.lines().any(|l| l.contains(" - resctrl ")))
        .unwrap_or(false)
}

/// The changes the flags ask for, as a LinuxResources holding only the changed fields.
pub fn changes_from_flags(o: &UpdateOptions) -> Result<LinuxResources, UpdateError> {
    for (flag, v, feature, what) in [
        (
            "l3-cache-schema",
            &o.l3_cache_schema,
            "CAT",
            "l3 cache schema",
        ),
        (
            "mem-bw-schema",
            &o.mem_bw_schema,
            "MBA",
            "memory bandwidth schema",
        ),
    ] {
        if v.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(if resctrl_mounted() {
                UpdateError::RdtUnsupported { flag }
            } else {
                UpdateError::RdtNotEnabled { feature, what }
            });
        }
    }
    let mut mem = LinuxMemory::default();
    mem.set_limit(ram_flag("memory", &o.memory)?);
    mem.set_swap(ram_flag("memory-swap", &o.memory_swap)?);
    mem.set_reservation(ram_flag("memory-reservation", &o.memory_reservation)?);
    mem.set_kernel(ram_flag("kernel-memory", &o.kernel_memory)?);
    mem.set_kernel_tcp(ram_flag("kernel-memory-tcp", &o.kernel_memory_tcp)?);

    let mut cpu = LinuxCpu::default();
    let uint = "a non-negative integer";
    cpu.set_shares(num_flag("cpu-share", &o.cpu_shares, uint)?);
    cpu.set_period(num_flag("cpu-period", &o.cpu_period, uint)?);
    cpu.set_realtime_period(num_flag("cpu-rt-period", &o.cpu_rt_period, uint)?);
    let int = "an integer (-1 for unlimited)";
    cpu.set_quota(num_flag("cpu-quota", &o.cpu_quota, int)?);
    cpu.set_realtime_runtime(num_flag("cpu-rt-runtime", &o.cpu_rt_runtime, int)?);
    cpu.set_cpus(str_flag(&o.cpuset_cpus));
    cpu.set_mems(str_flag(&o.cpuset_mems));

    let mut r = LinuxResources::default();
    r.set_memory(Some(mem));
    r.set_cpu(Some(cpu));
    if let Some(w) = num_flag::<u16>("blkio-weight", &o.blkio_weight, "a number from 10 to 1000")? {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    if let Some(l) = num_flag::<i64>("pids-limit", &o.pids_limit, "an integer (-1 for unlimited)")?
    {
        let mut p = LinuxPids::default();
        p.set_limit(l);
        r.set_pids(Some(p));
    }
    Ok(r)
}

/// The changes in a `--resources` JSON document: only the fields update honours, with zero
/// and empty values dropped (they mean "unchanged").
pub fn changes_from_json(path: &Path, data: &[u8]) -> Result<LinuxResources, UpdateError> {
    let full: LinuxResources =
        crate::spec::parse("resources", data).map_err(|source| UpdateError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
    let nz_i = |v: Option<i64>| v.filter(|n| *n != 0);
    let nz_u = |v: Option<u64>| v.filter(|n| *n != 0);
    let mut r = LinuxResources::default();
    if let Some(m) = full.memory() {
        let mut mem = LinuxMemory::default();
        mem.set_limit(nz_i(m.limit()));
        mem.set_reservation(nz_i(m.reservation()));
        mem.set_swap(nz_i(m.swap()));
        mem.set_kernel(nz_i(m.kernel()));
        mem.set_kernel_tcp(nz_i(m.kernel_tcp()));
        r.set_memory(Some(mem));
    }
    if let Some(c) = full.cpu() {
        let mut cpu = LinuxCpu::default();
        cpu.set_shares(nz_u(c.shares()));
        cpu.set_quota(nz_i(c.quota()));
        cpu.set_period(nz_u(c.period()));
        cpu.set_realtime_runtime(nz_i(c.realtime_runtime()));
        cpu.set_realtime_period(nz_u(c.realtime_period()));
        cpu.set_cpus(c.cpus().clone().filter(|s| !s.is_empty()));
        cpu.set_mems(c.mems().clone().filter(|s| !s.is_empty()));
        cpu.set_burst(c.burst());
        cpu.set_idle(c.idle());
        r.set_cpu(Some(cpu));
    }
    if let Some(w) = full.block_io().as_ref().and_then(|b| b.weight()) {
        if w != 0 {
            let mut b = LinuxBlockIo::default();
            b.set_weight(Some(w));
            r.set_block_io(Some(b));
        }
    }
    if let Some(p) = full.pids().filter(|p| p.limit() != 0) {
        r.set_pids(Some(p));
    }
    if let Some(u) = full.unified().as_ref().filter(|u| !u.is_empty()) {
        r.set_unified(Some(u.clone()));
    }
    Ok(r)
}

/// `old` with `changes` (as built by `changes_from_*`) laid over it.
pub fn merge(old: &LinuxResources, changes: &LinuxResources) -> LinuxResources {
    let mut new = old.clone();
    if let Some(m) = changes.memory() {
        let mut nm = new.memory().unwrap_or_default();
        if let Some(v) = m.limit() {
            nm.set_limit(Some(v));
        }
        if let Some(v) = m.reservation() {
            nm.set_reservation(Some(v));
        }
        if let Some(v) = m.swap() {
            nm.set_swap(Some(v));
        } else if m.limit() == Some(-1) && nm.swap().is_some() {
            // As runc: unlimited memory without a swap value means unlimited swap too; the
            // stored swap limit would otherwise be below the new memory limit.
            nm.set_swap(Some(-1));
        }
        if *m != LinuxMemory::default() || new.memory().is_some() {
            new.set_memory(Some(nm));
        }
    }
    if let Some(c) = changes.cpu() {
        let mut nc = new.cpu().clone().unwrap_or_default();
        macro_rules! take {
            ($get:ident, $set:ident) => {
                if let Some(v) = c.$get() {
                    nc.$set(Some(v));
                }
            };
        }
        take!(shares, set_shares);
        take!(quota, set_quota);
        take!(period, set_period);
        take!(realtime_runtime, set_realtime_runtime);
        take!(realtime_period, set_realtime_period);
        take!(burst, set_burst);
        take!(idle, set_idle);
        if let Some(v) = c.cpus() {
            nc.set_cpus(Some(v.clone()));
        }
        if let Some(v) = c.mems() {
            nc.set_mems(Some(v.clone()));
        }
        if *c != LinuxCpu::default() || new.cpu().is_some() {
            new.set_cpu(Some(nc));
        }
    }
    if let Some(w) = changes.block_io().as_ref().and_then(|b| b.weight()) {
        let mut nb = new.block_io().clone().unwrap_or_default();
        nb.set_weight(Some(w));
        new.set_block_io(Some(nb));
    }
    if let Some(p) = changes.pids() {
        new.set_pids(Some(*p));
    }
    if let Some(u) = changes.unified() {
        let mut nu = new.unified().clone().unwrap_or_default();
        nu.extend(u.iter().map(|(k, v)| (k.clone(), v.clone())));
        new.set_unified(Some(nu));
    }
    new
}

fn read_changes(path: &Path) -> Result<LinuxResources, UpdateError> {
    let mut data = Vec::new();
    let read = if path == Path::new("-") {
        std::io::stdin().lock().read_to_end(&mut data)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut data))
    };
    read.map_err(|source| UpdateError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let shown = if path == Path::new("-") {
        Path::new("standard input")
    } else {
        path
    };
    changes_from_json(shown, &data)
}

/// `nucleus update`: apply the changed resources to the running container and remember them.
/// Bad input fails before anything is written; if the kernel refuses a value half-way, the
/// previous resources are applied again.
pub fn update(rt: &Runtime, o: &UpdateOptions) -> Result<LinuxResources, ContainerError> {
    let changes = match &o.resources {
        Some(p) => read_changes(p)?,
        None => changes_from_flags(o)?,
    };
    if changes
        .memory()
        .is_some_and(|m| m.kernel().is_some() || m.kernel_tcp().is_some())
    {
        crate::warn!("Kernel memory settings are ignored and will be removed");
    }
    let (dir, st, status) = open(rt, &o.id)?;
    if status == Status::Stopped {
        return Err(ContainerError::NotRunning);
    }
    let cg = st.cgroup.clone().ok_or_else(|| {
        ContainerError::Other(format!(
            "container {} has no cgroup in its state file, so its resources cannot change",
            o.id
        ))
    })?;
    let mut config = dir.load_config()?;
    let old = config
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let new = merge(&old, &changes);
    crate::cgroups::validate(&new).map_err(UpdateError::from)?;
    if let Err(e) = cg.apply(&new) {
        if let Err(e2) = cg.apply(&old) {
            crate::warn!(
                "restoring the previous resources failed too ({e2}); the cgroup may not match state.json"
            );
        }
        return Err(e.into());
    }
    let mut linux = config.linux().clone().unwrap_or_default();
    linux.set_resources(Some(new.clone()));
    config.set_linux(Some(linux));
    dir.save_config(&mut config)?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_docker_units() {
        let k = 1024i64;
        for (s, want) in [
            ("0", 0),
            ("100", 100),
            ("100b", 100),
            ("100B", 100),
            ("64k", 64 * k),
            ("64K", 64 * k),
            ("64m", 64 * k * k),
            ("64M", 64 * k * k),
            ("64mb", 64 * k * k),
            ("64MiB", 64 * k * k),
            ("64 m", 64 * k * k),
            ("64 ", 64),
            ("1g", k * k * k),
            ("1.5g", 3 * k * k * k / 2),
            ("2t", 2 * k * k * k * k),
            ("1p", k * k * k * k * k),
            ("-1", -1),
        ] {
            assert_eq!(parse_ram_in_bytes(s), Ok(want), "{s}");
        }
        for bad in [
            "",
            "m",
            "-2",
            "-1m",
            "64x",
            "64mm",
            "64  m",
            "1.",
            ".5m",
            "64bb",
            "64mib5",
            "1..2",
            "1e3",
            "99999999p",
        ] {
            assert!(parse_ram_in_bytes(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn flags_build_only_the_changed_fields() {
        let o = UpdateOptions {
            memory: Some("64m".into()),
            memory_swap: Some("-1".into()),
            cpu_shares: Some("512".into()),
            cpu_quota: Some("-1".into()),
            cpuset_cpus: Some("0".into()),
            pids_limit: Some("20".into()),
            blkio_weight: Some("300".into()),
            memory_reservation: Some("0".into()),
            ..Default::default()
        };
        let r = changes_from_flags(&o).unwrap();
        let m = r.memory().unwrap();
        assert_eq!(m.limit(), Some(64 << 20));
        assert_eq!(m.swap(), Some(-1));
        assert_eq!(m.reservation(), None, "0 means unchanged");
        let c = r.cpu().as_ref().unwrap();
        assert_eq!(c.shares(), Some(512));
        assert_eq!(c.quota(), Some(-1));
        assert_eq!(c.period(), None);
        assert_eq!(c.cpus().as_deref(), Some("0"));
        assert_eq!(r.pids().unwrap().limit(), 20);
        assert_eq!(r.block_io().as_ref().unwrap().weight(), Some(300));
    }

    #[test]
    fn bad_flags_name_the_flag() {
        for (o, flag) in [
            (
                UpdateOptions {
                    memory: Some("lots".into()),
                    ..Default::default()
                },
                "--memory",
            ),
            (
                UpdateOptions {
                    cpu_period: Some("-5".into()),
                    ..Default::default()
                },
                "--cpu-period",
            ),
            (
                UpdateOptions {
                    pids_limit: Some("x".into()),
                    ..Default::default()
                },
                "--pids-limit",
            ),
            (
                UpdateOptions {
                    blkio_weight: Some("70000".into()),
                    ..Default::default()
                },
                "--blkio-weight",
            ),
        ] {
            let e = changes_from_flags(&o).unwrap_err().to_string();
            assert!(e.contains(flag), "{e}");
        }
    }

    #[test]
    fn rdt_flags_are_refused() {
        let o = UpdateOptions {
            l3_cache_schema: Some("L3:0=f".into()),
            ..Default::default()
        };
        let e = changes_from_flags(&o).unwrap_err().to_string();
        assert!(e.contains("Intel RDT"), "{e}");
    }

    #[test]
    fn json_keeps_only_what_update_honours() {
        let json = br#"{
            "devices": [{"allow": true, "access": "rwm"}],
            "memory": {"limit": 1048576, "reservation": 0, "swappiness": 10},
            "cpu": {"shares": 0, "quota": 20000, "cpus": ""},
            "pids": {"limit": 0},
            "blockIO": {"weight": 0},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 0}]
        }"#;
        let r = changes_from_json(Path::new("x"), json).unwrap();
        assert!(r.devices().is_none());
        assert!(r.hugepage_limits().is_none());
        let m = r.memory().unwrap();
        assert_eq!(m.limit(), Some(1 << 20));
        assert_eq!(m.reservation(), None);
        assert_eq!(m.swappiness(), None);
        let c = r.cpu().as_ref().unwrap();
        assert_eq!(
            (c.shares(), c.quota(), c.cpus().clone()),
            (None, Some(20000), None)
        );
        assert!(r.pids().is_none());
        assert!(r.block_io().is_none());
        let e = changes_from_json(Path::new("res.json"), b"{\"memory\": 5}").unwrap_err();
        assert!(e.to_string().contains("res.json"), "{e}");
    }

    #[test]
    fn merge_keeps_unchanged_fields() {
        let old: LinuxResources = serde_json::from_str(
            r#"{"devices": [{"allow": false, "access": "rwm"}],
                "memory": {"limit": 100000000, "swap": 200000000, "swappiness": 5},
                "cpu": {"quota": 50000, "period": 100000, "cpus": "0"},
                "pids": {"limit": 10}}"#,
        )
        .unwrap();
        let changes = changes_from_flags(&UpdateOptions {
            memory: Some("50m".into()),
            cpu_period: Some("200000".into()),
            ..Default::default()
        })
        .unwrap();
        let new = merge(&old, &changes);
        let m = new.memory().unwrap();
        assert_eq!(m.limit(), Some(50 << 20));
        assert_eq!(m.swap(), Some(200000000));
        assert_eq!(m.swappiness(), Some(5));
        let c = new.cpu().as_ref().unwrap();
        assert_eq!((c.quota(), c.period()), (Some(50000), Some(200000)));
        assert_eq!(c.cpus().as_deref(), Some("0"));
        assert_eq!(new.pids().unwrap().limit(), 10);
        assert_eq!(new.devices(), old.devices());
        let unlimited = merge(
            &old,
            &changes_from_flags(&UpdateOptions {
                memory: Some("-1".into()),
                ..Default::default()
            })
            .unwrap(),
        );
        let m = unlimited.memory().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(-1), Some(-1)));
        // Nothing asked for: nothing appears.
        let none = merge(
            &LinuxResources::default(),
            &changes_from_flags(&UpdateOptions::default()).unwrap(),
        );
        assert_eq!(none, LinuxResources::default());
    }
}

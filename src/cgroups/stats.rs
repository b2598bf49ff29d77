//! Resource usage in the JSON shape of runc's `events --stats` (`types.Stats`): field names
//! and the omission of zero values follow runc's Go struct tags.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;

use super::files::{keyed_value, parse_u64, read_file};
use super::{CgroupDir, CgroupError};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    /// Filled by the caller from the container's network namespace, if at all.
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

/// runc's names are the camel-cased field names but for `ioQueueRecursive`.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Intel RDT is not managed by this runtime; kept for the JSON shape (`{}`).
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct IntelRdt {}

/// A number from `dir/file`, 0 when the file is absent (feature not in this kernel).
fn opt_u64(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    if !dir.join(file).exists() {
        return Ok(0);
    }
    let s = read_file(dir, file)?;
    parse_u64(&s).ok_or_else(|| CgroupError::Parse {
        path: dir.join(file),
        content: s,
    })
}

fn opt_string(dir: &Path, file: &str) -> Result<String, CgroupError> {
    if !dir.join(file).exists() {
        return Ok(String::new());
    }
    read_file(dir, file)
}

/// A "key value" file as a map.
fn flat_keyed(dir: &Path, file: &str) -> Result<BTreeMap<String, u64>, CgroupError> {
    let s = opt_string(dir, file)?;
    Ok(s.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), parse_u64(v.trim())?))
        })
        .collect())
}

/// "0-2,4" → [0, 1, 2, 4].
fn parse_list(s: &str) -> Vec<u16> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u16>().ok()),
        }
    }
    out
}

/// USER_HZ: cpuacct.stat counts in clock ticks, which the kernel fixes at 100 for userspace.
const NANOS_PER_TICK: u64 = 1_000_000_000 / 100;

pub fn v1_stats(dirs: &BTreeMap<String, CgroupDir>) -> Result<Stats, CgroupError> {
    let mut st = Stats::default();
    let dir = |c: &str| dirs.get(c).map(|d| d.path.as_path()).filter(|p| p.exists());
    if let Some(d) = dir("cpuacct") {
        let u = &mut st.cpu.usage;
        u.total = opt_u64(d, "cpuacct.usage")?;
        u.percpu = opt_string(d, "cpuacct.usage_percpu")?
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        // "cpu user system" per line after a header.
        for line in opt_string(d, "cpuacct.usage_all")?.lines().skip(1) {
            let f: Vec<u64> = line
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            if f.len() == 3 {
                u.percpu_user.push(f[1]);
                u.percpu_kernel.push(f[2]);
            }
        }
        let stat = opt_string(d, "cpuacct.stat")?;
        u.user = keyed_value(&stat, "user").unwrap_or(0) * NANOS_PER_TICK;
        u.kernel = keyed_value(&stat, "system").unwrap_or(0) * NANOS_PER_TICK;
    }
    if let Some(d) = dir("cpu") {
        let s = flat_keyed(d, "cpu.stat")?;
        st.cpu.throttling = Throttling {
            periods: s.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: s.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: s.get("throttled_time").copied().unwrap_or(0),
        };
    }
    if let Some(d) = dir("cpuset") {
        let c = &mut st.cpuset;
        c.cpus = parse_list(&opt_string(d, "cpuset.cpus")?);
        c.mems = parse_list(&opt_string(d, "cpuset.mems")?);
        c.cpu_exclusive = opt_u64(d, "cpuset.cpu_exclusive")?;
        c.mem_hardwall = opt_u64(d, "cpuset.mem_hardwall")?;
        c.mem_exclusive = opt_u64(d, "cpuset.mem_exclusive")?;
        c.memory_migrate = opt_u64(d, "cpuset.memory_migrate")?;
        c.memory_spread_page = opt_u64(d, "cpuset.memory_spread_page")?;
        c.memory_spread_slab = opt_u64(d, "cpuset.memory_spread_slab")?;
        c.memory_pressure = opt_u64(d, "cpuset.memory_pressure")?;
        c.sched_load_balance = opt_u64(d, "cpuset.sched_load_balance")?;
        c.sched_relax_domain_level = opt_string(d, "cpuset.sched_relax_domain_level")?
            .parse()
            .unwrap_or(0);
    }
    if let Some(d) = dir("memory") {
        let m = &mut st.memory;
        m.raw = flat_keyed(d, "memory.stat")?;
        m.cache = m.raw.get("cache").copied().unwrap_or(0);
        let entry = |prefix: &str| -> Result<MemoryEntry, CgroupError> {
            Ok(MemoryEntry {
                limit: opt_u64(d, &format!("{prefix}limit_in_bytes"))?,
                usage: opt_u64(d, &format!("{prefix}usage_in_bytes"))?,
                max: opt_u64(d, &format!("{prefix}max_usage_in_bytes"))?,
                failcnt: opt_u64(d, &format!("{prefix}failcnt"))?,
            })
        };
        m.usage = entry("memory.")?;
        m.swap = entry("memory.memsw.")?;
        m.kernel = entry("memory.kmem.")?;
        m.kernel_tcp = entry("memory.kmem.tcp.")?;
    }
    if let Some(d) = dir("pids") {
        st.pids = pids(d)?;
    }
    if let Some(d) = dir("blkio") {
        st.blkio = v1_blkio(d)?;
    }
    if let Some(d) = dir("hugetlb") {
        for size in hugepage_sizes() {
            st.hugetlb.insert(
                size.clone(),
                Hugetlb {
                    usage: opt_u64(d, &format!("hugetlb.{size}.usage_in_bytes"))?,
                    max: opt_u64(d, &format!("hugetlb.{size}.max_usage_in_bytes"))?,
                    failcnt: opt_u64(d, &format!("hugetlb.{size}.failcnt"))?,
                },
            );
        }
    }
    Ok(st)
}

fn pids(d: &Path) -> Result<Pids, CgroupError> {
    let max = opt_u64(d, "pids.max")?;
    Ok(Pids {
        current: opt_u64(d, "pids.current")?,
        // runc reports an unlimited pids.max as no limit.
        limit: if max == u64::MAX { 0 } else { max },
    })
}

/// Lines of "major:minor Op value"; the trailing device-less "Total" line is skipped.
fn blkio_entries(content: &str) -> Vec<BlkioEntry> {
    content
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, op, value) = match f.as_slice() {
                [dev, op, value] => (*dev, op.to_string(), *value),
                [dev, value] => (*dev, String::new(), *value),
                _ => return None,
            };
            let (maj, min) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op,
                value: value.parse().ok()?,
            })
        })
        .collect()
}

fn v1_blkio(d: &Path) -> Result<Blkio, CgroupError> {
    let mut b = Blkio::default();
    // Same preference as runc: CFQ statistics, then BFQ, then the throttle counters.
    if !opt_string(d, "blkio.io_serviced_recursive")?.is_empty() {
        let e = |f: &str| opt_string(d, f).map(|s| blkio_entries(&s));
        b.sectors_recursive = e("blkio.sectors_recursive")?;
        b.io_service_bytes_recursive = e("blkio.io_service_bytes_recursive")?;
        b.io_serviced_recursive = e("blkio.io_serviced_recursive")?;
        b.io_queued_recursive = e("blkio.io_queued_recursive")?;
        b.io_service_time_recursive = e("blkio.io_service_time_recursive")?;
        b.io_wait_time_recursive = e("blkio.io_wait_time_recursive")?;
        b.io_merged_recursive = e("blkio.io_merged_recursive")?;
        b.io_time_recursive = e("blkio.time_recursive")?;
    } else if d.join("blkio.bfq.io_serviced_recursive").exists() {
        b.io_service_bytes_recursive =
            blkio_entries(&opt_string(d, "blkio.bfq.io_service_bytes_recursive")?);
        b.io_serviced_recursive = blkio_entries(&opt_string(d, "blkio.bfq.io_serviced_recursive")?);
    } else {
        b.io_service_bytes_recursive =
            blkio_entries(&opt_string(d, "blkio.throttle.io_service_bytes_recursive")?);
        b.io_serviced_recursive =
            blkio_entries(&opt_string(d, "blkio.throttle.io_serviced_recursive")?);
    }
    Ok(b)
}

/// Page sizes as the hugetlb controller names them ("2MB", "1GB").
fn hugepage_sizes() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(if kb >= 1 << 20 && kb % (1 << 20) == 0 {
                format!("{}GB", kb >> 20)
            } else if kb >= 1 << 10 && kb % (1 << 10) == 0 {
                format!("{}MB", kb >> 10)
            } else {
                format!("{kb}KB")
            })
        })
        .collect();
    out.sort();
    out
}

pub fn v2_stats(d: &Path) -> Result<Stats, CgroupError> {
    let mut st = Stats::default();
    let cpu = flat_keyed(d, "cpu.stat")?;
    let get = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    st.cpu.usage.total = get(&cpu, "usage_usec") * 1000;
    st.cpu.usage.user = get(&cpu, "user_usec") * 1000;
    st.cpu.usage.kernel = get(&cpu, "system_usec") * 1000;
    st.cpu.throttling = Throttling {
        periods: get(&cpu, "nr_periods"),
        throttled_periods: get(&cpu, "nr_throttled"),
        throttled_time: get(&cpu, "throttled_usec") * 1000,
    };
    st.cpuset.cpus = parse_list(&opt_string(d, "cpuset.cpus.effective")?);
    st.cpuset.mems = parse_list(&opt_string(d, "cpuset.mems.effective")?);

    let m = &mut st.memory;
    m.raw = flat_keyed(d, "memory.stat")?;
    m.cache = get(&m.raw, "file");
    let events = flat_keyed(d, "memory.events")?;
    m.usage = MemoryEntry {
        limit: opt_u64(d, "memory.max")?,
        usage: opt_u64(d, "memory.current")?,
        max: opt_u64(d, "memory.peak")?,
        failcnt: get(&events, "max"),
    };
    // v1 reports swap as memory+swap; keep that meaning.
    if d.join("memory.swap.current").exists() {
        let swap_limit = opt_u64(d, "memory.swap.max")?;
        let swap_events = flat_keyed(d, "memory.swap.events")?;
        m.swap = MemoryEntry {
            limit: if swap_limit == u64::MAX || m.usage.limit == u64::MAX {
                u64::MAX
            } else {
                swap_limit + m.usage.limit
            },
            usage: opt_u64(d, "memory.swap.current")? + m.usage.usage,
            max: 0,
            failcnt: get(&swap_events, "max"),
        };
    }
    st.pids = pids(d)?;
    for line in opt_string(d, "io.stat")?.lines() {
        let mut f = line.split_whitespace();
        let Some((maj, min)) = f.next().and_then(|dev| dev.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
            continue;
        };
        let kv: HashMap<&str, u64> = f
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((k, v.parse().ok()?))
            })
            .collect();
        let entry = |op: &str, key: &str| BlkioEntry {
            major,
            minor,
            op: op.to_string(),
            value: kv.get(key).copied().unwrap_or(0),
        };
        st.blkio
            .io_service_bytes_recursive
            .push(entry("Read", "rbytes"));
        st.blkio
            .io_service_bytes_recursive
            .push(entry("Write", "wbytes"));
        st.blkio.io_serviced_recursive.push(entry("Read", "rios"));
        st.blkio.io_serviced_recursive.push(entry("Write", "wios"));
    }
    for size in hugepage_sizes() {
        let current = format!("hugetlb.{size}.current");
        if !d.join(&current).exists() {
            continue;
        }
        let ev = flat_keyed(d, &format!("hugetlb.{size}.events"))?;
        st.hugetlb.insert(
            size.clone(),
            Hugetlb {
                usage: opt_u64(d, &current)?,
                max: 0,
                failcnt: get(&ev, "max"),
            },
        );
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_and_omissions_match_runc() {
        let mut st = Stats::default();
        st.cpu.usage.total = 5;
        st.memory.kernel_tcp.limit = 9;
        st.pids.limit = 77;
        let v = serde_json::to_value(&st).unwrap();
        assert_eq!(v["cpu"]["usage"]["total"], 5);
        assert_eq!(v["cpu"]["usage"]["kernel"], 0);
        assert!(v["cpu"]["usage"].get("percpu").is_none());
        assert_eq!(v["cpu"]["throttling"], serde_json::json!({}));
        assert_eq!(
            v["memory"]["kernelTCP"],
            serde_json::json!({"limit": 9, "failcnt": 0})
        );
        assert_eq!(v["pids"], serde_json::json!({"limit": 77}));
        assert_eq!(v["blkio"], serde_json::json!({}));
        assert_eq!(v["hugetlb"], serde_json::json!({}));
        assert_eq!(v["intel_rdt"], serde_json::json!({}));
        assert!(v["network_interfaces"].is_null());
        assert_eq!(v["cpuset"]["sched_relax_domain_level"], 0);
        let one = vec![BlkioEntry::default()];
        st.blkio = Blkio {
            io_service_bytes_recursive: one.clone(),
            io_serviced_recursive: one.clone(),
            io_queued_recursive: one.clone(),
            io_service_time_recursive: one.clone(),
            io_wait_time_recursive: one.clone(),
            io_merged_recursive: one.clone(),
            io_time_recursive: one.clone(),
            sectors_recursive: one,
        };
        let v = serde_json::to_value(&st).unwrap();
        let names: Vec<&str> = v["blkio"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut runc = [
            "ioServiceBytesRecursive",
            "ioServicedRecursive",
            "ioQueueRecursive",
            "ioServiceTimeRecursive",
            "ioWaitTimeRecursive",
            "ioMergedRecursive",
            "ioTimeRecursive",
            "sectorsRecursive",
        ];
        runc.sort_unstable();
        assert_eq!(names, runc);
    }

    #[test]
    fn parsers() {
        assert_eq!(parse_list("0-2,4"), vec![0, 1, 2, 4]);
        assert_eq!(parse_list(""), Vec::<u16>::new());
        let e = blkio_entries("8:0 Read 10\n8:0 Write 0\nTotal 10\n");
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].major, e[0].minor, e[0].op.as_str(), e[0].value),
            (8, 0, "Read", 10)
        );
    }
}

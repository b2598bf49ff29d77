//! linux.resources on v1 controllers (v1-only and hybrid hosts), with runc's file names,
//! value formats and write ordering.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxPids, LinuxRdma,
    LinuxResources,
};

use super::files::{is_errno, read_file, read_u64, write_file};
use super::{devices, CgroupDir, CgroupError};

/// The directory of `controller`, or an error naming `field` when it is not mounted.
fn need<'a>(
    dirs: &'a BTreeMap<String, CgroupDir>,
    controller: &'static str,
    field: &str,
) -> Result<&'a Path, CgroupError> {
    dirs.get(controller)
        .map(|d| d.path.as_path())
        .ok_or_else(|| CgroupError::ControllerMissing {
            field: field.to_string(),
            controller,
        })
}

/// `device_rules` false (rootless) leaves the devices controller alone.
pub fn apply(
    dirs: &BTreeMap<String, CgroupDir>,
    r: &LinuxResources,
    device_rules: bool,
) -> Result<(), CgroupError> {
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(CgroupError::Unsupported {
            field: "linux.resources.unified".into(),
            mode: "v1",
        });
    }
    // Same controller order as runc's v1 manager.
    if let Some(cpu) = r.cpu() {
        cpuset(dirs, cpu)?;
    }
    let rules = devices::rules_from_spec(r.devices().as_ref())?;
    if device_rules {
        let dev_dir = dirs
            .get("devices")
            .ok_or(CgroupError::DevicesControllerMissing)?;
        devices::apply_v1(&dev_dir.path, &rules)?;
    }
    if let Some(m) = r.memory() {
        memory(dirs, m)?;
    }
    if let Some(cpu) = r.cpu() {
        cpu_controller(dirs, cpu)?;
    }
    if let Some(p) = r.pids() {
        pids(dirs, p)?;
    }
    if let Some(b) = r.block_io() {
        blkio(dirs, b)?;
    }
    if let Some(h) = r.hugepage_limits() {
        hugetlb(dirs, h)?;
    }
    if let Some(n) = r.network() {
        network(dirs, n)?;
    }
    if let Some(rdma) = r.rdma() {
        rdma_limits(
            need_if(dirs, "rdma", "linux.resources.rdma", !rdma.is_empty())?,
            rdma,
        )?;
    }
    Ok(())
}

/// Like `need` but only when something is actually set.
fn need_if<'a>(
    dirs: &'a BTreeMap<String, CgroupDir>,
    controller: &'static str,
    field: &str,
    set: bool,
) -> Result<Option<&'a Path>, CgroupError> {
    if set {
        need(dirs, controller, field).map(Some)
    } else {
        Ok(None)
    }
}

/// Give a new cpuset cgroup (and new parents) the parent's cpus and mems: v1 cpuset
/// refuses tasks while they are empty.
pub fn init_cpuset(dir: &CgroupDir) -> Result<(), CgroupError> {
    let Ok(rel) = dir.path.strip_prefix(&dir.mount) else {
        return Ok(());
    };
    let mut parent = dir.mount.clone();
    for comp in rel.components() {
        let child = parent.join(comp);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if read_file(&child, file)?.is_empty() {
                let value = read_file(&parent, file)?;
                write_file(&child, file, &value)?;
            }
        }
        parent = child;
    }
    Ok(())
}

fn cpuset(dirs: &BTreeMap<String, CgroupDir>, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    let cpus = cpu.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = cpu.mems().as_deref().filter(|s| !s.is_empty());
    if let Some(dir) = need_if(dirs, "cpuset", "linux.resources.cpu.cpus", cpus.is_some())? {
        write_file(dir, "cpuset.cpus", cpus.unwrap_or_default())?;
    }
    if let Some(dir) = need_if(dirs, "cpuset", "linux.resources.cpu.mems", mems.is_some())? {
        write_file(dir, "cpuset.mems", mems.unwrap_or_default())?;
    }
    Ok(())
}

const MEM_LIMIT: &str = "memory.limit_in_bytes";
const MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";

fn memory(dirs: &BTreeMap<String, CgroupDir>, m: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    let reservation = m.reservation().unwrap_or(0);
    let kernel_tcp = m.kernel_tcp().unwrap_or(0);
    let oom_disable = m.disable_oom_killer().unwrap_or(false);
    let any = limit != 0
        || swap != 0
        || reservation != 0
        || kernel_tcp != 0
        || oom_disable
        || m.swappiness().is_some();
    let Some(dir) = need_if(dirs, "memory", "linux.resources.memory", any)? else {
        return Ok(());
    };
    // Unlimited memory without an explicit swap means unlimited swap too (when the kernel
    // accounts swap at all).
    if limit == -1 && swap == 0 && dir.join(MEMSW_LIMIT).exists() {
        swap = -1;
    }
    let mut done = false;
    if limit != 0 && swap != 0 {
        // memsw must stay >= limit at every step, so raise swap first when growing.
        let current = read_u64(dir, MEM_LIMIT)?;
        if swap == -1 || u64::try_from(swap).is_ok_and(|s| current < s) {
            write_if_set(dir, MEMSW_LIMIT, swap)?;
            set_limit(dir, limit)?;
            done = true;
        }
    }
    if !done {
        set_limit(dir, limit)?;
        write_if_set(dir, MEMSW_LIMIT, swap)?;
    }
    write_if_set(dir, "memory.soft_limit_in_bytes", reservation)?;
    write_if_set(dir, "memory.kmem.tcp.limit_in_bytes", kernel_tcp)?;
    if oom_disable {
        write_file(dir, "memory.oom_control", "1")?;
    }
    if let Some(sw) = m.swappiness() {
        if sw > 100 {
            return Err(CgroupError::InvalidResource {
                field: "linux.resources.memory.swappiness".into(),
                value: sw.to_string(),
                reason: "valid range is 0-100".into(),
            });
        }
        write_file(dir, "memory.swappiness", &sw.to_string())?;
    }
    Ok(())
}

fn write_if_set(dir: &Path, file: &str, value: i64) -> Result<(), CgroupError> {
    if value != 0 {
        write_file(dir, file, &value.to_string())?;
    }
    Ok(())
}

fn set_limit(dir: &Path, limit: i64) -> Result<(), CgroupError> {
    match write_if_set(dir, MEM_LIMIT, limit) {
        Err(e) if is_errno(&e, libc::EBUSY) => {
            let usage = read_file(dir, "memory.usage_in_bytes").unwrap_or_default();
            let peak = read_file(dir, "memory.max_usage_in_bytes").unwrap_or_default();
            Err(CgroupError::InvalidResource {
                field: "linux.resources.memory.limit".into(),
                value: limit.to_string(),
                reason: format!(
                    "the kernel refused it (EBUSY): current usage {usage}, peak usage {peak} in {}",
                    dir.display()
                ),
            })
        }
        other => other,
    }
}

fn cpu_controller(dirs: &BTreeMap<String, CgroupDir>, c: &LinuxCpu) -> Result<(), CgroupError> {
    let shares = c.shares().unwrap_or(0);
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    let rt_runtime = c.realtime_runtime().unwrap_or(0);
    let rt_period = c.realtime_period().unwrap_or(0);
    let any = shares != 0
        || quota != 0
        || period != 0
        || rt_runtime != 0
        || rt_period != 0
        || c.burst().is_some()
        || c.idle().is_some();
    let Some(dir) = need_if(dirs, "cpu", "linux.resources.cpu", any)? else {
        return Ok(());
    };
    if shares != 0 {
        write_file(dir, "cpu.shares", &shares.to_string())?;
        // The kernel clamps out-of-range shares silently; report the clamp like runc.
        let got = read_u64(dir, "cpu.shares")?;
        if got != shares {
            let bound = if shares > got { "maximum" } else { "minimum" };
            return Err(CgroupError::InvalidResource {
                field: "linux.resources.cpu.shares".into(),
                value: shares.to_string(),
                reason: format!("the {bound} allowed cpu-shares is {got}"),
            });
        }
    }
    // A smaller period can be refused (EINVAL) until the new quota is in; retry after it.
    let mut pending_period = false;
    if period != 0 {
        match write_file(dir, "cpu.cfs_period_us", &period.to_string()) {
            Err(e) if is_errno(&e, libc::EINVAL) && quota != 0 => pending_period = true,
            other => other?,
        }
    }
    let mut pending_burst = false;
    if let Some(burst) = c.burst() {
        match write_file(dir, "cpu.cfs_burst_us", &burst.to_string()) {
            Err(e) if is_errno(&e, libc::EINVAL) && quota != 0 => pending_burst = true,
            other => other?,
        }
    }
    if quota != 0 {
        write_file(dir, "cpu.cfs_quota_us", &quota.to_string())?;
        if pending_period {
            write_file(dir, "cpu.cfs_period_us", &period.to_string())?;
        }
        if pending_burst {
            write_file(dir, "cpu.cfs_burst_us", &c.burst().unwrap_or(0).to_string())?;
        }
    }
    if let Some(idle) = c.idle() {
        write_file(dir, "cpu.idle", &idle.to_string())?;
    }
    if rt_period != 0 {
        write_file(dir, "cpu.rt_period_us", &rt_period.to_string())?;
    }
    if rt_runtime != 0 {
        write_file(dir, "cpu.rt_runtime_us", &rt_runtime.to_string())?;
    }
    Ok(())
}

/// pids.max: 0 means unset, a negative limit means unlimited.
pub fn pids_value(p: &LinuxPids) -> Option<String> {
    match p.limit() {
        0 => None,
        l if l < 0 => Some("max".into()),
        l => Some(l.to_string()),
    }
}

fn pids(dirs: &BTreeMap<String, CgroupDir>, p: &LinuxPids) -> Result<(), CgroupError> {
    if let Some(v) = pids_value(p) {
        write_file(
            need(dirs, "pids", "linux.resources.pids.limit")?,
            "pids.max",
            &v,
        )?;
    }
    Ok(())
}

fn blkio(dirs: &BTreeMap<String, CgroupDir>, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let weight = b.weight().unwrap_or(0);
    let leaf = b.leaf_weight().unwrap_or(0);
    let wd = b.weight_device().as_deref().unwrap_or_default();
    let throttles = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    let any = weight != 0
        || leaf != 0
        || !wd.is_empty()
        || throttles
            .iter()
            .any(|(_, t)| t.as_ref().is_some_and(|t| !t.is_empty()));
    let Some(dir) = need_if(dirs, "blkio", "linux.resources.blockIO", any)? else {
        return Ok(());
    };
    // BFQ exposes its own weight files; CFQ (older kernels) the plain ones.
    let (weight_file, weight_dev_file) = if dir.join("blkio.bfq.weight").exists() {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    } else {
        ("blkio.weight", "blkio.weight_device")
    };
    if weight != 0 {
        write_file(dir, weight_file, &weight.to_string())?;
    }
    if leaf != 0 {
        write_file(dir, "blkio.leaf_weight", &leaf.to_string())?;
    }
    for d in wd {
        if let Some(w) = d.weight().filter(|w| *w != 0) {
            write_file(
                dir,
                weight_dev_file,
                &format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
        if let Some(w) = d.leaf_weight().filter(|w| *w != 0) {
            write_file(
                dir,
                "blkio.leaf_weight_device",
                &format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
    }
    for (file, list) in throttles {
        for t in list.as_deref().unwrap_or_default() {
            write_file(
                dir,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

fn hugetlb(
    dirs: &BTreeMap<String, CgroupDir>,
    limits: &[LinuxHugepageLimit],
) -> Result<(), CgroupError> {
    let Some(dir) = need_if(
        dirs,
        "hugetlb",
        "linux.resources.hugepageLimits",
        !limits.is_empty(),
    )?
    else {
        return Ok(());
    };
    for l in limits {
        let v = l.limit().to_string();
        write_file(
            dir,
            &format!("hugetlb.{}.limit_in_bytes", l.page_size()),
            &v,
        )?;
        // Reservation accounting (kernel 5.7+) must follow the limit or reserved pages
        // escape it.
        let rsvd = format!("hugetlb.{}.rsvd.limit_in_bytes", l.page_size());
        if dir.join(&rsvd).exists() {
            write_file(dir, &rsvd, &v)?;
        }
    }
    Ok(())
}

fn network(dirs: &BTreeMap<String, CgroupDir>, n: &LinuxNetwork) -> Result<(), CgroupError> {
    if let Some(id) = n.class_id().filter(|id| *id != 0) {
        let dir = need(dirs, "net_cls", "linux.resources.network.classID")?;
        write_file(dir, "net_cls.classid", &id.to_string())?;
    }
    let prios = n.priorities().as_deref().unwrap_or_default();
    if let Some(dir) = need_if(
        dirs,
        "net_prio",
        "linux.resources.network.priorities",
        !prios.is_empty(),
    )? {
        for p in prios {
            write_file(
                dir,
                "net_prio.ifpriomap",
                &format!("{} {}", p.name(), p.priority()),
            )?;
        }
    }
    Ok(())
}

/// rdma.max lines, one write per device (same format on v1 and v2).
pub fn rdma_limits(
    dir: Option<&Path>,
    limits: &std::collections::HashMap<String, LinuxRdma>,
) -> Result<(), CgroupError> {
    let Some(dir) = dir else {
        return Ok(());
    };
    let mut devs: Vec<_> = limits.iter().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, l) in devs {
        let mut line = dev.clone();
        if let Some(h) = l.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        if line.len() > dev.len() {
            write_file(dir, "rdma.max", &line)?;
        }
    }
    Ok(())
}

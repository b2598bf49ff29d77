//! linux.resources on the unified (cgroup2) hierarchy, converting v1-style values the way
//! runc does.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::files::{is_errno, read_file, read_u64, write_file};
use super::{devices, devices_bpf, mkdir_all, v1, CgroupDir, CgroupError};

/// Create the directory level by level, enabling in every ancestor's cgroup.subtree_control
/// the controllers it has, so the leaf gets them all.
pub fn create_with_controllers(
    dir: &CgroupDir,
    created: &mut Vec<PathBuf>,
) -> Result<(), CgroupError> {
    let rel = dir
        .path
        .strip_prefix(&dir.mount)
        .map_err(|_| CgroupError::Mkdir {
            path: dir.path.clone(),
            source: std::io::Error::other(format!(
                "not below the cgroup2 mount {}",
                dir.mount.display()
            )),
        })?;
    let mut current = dir.mount.clone();
    for comp in rel.components() {
        enable_controllers(&current, current == dir.mount);
        current.push(comp);
        mkdir_all(&current, created)?;
    }
    Ok(())
}

/// Best effort, as in runc: a controller that cannot be enabled (e.g. because the level has
/// processes of its own) is left out and any resource needing it fails later, by name.
/// A level below the root that has processes is left alone: the kernel refuses it domain
/// controllers but accepts the threaded ones (cpu, cpuset, pids), and that would make it a
/// thread root whose new children cannot take processes at all (EOPNOTSUPP).
fn enable_controllers(dir: &Path, is_root: bool) {
    if !is_root && read_file(dir, "cgroup.procs").is_ok_and(|procs| !procs.trim().is_empty()) {
        return;
    }
    let Ok(avail) = read_file(dir, "cgroup.controllers") else {
        return;
    };
    let Ok(enabled) = read_file(dir, "cgroup.subtree_control") else {
        return;
    };
    let missing: Vec<String> = avail
        .split_whitespace()
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return;
    }
    if write_file(dir, "cgroup.subtree_control", &missing.join(" ")).is_err() {
        for c in &missing {
            let _ = write_file(dir, "cgroup.subtree_control", c);
        }
    }
}

/// runc's shares → cpu.weight mapping ([2, 262144] → [1, 10000]).
pub fn cpu_weight_from_shares(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// runc's blkio weight → io.weight mapping ([10, 1000] → [1, 10000]).
pub fn io_weight_from_blkio(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// memory.swap.max from the OCI swap (memory+swap) and memory limits, as runc converts it.
pub fn swap_max(swap: i64, limit: i64) -> Result<i64, CgroupError> {
    let bad = |reason: &str| CgroupError::InvalidResource {
        field: "linux.resources.memory.swap".into(),
        value: swap.to_string(),
        reason: reason.into(),
    };
    if limit == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if limit == 0 || limit == -1 {
        return Err(bad("a swap limit needs a memory limit"));
    }
    if limit < 0 {
        return Err(CgroupError::InvalidResource {
            field: "linux.resources.memory.limit".into(),
            value: limit.to_string(),
            reason: "must be -1 or positive".into(),
        });
    }
    if swap < limit {
        return Err(bad("memory+swap limit must be >= the memory limit"));
    }
    Ok(swap - limit)
}

/// 0 → unset, -1 → "max", else the number.
fn num_to_str(v: i64) -> Option<String> {
    match v {
        0 => None,
        -1 => Some("max".into()),
        v => Some(v.to_string()),
    }
}

/// Whether `r` sets anything that needs a cgroup2 controller (runc's needAnyControllers):
/// what a rootless container without a cgroup of its own cannot have. Device rules are no
/// controller (a BPF program) and network classes have no cgroup2 file.
pub fn needs_controllers(r: &LinuxResources) -> bool {
    fn set<T: serde::Serialize>(v: &Option<T>) -> bool {
        // Any field present: an empty section (`"memory": {}`) asks for nothing.
        match v.as_ref().map(serde_json::to_value) {
            Some(Ok(serde_json::Value::Object(m))) => m.values().any(|x| !x.is_null()),
            Some(Ok(serde_json::Value::Array(a))) => !a.is_empty(),
            Some(Ok(serde_json::Value::Null)) | None => false,
            Some(_) => true,
        }
    }
    set(r.cpu())
        || set(r.memory())
        || set(r.pids())
        || set(r.block_io())
        || set(r.hugepage_limits())
        || r.rdma().as_ref().is_some_and(|m| !m.is_empty())
        || r.unified().as_ref().is_some_and(|m| !m.is_empty())
}

/// `device_filter` is false for fake trees, which cannot take a BPF program, and rootless
/// (loading one needs privilege).
pub fn apply(dir: &Path, r: &LinuxResources, device_filter: bool) -> Result<(), CgroupError> {
    if let Some(cpu) = r.cpu() {
        cpuset(dir, cpu)?;
        cpu_controller(dir, cpu)?;
    }
    if let Some(m) = r.memory() {
        memory(dir, m)?;
    }
    if let Some(p) = r.pids() {
        if let Some(v) = v1::pids_value(p) {
            write_file(dir, "pids.max", &v)?;
        }
    }
    if let Some(b) = r.block_io() {
        io(dir, b)?;
    }
    for l in r.hugepage_limits().as_deref().unwrap_or_default() {
        let v = l.limit().to_string();
        write_file(dir, &format!("hugetlb.{}.max", l.page_size()), &v)?;
        let rsvd = format!("hugetlb.{}.rsvd.max", l.page_size());
        if dir.join(&rsvd).exists() {
            write_file(dir, &rsvd, &v)?;
        }
    }
    // network.classID/priorities and cpu.realtime* have no cgroup2 equivalent; runc ignores
    // them there, and so do we so that the same spec runs on both layouts.
    if let Some(rdma) = r.rdma() {
        v1::rdma_limits(Some(dir), rdma)?;
    }
    let rules = devices::rules_from_spec(r.devices().as_ref())?;
    if device_filter {
        devices_bpf::apply(dir, &rules)?;
    }
    if let Some(u) = r.unified() {
        unified(dir, u)?;
    }
    Ok(())
}

fn cpuset(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        write_file(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        write_file(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

fn cpu_controller(dir: &Path, c: &LinuxCpu) -> Result<(), CgroupError> {
    // Outside runc's range the converted weight is outside cpu.weight's [1, 10000] and the
    // kernel's ERANGE would name a number the user never wrote.
    let shares = c.shares().unwrap_or(0);
    if shares != 0 && !(2..=262144).contains(&shares) {
        return Err(CgroupError::InvalidResource {
            field: "linux.resources.cpu.shares".into(),
            value: shares.to_string(),
            reason: "cpu-shares must be between 2 and 262144 (cpu.weight 1 to 10000)".into(),
        });
    }
    let weight = cpu_weight_from_shares(shares);
    if weight != 0 {
        write_file(dir, "cpu.weight", &weight.to_string())?;
    }
    if let Some(idle) = c.idle() {
        write_file(dir, "cpu.idle", &idle.to_string())?;
    }
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    // A larger burst can be refused (EINVAL) until the new quota is in; retry after it.
    let mut pending_burst = None;
    if let Some(burst) = c.burst() {
        match write_file(dir, "cpu.max.burst", &burst.to_string()) {
            Err(e) if is_errno(&e, libc::EINVAL) && quota != 0 => pending_burst = Some(burst),
            other => other?,
        }
    }
    if quota != 0 || period != 0 {
        let mut v = if quota > 0 {
            quota.to_string()
        } else {
            "max".to_string()
        };
        if period != 0 {
            v.push_str(&format!(" {period}"));
        }
        write_file(dir, "cpu.max", &v)?;
        if let Some(b) = pending_burst {
            write_file(dir, "cpu.max.burst", &b.to_string())?;
        }
    }
    Ok(())
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = m.limit().unwrap_or(0);
    let swap = m.swap().unwrap_or(0);
    let reservation = m.reservation().unwrap_or(0);
    if limit == 0 && swap == 0 && reservation == 0 {
        return Ok(());
    }
    if m.check_before_update().unwrap_or(false) && limit > 0 {
        check_usage(dir, limit, swap)?;
    }
    let swap_v2 = swap_max(swap, limit)?;
    let swap_str = match num_to_str(swap_v2) {
        // swap == limit: no swap at all.
        None if swap > 0 => Some("0".to_string()),
        other => other,
    };
    if let Some(s) = swap_str {
        match write_file(dir, "memory.swap.max", &s) {
            // Without swap accounting, "no limit" and "no swap" already hold.
            Err(CgroupError::Write { ref source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && (s == "max" || s == "0") => {}
            other => other?,
        }
    }
    if let Some(v) = num_to_str(limit) {
        write_file(dir, "memory.max", &v)?;
    }
    if let Some(v) = num_to_str(reservation) {
        write_file(dir, "memory.low", &v)?;
    }
    Ok(())
}

/// checkBeforeUpdate: on v2 a limit below the usage triggers the OOM killer instead of
/// failing, so refuse it up front.
fn check_usage(dir: &Path, limit: i64, swap: i64) -> Result<(), CgroupError> {
    if !dir.join("memory.current").exists() {
        return Ok(());
    }
    let usage = read_u64(dir, "memory.current")?;
    if usage >= limit as u64 {
        return Err(CgroupError::InvalidResource {
            field: "linux.resources.memory.limit".into(),
            value: limit.to_string(),
            reason: format!("below the current usage {usage} (checkBeforeUpdate)"),
        });
    }
    if swap > 0 && dir.join("memory.swap.current").exists() {
        let total = usage + read_u64(dir, "memory.swap.current")?;
        if total >= swap as u64 {
            return Err(CgroupError::InvalidResource {
                field: "linux.resources.memory.swap".into(),
                value: swap.to_string(),
                reason: format!("below the current memory+swap usage {total} (checkBeforeUpdate)"),
            });
        }
    }
    Ok(())
}

fn io(dir: &Path, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let weight = b.weight().unwrap_or(0);
    let wd = b.weight_device().as_deref().unwrap_or_default();
    // BFQ takes the v1-style weight and per-device weights directly.
    let bfq = dir.join("io.bfq.weight").exists();
    if weight != 0 {
        if bfq {
            write_file(dir, "io.bfq.weight", &weight.to_string())?;
        } else {
            write_file(dir, "io.weight", &io_weight_from_blkio(weight).to_string())?;
        }
    }
    if bfq {
        for d in wd {
            if let Some(w) = d.weight().filter(|w| *w != 0) {
                write_file(
                    dir,
                    "io.bfq.weight",
                    &format!("{}:{} {w}", d.major(), d.minor()),
                )?;
            }
        }
    }
    let throttles = [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ];
    for (key, list) in throttles {
        for t in list.as_deref().unwrap_or_default() {
            write_file(
                dir,
                "io.max",
                &format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

fn unified(dir: &Path, u: &std::collections::HashMap<String, String>) -> Result<(), CgroupError> {
    let mut keys: Vec<_> = u.iter().collect();
    keys.sort();
    for (k, v) in keys {
        let bad = |reason: String| CgroupError::InvalidResource {
            field: format!("linux.resources.unified[{k:?}]"),
            value: format!("{v:?}"),
            reason,
        };
        if k.contains('/') || k.is_empty() || k == "." || k == ".." {
            return Err(bad("the key must be a file name (no slashes)".into()));
        }
        if let Err(e) = write_file(dir, k, v) {
            if is_errno(&e, libc::ENOENT) || is_errno(&e, libc::EPERM) {
                let Some((ctrl, _)) = k.split_once('.') else {
                    return Err(bad(
                        "the key must be of the form CONTROLLER.PARAMETER".into()
                    ));
                };
                let avail = read_file(dir, "cgroup.controllers").unwrap_or_default();
                if ctrl != "cgroup" && !avail.split_whitespace().any(|c| c == ctrl) {
                    return Err(bad(format!(
                        "controller {ctrl:?} is not available in {}",
                        dir.display()
                    )));
                }
            }
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_runc() {
        assert_eq!(cpu_weight_from_shares(0), 0);
        assert_eq!(cpu_weight_from_shares(2), 1);
        assert_eq!(cpu_weight_from_shares(1024), 39);
        assert_eq!(cpu_weight_from_shares(262144), 10000);
        assert_eq!(io_weight_from_blkio(10), 1);
        assert_eq!(io_weight_from_blkio(500), 4950);
        assert_eq!(io_weight_from_blkio(1000), 10000);
        assert_eq!(swap_max(0, -1).unwrap(), -1);
        assert_eq!(swap_max(-1, 100).unwrap(), -1);
        assert_eq!(swap_max(300, 100).unwrap(), 200);
        assert_eq!(swap_max(100, 100).unwrap(), 0);
        assert!(swap_max(50, 100).is_err());
        assert!(swap_max(50, 0).is_err());
    }
}

//! The checks of `linux.resources` shared by `create` and `update`: what the kernel would
//! refuse half-way, refused before any cgroup file is written.

use oci_spec::runtime::LinuxResources;

#[derive(Debug, thiserror::Error)]
#[error("invalid value for linux.resources.{field}: {value}: {reason}")]
pub struct InvalidResource {
    field: &'static str,
    value: String,
    reason: String,
}

fn value_err(field: &'static str, value: impl ToString, reason: &str) -> InvalidResource {
    InvalidResource {
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// A cpuset list: "0-3,5".
fn valid_cpu_list(s: &str) -> bool {
    s.split(',').all(|part| {
        let mut ends = part.splitn(2, '-');
        let ok = |e: Option<&str>| e.is_some_and(|e| !e.is_empty() && e.parse::<u32>().is_ok());
        let first = ends.next();
        ok(first) && ends.next().is_none_or(|e| ok(Some(e)))
    })
}

/// Reject what the kernel would refuse half-way (or accept silently in a surprising way), so
/// that a bad create or update fails before any file is written.
pub fn validate(r: &LinuxResources) -> Result<(), InvalidResource> {
    if let Some(m) = r.memory() {
        // Checked here, not only by the v1 controller: on cgroup v2 it would pass unnoticed.
        if let Some(sw) = m.swappiness().filter(|&sw| sw > 100) {
            return Err(value_err("memory.swappiness", sw, "valid range is 0-100"));
        }
        for (field, v) in [
            ("memory.limit", m.limit()),
            ("memory.reservation", m.reservation()),
            ("memory.swap", m.swap()),
        ] {
            if let Some(v) = v.filter(|v| *v < -1) {
                return Err(value_err(
                    field,
                    v,
                    "want a positive number of bytes, or -1 for unlimited",
                ));
            }
        }
        if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
            if l > 0 && s > 0 && s < l {
                return Err(value_err(
                    "memory.swap",
                    s,
                    &format!("memory+swap must not be lower than the memory limit ({l})"),
                ));
            }
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0 && !(2..=262_144).contains(s)) {
            return Err(value_err("cpu.shares", s, "valid range is 2-262144"));
        }
        if let Some(p) = c
            .period()
            .filter(|p| *p != 0 && !(1000..=1_000_000).contains(p))
        {
            return Err(value_err(
                "cpu.period",
                p,
                "valid range is 1000-1000000 microseconds",
            ));
        }
        if let Some(q) = c.quota().filter(|q| *q != 0 && *q != -1 && *q < 1000) {
            return Err(value_err(
                "cpu.quota",
                q,
                "want at least 1000 microseconds, or -1 for unlimited",
            ));
        }
        if let Some(rt) = c.realtime_runtime().filter(|v| *v < -1) {
            return Err(value_err(
                "cpu.realtimeRuntime",
                rt,
                "want microseconds, or -1 for unlimited",
            ));
        }
        for (field, v) in [("cpu.cpus", c.cpus()), ("cpu.mems", c.mems())] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty() && !valid_cpu_list(v)) {
                return Err(value_err(field, v, "want a list like \"0-2,4\""));
            }
        }
    }
    if let Some(w) = r
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|w| *w != 0 && !(10..=1000).contains(w))
    {
        return Err(value_err("blockIO.weight", w, "valid range is 10-1000"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rejects_what_the_kernel_would() {
        let bad = [
            r#"{"memory": {"limit": -5}}"#,
            r#"{"memory": {"limit": 200000000, "swap": 100000000}}"#,
            r#"{"cpu": {"shares": 1}}"#,
            r#"{"cpu": {"shares": 9999999}}"#,
            r#"{"cpu": {"period": 10}}"#,
            r#"{"cpu": {"quota": 5}}"#,
            r#"{"cpu": {"cpus": "0-"}}"#,
            r#"{"cpu": {"mems": "a"}}"#,
            r#"{"blockIO": {"weight": 5}}"#,
            r#"{"memory": {"swappiness": 101}}"#,
        ];
        for j in bad {
            let r: LinuxResources = serde_json::from_str(j).unwrap();
            assert!(validate(&r).is_err(), "{j} accepted");
        }
        let good = [
            r#"{"memory": {"limit": -1, "swap": -1}}"#,
            r#"{"memory": {"limit": 100000000, "swap": 100000000}}"#,
            r#"{"cpu": {"shares": 1024, "quota": -1, "period": 100000, "cpus": "0-1,3", "mems": "0"}}"#,
            r#"{"blockIO": {"weight": 500}}"#,
            r#"{"pids": {"limit": -1}}"#,
        ];
        for j in good {
            let r: LinuxResources = serde_json::from_str(j).unwrap();
            validate(&r).unwrap_or_else(|e| panic!("{j}: {e}"));
        }
    }
}

//! `nucleus ps`: the processes in a container's cgroup, as host pids (json) or as the lines
//! of the host's `ps` that belong to them (table), the way runc does it.

use std::io::Write;
use std::process::Command;

use super::{open, ContainerError, Runtime};

/// Output of `ps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsFormat {
    Table,
    Json,
}

impl std::str::FromStr for PsFormat {
    type Err = ContainerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(PsFormat::Table),
            "json" => Ok(PsFormat::Json),
            _ => Err(ContainerError::Other(format!(
                "invalid format option {s:?}: want table or json"
            ))),
        }
    }
}

/// Keep the header of `ps` output and the lines whose PID column holds one of `pids`.
pub fn filter_ps_output(output: &str, pids: &[i32]) -> Result<String, ContainerError> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|t| t == "PID")
        .ok_or_else(|| ContainerError::Other("couldn't find PID field in ps output".into()))?;
    let mut out = format!("{header}\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let field = line.split_whitespace().nth(pid_col).unwrap_or_default();
        let pid: i32 = field.parse().map_err(|_| {
            ContainerError::Other(format!("unable to parse pid {field:?} in ps line {line:?}"))
        })?;
        if pids.contains(&pid) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// `nucleus ps`: `ps_args` go to the host `ps` (default `-ef`) in table format.
pub fn ps(
    rt: &Runtime,
    id: &str,
    format: PsFormat,
    ps_args: &[String],
    out: &mut dyn Write,
) -> Result<(), ContainerError> {
    let (dir, st, status) = open(rt, id)?;
    drop(dir);
    let mut pids = match st.cgroup.as_ref() {
        Some(cg) if cg.tracks_processes() => cg.pids()?,
        _ if status != crate::state::Status::Stopped => super::pid_namespace_members(st.pid),
        _ => Vec::new(),
    };
    pids.sort_unstable();
    let text = match format {
        PsFormat::Json => {
            serde_json::to_string(&pids).map_err(|e| ContainerError::Other(e.to_string()))? + "\n"
        }
        PsFormat::Table => {
            let default = ["-ef".to_string()];
            let args = if ps_args.is_empty() {
                &default[..]
            } else {
                ps_args
            };
            let res = Command::new("ps")
                .args(args)
                .output()
                .map_err(super::io_err("run ps"))?;
            let mut combined = String::from_utf8_lossy(&res.stdout).into_owned();
            if !res.status.success() {
                combined.push_str(&String::from_utf8_lossy(&res.stderr));
                return Err(ContainerError::Other(format!(
                    "ps {}: {}: {}",
                    args.join(" "),
                    res.status,
                    combined.trim_end()
                )));
            }
            filter_ps_output(&combined, &pids)?
        }
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(super::io_err("write ps output"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_matching_pids() {
        let ps = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                  root           1       0  0 10:00 ?        00:00:01 /sbin/init\n\
                  root         120       1  0 10:00 ?        00:00:00 sleep 100\n\
                  root        1200     120  0 10:00 ?        00:00:00 sh -c 1 120\n";
        let out = filter_ps_output(ps, &[120]).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].starts_with("UID"));
        assert!(lines[1].contains("sleep 100"));
    }

    #[test]
    fn pid_column_found_anywhere_and_required() {
        let ps = "  PID TTY      STAT   TIME COMMAND\n    7 ?        S      0:00 top\n";
        assert_eq!(filter_ps_output(ps, &[7]).unwrap(), ps);
        assert!(filter_ps_output("USER COMMAND\nroot x\n", &[1]).is_err());
        assert!(filter_ps_output("PID CMD\nnotapid x\n", &[1]).is_err());
    }

    #[test]
    fn formats() {
        assert_eq!("json".parse::<PsFormat>().unwrap(), PsFormat::Json);
        assert_eq!("table".parse::<PsFormat>().unwrap(), PsFormat::Table);
        assert!("yaml".parse::<PsFormat>().is_err());
    }
}

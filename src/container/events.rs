//! `nucleus events`: runc's event stream. With `--stats`, one `{"type":"stats",...}` line;
//! otherwise a stats line every interval plus `{"type":"oom","id":ID}` whenever the OOM killer
//! acts in the container, until the container stops.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::Serialize;

use super::{open, ContainerError, Runtime};
use crate::cgroups::Stats;
use crate::state::{self, Status};

/// One line of output, as runc's `types.Event`.
#[derive(Serialize, Debug)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a Stats>,
}

#[derive(Debug, Clone)]
pub struct EventsOptions {
    pub id: String,
    /// Print the stats once and exit.
    pub stats: bool,
    pub interval: Duration,
}

/// A duration in Go's `time.ParseDuration` syntax, which runc's `--interval` takes: a
/// sequence of decimal numbers with units ns, us (µs), ms, s, m, h ("5s", "1m30s", "1.5s").
pub fn parse_duration(s: &str) -> Result<Duration, ContainerError> {
    let bad = || {
        ContainerError::Other(format!(
            "invalid duration {s:?} (want e.g. 5s, 500ms, 1m30s)"
        ))
    };
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() || rest.starts_with('-') {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let num: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += num * nanos_per;
        rest = &rest[u..];
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(bad());
    }
    // Whole nanoseconds of a value checked to fit above.
    #[allow(clippy::cast_possible_truncation)]
    let nanos = total as u64;
    Ok(Duration::from_nanos(nanos))
}

fn emit(out: &mut dyn Write, ev: &Event) -> Result<(), ContainerError> {
    let line = serde_json::to_string(ev).map_err(|e| ContainerError::Other(e.to_string()))?;
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(super::io_err("write event"))
}

/// A pidfd for `pid` that is known to refer to the process started at `start_time`.
fn pidfd_for(pid: i32, start_time: u64) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, no pointers; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor nobody else owns; pidfds are always close-on-exec.
    let fd = unsafe { crate::sys::owned_fd(fd) }.ok()?;
    // Checked after opening: the pid cannot be reused while we hold its pidfd.
    (state::process_start_time(pid) == Some(start_time)).then_some(fd)
}

fn readable(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// `nucleus events`: writes the events to `out` until the container stops (or once with
/// `stats`).
pub fn events(rt: &Runtime, o: &EventsOptions, out: &mut dyn Write) -> Result<(), ContainerError> {
    if o.interval.is_zero() {
        return Err(ContainerError::Other(
            "duration interval must be greater than 0".into(),
        ));
    }
    let (dir, st, status) = open(rt, &o.id)?;
    // The config only for watching (whether the OOM killer is disabled), read under the lock.
    let config = if o.stats {
        None
    } else {
        Some(dir.load_config()?)
    };
    // Watching may last; other commands on this container must not wait for us.
    drop(dir);
    if status == Status::Stopped {
        return Err(ContainerError::Other(format!(
            "container with id {} is not running",
            o.id
        )));
    }
    let cg = st.cgroup.as_ref().ok_or_else(|| {
        ContainerError::Other(format!(
            "container {} has no cgroup in its state file, so it has no events",
            o.id
        ))
    })?;
    let stats_event = |out: &mut dyn Write| -> Result<(), ContainerError> {
        let s = cg.stats()?;
        emit(
            out,
            &Event {
                kind: "stats",
                id: &o.id,
                data: Some(&s),
            },
        )
    };
    if o.stats {
        return stats_event(out);
    }
    let oom_event = Event {
        kind: "oom",
        id: &o.id,
        data: None,
    };
    let mut oom = cg.watch_oom()?;
    // The kernel notifies every failed charge of an OOM episode, dozens for a single kill, so
    // events follow the oom_kill counter and notifications only wake us. With the OOM killer
    // disabled nothing is killed: each notification is the event, as in runc.
    let killer_disabled = config
        .as_ref()
        .and_then(|c| c.linux().as_ref())
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.disable_oom_killer())
        .unwrap_or(false);
    let mut kills_seen = cg.oom_kill_count()?;
    let Some(pidfd) = pidfd_for(st.pid, st.pid_start) else {
        return Ok(());
    };
    let mut next_stats = Instant::now() + o.interval;
    // Until then, poll briefly: the kill counter moves just after the notification.
    let mut notified_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let wait = match notified_until {
            Some(t) if t > now => Duration::from_millis(5),
            _ => next_stats.saturating_duration_since(now),
        };
        // Capped so that a cgroup removed under us (delete) is noticed.
        let ms = wait.as_millis().clamp(0, 1000) as u16;
        let (oom_ready, exited) = {
            let mut fds = [
                PollFd::new(oom.fd(), PollFlags::POLLIN),
                PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(super::io_err("poll for events")(e.into())),
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        // The kernel notifies and counts an OOM kill before the victim dies, so a kill that
        // stopped the container is already visible here.
        if (oom_ready || (exited && readable(oom.fd()))) && oom.check()? {
            if killer_disabled {
                emit(out, &oom_event)?;
            } else {
                notified_until = Some(Instant::now() + Duration::from_secs(1));
            }
        }
        if let Ok(kills) = cg.oom_kill_count() {
            for _ in kills_seen..kills {
                emit(out, &oom_event)?;
            }
            kills_seen = kills_seen.max(kills);
        }
        if exited || !cg.exists() {
            return Ok(());
        }
        if Instant::now() >= next_stats {
            next_stats += o.interval;
            if let Err(e) = stats_event(out) {
                // As runc: a failed sample is logged and the stream goes on.
                crate::error!("{e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (s, ms) in [
            ("5s", 5000),
            ("500ms", 500),
            ("1m30s", 90_000),
            ("1.5s", 1500),
            ("1h", 3_600_000),
            ("0", 0),
            ("2000us", 2),
        ] {
            assert_eq!(parse_duration(s).unwrap(), Duration::from_millis(ms), "{s}");
        }
        for bad in ["", "5", "s", "-1s", "5x", "1.2.3s", "5 s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn event_shapes() {
        let oom = Event {
            kind: "oom",
            id: "c1",
            data: None,
        };
        assert_eq!(
            serde_json::to_string(&oom).unwrap(),
            r#"{"type":"oom","id":"c1"}"#
        );
        let s = Stats::default();
        let v: serde_json::Value = serde_json::to_value(Event {
            kind: "stats",
            id: "c1",
            data: Some(&s),
        })
        .unwrap();
        assert_eq!(v["type"], "stats");
        assert!(v["data"]["memory"].is_object() && v["data"]["cpu"].is_object());
    }
}

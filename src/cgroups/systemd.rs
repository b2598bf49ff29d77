//! The systemd cgroup driver: the container's cgroup is a transient scope that systemd makes
//! (StartTransientUnit over D-Bus, with the resources systemd knows as unit properties);
//! everything else is written to the scope's cgroup files by the cgroupfs code, as runc's
//! systemd drivers do. Later commands (pause, kill --all, ps, events) work on the scope's
//! directories like on any other cgroup; `update` goes through SetUnitProperties and the
//! files; `delete` stops the unit.
//!
//! A rootless runtime (its uid is not root on the host, as in a rootless Podman's user
//! namespace) talks to the user's own manager instead (user@UID.service, over the session bus
//! at `$DBUS_SESSION_BUS_ADDRESS` or `$XDG_RUNTIME_DIR/bus`, as runc does): the scope lands in
//! the subtree systemd delegated to the user, below the manager's own cgroup.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use super::dbus::{self, Call, Connection, DbusError, Value};
use super::devices::{self, DevType, Effective};
use super::{v2, CgroupError, CgroupMode};

/// Errors of the systemd driver.
#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error("invalid slice name {0:?}: it must end in \".slice\", have no \"/\" and no empty \"-\" parts")]
    SliceName(String),
    #[error("cannot reach systemd over D-Bus (tried {tried}): {source}")]
    Connect { tried: String, source: DbusError },
    #[error("systemd {op} {unit}: {source}")]
    Call {
        op: &'static str,
        unit: String,
        source: DbusError,
    },
    #[error("systemd unit {unit} did not become active: it is {state}")]
    NotActive { unit: String, state: String },
    #[error("timed out after {secs} s waiting for systemd unit {unit} to {what}")]
    Timeout {
        unit: String,
        what: &'static str,
        secs: u64,
    },
    #[error("annotation {key}: {reason}")]
    Annotation { key: String, reason: String },
    #[error("systemd placed pid {pid} in {got:?} for the {controller:?} hierarchy, not in the expected {want:?}")]
    Placement {
        pid: i32,
        controller: String,
        got: String,
        want: String,
    },
}

/// The unit the container lives in, recorded in its state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    /// `<prefix>-<name>.scope`, or a `.slice` when the name asks for one (as runc).
    pub name: String,
    /// The parent slice.
    pub slice: String,
    /// The unit's cgroup path below each hierarchy's root.
    pub path: PathBuf,
    /// Description property.
    pub description: String,
    /// Made by the user's own manager (a rootless runtime), not by the system's.
    #[serde(default)]
    pub user: bool,
}

/// Default parent slice of a root-run container, as runc.
const DEFAULT_SLICE: &str = "system.slice";
/// Default parent slice of a rootless container (in the user's manager), as runc.
const DEFAULT_USER_SLICE: &str = "user.slice";
/// Default unit prefix when cgroupsPath is empty: the runtime's name, as runc uses "runc".
const DEFAULT_PREFIX: &str = "nucleus";
/// How long to wait for systemd's jobs.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// systemd's slice name → cgroup path: `a-b-c.slice` → `/a.slice/a-b.slice/a-b-c.slice`,
/// `-.slice` → `/`.
pub fn expand_slice(slice: &str) -> Result<PathBuf, SystemdError> {
    let bad = || SystemdError::SliceName(slice.to_string());
    let stem = slice.strip_suffix(".slice").ok_or_else(bad)?;
    if slice.contains('/') {
        return Err(bad());
    }
    if stem == "-" {
        return Ok(PathBuf::from("/"));
    }
    let mut path = PathBuf::from("/");
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            return Err(bad());
        }
        path.push(format!("{prefix}{part}.slice"));
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

impl Unit {
    /// The unit for cgroupsPath `slice:prefix:name` (runc's form). An empty cgroupsPath
    /// gives `system.slice` and `nucleus-<id>.scope`; an empty slice or name in the triple
    /// falls back to `system.slice` and the container id.
    pub fn from_cgroups_path(
        cgroups_path: Option<&str>,
        container_id: &str,
    ) -> Result<Unit, CgroupError> {
        Self::parse(cgroups_path, container_id, DEFAULT_SLICE)
    }

    /// The unit for cgroupsPath as the calling runtime gets it: from the system's manager
    /// when it is root on the host, else from the user's manager, whose own cgroup (asked over
    /// its bus) is the root of the unit's path and whose default slice is `user.slice`.
    pub fn for_caller(cgroups_path: Option<&str>, container_id: &str) -> Result<Unit, CgroupError> {
        if !caller_is_rootless()? {
            return Self::from_cgroups_path(cgroups_path, container_id);
        }
        let mut unit = Self::parse(cgroups_path, container_id, DEFAULT_USER_SLICE)?;
        unit.user = true;
        let root = Systemd::connect_user()?.manager_cgroup()?;
        let rel = unit
            .path
            .strip_prefix("/")
            .unwrap_or(&unit.path)
            .to_path_buf();
        unit.path = Path::new(&root).join(rel);
        Ok(unit)
    }

    fn parse(
        cgroups_path: Option<&str>,
        container_id: &str,
        default_slice: &'static str,
    ) -> Result<Unit, CgroupError> {
        let (slice, prefix, name) = match cgroups_path.filter(|p| !p.is_empty()) {
            None => (default_slice, DEFAULT_PREFIX, container_id),
            Some(p) => {
                let parts: Vec<&str> = p.split(':').collect();
                let [slice, prefix, name] = parts[..] else {
                    return Err(CgroupError::SystemdPathFormat {
                        path: p.to_string(),
                    });
                };
                (
                    if slice.is_empty() {
                        default_slice
                    } else {
                        slice
                    },
                    prefix,
                    if name.is_empty() { container_id } else { name },
                )
            }
        };
        let slice_path = expand_slice(slice)?;
        let (unit, path) = if name.ends_with(".slice") {
            (name.to_string(), expand_slice(name)?)
        } else {
            let unit = format!("{prefix}-{name}.scope");
            let path = slice_path.join(&unit);
            (unit, path)
        };
        Ok(Unit {
            name: unit,
            slice: slice.to_string(),
            path,
            description: format!("nucleus container {name}"),
            user: false,
        })
    }

    fn is_slice(&self) -> bool {
        self.name.ends_with(".slice")
    }
}

/// Parse the `org.systemd.property.*` annotations into unit properties, as runc does: the
/// name is ASCII letters only (at least 3), the value is in GVariant text form (`true`,
/// `uint64 5`, `'text'`, `@t 5`, `['a', 'b']`...), and a `...Sec` name with a numeric value
/// becomes `...USec` in microseconds.
pub fn annotation_properties(
    annotations: &HashMap<String, String>,
) -> Result<Vec<(String, Value)>, SystemdError> {
    let mut keys: Vec<&String> = annotations.keys().collect();
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let Some(name) = key.strip_prefix("org.systemd.property.") else {
            continue;
        };
        let bad = |reason: String| SystemdError::Annotation {
            key: key.clone(),
            reason,
        };
        if name.len() < 3 || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(bad(
                "the property name must be at least 3 ASCII letters".into()
            ));
        }
        let raw = &annotations[key];
        let mut value =
            gvariant::parse(raw).map_err(|r| bad(format!("cannot parse value {raw:?}: {r}")))?;
        let mut name = name.to_string();
        if let Some(stem) = name.strip_suffix("Sec") {
            if stem.ends_with(|c: char| c.is_ascii_lowercase()) {
                let secs = match value {
                    Value::Byte(v) => f64::from(v),
                    Value::I16(v) => f64::from(v),
                    Value::U16(v) => f64::from(v),
                    Value::I32(v) => f64::from(v),
                    Value::U32(v) => f64::from(v),
                    Value::I64(v) => v as f64,
                    Value::U64(v) => v as f64,
                    Value::F64(v) => v,
                    _ => return Err(bad(format!("{raw:?} is not a number of seconds"))),
                };
                if secs < 0.0 {
                    return Err(bad(format!("{raw:?} is negative")));
                }
                // Whole microseconds, as systemctl rounds; `as` saturates a huge value.
                #[allow(clippy::cast_possible_truncation)]
                let usec = (secs * 1e6) as u64;
                value = Value::U64(usec);
                name = format!("{stem}USec");
            }
        }
        out.push((name, value));
    }
    Ok(out)
}

/// The GVariant text format, the subset runc's annotation parser is used with.
mod gvariant {
    use super::Value;

    pub fn parse(s: &str) -> Result<Value, String> {
        let mut p = Parser { s, pos: 0 };
        let v = p.value(None)?;
        p.ws();
        if p.pos != s.len() {
            return Err(format!("unexpected {:?}", &s[p.pos..]));
        }
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a str,
        pos: usize,
    }

    const TYPE_WORDS: &[(&str, &str)] = &[
        ("boolean", "b"),
        ("byte", "y"),
        ("int16", "n"),
        ("uint16", "q"),
        ("int32", "i"),
        ("uint32", "u"),
        ("int64", "x"),
        ("uint64", "t"),
        ("double", "d"),
        ("string", "s"),
        ("objectpath", "o"),
        ("signature", "g"),
    ];

    impl Parser<'_> {
        fn rest(&self) -> &str {
            &self.s[self.pos..]
        }

        fn ws(&mut self) {
            let t = self.rest().trim_start();
            self.pos = self.s.len() - t.len();
        }

        fn eat(&mut self, tok: &str) -> bool {
            self.ws();
            if self.rest().starts_with(tok) {
                self.pos += tok.len();
                true
            } else {
                false
            }
        }

        /// A value, of type `want` (a signature) when known.
        fn value(&mut self, want: Option<&str>) -> Result<Value, String> {
            self.ws();
            if self.eat("@") {
                let sig: String = self
                    .rest()
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                self.pos += sig.len();
                return self.value(Some(&sig));
            }
            for (word, sig) in TYPE_WORDS {
                let r = self.rest();
                if r.starts_with(word) && r[word.len()..].starts_with(char::is_whitespace) {
                    self.pos += word.len();
                    return self.value(Some(sig));
                }
            }
            let r = self.rest();
            if r.starts_with('\'') || r.starts_with('"') {
                let s = self.string()?;
                return match want.unwrap_or("s") {
                    "s" => Ok(Value::Str(s)),
                    "o" => Ok(Value::Path(s)),
                    "g" => Ok(Value::Sig(s)),
                    w => Err(format!("a string where {w} is wanted")),
                };
            }
            if r.starts_with('[') {
                self.pos += 1;
                let elem = match want {
                    Some(w) => Some(
                        w.strip_prefix('a')
                            .ok_or_else(|| format!("an array where {w} is wanted"))?
                            .to_string(),
                    ),
                    None => None,
                };
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        let sig = elem.clone().or_else(|| items.first().map(Value::signature));
                        items.push(self.value(sig.as_deref())?);
                        if self.eat("]") {
                            break;
                        }
                        if !self.eat(",") {
                            return Err("expected ',' or ']' in an array".into());
                        }
                    }
                }
                let elem = elem
                    .or_else(|| items.first().map(Value::signature))
                    .ok_or("an empty array needs a type (e.g. @as [])")?;
                if items.iter().any(|v| v.signature() != elem) {
                    return Err("array elements of different types".into());
                }
                return Ok(Value::Array(elem, items));
            }
            for (word, b) in [("true", true), ("false", false)] {
                if r.starts_with(word) {
                    self.pos += word.len();
                    return match want.unwrap_or("b") {
                        "b" => Ok(Value::Bool(b)),
                        w => Err(format!("a boolean where {w} is wanted")),
                    };
                }
            }
            let num: String = r
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'))
                .collect();
            if num.is_empty() {
                return Err(format!("unexpected {r:?}"));
            }
            self.pos += num.len();
            number(&num, want)
        }

        fn string(&mut self) -> Result<String, String> {
            let mut chars = self.rest().char_indices();
            let (_, quote) = chars.next().ok_or("empty")?;
            let mut out = String::new();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        let (_, e) = chars.next().ok_or("unterminated string")?;
                        out.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => other,
                        });
                    }
                    c if c == quote => {
                        self.pos += i + 1;
                        return Ok(out);
                    }
                    c => out.push(c),
                }
            }
            Err("unterminated string".into())
        }
    }

    fn number(s: &str, want: Option<&str>) -> Result<Value, String> {
        let bad = |w: &str| format!("{s:?} is not a valid {w}");
        let int = |w: &str| -> Result<i128, String> {
            let (neg, digits) = match s.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, s.strip_prefix('+').unwrap_or(s)),
            };
            let v = if let Some(h) = digits.strip_prefix("0x") {
                i128::from_str_radix(h, 16)
            } else {
                digits.parse::<i128>()
            }
            .map_err(|_| bad(w))?;
            Ok(if neg { -v } else { v })
        };
        let want = match want {
            Some(w) => w,
            None if s.contains('.') || s.contains('e') && !s.starts_with("0x") => "d",
            None => "i",
        };
        fn fit<T: TryFrom<i128>>(v: i128, s: &str, want: &str) -> Result<T, String> {
            T::try_from(v).map_err(|_| format!("{s} is out of range for {want}"))
        }
        Ok(match want {
            "y" => Value::Byte(fit(int("byte")?, s, want)?),
            "n" => Value::I16(fit(int("int16")?, s, want)?),
            "q" => Value::U16(fit(int("uint16")?, s, want)?),
            "i" => Value::I32(fit(int("int32")?, s, want)?),
            "u" => Value::U32(fit(int("uint32")?, s, want)?),
            "x" => Value::I64(fit(int("int64")?, s, want)?),
            "t" => Value::U64(fit(int("uint64")?, s, want)?),
            "d" => Value::F64(s.parse().map_err(|_| bad("double"))?),
            w => return Err(format!("a number where {w} is wanted")),
        })
    }
}

/// systemd's CPUQuotaPerSecUSec from a CFS quota and period (runc's conversion: rounded up
/// to whole percents of a CPU, since systemd keeps a percentage).
fn cpu_quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota <= 0 {
        return u64::MAX;
    }
    let period = if period == 0 { 100_000 } else { period };
    let per_sec = (quota as u64).saturating_mul(1_000_000) / period;
    per_sec.div_ceil(10_000) * 10_000
}

/// A cpuset list (`0-3,7`) as systemd's byte-array bitmask (bit n of byte n/8 = cpu n).
pub fn cpuset_bitmask(list: &str) -> Result<Vec<u8>, String> {
    let mut mask = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let lo: usize = lo
            .parse()
            .map_err(|_| format!("bad cpuset item {part:?}"))?;
        let hi: usize = hi
            .parse()
            .map_err(|_| format!("bad cpuset item {part:?}"))?;
        if lo > hi || hi >= 1 << 16 {
            return Err(format!("bad cpuset range {part:?}"));
        }
        for n in lo..=hi {
            if mask.len() <= n / 8 {
                mask.resize(n / 8 + 1, 0);
            }
            mask[n / 8] |= 1 << (n % 8);
        }
    }
    Ok(mask)
}

fn prop(name: &str, v: Value) -> (String, Value) {
    (name.to_string(), v)
}

/// The name systemd gives a device major in /proc/devices (`char-pts`), for a rule on all
/// minors of one major.
fn major_name(typ: DevType, major: u32) -> Option<String> {
    let devices = std::fs::read_to_string("/proc/devices").ok()?;
    let section = match typ {
        DevType::Block => "Block devices:",
        _ => "Character devices:",
    };
    let mut inside = false;
    for line in devices.lines() {
        if line.ends_with("devices:") {
            inside = line == section;
            continue;
        }
        let mut it = line.split_whitespace();
        if inside && it.next().and_then(|n| n.parse::<u32>().ok()) == Some(major) {
            return it.next().map(str::to_string);
        }
    }
    None
}

/// DevicePolicy and DeviceAllow for the container's device rules. A default-allow set
/// (whose exceptions are denials systemd cannot express) leaves systemd's policy open; the
/// exact rules are always enforced by nucleus's own program or v1 files as well.
fn device_properties(r: &LinuxResources) -> Result<Vec<(String, Value)>, CgroupError> {
    let rules = devices::rules_from_spec(r.devices().as_ref())?;
    let eff = Effective::from_rules(&rules);
    if eff.default_allow {
        return Ok(vec![prop("DevicePolicy", Value::str("auto"))]);
    }
    let mut allow = Vec::new();
    let mut entry = |node: String, access: u8| {
        allow.push(Value::Struct(vec![
            Value::Str(node),
            Value::Str(devices::access_string(access)),
        ]))
    };
    for ex in &eff.exceptions {
        let kind = if ex.typ == DevType::Block {
            "block"
        } else {
            "char"
        };
        match (ex.major, ex.minor) {
            (Some(ma), Some(mi)) => entry(format!("/dev/{kind}/{ma}:{mi}"), ex.access),
            (Some(ma), None) => match major_name(ex.typ, ma) {
                Some(n) => entry(format!("{kind}-{n}"), ex.access),
                None => crate::warn!(
                    "no name for {kind} device major {ma} in /proc/devices; the rule is enforced by the cgroup files only"
                ),
            },
            (None, _) => entry(format!("{kind}-*"), ex.access),
        }
    }
    Ok(vec![
        prop("DevicePolicy", Value::str("strict")),
        prop("DeviceAllow", Value::Array("(ss)".into(), allow)),
    ])
}

/// The resources systemd knows, as unit properties (runc's mapping per cgroup version).
pub fn resource_properties(
    r: &LinuxResources,
    mode: CgroupMode,
) -> Result<Vec<(String, Value)>, CgroupError> {
    let v2 = mode == CgroupMode::V2;
    let mut p = device_properties(r)?;
    if let Some(m) = r.memory() {
        let limit = m.limit().unwrap_or(0);
        if limit != 0 {
            p.push(prop(
                if v2 { "MemoryMax" } else { "MemoryLimit" },
                Value::U64(limit as u64),
            ));
        }
        if v2 {
            if let Some(res) = m.reservation().filter(|&v| v != 0) {
                p.push(prop("MemoryLow", Value::U64(res as u64)));
            }
            let swap = v2::swap_max(m.swap().unwrap_or(0), limit)?;
            if swap != 0 {
                p.push(prop("MemorySwapMax", Value::U64(swap as u64)));
            }
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(shares) = c.shares().filter(|&s| s != 0) {
            p.push(if v2 {
                prop("CPUWeight", Value::U64(v2::cpu_weight_from_shares(shares)))
            } else {
                prop("CPUShares", Value::U64(shares))
            });
        }
        let period = c.period().unwrap_or(0);
        let quota = c.quota().unwrap_or(0);
        if period != 0 {
            p.push(prop("CPUQuotaPeriodUSec", Value::U64(period)));
        }
        if quota != 0 || period != 0 {
            p.push(prop(
                "CPUQuotaPerSecUSec",
                Value::U64(cpu_quota_per_sec(quota, period)),
            ));
        }
        let mask = |field: &str, list: &str| {
            cpuset_bitmask(list).map_err(|reason| CgroupError::InvalidResource {
                field: field.into(),
                value: list.into(),
                reason,
            })
        };
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            let bytes = mask("linux.resources.cpu.cpus", cpus)?;
            p.push(prop("AllowedCPUs", bytes_value(bytes)));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            let bytes = mask("linux.resources.cpu.mems", mems)?;
            p.push(prop("AllowedMemoryNodes", bytes_value(bytes)));
        }
    }
    if let Some(limit) = r.pids().as_ref().map(|p| p.limit()) {
        let tasks = match limit {
            l if l < 0 => u64::MAX,
            0 => 1, // systemd refuses 0
            l => l as u64,
        };
        p.push(prop("TasksMax", Value::U64(tasks)));
    }
    if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()) {
        if w != 0 {
            p.push(if v2 {
                prop("IOWeight", Value::U64(v2::io_weight_from_blkio(w)))
            } else {
                prop("BlockIOWeight", Value::U64(u64::from(w)))
            });
        }
    }
    if v2 {
        for (key, value) in r.unified().iter().flatten() {
            let num = |v: &str| {
                if v.trim() == "max" {
                    Some(u64::MAX)
                } else {
                    v.trim().parse::<u64>().ok()
                }
            };
            let name = match key.as_str() {
                "memory.high" => "MemoryHigh",
                "memory.max" => "MemoryMax",
                "memory.low" => "MemoryLow",
                "memory.min" => "MemoryMin",
                "memory.swap.max" => "MemorySwapMax",
                "pids.max" => "TasksMax",
                "cpu.weight" => "CPUWeight",
                _ => continue,
            };
            // Values systemd cannot take are still written to the file.
            if let Some(n) = num(value) {
                p.push(prop(name, Value::U64(n)));
            }
        }
    }
    Ok(p)
}

fn bytes_value(bytes: Vec<u8>) -> Value {
    Value::Array("y".into(), bytes.into_iter().map(Value::Byte).collect())
}

fn props_value(props: Vec<(String, Value)>) -> Value {
    Value::Array(
        "(sv)".into(),
        props
            .into_iter()
            .map(|(k, v)| Value::Struct(vec![Value::Str(k), Value::var(v)]))
            .collect(),
    )
}

const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const DEST: &str = "org.freedesktop.systemd1";

/// Whether the runtime runs rootless: its effective uid is not root on the host (a non-root
/// user, or root in a user namespace such as rootless Podman's).
pub fn caller_is_rootless() -> Result<bool, SystemdError> {
    // SAFETY: geteuid cannot fail and touches no memory.
    let euid = unsafe { libc::geteuid() };
    let uid = dbus::host_uid(euid).map_err(|source| SystemdError::Connect {
        tried: "the host uid of the caller".into(),
        source,
    })?;
    Ok(uid != 0)
}

/// The unix socket path of the user's session bus: `$DBUS_SESSION_BUS_ADDRESS` (its
/// `unix:path=` form), else `$XDG_RUNTIME_DIR/bus`, else `/run/user/<host uid>/bus`.
pub fn user_bus_path(
    session_address: Option<&str>,
    runtime_dir: Option<&str>,
    host_uid: u32,
) -> PathBuf {
    let from_address = session_address.and_then(|a| {
        a.split(';').find_map(|one| {
            let params = one.strip_prefix("unix:")?;
            params
                .split(',')
                .find_map(|kv| kv.strip_prefix("path="))
                .map(PathBuf::from)
        })
    });
    from_address
        .or_else(|| {
            runtime_dir
                .filter(|d| !d.is_empty())
                .map(|d| Path::new(d).join("bus"))
        })
        .unwrap_or_else(|| PathBuf::from(format!("/run/user/{host_uid}/bus")))
}

/// A D-Bus connection to systemd's manager.
pub struct Systemd {
    conn: Connection,
}

impl Systemd {
    /// The manager that made (or makes) `unit`: the user's for a rootless one.
    pub fn connect_for(unit: &Unit) -> Result<Self, SystemdError> {
        if unit.user {
            Self::connect_user()
        } else {
            Self::connect()
        }
    }

    /// The user's own manager over the user's session bus.
    pub fn connect_user() -> Result<Self, SystemdError> {
        // SAFETY: geteuid cannot fail and touches no memory.
        let euid = unsafe { libc::geteuid() };
        let uid = dbus::host_uid(euid).map_err(|source| SystemdError::Connect {
            tried: "the user's session bus".into(),
            source,
        })?;
        let path = user_bus_path(
            std::env::var("DBUS_SESSION_BUS_ADDRESS").ok().as_deref(),
            std::env::var("XDG_RUNTIME_DIR").ok().as_deref(),
            uid,
        );
        let conn =
            Connection::open(&path, true, JOB_TIMEOUT).map_err(|source| SystemdError::Connect {
                tried: format!("the user's session bus {}", path.display()),
                source,
            })?;
        Ok(Systemd { conn })
    }

    /// The manager's own cgroup (`/user.slice/user-UID.slice/user@UID.service` for a user's
    /// manager): the root of the paths of the units it makes.
    pub fn manager_cgroup(&mut self) -> Result<String, SystemdError> {
        let reply = self.call(
            "Get",
            "the manager",
            MANAGER_PATH,
            "org.freedesktop.DBus.Properties",
            vec![Value::str(MANAGER), Value::str("ControlGroup")],
        )?;
        match reply.first() {
            Some(Value::Variant(v)) if v.as_str().is_some_and(|p| p.starts_with('/')) => {
                Ok(v.as_str().unwrap_or("/").to_string())
            }
            other => Err(SystemdError::Call {
                op: "Get",
                unit: "the manager's ControlGroup".into(),
                source: DbusError::Malformed(format!("not a cgroup path: {other:?}")),
            }),
        }
    }

    /// The system bus (as runc, through dbus-daemon), else systemd's private socket (root,
    /// early boot or no bus daemon).
    pub fn connect() -> Result<Self, SystemdError> {
        let timeout = JOB_TIMEOUT;
        let private = Path::new("/run/systemd/private");
        let bus = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
            .ok()
            .and_then(|a| a.strip_prefix("unix:path=").map(str::to_string))
            .unwrap_or_else(|| "/run/dbus/system_bus_socket".into());
        let conn = match Connection::open(Path::new(&bus), true, timeout) {
            Ok(c) => c,
            Err(e1) => {
                Connection::open(private, false, timeout).map_err(|e2| SystemdError::Connect {
                    tried: format!("{bus} ({e1}), {}", private.display()),
                    source: e2,
                })?
            }
        };
        Ok(Systemd { conn })
    }

    fn call(
        &mut self,
        op: &'static str,
        unit: &str,
        path: &str,
        interface: &str,
        args: Vec<Value>,
    ) -> Result<Vec<Value>, SystemdError> {
        self.conn
            .call(&Call {
                destination: Some(DEST),
                path,
                interface,
                member: op,
                args,
            })
            .map_err(|source| SystemdError::Call {
                op,
                unit: unit.to_string(),
                source,
            })
    }

    fn manager(
        &mut self,
        op: &'static str,
        unit: &str,
        args: Vec<Value>,
    ) -> Result<Vec<Value>, SystemdError> {
        self.call(op, unit, MANAGER_PATH, MANAGER, args)
    }

    /// The unit's ActiveState, or None when systemd has no such unit loaded.
    fn active_state(&mut self, unit: &str) -> Result<Option<String>, SystemdError> {
        let path = match self.manager("GetUnit", unit, vec![Value::str(unit)]) {
            Ok(v) => v.first().and_then(Value::as_str).unwrap_or("").to_string(),
            Err(SystemdError::Call {
                source: DbusError::Remote { name, .. },
                ..
            }) if name.ends_with(".NoSuchUnit") => return Ok(None),
            Err(e) => return Err(e),
        };
        let reply = self.call(
            "Get",
            unit,
            &path,
            "org.freedesktop.DBus.Properties",
            vec![
                Value::str("org.freedesktop.systemd1.Unit"),
                Value::str("ActiveState"),
            ],
        )?;
        match reply.first() {
            Some(Value::Variant(v)) => Ok(v.as_str().map(str::to_string)),
            _ => Ok(None),
        }
    }

    /// Start the transient unit with `pid` in it and wait until it is active.
    pub fn start(
        &mut self,
        unit: &Unit,
        pid: i32,
        mut props: Vec<(String, Value)>,
    ) -> Result<(), SystemdError> {
        let mut base = vec![prop("Description", Value::str(&unit.description))];
        if unit.is_slice() {
            base.push(prop(
                "Wants",
                Value::Array("s".into(), vec![Value::str(&unit.slice)]),
            ));
        } else {
            base.push(prop("Slice", Value::str(&unit.slice)));
            base.push(prop("Delegate", Value::Bool(true)));
        }
        base.push(prop(
            "PIDs",
            Value::Array("u".into(), vec![Value::U32(pid as u32)]),
        ));
        for acc in [
            "MemoryAccounting",
            "CPUAccounting",
            "IOAccounting",
            "TasksAccounting",
        ] {
            base.push(prop(acc, Value::Bool(true)));
        }
        base.push(prop("DefaultDependencies", Value::Bool(false)));
        base.append(&mut props);
        let args = |props: Vec<(String, Value)>| {
            vec![
                Value::str(&unit.name),
                Value::str("replace"),
                props_value(props),
                Value::Array("(sa(sv))".into(), vec![]),
            ]
        };
        match self.manager("StartTransientUnit", &unit.name, args(base.clone())) {
            Ok(_) => {}
            // A failed leftover of the same name: let systemd forget it and retry once.
            Err(SystemdError::Call {
                source: DbusError::Remote { name, .. },
                ..
            }) if name.ends_with(".UnitExists") => {
                let _ = self.manager("ResetFailedUnit", &unit.name, vec![Value::str(&unit.name)]);
                self.manager("StartTransientUnit", &unit.name, args(base))?;
            }
            Err(e) => return Err(e),
        }
        let start = Instant::now();
        loop {
            match self.active_state(&unit.name)?.as_deref() {
                Some("active") => return Ok(()),
                Some(s @ ("failed" | "inactive")) if start.elapsed() > Duration::from_secs(1) => {
                    return Err(SystemdError::NotActive {
                        unit: unit.name.clone(),
                        state: s.to_string(),
                    })
                }
                _ => {}
            }
            if start.elapsed() > JOB_TIMEOUT {
                return Err(SystemdError::Timeout {
                    unit: unit.name.clone(),
                    what: "become active",
                    secs: JOB_TIMEOUT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Change properties of the running unit (not persisted across reboots: runtime=true).
    pub fn set(&mut self, unit: &Unit, props: Vec<(String, Value)>) -> Result<(), SystemdError> {
        self.manager(
            "SetUnitProperties",
            &unit.name,
            vec![
                Value::str(&unit.name),
                Value::Bool(true),
                props_value(props),
            ],
        )
        .map(|_| ())
    }

    /// Stop the unit and wait until systemd has let it go; a unit already gone is fine.
    pub fn stop(&mut self, unit: &Unit) -> Result<(), SystemdError> {
        // A scope whose processes are all gone has already stopped (and may be collected).
        match self.active_state(&unit.name)?.as_deref() {
            None | Some("inactive") => return Ok(()),
            Some("failed") => {
                let _ = self.manager("ResetFailedUnit", &unit.name, vec![Value::str(&unit.name)]);
                return Ok(());
            }
            _ => {}
        }
        match self.manager(
            "StopUnit",
            &unit.name,
            vec![Value::str(&unit.name), Value::str("replace")],
        ) {
            Ok(_) => {}
            Err(SystemdError::Call {
                source: DbusError::Remote { name, .. },
                ..
            }) if name.ends_with(".NoSuchUnit") => return Ok(()),
            Err(e) => return Err(e),
        }
        let start = Instant::now();
        loop {
            match self.active_state(&unit.name)?.as_deref() {
                None | Some("inactive") => break,
                Some("failed") => {
                    let _ =
                        self.manager("ResetFailedUnit", &unit.name, vec![Value::str(&unit.name)]);
                    break;
                }
                _ => {}
            }
            if start.elapsed() > JOB_TIMEOUT {
                return Err(SystemdError::Timeout {
                    unit: unit.name.clone(),
                    what: "stop",
                    secs: JOB_TIMEOUT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }
}

/// After the unit started: the cgroup systemd put `pid` in, per hierarchy, must be the one
/// computed for the unit (it is where the rest of the resources get written).
pub fn check_placement(pid: i32, unit: &Unit) -> Result<(), SystemdError> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return Ok(()); // the process already went; nothing to compare
    };
    let want = unit.path.to_string_lossy().into_owned();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        // systemd moves the pid in its own hierarchies: the unified one and, on v1 hosts,
        // name=systemd and the controllers it manages. The others nucleus joins itself.
        let managed = ctrls.is_empty()
            || ctrls.split(',').any(|c| {
                matches!(
                    c,
                    "name=systemd" | "memory" | "cpu" | "cpuacct" | "blkio" | "pids" | "devices"
                )
            });
        if managed && path != want {
            return Err(SystemdError::Placement {
                pid,
                controller: ctrls.to_string(),
                got: path.to_string(),
                want: want.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    };

    #[test]
    fn slices_expand() {
        assert_eq!(expand_slice("-.slice").unwrap(), Path::new("/"));
        assert_eq!(
            expand_slice("system.slice").unwrap(),
            Path::new("/system.slice")
        );
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            Path::new("/a.slice/a-b.slice/a-b-c.slice")
        );
        for bad in ["a--b.slice", "-a.slice", "a.scope", "a/b.slice", ".slic"] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_bus_paths() {
        let p = |a, d| user_bus_path(a, d, 999);
        assert_eq!(
            p(Some("unix:path=/run/user/999/bus"), None),
            Path::new("/run/user/999/bus")
        );
        assert_eq!(
            p(Some("unix:path=/tmp/b,guid=0123abcd"), Some("/x")),
            Path::new("/tmp/b")
        );
        assert_eq!(
            p(Some("tcp:host=h,port=1;unix:path=/s"), None),
            Path::new("/s")
        );
        // An abstract or unknown address: the runtime dir's bus.
        assert_eq!(
            p(Some("unix:abstract=/tmp/dbus-x"), Some("/run/user/5")),
            Path::new("/run/user/5/bus")
        );
        assert_eq!(p(None, Some("/tmp/rt")), Path::new("/tmp/rt/bus"));
        assert_eq!(p(None, Some("")), Path::new("/run/user/999/bus"));
        assert_eq!(p(None, None), Path::new("/run/user/999/bus"));
    }

    #[test]
    fn user_units_default_to_user_slice() {
        let u = Unit::parse(None, "c1", DEFAULT_USER_SLICE).unwrap();
        assert_eq!(u.path, Path::new("/user.slice/nucleus-c1.scope"));
        let u = Unit::parse(Some(":libpod:abc"), "c1", DEFAULT_USER_SLICE).unwrap();
        assert_eq!(u.path, Path::new("/user.slice/libpod-abc.scope"));
        let u = Unit::parse(Some("user.slice:libpod:abc"), "c1", DEFAULT_USER_SLICE).unwrap();
        assert_eq!(u.name, "libpod-abc.scope");
        assert!(!u.user);
        // A state written before the field existed reads as a system unit.
        let old = r#"{"name":"a.scope","slice":"system.slice","path":"/system.slice/a.scope","description":"d"}"#;
        assert!(!serde_json::from_str::<Unit>(old).unwrap().user);
    }

    #[test]
    fn units_from_cgroups_path() {
        let u = Unit::from_cgroups_path(Some("machine.slice:libpod:abc"), "id").unwrap();
        assert_eq!(u.name, "libpod-abc.scope");
        assert_eq!(u.slice, "machine.slice");
        assert_eq!(u.path, Path::new("/machine.slice/libpod-abc.scope"));
        let u = Unit::from_cgroups_path(None, "c1").unwrap();
        assert_eq!(u.name, "nucleus-c1.scope");
        assert_eq!(u.path, Path::new("/system.slice/nucleus-c1.scope"));
        let u = Unit::from_cgroups_path(Some(":p:"), "c2").unwrap();
        assert_eq!(u.path, Path::new("/system.slice/p-c2.scope"));
        let u = Unit::from_cgroups_path(Some("kubepods-besteffort.slice:cri:x"), "c").unwrap();
        assert_eq!(
            u.path,
            Path::new("/kubepods.slice/kubepods-besteffort.slice/cri-x.scope")
        );
        let u = Unit::from_cgroups_path(Some("system.slice::my-app.slice"), "c").unwrap();
        assert_eq!(u.name, "my-app.slice");
        assert_eq!(u.path, Path::new("/my.slice/my-app.slice"));
        for bad in ["a:b", "/x/y", "a:b:c:d"] {
            let e = Unit::from_cgroups_path(Some(bad), "c").unwrap_err();
            assert!(e.to_string().contains("slice:prefix:name"), "{e}");
        }
        assert!(Unit::from_cgroups_path(Some("bad:p:n"), "c").is_err());
    }

    #[test]
    fn annotations_typed() {
        let a: HashMap<String, String> = [
            ("org.systemd.property.TimeoutStopUSec", "uint64 123"),
            ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
            ("org.systemd.property.IgnoreOnIsolate", "true"),
            ("org.systemd.property.TimeoutStopSec", "5"),
            ("org.systemd.property.RuntimeMaxSec", "@t 2"),
            ("org.systemd.property.Wants", "['a.service', \"b.service\"]"),
            ("org.systemd.property.CPUWeight", "@t 7"),
            ("other.annotation", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p = annotation_properties(&a).unwrap();
        let get = |n: &str| p.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert!(p.contains(&("TimeoutStopUSec".into(), Value::U64(123))));
        assert_eq!(get("CollectMode"), Some(Value::str("inactive-or-failed")));
        assert_eq!(get("IgnoreOnIsolate"), Some(Value::Bool(true)));
        assert_eq!(get("RuntimeMaxUSec"), Some(Value::U64(2_000_000)));
        assert_eq!(get("CPUWeight"), Some(Value::U64(7)));
        assert_eq!(
            get("Wants"),
            Some(Value::Array(
                "s".into(),
                vec![Value::str("a.service"), Value::str("b.service")]
            ))
        );
        // TimeoutStopSec=5 (an int32) became TimeoutStopUSec in microseconds.
        assert!(p.contains(&("TimeoutStopUSec".into(), Value::U64(5_000_000))));
        assert_eq!(p.len(), 7);

        for (k, v) in [
            ("org.systemd.property.X1", "true"),
            ("org.systemd.property.Ab", "true"),
            ("org.systemd.property.Foo", "uint64 -1"),
            ("org.systemd.property.Foo", "'unterminated"),
            ("org.systemd.property.Foo", "bogus words"),
            ("org.systemd.property.Foo", "[1, 'a']"),
            ("org.systemd.property.TimeoutSec", "'soon'"),
        ] {
            let a = HashMap::from([(k.to_string(), v.to_string())]);
            let e = annotation_properties(&a).unwrap_err().to_string();
            assert!(e.starts_with(&format!("annotation {k}")), "{k}={v}: {e}");
        }
    }

    #[test]
    fn cpusets_and_quota() {
        assert_eq!(cpuset_bitmask("0").unwrap(), [1]);
        assert_eq!(cpuset_bitmask("0-3,9").unwrap(), [0x0f, 0x02]);
        assert!(cpuset_bitmask("3-1").is_err());
        assert!(cpuset_bitmask("x").is_err());
        assert_eq!(cpu_quota_per_sec(50_000, 100_000), 500_000);
        // 1.5 % rounds up to 2 %.
        assert_eq!(cpu_quota_per_sec(1_500, 100_000), 20_000);
        assert_eq!(cpu_quota_per_sec(-1, 100_000), u64::MAX);
        assert_eq!(cpu_quota_per_sec(20_000, 0), 200_000);
    }

    #[test]
    fn resources_to_properties() {
        let r = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .reservation(32 << 20)
                    .swap(128 << 20)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(1024u64)
                    .quota(50_000)
                    .period(100_000u64)
                    .cpus("0-1")
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(0).build().unwrap())
            .unified(HashMap::from([(
                "memory.high".to_string(),
                "50000000".to_string(),
            )]))
            .build()
            .unwrap();
        let p = resource_properties(&r, CgroupMode::V2).unwrap();
        let get = |n: &str| p.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("MemoryMax"), Some(Value::U64(64 << 20)));
        assert_eq!(get("MemoryLow"), Some(Value::U64(32 << 20)));
        assert_eq!(get("MemorySwapMax"), Some(Value::U64(64 << 20)));
        assert_eq!(get("MemoryHigh"), Some(Value::U64(50_000_000)));
        assert_eq!(get("CPUWeight"), Some(Value::U64(39)));
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Value::U64(500_000)));
        assert_eq!(get("CPUQuotaPeriodUSec"), Some(Value::U64(100_000)));
        assert_eq!(get("AllowedCPUs"), Some(bytes_value(vec![3])));
        assert_eq!(get("TasksMax"), Some(Value::U64(1)));
        assert_eq!(get("DevicePolicy"), Some(Value::str("strict")));
        let Some(Value::Array(sig, allow)) = get("DeviceAllow") else {
            panic!("no DeviceAllow");
        };
        assert_eq!(sig, "(ss)");
        assert!(allow.contains(&Value::Struct(vec![
            Value::str("/dev/char/1:3"),
            Value::str("rwm")
        ])));
        assert!(allow.contains(&Value::Struct(vec![Value::str("char-*"), Value::str("m")])));

        let v1 = resource_properties(&r, CgroupMode::Hybrid).unwrap();
        assert!(v1.contains(&("MemoryLimit".into(), Value::U64(64 << 20))));
        assert!(v1.contains(&("CPUShares".into(), Value::U64(1024))));
        assert!(!v1
            .iter()
            .any(|(k, _)| k == "MemoryMax" || k == "MemoryHigh"));
    }
}

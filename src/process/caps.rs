//! Applying the five capability sets of `process.capabilities`.

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("process.capabilities.{set}: {cap} is not in the runtime's own {what} set, so the container cannot have it")]
    Unavailable {
        set: &'static str,
        cap: Capability,
        what: &'static str,
    },
    #[error("process.capabilities.effective: {0} is not in permitted")]
    EffectiveNotPermitted(Capability),
    #[error("read own {set} capabilities: {source}")]
    Read {
        set: &'static str,
        source: caps::errors::CapsError,
    },
    #[error("set {set} capabilities: {source}")]
    Set {
        set: &'static str,
        source: caps::errors::CapsError,
    },
}

/// The highest capability the running kernel knows; the ones above it are skipped (with a
/// warning) as runc does, so one config works across kernels.
pub(crate) fn last_cap() -> u8 {
    crate::procinfo::cap_last_cap()
}

/// The kernel's number for an OCI capability name.
pub(crate) fn index_of(c: &oci_spec::runtime::Capability) -> Option<u8> {
    let name = serde_json::to_value(c).ok()?;
    name.as_str()?.parse::<Capability>().ok().map(|c| c.index())
}

fn to_set(list: &Option<Capabilities>, last: u8) -> CapsHashSet {
    let mut out = CapsHashSet::new();
    for c in list.iter().flatten() {
        // oci-spec serialises capabilities by their kernel names (CAP_...).
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        match name.parse::<Capability>() {
            Ok(cap) if cap.index() <= last => {
                out.insert(cap);
            }
            _ => crate::warn!("capability {name} is not known to this kernel, ignored"),
        }
    }
    out
}

fn err(set: &'static str) -> impl FnOnce(caps::errors::CapsError) -> CapsError {
    move |source| CapsError::Set { set, source }
}

/// Drop from the bounding set everything not listed. Must happen while still privileged.
pub fn apply_bounding(c: &LinuxCapabilities) -> Result<(), CapsError> {
    let last = last_cap();
    let keep = to_set(c.bounding(), last);
    for cap in caps::all() {
        if cap.index() <= last && !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(err("bounding"))?;
        }
    }
    Ok(())
}

/// Check, before the init reports ready, that `apply_sets` will succeed: every capability
/// asked for in permitted, effective and inheritable is one this process holds and may
/// keep (in its bounding and permitted sets), and effective is within permitted. So a
/// capability the runtime itself lacks fails `create`, not `start`. The bounding set only
/// ever shrinks: listing a capability there that the runtime lacks is harmless.
pub fn check_sets(c: &LinuxCapabilities) -> Result<(), CapsError> {
    let last = last_cap();
    let read = |set: CapSet, name: &'static str| {
        caps::read(None, set).map_err(|source| CapsError::Read { set: name, source })
    };
    // The bounding set is read one capability at a time (PR_CAPBSET_READ): only those
    // asked for, each once, rather than all 41.
    let mut in_bounding: std::collections::HashMap<Capability, bool> = Default::default();
    let mut bounding_has = |cap: Capability| -> Result<bool, CapsError> {
        if let Some(&b) = in_bounding.get(&cap) {
            return Ok(b);
        }
        let b = caps::has_cap(None, CapSet::Bounding, cap).map_err(|source| CapsError::Read {
            set: "bounding",
            source,
        })?;
        in_bounding.insert(cap, b);
        Ok(b)
    };
    let own_permitted = read(CapSet::Permitted, "permitted")?;
    let permitted = to_set(c.permitted(), last);
    for (set, list) in [
        ("permitted", &permitted),
        ("effective", &to_set(c.effective(), last)),
        ("inheritable", &to_set(c.inheritable(), last)),
    ] {
        let mut sorted: Vec<Capability> = list.iter().copied().collect();
        sorted.sort_by_key(|c| c.index());
        for cap in sorted {
            if !bounding_has(cap)? {
                return Err(CapsError::Unavailable {
                    set,
                    cap,
                    what: "bounding",
                });
            }
            if set != "inheritable" && !own_permitted.contains(&cap) {
                return Err(CapsError::Unavailable {
                    set,
                    cap,
                    what: "permitted",
                });
            }
            if set == "effective" && !permitted.contains(&cap) {
                return Err(CapsError::EffectiveNotPermitted(cap));
            }
        }
    }
    Ok(())
}

/// Set effective, permitted, inheritable and ambient sets (after the uid switch).
pub fn apply_sets(c: &LinuxCapabilities) -> Result<(), CapsError> {
    let last = last_cap();
    let permitted = to_set(c.permitted(), last);
    let effective = to_set(c.effective(), last);
    let inheritable = to_set(c.inheritable(), last);
    // Each capset must leave effective within permitted, and inheritable can only take what
    // permitted still holds: so inheritable first, then shrink effective, then permitted.
    caps::set(None, CapSet::Inheritable, &inheritable).map_err(err("inheritable"))?;
    caps::set(None, CapSet::Effective, &effective).map_err(err("effective"))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(err("permitted"))?;
    caps::clear(None, CapSet::Ambient).map_err(err("ambient"))?;
    for cap in to_set(c.ambient(), last) {
        // The kernel refuses an ambient cap not in both permitted and inheritable; runc
        // skips those silently, and so do we.
        if permitted.contains(&cap) && inheritable.contains(&cap) {
            caps::raise(None, CapSet::Ambient, cap).map_err(err("ambient"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kernel that knows fewer capabilities than the config lists (cap_last_cap 38, before
    /// CAP_BPF and CAP_CHECKPOINT_RESTORE): those are left out, as runc leaves them, and the
    /// rest kept. (A kernel like that cannot be faked for a whole `run`: cap_last_cap is
    /// read only from procfs, and a file bound over it is refused; see `integration/tests/cli.rs`.)
    #[test]
    fn capabilities_above_the_kernels_last_are_left_out() {
        let list: Option<Capabilities> = serde_json::from_value(serde_json::json!([
            "CAP_KILL",
            "CAP_BPF",
            "CAP_CHECKPOINT_RESTORE"
        ]))
        .unwrap();
        let set = to_set(&list, 38);
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            vec![Capability::CAP_KILL]
        );
        let all = to_set(&list, 40);
        assert_eq!(all.len(), 3);
    }
}

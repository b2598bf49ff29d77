use std::collections::HashMap;

use serde::Serialize;

use super::{status, ContainerError, Runtime};
use crate::state::OCI_VERSION;

/// One row of `nucleus list` (the JSON shape runc prints, in its order).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListEntry {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: String,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    #[serde(
        skip_serializing_if = "HashMap::is_empty",
        serialize_with = "crate::state::serialize_sorted"
    )]
    pub annotations: HashMap<String, String>,
    pub owner: String,
}

/// The containers under the root; with `annotations` (runc's JSON format has them) each
/// one's annotations are read too, else left empty.
pub fn list(rt: &Runtime, annotations: bool) -> Result<Vec<ListEntry>, ContainerError> {
    let mut out = Vec::new();
    // Owner names by uid: /etc/passwd is read once per user, not once per container.
    let mut owners: HashMap<u32, String> = HashMap::new();
    for id in rt.root.list()? {
        // A container deleted while we list is simply not listed.
        let Ok(dir) = rt.root.open(&id) else { continue };
        let Ok(mut st) = dir.load() else {
            continue;
        };
        if annotations && dir.load_annotations(&mut st).is_err() {
            continue;
        }
        let s = status(&dir, &st);
        out.push(ListEntry {
            oci_version: OCI_VERSION.into(),
            id: st.id.clone(),
            pid: if s == crate::state::Status::Stopped {
                0
            } else {
                st.pid
            },
            status: s.to_string(),
            bundle: st.bundle.display().to_string(),
            rootfs: st.rootfs.display().to_string(),
            created: st.created.clone(),
            annotations: std::mem::take(&mut st.annotations),
            owner: if st.owner.is_empty() {
                dir_owner(&dir.path, &mut owners)
            } else {
                st.owner.clone()
            },
        });
    }
    Ok(out)
}

/// runc's OWNER: the user owning the container's state directory (a rootless user's own
/// root holds theirs), by name from the host's /etc/passwd, else `#UID`.
fn dir_owner(dir: &std::path::Path, owners: &mut HashMap<u32, String>) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata(dir).map(|m| m.uid()) else {
        return String::new();
    };
    owners.entry(uid).or_insert_with(|| owner_name(uid)).clone()
}

fn owner_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

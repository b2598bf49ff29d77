use serde::Serialize;

use super::{status_of, ContainerError, Runtime};
use crate::state::OCI_VERSION;

/// One row of `nucleus list` (the JSON shape runc prints).
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
    pub owner: String,
}

pub fn list(rt: &Runtime) -> Result<Vec<ListEntry>, ContainerError> {
    let mut out = Vec::new();
    for id in rt.root.list()? {
        // A container deleted while we list is simply not listed.
        let Ok(dir) = rt.root.open(&id) else { continue };
        let Ok(st) = dir.load_summary() else {
            continue;
        };
        let s = status_of(&dir, st.pid, st.pid_start, st.cgroup.as_ref());
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
            owner: st.owner.clone(),
        });
    }
    Ok(out)
}

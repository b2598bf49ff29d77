//! Placeholder until the rootfs branch lands.
use std::path::Path;
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs: {0}")]
    X(String),
}
pub struct RootfsSetup<'a> {
    pub spec: &'a oci_spec::runtime::Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub no_pivot: bool,
    pub user_ns: bool,
}
fn e(x: nix::Error) -> RootfsError {
    RootfsError::X(x.to_string())
}
impl RootfsSetup<'_> {
    pub fn prepare(&self) -> Result<(), RootfsError> {
        use nix::mount::{mount, MsFlags};
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None::<&str>,
        )
        .map_err(e)?;
        mount(
            Some(self.rootfs),
            self.rootfs,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(e)?;
        mount(
            Some("proc"),
            &self.rootfs.join("proc"),
            Some("proc"),
            MsFlags::empty(),
            None::<&str>,
        )
        .map_err(e)?;
        Ok(())
    }
    pub fn pivot(&self) -> Result<(), RootfsError> {
        nix::unistd::chdir(self.rootfs).map_err(e)?;
        nix::unistd::pivot_root(".", ".").map_err(e)?;
        nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH).map_err(e)?;
        nix::unistd::chdir("/").map_err(e)
    }
    pub fn finalize(&self) -> Result<(), RootfsError> {
        Ok(())
    }
}

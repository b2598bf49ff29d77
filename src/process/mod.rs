//! The processes nucleus starts for a container: the fork sequence in the runtime
//! (`spawn`), what the container init does before exec (`init`), and the process
//! attributes both init and exec'd processes get (`setup`, `caps`).

pub(crate) mod caps;
pub(crate) mod console;
pub(crate) mod exe_remap;
pub(crate) mod exec;
pub(crate) mod filter;
pub(crate) mod fork;
pub(crate) mod init;
pub(crate) mod lsm;
pub mod sealed_exe;
pub(crate) mod setup;
pub(crate) mod spawn;

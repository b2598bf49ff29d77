//! The processes nucleus starts for a container: the fork sequence in the runtime
//! (`spawn`), what the container init does before exec (`init`), and the process
//! attributes both init and exec'd processes get (`setup`, `caps`).

pub mod caps;
pub mod console;
pub mod exec;
pub mod filter;
pub mod init;
pub mod lsm;
pub mod sealed_exe;
pub mod setup;
pub mod spawn;

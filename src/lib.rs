//! nucleus: an OCI runtime library. The `nucleus` binary is a thin CLI over it.

#[macro_use]
pub mod logger;

pub mod cgroups;
pub mod container;
pub mod features;
pub mod hooks;
pub mod landlock;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;
pub mod sync;

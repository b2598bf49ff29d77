//! nucleus: an OCI runtime library. The `nucleus` binary is a thin CLI over it.

#[macro_use]
pub mod logger;

pub(crate) mod annotation;
pub(crate) mod cgroups;
pub mod container;
pub mod features;
pub(crate) mod hooks;
pub mod landlock;
pub(crate) mod namespaces;
pub mod process;
pub(crate) mod procinfo;
pub(crate) mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod state;
pub(crate) mod sync;
mod sys;

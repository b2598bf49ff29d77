//! nucleus: an OCI runtime library. The `nucleus` binary is a thin CLI over it.
pub mod seccomp;

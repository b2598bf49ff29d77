//! The Linux security module settings of a container process: the AppArmor profile
//! (`process.apparmorProfile`) and the SELinux label (`process.selinuxLabel`), both set as
//! runc sets them, as the transition the kernel makes at the process's execve.
//!
//! Both are written to this thread's `attr/.../exec` file through a private procfs
//! ([`crate::rootfs::procfs`]): the container's own /proc is attacker-controlled, and a
//! file bound over its `attr/exec` would take the write and leave the process unconfined.
//! The kernel only lets a task write its own `attr` files, so the path is the thread's own
//! (`PID/task/TID`, the ids as the private procfs's pid namespace sees them: the
//! caller's), reached without following `thread-self`, a symlink.

use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::errno::Errno;

use crate::rootfs::procfs;

#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    #[error("open a private procfs for the {what}: {errno}")]
    Procfs { what: &'static str, errno: Errno },
    #[error("apply AppArmor profile {profile:?}: {errno}{}", not_loaded(*.errno))]
    AppArmor { profile: String, errno: Errno },
    #[error("apply SELinux label {label:?}: {errno}{}", invalid_label(*.errno))]
    SeLinux { label: String, errno: Errno },
}

fn not_loaded(errno: Errno) -> &'static str {
    match errno {
        Errno::ENOENT => " (no such profile is loaded in the kernel; load it with apparmor_parser)",
        _ => "",
    }
}

fn invalid_label(errno: Errno) -> &'static str {
    match errno {
        Errno::EINVAL => " (not a valid context under the loaded policy)",
        _ => "",
    }
}

/// What to set for the process's next execve.
#[derive(Debug, Default, Clone, Copy)]
pub struct Lsm<'a> {
    pub apparmor_profile: Option<&'a str>,
    pub selinux_label: Option<&'a str>,
}

impl<'a> Lsm<'a> {
    pub fn of(p: &'a oci_spec::runtime::Process) -> Self {
        let set = |s: &'a Option<String>| s.as_deref().filter(|s| !s.is_empty());
        Self {
            apparmor_profile: set(p.apparmor_profile()),
            selinux_label: set(p.selinux_label()),
        }
    }

    fn is_empty(&self) -> bool {
        self.apparmor_profile.is_none() && self.selinux_label.is_none()
    }

    /// Asks the kernel to move this thread into the profile and label at its next execve
    /// (libapparmor's aa_change_onexec, libselinux's setexeccon). Called while the process
    /// is still root with all its capabilities, before no_new_privs and seccomp (see the
    /// callers): the write then cannot be refused by a container's seccomp profile, and a
    /// profile the kernel does not know fails here, with its name, instead of at execve.
    /// The kernel checks the label at the write as well: an invalid one fails here too.
    pub fn apply_on_exec(&self) -> Result<(), LsmError> {
        if self.is_empty() {
            return Ok(());
        }
        let what = if self.apparmor_profile.is_some() {
            "AppArmor profile"
        } else {
            "SELinux label"
        };
        let proc = procfs::private_procfs().map_err(|errno| LsmError::Procfs { what, errno })?;
        let thread = PathBuf::from(format!(
            "{}/task/{}/attr",
            nix::unistd::getpid(),
            nix::unistd::gettid()
        ));
        if let Some(profile) = self.apparmor_profile {
            // attr/apparmor/exec since Linux 5.1 (stacked LSMs each have their own
            // directory); older kernels only have the shared attr/exec.
            let value = format!("exec {profile}");
            let err = |errno| LsmError::AppArmor {
                profile: crate::spec::clip(profile),
                errno,
            };
            match procfs::write(
                proc.as_fd(),
                &thread.join("apparmor/exec"),
                value.as_bytes(),
            ) {
                Err(Errno::ENOENT) if !procfs::exists(proc.as_fd(), &thread.join("apparmor")) => {
                    procfs::write(proc.as_fd(), &thread.join("exec"), value.as_bytes())
                        .map_err(err)?
                }
                r => r.map_err(err)?,
            }
        }
        if let Some(label) = self.selinux_label {
            procfs::write(proc.as_fd(), &thread.join("exec"), label.as_bytes()).map_err(
                |errno| LsmError::SeLinux {
                    label: crate::spec::clip(label),
                    errno,
                },
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line_and_name_the_setting() {
        let e = LsmError::AppArmor {
            profile: "containers-default-0.50.1".into(),
            errno: Errno::ENOENT,
        };
        let s = e.to_string();
        assert!(s.starts_with("apply AppArmor profile \"containers-default-0.50.1\": ENOENT"));
        assert!(s.contains("apparmor_parser") && !s.contains('\n'), "{s}");
        let e = LsmError::SeLinux {
            label: "x".into(),
            errno: Errno::EINVAL,
        };
        assert!(e.to_string().contains("not a valid context"), "{e}");
    }

    #[test]
    fn empty_settings_touch_nothing() {
        let p = oci_spec::runtime::ProcessBuilder::default()
            .apparmor_profile("")
            .build()
            .expect("process");
        let l = Lsm::of(&p);
        assert!(l.is_empty());
        l.apply_on_exec().expect("nothing to apply");
    }
}

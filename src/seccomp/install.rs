//! Loading a compiled program into the kernel, and handing a notify listener to a seccomp
//! agent (runc's protocol: the container process state JSON plus the fd over SCM_RIGHTS).

use super::{Program, SeccompError};
use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};

/// Installs `p` on the calling thread with seccomp(2). The caller must have set
/// no_new_privs or hold CAP_SYS_ADMIN. Returns the notify listener fd (close-on-exec, as the
/// kernel creates it) when the program uses SCMP_ACT_NOTIFY.
///
/// Async-signal-safe apart from error formatting: fine to call between fork and exec.
pub fn install(p: &Program) -> Result<Option<OwnedFd>, SeccompError> {
    let mut flags = p.flags;
    if p.uses_notify {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    } else {
        // The kernel refuses WAIT_KILLABLE_RECV without a listener; it has no meaning then.
        flags &= !libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    }
    let len = u16::try_from(p.instructions.len()).map_err(|_| SeccompError::ProgramTooLong {
        len: p.instructions.len(),
        max: super::bpf::MAX_INSNS,
    })?;
    let fprog = libc::sock_fprog {
        len,
        filter: p.instructions.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at `p.instructions`, alive for the call; the kernel copies it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        let source = std::io::Error::last_os_error();
        let hint = match source.raw_os_error() {
            Some(libc::EACCES) => " (set no_new_privs or keep CAP_SYS_ADMIN before installing)",
            Some(libc::EINVAL) => " (a filter flag this kernel does not know?)",
            Some(libc::EBUSY) => " (another notify listener already exists on this process)",
            _ => "",
        };
        return Err(SeccompError::Install {
            flags,
            source,
            hint,
        });
    }
    if p.uses_notify {
        // SAFETY: with NEW_LISTENER, seccomp(2) returns a fresh fd we now own.
        let fd = unsafe { crate::sys::owned_fd(ret) }.map_err(|e| SeccompError::Install {
            flags,
            source: e.into(),
            hint: "",
        })?;
        Ok(Some(fd))
    } else {
        Ok(None)
    }
}

/// Connects to the seccomp agent's socket at `listener_path`. Done by the runtime before the
/// container's pivot_root, while the host path still resolves.
pub fn connect_agent(listener_path: &str) -> Result<OwnedFd, SeccompError> {
    let err = |what: &'static str, e: nix::Error| SeccompError::Listener {
        what,
        path: listener_path.to_string(),
        source: std::io::Error::from(e),
    };
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| err("creating a socket for", e))?;
    let addr = UnixAddr::new(listener_path).map_err(|e| err("bad socket path", e))?;
    connect(sock.as_raw_fd(), &addr).map_err(|e| err("connecting to", e))?;
    Ok(sock)
}

/// Sends `listener` over `agent` (from [`connect_agent`]) with the container process state
/// (`state_json`: the OCI state of the container, which carries its pid), as runc does. The
/// listener is closed here once sent.
pub fn send_listener(
    agent: &OwnedFd,
    listener_path: &str,
    listener: OwnedFd,
    metadata: Option<&str>,
    state_json: &[u8],
) -> Result<(), SeccompError> {
    let state: serde_json::Value =
        serde_json::from_slice(state_json).map_err(|e| SeccompError::StateJson(e.to_string()))?;
    let pid = state
        .get("pid")
        .and_then(|p| p.as_i64())
        .ok_or_else(|| SeccompError::StateJson("no \"pid\" in the container state".into()))?;
    let oci_version = state
        .get("ociVersion")
        .cloned()
        .unwrap_or_else(|| serde_json::Value::String("1.0.2".into()));
    let msg = serde_json::json!({
        "ociVersion": oci_version,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata.unwrap_or(""),
        "state": state,
    });
    let bytes = serde_json::to_vec(&msg).map_err(|e| SeccompError::StateJson(e.to_string()))?;
    let err = |what: &'static str, e: nix::Error| SeccompError::Listener {
        what,
        path: listener_path.to_string(),
        source: std::io::Error::from(e),
    };
    let fds = [listener.as_raw_fd()];
    let mut sent = sendmsg::<()>(
        agent.as_raw_fd(),
        &[IoSlice::new(&bytes)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| err("sending the listener to", e))?;
    while sent < bytes.len() {
        sent += sendmsg::<()>(
            agent.as_raw_fd(),
            &[IoSlice::new(&bytes[sent..])],
            &[],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(|e| err("sending the state to", e))?;
    }
    Ok(())
}

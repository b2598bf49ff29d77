//! The channel between the runtime and the processes it forks for a container.
//!
//! A `SOCK_SEQPACKET` socketpair keeps message boundaries, so each message is one JSON
//! datagram; EOF means the other side died, which a runtime must notice rather than hang.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("create sync socketpair: {0}")]
    Pair(nix::Error),
    #[error("sync channel send: {0}")]
    Send(std::io::Error),
    #[error("sync channel receive: {0}")]
    Recv(std::io::Error),
    #[error("container init exited before it was set up (see the runtime log)")]
    Eof,
    #[error("bad sync message: {0}")]
    Decode(serde_json::Error),
    #[error("unexpected sync message {got:?} while waiting for {want}")]
    Unexpected { got: Msg, want: &'static str },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Msg {
    /// Intermediate → runtime: namespaces are made; I will move myself into the cgroup
    /// once it exists.
    WaitCgroup,
    /// Runtime → intermediate: the container cgroup exists with its limits set.
    CgroupReady,
    /// Intermediate → runtime: namespaces are made (their kernel memory charged to the
    /// caller, not to the container's limit); put me in the container cgroup (when I
    /// cannot move myself, e.g. from inside a user namespace).
    JoinCgroup,
    /// Runtime → intermediate (or exec'd process): you are in the container cgroup, go on.
    Continue,
    /// Intermediate → runtime: I unshared a user namespace; write my id maps.
    MapIds,
    /// Runtime → intermediate: maps written.
    MapsDone,
    /// Intermediate → runtime: the host pid of the container init.
    InitPid(i32),
    /// Runtime → init: the container state (with the init's host pid) for hooks and the
    /// seccomp agent.
    State(String),
    /// Init → runtime: mounts done; run prestart and createRuntime hooks now.
    RunHooks,
    /// Runtime → init: hooks done.
    HooksDone,
    /// Init → runtime: set up; waiting for `Created` or `start`.
    Ready,
    /// Runtime → init: the create completed; wait for `start`. An init that gets EOF
    /// before this or `start` (the runtime died part-way) exits, so none waits forever.
    Created,
    /// Any child → runtime: setup failed.
    Error(String),
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel), SyncError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(SyncError::Pair)?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, msg: &Msg) -> Result<(), SyncError> {
        let data = serde_json::to_vec(msg).map_err(SyncError::Decode)?;
        loop {
            // SAFETY: writing a buffer we own to a socket fd we own.
            let r = unsafe {
                libc::send(
                    self.fd.as_fd().as_raw_fd(),
                    data.as_ptr().cast(),
                    data.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if r >= 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(SyncError::Send(e));
            }
        }
    }

    pub fn recv(&self) -> Result<Msg, SyncError> {
        // Sized to the datagram: the init runs under the container's memory limit, where a
        // large scratch buffer would be charged to it.
        let mut buf = vec![0u8; self.next_len()?];
        loop {
            // SAFETY: reading into a buffer we own, bounded by its length.
            let r =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if r > 0 {
                return serde_json::from_slice(&buf[..r as usize]).map_err(SyncError::Decode);
            }
            if r == 0 {
                return Err(SyncError::Eof);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(SyncError::Recv(e));
            }
        }
    }

    /// Length of the next datagram (at least 1, so EOF still reads as 0), without
    /// consuming it.
    fn next_len(&self) -> Result<usize, SyncError> {
        loop {
            // SAFETY: MSG_PEEK|MSG_TRUNC with a zero-length buffer only reports the size.
            let r = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_PEEK | libc::MSG_TRUNC,
                )
            };
            if r >= 0 {
                return Ok((r as usize).max(1));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(SyncError::Recv(e));
            }
        }
    }

    /// Receive and insist on `want`; a child's `Error` becomes this side's error text.
    pub fn expect(&self, want: Msg, name: &'static str) -> Result<(), SyncError> {
        match self.recv()? {
            m if m == want => Ok(()),
            got => Err(SyncError::Unexpected { got, want: name }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_eof_is_seen() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::InitPid(42)).unwrap();
        a.send(&Msg::Error("x".into())).unwrap();
        assert_eq!(b.recv().unwrap(), Msg::InitPid(42));
        assert_eq!(b.recv().unwrap(), Msg::Error("x".into()));
        drop(a);
        assert!(matches!(b.recv(), Err(SyncError::Eof)));
    }
}

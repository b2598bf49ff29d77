//! The channel between the runtime and the processes it forks for a container.
//!
//! A `SOCK_SEQPACKET` socketpair keeps message boundaries; EOF means the other side died,
//! which a runtime must notice rather than hang. A message is JSON sent as one or more
//! datagrams of at most `CHUNK` bytes, each led by one byte saying whether more follow: a
//! datagram larger than the socket's send buffer is refused by the kernel, and a message
//! carries the container state, whose annotations the caller sizes.

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
    #[error("bad sync datagram (flag byte {0:#x})")]
    Frame(u8),
    #[error("bad sync message: {0}")]
    Decode(serde_json::Error),
    #[error("unexpected sync message {got:?} while waiting for {want}")]
    Unexpected { got: Msg, want: &'static str },
}

/// Payload bytes per datagram: well under the default socket buffer (`wmem_default`,
/// about 208 KiB), so a datagram is never too large to queue.
const CHUNK: usize = 32 * 1024;
/// Leading byte of a datagram: the message goes on in the next one.
const MORE: u8 = b'+';
/// Leading byte of a datagram: the message ends here.
const LAST: u8 = b'.';

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
    /// Init → runtime: the identities of the paths its Landlock ruleset confines to.
    Landlock(Vec<crate::landlock::Identity>),
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
        let mut chunks = data.chunks(CHUNK).peekable();
        let mut frame = Vec::with_capacity(CHUNK.min(data.len()) + 1);
        loop {
            let part = chunks.next().unwrap_or(&[]);
            frame.clear();
            frame.push(if chunks.peek().is_some() { MORE } else { LAST });
            frame.extend_from_slice(part);
            self.send_datagram(&frame)?;
            if chunks.peek().is_none() {
                return Ok(());
            }
        }
    }

    fn send_datagram(&self, frame: &[u8]) -> Result<(), SyncError> {
        loop {
            // SAFETY: writing a buffer we own to a socket fd we own.
            let r = unsafe {
                libc::send(
                    self.fd.as_fd().as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
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
        let mut data = Vec::new();
        loop {
            let frame = self.recv_datagram()?;
            let (&flag, part) = frame.split_first().ok_or(SyncError::Eof)?;
            data.extend_from_slice(part);
            match flag {
                LAST => return serde_json::from_slice(&data).map_err(SyncError::Decode),
                MORE => continue,
                other => return Err(SyncError::Frame(other)),
            }
        }
    }

    /// One datagram; EOF is an error.
    fn recv_datagram(&self) -> Result<Vec<u8>, SyncError> {
        // Sized to the datagram: the init runs under the container's memory limit, where a
        // large scratch buffer would be charged to it.
        let mut buf = vec![0u8; self.next_len()?];
        loop {
            // SAFETY: reading into a buffer we own, bounded by its length.
            let r =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if r > 0 {
                buf.truncate(r as usize);
                return Ok(buf);
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

    #[test]
    fn messages_larger_than_the_socket_buffer_get_through() {
        // 10 MB: far over wmem_default (one datagram that size is refused by the kernel).
        let (a, b) = pair().unwrap();
        let big = "x".repeat(10 << 20);
        let want = Msg::State(big.clone());
        let t = std::thread::spawn(move || {
            a.send(&Msg::State(big)).unwrap();
            a.send(&Msg::Ready).unwrap();
        });
        assert_eq!(b.recv().unwrap(), want);
        assert_eq!(b.recv().unwrap(), Msg::Ready);
        t.join().unwrap();
        // Exactly one chunk, and an empty message boundary case.
        let (a, b) = pair().unwrap();
        let s = "y".repeat(CHUNK - 11);
        a.send(&Msg::State(s.clone())).unwrap();
        assert_eq!(b.recv().unwrap(), Msg::State(s));
    }
}

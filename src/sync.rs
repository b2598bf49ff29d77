//! The channel between the runtime and the processes it forks for a container.
//!
//! A `SOCK_SEQPACKET` socketpair keeps message boundaries; EOF means the other side died,
//! which a runtime must notice rather than hang. A message is JSON sent as one or more
//! datagrams of at most `CHUNK` bytes, each led by one byte saying whether more follow: a
//! datagram larger than the socket's send buffer is refused by the kernel, and a message
//! carries the container state, whose annotations the caller sizes.
//!
//! Messages are sent only through the typed ends below, one call per step of the setup:
//! the runtime's `Intermediate` → `InitState` → `Init` → `Waiting` take the steps in the
//! one order both sides follow (id maps, cgroup, init pid, state, seccomp filter when the
//! runtime compiles it after the fork, hooks, ready, prepared, created)
//! and a message out of that order (`RunHooks` before `InitPid`, say) fails the create
//! instead of acting on a step not yet taken.

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
    #[error("bad seccomp program in sync message ({0} hex digits, not whole instructions)")]
    Program(usize),
    #[error("unexpected sync message {got:?} while waiting for {want}")]
    Unexpected { got: Msg, want: &'static str },
    /// The child's own error, reported instead of the step the runtime waited for.
    #[error("{0}")]
    Child(String),
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
    /// Runtime → init (or exec'd process): its seccomp filter, compiled while it set up;
    /// the `SECCOMP_FILTER_FLAG_*` and the instructions, 16 hex digits each.
    Seccomp { flags: u64, program: String },
    /// Init → runtime: mounts done; run prestart and createRuntime hooks now.
    RunHooks,
    /// Runtime → init: hooks done.
    HooksDone,
    /// Init → runtime: the identities of the paths its Landlock ruleset confines to.
    Landlock(Vec<crate::landlock::Identity>),
    /// Init → runtime: set up; now becoming the container process up to its execve.
    Ready,
    /// Init → runtime: the container process is set up up to its execve (user,
    /// capabilities, seccomp filter, Landlock); waiting for `Created` or `start`.
    Prepared,
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

fn raw_pair() -> Result<(Channel, Channel), SyncError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(SyncError::Pair)?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

/// A new channel: the runtime's end and the end its children inherit.
pub fn pair() -> Result<(RuntimeEnd, ChildEnd), SyncError> {
    let (a, b) = raw_pair()?;
    Ok((RuntimeEnd(a), ChildEnd(b)))
}

impl Channel {
    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    fn send(&self, msg: &Msg) -> Result<(), SyncError> {
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

    /// A message of one datagram sent with write(2) and taken with read(2): the calls the
    /// init makes to report `Prepared` and wait for `Created` under the container's seccomp
    /// filter, which a profile is surest to allow (sendto, recvfrom, poll are not).
    fn write_small(&self, msg: &Msg) -> Result<(), SyncError> {
        let mut frame = vec![LAST];
        serde_json::to_writer(&mut frame, msg).map_err(SyncError::Decode)?;
        loop {
            // SAFETY: writing a buffer we own to a socket fd we own. SIGPIPE is ignored in
            // the runtime and its children until the execve (main.rs): EPIPE is returned.
            let r = unsafe { libc::write(self.raw(), frame.as_ptr().cast(), frame.len()) };
            if r >= 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(SyncError::Send(e));
            }
        }
    }

    /// See [`Channel::write_small`]: one datagram of at most 255 bytes.
    fn read_small(&self) -> Result<Msg, SyncError> {
        let mut buf = [0u8; 256];
        loop {
            // SAFETY: reading into a buffer we own, bounded by its length.
            let r = unsafe { libc::read(self.raw(), buf.as_mut_ptr().cast(), buf.len()) };
            if r >= 0 {
                let n = usize::try_from(r).unwrap_or_default();
                return match buf[..n].split_first() {
                    None => Err(SyncError::Eof),
                    Some((&LAST, json)) if n < buf.len() => {
                        serde_json::from_slice(json).map_err(SyncError::Decode)
                    }
                    Some((&flag, _)) => Err(SyncError::Frame(flag)),
                };
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(SyncError::Recv(e));
            }
        }
    }

    fn recv(&self) -> Result<Msg, SyncError> {
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

    /// One datagram; EOF is an error. Usually one recv into a static buffer that fits the
    /// largest datagram (a chunk and its flag byte): it lives in .bss, so only the pages a
    /// datagram fills are ever touched (the init runs under the container's memory limit,
    /// where a large heap scratch buffer would be charged to it), and no MSG_PEEK
    /// round-trip is needed to learn the size first. While another thread of this process
    /// is receiving into it, the datagram is sized first and read into its own buffer.
    fn recv_datagram(&self) -> Result<Vec<u8>, SyncError> {
        static SCRATCH: std::sync::Mutex<[u8; CHUNK + 1]> = std::sync::Mutex::new([0; CHUNK + 1]);
        let mut guard = match SCRATCH.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                let mut buf = vec![0u8; self.next_len()?];
                let n = self.recv_into(&mut buf)?;
                buf.truncate(n);
                return Ok(buf);
            }
        };
        let n = self.recv_into(&mut guard[..])?;
        Ok(guard[..n].to_vec())
    }

    /// One recv into `buf`; the datagram's length, EMSGSIZE if it did not fit.
    fn recv_into(&self, buf: &mut [u8]) -> Result<usize, SyncError> {
        loop {
            // SAFETY: reading into a buffer we own, bounded by its length.
            let r = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            if r > 0 {
                let n = usize::try_from(r).unwrap_or(usize::MAX);
                if n > buf.len() {
                    return Err(SyncError::Recv(std::io::Error::from_raw_os_error(
                        libc::EMSGSIZE,
                    )));
                }
                return Ok(n);
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

    /// The channel's poll(2) events right now (0 when none or on error).
    fn poll_now(&self) -> libc::c_short {
        let mut fd = libc::pollfd {
            fd: self.raw(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        if unsafe { libc::poll(&mut fd, 1, 0) } == 1 {
            fd.revents
        } else {
            0
        }
    }

    /// Receive and insist on `want`; a child's `Error` becomes this side's error text.
    fn expect(&self, want: Msg, name: &'static str) -> Result<(), SyncError> {
        match self.recv()? {
            m if m == want => Ok(()),
            Msg::Error(e) => Err(SyncError::Child(e)),
            got => Err(SyncError::Unexpected { got, want: name }),
        }
    }

    /// Wait for the request `want`, do `step`, answer `reply`.
    fn serve<E: From<SyncError>>(
        &self,
        want: Msg,
        name: &'static str,
        reply: Msg,
        step: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        self.expect(want, name)?;
        step()?;
        self.send(&reply)?;
        Ok(())
    }
}

/// The runtime's end of the channel.
#[derive(Debug)]
pub struct RuntimeEnd(Channel);

impl RuntimeEnd {
    pub fn raw(&self) -> i32 {
        self.0.raw()
    }

    /// The steps of a container's setup, starting with its intermediate process.
    pub fn setup(&self) -> Intermediate<'_> {
        Intermediate(&self.0)
    }

    /// After a step failed: the error a child queued before it went, if any (it says more
    /// than the EPIPE of our send). Never waits: a send can fail while the children live
    /// on, each waiting for our next message.
    pub fn child_error(&self) -> Option<String> {
        if self.0.poll_now() & libc::POLLIN == 0 {
            return None;
        }
        match self.0.recv() {
            Ok(Msg::Error(e)) => Some(e),
            _ => None,
        }
    }

    /// Every process holding the other end has closed it (exited).
    pub fn children_gone(&self) -> bool {
        self.0.poll_now() & libc::POLLHUP != 0
    }

    /// `exec`: the host pid of the process the intermediate forked.
    pub fn exec_pid(&self) -> Result<i32, SyncError> {
        match self.0.recv()? {
            Msg::InitPid(p) => Ok(p),
            Msg::Error(e) => Err(SyncError::Child(e)),
            got => Err(SyncError::Unexpected {
                got,
                want: "exec pid",
            }),
        }
    }

    /// `exec`: the process's seccomp filter, which it takes before its last steps.
    pub fn exec_seccomp(&self, program: &crate::seccomp::Program) -> Result<(), SyncError> {
        self.0.send(&encode_program(program))
    }

    /// `exec`: Ok once the process has exec'd (its end closes on exec), or its error.
    pub fn exec_done(&self) -> Result<(), SyncError> {
        match self.0.recv() {
            Err(SyncError::Eof) => Ok(()),
            Ok(Msg::Error(e)) => Err(SyncError::Child(e)),
            Ok(got) => Err(SyncError::Unexpected { got, want: "exec" }),
            Err(e) => Err(e),
        }
    }
}

/// The runtime's side of the intermediate's steps: id maps, cgroup, then the init's pid.
pub struct Intermediate<'a>(&'a Channel);

impl<'a> Intermediate<'a> {
    /// The intermediate unshared a user namespace: `write` its id maps.
    pub fn id_maps<E: From<SyncError>>(
        &self,
        write: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        self.0
            .serve(Msg::MapIds, "id maps request", Msg::MapsDone, write)
    }

    /// The intermediate made its namespaces and waits for the cgroup, which exists with
    /// its limits set. It moves itself in.
    pub fn cgroup_ready(&self) -> Result<(), SyncError> {
        self.0
            .serve(Msg::WaitCgroup, "cgroup request", Msg::CgroupReady, || {
                Ok(())
            })
    }

    /// The intermediate made its namespaces and cannot move itself into the cgroup (a
    /// mapped root): `join` puts it in.
    pub fn cgroup_join<E: From<SyncError>>(
        &self,
        join: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        self.0
            .serve(Msg::JoinCgroup, "cgroup join request", Msg::Continue, join)
    }

    /// No intermediate: the runtime's child is the init, whose pid the runtime has.
    pub fn init_is_child(self) -> InitState<'a> {
        InitState(self.0)
    }

    /// The host pid of the container init; the intermediate is done.
    pub fn init_pid(self) -> Result<(i32, InitState<'a>), SyncError> {
        match self.0.recv()? {
            Msg::InitPid(p) => Ok((p, InitState(self.0))),
            Msg::Error(e) => Err(SyncError::Child(e)),
            got => Err(SyncError::Unexpected {
                got,
                want: "init pid",
            }),
        }
    }
}

/// The init exists and waits for the container state.
pub struct InitState<'a>(&'a Channel);

impl<'a> InitState<'a> {
    /// The container state with the init's host pid, for hooks and the seccomp agent.
    pub fn send(self, state_json: String) -> Result<Init<'a>, SyncError> {
        self.0.send(&Msg::State(state_json))?;
        Ok(Init(self.0))
    }
}

/// The init builds the container.
pub struct Init<'a>(&'a Channel);

impl Init<'_> {
    /// The init's seccomp filter, which it takes once its mounts are made (before its
    /// hooks request).
    pub fn seccomp(&self, program: &crate::seccomp::Program) -> Result<(), SyncError> {
        self.0.send(&encode_program(program))
    }

    /// The init's mounts are done: `run` the prestart and createRuntime hooks.
    pub fn hooks<E: From<SyncError>>(&self, run: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        self.0
            .serve(Msg::RunHooks, "hooks request", Msg::HooksDone, run)
    }

    /// The init is set up, waiting for `created` or `start`; with the identities of the
    /// paths its Landlock ruleset names, when it has one.
    pub fn ready(self) -> Result<Option<Vec<crate::landlock::Identity>>, SyncError> {
        match self.0.recv()? {
            Msg::Landlock(ids) => {
                self.0.expect(Msg::Ready, "init ready")?;
                Ok(Some(ids))
            }
            Msg::Ready => Ok(None),
            Msg::Error(e) => Err(SyncError::Child(e)),
            got => Err(SyncError::Unexpected {
                got,
                want: "init ready",
            }),
        }
    }
}

impl RuntimeEnd {
    /// Wait until a ready init has become the container process up to its execve; its
    /// error if that failed.
    pub fn prepared(&self) -> Result<(), SyncError> {
        match self.0.recv()? {
            Msg::Prepared => Ok(()),
            Msg::Error(e) => Err(SyncError::Child(e)),
            got => Err(SyncError::Unexpected {
                got,
                want: "init prepared",
            }),
        }
    }

    /// Tell a ready init its create completed: from now on only `start` or a kill ends
    /// its wait.
    pub fn created(&self) -> Result<(), SyncError> {
        self.0.write_small(&Msg::Created)
    }
}

/// The end the runtime's children (intermediate, init, exec'd process) hold. Each call is
/// one step: a request with the answer it waits for, or a report.
#[derive(Debug)]
pub struct ChildEnd(Channel);

impl ChildEnd {
    pub fn raw(&self) -> i32 {
        self.0.raw()
    }

    /// Ask the runtime to write our id maps; returns once it has.
    pub fn id_maps(&self) -> Result<(), SyncError> {
        self.0.send(&Msg::MapIds)?;
        self.0.expect(Msg::MapsDone, "id maps")
    }

    /// Wait until the container cgroup exists (we then move ourselves in).
    pub fn cgroup_ready(&self) -> Result<(), SyncError> {
        self.0.send(&Msg::WaitCgroup)?;
        self.0.expect(Msg::CgroupReady, "cgroup ready")
    }

    /// Ask the runtime to put us in the container cgroup; returns once it has.
    pub fn cgroup_join(&self) -> Result<(), SyncError> {
        self.0.send(&Msg::JoinCgroup)?;
        self.0.expect(Msg::Continue, "cgroup joined")
    }

    /// Report the host pid of the init (or exec'd process) we forked.
    pub fn init_pid(&self, pid: i32) -> Result<(), SyncError> {
        self.0.send(&Msg::InitPid(pid))
    }

    /// The container state, the init's first message.
    pub fn state(&self) -> Result<String, SyncError> {
        match self.0.recv()? {
            Msg::State(s) => Ok(s),
            got => Err(SyncError::Unexpected {
                got,
                want: "container state",
            }),
        }
    }

    /// The seccomp filter the runtime compiled for us (a filter it deferred).
    pub fn seccomp(&self) -> Result<crate::seccomp::Program, SyncError> {
        match self.0.recv()? {
            Msg::Seccomp { flags, program } => decode_program(flags, &program),
            got => Err(SyncError::Unexpected {
                got,
                want: "seccomp filter",
            }),
        }
    }

    /// Ask the runtime to run its prestart and createRuntime hooks; returns once it has.
    pub fn hooks(&self) -> Result<(), SyncError> {
        self.0.send(&Msg::RunHooks)?;
        self.0.expect(Msg::HooksDone, "hooks done")
    }

    /// Set up, about to become the container process. `landlock`: the identities of the paths
    /// the init's ruleset names, which `exec` checks before it confines its process alike.
    pub fn ready(&self, landlock: Option<Vec<crate::landlock::Identity>>) -> Result<(), SyncError> {
        if let Some(ids) = landlock {
            self.0.send(&Msg::Landlock(ids))?;
        }
        self.0.send(&Msg::Ready)
    }

    /// Became the container process up to its execve; waiting for `Created` or `start`.
    /// Past the container's seccomp filter: write(2) only.
    pub fn prepared(&self) -> Result<(), SyncError> {
        self.0.write_small(&Msg::Prepared)
    }

    /// After `prepared`: true when the runtime says its create completed, false when it
    /// went away (EOF) or said anything else. Past the filter: read(2) only.
    pub fn created(&self) -> bool {
        matches!(self.0.read_small(), Ok(Msg::Created))
    }

    /// Report a setup failure.
    pub fn error(&self, e: &str) -> Result<(), SyncError> {
        // One datagram by write(2) when it fits one: an init may fail under its seccomp
        // filter (past `enter_process`'s install). Larger (a message quoting a huge
        // config value, from before the filter), in chunks.
        let msg = Msg::Error(e.to_string());
        if e.len() < CHUNK / 2 {
            self.0.write_small(&msg)
        } else {
            self.0.send(&msg)
        }
    }
}

fn encode_program(p: &crate::seccomp::Program) -> Msg {
    use std::fmt::Write;
    let mut program = String::with_capacity(p.instructions.len() * 16);
    for i in &p.instructions {
        let word = u64::from(i.code) << 48
            | u64::from(i.jt) << 40
            | u64::from(i.jf) << 32
            | u64::from(i.k);
        let _ = write!(program, "{word:016x}");
    }
    Msg::Seccomp {
        flags: p.flags,
        program,
    }
}

/// A received filter: only what `seccomp::install` uses (a deferred filter has no notify
/// rule; its notes were logged by the runtime).
fn decode_program(flags: u64, hex: &str) -> Result<crate::seccomp::Program, SyncError> {
    let bad = || SyncError::Program(hex.len());
    if hex.len() % 16 != 0 {
        return Err(bad());
    }
    let instructions = hex
        .as_bytes()
        .chunks(16)
        .map(|c| {
            let word = std::str::from_utf8(c)
                .ok()
                .and_then(|t| u64::from_str_radix(t, 16).ok())
                .ok_or_else(bad)?;
            let [c0, c1, jt, jf, k0, k1, k2, k3] = word.to_be_bytes();
            Ok(libc::sock_filter {
                code: u16::from_be_bytes([c0, c1]),
                jt,
                jf,
                k: u32::from_be_bytes([k0, k1, k2, k3]),
            })
        })
        .collect::<Result<Vec<_>, SyncError>>()?;
    Ok(crate::seccomp::Program {
        instructions,
        flags,
        uses_notify: false,
        warnings: Vec::new(),
        debug: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_eof_is_seen() {
        let (a, b) = raw_pair().unwrap();
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
        let (a, b) = raw_pair().unwrap();
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
        let (a, b) = raw_pair().unwrap();
        let s = "y".repeat(CHUNK - 11);
        a.send(&Msg::State(s.clone())).unwrap();
        assert_eq!(b.recv().unwrap(), Msg::State(s));
    }

    #[test]
    fn setup_steps_go_through_in_order() {
        let (rt, child) = pair().unwrap();
        let t = std::thread::spawn(move || {
            child.id_maps().unwrap();
            child.cgroup_ready().unwrap();
            child.init_pid(7).unwrap();
            assert_eq!(child.state().unwrap(), "{}");
            child.hooks().unwrap();
            child.ready(None).unwrap();
            child.prepared().unwrap();
            assert!(child.created());
        });
        let steps = rt.setup();
        let mut done = Vec::new();
        steps
            .id_maps(|| {
                done.push("maps");
                Ok::<_, SyncError>(())
            })
            .unwrap();
        steps.cgroup_ready().unwrap();
        let (pid, state) = steps.init_pid().unwrap();
        assert_eq!(pid, 7);
        let init = state.send("{}".into()).unwrap();
        init.hooks(|| {
            done.push("hooks");
            Ok::<_, SyncError>(())
        })
        .unwrap();
        assert_eq!(init.ready().unwrap(), None);
        rt.prepared().unwrap();
        rt.created().unwrap();
        t.join().unwrap();
        assert_eq!(done, ["maps", "hooks"]);
    }

    #[test]
    fn an_init_failing_after_ready_fails_the_wait_for_prepared() {
        let (rt, child) = pair().unwrap();
        child.error("setresuid(1000): EPERM").unwrap();
        match rt.prepared() {
            Err(e @ SyncError::Child(_)) => assert_eq!(e.to_string(), "setresuid(1000): EPERM"),
            other => panic!("{other:?}"),
        }
        // An init gone without a word: EOF, not a hang.
        let (rt, child) = pair().unwrap();
        drop(child);
        assert!(matches!(rt.prepared(), Err(SyncError::Eof)));
        // Anything else where the runtime waits for it is refused.
        let (rt, child) = pair().unwrap();
        child.ready(None).unwrap();
        assert!(matches!(
            rt.prepared(),
            Err(SyncError::Unexpected {
                got: Msg::Ready,
                ..
            })
        ));
    }

    #[test]
    fn a_seccomp_program_arrives_whole_where_the_child_takes_it() {
        let insn = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
        // Every field at its extremes, and a program past one datagram (4096 instructions).
        let mut instructions = vec![insn(0xffff, 0xff, 0, 0xffff_ffff), insn(0x06, 0, 0xff, 0)];
        instructions.extend((0..4094u32).map(|i| insn(0x15, 1, 2, i.wrapping_mul(0x9e37_79b9))));
        let program = crate::seccomp::Program {
            instructions,
            flags: libc::SECCOMP_FILTER_FLAG_LOG,
            uses_notify: false,
            warnings: vec!["not sent".into()],
            debug: Vec::new(),
        };
        let (rt, child) = pair().unwrap();
        let sent = program.clone();
        let t = std::thread::spawn(move || {
            let (_, state) = rt.setup().init_pid().unwrap();
            state.send(String::new()).unwrap().seccomp(&sent).unwrap();
        });
        child.init_pid(3).unwrap();
        assert_eq!(child.state().unwrap(), "");
        let got = child.seccomp().unwrap();
        t.join().unwrap();
        let words = |p: &crate::seccomp::Program| -> Vec<(u16, u8, u8, u32)> {
            p.instructions
                .iter()
                .map(|i| (i.code, i.jt, i.jf, i.k))
                .collect()
        };
        assert_eq!(words(&got), words(&program));
        assert_eq!(got.flags, program.flags);
        assert!(!got.uses_notify && got.warnings.is_empty());
        // Where the child waits for its filter, another message is an error, not a filter.
        let (rt, child) = pair().unwrap();
        rt.created().unwrap();
        assert!(matches!(
            child.seccomp(),
            Err(SyncError::Unexpected {
                got: Msg::Created,
                ..
            })
        ));
        assert!(matches!(
            decode_program(0, "0123"),
            Err(SyncError::Program(4))
        ));
        assert!(decode_program(0, "zzzzzzzzzzzzzzzz").is_err());
    }

    #[test]
    fn a_step_out_of_order_fails_instead_of_running() {
        // Hooks asked for before the init's pid is known: they would run with no pid.
        let (rt, child) = pair().unwrap();
        child.0.send(&Msg::RunHooks).unwrap();
        match rt.setup().init_pid() {
            Err(SyncError::Unexpected { got, .. }) => assert_eq!(got, Msg::RunHooks),
            other => panic!("RunHooks before InitPid: {:?}", other.map(|(p, _)| p)),
        }
        // A request for id maps where the runtime waits for the hooks request.
        let (rt, child) = pair().unwrap();
        child.init_pid(9).unwrap();
        child.0.send(&Msg::MapIds).unwrap();
        let (_, state) = rt.setup().init_pid().unwrap();
        let init = state.send(String::new()).unwrap();
        let mut ran = false;
        let r = init.hooks(|| {
            ran = true;
            Ok::<_, SyncError>(())
        });
        assert!(matches!(
            r,
            Err(SyncError::Unexpected {
                got: Msg::MapIds,
                ..
            })
        ));
        assert!(!ran, "hooks ran on an out-of-order request");
    }

    #[test]
    fn a_child_error_ends_the_step_the_runtime_waits_for() {
        let (rt, child) = pair().unwrap();
        child.error("mount proc: EPERM").unwrap();
        match rt.setup().init_pid() {
            Err(SyncError::Child(e)) => assert_eq!(e, "mount proc: EPERM"),
            other => panic!("got {:?}", other.map(|(p, _)| p)),
        }
        drop(child);
        assert_eq!(rt.child_error(), None);
        assert!(rt.children_gone());
        // A child alive and silent: nothing to report, and no wait for it.
        let (rt, child) = pair().unwrap();
        assert_eq!(rt.child_error(), None);
        assert!(!rt.children_gone());
        drop(child);
        // exec: EOF after the pid means the process exec'd.
        let (rt, child) = pair().unwrap();
        child.init_pid(5).unwrap();
        drop(child);
        assert_eq!(rt.exec_pid().unwrap(), 5);
        rt.exec_done().unwrap();
    }
}

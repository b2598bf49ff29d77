//! `run` in the foreground with `process.terminal` and no `--console-socket`: like runc,
//! nucleus receives the pty master itself and connects it to its own stdio, in raw mode
//! when stdin is a terminal, resizing the pty as the terminal is resized.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    recvmsg, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::{io_err, ContainerError};

/// A socketpair standing in for a console socket: the init sends the master on one end.
pub fn socket_pair() -> Result<(OwnedFd, OwnedFd), ContainerError> {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| io_err("console socketpair")(e.into()))
}

/// Receive the pty master the init sent over our end of the pair.
pub fn recv_master(sock: &OwnedFd) -> Result<OwnedFd, ContainerError> {
    let mut buf = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| io_err("receive pty master")(e.into()))?;
    for c in msg
        .cmsgs()
        .map_err(|e| io_err("receive pty master")(e.into()))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this fd in our table for us alone.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(ContainerError::Other(
        "container init sent no pty master".into(),
    ))
}

/// Puts stdin in raw mode while alive, if stdin is a terminal.
struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    let mut ws = std::mem::MaybeUninit::<libc::winsize>::zeroed();
    // SAFETY: TIOCGWINSZ fills the winsize we own; TIOCSWINSZ reads it.
    unsafe {
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, ws.as_mut_ptr()) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, ws.as_ptr());
        }
    }
}

/// Copy at most one buffer from `from` to `to`; false on EOF or error.
fn pump(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut off = 0;
            while off < n {
                match nix::unistd::write(to, &buf[off..n]) {
                    Ok(w) => off += w,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return false,
                }
            }
            true
        }
    }
}

/// Proxy stdio and the pty until the init exits; forward other signals to it. Returns its
/// exit code (128+signal if killed).
pub fn proxy_and_wait(master: OwnedFd, init: i32, set: &SigSet) -> Result<i32, ContainerError> {
    let sfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC)
        .map_err(|e| io_err("signalfd")(e.into()))?;
    let _raw = RawMode::enter();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    copy_winsize(stdin.as_fd(), master.as_fd());
    let target = Pid::from_raw(init);
    let mut stdin_open = true;
    loop {
        let mut fds = vec![
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io_err("poll")(e.into())),
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (sig_ready, master_ready, stdin_ready) = (ready(0), ready(1), ready(2));
        if master_ready && !pump(master.as_fd(), stdout.as_fd()) {
            // The slave side is closed once every process holding it is gone; keep
            // waiting for the exit status through the signalfd.
        }
        if stdin_ready && !pump(stdin.as_fd(), master.as_fd()) {
            stdin_open = false;
        }
        if sig_ready {
            let Ok(Some(info)) = sfd.read_signal() else {
                continue;
            };
            let sig = Signal::try_from(info.ssi_signo as i32).ok();
            match sig {
                Some(Signal::SIGWINCH) => copy_winsize(stdin.as_fd(), master.as_fd()),
                Some(Signal::SIGCHLD) => loop {
                    match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                        Ok(WaitStatus::Exited(p, code)) if p == target => {
                            // Drain what is left without blocking on a slave some
                            // surviving process may still hold.
                            let _ = nix::fcntl::fcntl(
                                master.as_fd(),
                                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                            );
                            while pump(master.as_fd(), stdout.as_fd()) {}
                            return Ok(code);
                        }
                        Ok(WaitStatus::Signaled(p, s, _)) if p == target => {
                            return Ok(128 + s as i32)
                        }
                        Ok(WaitStatus::StillAlive) | Err(_) => break,
                        Ok(_) => {}
                    }
                },
                Some(s) => {
                    let _ = nix::sys::signal::kill(target, s);
                }
                None => {}
            }
        }
    }
}

//! `process.terminal`: a pty made inside the container whose master goes to the caller
//! over `--console-socket` (SCM_RIGHTS), the slave becoming the process's stdio.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("connect to console socket {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot allocate tty if runc will detach without setting console socket")]
    NoSocket,
    #[error("console socket given but process.terminal is false")]
    NotTerminal,
    #[error("set up pty: {call}: {source}")]
    Pty {
        call: &'static str,
        source: std::io::Error,
    },
    #[error("{0}")]
    Console(String),
    #[error("send pty master over console socket: {0}")]
    Send(nix::Error),
}

/// The console socket a process gets: the caller's `--console-socket` when it asks for a
/// terminal, or `own` (foreground `run`'s own pair); runc's errors for the mismatches.
pub fn for_process(
    terminal: bool,
    socket: Option<&Path>,
    own: Option<OwnedFd>,
) -> Result<Option<OwnedFd>, ConsoleError> {
    match (terminal, socket, own) {
        (true, Some(p), _) => connect(p).map(Some),
        (true, None, Some(fd)) => Ok(Some(fd)),
        (true, None, None) => Err(ConsoleError::NoSocket),
        (false, Some(_), _) => Err(ConsoleError::NotTerminal),
        (false, None, _) => Ok(None),
    }
}

/// `process.consoleSize` as a winsize's rows and columns (saturated: a terminal is
/// never 65536 cells wide).
pub fn size(b: oci_spec::runtime::Box) -> (u16, u16) {
    let cells = |n: u64| u16::try_from(n).unwrap_or(u16::MAX);
    (cells(b.height()), cells(b.width()))
}

/// Connect to the caller's console socket while its path is still reachable (before the
/// container's pivot_root).
pub fn connect(path: &Path) -> Result<OwnedFd, ConsoleError> {
    let s = UnixStream::connect(path).map_err(|source| ConsoleError::Connect {
        path: path.display().to_string(),
        source,
    })?;
    Ok(OwnedFd::from(s))
}

fn last_err(call: &'static str) -> ConsoleError {
    ConsoleError::Pty {
        call,
        source: std::io::Error::last_os_error(),
    }
}

/// The container init's terminal: a pty (see [`setup_pty`]) that is also bound onto the
/// container's /dev/console.
pub fn setup(socket: OwnedFd, size: Option<(u16, u16)>) -> Result<(), ConsoleError> {
    setup_pty(socket, size, true)
}

/// An `exec`'d process's terminal: a pty of its own. The container's /dev/console stays
/// the init's: only the init's terminal is the console.
pub fn setup_exec(socket: OwnedFd, size: Option<(u16, u16)>) -> Result<(), ConsoleError> {
    setup_pty(socket, size, false)
}

/// Make a pty from the container's devpts, send the master over `socket`, and make the
/// slave this process's controlling terminal and stdio; with `console`, bind the slave
/// onto /dev/console too. Returns nothing to keep: after this the process holds only the
/// slave on 0, 1 and 2.
fn setup_pty(socket: OwnedFd, size: Option<(u16, u16)>, console: bool) -> Result<(), ConsoleError> {
    let master = std::fs::File::from(
        crate::rootfs::open_ptmx().map_err(|e| ConsoleError::Console(e.to_string()))?,
    );
    let mfd = master.as_raw_fd();
    // SAFETY: unlockpt/ioctl on the master fd we just opened.
    if unsafe { libc::unlockpt(mfd) } != 0 {
        return Err(last_err("unlockpt"));
    }
    // TIOCGPTPEER opens the slave through the master, so no path lookup can be raced.
    // SAFETY: ioctl returning a new fd; flags are plain open flags.
    let sfd: RawFd = unsafe {
        libc::ioctl(
            mfd,
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if sfd < 0 {
        return Err(last_err("TIOCGPTPEER"));
    }
    // SAFETY: sfd is a fresh fd owned by nobody else.
    let slave = unsafe { OwnedFd::from_raw_fd(sfd) };
    if let Some((h, w)) = size {
        let ws = libc::winsize {
            ws_row: h,
            ws_col: w,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads the winsize struct we pass.
        if unsafe { libc::ioctl(mfd, libc::TIOCSWINSZ, &ws) } != 0 {
            return Err(last_err("TIOCSWINSZ"));
        }
    }
    if console {
        crate::rootfs::mount_console(slave.as_fd())
            .map_err(|e| ConsoleError::Console(e.to_string()))?;
    }
    let fds = [mfd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let name = b"/dev/ptmx";
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(name)],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .map_err(ConsoleError::Send)?;
    drop(master);
    drop(socket);
    for target in 0..3 {
        // SAFETY: dup2 onto stdio; sfd stays valid until `slave` drops.
        if unsafe { libc::dup2(sfd, target) } < 0 {
            return Err(last_err("dup2"));
        }
    }
    // SAFETY: make the slave (now fd 0) the controlling terminal of our session.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
        return Err(last_err("TIOCSCTTY"));
    }
    drop(slave);
    Ok(())
}

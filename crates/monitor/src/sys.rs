//! The monitor's raw syscalls, each behind a safe function.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Bytes waiting to be read in a pipe or FIFO (`FIONREAD`); 0 on error.
pub fn unread_bytes(fd: BorrowedFd<'_>) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points to
    // `n`, alive across the call; `fd` is open for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n as *mut libc::c_int) };
    if rc < 0 {
        0
    } else {
        n.max(0) as usize
    }
}

/// TIOCSWINSZ on a pty master.
pub fn set_winsize(fd: BorrowedFd<'_>, width: u32, height: u32) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: height as u16,
        ws_col: width as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `fd` is open for the duration of the call and `ws` is a fully
    // initialised winsize that the kernel only reads.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    nix::errno::Errno::result(rc).map(drop)
}

/// Takes ownership of the inherited control socket on [`CONTROL_FD`].
///
/// Called once, first thing in the monitor: the daemon puts the socket there
/// (and nothing else in this process owns fd 3).
pub fn take_control_fd() -> OwnedFd {
    // SAFETY: fd 3 is the control socket the daemon passed us and no other
    // object in this process refers to it; if it is not open, the first send
    // fails and the monitor exits.
    unsafe { OwnedFd::from_raw_fd(zygote_contract::proto::CONTROL_FD) }
}

/// `accept4(2)` with close-on-exec.
pub fn accept(listener: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    let fd = nix::sys::socket::accept4(listener.as_raw_fd(), nix::sys::socket::SockFlag::SOCK_CLOEXEC)?;
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Wraps a descriptor the kernel just installed (SCM_RIGHTS, open).
///
/// # Safety
/// `fd` must be open and owned by nobody else.
pub unsafe fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: guaranteed by the caller.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

//! The monitor's raw syscalls, each behind a safe function.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// `pidfd_open(2)`: a descriptor that polls readable when `pid` exits.
pub fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags by value and returns a new
    // descriptor or -1; no memory is shared with the kernel.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    nix::errno::Errno::result(fd)?;
    // SAFETY: the kernel just returned this descriptor to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(2)`: signals exactly the process `pidfd` refers to,
/// even if its pid has been reused since.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> nix::Result<()> {
    // SAFETY: the descriptor is open for the call; siginfo is NULL and flags
    // are 0, so the kernel reads no memory of ours.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    nix::errno::Errno::result(rc).map(drop)
}

/// `poll(2)` over `fds` with a timeout in milliseconds; returns how many
/// entries have events (0 on timeout or EINTR).
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> usize {
    // SAFETY: `fds` is a valid, initialised, exclusively borrowed array of
    // pollfd for its whole length; the kernel writes only `revents`. The
    // caller keeps every descriptor in it open for the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    n.max(0) as usize
}

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

/// The descriptor the daemon hands the control socket on.
pub const CONTROL_FD: RawFd = 3;

/// Takes ownership of the inherited control socket on [`CONTROL_FD`].
///
/// Called once, first thing in the monitor: the daemon puts the socket there
/// (and nothing else in this process owns fd 3).
pub fn take_control_fd() -> OwnedFd {
    // SAFETY: fd 3 is the control socket the daemon passed us and no other
    // object in this process refers to it; if it is not open, the first send
    // fails and the monitor exits.
    unsafe { OwnedFd::from_raw_fd(CONTROL_FD) }
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

/// A `pre_exec` hook body: `dup2(src, dst)` for each pair. Only dup2 is
/// called, which is async-signal-safe, so it may run between fork and exec
/// even in a multi-threaded parent.
pub fn dup2_all(pairs: &[(RawFd, RawFd)]) -> std::io::Result<()> {
    for &(src, dst) in pairs {
        // SAFETY: dup2 only manipulates the descriptor table; both values are
        // plain integers and a bad one is reported as an error.
        if unsafe { libc::dup2(src, dst) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

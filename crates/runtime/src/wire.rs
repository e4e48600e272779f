//! The one codec of every zygote channel: a message per datagram over an
//! `AF_UNIX`/`SOCK_SEQPACKET` socket, JSON encoded, descriptors attached as
//! `SCM_RIGHTS`.
//!
//! SEQPACKET keeps message boundaries (no framing) and never interleaves
//! two writers' messages; JSON keeps the messages readable in a debugger
//! and versionable with serde. Used by the daemon ↔ monitor control socket
//! (`zygote-contract`'s `proto`) and the monitor ↔ container-init sync
//! channel ([`crate::init::sync`]): each channel has its own message enum,
//! and both share this size limit, this descriptor limit and [`WireError`].

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{de::DeserializeOwned, Serialize};

/// Largest message (an exec's process spec with a large environment fits).
pub const MAX_MESSAGE: usize = 256 * 1024;
/// Most descriptors one message carries.
pub const MAX_FDS: usize = 64;

/// A message could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The peer is gone (end of stream, or it reset the connection).
    #[error("channel closed")]
    Closed,
    #[error("channel i/o")]
    Io(#[source] Errno),
    #[error("malformed message")]
    Json(#[source] serde_json::Error),
    #[error("message of {0} bytes is larger than the {MAX_MESSAGE}-byte limit")]
    TooLarge(usize),
    #[error("a message was truncated in transit")]
    Truncated,
}

impl WireError {
    /// Nothing to read now on a non-blocking socket.
    pub fn would_block(&self) -> bool {
        matches!(self, WireError::Io(Errno::EAGAIN))
    }
}

/// A connected pair, both ends close-on-exec.
pub fn pair() -> Result<(OwnedFd, OwnedFd), WireError> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).map_err(WireError::Io)
}

/// Sends one message with `fds` attached.
pub fn send<T: Serialize>(fd: BorrowedFd<'_>, msg: &T, fds: &[RawFd]) -> Result<(), WireError> {
    let body = serde_json::to_vec(msg).map_err(WireError::Json)?;
    if body.len() > MAX_MESSAGE {
        return Err(WireError::TooLarge(body.len()));
    }
    let iov = [IoSlice::new(&body)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    loop {
        match socket::sendmsg::<()>(fd.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(Errno::EPIPE | Errno::ECONNRESET) => return Err(WireError::Closed),
            Err(e) => return Err(WireError::Io(e)),
        }
    }
}

/// Receives one message and the descriptors attached to it; `Ok(None)` at
/// end of stream. On a non-blocking socket with nothing to read, the error
/// says [`WireError::would_block`].
///
/// A peer that exits with our message unread in its queue makes the kernel
/// report `ECONNRESET` once, ahead of what the peer sent before exiting
/// (typically its last word): that report is taken and reading goes on.
pub fn recv<T: DeserializeOwned>(fd: BorrowedFd<'_>) -> Result<Option<(T, Vec<OwnedFd>)>, WireError> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut cmsg_space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut reset_seen = false;
    let (len, fds) = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match socket::recvmsg::<()>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for c in msg.cmsgs().map_err(WireError::Io)? {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        for r in raw {
                            // SAFETY: the kernel just installed `r` in our
                            // descriptor table for this message; nobody else
                            // owns it.
                            fds.push(unsafe { OwnedFd::from_raw_fd(r) });
                        }
                    }
                }
                if msg.flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC) {
                    return Err(WireError::Truncated);
                }
                break (msg.bytes, fds);
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::ECONNRESET) if !reset_seen => reset_seen = true,
            Err(Errno::ECONNRESET) => return Err(WireError::Closed),
            Err(e) => return Err(WireError::Io(e)),
        }
    };
    if len == 0 {
        return Ok(None);
    }
    Ok(Some((
        serde_json::from_slice(&buf[..len]).map_err(WireError::Json)?,
        fds,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn messages_and_descriptors_round_trip() {
        let (a, b) = pair().unwrap();
        let (x, _y) = pair().unwrap();
        send(a.as_fd(), &("kill", 15), &[x.as_raw_fd()]).unwrap();
        let (got, fds): ((String, i32), _) = recv(b.as_fd()).unwrap().unwrap();
        assert_eq!(got, ("kill".to_string(), 15));
        assert_eq!(fds.len(), 1);
        drop(a);
        assert!(recv::<(String, i32)>(b.as_fd()).unwrap().is_none());
    }

    #[test]
    fn oversized_and_malformed_messages_are_refused() {
        let (a, b) = pair().unwrap();
        let big = "x".repeat(MAX_MESSAGE + 1);
        assert!(matches!(send(a.as_fd(), &big, &[]), Err(WireError::TooLarge(_))));
        send(a.as_fd(), &"text", &[]).unwrap();
        assert!(matches!(recv::<u32>(b.as_fd()), Err(WireError::Json(_))));
    }
}

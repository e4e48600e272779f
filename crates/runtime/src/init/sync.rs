//! The synchronisation channel between the parent (the monitor) and the
//! process that becomes the container process.
//!
//! It is a `SOCK_SEQPACKET | SOCK_CLOEXEC` socketpair: every message is one
//! datagram (no framing, no interleaving even when an intermediate process
//! and the container process both hold the child end), and because the child
//! end is close-on-exec, EOF on the parent end after "go" means `execve`
//! succeeded. Messages are small JSON-encoded [`Message`]s; a pty master is
//! passed as `SCM_RIGHTS` ancillary data.
//!
//! Protocol (child → parent unless noted):
//! 1. `ChildPid(pid)` — only from an intermediate process (the parent knows
//!    the pid directly otherwise);
//! 2. parent → child `Continue` once id maps are written; the child starts
//!    its setup while the parent moves it into its cgroup;
//! 3. parent → child `Placed` once cgroup and oom_score_adj are set: the
//!    child waits for it (`ensure_placed`) before anything that depends on
//!    its cgroup (cgroup namespace, cgroup mount) and before `Ready`;
//! 4. any number of `Warning(text)` (the parent logs them);
//! 5. `PtyMaster` with the master fd attached, for `Stdio::Terminal`;
//! 6. `Ready`, then parent → child `Go`, then EOF (exec'd) or `Error(text)`.
//!
//! `Error(text)` may replace any child message; the child then `_exit(1)`s.
//!
//! A warm zygote ([`crate::zygote`]) receives its task first: parent →
//! child `Fd` ×0–3 (stdio attached) then `Task(json)`; `Placed` follows once
//! its cgroup is final, and the protocol continues from step 4. The child
//! also reports `SecurityTime` (Landlock + seccomp installation time).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;

/// Largest message we accept (error texts are short; this is generous).
const MAX_MESSAGE: usize = 64 * 1024;

/// One message of the sync protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Intermediate → parent: host pid of the process that will exec.
    ChildPid(i32),
    /// Parent → child: setup on the parent side is done, carry on.
    Continue,
    /// Parent → child: the child is in its cgroup (and its oom_score_adj is set).
    Placed,
    /// Child → parent: something was clamped or ignored; log it.
    Warning(String),
    /// Child → parent: the pty master is attached as `SCM_RIGHTS`.
    PtyMaster,
    /// Child → parent: everything is set up, waiting at the exec barrier.
    Ready,
    /// Parent → child: release the barrier and exec.
    Go,
    /// Child → parent: setup failed; the text says what and why.
    Error(String),
    /// Parent → warm zygote: one standard I/O descriptor is attached (sent
    /// before [`Message::Task`], in fd order 0, 1, 2).
    Fd,
    /// Parent → warm zygote: the task to serve, as JSON
    /// ([`crate::zygote::ZygoteTask`]).
    Task(String),
    /// Child → parent: microseconds spent installing Landlock and seccomp
    /// (sent before `Ready`, and again after `Go` for a late filter).
    SecurityTime(u64),
}

/// One end of the sync socketpair.
#[derive(Debug)]
pub struct SyncChannel {
    fd: OwnedFd,
    /// Child side: the parent's `Placed` has been received.
    placed: std::cell::Cell<bool>,
}

impl SyncChannel {
    /// Create a connected pair `(parent_end, child_end)`, both close-on-exec.
    pub fn pair() -> Result<(SyncChannel, SyncChannel), RuntimeError> {
        let (a, b) = socket::socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .map_err(|errno| RuntimeError::Sys {
                context: "create sync socketpair".into(),
                errno,
            })?;
        Ok((
            SyncChannel {
                fd: a,
                placed: Default::default(),
            },
            SyncChannel {
                fd: b,
                placed: Default::default(),
            },
        ))
    }

    /// Wrap an already connected `SOCK_SEQPACKET` socket (e.g. a zygote's
    /// control channel).
    pub fn from_fd(fd: OwnedFd) -> SyncChannel {
        SyncChannel {
            fd,
            placed: Default::default(),
        }
    }

    /// The raw descriptor (kept open across the child's setup).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Shut the socket down both ways: the peer reads EOF, as it does when
    /// an `execve` closes the close-on-exec descriptor (a guest task, which
    /// does not exec, says "running" this way).
    pub fn hang_up(&self) {
        let _ = socket::shutdown(self.fd.as_raw_fd(), socket::Shutdown::Both);
    }

    /// Send `msg`, optionally passing `fd` along with it.
    pub fn send_with_fd(&self, msg: &Message, fd: Option<BorrowedFd<'_>>) -> Result<(), RuntimeError> {
        let bytes = serde_json::to_vec(msg).map_err(|e| RuntimeError::Sync(format!("encode {msg:?}: {e}")))?;
        let iov = [IoSlice::new(&bytes)];
        let fds = fd.map(|f| [f.as_raw_fd()]);
        let cmsgs: Vec<ControlMessage<'_>> = match &fds {
            Some(f) => vec![ControlMessage::ScmRights(f)],
            None => Vec::new(),
        };
        loop {
            match socket::sendmsg::<()>(self.fd.as_raw_fd(), &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => continue,
                Err(errno) => {
                    return Err(RuntimeError::Sys {
                        context: format!("send {} on sync socket", msg.name()),
                        errno,
                    })
                }
            }
        }
    }

    /// Send `msg` without ancillary data.
    pub fn send(&self, msg: &Message) -> Result<(), RuntimeError> {
        self.send_with_fd(msg, None)
    }

    /// Best-effort warning from the child; failures are ignored because a
    /// warning must never abort the setup.
    pub fn warn(&self, text: impl Into<String>) {
        let _ = self.send(&Message::Warning(text.into()));
    }

    /// Receive one message and the descriptor passed with it, if any.
    /// Returns `Ok(None)` on EOF (every copy of the peer end is closed).
    pub fn recv(&self) -> Result<Option<(Message, Option<OwnedFd>)>, RuntimeError> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut cmsg = nix::cmsg_space!([RawFd; 4]);
        // A peer that exits with our message unread in its queue makes the
        // kernel report ECONNRESET once, ahead of what the peer sent before
        // exiting (typically its Error): take the report and read on.
        let mut reset_seen = false;
        let (len, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match socket::recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(r) => {
                    if r.flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC) {
                        return Err(RuntimeError::Sync("message truncated".into()));
                    }
                    let mut fd = None;
                    let mut extra = Vec::new();
                    let cmsgs = r.cmsgs().map_err(|errno| RuntimeError::Sys {
                        context: "decode sync socket control message".into(),
                        errno,
                    })?;
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmRights(raw) = c {
                            for f in raw {
                                // SAFETY: SCM_RIGHTS descriptors are freshly
                                // installed in our table by the kernel and
                                // owned by nobody else.
                                let owned = unsafe { OwnedFd::from_raw_fd(f) };
                                if fd.is_none() {
                                    fd = Some(owned);
                                } else {
                                    extra.push(owned);
                                }
                            }
                        }
                    }
                    drop(extra);
                    break (r.bytes, fd);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::ECONNRESET) if !reset_seen => {
                    reset_seen = true;
                    continue;
                }
                Err(errno) => {
                    return Err(RuntimeError::Sys {
                        context: "receive on sync socket".into(),
                        errno,
                    })
                }
            }
        };
        if len == 0 {
            return Ok(None);
        }
        let msg: Message =
            serde_json::from_slice(&buf[..len]).map_err(|e| RuntimeError::Sync(format!("decode message: {e}")))?;
        Ok(Some((msg, fd)))
    }

    /// Child side: make sure the parent has put us in our cgroup (its
    /// `Placed`), waiting for it the first time. The parent moves the child
    /// while the child already builds its rootfs: on cgroup v1 that move
    /// waits for an RCU grace period (~12 ms), which this hides. Anything
    /// that depends on cgroup membership calls this first.
    pub fn ensure_placed(&self) -> Result<(), RuntimeError> {
        if !self.placed.get() {
            self.wait_for(&Message::Placed)?;
            self.placed.set(true);
        }
        Ok(())
    }

    /// Child side: block until the parent sends `expected`. EOF or any other
    /// message is an error (the parent went away or the protocol broke).
    pub fn wait_for(&self, expected: &Message) -> Result<(), RuntimeError> {
        match self.recv()? {
            Some((m, _)) if &m == expected => Ok(()),
            Some((m, _)) => Err(RuntimeError::Sync(format!(
                "expected {}, got {}",
                expected.name(),
                m.name()
            ))),
            None => Err(RuntimeError::Sync(format!(
                "parent closed the channel while waiting for {}",
                expected.name()
            ))),
        }
    }
}

impl AsFd for SyncChannel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Message {
    /// Short name for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Message::ChildPid(_) => "child-pid",
            Message::Continue => "continue",
            Message::Placed => "placed",
            Message::Warning(_) => "warning",
            Message::PtyMaster => "pty-master",
            Message::Ready => "ready",
            Message::Go => "go",
            Message::Error(_) => "error",
            Message::Fd => "fd",
            Message::Task(_) => "task",
            Message::SecurityTime(_) => "security-time",
        }
    }
}

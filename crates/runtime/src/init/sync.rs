//! The synchronisation channel between the parent (the monitor) and the
//! process that becomes the container process.
//!
//! It is a `SOCK_SEQPACKET | SOCK_CLOEXEC` socketpair: every message is one
//! datagram (no framing, no interleaving even when an intermediate process
//! and the container process both hold the child end), and because the child
//! end is close-on-exec, EOF on the parent end after "go" means `execve`
//! succeeded. Messages are [`Message`]s in the one codec of every zygote
//! channel ([`crate::wire`]); a pty master is passed as `SCM_RIGHTS`.
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

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::socket;
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;

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
        let (a, b) = crate::wire::pair().map_err(|source| RuntimeError::Channel {
            what: "create the sync socketpair".into(),
            source,
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
        let fds: Vec<RawFd> = fd.map(|f| f.as_raw_fd()).into_iter().collect();
        crate::wire::send(self.fd.as_fd(), msg, &fds).map_err(|source| RuntimeError::Channel {
            what: format!("send {} to the container init", msg.name()),
            source,
        })
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
        let got = crate::wire::recv::<Message>(self.fd.as_fd()).map_err(|source| RuntimeError::Channel {
            what: "receive from the container init".into(),
            source,
        })?;
        Ok(got.map(|(msg, fds)| (msg, fds.into_iter().next())))
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

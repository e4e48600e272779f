//! The daemon's end of a monitor's (or a warm zygote's) control socket.
//! Used by the multi-threaded daemon and its pool, never by a monitor.
//!
//! Spawning a monitor: `std::process::Command` (fork+exec, safe from this
//! multi-threaded process; the only pre-exec work is `dup2` of the control
//! socket onto fd 3, which is async-signal-safe). Talking to it: requests
//! are serialised by a mutex, one reply per request; events flow to the
//! task's event channel from a reader task.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;

use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot, Mutex};
use tracing::debug;
use zygote_contract::proto::{self, Event, Message, Reply, Request, WireError};

/// A reply and the descriptors that came with it.
type Answer = (Reply, Vec<OwnedFd>);

struct Inner {
    fd: AsyncFd<OwnedFd>,
    pending: std::sync::Mutex<Option<oneshot::Sender<Answer>>>,
    /// Where a waiting zygote's [`Reply::Pong`] goes: never to `pending`, so
    /// a pong that comes after its ping timed out cannot pass for the reply
    /// to the next request (a claim).
    pong: std::sync::Mutex<Option<oneshot::Sender<Reply>>>,
    serial: Mutex<()>,
}

/// A live control connection to one monitor.
#[derive(Clone)]
pub(crate) struct MonitorClient {
    inner: Arc<Inner>,
}

/// What the reader task delivers besides replies.
#[derive(Debug)]
pub(crate) enum Incoming {
    Event(Event),
    /// The control socket closed: the monitor is gone.
    Closed,
}

impl MonitorClient {
    /// Wraps a connected SEQPACKET socket and starts its reader task.
    pub(crate) fn new(fd: OwnedFd, events: mpsc::UnboundedSender<Incoming>) -> std::io::Result<Self> {
        Self::with_waiter(fd, events, None)
    }

    /// Wraps the socket of a monitor or zygote just spawned, which sends one
    /// reply unasked (the result of creating the container, or a zygote's
    /// pid), and returns the wait for that reply. The waiter is in place
    /// before the reader task starts: a reply that arrives with no waiter is
    /// dropped (so a late one cannot pass for the next request's), and when
    /// the wait was registered only after `new`, a reader running on another
    /// worker thread could read a fast reply first and drop it; the Create
    /// then hung until its timeout (about one cold Create in a thousand under
    /// load, the monitor waiting in its event loop, the init at its barrier).
    pub(crate) fn spawned(
        fd: OwnedFd,
        events: mpsc::UnboundedSender<Incoming>,
    ) -> std::io::Result<(Self, impl std::future::Future<Output = Result<Reply, WireError>>)> {
        let (tx, rx) = oneshot::channel();
        let client = Self::with_waiter(fd, events, Some(tx))?;
        Ok((client, async move {
            rx.await.map(|(r, _)| r).map_err(|_| WireError::Closed)
        }))
    }

    fn with_waiter(
        fd: OwnedFd,
        events: mpsc::UnboundedSender<Incoming>,
        waiter: Option<oneshot::Sender<Answer>>,
    ) -> std::io::Result<Self> {
        set_nonblocking(&fd)?;
        // SAFETY: `fd` is an OwnedFd moved into the AsyncFd, so it stays open and
        // refers to the same socket until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)?;
        let inner = Arc::new(Inner {
            fd,
            pending: std::sync::Mutex::new(waiter),
            pong: Default::default(),
            serial: Mutex::new(()),
        });
        let reader = inner.clone();
        tokio::spawn(async move {
            loop {
                match recv(&reader.fd).await {
                    Ok((
                        Message::Reply {
                            reply: pong @ Reply::Pong { .. },
                        },
                        _,
                    )) => {
                        if let Some(tx) = reader.pong.lock().expect("pong lock").take() {
                            let _ = tx.send(pong);
                        }
                    }
                    Ok((Message::Reply { reply }, fds)) => {
                        if let Some(tx) = reader.pending.lock().expect("pending lock").take() {
                            let _ = tx.send((reply, fds));
                        }
                    }
                    Ok((Message::Event { event }, _)) => {
                        let _ = events.send(Incoming::Event(event));
                    }
                    Err(e) => {
                        debug!(error = %e, "monitor connection closed");
                        reader.pending.lock().expect("pending lock").take();
                        reader.pong.lock().expect("pong lock").take();
                        let _ = events.send(Incoming::Closed);
                        return;
                    }
                }
            }
        });
        Ok(MonitorClient { inner })
    }

    /// Connects to a running monitor's socket (re-adoption).
    pub(crate) async fn connect(path: &Path, events: mpsc::UnboundedSender<Incoming>) -> std::io::Result<Self> {
        use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType};
        let fd = socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None)?;
        let addr = zygote_contract::sockaddr::ShortAddr::new(path).map_err(std::io::Error::other)?;
        connect(fd.as_raw_fd(), addr.addr())?;
        Self::new(fd, events)
    }

    /// Hangs up: the monitor (or waiting zygote) at the other end sees its
    /// control socket close, and this client's reader task ends, so the
    /// socket is freed even though clones of this handle may still exist.
    /// A waiting zygote then kills its child and exits; a task's monitor
    /// keeps its task and waits for a daemon to reconnect.
    pub(crate) fn close(&self) {
        let _ = nix::sys::socket::shutdown(self.inner.fd.get_ref().as_raw_fd(), nix::sys::socket::Shutdown::Both);
    }

    /// Sends a request and waits for its reply.
    pub(crate) async fn call(&self, req: &Request, fds: &[RawFd]) -> Result<Answer, WireError> {
        let _g = self.inner.serial.lock().await;
        self.await_reply((req, fds)).await
    }

    /// Pings a waiting zygote (the pool's health probe) and waits for its
    /// [`Reply::Pong`] (or the error reply of a zygote that does not know
    /// pings). In turn with other requests; the caller bounds the wait.
    pub(crate) async fn ping(&self) -> Result<Reply, WireError> {
        let _g = self.inner.serial.lock().await;
        let (tx, rx) = oneshot::channel();
        *self.inner.pong.lock().expect("pong lock") = Some(tx);
        let (etx, erx) = oneshot::channel();
        *self.inner.pending.lock().expect("pending lock") = Some(etx);
        self.send(&Request::Ping, &[]).await?;
        tokio::select! {
            pong = rx => pong.map_err(|_| WireError::Closed),
            other = erx => other.map(|(r, _)| r).map_err(|_| WireError::Closed),
        }
    }

    async fn await_reply(&self, (req, fds): (&Request, &[RawFd])) -> Result<Answer, WireError> {
        let (tx, rx) = oneshot::channel();
        *self.inner.pending.lock().expect("pending lock") = Some(tx);
        self.send(req, fds).await?;
        rx.await.map_err(|_| WireError::Closed)
    }

    async fn send(&self, req: &Request, fds: &[RawFd]) -> Result<(), WireError> {
        loop {
            let mut guard = self
                .inner
                .fd
                .writable()
                .await
                .map_err(|e| WireError::Io(nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
            match guard.try_io(|fd| proto::send(fd.get_ref().as_fd(), req, fds).map_err(to_io)) {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => return Err(from_io(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

fn to_io(e: WireError) -> std::io::Error {
    match e {
        WireError::Io(nix::Error::EAGAIN) => std::io::ErrorKind::WouldBlock.into(),
        WireError::Io(n) => std::io::Error::from_raw_os_error(n as i32),
        other => std::io::Error::other(other),
    }
}

fn from_io(e: std::io::Error) -> WireError {
    match e.raw_os_error() {
        Some(n) => WireError::Io(nix::Error::from_raw(n)),
        None => WireError::Closed,
    }
}

async fn recv(fd: &AsyncFd<OwnedFd>) -> Result<(Message, Vec<OwnedFd>), WireError> {
    loop {
        let mut guard = fd.readable().await.map_err(from_io)?;
        match guard.try_io(|fd| proto::recv::<Message>(fd.get_ref().as_fd()).map_err(to_io)) {
            Ok(Ok(m)) => return Ok(m),
            Ok(Err(e)) => return Err(from_io(e)),
            Err(_would_block) => continue,
        }
    }
}

/// Spawns `exe <args>` with its control socket on fd 3 and stdout/stderr
/// appended to `log` (a monitor: `__monitor <task dir>`; a zygote:
/// `__zygote <json>`). The child handle is dropped: tokio's orphan reaper
/// collects the process when it exits, and (after setsid) it outlives us
/// if we die.
pub(crate) fn spawn(exe: &Path, args: &[&std::ffi::OsStr], log: &Path, control: OwnedFd) -> std::io::Result<u32> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let raw = control.as_raw_fd();
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(false);
    // SAFETY: the hook runs between fork and exec in the child of this
    // multi-threaded process and only calls dup2 (async-signal-safe), with a
    // descriptor that stays open in the parent until spawn returns.
    unsafe {
        cmd.pre_exec(move || zygote_runtime::sys::dup2_all(&[(raw, zygote_contract::proto::CONTROL_FD)]));
    }
    let child = cmd.spawn()?;
    drop(control);
    Ok(child.id().unwrap_or(0))
}

/// Sets `O_NONBLOCK` on a descriptor (tokio's reactor needs it).
fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::time::Duration;

    use tokio::sync::mpsc;
    use zygote_contract::proto::{self, Message, Reply};

    use super::MonitorClient;

    /// A peer that answers before anyone waits (its reply is already queued
    /// when the client is made, and the reader has run before the wait is
    /// polled) is still heard. Regression: the reply was read and dropped,
    /// and the Create hung until its timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reply_sent_before_the_wait_is_not_lost() {
        let (ours, theirs) = proto::pair().unwrap();
        let reply = Message::Reply {
            reply: Reply::Pid { pid: 42, at_ns: 7 },
        };
        proto::send(theirs.as_fd(), &reply, &[]).unwrap();
        let (tx, _events) = mpsc::unbounded_channel();
        let (_client, first_reply) = MonitorClient::spawned(ours, tx).unwrap();
        // Let the reader task read the queued reply first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let got = tokio::time::timeout(Duration::from_secs(5), first_reply)
            .await
            .expect("the first reply was lost");
        assert!(matches!(got, Ok(Reply::Pid { pid: 42, .. })), "{got:?}");
        drop(theirs);
    }
}

//! Re-adoption: a restarted daemon takes over the tasks it finds on disk.
//!
//! For each `tasks/<id>/` it connects to the monitor's socket and asks for a
//! snapshot; the reply carries the containerd connections the monitor kept
//! open for us, and each is spliced into our own ttrpc server through a
//! local connection, so containerd never noticed the daemon was gone.
//! Exits that happened while no daemon ran are published now (once: the
//! `exit-published` marker says whether the old daemon already did).

use std::collections::HashSet;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use zygote_contract::TaskDir;

use tokio::sync::mpsc;
use tracing::{info, warn};

/// How long one monitor may take to answer a restarted daemon.
const ADOPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
use zygote_contract::proto::{Reply, Request};
use zygote_contract::state::{self, Snapshot, Status, TaskConfig};
use zygote_runtime::cgroups::Cgroup;

use crate::daemon::Daemon;
use crate::monitor_client::MonitorClient;
use crate::task::Task;

impl Daemon {
    /// Adopts every task on disk, concurrently, each bounded in time so one
    /// stuck monitor cannot keep the daemon from serving the others.
    pub(crate) async fn adopt_all(self: &Arc<Self>) {
        let Ok(entries) = std::fs::read_dir(self.dir.tasks()) else {
            return;
        };
        let mut set = tokio::task::JoinSet::new();
        for e in entries.flatten() {
            let (this, dir) = (self.clone(), e.path());
            set.spawn(async move {
                let r = tokio::time::timeout(ADOPT_TIMEOUT, this.adopt_one(&TaskDir::at(&dir))).await;
                (
                    dir,
                    r.unwrap_or_else(|_| Err(format!("no answer in {ADOPT_TIMEOUT:?}"))),
                )
            });
        }
        let mut seen = HashSet::new();
        let mut adopted = Vec::new();
        while let Some(joined) = set.join_next().await {
            let Ok((dir, r)) = joined else { continue };
            match r {
                Ok((task, conns)) => {
                    for fd in conns {
                        let ino = nix::sys::stat::fstat(fd.as_raw_fd()).map(|s| s.st_ino).unwrap_or(0);
                        if seen.insert(ino) {
                            self.proxy(fd);
                        }
                    }
                    adopted.push(task);
                }
                Err(why) => warn!(dir = %dir.display(), why, "cannot adopt task"),
            }
        }
        // Every inherited connection has its proxy now.
        for task in adopted {
            self.redeliver_waits(task);
        }
    }

    /// Adopts one task; returns it and the containerd connections its
    /// monitor kept.
    async fn adopt_one(self: &Arc<Self>, dir: &TaskDir) -> Result<(Arc<Task>, Vec<OwnedFd>), String> {
        let cfg: TaskConfig = match state::read(&dir.config()) {
            Ok(c) => c,
            Err(e) => {
                // A Create that died half-way: nothing to serve, nothing to keep.
                let _ = std::fs::remove_dir_all(dir.path());
                return Err(e.to_string());
            }
        };
        let spec = zygote_runtime::spec::load(&cfg.bundle).map_err(|e| e.to_string())?;
        let cgroup = Cgroup::from_spec(&spec, &cfg.id).map_err(|e| e.to_string())?;
        let task = Arc::new(Task::new(cfg.clone(), dir.clone(), cgroup));
        task.set_waits(crate::waits::load(dir));
        let (tx, rx) = mpsc::unbounded_channel();
        let mut conns = Vec::new();
        let snap: Snapshot = match MonitorClient::connect(&dir.monitor_socket(), tx).await {
            Ok(m) => match m.call(&Request::Hello, &[]).await {
                Ok((Reply::Snapshot { snapshot }, fds)) => {
                    task.set_monitor(Some(m));
                    for fd in &fds {
                        let ino = nix::sys::stat::fstat(fd.as_raw_fd()).map(|s| s.st_ino).unwrap_or(0);
                        task.first_request_on(ino);
                    }
                    conns = fds;
                    snapshot
                }
                other => return Err(format!("unexpected hello reply {other:?}")),
            },
            Err(e) => {
                warn!(id = %cfg.id, error = %e, "monitor unreachable; using its last state");
                state::read(&dir.state()).map_err(|e| e.to_string())?
            }
        };
        task.apply_snapshot(&snap);
        // A paused task stays paused across our restart.
        if task.cgroup().is_frozen().unwrap_or(false) {
            task.set_paused(true);
        }
        let has_monitor = task.monitor().is_some();
        self.tasks
            .write()
            .expect("tasks lock")
            .insert(cfg.id.clone(), task.clone());
        if has_monitor {
            self.watch(task.clone(), rx);
        } else {
            // Its monitor died while no daemon ran.
            self.end_lost_processes(&task).await;
        }
        let init = task.proc("").expect("init after snapshot");
        if init.state.status == Status::Stopped && !dir.exit_marker(None).exists() {
            self.publish_exit(
                &task,
                None,
                init.state.pid,
                init.state.exit_status.unwrap_or(255),
                init.state.exited_at_ns.unwrap_or_else(state::wall_ns),
            );
        }
        for (id, p) in &snap.execs {
            if p.status == Status::Stopped && !dir.exit_marker(Some(id)).exists() {
                self.publish_exit(
                    &task,
                    Some(id),
                    p.pid,
                    p.exit_status.unwrap_or(255),
                    p.exited_at_ns.unwrap_or_else(state::wall_ns),
                );
            }
        }
        info!(id = %cfg.id, pid = init.state.pid, status = ?init.state.status, "adopted task");
        Ok((task, conns))
    }

    /// Serves a containerd connection inherited from a previous daemon by
    /// splicing it into a fresh connection to our own socket.
    ///
    /// The containerd side is never shut down (no `shutdown(2)`, which would
    /// act on the socket itself and reach containerd even though monitors
    /// still hold it): when we stop, we only drop our descriptor, and the
    /// next daemon picks the connection up again from the monitors.
    ///
    /// Replies go through frame by frame, so the answer to a `Wait` the
    /// previous daemon left pending can be put between them
    /// ([`crate::waits`]); the local end is bound to an abstract name that
    /// tells the server which containerd connection it serves.
    fn proxy(self: &Arc<Self>, fd: OwnedFd) {
        let conn = nix::sys::stat::fstat(fd.as_raw_fd()).map(|s| s.st_ino).unwrap_or(0);
        let (inject, mut injected) = mpsc::unbounded_channel::<Vec<u8>>();
        self.injectors.lock().expect("injectors lock").insert(conn, inject);
        let seq = self.proxy_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sock = self.dir.socket();
        let this = self.clone();
        tokio::spawn(async move {
            let std_stream = std::os::unix::net::UnixStream::from(fd);
            let spliced = async {
                std_stream.set_nonblocking(true).ok()?;
                let mut outer = tokio::net::UnixStream::from_std(std_stream).ok()?;
                let mut inner = connect_named(&sock, &crate::waits::proxy_name(conn, seq)).ok()?;
                // Borrowed halves: unlike owned ones, dropping them shuts nothing down.
                let (mut outer_r, mut outer_w) = outer.split();
                let (mut inner_r, mut inner_w) = inner.split();
                // Requests: containerd → us; replies: us → containerd. Whichever
                // direction ends first ends the splice; nothing is shut down.
                tokio::select! {
                    _ = copy(&mut outer_r, &mut inner_w) => {},
                    _ = replies(&mut inner_r, &mut outer_w, &mut injected) => {},
                }
                Some(())
            };
            if spliced.await.is_none() {
                warn!(conn, "cannot serve an inherited containerd connection");
            }
            this.injectors.lock().expect("injectors lock").remove(&conn);
        });
    }

    /// Answers the `Wait`s a previous daemon left pending on `task`, each
    /// once its process has stopped.
    pub(crate) fn redeliver_waits(self: &Arc<Self>, task: Arc<Task>) {
        for w in task.waits() {
            let this = self.clone();
            let task = task.clone();
            tokio::spawn(async move {
                let mut changed = task.subscribe();
                let resp = loop {
                    match task.proc(&w.exec_id) {
                        None => break None,
                        Some(p) if p.state.status == Status::Stopped => {
                            break Some(containerd_shim_protos::api::WaitResponse {
                                exit_status: p.state.exit_status.unwrap_or(0) as u32,
                                exited_at: p.state.exited_at_ns.map(crate::daemon::timestamp).into(),
                                ..Default::default()
                            })
                        }
                        Some(_) => {}
                    }
                    if changed.changed().await.is_err() {
                        break None;
                    }
                };
                let sent = resp.and_then(|r| {
                    let frame = crate::waits::response_frame(w.stream, &r).ok()?;
                    let injectors = this.injectors.lock().expect("injectors lock");
                    injectors.get(&w.conn)?.send(frame).ok()
                });
                match sent {
                    Some(()) => {
                        info!(id = %task.cfg().id, exec = %w.exec_id, stream = w.stream, "answered a wait left by the previous daemon")
                    }
                    None => {
                        warn!(id = %task.cfg().id, exec = %w.exec_id, "cannot answer a wait left by the previous daemon")
                    }
                }
                task.remove_wait(&w);
            });
        }
    }
}

/// Connects to the ttrpc socket from a socket bound to the abstract `name`.
fn connect_named(sock: &Path, name: &str) -> std::io::Result<tokio::net::UnixStream> {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let fd = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    bind(fd.as_raw_fd(), &UnixAddr::new_abstract(name.as_bytes())?)?;
    connect(fd.as_raw_fd(), &UnixAddr::new(sock)?)?;
    let stream = std::os::unix::net::UnixStream::from(fd);
    stream.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(stream)
}

/// Copies our replies to containerd whole frame by whole frame, putting
/// injected frames between them; never shuts down `w`.
async fn replies<R, W>(r: &mut R, w: &mut W, injected: &mut mpsc::UnboundedReceiver<Vec<u8>>) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some(n) = crate::waits::complete_frame(&buf) {
            w.write_all(&buf[..n]).await?;
            buf.drain(..n);
        }
        tokio::select! {
            // Both arms are cancel-safe: a read either happened or not.
            n = r.read(&mut chunk) => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Some(frame) = injected.recv() => w.write_all(&frame).await?,
        }
    }
}

/// Copies until end of input or an error, without ever shutting down `w`.
async fn copy<R, W>(r: &mut R, w: &mut W) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        w.write_all(&buf[..n]).await?;
    }
}

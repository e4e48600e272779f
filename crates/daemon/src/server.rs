//! Running the daemon: the single-instance lock, the ttrpc listener,
//! re-adoption of tasks left by a previous daemon, the control socket
//! ([`crate::ctl`]), SIGHUP (config reload, [`crate::reload`]) and
//! graceful stop.

use std::os::fd::AsRawFd;
use std::path::PathBuf;

use std::sync::Arc;
use std::time::Duration;
use zygote_contract::daemon::DaemonConfig;
use zygote_contract::DaemonDir;

use containerd_shim_protos::shim_async::create_task;
use containerd_shim_protos::ttrpc::r#async::Server;
use nix::fcntl::{Flock, FlockArg};
use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};

use crate::daemon::Daemon;
use crate::error::DaemonError;
use crate::service::Service;

/// Outcome of [`run`].
pub enum Outcome {
    /// Another daemon already holds the lock.
    AlreadyRunning,
    /// Stopped by a signal.
    Stopped,
}

/// Runs the daemon for `dir` until SIGTERM/SIGINT.
pub async fn run(dir: &DaemonDir) -> Result<Outcome, DaemonError> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(dir.tasks()).map_err(DaemonError::io(format!("create {}", dir.path().display())))?;
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.lock())
        .map_err(DaemonError::io("open daemon.lock"))?;
    let Some(_lock) = lock(dir, lock_file) else {
        return Ok(Outcome::AlreadyRunning);
    };
    let cfg: DaemonConfig = zygote_contract::state::read(&dir.config())?;
    std::fs::write(dir.pid_file(), std::process::id().to_string()).map_err(DaemonError::io("write daemon.pid"))?;
    if let Some(adj) = cfg.oom_score_adj {
        set_own_oom_score_adj(adj);
    }
    let sock = dir.socket();
    let _ = std::fs::remove_file(&sock);
    let listener =
        std::os::unix::net::UnixListener::bind(&sock).map_err(DaemonError::io(format!("bind {}", sock.display())))?;
    // After an in-place upgrade /proc/self/exe reads "<path> (deleted)":
    // monitors must run the binary now at that path.
    let exe = std::env::current_exe().map_err(DaemonError::io("current_exe"))?;
    let exe = PathBuf::from(exe.to_string_lossy().trim_end_matches(" (deleted)").to_string());
    let daemon = Arc::new(Daemon::new(crate::daemon::Settings::from_env(
        dir,
        exe,
        cfg.ttrpc_address,
    )));
    let service = Service { daemon: daemon.clone() };
    let mut server = Server::new()
        .set_domain_unix()
        .add_listener(listener.as_raw_fd())
        .map_err(|e| DaemonError::io("ttrpc listener")(std::io::Error::other(e)))?
        .register_service(create_task(Arc::new(service)));
    // The server owns the descriptor now.
    std::mem::forget(listener);
    // Re-adopt before serving: a request for a task we have not adopted yet
    // would be answered NOT_FOUND. The proxies' connections wait in the
    // listener's backlog meanwhile.
    daemon.adopt_all().await;
    daemon.pools.sweep_stale_cgroups();
    daemon.pools.start();
    let metrics = crate::metrics::serve(daemon.clone(), daemon.profiles().metrics_addr());
    server
        .start()
        .await
        .map_err(|e| DaemonError::io("ttrpc start")(std::io::Error::other(e)))?;
    // zygotectl's socket; its status names the metrics endpoint actually
    // bound (none when disabled or the address could not be bound).
    let metrics_url = metrics.map(|a| format!("http://{a}/metrics"));
    crate::ctl::serve(daemon.clone(), crate::ctl::bind_socket(dir)?, started, metrics_url);
    info!(pid = std::process::id(), dir = %dir.path().display(), tasks = daemon.task_count(), "zygote daemon serving");

    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::io("signal"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::io("signal"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::io("signal"))?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            // Reload the config (the result is logged by `reload`).
            _ = hup.recv() => { let _ = daemon.reload("SIGHUP").await; }
        }
    }
    info!(
        tasks = daemon.task_count(),
        "stopping; running tasks stay with their monitors"
    );
    server.shutdown().await.ok();
    daemon.pools.drain().await;
    let _ = std::fs::remove_file(&sock);
    let _ = std::fs::remove_file(dir.control_socket());
    let _ = std::fs::remove_file(dir.pid_file());
    Ok(Outcome::Stopped)
}

/// How long a new daemon waits for the lock of a daemon that is exiting.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Takes the directory's lock; `None` when a live daemon holds it. A daemon
/// that was killed holds the lock until its last thread has exited, while
/// `daemon.pid` already names a dead process: then this waits (up to
/// [`LOCK_WAIT`]) instead of leaving the node without a daemon.
fn lock(dir: &DaemonDir, mut file: std::fs::File) -> Option<Flock<std::fs::File>> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => return Some(l),
            Err((f, _)) => file = f,
        }
        let holder = std::fs::read_to_string(dir.pid_file())
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        let holder_alive = holder.is_none_or(zygote_contract::daemon::process_alive);
        if holder_alive || std::time::Instant::now() > deadline {
            if !holder_alive {
                warn!(pid = ?holder, "the exiting daemon still holds the lock after {LOCK_WAIT:?}");
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sets this process's `oom_score_adj` to `adj`. Lowering it needs
/// CAP_SYS_RESOURCE; without it the current (higher) value is kept and a
/// warning logged, as containerd's `restrict_oom_score_adj` does.
fn set_own_oom_score_adj(adj: i32) {
    let path = "/proc/self/oom_score_adj";
    if let Err(e) = std::fs::write(path, adj.to_string()) {
        let current = std::fs::read_to_string(path).unwrap_or_default();
        tracing::warn!(requested = adj, current = current.trim(), error = %e, "cannot set the daemon's oom_score_adj; keeping the current value");
    }
}

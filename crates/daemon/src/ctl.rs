//! The daemon's side of the control socket (`<daemon dir>/ctl.sock`,
//! protocol in `zygote_contract::ctl`): binds it root-only and answers
//! `zygotectl`'s status, profiles and reload requests, one per connection,
//! off every task's path. (Not to be confused with [`crate::control`],
//! containerd's Kill/Exec/... requests.)

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::socket::{bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::{debug, warn};
use zygote_contract::ctl::{CtlReply, CtlRequest, DaemonStatus, LoadedProfiles, PoolStatus, MAX_LINE};
use zygote_contract::sockaddr::ShortAddr;
use zygote_contract::state::Status;
use zygote_contract::DaemonDir;

use crate::daemon::Daemon;
use crate::error::DaemonError;

/// A request line must arrive within this (a stuck client holds nothing
/// else up, but its connection is dropped).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `ctl.sock` in `dir` (replacing a stale one: the caller holds the
/// daemon lock), mode 0600. Through a descriptor of the directory, so the
/// state dir's depth does not matter.
pub(crate) fn bind_socket(dir: &DaemonDir) -> Result<UnixListener, DaemonError> {
    let path = dir.control_socket();
    let io = |what: &str| DaemonError::io(format!("{what} {}", path.display()));
    let _ = std::fs::remove_file(&path);
    let addr = ShortAddr::new(&path).map_err(|e| io("address of")(std::io::Error::other(e)))?;
    let sock: OwnedFd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| io("socket for")(e.into()))?;
    bind(sock.as_raw_fd(), addr.addr()).map_err(|e| io("bind")(e.into()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io("chmod"))?;
    listen(&sock, Backlog::new(16).expect("backlog")).map_err(|e| io("listen on")(e.into()))?;
    UnixListener::from_std(std::os::unix::net::UnixListener::from(sock)).map_err(io("listen on"))
}

/// Answers requests on `listener` for as long as the daemon runs;
/// `started` is when the daemon started (its uptime), `metrics_url` where
/// it serves metrics, if it does.
pub(crate) fn serve(daemon: Arc<Daemon>, listener: UnixListener, started: Instant, metrics_url: Option<String>) {
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    warn!(error = %e, "control socket accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (daemon, url) = (daemon.clone(), metrics_url.clone());
            tokio::spawn(async move {
                if let Err(e) = answer(&daemon, stream, started, url).await {
                    debug!(error = %e, "control connection");
                }
            });
        }
    });
}

async fn answer(
    daemon: &Daemon,
    stream: UnixStream,
    started: Instant,
    metrics_url: Option<String>,
) -> std::io::Result<()> {
    let uid = stream.peer_cred()?.uid();
    if uid != 0 && uid != nix::unistd::geteuid().as_raw() {
        warn!(uid, "control socket: refused a connection from another user");
        return Ok(());
    }
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let mut reader = BufReader::new(read.take(MAX_LINE as u64));
    tokio::time::timeout(READ_TIMEOUT, reader.read_until(b'\n', &mut line))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no request"))??;
    let reply = match serde_json::from_slice::<CtlRequest>(&line) {
        Err(e) => CtlReply::Error {
            message: format!("bad request: {e}"),
        },
        Ok(CtlRequest::Status) => CtlReply::Status(status(daemon, started, metrics_url)),
        Ok(CtlRequest::Profiles) => CtlReply::Profiles(profiles(daemon)),
        Ok(CtlRequest::Reload) => match daemon.reload("zygotectl").await {
            Ok(report) => CtlReply::Reloaded(report),
            Err(message) => CtlReply::Error { message },
        },
    };
    let mut out = serde_json::to_vec(&reply).map_err(std::io::Error::other)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}

fn status(daemon: &Daemon, started: Instant, metrics_url: Option<String>) -> DaemonStatus {
    let (tasks, tasks_running) = {
        let table = daemon.tasks.read().expect("tasks lock");
        let running = table
            .values()
            .filter(|t| t.init_status() == Some(Status::Running))
            .count();
        (table.len(), running)
    };
    let profiles = daemon.profiles();
    let (config, config_error) = match profiles.config() {
        Ok(c) => (c.source.clone(), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let pools = daemon
        .pools
        .stats()
        .profiles
        .into_iter()
        .map(|(name, s)| {
            let p = PoolStatus {
                idle: s.idle,
                target: s.target,
                spawning: s.spawning,
                claims: s.claimed,
                fallbacks: s.fallbacks,
                created: s.created,
                died: s.died,
                recycled: s.recycled,
                unhealthy: s.unhealthy,
                generation: s.generation,
                pressure: None,
            };
            (name, p)
        })
        .collect();
    let wasm_cache = std::fs::read(daemon.dir.wasm_cache_stats())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    DaemonStatus {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_secs: started.elapsed().as_secs(),
        tasks,
        tasks_running,
        config,
        config_error,
        pools,
        wasm_cache,
        metrics_url,
    }
}

fn profiles(daemon: &Daemon) -> LoadedProfiles {
    match daemon.profiles().config() {
        Ok(c) => LoadedProfiles::of(c),
        Err(e) => LoadedProfiles {
            config: None,
            error: Some(e.to_string()),
            default_profile: None,
            profiles: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use zygote_contract::ctl::call;

    use super::*;
    use crate::daemon::Settings;

    fn daemon(dir: &Path) -> Arc<Daemon> {
        Arc::new(Daemon::new(Settings {
            dir: DaemonDir::at(dir),
            exe: "/nonexistent/shim".into(),
            ttrpc_address: "/nonexistent/containerd.sock".into(),
            profiles: crate::profiles::Profiles::from_config(Err("no configuration in unit tests".into())),
            pre_place: false,
            wasm_cache_dir: Some(dir.join("wasm")),
            // No profiles, no pools: never asked for a zygote.
            pressure: crate::pressure::Pressure::manual().1,
            spawner: Arc::new(crate::pool::ProcessSpawner {
                exe: "/nonexistent/shim".into(),
                log: dir.join("zygotes.log"),
            }),
        }))
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn answers_on_a_root_only_socket_under_a_deep_directory() {
        let tmp = tempfile::tempdir().unwrap();
        // Deeper than a socket address holds: bound through the directory.
        let deep = tmp.path().join("d".repeat(120));
        std::fs::create_dir_all(&deep).unwrap();
        let dir = DaemonDir::at(&deep);
        let d = daemon(&deep);
        let url = Some("http://127.0.0.1:9100/metrics".to_string());
        serve(d, bind_socket(&dir).unwrap(), Instant::now(), url.clone());
        let mode = std::fs::metadata(dir.control_socket()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let ask = |req: CtlRequest| {
            let path = dir.control_socket();
            tokio::task::spawn_blocking(move || call(&path, &req))
        };
        match ask(CtlRequest::Status).await.unwrap().unwrap() {
            CtlReply::Status(s) => {
                assert_eq!(s.pid, std::process::id());
                assert_eq!((s.tasks, s.tasks_running), (0, 0));
                assert_eq!(s.config_error.as_deref(), Some("no configuration in unit tests"));
                assert_eq!(s.metrics_url, url);
                assert!(s.pools.is_empty() && s.wasm_cache.is_none());
            }
            other => panic!("{other:?}"),
        }
        match ask(CtlRequest::Profiles).await.unwrap().unwrap() {
            CtlReply::Profiles(p) => {
                assert_eq!(p.error.as_deref(), Some("no configuration in unit tests"));
                assert!(p.profiles.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }
}

//! How the pool gets a zygote: the [`Spawner`] seam. The daemon's
//! [`ProcessSpawner`] starts `<exe> __zygote <json>` and waits for its
//! first reply; unit tests put a fake in its place (see `set::tests`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::mpsc;
use zygote_contract::proto::{self, Reply};
use zygote_contract::zygote::ZygoteConfig;

use super::set::Warm;
use crate::monitor_client::{self as client, MonitorClient};

/// How long a zygote may take to report that it is waiting.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a zygote could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpawnError {
    #[error("socketpair")]
    Socketpair(#[source] proto::WireError),
    #[error("zygote config")]
    Config(#[source] serde_json::Error),
    #[error("spawn {}", .exe.display())]
    Spawn {
        exe: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("zygote socket")]
    Socket(#[source] std::io::Error),
    /// The zygote's own report (its cause chain).
    #[error("{0}")]
    Failed(proto::Failure),
    #[error("unexpected zygote reply {0:?}")]
    Unexpected(Box<Reply>),
    #[error("zygote exited before it was ready")]
    Exited(#[source] proto::WireError),
    #[error("zygote not ready within {0:?}")]
    Timeout(Duration),
}

/// Makes warm zygotes for the pool.
#[async_trait]
pub(crate) trait Spawner: Send + Sync + 'static {
    /// Starts one zygote as `cfg` says and returns it once it waits for a
    /// claim. A `Warm` dropped on the way hangs up, and the zygote goes.
    async fn spawn(&self, cfg: &ZygoteConfig) -> Result<Warm, SpawnError>;
}

/// The real one: `<exe> __zygote <json>`, logging to `log`.
pub(crate) struct ProcessSpawner {
    pub(crate) exe: PathBuf,
    pub(crate) log: PathBuf,
}

#[async_trait]
impl Spawner for ProcessSpawner {
    async fn spawn(&self, cfg: &ZygoteConfig) -> Result<Warm, SpawnError> {
        let born = Instant::now();
        let (ours, theirs) = proto::pair().map_err(SpawnError::Socketpair)?;
        let json = serde_json::to_string(cfg).map_err(SpawnError::Config)?;
        let zygote =
            client::spawn(&self.exe, &["__zygote".as_ref(), json.as_ref()], &self.log, theirs).map_err(|source| {
                SpawnError::Spawn {
                    exe: self.exe.clone(),
                    source,
                }
            })?;
        let monitor = zygote_runtime::sys::pidfd_open(zygote as i32).ok();
        let (tx, events) = mpsc::unbounded_channel();
        let (client, first_reply) = MonitorClient::spawned(ours, tx).map_err(SpawnError::Socket)?;
        // Until it is ready, a `Warm` with no pid: dropped on any failure, it
        // hangs up and the zygote goes away.
        let mut warm = Warm::new(client.clone(), events, 0, born, monitor);
        warm.zygote_pid = zygote as i32;
        match tokio::time::timeout(SPAWN_TIMEOUT, first_reply).await {
            Ok(Ok(Reply::Pid { pid, .. })) => {
                warm.pid = pid;
                Ok(warm)
            }
            Ok(Ok(Reply::Error { failure })) => Err(SpawnError::Failed(failure)),
            Ok(Ok(other)) => Err(SpawnError::Unexpected(Box::new(other))),
            Ok(Err(e)) => Err(SpawnError::Exited(e)),
            Err(_) => Err(SpawnError::Timeout(SPAWN_TIMEOUT)),
        }
    }
}

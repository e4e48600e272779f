//! The daemon's control socket, `<daemon dir>/ctl.sock`: what `zygotectl`
//! asks the running daemon (status, the loaded profiles, a config reload)
//! and what it answers.
//!
//! Framing: one connection per request, one JSON line each way
//! ([`CtlRequest`], then [`CtlReply`]), over a `SOCK_STREAM` socket. No
//! descriptors cross it (the monitors' SEQPACKET channel,
//! `zygote_runtime::wire`, exists to pass them), and a person can talk to
//! it with `socat - UNIX-CONNECT:ctl.sock`. The socket is bound and dialed
//! through a descriptor of its directory ([`crate::sockaddr::ShortAddr`]),
//! so any state dir depth works; it is root-only (mode 0600, and the daemon
//! checks the peer's uid).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::sockaddr::{AddrError, ShortAddr};

/// The longest line either side reads.
pub const MAX_LINE: usize = 1 << 20;

/// A request on the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum CtlRequest {
    Status,
    Profiles,
    /// Re-read the config file (as SIGHUP does).
    Reload,
}

/// The daemon's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum CtlReply {
    Status(DaemonStatus),
    Profiles(LoadedProfiles),
    Reloaded(ReloadReport),
    /// The request failed (a refused reload: the load error, the old
    /// config stays in force).
    Error {
        message: String,
    },
}

/// `zygotectl status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub pid: u32,
    pub version: String,
    pub uptime_secs: u64,
    /// Tasks in the daemon's table (created and not deleted).
    pub tasks: usize,
    /// Of those, tasks whose init runs.
    pub tasks_running: usize,
    /// The config file in force (`None`: the built-in profile).
    pub config: Option<PathBuf>,
    /// Why the config in force cannot be used, when it cannot.
    pub config_error: Option<String>,
    pub pools: BTreeMap<String, PoolStatus>,
    /// `wasm-cache.json` (hits, compiles, entries, bytes, ...), once the
    /// daemon opened its Wasm cache.
    pub wasm_cache: Option<serde_json::Value>,
    /// Where the daemon serves its Prometheus metrics, when it does.
    pub metrics_url: Option<String>,
}

/// One profile's pool, as `pools.json` counts it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PoolStatus {
    pub idle: usize,
    pub target: usize,
    pub spawning: usize,
    pub claims: u64,
    /// Tasks that took the cold path, by reason.
    pub fallbacks: BTreeMap<String, u64>,
    pub created: u64,
    pub died: u64,
    pub recycled: u64,
    /// Idle zygotes the health probe (or a claim) found unhealthy and
    /// replaced, by reason: `dead`, `unresponsive`, `stale_generation`.
    #[serde(default)]
    pub unhealthy: BTreeMap<String, u64>,
    /// The generation the pool's zygotes are made with now.
    #[serde(default)]
    pub generation: crate::zygote::Generation,
    /// The node pressure the pool reacts to; `None` until pools read PSI.
    pub pressure: Option<f64>,
}

/// `zygotectl profiles`: the config in force.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadedProfiles {
    pub config: Option<PathBuf>,
    /// Set when the config in force cannot be used (then `profiles` is empty).
    pub error: Option<String>,
    pub default_profile: Option<String>,
    pub profiles: Vec<ProfileInfo>,
}

/// One profile, summarized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileInfo {
    pub name: String,
    /// `namespace` or `wasm`.
    pub mode: String,
    pub namespaces: Vec<String>,
    pub pool_min: u32,
    pub pool_initial: u32,
    pub pool_max: u32,
    pub max_age_secs: u64,
    pub landlock: bool,
    pub seccomp: bool,
}

impl ProfileInfo {
    pub fn of(p: &zygote_config::Profile) -> ProfileInfo {
        ProfileInfo {
            name: p.name.clone(),
            mode: match p.mode {
                zygote_config::Mode::Namespace => "namespace",
                zygote_config::Mode::Wasm => "wasm",
            }
            .to_string(),
            namespaces: p.namespaces.iter().map(|n| n.name().to_string()).collect(),
            pool_min: p.pool.min,
            pool_initial: p.pool.initial,
            pool_max: p.pool.max,
            max_age_secs: p.pool.max_age.as_secs(),
            landlock: p.landlock.is_some(),
            seccomp: p.seccomp.is_some(),
        }
    }
}

impl LoadedProfiles {
    pub fn of(c: &zygote_config::Config) -> LoadedProfiles {
        LoadedProfiles {
            config: c.source.clone(),
            error: None,
            default_profile: Some(c.default_profile.clone()),
            profiles: c.profiles.values().map(ProfileInfo::of).collect(),
        }
    }
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    pub config: Option<PathBuf>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Profiles whose definition changed (bounds, namespaces, security, ...).
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    /// Idle zygotes let go (removed profiles, or changed namespaces/mode).
    pub zygotes_drained: usize,
    /// Settings that changed but apply only after a daemon restart.
    pub not_applied: Vec<String>,
}

/// Talking to the control socket failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("no zygote daemon answers at {path}")]
    NoDaemon {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Addr(#[from] AddrError),
    #[error("control socket {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("control socket {path}: bad reply")]
    BadReply {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Sends `req` to the daemon's control socket at `path` and waits for its
/// reply (blocking; a reload may take a few seconds while zygotes drain).
pub fn call(path: &Path, req: &CtlRequest) -> Result<CtlReply, CtlError> {
    let io = |source| CtlError::Io {
        path: path.into(),
        source,
    };
    let no_daemon = |source| CtlError::NoDaemon {
        path: path.into(),
        source,
    };
    let addr = match ShortAddr::new(path) {
        Ok(a) => a,
        // No daemon directory at all: no daemon either.
        Err(AddrError::OpenDir { source, .. }) => return Err(no_daemon(source)),
        Err(e) => return Err(e.into()),
    };
    let sock: OwnedFd = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|e| io(std::io::Error::from(e)))?;
    connect(sock.as_raw_fd(), addr.addr()).map_err(|e| no_daemon(std::io::Error::from(e)))?;
    let mut stream = std::os::unix::net::UnixStream::from(sock);
    let mut line = serde_json::to_vec(req).expect("requests serialize");
    line.push(b'\n');
    stream.write_all(&line).map_err(io)?;
    let mut reply = Vec::new();
    BufReader::new(stream.take(MAX_LINE as u64))
        .read_until(b'\n', &mut reply)
        .map_err(io)?;
    serde_json::from_slice(&reply).map_err(|source| CtlError::BadReply {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_json_lines() {
        let r = serde_json::to_string(&CtlRequest::Reload).unwrap();
        assert_eq!(r, r#"{"request":"reload"}"#);
        let reply = CtlReply::Reloaded(ReloadReport {
            added: vec!["new".into()],
            ..Default::default()
        });
        let text = serde_json::to_string(&reply).unwrap();
        assert!(!text.contains('\n'));
        match serde_json::from_str::<CtlReply>(&text).unwrap() {
            CtlReply::Reloaded(r) => assert_eq!(r.added, ["new"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_daemon_names_the_socket() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("ctl.sock");
        let e = call(&path, &CtlRequest::Status).unwrap_err();
        assert!(matches!(e, CtlError::NoDaemon { .. }), "{e:?}");
        assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
        let gone = tmp.path().join("nodir/ctl.sock");
        assert!(matches!(
            call(&gone, &CtlRequest::Status),
            Err(CtlError::NoDaemon { .. })
        ));
    }
}

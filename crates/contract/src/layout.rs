//! The state dir: every file the daemon, the monitors and the zygotes keep,
//! named in this one place.
//!
//! One daemon serves one containerd (one node): its directory is
//! `$ZYGOTE_STATE_DIR` (default `/run/zygote`) joined with a stable hash of
//! containerd's ttrpc address, so a private test containerd gets its own
//! daemon and a node's containerd always finds the same one again.
//!
//! ```text
//! <daemon dir>/daemon.sock         ttrpc socket containerd dials (the shim "address")
//!              daemon.lock         flock held by the one live daemon
//!              ctl.sock            control socket (`zygotectl`; see `crate::ctl`)
//!              daemon.pid          its pid
//!              daemon.json         what a restarted daemon needs (containerd's address, ...)
//!              daemon.log          its log
//!              timings.jsonl       per-task latency records (Create → exec)
//!              pools.json          pool counters
//!              pool-parents.json   cgroup parents pool cgroups were made under
//!              zygotes.log         idle zygotes' log
//!              wasm-cache.json     Wasm artifact cache counters
//!              tasks/<id>/         one task (see [`TaskDir`])
//! ```

use std::path::{Path, PathBuf};

/// Environment variable overriding the state root.
pub const STATE_DIR_ENV: &str = "ZYGOTE_STATE_DIR";
pub const DEFAULT_STATE_DIR: &str = "/run/zygote";

/// FNV-1a, 64 bit: stable across Rust versions (unlike `DefaultHasher`),
/// so an upgraded daemon finds the directory of the old one.
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The state root from the environment, made absolute (the daemon and the
/// monitors run with `/` as their working directory).
pub fn state_root() -> PathBuf {
    let p = std::env::var_os(STATE_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|c| c.join(&p)).unwrap_or(p)
    }
}

/// The directory of the daemon serving one containerd.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct DaemonDir(PathBuf);

impl DaemonDir {
    /// The daemon directory for the containerd at `ttrpc_address`.
    pub fn for_containerd(state_root: &Path, ttrpc_address: &str) -> DaemonDir {
        DaemonDir(state_root.join(format!("{:016x}", fnv1a(ttrpc_address))))
    }

    /// A daemon directory given by path (`__daemon <dir>`).
    pub fn at(path: impl Into<PathBuf>) -> DaemonDir {
        DaemonDir(path.into())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The directory's name: tells this daemon's things (its pool cgroups)
    /// apart from those of another containerd's daemon on the node.
    pub fn tag(&self) -> String {
        self.0
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn socket(&self) -> PathBuf {
        self.0.join("daemon.sock")
    }
    /// The control socket `zygotectl` talks to (see [`crate::ctl`]).
    pub fn control_socket(&self) -> PathBuf {
        self.0.join("ctl.sock")
    }
    pub fn lock(&self) -> PathBuf {
        self.0.join("daemon.lock")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.0.join("daemon.pid")
    }
    pub fn config(&self) -> PathBuf {
        self.0.join("daemon.json")
    }
    pub fn log(&self) -> PathBuf {
        self.0.join("daemon.log")
    }
    pub fn timings(&self) -> PathBuf {
        self.0.join("timings.jsonl")
    }
    pub fn pool_stats(&self) -> PathBuf {
        self.0.join("pools.json")
    }
    pub fn pool_parents(&self) -> PathBuf {
        self.0.join("pool-parents.json")
    }
    pub fn zygotes_log(&self) -> PathBuf {
        self.0.join("zygotes.log")
    }
    pub fn wasm_cache_stats(&self) -> PathBuf {
        self.0.join("wasm-cache.json")
    }
    pub fn tasks(&self) -> PathBuf {
        self.0.join("tasks")
    }
    pub fn task(&self, id: &str) -> TaskDir {
        TaskDir(self.tasks().join(id))
    }
}

/// The directory of one task:
///
/// ```text
/// tasks/<id>/task.json       static config, written by the daemon before the monitor starts
///            state.json      processes and exit statuses, written atomically by the monitor
///            monitor.sock    the monitor's socket, for a restarted daemon
///            monitor.log     the monitor's log
///            reserve         space given back to save state.json on a full filesystem
///            waits.json      containerd's pending Waits (for a restarted daemon)
///            exit-published[.<exec id>]  a TaskExit went out for that process
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDir(PathBuf);

impl TaskDir {
    /// A task directory given by path (`__monitor <dir>`, a zygote's claim).
    pub fn at(path: impl Into<PathBuf>) -> TaskDir {
        TaskDir(path.into())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn config(&self) -> PathBuf {
        self.0.join("task.json")
    }
    pub fn state(&self) -> PathBuf {
        self.0.join("state.json")
    }
    pub fn monitor_socket(&self) -> PathBuf {
        self.0.join("monitor.sock")
    }
    pub fn monitor_log(&self) -> PathBuf {
        self.0.join("monitor.log")
    }
    pub fn reserve(&self) -> PathBuf {
        self.0.join("reserve")
    }
    pub fn waits(&self) -> PathBuf {
        self.0.join("waits.json")
    }
    /// The marker of one process: `exit-published` for the init,
    /// `exit-published.<exec id>` for an exec.
    pub fn exit_marker(&self, exec_id: Option<&str>) -> PathBuf {
        match exec_id {
            None => self.0.join("exit-published"),
            Some(e) => self.0.join(format!("exit-published.{e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_dir_is_stable_and_distinct() {
        let a = DaemonDir::for_containerd(Path::new("/run/zygote"), "/run/containerd/containerd.sock.ttrpc");
        let b = DaemonDir::for_containerd(Path::new("/run/zygote"), "/tmp/x/containerd.sock.ttrpc");
        assert_ne!(a, b);
        assert_eq!(
            a,
            DaemonDir::for_containerd(Path::new("/run/zygote"), "/run/containerd/containerd.sock.ttrpc")
        );
        assert_eq!(a.tag().len(), 16);
        assert_eq!(a.task("x").state(), a.path().join("tasks/x/state.json"));
    }
}

//! Files a task keeps on disk, under `<daemon dir>/tasks/<id>/`.
//!
//! * `task.json` ([`TaskConfig`]): written once by the daemon before it
//!   spawns the monitor; everything needed to re-adopt or clean up the task.
//! * `state.json` ([`Snapshot`]): written by the monitor, atomically
//!   (write to a temp file, fsync, rename) on every state change, so an exit
//!   status is on disk before anybody is told about it.
//! * `monitor.sock`: the monitor's listening socket, for a restarted daemon.
//! * `exit-published[.<exec id>]`: markers the daemon writes once a
//!   TaskExit was queued for containerd.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const TASK_FILE: &str = "task.json";
pub const STATE_FILE: &str = "state.json";
pub const MONITOR_SOCKET: &str = "monitor.sock";
pub const EXIT_PUBLISHED: &str = "exit-published";

/// The marker for one process: `exit-published` for the init,
/// `exit-published.<exec id>` for an exec.
pub fn exit_marker(exec_id: Option<&str>) -> String {
    match exec_id {
        None => EXIT_PUBLISHED.to_string(),
        Some(e) => format!("{EXIT_PUBLISHED}.{e}"),
    }
}

/// containerd's stdio for one process, as given in Create or Exec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// The static description of a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskConfig {
    pub id: String,
    pub namespace: String,
    pub bundle: PathBuf,
    /// Host path of the container's root filesystem.
    pub rootfs: PathBuf,
    /// True when the daemon mounted `rootfs` from the Create request and so
    /// must unmount it on delete.
    pub rootfs_mounted: bool,
    pub stdio: StdioPaths,
    /// containerd's ttrpc address, where events go.
    pub ttrpc_address: String,
    /// The daemon's directory (its socket, its lock, its log).
    pub daemon_dir: PathBuf,
    /// The shim binary, used by a monitor to restart a dead daemon.
    pub exe: PathBuf,
    /// The profile the task was created with.
    #[serde(default)]
    pub profile: String,
    /// `linux.resources` with the profile's defaults filled in; the spec's
    /// own when `None`.
    #[serde(default)]
    pub resources: Option<oci_spec::runtime::LinuxResources>,
    /// Seccomp compiled by the daemon (spec and profile) and the profile's
    /// Landlock policy; `None` means "compile the spec's filter here".
    #[serde(default)]
    pub security: Option<zygote_runtime::security::Security>,
    /// Set for a WebAssembly task: what the daemon resolved and compiled.
    #[serde(default)]
    pub guest: Option<zygote_runtime::guest::GuestTask>,
}

/// Lifecycle of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Created,
    Running,
    Stopped,
}

/// One process as the monitor last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcState {
    pub pid: i32,
    pub status: Status,
    pub exit_status: Option<i32>,
    /// Wall clock (ns since the epoch) of the exit.
    pub exited_at_ns: Option<i64>,
}

/// Everything the monitor knows about its task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub init: ProcState,
    pub execs: BTreeMap<String, ProcState>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: malformed: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io { path: path.to_path_buf(), source }
}

/// Writes `value` as JSON to `path` atomically (temp file + rename).
///
/// No fsync: these files must survive the death of a process, which the
/// page cache guarantees; after a machine crash the containers they
/// describe are gone too (and `/run` is a tmpfs anyway).
pub fn write_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let tmp = path.with_extension("tmp");
    let body = serde_json::to_vec(value).map_err(|source| StateError::Json { path: path.into(), source })?;
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(&body).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Reads a JSON file written by [`write_atomic`].
pub fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, StateError> {
    let body = std::fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&body).map_err(|source| StateError::Json { path: path.into(), source })
}

/// Current CLOCK_MONOTONIC in nanoseconds (comparable across processes).
pub fn monotonic_ns() -> i64 {
    let t =
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap_or(nix::sys::time::TimeSpec::new(0, 0));
    t.tv_sec() * 1_000_000_000 + t.tv_nsec()
}

/// Wall clock in nanoseconds since the Unix epoch.
pub fn wall_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(STATE_FILE);
        let s = Snapshot {
            init: ProcState { pid: 7, status: Status::Stopped, exit_status: Some(3), exited_at_ns: Some(1) },
            execs: BTreeMap::new(),
        };
        write_atomic(&p, &s).unwrap();
        assert_eq!(read::<Snapshot>(&p).unwrap(), s);
        assert!(!p.with_extension("tmp").exists());
    }

    #[test]
    fn malformed_state_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(STATE_FILE);
        std::fs::write(&p, b"{").unwrap();
        let e = read::<Snapshot>(&p).unwrap_err().to_string();
        assert!(e.contains("state.json"), "{e}");
    }
}

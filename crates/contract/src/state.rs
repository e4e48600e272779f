//! A task's files (where they are: [`crate::layout::TaskDir`]):
//!
//! * `task.json` ([`TaskConfig`]): written once by the daemon before it
//!   spawns the monitor; everything needed to re-adopt or clean up the task.
//! * `state.json` ([`Snapshot`]): written by the monitor, atomically
//!   (write to a temp file, rename) on every state change, so an exit
//!   status is on disk before anybody is told about it.
//! * the reserve ([`make_reserve`]): space given back when the state dir is
//!   full, so an exit status still reaches the disk.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::layout::{DaemonDir, TaskDir};

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
    pub daemon_dir: DaemonDir,
    /// The shim binary, used by a monitor to restart a dead daemon.
    pub exe: PathBuf,
    /// The profile the task was created with.
    #[serde(default)]
    pub profile: String,
    /// The container has a pid namespace of its own (killing its init kills
    /// all of it); otherwise its processes are those in its cgroup.
    #[serde(default)]
    pub private_pidns: bool,
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
    /// The process's start time (`/proc/<pid>/stat` field 22, clock ticks
    /// since boot): tells it apart from a later process given the same pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
}

impl ProcState {
    /// A process just created, at its exec barrier.
    pub fn created(pid: i32) -> ProcState {
        ProcState {
            pid,
            status: Status::Created,
            exit_status: None,
            exited_at_ns: None,
            start_time: start_time(pid),
        }
    }
}

/// The start time of process `pid` (clock ticks since boot), if it exists.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may contain spaces and parentheses: fields start after the last ')'.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// Everything the monitor knows about its task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub init: ProcState,
    pub execs: BTreeMap<String, ProcState>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: malformed")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl StateError {
    /// The filesystem is full (or over quota).
    pub fn is_no_space(&self) -> bool {
        matches!(self, StateError::Io { source, .. } if matches!(source.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)))
    }
}

/// Size of a task's reserve: one page. `state.json` is far smaller, and a
/// rename frees the old copy's page.
const RESERVE_BYTES: usize = 4096;

/// Takes the task's reserve (best effort: on a full filesystem there is
/// nothing to take).
pub fn make_reserve(dir: &TaskDir) {
    let path = dir.reserve();
    if std::fs::write(&path, [0u8; RESERVE_BYTES]).is_err() {
        let _ = std::fs::remove_file(&path);
    }
}

/// Gives the task's reserve back; true if there was one.
pub fn release_reserve(dir: &TaskDir) -> bool {
    std::fs::remove_file(dir.reserve()).is_ok()
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `value` as JSON to `path` atomically (temp file + rename).
///
/// No fsync: these files must survive the death of a process, which the
/// page cache guarantees; after a machine crash the containers they
/// describe are gone too (and `/run` is a tmpfs anyway).
///
/// The temp file's name is unique per process and call, so concurrent
/// writers of one file never rename each other's half-written copy; the
/// last rename wins whole. A failed write leaves no temp file behind.
pub fn write_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    let body = serde_json::to_vec(value).map_err(|source| StateError::Json {
        path: path.into(),
        source,
    })?;
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&body))
        .map_err(io_err(&tmp))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(io_err(path)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Reads a JSON file written by [`write_atomic`].
pub fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, StateError> {
    let body = std::fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&body).map_err(|source| StateError::Json {
        path: path.into(),
        source,
    })
}

/// Current CLOCK_MONOTONIC in nanoseconds (comparable across processes).
pub fn monotonic_ns() -> i64 {
    let t =
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap_or(nix::sys::time::TimeSpec::new(0, 0));
    t.tv_sec() * 1_000_000_000 + t.tv_nsec()
}

/// Wall clock in nanoseconds since the Unix epoch.
pub fn wall_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        let s = Snapshot {
            init: ProcState {
                pid: 7,
                status: Status::Stopped,
                exit_status: Some(3),
                exited_at_ns: Some(1),
                start_time: Some(9),
            },
            execs: BTreeMap::new(),
        };
        write_atomic(&p, &s).unwrap();
        assert_eq!(read::<Snapshot>(&p).unwrap(), s);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("state.json")], "no temp file left");
    }

    #[test]
    fn start_time_is_read_after_the_command() {
        let me = std::process::id() as i32;
        let t = start_time(me).expect("our own start time");
        assert_eq!(start_time(me), Some(t));
        assert_eq!(start_time(i32::MAX), None);
    }

    #[test]
    fn concurrent_atomic_writes_never_fail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("counters.json");
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let p = &p;
                s.spawn(move || {
                    for i in 0..200u64 {
                        write_atomic(p, &(t, i)).expect("concurrent write");
                    }
                });
            }
        });
        let (_, i): (u64, u64) = read(&p).unwrap();
        assert_eq!(i, 199);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "only the file itself remains"
        );
    }

    #[test]
    fn malformed_state_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        std::fs::write(&p, b"{").unwrap();
        let e = read::<Snapshot>(&p).unwrap_err().to_string();
        assert!(e.contains("state.json"), "{e}");
    }
}

//! Where the daemon keeps its files.
//!
//! One daemon serves one containerd (one node): its directory is
//! `$ZYGOTE_STATE_DIR` (default `/run/zygote`) joined with a stable hash of
//! containerd's ttrpc address, so a private test containerd gets its own
//! daemon and a node's containerd always finds the same one again.
//!
//! ```text
//! <dir>/daemon.sock     ttrpc socket containerd dials (the shim "address")
//! <dir>/daemon.lock     flock held by the one live daemon
//! <dir>/daemon.pid      its pid
//! <dir>/daemon.log      its log
//! <dir>/timings.jsonl   per-task latency records (Create → exec)
//! <dir>/tasks/<id>/     per task: task.json, state.json, monitor.sock, monitor.log
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

/// The daemon directory for the containerd at `ttrpc_address`.
pub fn daemon_dir(state_root: &Path, ttrpc_address: &str) -> PathBuf {
    state_root.join(format!("{:016x}", fnv1a(ttrpc_address)))
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

pub fn socket(dir: &Path) -> PathBuf {
    dir.join("daemon.sock")
}
pub fn lock(dir: &Path) -> PathBuf {
    dir.join("daemon.lock")
}
pub fn pid_file(dir: &Path) -> PathBuf {
    dir.join("daemon.pid")
}
pub fn log(dir: &Path) -> PathBuf {
    dir.join("daemon.log")
}
pub fn timings(dir: &Path) -> PathBuf {
    dir.join("timings.jsonl")
}
pub fn tasks(dir: &Path) -> PathBuf {
    dir.join("tasks")
}
pub fn task(dir: &Path, id: &str) -> PathBuf {
    tasks(dir).join(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_dir_is_stable_and_distinct() {
        let a = daemon_dir(Path::new("/run/zygote"), "/run/containerd/containerd.sock.ttrpc");
        let b = daemon_dir(Path::new("/run/zygote"), "/tmp/x/containerd.sock.ttrpc");
        assert_ne!(a, b);
        assert_eq!(
            a,
            daemon_dir(Path::new("/run/zygote"), "/run/containerd/containerd.sock.ttrpc")
        );
        assert_eq!(a.file_name().unwrap().len(), 16);
    }
}

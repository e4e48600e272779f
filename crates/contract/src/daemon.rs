//! Starting the daemon, and what it reads when it starts.
//!
//! `containerd-shim-zygote-v1 start` starts the node's daemon when its
//! socket does not answer; a monitor whose daemon died starts a new one.
//! Both run `<exe> __daemon <daemon dir>` detached, through [`spawn`]; the
//! daemon reads [`DaemonConfig`] from `daemon.json`, written by `start`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::layout::DaemonDir;

/// Written by `start` in the daemon dir: what a daemon started by a
/// monitor (which knows only the directory) needs to know.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonConfig {
    pub ttrpc_address: String,
    /// `oom_score_adj` for the daemon, and through it every monitor and
    /// container that does not set its own: containerd's plus one, like
    /// containerd's shims (so under memory pressure the kernel picks a
    /// container before containerd).
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
}

/// True when process `pid` exists and has not exited (its main thread is
/// neither a zombie nor dead). A killed daemon's main thread is a zombie
/// while its other threads still hold its sockets and lock.
pub fn process_alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the last ')' (the command name may hold any byte).
    let state = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

/// Starts `<exe> __daemon <dir>` with no stdio; it detaches itself
/// (`setsid`) and holds the directory's lock, so starting one while another
/// runs is harmless (the second exits at once).
pub fn spawn(exe: &Path, dir: &DaemonDir) -> std::io::Result<std::process::Child> {
    std::process::Command::new(exe)
        .arg("__daemon")
        .arg(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
}

#[cfg(test)]
mod tests {
    use super::process_alive;

    #[test]
    fn a_zombie_is_not_alive() {
        assert!(process_alive(std::process::id() as i32));
        let mut child = std::process::Command::new("true").spawn().expect("spawn true");
        let pid = child.id() as i32;
        // Not reaped yet: once it has exited it is a zombie, and not alive.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while process_alive(pid) {
            assert!(std::time::Instant::now() < deadline, "child {pid} did not exit");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            std::fs::metadata(format!("/proc/{pid}")).is_ok(),
            "zombie {pid} still listed"
        );
        child.wait().expect("reap");
        assert!(!process_alive(pid));
    }
}

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

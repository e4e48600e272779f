//! Restarting containerd so it reads its new config, and waiting for its
//! CRI socket to answer again.
//!
//! - `systemd`: `nsenter -t 1 -m -u -i -n -p -- systemctl restart <unit>`,
//!   the host's systemd through PID 1's namespaces (the DaemonSet runs
//!   with `hostPID`); on a host root of `/` outside a container the
//!   nsenter is a no-op hop.
//! - `signal`: SIGTERM to containerd (the pid given, else the one process
//!   whose `comm` is `containerd`), wait until it is gone; its supervisor
//!   (systemd `Restart=always`, k3s, a test) starts it again, and the
//!   installer waits for the socket. This mode is honest only with such a
//!   supervisor: without one, the socket wait fails and the install is
//!   rolled back (the config restored; containerd stays down).
//! - `none`: nothing; the caller restarts containerd (the probe is
//!   skipped, since containerd still runs the old config).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Restart {
    Systemd,
    Signal,
    None,
}

/// Restarts containerd as `how` says. For `signal`, returns the parent of
/// the containerd it stopped (its supervisor), to find the new one with
/// [`containerd_child_of`].
pub fn restart(how: Restart, unit: &str, pid: Option<i32>) -> Result<Option<i32>> {
    match how {
        Restart::None => Ok(None),
        Restart::Systemd => {
            let out = Command::new("nsenter")
                .args([
                    "-t",
                    "1",
                    "-m",
                    "-u",
                    "-i",
                    "-n",
                    "-p",
                    "--",
                    "systemctl",
                    "restart",
                    unit,
                ])
                .output()
                .map_err(|e| restart_err("systemd", format!("running nsenter: {e}")))?;
            if !out.status.success() {
                return Err(restart_err(
                    "systemd",
                    format!(
                        "systemctl restart {unit}: {}: {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                ));
            }
            Ok(None)
        }
        Restart::Signal => {
            let pid = match pid {
                Some(p) => p,
                None => find_containerd(None)?,
            };
            let parent = ppid(pid);
            tracing::info!(pid, "sending SIGTERM to containerd");
            kill(Pid::from_raw(pid), Signal::SIGTERM).map_err(|e| restart_err("signal", format!("kill {pid}: {e}")))?;
            let deadline = Instant::now() + Duration::from_secs(60);
            while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
                if Instant::now() > deadline {
                    return Err(restart_err(
                        "signal",
                        format!("containerd {pid} still runs 60 s after SIGTERM"),
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(parent)
        }
    }
}

fn restart_err(how: &str, problem: String) -> Error {
    Error::Restart {
        how: how.into(),
        problem,
    }
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// The containerd its supervisor `parent` started again after a restart.
pub fn containerd_child_of(parent: i32) -> Result<i32> {
    find_containerd(Some(parent))
}

/// The one process named `containerd` (child of `parent` if given).
fn find_containerd(parent: Option<i32>) -> Result<i32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").map_err(crate::error::io("/proc"))?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "containerd")
            && parent.is_none_or(|p| ppid(pid) == Some(p))
        {
            found.push(pid);
        }
    }
    match found[..] {
        [pid] => Ok(pid),
        [] => Err(restart_err("signal", "no containerd process found".into())),
        _ => Err(restart_err(
            "signal",
            format!("several containerd processes ({found:?}); pass --containerd-pid"),
        )),
    }
}

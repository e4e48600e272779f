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

/// Restarts containerd as `how` says.
pub fn restart(how: Restart, unit: &str, pid: Option<i32>) -> Result<()> {
    match how {
        Restart::None => Ok(()),
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
            Ok(())
        }
        Restart::Signal => {
            let pid = match pid {
                Some(p) => p,
                None => find_containerd()?,
            };
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
            Ok(())
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

/// The one process named `containerd`.
fn find_containerd() -> Result<i32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").map_err(crate::error::io("/proc"))?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "containerd") {
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

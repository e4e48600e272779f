//! Host processes and `/proc`: liveness that ignores zombies, signals, a host
//! `sleep` whose namespaces containers join ([`HostProcess`]), namespace
//! links, interface lists, per-process resource counts ([`proc_stats`]), the
//! live zygote daemons, and process searches by command line.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::env::env;

/// True if the process exists and is not a zombie (pid 1 of this VM reaps
/// orphans lazily, so `kill -0` is not enough).
pub fn proc_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // The state follows the last ')' (comm may contain spaces/parens).
            let state = s.rfind(')').and_then(|i| s[i + 1..].split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

pub fn wait_proc_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while proc_alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    true
}

pub fn send_signal(pid: u32, sig: i32) -> bool {
    // SAFETY: plain kill(2); pid is a positive process id.
    unsafe { libc::kill(pid as libc::pid_t, sig) == 0 }
}

/// A `sleep` on the host whose namespaces a container can join
/// (`--with-ns network:/proc/<pid>/ns/net`); killed on drop.
pub struct HostProcess {
    child: Child,
}

impl HostProcess {
    pub fn sleeper() -> HostProcess {
        let child = Command::new("sleep")
            .arg("600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        HostProcess { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn ns_path(&self, ns: &str) -> String {
        format!("/proc/{}/ns/{ns}", self.pid())
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `readlink /proc/<pid>/ns/<ns>` e.g. `net:[4026531833]`.
pub fn ns_link(pid: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{ns}: {e}"))
}

/// Interface names from a `/proc/net/dev` text.
pub fn net_dev_interfaces(text: &str) -> BTreeSet<String> {
    text.lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|s| s.trim().to_string())
        .collect()
}

/// Threads, open fds and RSS of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStats {
    pub threads: u64,
    pub fds: u64,
    pub rss_kib: u64,
}

pub fn proc_stats(pid: u32) -> Option<ProcStats> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l[name.len()..].split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    let threads = field("Threads:")?;
    let rss_kib = field("VmRSS:").unwrap_or(0);
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(ProcStats { threads, fds, rss_kib })
}

/// Live zygote daemons: (pid file, pid) from `$ZYGOTE_STATE_DIR/*/daemon.pid`.
pub fn zygote_daemons() -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(&env().state_dir) else {
        return out;
    };
    for entry in rd.flatten() {
        let pid_file = entry.path().join("daemon.pid");
        if let Ok(s) = fs::read_to_string(&pid_file) {
            if let Ok(pid) = s.trim().parse::<u32>() {
                if proc_alive(pid) {
                    out.push((pid_file, pid));
                }
            }
        }
    }
    out
}

/// All processes (not zombies, not this test process) whose command line
/// contains `needle`: "pid: cmdline".
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for entry in rd.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if raw.is_empty() {
            continue;
        }
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmd.contains(needle) && proc_alive(pid) {
            out.push(format!("{pid}: {}", cmd.trim_end()));
        }
    }
    out
}

/// Count processes whose executable name starts with `prefix` and whose
/// command line mentions `needle`.
pub fn count_processes(exe_prefix: &str, needle: &str) -> usize {
    let Ok(rd) = fs::read_dir("/proc") else {
        return 0;
    };
    rd.flatten()
        .filter(|e| {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                return false;
            };
            let exe = fs::read_link(format!("/proc/{pid}/exe")).ok();
            let name = exe
                .as_ref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned());
            let cmd = fs::read(format!("/proc/{pid}/cmdline"))
                .map(|r| String::from_utf8_lossy(&r).replace('\0', " "))
                .unwrap_or_default();
            name.is_some_and(|n| n.starts_with(exe_prefix)) && cmd.contains(needle) && proc_alive(pid)
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev() {
        let t = "Inter-|   Receive\n face |bytes\n    lo:    3193 29\n  eth0: 1 2\n";
        let s = net_dev_interfaces(t);
        assert_eq!(
            s.into_iter().collect::<Vec<_>>(),
            vec!["eth0".to_string(), "lo".to_string()]
        );
    }
}

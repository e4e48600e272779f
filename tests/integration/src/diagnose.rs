//! What a test prints about a task that hangs, while it still hangs (call it
//! before killing the client): what containerd says of it, the processes
//! that belong to it (found by id in their cgroup or command line) with
//! their state, wait channel and kernel stack, the task's monitor log, and
//! every line of the zygote daemons' logs and of containerd's log that
//! names it. A hang seen once in a CI run is then explained by that run's
//! output, which is all CI keeps.

use std::fs;
use std::time::Duration;

use crate::ctr::Ctr;
use crate::env::env;

/// Lines of each log that name the task, at most.
const MAX_LOG_LINES: usize = 60;

/// A report on task `id` (several lines; never panics).
pub fn diagnose_task(id: &str) -> String {
    let mut r = format!("--- diagnosis of task {id} ---\n");
    let quick = Ctr::new().with_timeout(Duration::from_secs(10));
    match quick.task(id) {
        Some(t) => r.push_str(&format!("ctr task ls: {t:?}\n")),
        None => r.push_str("ctr task ls: no such task\n"),
    }
    let c = quick.run(&["container", "info", id]);
    r.push_str(&format!("ctr container info: exit {:?}\n", c.code));
    let e = env();
    let daemon_pids: Vec<String> = fs::read_dir(&e.state_dir)
        .map(|d| {
            d.flatten()
                .filter_map(|d| fs::read_to_string(d.path().join("daemon.pid")).ok())
                .map(|p| p.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    r.push_str("processes of the task, and children of a zygote daemon still running its image (forked, not yet exec'd), as pid ppid state wchan cmdline:\n");
    for line in task_processes(id, &daemon_pids) {
        r.push_str(&format!("  {line}\n"));
    }
    let mut logs = vec![e.containerd_dir.join("containerd.log")];
    let daemons: Vec<_> = fs::read_dir(&e.state_dir)
        .map(|d| d.flatten().map(|d| d.path()).collect())
        .unwrap_or_default();
    for d in &daemons {
        let monitor_log = d.join("tasks").join(id).join("monitor.log");
        if let Ok(text) = fs::read_to_string(&monitor_log) {
            r.push_str(&format!("{}:\n{text}\n", monitor_log.display()));
        }
    }
    logs.extend(daemons.iter().map(|d| d.join("daemon.log")));
    for log in logs {
        let Ok(text) = fs::read_to_string(&log) else { continue };
        let hits: Vec<&str> = text.lines().filter(|l| l.contains(id)).collect();
        r.push_str(&format!("{} ({} lines name it", log.display(), hits.len()));
        if hits.len() > MAX_LOG_LINES {
            r.push_str(&format!(", last {MAX_LOG_LINES} shown"));
        }
        r.push_str("):\n");
        for l in &hits[hits.len().saturating_sub(MAX_LOG_LINES)..] {
            r.push_str(&format!("  {l}\n"));
        }
    }
    r
}

/// The last `n` lines of containerd's log and of every zygote daemon's log:
/// what a test failing after a daemon or containerd restart prints, since
/// the lines that explain it (a daemon starting, a connection closed) do not
/// name the task.
pub fn recent_logs(n: usize) -> String {
    let e = env();
    let mut logs = vec![e.containerd_dir.join("containerd.log")];
    if let Ok(d) = fs::read_dir(&e.state_dir) {
        logs.extend(d.flatten().map(|d| d.path().join("daemon.log")));
    }
    let mut r = String::new();
    for log in logs {
        let Ok(text) = fs::read_to_string(&log) else { continue };
        let lines: Vec<&str> = text.lines().collect();
        r.push_str(&format!("--- last {n} lines of {} ---\n", log.display()));
        for l in &lines[lines.len().saturating_sub(n)..] {
            r.push_str(&format!("  {l}\n"));
        }
    }
    r
}

/// `pid ppid state wchan cmdline` (and kernel stack) of every process whose
/// cgroup or command line names `id`, and of every child of a daemon in
/// `daemons` whose command line is the daemon's own (a fork that has not
/// exec'd: a monitor being spawned).
fn task_processes(id: &str, daemons: &[String]) -> Vec<String> {
    let daemon_cmdlines: Vec<String> = daemons.iter().map(|pid| cmdline_of(pid)).collect();
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in procs.flatten() {
        let name = p.file_name();
        let Some(pid) = name.to_str().filter(|s| s.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let dir = p.path();
        let cgroup = fs::read_to_string(dir.join("cgroup")).unwrap_or_default();
        let cmdline = cmdline_of(pid);
        let stat = fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // After the ")" closing comm: state, ppid, ...
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let mut f = rest.split_whitespace();
        let state = f.next().unwrap_or("?");
        let ppid = f.next().unwrap_or("?");
        let unexeced_fork = daemons
            .iter()
            .zip(&daemon_cmdlines)
            .any(|(d, c)| d == ppid && *c == cmdline);
        if !cgroup.contains(id) && !cmdline.contains(id) && !unexeced_fork {
            continue;
        }
        let wchan = fs::read_to_string(dir.join("wchan")).unwrap_or_default();
        out.push(format!("{pid} {ppid} {state} {wchan} {cmdline}"));
        // The kernel stack says where a blocked process waits.
        let stack = fs::read_to_string(dir.join("stack")).unwrap_or_default();
        out.extend(stack.lines().take(16).map(|l| format!("    {l}")));
    }
    out
}

/// A process's command line, arguments joined by spaces.
fn cmdline_of(pid: &str) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " ").trim().to_string())
        .unwrap_or_default()
}

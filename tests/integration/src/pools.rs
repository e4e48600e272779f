//! The zygote daemon as the pool tests see it: which path the test pass
//! expects ([`test_path`]), the daemon's directory, its `pools.json`
//! counters and its per-task `timings.jsonl` lines, and what the pools are
//! on the node: the zygotes waiting in them ([`idle_zygotes`]) and the pool
//! cgroups none of them accounts for ([`orphan_pool_cgroups`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::env::env;

/// `ZYGOTE_TEST_PATH`: "warm" (pools filled) or "cold" (pools disabled).
/// Unset is a failure: hack/test.sh always sets it.
pub fn test_path() -> &'static str {
    match std::env::var("ZYGOTE_TEST_PATH").as_deref() {
        Ok("warm") => "warm",
        Ok("cold") => "cold",
        other => panic!("ZYGOTE_TEST_PATH must be warm or cold (hack/test.sh sets it), got {other:?}"),
    }
}

/// Panics unless this is the warm pass. Tests of filled pools call it first;
/// `hack/test.sh` names them in `--skip` on the cold pass (where every pool
/// is disabled), so they are reported as not run there instead of passing
/// without their assertions.
pub fn assert_warm_path(test: &str) {
    assert_eq!(
        test_path(),
        "warm",
        "{test} needs filled pools: hack/test.sh skips it on the cold pass (WARM_ONLY_TESTS)"
    );
}

/// The running zygote daemon's directory (the one with a `daemon.pid`).
pub fn daemon_dir() -> Option<PathBuf> {
    let rd = std::fs::read_dir(&env().state_dir).ok()?;
    rd.flatten().map(|e| e.path()).find(|p| p.join("daemon.pid").exists())
}

/// Starts the zygote daemon (with one throwaway task) if none runs: it is
/// started by containerd's first `shim start`, not before.
pub fn ensure_daemon() {
    if daemon_dir().is_none() {
        let id = crate::runtime::unique_id("start_daemon", crate::runtime::Runtime::Zygote);
        let out = crate::ctr::Ctr::new().run_rm(crate::runtime::Runtime::Zygote, &id, &[], &["true"]);
        assert!(out.success(), "{}", out.describe());
    }
    assert!(
        daemon_dir().is_some(),
        "no zygote daemon directory with a daemon.pid under {}",
        env().state_dir.display()
    );
}

/// The daemon's pool counters (`{"profiles": {name: {...}}}`).
pub fn pools_json() -> Value {
    daemon_dir()
        .and_then(|d| std::fs::read_to_string(d.join("pools.json")).ok())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

/// One counter of one profile's pool (0 when absent).
pub fn pool_counter(profile: &str, field: &str) -> u64 {
    pools_json()["profiles"][profile][field].as_u64().unwrap_or(0)
}

/// A fallback counter of one profile (0 when absent).
pub fn pool_fallbacks(profile: &str, reason: &str) -> u64 {
    pools_json()["profiles"][profile]["fallbacks"][reason]
        .as_u64()
        .unwrap_or(0)
}

/// Claims of one profile whose zygote cloned the init itself, by reason.
pub fn pool_cloned_at_claim(profile: &str, reason: &str) -> u64 {
    pools_json()["profiles"][profile]["cloned_at_claim"][reason]
        .as_u64()
        .unwrap_or(0)
}

/// Polls `f` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The daemon's timing line of task `id` (written when it started).
pub fn timing(id: &str) -> Option<Value> {
    let dir = daemon_dir()?;
    let text = std::fs::read_to_string(dir.join("timings.jsonl")).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["id"] == id)
}

/// Process ids of the `__zygote` processes of this test run's daemon
/// (their argument names the daemon's directory).
pub fn zygote_pids() -> Vec<i32> {
    zygote_pids_under(&env().state_dir)
}

/// [`zygote_pids`] of the daemons under another state root (a
/// [`crate::PrivateContainerd`]'s).
pub fn zygote_pids_under(state_root: &std::path::Path) -> Vec<i32> {
    let ours = state_root.to_string_lossy().into_owned();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
                    args.get(1) == Some(&b"__zygote".as_slice())
                        && args.get(2).is_some_and(|a| String::from_utf8_lossy(a).contains(&ours))
                })
                .unwrap_or(false)
        })
        .collect()
}

/// The children of `pid` (a zygote's waiting child).
pub fn children_of(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

/// The command-line configuration of a `__zygote` process (its JSON
/// argument: `profile`, `cgroup_parent`, `daemon_dir`, ...).
fn zygote_config(pid: i32) -> Option<Value> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let arg = raw.split(|b| *b == 0).nth(2)?;
    serde_json::from_slice(arg).ok()
}

/// A zygote waiting in a pool, as `/proc` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleZygote {
    /// The zygote (`__zygote` process, child of the daemon).
    pub pid: i32,
    /// Its waiting zygote child (the pool cgroup is named after it).
    pub child: i32,
    pub profile: String,
    /// Where its child was pre-placed (`None`: not pre-placed).
    pub cgroup_parent: Option<String>,
}

/// The zygotes of this test run's daemon that wait in a pool: `__zygote`
/// processes (see [`zygote_pids`]) whose only child is a `__zygote` process,
/// their waiting zygote child. A claimed zygote stays a `__zygote` process
/// (the task's monitor) but its child is the container, so it is not
/// counted; a zygote still starting (no child yet) is not either. Depends
/// on nothing a build names differently: older builds' zygotes are found
/// the same way.
pub fn idle_zygotes() -> Vec<IdleZygote> {
    idle_zygotes_under(&env().state_dir)
}

/// [`idle_zygotes`] of the daemons under another state root.
pub fn idle_zygotes_under(state_root: &std::path::Path) -> Vec<IdleZygote> {
    let pids = zygote_pids_under(state_root);
    let mut out: Vec<IdleZygote> = pids
        .iter()
        .filter_map(|&pid| {
            let children = children_of(pid);
            let [child] = children[..] else { return None };
            if !pids.contains(&child)
                || !crate::process::proc_alive(pid as u32)
                || !crate::process::proc_alive(child as u32)
            {
                return None;
            }
            let cfg = zygote_config(pid)?;
            Some(IdleZygote {
                pid,
                child,
                profile: cfg["profile"].as_str().unwrap_or_default().to_string(),
                cgroup_parent: cfg["cgroup_parent"].as_str().map(str::to_string),
            })
        })
        .collect();
    out.sort_by_key(|z| z.pid);
    out
}

/// `pools.json` summed over every profile: (idle, spawning).
pub fn pool_totals() -> (u64, u64) {
    let v = pools_json();
    let Some(profiles) = v["profiles"].as_object() else {
        return (0, 0);
    };
    profiles.values().fold((0, 0), |(i, s), p| {
        (
            i + p["idle"].as_u64().unwrap_or(0),
            s + p["spawning"].as_u64().unwrap_or(0),
        )
    })
}

/// The zygote child a pool cgroup is named after: the number at the end of
/// `zygote@<daemon dir name>-<pid>` (older builds: `zygote@<pid>`).
pub fn pool_cgroup_pid(path: &std::path::Path) -> Option<i32> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    name.strip_prefix("zygote@")?.rsplit('-').next()?.parse().ok()
}

/// The pool cgroups of the daemon in `daemon_dir`, wherever they are in any
/// hierarchy (up to 6 levels down): directories named
/// `zygote@<daemon dir name>-<pid>` (crates/contract/src/zygote.rs). The
/// daemon dir's name is a hash of its containerd's address, so another
/// containerd's daemon on the node never has these names.
pub fn daemon_pool_cgroups(daemon_dir: &std::path::Path) -> Vec<String> {
    let tag = daemon_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| panic!("daemon dir {} has no name", daemon_dir.display()));
    let stem = format!("zygote@{tag}-");
    crate::leftovers::cgroups_named(&stem)
        .into_iter()
        .filter(|p| p.rsplit('/').next().is_some_and(|n| n.starts_with(&stem)))
        .collect()
}

/// The processes in a cgroup directory (`cgroup.procs`).
pub fn cgroup_pids(dir: &std::path::Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

/// Pool cgroups ([`crate::leftovers::pool_cgroups`]) that belong to no
/// waiting zygote: named after a process that is not the child of a live
/// idle zygote ([`idle_zygotes`]), or empty. One line per directory, with
/// the reason; empty when every pool cgroup is accounted for.
pub fn orphan_pool_cgroups() -> Vec<String> {
    let children: Vec<i32> = idle_zygotes().iter().map(|z| z.child).collect();
    crate::leftovers::pool_cgroups()
        .into_iter()
        .filter_map(|dir| {
            let procs = cgroup_pids(&dir);
            let why = match pool_cgroup_pid(&dir) {
                None => "not named after a zygote".to_string(),
                Some(pid) if !children.contains(&pid) => {
                    format!("zygote child {pid} is not waiting in a pool (procs {procs:?})")
                }
                Some(_) if procs.is_empty() => "empty".to_string(),
                Some(_) => return None,
            };
            Some(format!("{}: {why}", dir.display()))
        })
        .collect()
}

/// The live zygote daemon of this test run and its open fd count.
pub fn daemon_fds() -> Option<(u32, u64)> {
    let (_, pid) = crate::process::zygote_daemons().into_iter().next()?;
    Some((pid, crate::process::proc_stats(pid)?.fds))
}

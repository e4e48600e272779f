//! The zygote daemon as the pool tests see it: which path the test pass
//! expects ([`test_path`]), the daemon's directory, its `pools.json`
//! counters and its per-task `timings.jsonl` lines.

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
    assert!(daemon_dir().is_some(), "no zygote daemon directory with a daemon.pid under {}", env().state_dir.display());
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
    pools_json()["profiles"][profile]["fallbacks"][reason].as_u64().unwrap_or(0)
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
    let ours = env().state_dir.to_string_lossy().into_owned();
    let Ok(rd) = std::fs::read_dir("/proc") else { return Vec::new() };
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

//! Pools gated by node pressure (PSI), live: a private containerd and
//! zygote daemon with a profile whose zygotes are recycled every 2 s (so
//! births never stop on their own) and one low pressure threshold. A CPU
//! hog (busy loops; needs a node not already CPU-saturated) or a memory hog (readers of a file thrashing against
//! a memory-limited cgroup, which stalls on reclaim and refaults: node
//! memory PSI), each in a cgroup the test creates, must close the gate:
//! no birth while it is closed (`pools.json`: `created` stands still while
//! `births_deferred_by_pressure` grows), idle zygotes released under
//! memory pressure, and births resuming once the hog is gone. Waits are
//! for states, with generous timeouts; nothing is timed. Where the daemon
//! could arm PSI triggers (root), its log must say so.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use zygote_integration_tests::*;

const Z: Runtime = Runtime::Zygote;
const PROFILE: &str = "psi";

fn write_config(dir: &Path, cpu_some: f64, memory_some: f64, max_age_secs: u64) -> PathBuf {
    let path = dir.join("pressure.toml");
    std::fs::write(
        &path,
        format!(
            "[profiles.default.pool]\nmin = 0\ninitial = 0\nmax = 0\n\
             [profiles.psi.pool]\nmin = 0\ninitial = 2\nmax = 2\nmax_age_secs = {max_age_secs}\n\
             [profiles.psi.pool.pressure]\ncpu_some = {cpu_some:.1}\nmemory_some = {memory_some:.1}\nio_some = 100.0\n\
             [metrics]\nenabled = false\n"
        ),
    )
    .unwrap();
    path
}

fn daemon_dir(state: &Path) -> Option<PathBuf> {
    std::fs::read_dir(state)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("daemon.pid").exists())
}

fn pool(state: &Path) -> Value {
    daemon_dir(state)
        .and_then(|d| std::fs::read_to_string(d.join("pools.json")).ok())
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .map(|v| v["profiles"][PROFILE].clone())
        .unwrap_or(Value::Null)
}

fn num(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

fn gate(v: &Value) -> Vec<String> {
    v["pressure_gate"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn deferred(v: &Value, resource: &str) -> u64 {
    v["births_deferred_by_pressure"][resource].as_u64().unwrap_or(0)
}

fn daemon_log(state: &Path) -> String {
    daemon_dir(state)
        .and_then(|d| std::fs::read_to_string(d.join("daemon.log")).ok())
        .unwrap_or_default()
}

fn now_unix() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Processes in a cgroup of the test's own (v1 `controller` hierarchy, or
/// the v2 root); killed and the cgroup removed on drop, on every path.
struct Hog {
    cgroup: PathBuf,
    children: Vec<Child>,
}

impl Hog {
    /// A cgroup `zt-psi-<what>-<pid>` with `limits` (file, value) written.
    fn cgroup(controller: &str, what: &str, limits: &[(&str, String)]) -> Hog {
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let root = if v2 {
            PathBuf::from("/sys/fs/cgroup")
        } else {
            Path::new("/sys/fs/cgroup").join(controller)
        };
        let cgroup = root.join(format!("zt-psi-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&cgroup).unwrap();
        let hog = Hog {
            cgroup,
            children: Vec::new(),
        };
        for (file, value) in limits {
            std::fs::write(hog.cgroup.join(file), value).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        hog
    }

    /// Runs `script` (sh) inside the cgroup, `n` times.
    fn run(&mut self, n: usize, script: &str) {
        for _ in 0..n {
            let child = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "echo $$ > {}/cgroup.procs && exec sh -c '{script}'",
                    self.cgroup.display()
                ))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            self.children.push(child);
        }
    }

    fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.cgroup.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.pids().is_empty() && Instant::now() < deadline {
            let pids: Vec<String> = self.pids().iter().map(i32::to_string).collect();
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(&pids)
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Err(e) = std::fs::remove_dir(&self.cgroup) {
            eprintln!("warning: cannot remove {}: {e}", self.cgroup.display());
        }
    }
}

/// Waits until the gate is closed by `resource`, then until no birth is in
/// flight, and sees `rounds` more deferred rounds with the gate closed the
/// whole time and `created` unchanged.
fn births_stop(state: &Path, resource: &str) {
    assert!(
        wait_until(Duration::from_secs(180), || gate(&pool(state))
            .iter()
            .any(|g| g == resource)),
        "the {resource} gate never closed: {}",
        pool(state)
    );
    let ok = wait_until(Duration::from_secs(180), || {
        let first = pool(state);
        if num(&first, "spawning") != 0 || !gate(&first).iter().any(|g| g == resource) {
            return false;
        }
        // Eight more refill rounds (>= 2 s) that deferred births.
        let goal = deferred(&first, resource) + 8;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = pool(state);
            if !gate(&now).iter().any(|g| g == resource) || Instant::now() > deadline {
                return false;
            }
            if deferred(&now, resource) >= goal {
                assert_eq!(
                    num(&now, "created"),
                    num(&first, "created"),
                    "a zygote was born while the {resource} gate was closed: {first} -> {now}"
                );
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    assert!(ok, "no steady closed {resource} gate: {}", pool(state));
}

/// Once the hog is gone: the gate opens and zygotes are born again.
fn births_resume(state: &Path) {
    let before = num(&pool(state), "created");
    assert!(
        wait_until(Duration::from_secs(300), || {
            let p = pool(state);
            gate(&p).is_empty() && num(&p, "created") >= before + 2
        }),
        "births did not resume: {}",
        pool(state)
    );
}

/// A private containerd whose `psi` profile has these thresholds, its
/// daemon started (by one cold task), its pool refilled with the gates open
/// and PSI triggers armed (these tests run as root, which may arm them:
/// 1 s windows with CAP_SYS_RESOURCE, else 2 s).
fn start(tmp: &Path, cpu_some: f64, memory_some: f64, max_age_secs: u64) -> (PrivateContainerd, PathBuf) {
    assert!(
        Path::new("/proc/pressure/cpu").exists(),
        "this kernel has no PSI (/proc/pressure): boot with psi=1"
    );
    let config = write_config(tmp, cpu_some, memory_some, max_age_secs);
    let state = tmp.join("zygote");
    std::fs::create_dir_all(&state).unwrap();
    let containerd = PrivateContainerd::start_with("psi", &state, &[("ZYGOTE_CONFIG", config.to_str().unwrap())]);
    let ctr = containerd.ctr();
    let id = unique_id("psi_start", Z);
    let b = ConfigBundle::new(&id, &["true"], |_| {});
    let out = ctr.run_config(Z, &b, &id);
    let _ = ctr.run(&["container", "delete", &id]);
    assert!(out.success(), "{}", out.describe());
    // Calm: the pool fills (and, with a short max_age, keeps being refilled).
    let born = if max_age_secs <= 2 { 4 } else { 2 };
    assert!(
        wait_until(Duration::from_secs(300), || {
            let p = pool(&state);
            gate(&p).is_empty() && num(&p, "created") >= born && num(&p, "idle") >= 1
        }),
        "the pool never refilled with the gate open (node: {}): {}",
        std::fs::read_to_string("/proc/pressure/cpu").unwrap_or_default().trim(),
        pool(&state)
    );
    let log = daemon_log(&state);
    assert!(
        log.contains("PSI triggers armed"),
        "the daemon did not arm PSI triggers:\n{log}"
    );
    (containerd, state)
}

fn show_gate_log(state: &Path) {
    for line in daemon_log(state).lines().filter(|l| l.contains("pressure gate")) {
        eprintln!("{line}");
    }
    eprintln!("pool: {}", pool(state));
}

#[test]
fn refills_stop_under_cpu_pressure_and_resume_after() {
    if !require_runtime(Z, "refills_stop_under_cpu_pressure_and_resume_after") {
        return;
    }
    let _g = exclusive();
    let tmp = tempfile::Builder::new()
        .prefix("zt-psi-")
        .tempdir_in("/var/tmp")
        .unwrap();
    // Needs a node whose CPU pressure is below 90% before the hog (not one
    // busy with builds on every core).
    // Short max_age: zygotes keep being recycled, so births keep being wanted.
    let (containerd, state) = start(tmp.path(), 90.0, 100.0, 2);
    {
        let mut hog = Hog::cgroup("cpu", "cpu", &[]);
        let n = 4 * std::thread::available_parallelism().map_or(2, |n| n.get());
        eprintln!("cpu hog ({n} loops) started at {:.3}", now_unix());
        hog.run(n, "while :; do :; done");
        births_stop(&state, "cpu");
        eprintln!("cpu hog stopped at {:.3}", now_unix());
    }
    births_resume(&state);
    show_gate_log(&state);
    drop(containerd);
}

#[test]
fn refills_stop_under_memory_pressure_and_resume_after() {
    if !require_runtime(Z, "refills_stop_under_memory_pressure_and_resume_after") {
        return;
    }
    let _g = exclusive();
    let tmp = tempfile::Builder::new()
        .prefix("zt-psi-")
        .tempdir_in("/var/tmp")
        .unwrap();
    // Long max_age: only the memory gate can empty the pool (a 2 s max_age
    // recycled the zygotes before the gate released them, once in CI).
    let (containerd, state) = start(tmp.path(), 100.0, 10.0, 600);
    // Readers of a 48 MiB file in a 32 MiB cgroup (dropped from the page
    // cache first, so its pages are charged to the hog's cgroup).
    let file = tmp.path().join("thrash.bin");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c {} /dev/urandom > {f} && sync && dd if={f} iflag=nocache count=0 2>/dev/null",
            48 << 20,
            f = file.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    {
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let limit = if v2 { "memory.max" } else { "memory.limit_in_bytes" };
        let mut hog = Hog::cgroup("memory", "mem", &[(limit, (32u64 << 20).to_string())]);
        eprintln!("memory hog started at {:.3}", now_unix());
        hog.run(3, &format!("while :; do cat {} > /dev/null; done", file.display()));
        births_stop(&state, "memory");
        let p = pool(&state);
        assert_eq!(num(&p, "idle"), 0, "idle zygotes kept under memory pressure: {p}");
        assert!(num(&p, "released_for_memory_pressure") > 0, "{p}");
        eprintln!("memory hog stopped at {:.3}", now_unix());
    }
    births_resume(&state);
    show_gate_log(&state);
    drop(containerd);
}

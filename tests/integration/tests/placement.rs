//! NUMA placement of zygotes (`pool.placement`), live: a private
//! containerd whose daemon reads a config of the test's own.
//!
//! On this machine's real topology (`/sys`), `placement = "spread"` places
//! nothing on a single node: a born zygote's `Cpus_allowed_list` is node
//! 0's `cpulist` (each placed zygote's is its node's where there are more),
//! and a task served through it sees the CPUs a runc task sees.
//!
//! With a fixture topology of two nodes of one CPU each
//! (`$ZYGOTE_SYSFS_ROOT`, a tempdir; needs 2 CPUs), the placement really
//! narrows: the two zygotes wait on CPU 0 and CPU 1 (node 0 and node 1 in
//! their argument, `placed` in `pools.json`), and each of two tasks served
//! warm by them sees every CPU again, as under runc (the zygote widens its
//! affinity at claim). A preferred node the machine lacks is refused by the
//! kernel: logged, and the zygote serves anyway.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use zygote_integration_tests::*;

const Z: Runtime = Runtime::Zygote;
const PROFILE: &str = "numa";

/// Prints the CPUs the process may run on, then how many.
const SHOW_CPUS: &[&str] = &["sh", "-c", "grep Cpus_allowed_list /proc/self/status; nproc"];

/// A containerd of the test's own, `extra` in its (and so the daemon's)
/// environment; its state under `dir`.
struct Node {
    containerd: PrivateContainerd,
    state: PathBuf,
}

impl Node {
    fn start(dir: &Path, extra: &[(&str, &str)]) -> Node {
        let config = dir.join("zygote.toml");
        std::fs::write(
            &config,
            format!(
                "[profiles.default.pool]\nmin = 0\ninitial = 0\nmax = 0\n\
                 [profiles.{PROFILE}.pool]\nmin = 0\ninitial = 2\nmax = 2\nplacement = \"spread\"\n\
                 [metrics]\nenabled = false\n"
            ),
        )
        .unwrap();
        let state = dir.join("s");
        std::fs::create_dir_all(&state).unwrap();
        let config = config.to_string_lossy().into_owned();
        let env: Vec<(&str, &str)> = [("ZYGOTE_CONFIG", config.as_str())]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        let containerd = PrivateContainerd::start_with("numa", &state, &env);
        Node { containerd, state }
    }

    fn daemon_dir(&self) -> PathBuf {
        std::fs::read_dir(&self.state)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("daemon.pid").exists())
            .expect("a daemon dir")
    }

    fn pool(&self) -> Value {
        std::fs::read_to_string(self.daemon_dir().join("pools.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .map_or(Value::Null, |v| v["profiles"][PROFILE].clone())
    }

    fn idle(&self) -> Vec<IdleZygote> {
        idle_zygotes_under(&self.state)
            .into_iter()
            .filter(|z| z.profile == PROFILE)
            .collect()
    }

    /// Runs [`SHOW_CPUS`] in a task of [`PROFILE`] under `rt`: its
    /// `Cpus_allowed_list` and `nproc`.
    fn task_cpus(&self, rt: Runtime, test: &str) -> (String, String) {
        let id = unique_id(test, rt);
        let b = ConfigBundle::new(&id, SHOW_CPUS, |s| {
            s["annotations"] = serde_json::json!({ "zygote.dev/profile": PROFILE });
        });
        let out = self.containerd.ctr().run_config(rt, &b, &id);
        assert!(out.success(), "{}", out.describe());
        let allowed = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap_or_else(|| panic!("no Cpus_allowed_list: {}", out.describe()))
            .trim()
            .to_string();
        let nproc = out.stdout.lines().last().unwrap_or_default().trim().to_string();
        if rt == Z {
            assert_eq!(
                self.timing_path(&id).as_deref(),
                Some("warm"),
                "{id} was not served warm"
            );
        }
        (allowed, nproc)
    }

    fn timing_path(&self, id: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.daemon_dir().join("timings.jsonl")).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["id"] == id)
            .and_then(|v| v["path"].as_str().map(str::to_string))
    }

    /// Starts the daemon (a runc task does not; one zygote task does) and
    /// waits for both zygotes.
    fn filled(&self) -> Vec<IdleZygote> {
        let id = unique_id("numa-start", Z);
        let b = ConfigBundle::new(&id, &["true"], |_| {});
        let out = self.containerd.ctr().run_config(Z, &b, &id);
        assert!(out.success(), "{}", out.describe());
        assert!(
            wait_until(Duration::from_secs(60), || self.idle().len() == 2),
            "the pool never filled: {}",
            self.pool()
        );
        self.idle()
    }
}

fn allowed_list(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:").map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no Cpus_allowed_list for {pid}"))
}

/// The `numa` of a `__zygote` process's argument (`null`: not placed).
fn numa_of(pid: i32) -> Value {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let arg = raw.split(|b| *b == 0).nth(2).unwrap_or_default();
    serde_json::from_slice::<Value>(arg).unwrap_or(Value::Null)["numa"].clone()
}

fn cpulist(sysfs: &Path, node: u64) -> String {
    std::fs::read_to_string(sysfs.join(format!("devices/system/node/node{node}/cpulist")))
        .unwrap_or_else(|e| panic!("node{node}/cpulist under {}: {e}", sysfs.display()))
        .trim()
        .to_string()
}

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("zt-numa-")
        .tempdir_in("/var/tmp")
        .unwrap()
}

#[test]
fn spread_on_this_machine_and_tasks_see_every_cpu() {
    if !require_runtime(Z, "spread_on_this_machine_and_tasks_see_every_cpu") {
        return;
    }
    let _g = exclusive();
    let dir = tmp();
    let node = Node::start(dir.path(), &[]);
    let sys = Path::new("/sys");
    let online = std::fs::read_to_string(sys.join("devices/system/node/online")).unwrap_or_else(|_| "0".into());
    for z in node.filled() {
        // One node: nothing set, node 0's CPUs; more: the chosen node's.
        let want = match numa_of(z.pid)["node"].as_u64() {
            Some(n) => cpulist(sys, n),
            None => {
                assert_eq!(
                    online.trim(),
                    "0",
                    "placed nothing on a multi-node machine: {}",
                    node.pool()
                );
                cpulist(sys, 0)
            }
        };
        assert_eq!(allowed_list(z.pid), want, "zygote {z:?}");
        assert_eq!(allowed_list(z.child), want, "zygote child {z:?}");
    }
    let runc = node.task_cpus(Runtime::Runc, "numa-runc");
    let zygote = node.task_cpus(Z, "numa-warm");
    assert_eq!(
        zygote, runc,
        "a task served by a placed zygote sees other CPUs than under runc"
    );
    drop(node);
}

#[test]
fn two_fixture_nodes_narrow_zygotes_and_claims_widen_them() {
    if !require_runtime(Z, "two_fixture_nodes_narrow_zygotes_and_claims_widen_them") {
        return;
    }
    let _g = exclusive();
    let own = allowed_list(std::process::id() as i32);
    assert!(own.starts_with("0-"), "needs CPUs 0 and 1 (this process may use {own})");
    let dir = tmp();
    // Node 0 = CPU 0, node 1 = CPU 1, half of 1 GiB free each.
    let sysfs = dir.path().join("sys");
    for (n, cpus) in [(0, "0"), (1, "1")] {
        let d = sysfs.join(format!("devices/system/node/node{n}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("cpulist"), format!("{cpus}\n")).unwrap();
        std::fs::write(
            d.join("meminfo"),
            format!("Node {n} MemTotal: 1048576 kB\nNode {n} MemFree: 524288 kB\n"),
        )
        .unwrap();
    }
    std::fs::write(sysfs.join("devices/system/node/online"), "0-1\n").unwrap();
    let node = Node::start(dir.path(), &[("ZYGOTE_SYSFS_ROOT", &sysfs.to_string_lossy())]);
    let zygotes = node.filled();
    let mut nodes: Vec<(u64, String, String)> = zygotes
        .iter()
        .map(|z| {
            let numa = numa_of(z.pid);
            let n = numa["node"]
                .as_u64()
                .unwrap_or_else(|| panic!("zygote {z:?} not placed: {numa}"));
            assert_eq!(numa["cpus"], serde_json::json!([n]), "{z:?}");
            (n, allowed_list(z.pid), allowed_list(z.child))
        })
        .collect();
    nodes.sort();
    assert_eq!(
        nodes,
        [(0, "0".into(), "0".into()), (1, "1".into(), "1".into())],
        "spread puts one zygote on each node, narrowed to its CPU"
    );
    let pool = node.pool();
    assert_eq!(pool["placed"], serde_json::json!({"0": 1, "1": 1}), "{pool}");
    if !Path::new("/sys/devices/system/node/node1").exists() {
        let log = std::fs::read_to_string(node.daemon_dir().join("zygotes.log")).unwrap_or_default();
        assert!(
            log.contains("set_mempolicy(MPOL_PREFERRED)"),
            "the refused preference for node 1 is logged:\n{log}"
        );
    }
    // Both zygotes are claimed (oldest first; refills come later), each
    // task seeing the CPUs a runc task sees.
    let runc = node.task_cpus(Runtime::Runc, "numa2-runc");
    assert_eq!(runc.0, own, "runc's task inherits containerd's CPUs");
    for i in 0..2 {
        let zygote = node.task_cpus(Z, &format!("numa2-warm{i}"));
        assert_eq!(zygote, runc, "task {i}: its CPUs were not widened back at claim");
    }
    assert!(
        zygotes.iter().all(|z| !node.idle().iter().any(|i| i.pid == z.pid)),
        "both placed zygotes were claimed: {:?} -> {:?}",
        zygotes,
        node.idle()
    );
    drop(node);
}

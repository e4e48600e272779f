//! The CRI node of this test binary ([`node`]): one private containerd with
//! the CRI plugin (`ZYGOTE_CRI=1 hack/containerd.sh start`, through the
//! integration harness's [`PrivateContainerd`]), the busybox test image
//! imported into namespace `k8s.io`, a zygote state dir of its own, and the
//! cgroup parent its pods live under. Started by the first test that asks,
//! stopped (with everything it ran) when the test binary exits
//! ([`crate::exit::at_exit`]).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use zygote_integration_tests::{cgroup_roots, run_cmd, PrivateContainerd};

/// The running node: where things are.
#[derive(Debug, Clone)]
pub struct Node {
    /// containerd's grpc socket (CRI is served on it too).
    pub address: PathBuf,
    /// The zygote daemon's state root (`ZYGOTE_STATE_DIR`).
    pub state_dir: PathBuf,
    /// containerd's directory (`root/`, `state/`, `containerd.log`).
    pub dir: PathBuf,
    /// The busybox image as CRI names it.
    pub image: String,
    /// Cgroup parent of this binary's pods (`/zcri-<pid>`), below every
    /// hierarchy root; each pod gets `<parent>/<pod uid>`.
    pub cgroup_parent: String,
}

static RUNNING: Mutex<Option<PrivateContainerd>> = Mutex::new(None);
static NODE: OnceLock<Node> = OnceLock::new();

fn required(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{name} is not set: run the CRI tests through hack/test.sh (-p zygote-cri-tests)"),
    }
}

/// The node, started on first use.
pub fn node() -> &'static Node {
    NODE.get_or_init(start)
}

fn start() -> Node {
    let image_tar = required("ZYGOTE_TEST_IMAGE_TAR");
    let base_name = required("ZYGOTE_TEST_IMAGE_BASE_NAME");
    let image = required("ZYGOTE_TEST_IMAGE");
    // The deepest state root zygote accepts (as hack/test.sh's): its
    // daemon.sock at the 107-byte limit, and CRI's 64-hex ids make every
    // monitor socket path far longer than that. ZYGOTE_CRI_STATE_DIR
    // overrides it.
    let state_dir = match std::env::var("ZYGOTE_CRI_STATE_DIR") {
        Ok(d) if !d.is_empty() => {
            std::fs::create_dir_all(&d).expect("create ZYGOTE_CRI_STATE_DIR");
            PathBuf::from(d)
        }
        _ => {
            let top = tempfile::Builder::new()
                .prefix("zcri-state-")
                .tempdir_in("/var/tmp")
                .expect("zygote state dir under /var/tmp")
                .keep();
            let base = format!("{}/run/node/zygote-state-", top.display());
            let deep = PathBuf::from(format!("{base}{}", "d".repeat(107 - 29 - base.len())));
            std::fs::create_dir_all(&deep).expect("create the zygote state dir");
            deep
        }
    };
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config/cri.toml");
    let started = std::panic::catch_unwind(|| {
        PrivateContainerd::start_with("cri", &state_dir, &[("ZYGOTE_CRI", "1"), ("ZYGOTE_CONFIG", config)])
    });
    let ctrd = match started {
        Ok(c) => c,
        Err(e) => {
            if let Some(top) = made_top(&state_dir) {
                let _ = std::fs::remove_dir_all(top);
            }
            std::panic::resume_unwind(e)
        }
    };
    crate::exit::at_exit(stop);
    let mut ctr = ctrd.ctr();
    ctr.namespace = "k8s.io".into();
    ctr.run(&["images", "import", "--base-name", &base_name, &image_tar])
        .assert_success();
    let node = Node {
        address: ctrd.dir.join("containerd.sock"),
        state_dir,
        dir: ctrd.dir.clone(),
        image,
        cgroup_parent: format!("/zcri-{}", std::process::id()),
    };
    *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) = Some(ctrd);
    node
}

/// Restarts the node's containerd as systemd would (SIGTERM, start again on
/// the same dirs and config), running `between` while it is down. Tasks,
/// shims and the zygote daemon keep running through it.
pub fn restart_containerd(between: impl FnOnce()) {
    node();
    let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    let ctrd = running.as_ref().expect("the CRI node runs");
    ctrd.restart_with(between);
}

/// At exit: stops containerd (hack/containerd.sh stop kills what is left),
/// removes the state root and this binary's cgroup parent.
fn stop() {
    let ctrd = RUNNING.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(ctrd) = ctrd {
        let state_dir = ctrd.state_dir.clone();
        drop(ctrd);
        if std::env::var("ZYGOTE_CRI_STATE_DIR").map_or(true, |d| d.is_empty()) {
            if let Some(top) = made_top(&state_dir) {
                let _ = std::fs::remove_dir_all(top);
            }
        }
    }
    if let Some(n) = NODE.get() {
        for root in cgroup_roots() {
            remove_cgroup_tree(&root.join(n.cgroup_parent.trim_start_matches('/')));
        }
    }
}

/// The `/var/tmp/zcri-state-*` directory `start` made to hold `state_dir`
/// (`<top>/run/node/zygote-state-d...`); `None` for any other state dir.
fn made_top(state_dir: &Path) -> Option<&Path> {
    state_dir.ancestors().nth(3).filter(|top| {
        top.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("zcri-state-"))
    })
}

/// Removes an (empty) cgroup directory and the empty ones below it.
pub fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

impl Node {
    /// The zygote daemon's directory (`<state root>/<16 hex>`), if it runs.
    pub fn daemon_dir(&self) -> Option<PathBuf> {
        let rd = std::fs::read_dir(&self.state_dir).ok()?;
        rd.flatten().map(|e| e.path()).find(|p| p.join("daemon.pid").exists())
    }

    /// Task directories the zygote daemon keeps for `id`.
    pub fn zygote_task_dirs(&self, id: &str) -> Vec<PathBuf> {
        let Ok(rd) = std::fs::read_dir(&self.state_dir) else {
            return Vec::new();
        };
        rd.flatten()
            .map(|e| e.path().join("tasks").join(id))
            .filter(|p| p.exists())
            .collect()
    }

    /// The daemon's `timings.jsonl` line of task `id`.
    pub fn timing(&self, id: &str) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.daemon_dir()?.join("timings.jsonl")).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["id"] == id)
    }

    /// Warm zygotes waiting in a profile's pool now (`pools.json`).
    pub fn idle(&self, profile: &str) -> u64 {
        self.pools_json()["profiles"][profile]["idle"].as_u64().unwrap_or(0)
    }

    /// A profile pool's current target size (`pools.json`).
    pub fn target(&self, profile: &str) -> u64 {
        self.pools_json()["profiles"][profile]["target"].as_u64().unwrap_or(0)
    }

    fn pools_json(&self) -> serde_json::Value {
        self.daemon_dir()
            .and_then(|d| std::fs::read_to_string(d.join("pools.json")).ok())
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// A fallback counter of a profile in the daemon's `pools.json`.
    pub fn fallbacks(&self, profile: &str, reason: &str) -> u64 {
        self.pool_counter(profile, "fallbacks", reason)
    }

    /// A counter of claims whose zygote cloned the init itself, by reason.
    pub fn cloned_at_claim(&self, profile: &str, reason: &str) -> u64 {
        self.pool_counter(profile, "cloned_at_claim", reason)
    }

    fn pool_counter(&self, profile: &str, map: &str, reason: &str) -> u64 {
        self.pools_json()["profiles"][profile][map][reason]
            .as_u64()
            .unwrap_or(0)
    }

    /// The last `n` lines of containerd's log (for failure messages).
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// `ctr -n k8s.io <args>` on this node (debugging and cross-checks).
    pub fn ctr(&self, args: &[&str]) -> zygote_integration_tests::Output {
        let mut c = std::process::Command::new("ctr");
        c.arg("--address").arg(&self.address).args(["-n", "k8s.io"]).args(args);
        run_cmd(c, Duration::from_secs(30))
    }
}

//! `zygotectl` for the tests: the built binary ([`zygotectl`], beside the
//! shim), its `--json` answers ([`json_of`]), and [`ControlledNode`], a
//! private containerd whose daemon reads a config file of the test's own
//! (for reload tests: the shared test config is never touched).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::command::{run_cmd, Output};
use crate::env::env;
use crate::pools::{idle_zygotes_under, IdleZygote};
use crate::private::PrivateContainerd;
use crate::runtime::Runtime;
use crate::spec::ConfigBundle;

/// The built `zygotectl`, beside the shim (`ZYGOTE_BIN_DIR`, set by hack/test.sh).
pub fn zygotectl_bin() -> PathBuf {
    let dir = std::env::var_os("ZYGOTE_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env().hack_dir.join("../target/release"));
    let bin = dir.join("zygotectl");
    assert!(
        bin.exists(),
        "{} not built (cargo build --release --workspace)",
        bin.display()
    );
    bin
}

/// `zygotectl <args>` (state dir from `ZYGOTE_STATE_DIR`, as the test's
/// daemon has it).
pub fn zygotectl(args: &[&str]) -> Output {
    let mut c = std::process::Command::new(zygotectl_bin());
    c.args(args);
    run_cmd(c, Duration::from_secs(30))
}

/// The JSON a successful `zygotectl ... --json` printed.
pub fn json_of(out: &Output) -> Value {
    assert!(out.success(), "{}", out.describe());
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.describe()))
}

/// A private containerd whose daemon reads `config`, a file of the test's.
pub struct ControlledNode {
    pub containerd: PrivateContainerd,
    state: tempfile::TempDir,
    pub config: PathBuf,
}

impl ControlledNode {
    /// Writes `config_text` as its config and starts its containerd (the
    /// daemon comes with the first task).
    pub fn start(config_text: &str) -> ControlledNode {
        let state = tempfile::Builder::new()
            .prefix("zt-ctl-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let config = state.path().join("zygote.toml");
        std::fs::write(&config, config_text).unwrap();
        let containerd = PrivateContainerd::start_with(
            "ctl",
            &state.path().join("s"),
            &[("ZYGOTE_CONFIG", &config.to_string_lossy())],
        );
        ControlledNode {
            containerd,
            state,
            config,
        }
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        let root = self.state.path().join("s").to_string_lossy().into_owned();
        zygotectl(&[&["--state-dir", &root, "--address", &self.containerd.address()], args].concat())
    }

    pub fn status(&self) -> Value {
        json_of(&self.ctl(&["status", "--json"]))
    }

    pub fn daemon_dir(&self) -> PathBuf {
        let rd = std::fs::read_dir(self.state.path().join("s")).expect("state dir");
        rd.flatten()
            .map(|e| e.path())
            .find(|p| p.join("daemon.pid").exists())
            .expect("a daemon dir")
    }

    /// Runs `args` in a task of `profile` (`ctr run --config`), detached
    /// or not; the bundle goes on drop.
    pub fn run(&self, id: &str, profile: &str, args: &[&str], detach: bool) -> (Output, ConfigBundle) {
        let b = ConfigBundle::new(id, args, |s| {
            s["annotations"] = serde_json::json!({ "zygote.dev/profile": profile });
        });
        let flag = if detach { "-d" } else { "--rm" };
        let out = self.containerd.ctr().run(&[
            "run",
            flag,
            "--runtime",
            Runtime::Zygote.name(),
            "--config",
            &b.config_str(),
            id,
        ]);
        (out, b)
    }

    pub fn timing_path(&self, id: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.daemon_dir().join("timings.jsonl")).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["id"] == id)
            .and_then(|v| v["path"].as_str().map(str::to_string))
    }

    pub fn idle(&self, profile: &str) -> Vec<IdleZygote> {
        idle_zygotes_under(&self.state.path().join("s"))
            .into_iter()
            .filter(|z| z.profile == profile)
            .collect()
    }
}

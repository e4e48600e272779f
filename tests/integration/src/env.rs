//! The environment `hack/test.sh` sets up: the private containerd, the
//! imported image and the zygote state dir ([`env`], read once from the
//! variables listed in the crate docs; a missing one is a test failure), and
//! `hack/containerd.sh` to act on that containerd ([`containerd_sh`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::command::{run_cmd, Output};

/// What `hack/test.sh` exported.
#[derive(Debug, Clone)]
pub struct TestEnv {
    pub containerd_dir: PathBuf,
    pub address: String,
    pub image: String,
    pub rootfs: PathBuf,
    pub namespace: String,
    pub state_dir: PathBuf,
    pub hack_dir: PathBuf,
}

const HOW_TO_RUN: &str = "the integration tests need the private containerd started by hack/test.sh; \
run e.g. `hack/test.sh` or `hack/test.sh -p zygote-integration-tests --test basic` \
(ZYGOTE_TEST_RUNTIMES=runc to exercise runc only)";

/// The test environment; panics (test failure) when a variable is missing.
pub fn env() -> &'static TestEnv {
    static ENV: OnceLock<TestEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut missing = Vec::new();
        let mut get = |name: &str| match std::env::var(name) {
            Ok(v) if !v.is_empty() => v,
            _ => {
                missing.push(name.to_string());
                String::new()
            }
        };
        let containerd_dir = get("ZYGOTE_TEST_CONTAINERD_DIR");
        let address = get("ZYGOTE_TEST_ADDRESS");
        let image = get("ZYGOTE_TEST_IMAGE");
        let rootfs = get("ZYGOTE_TEST_ROOTFS");
        let state_dir = get("ZYGOTE_STATE_DIR");
        let hack_dir = get("ZYGOTE_HACK_DIR");
        if !missing.is_empty() {
            panic!("missing environment variable(s) {missing:?}: {HOW_TO_RUN}");
        }
        let namespace = std::env::var("ZYGOTE_TEST_NAMESPACE")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "zygote-test".to_string());
        let env = TestEnv {
            containerd_dir: PathBuf::from(containerd_dir),
            address,
            image,
            rootfs: PathBuf::from(rootfs),
            namespace,
            state_dir: PathBuf::from(state_dir),
            hack_dir: PathBuf::from(hack_dir),
        };
        if !Path::new(&env.address).exists() {
            panic!(
                "ZYGOTE_TEST_ADDRESS={} does not exist (is the private containerd running?): {HOW_TO_RUN}",
                env.address
            );
        }
        if !env.rootfs.join("bin/busybox").exists() {
            panic!(
                "ZYGOTE_TEST_ROOTFS={} has no bin/busybox: {HOW_TO_RUN}",
                env.rootfs.display()
            );
        }
        env
    })
}

/// containerd's bundle directory of task `id` in the test namespace
/// (`<state>/io.containerd.runtime.v2.task/<ns>/<id>`: `config.json`, the
/// shim's `address`, ...).
pub fn bundle_dir(id: &str) -> PathBuf {
    let e = env();
    e.containerd_dir
        .join("state/io.containerd.runtime.v2.task")
        .join(&e.namespace)
        .join(id)
}

/// `hack/containerd.sh <action> <dir>` for the test containerd (e.g. "restart").
pub fn containerd_sh(action: &str) -> Output {
    let e = env();
    let mut c = Command::new("bash");
    c.arg(e.hack_dir.join("containerd.sh"))
        .arg(action)
        .arg(&e.containerd_dir);
    c.env("ZYGOTE_STATE_DIR", &e.state_dir);
    run_cmd(c, Duration::from_secs(90))
}

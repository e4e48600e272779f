//! The installer against a real, private containerd with the CRI plugin
//! (the `tests/cri` node: `ZYGOTE_CRI=1 hack/containerd.sh`, CNI, pause
//! image), of the version `hack/test.sh` puts first on `PATH`
//! (`ZYGOTE_CONTAINERD_VERSIONS`). Run with
//! `hack/test.sh -p zygote-installer --test containerd`.
//!
//! The node's config minus its zygote handlers is "the host's config";
//! the test then plays containerd's supervisor (systemd's part): it runs
//! containerd as its child and starts it again whenever it exits, so
//! `--restart signal` restarts it for real and the installer's own socket
//! wait and CRI probe run. Every path the installer writes is in a temp
//! dir (`--install-dir`, `--zygote-dir`) or the node's dir.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use toml_edit::DocumentMut;
use zygote_cri_tests::{container_config, node, pod_config, Cri, Node};
use zygote_integration_tests::{require_runtime, run_cmd, wait_until, Output, Runtime};

const INSTALLER: &str = env!("CARGO_BIN_EXE_zygote-installer");

/// Two profiles of the CRI node's config, as the chart would install.
const ZYGOTE_CONFIG: &str = "default_profile = \"default\"\n\
[profiles.default.pool]\nmin = 0\ninitial = 1\nmax = 2\n\
[profiles.open.pool]\nmin = 0\ninitial = 0\nmax = 1\n";

/// Set while the installer runs: only then does the supervisor start
/// containerd again (never after hack/containerd.sh stops it at exit).
static RESTARTS_WANTED: AtomicBool = AtomicBool::new(false);

/// containerd as the child of a thread that starts it again when it exits
/// during an installer run.
struct Supervisor {
    stop: Arc<AtomicBool>,
    pid: Arc<AtomicI32>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn spawn_containerd(n: &Node, zygote_config: &Path) -> Child {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(n.dir.join("containerd.log"))
        .expect("containerd.log");
    // The installer's --link-dir first: containerd 1.6 finds the shim on
    // PATH (it ignores runtime_path).
    let path = format!("{}:{}", link_dir().display(), std::env::var("PATH").unwrap_or_default());
    let child = {
        use std::os::unix::process::CommandExt;
        Command::new("containerd")
            .arg("--config")
            .arg(n.dir.join("config.toml"))
            .env("PATH", path)
            .env("ZYGOTE_STATE_DIR", &n.state_dir)
            .env("ZYGOTE_CONFIG", zygote_config)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawn containerd")
    };
    // hack/containerd.sh stop (at exit) stops the containerd named here.
    std::fs::write(n.dir.join("containerd.pid"), child.id().to_string()).expect("containerd.pid");
    child
}

impl Supervisor {
    /// Stops the node's containerd and runs it under this supervisor.
    fn take_over(n: &'static Node, zygote_config: PathBuf) -> Supervisor {
        let old: i32 = std::fs::read_to_string(n.dir.join("containerd.pid"))
            .expect("containerd.pid")
            .trim()
            .parse()
            .expect("pid");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(old), nix::sys::signal::Signal::SIGTERM)
            .unwrap_or_else(|e| panic!("SIGTERM containerd {old}: {e}"));
        assert!(
            wait_until(Duration::from_secs(60), || !Path::new(&format!("/proc/{old}")).exists()),
            "containerd {old} did not stop"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let pid = Arc::new(AtomicI32::new(0));
        let (s, p) = (stop.clone(), pid.clone());
        let thread = std::thread::spawn(move || loop {
            let mut child = spawn_containerd(n, &zygote_config);
            p.store(child.id() as i32, Ordering::SeqCst);
            let _ = child.wait();
            if s.load(Ordering::SeqCst) || !RESTARTS_WANTED.load(Ordering::SeqCst) {
                return;
            }
        });
        let sup = Supervisor {
            stop,
            pid,
            thread: Some(thread),
        };
        sup.wait_ready(n);
        sup
    }

    fn pid(&self) -> i32 {
        self.pid.load(Ordering::SeqCst)
    }

    fn wait_ready(&self, n: &Node) {
        let up = wait_until(Duration::from_secs(60), || {
            std::panic::catch_unwind(|| Cri::connect(&n.address).version().is_ok()).unwrap_or(false)
        });
        assert!(up, "containerd did not come up:\n{}", n.log_tail(30));
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // containerd keeps running; hack/containerd.sh stop ends it at exit.
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            drop(t);
        }
    }
}

/// The node's config without the zygote handlers hack/containerd.sh adds.
fn without_zygote(text: &str) -> String {
    let mut doc: DocumentMut = text.parse().expect("node config");
    let plugins = doc["plugins"].as_table_like_mut().expect("plugins");
    for (_, p) in plugins.iter_mut() {
        if let Some(r) = p
            .get_mut("containerd")
            .and_then(|c| c.get_mut("runtimes"))
            .and_then(|r| r.as_table_like_mut())
        {
            for h in ["zygote", "zygote-alt", "zygote-badopts"] {
                r.remove(h);
            }
        }
    }
    doc.to_string()
}

struct Paths {
    _tmp: tempfile::TempDir,
    install_dir: PathBuf,
    zygote_dir: PathBuf,
    zygote_config: PathBuf,
}

/// The node under the test's supervision, its config without zygote (the
/// "host's config"), shared by the tests of this binary one at a time.
struct Setup {
    sup: Supervisor,
    host_config: String,
    /// `--zygote-dir`: made and removed by the installer; containerd's
    /// `ZYGOTE_CONFIG` names its config.toml.
    zygote_dir: PathBuf,
}

static SERIAL: Mutex<()> = Mutex::new(());

/// `--link-dir` (made and removed by the installer).
fn link_dir() -> PathBuf {
    PathBuf::from(format!("/var/tmp/zinst-bin-{}", std::process::id()))
}
static SETUP: OnceLock<Setup> = OnceLock::new();

fn setup() -> &'static Setup {
    SETUP.get_or_init(|| {
        let n = node();
        let config_path = n.dir.join("config.toml");
        let host_config = without_zygote(&std::fs::read_to_string(&config_path).expect("config"));
        std::fs::write(&config_path, &host_config).expect("write config");
        let zygote_dir = PathBuf::from(format!("/var/tmp/zinst-etc-{}", std::process::id()));
        let sup = Supervisor::take_over(n, zygote_dir.join("config.toml"));
        Setup {
            sup,
            host_config,
            zygote_dir,
        }
    })
}

fn paths(s: &Setup) -> Paths {
    let tmp = tempfile::Builder::new()
        .prefix("zinst-")
        .tempdir_in("/var/tmp")
        .expect("tmp");
    std::fs::write(tmp.path().join("zygote.toml"), ZYGOTE_CONFIG).expect("zygote config");
    Paths {
        install_dir: tmp.path().join("opt/zygote/bin"),
        zygote_dir: s.zygote_dir.clone(),
        zygote_config: tmp.path().join("zygote.toml"),
        _tmp: tmp,
    }
}

fn installer(n: &Node, p: &Paths, sup: &Supervisor, args: &[&str]) -> Output {
    let mut c = Command::new(INSTALLER);
    c.args(args)
        .arg("--host-root")
        .arg("/")
        .arg("--install-dir")
        .arg(&p.install_dir)
        .arg("--zygote-dir")
        .arg(&p.zygote_dir)
        .arg("--containerd-config")
        .arg(n.dir.join("config.toml"))
        .arg("--link-dir")
        .arg(link_dir())
        .arg("--state-dir")
        .arg(&n.state_dir)
        .arg("--containerd-socket")
        .arg(&n.address)
        .args(["--restart", "signal", "--containerd-pid", &sup.pid().to_string()]);
    RESTARTS_WANTED.store(true, Ordering::SeqCst);
    let out = run_cmd(c, Duration::from_secs(300));
    RESTARTS_WANTED.store(false, Ordering::SeqCst);
    out
}

#[test]
fn install_runs_a_pod_through_zygote_and_uninstall_restores_the_config() {
    if !require_runtime(
        Runtime::Zygote,
        "install_runs_a_pod_through_zygote_and_uninstall_restores_the_config",
    ) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let n = node();
    let s = setup();
    let (sup, host_config) = (&s.sup, &s.host_config);
    let p = paths(s);
    let config_path = n.dir.join("config.toml");
    let bin = std::env::var("ZYGOTE_BIN_DIR").expect("ZYGOTE_BIN_DIR");

    let zc = p.zygote_config.to_string_lossy().into_owned();
    let install = ["install", "--source-dir", &bin, "--zygote-config", &zc];
    let out = installer(n, &p, sup, &install);
    assert!(out.success(), "install:\n{}\n{}", out.describe(), n.log_tail(30));
    assert!(
        out.stdout.contains("handler zygote-open -> profile open"),
        "{}",
        out.describe()
    );
    let installed = std::fs::read(&config_path).expect("config");
    assert_ne!(installed, host_config.as_bytes());

    // A pod and a container through the new handler, run by zygote.
    let cri = Cri::connect(&n.address);
    let pod_cfg = pod_config();
    let pod = cri
        .run_pod(&pod_cfg, "zygote")
        .expect("RunPodSandbox with handler zygote");
    let ctr = cri
        .create_container(&pod, &container_config("sleep 2; exit 7"), &pod_cfg)
        .expect("CreateContainer");
    cri.start_container(&ctr).expect("StartContainer");
    assert!(
        !n.zygote_task_dirs(&ctr).is_empty(),
        "container {ctr} is not a zygote task"
    );

    // Installing again while it runs: same bytes, the task keeps running
    // through the restart and exits with its own status.
    let out = installer(n, &p, sup, &install);
    assert!(out.success(), "second install:\n{}", out.describe());
    assert_eq!(std::fs::read(&config_path).expect("config"), installed);
    let cri = Cri::connect(&n.address);
    let exited = wait_until(Duration::from_secs(60), || {
        cri.container_status(&ctr)
            .ok()
            .and_then(|s| s.status)
            .is_some_and(|s| s.state == k8s_cri::v1::ContainerState::ContainerExited as i32)
    });
    assert!(exited, "container {ctr} did not exit");
    let status = cri.container_status(&ctr).expect("status").status.expect("status");
    assert_eq!(status.exit_code, 7);
    cri.remove_container(&ctr).expect("RemoveContainer");
    cri.stop_pod(&pod).expect("StopPodSandbox");
    cri.remove_pod(&pod).expect("RemovePodSandbox");

    let out = installer(n, &p, sup, &["uninstall"]);
    assert!(out.success(), "uninstall:\n{}", out.describe());
    assert_eq!(
        std::fs::read_to_string(&config_path).expect("config"),
        *host_config,
        "uninstall did not restore the config byte for byte"
    );
    assert!(!p.install_dir.exists(), "{} left", p.install_dir.display());
    assert!(!p.zygote_dir.exists(), "{} left", p.zygote_dir.display());
    assert!(!link_dir().exists(), "{} left", link_dir().display());
    let leftovers: Vec<_> = std::fs::read_dir(n.dir.as_path())
        .expect("node dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.contains("zygote-installer") || f == "conf.d")
        .collect();
    assert!(leftovers.is_empty(), "left in {}: {leftovers:?}", n.dir.display());
    // containerd restarted on the original config: no handler zygote.
    let cri = Cri::connect(&n.address);
    let err = cri
        .run_pod(&pod_config(), "zygote")
        .expect_err("handler zygote after uninstall");
    assert!(err.message().contains("zygote"), "{err}");
}

#[test]
fn broken_config_is_refused_and_containerd_untouched() {
    if !require_runtime(Runtime::Zygote, "broken_config_is_refused_and_containerd_untouched") {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("zinst-")
        .tempdir_in("/var/tmp")
        .expect("tmp");
    let config = tmp.path().join("config.toml");
    let broken = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"\nsandbox_image = 1\n";
    std::fs::write(&config, broken).expect("write");
    std::fs::write(tmp.path().join("zygote.toml"), ZYGOTE_CONFIG).expect("write");
    let mut c = Command::new(INSTALLER);
    c.args(["install", "--restart", "none", "--host-root"])
        .arg(tmp.path())
        .args(["--containerd-config", "/config.toml", "--zygote-config"])
        .arg(tmp.path().join("zygote.toml"));
    let out = run_cmd(c, Duration::from_secs(60));
    assert!(!out.success(), "a broken config was accepted: {}", out.describe());
    assert!(
        out.stderr.contains("config.toml") && out.stderr.contains("not valid TOML"),
        "{}",
        out.describe()
    );
    assert_eq!(std::fs::read_to_string(&config).expect("read"), broken);
    let mut names: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("tmp")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["config.toml", "zygote.toml"], "the installer wrote something");
}

#[test]
fn failed_probe_restores_every_file_and_restarts_on_the_old_config() {
    if !require_runtime(
        Runtime::Zygote,
        "failed_probe_restores_every_file_and_restarts_on_the_old_config",
    ) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let n = node();
    let s = setup();
    let p = paths(s);
    // A "shim" that cannot start anything: the probe's RunPodSandbox fails.
    let src = p._tmp.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    let shim = src.join("containerd-shim-zygote-v1");
    std::fs::write(&shim, "#!/bin/sh\necho this shim is broken >&2\nexit 1\n").expect("write shim");
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    std::fs::write(src.join("zygotectl"), "#!/bin/sh\n").expect("write zygotectl");
    let config_path = n.dir.join("config.toml");
    let pid_before = s.sup.pid();

    let zc = p.zygote_config.to_string_lossy().into_owned();
    let src_arg = src.to_string_lossy().into_owned();
    let out = installer(
        n,
        &p,
        &s.sup,
        &["install", "--source-dir", &src_arg, "--zygote-config", &zc],
    );
    assert!(
        !out.success(),
        "install with a broken shim succeeded: {}",
        out.describe()
    );
    assert!(out.stderr.contains("probe of handler zygote"), "{}", out.describe());
    assert_eq!(
        std::fs::read_to_string(&config_path).expect("config"),
        s.host_config,
        "the config was not restored byte for byte"
    );
    assert!(!p.install_dir.parent().expect("parent").exists(), "install dir left");
    assert!(!p.zygote_dir.exists(), "{} left", p.zygote_dir.display());
    assert!(!link_dir().exists(), "{} left", link_dir().display());
    let mut backup = config_path.clone().into_os_string();
    backup.push(".zygote-installer.bak");
    assert!(!Path::new(&backup).exists(), "backup left");
    // containerd was restarted (on the new config, then on the restored one).
    assert_ne!(s.sup.pid(), pid_before);
    let cri = Cri::connect(&n.address);
    let err = cri
        .run_pod(&pod_config(), "zygote")
        .expect_err("handler zygote after the rollback");
    assert!(err.message().contains("zygote"), "{err}");
}

//! A second containerd of a test's own ([`PrivateContainerd`]), for what
//! must not touch the shared one: a zygote state dir on a tiny filesystem,
//! say. It runs the same binaries and zygote configuration as the test
//! containerd, has no images (run tasks with `ctr run --config`, see
//! [`crate::ConfigBundle`]), and is stopped, with everything it ran, on
//! drop. [`Tmpfs`] is a size-limited tmpfs mounted for a test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::command::run_cmd;
use crate::ctr::Ctr;
use crate::env::env;

/// A containerd started by the test, with its own root, state, sockets
/// and zygote state dir.
pub struct PrivateContainerd {
    pub dir: PathBuf,
    pub state_dir: PathBuf,
    /// Extra environment of `hack/containerd.sh` (e.g. `ZYGOTE_CRI=1`).
    extra_env: Vec<(String, String)>,
}

fn containerd_sh(action: &str, dir: &Path, state_dir: &Path, extra_env: &[(String, String)]) -> crate::command::Output {
    let mut c = Command::new("bash");
    c.arg(env().hack_dir.join("containerd.sh")).arg(action).arg(dir);
    c.env("ZYGOTE_STATE_DIR", state_dir);
    c.envs(extra_env.iter().map(|(k, v)| (k, v)));
    run_cmd(c, Duration::from_secs(90))
}

impl PrivateContainerd {
    /// Starts one whose zygote daemon keeps its state under `state_dir`.
    pub fn start(name: &str, state_dir: &Path) -> PrivateContainerd {
        PrivateContainerd::start_with(name, state_dir, &[])
    }

    /// Starts one with extra environment for `hack/containerd.sh start`
    /// (and `stop`): `[("ZYGOTE_CRI", "1")]` enables the CRI plugin.
    pub fn start_with(name: &str, state_dir: &Path, extra_env: &[(&str, &str)]) -> PrivateContainerd {
        let extra_env: Vec<(String, String)> = extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        static N: AtomicU32 = AtomicU32::new(0);
        // Short: containerd's socket paths must fit in 108 bytes.
        let dir = PathBuf::from(format!(
            "/var/tmp/zp-{name}-{:x}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let out = containerd_sh("start", &dir, state_dir, &extra_env);
        assert!(
            out.success(),
            "cannot start a private containerd in {}:\n{}",
            dir.display(),
            out.describe()
        );
        PrivateContainerd {
            dir,
            state_dir: state_dir.to_path_buf(),
            extra_env,
        }
    }

    pub fn address(&self) -> String {
        self.dir.join("containerd.sock").to_string_lossy().into_owned()
    }

    /// `ctr` for this containerd, in the test namespace.
    pub fn ctr(&self) -> Ctr {
        Ctr::at(&self.address())
    }

    /// Stops containerd alone (SIGTERM, as systemd does; its shims, the
    /// zygote daemon and every task keep running), runs `between` while it
    /// is down, then starts it again on the same dirs and config.
    pub fn restart_with(&self, between: impl FnOnce()) {
        let pid_file = self.dir.join("containerd.pid");
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("no containerd pid in {}", pid_file.display()));
        assert!(crate::send_signal(pid, libc::SIGTERM), "SIGTERM containerd {pid}");
        assert!(
            crate::wait_proc_gone(pid, Duration::from_secs(60)),
            "containerd {pid} did not stop"
        );
        let _ = std::fs::remove_file(&pid_file);
        between();
        let out = containerd_sh("start", &self.dir, &self.state_dir, &self.extra_env);
        assert!(
            out.success(),
            "cannot start containerd again in {}:\n{}",
            self.dir.display(),
            out.describe()
        );
    }

    /// containerd's own log (where shims' `log` FIFOs end up).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for PrivateContainerd {
    fn drop(&mut self) {
        let out = containerd_sh("stop", &self.dir, &self.state_dir, &self.extra_env);
        if !out.success() {
            eprintln!(
                "warning: stopping the private containerd in {} failed:\n{}",
                self.dir.display(),
                out.describe()
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A tmpfs of `size` (mount's syntax: `64k`) mounted on a fresh directory,
/// unmounted and removed on drop.
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Tmpfs {
        let path = tempfile::Builder::new()
            .prefix("zt-tmpfs-")
            .tempdir_in("/var/tmp")
            .expect("tempdir")
            .keep();
        let mut c = Command::new("mount");
        c.args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(&path);
        run_cmd(c, Duration::from_secs(10)).assert_success();
        Tmpfs { path }
    }

    /// Fills the filesystem: writes `<path>/filler` until it is full.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).expect("create filler");
        let block = [0u8; 4096];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("fill {}: {e}", self.path.display()),
            }
        }
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let mut c = Command::new("umount");
        c.arg("-l").arg(&self.path);
        let _ = run_cmd(c, Duration::from_secs(10));
        let _ = std::fs::remove_dir(&self.path);
    }
}

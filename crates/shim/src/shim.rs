//! containerd's side of the shim protocol: `start` and `delete`.
//!
//! `start` makes sure the node's daemon runs and prints its socket as a
//! bare `unix://` address, which containerd 1.6, 1.7 and 2.x all accept
//! (we speak task API v2; 2.x still accepts v2 shims). `delete` is
//! containerd's cleanup after a shim it lost: it removes every leftover of
//! the task and reports the last known exit status.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use containerd_shim::asynchronous::{publisher::RemotePublisher, run, Shim};
use containerd_shim::{Config, Flags, StartOpts};
use containerd_shim_protos::api::DeleteResponse;
use zygote_daemon::{paths, DaemonConfig};

pub const RUNTIME_ID: &str = "io.containerd.zygote.v1";

pub fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "-v" || a == "--version" || a == "-version") {
        println!("{}:\n  Version: {}\n  Runtime: {RUNTIME_ID}", args[0], env!("CARGO_PKG_VERSION"));
        return;
    }
    match args.last().map(String::as_str) {
        Some("start") | Some("delete") => {}
        _ => {
            eprintln!("usage: {} [-namespace ns -id id -address addr -publish-binary bin] start|delete", args[0]);
            std::process::exit(2);
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let config = Config { no_setup_logger: true, no_reaper: true, no_sub_reaper: true, ..Default::default() };
    rt.block_on(run::<ZygoteShim>(RUNTIME_ID, Some(config)));
}

struct ZygoteShim {
    id: String,
    bundle: PathBuf,
}

fn shim_err(e: impl std::fmt::Display) -> containerd_shim::Error {
    containerd_shim::Error::Other(e.to_string())
}

fn daemon_dir() -> PathBuf {
    let ttrpc = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
    paths::daemon_dir(&paths::state_root(), &ttrpc)
}

fn answers(sock: &std::path::Path) -> bool {
    std::os::unix::net::UnixStream::connect(sock).is_ok()
}

#[async_trait]
impl Shim for ZygoteShim {
    type T = zygote_daemon::service::Service;

    async fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        let bundle = if args.bundle.is_empty() { std::env::current_dir().unwrap_or_default() } else { PathBuf::from(&args.bundle) };
        ZygoteShim { id: args.id.clone(), bundle }
    }

    async fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        let dir = paths::daemon_dir(&paths::state_root(), &opts.ttrpc_address);
        std::fs::create_dir_all(&dir).map_err(shim_err)?;
        let cfg = DaemonConfig { ttrpc_address: opts.ttrpc_address.clone() };
        zygote_monitor::state::write_atomic(&zygote_daemon::server::config_path(&dir), &cfg).map_err(shim_err)?;
        let sock = paths::socket(&dir);
        let address = format!("unix://{}", sock.display());
        // containerd reads <bundle>/address to reconnect after it restarts;
        // shims write it themselves.
        let addr_file = self.bundle.join("address");
        let tmp = self.bundle.join(".address.tmp");
        std::fs::write(&tmp, &address).and_then(|()| std::fs::rename(&tmp, &addr_file)).map_err(shim_err)?;
        if answers(&sock) {
            return Ok(address);
        }
        let exe = std::env::current_exe().map_err(shim_err)?;
        std::process::Command::new(exe)
            .arg("__daemon")
            .arg(&dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(shim_err)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if answers(&sock) {
                return Ok(address);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Err(shim_err(format!("zygote daemon did not come up at {}; see {}", sock.display(), paths::log(&dir).display())))
    }

    async fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        let deleted = zygote_daemon::cleanup::delete_task(&daemon_dir(), &self.id);
        // Like runc-v2: whatever happened, nothing stays mounted on the bundle.
        if let Err(e) = zygote_runtime::mounts::unmount_rootfs(&self.bundle.join("rootfs")) {
            eprintln!("zygote delete: unmount rootfs: {e}");
        }
        let (pid, status, at) = match deleted {
            Some(d) => (d.pid, d.exit_status, d.exited_at_ns),
            None => (0, 137, zygote_monitor::state::wall_ns()),
        };
        Ok(DeleteResponse { pid, exit_status: status, exited_at: Some(zygote_daemon::daemon::timestamp(at)).into(), ..Default::default() })
    }

    async fn wait(&mut self) {
        std::future::pending::<()>().await
    }

    async fn create_task_service(&self, _publisher: RemotePublisher) -> Self::T {
        // Never reached: `main` only lets `start` and `delete` through; tasks
        // are served by the daemon.
        unreachable!("zygote serves tasks from its daemon, not from the shim process")
    }
}

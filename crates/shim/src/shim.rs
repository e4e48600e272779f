//! containerd's side of the shim protocol: `start` and `delete`.
//!
//! Flags are parsed by the `containerd-shim` crate. Both actions are short
//! and synchronous (no async runtime: `start` is on every task's critical
//! path). `start` makes sure the node's daemon runs and prints its socket
//! as a bare `unix://` address, which containerd 1.6, 1.7 and 2.x accept
//! (we speak task API v2; 2.x still accepts v2 shims). `delete` is
//! containerd's cleanup after a shim it lost: it removes every leftover of
//! the task and reports the last known exit status.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::Message as _;
use zygote_contract::daemon::DaemonConfig;
use zygote_contract::layout::{state_root, DaemonDir, STATE_DIR_ENV};

pub const RUNTIME_ID: &str = "io.containerd.zygote.v1";

pub fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "-v" || a == "--version" || a == "-version") {
        println!(
            "{}:\n  Version: {}\n  Runtime: {RUNTIME_ID}",
            args[0],
            env!("CARGO_PKG_VERSION")
        );
        return;
    }
    let r = containerd_shim::parse(&args[1..])
        .map_err(anyhow::Error::from)
        .and_then(|flags| {
            let bundle = if flags.bundle.is_empty() {
                std::env::current_dir()?
            } else {
                PathBuf::from(&flags.bundle)
            };
            match flags.action.as_str() {
                "start" => start(&bundle),
                "delete" => delete(&flags.id, &bundle),
                other => bail!("unknown action {other:?}: containerd runs this binary with `start` or `delete`"),
            }
        });
    if let Err(e) = r {
        eprintln!("{RUNTIME_ID}: {e:#}");
        std::process::exit(1);
    }
}

fn ttrpc_address() -> Result<String> {
    std::env::var("TTRPC_ADDRESS").context("TTRPC_ADDRESS is not set (containerd sets it for shims)")
}

/// containerd's `oom_score_adj` (we inherit it: containerd runs `start`)
/// plus one, at most 1000: what containerd's own shims give themselves.
fn shim_oom_score_adj() -> Option<i32> {
    let own: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some((own + 1).min(1000))
}

/// True when a live daemon listens on `sock`. A connection alone is not
/// proof: a daemon killed a moment ago still accepts connections into its
/// backlog until its last thread has exited, and then resets them (containerd
/// would see `ttrpc: closed` on the task's Create). The listener's pid
/// (`SO_PEERCRED`) tells which process it is; 0 (not visible from this pid
/// namespace) is taken as alive.
fn answers(sock: &Path) -> bool {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let Ok(stream) = std::os::unix::net::UnixStream::connect(sock) else {
        return false;
    };
    match getsockopt(&stream, PeerCredentials) {
        Ok(cred) if cred.pid() > 0 => zygote_contract::daemon::process_alive(cred.pid()),
        _ => true,
    }
}

fn write_if_changed(path: &Path, body: &[u8]) -> Result<()> {
    if std::fs::read(path).is_ok_and(|b| b == body) {
        return Ok(());
    }
    // Per-process temp name: concurrent `start`s race on the same file.
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, body)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("write {}", path.display()))
}

fn start(bundle: &Path) -> Result<()> {
    let ttrpc = ttrpc_address()?;
    let dir = DaemonDir::for_containerd(&state_root(), &ttrpc);
    // containerd dials the daemon's socket by its path: it must fit in a
    // socket address (every other socket is bound through a short name, see
    // zygote_contract::sockaddr). Checked before anything is written.
    zygote_contract::sockaddr::check_dialable(&dir.socket(), &state_root(), STATE_DIR_ENV)?;
    std::fs::create_dir_all(dir.path()).with_context(|| format!("create {}", dir.path().display()))?;
    let cfg = serde_json::to_vec(&DaemonConfig {
        ttrpc_address: ttrpc,
        oom_score_adj: shim_oom_score_adj(),
    })?;
    write_if_changed(&dir.config(), &cfg)?;
    let sock = dir.socket();
    let address = format!("unix://{}", sock.display());
    // containerd reads <bundle>/address to re-dial after it restarts; shims
    // write it themselves.
    write_if_changed(&bundle.join("address"), address.as_bytes())?;
    if !answers(&sock) {
        let exe = std::env::current_exe()?;
        zygote_contract::daemon::spawn(&exe, &dir).context("spawn the zygote daemon")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers(&sock) {
            if Instant::now() > deadline {
                bail!(
                    "zygote daemon did not come up at {}; see {}",
                    sock.display(),
                    dir.log().display()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let mut out = std::io::stdout().lock();
    out.write_all(address.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn delete(id: &str, bundle: &Path) -> Result<()> {
    let dir = DaemonDir::for_containerd(&state_root(), &ttrpc_address()?);
    let deleted = zygote_daemon::delete_task(&dir, id);
    // Like runc-v2: whatever happened, nothing stays mounted on the bundle.
    if let Err(e) = zygote_runtime::mounts::unmount_rootfs(&bundle.join("rootfs")) {
        eprintln!("{RUNTIME_ID}: unmount rootfs of {id}: {e}");
    }
    let (pid, status, at) = match deleted {
        Some(d) => (d.pid, d.exit_status, d.exited_at_ns),
        None => (0, 137, zygote_contract::state::wall_ns()),
    };
    let resp = DeleteResponse {
        pid,
        exit_status: status,
        exited_at: Some(zygote_daemon::timestamp(at)).into(),
        ..Default::default()
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&resp.write_to_bytes()?)?;
    out.flush()?;
    Ok(())
}

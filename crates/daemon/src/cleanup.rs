//! Removing a task whose monitor is gone, and `containerd-shim-zygote-v1
//! delete` (containerd's cleanup after it lost a shim).
//!
//! These run without the monitor, so they read what it persisted, kill
//! whatever is left in the task's cgroup, remove the cgroup, unmount the
//! rootfs we mounted and delete the task directory. Synchronous: also used
//! from the short-lived `delete` subcommand.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use tracing::warn;
use zygote_monitor::proto::{self, Message, Reply, Request};
use zygote_monitor::state::{self, Snapshot, Status, TaskConfig};
use zygote_runtime::cgroups::Cgroup;

/// Kills and removes everything of a task that has no monitor.
pub fn orphan(cfg: &TaskConfig, dir: &Path, cgroup: &Cgroup) {
    remove_cgroup(cgroup);
    release_files(cfg, dir);
}

/// Kills whatever is left in the cgroup and removes it (retrying while the
/// processes drain).
fn remove_cgroup(cgroup: &Cgroup) {
    for _ in 0..50 {
        let _ = cgroup.kill_all(Signal::SIGKILL);
        match cgroup.remove() {
            Ok(()) => break,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Unmounts the rootfs we mounted and removes the task directory.
fn release_files(cfg: &TaskConfig, dir: &Path) {
    if cfg.rootfs_mounted {
        if let Err(e) = zygote_runtime::mounts::unmount_rootfs(&cfg.rootfs) {
            warn!(id = %cfg.id, error = %e, "cannot unmount rootfs");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// What `delete` reports to containerd.
pub struct Deleted {
    pub pid: u32,
    pub exit_status: u32,
    pub exited_at_ns: i64,
}

/// Asks a live monitor to destroy its task (synchronously).
fn destroy_via_monitor(dir: &Path) -> bool {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let Ok(fd) = socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None) else { return false };
    let Ok(addr) = UnixAddr::new(&dir.join(state::MONITOR_SOCKET)) else { return false };
    if connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr).is_err() {
        return false;
    }
    if proto::send(fd.as_fd(), &Request::Destroy, &[]).is_err() {
        return false;
    }
    // Events may come first; wait for the reply.
    loop {
        match proto::recv::<Message>(fd.as_fd()) {
            Ok((Message::Reply { reply: Reply::Ok }, _)) => return true,
            Ok((Message::Reply { .. }, _)) => return false,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
}

/// Cleans up task `id` of the daemon in `daemon_dir`, whatever state it is
/// in. Returns its last known exit (137 if it had to be killed here).
pub fn delete_task(daemon_dir: &Path, id: &str) -> Option<Deleted> {
    let dir = crate::paths::task(daemon_dir, id);
    let cfg: TaskConfig = state::read(&dir.join(state::TASK_FILE)).ok()?;
    let before: Option<Snapshot> = state::read(&dir.join(state::STATE_FILE)).ok();
    if !destroy_via_monitor(&dir) {
        let cgroup = zygote_runtime::spec::load(&cfg.bundle).ok().and_then(|s| Cgroup::from_spec(&s, id).ok());
        if let Some(cg) = cgroup {
            remove_cgroup(&cg);
        }
    }
    let after: Option<Snapshot> = state::read(&dir.join(state::STATE_FILE)).ok().or(before);
    release_files(&cfg, &dir);
    let snap = after?;
    let (status, at) = match snap.init.status {
        Status::Stopped => (snap.init.exit_status.unwrap_or(255), snap.init.exited_at_ns.unwrap_or_else(state::wall_ns)),
        _ => (137, state::wall_ns()),
    };
    Some(Deleted { pid: snap.init.pid as u32, exit_status: status as u32, exited_at_ns: at })
}

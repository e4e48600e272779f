//! Removing a task whose monitor is gone, and `containerd-shim-zygote-v1
//! delete` (containerd's cleanup after it lost a shim).
//!
//! These run without the monitor, so they read what it persisted, kill
//! whatever is left in the task's cgroup, remove the cgroup, unmount the
//! rootfs we mounted and delete the task directory. Synchronous: also used
//! from the short-lived `delete` subcommand.

use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;
use zygote_contract::{DaemonDir, TaskDir};

use nix::sys::signal::Signal;
use tracing::warn;
use zygote_contract::proto::{self, Message, Reply, Request};
use zygote_contract::state::{self, ProcState, Snapshot, Status, TaskConfig};
use zygote_runtime::cgroups::Cgroup;

/// Kills and removes everything of a task that has no monitor.
pub(crate) fn orphan(cfg: &TaskConfig, dir: &TaskDir, cgroup: &Cgroup, procs: &[ProcState]) {
    kill_lost(cfg, cgroup, procs);
    remove_cgroup(cfg, cgroup);
    release_files(cfg, dir);
}

/// Kills the processes of a task whose monitor is gone that still run, and
/// waits (bounded) until they are gone. Each is identified by its pid *and*
/// start time, so a process that took over a dead one's pid is never hit.
/// Sharing a pid namespace, the task's processes are told apart by their
/// cgroup only, and all of them are killed, as runc-v2 does. Returns how
/// many it killed.
pub(crate) fn kill_lost(cfg: &TaskConfig, cgroup: &Cgroup, procs: &[ProcState]) -> usize {
    let mut pidfds = Vec::new();
    for p in procs.iter().filter(|p| p.status != Status::Stopped && p.pid > 0) {
        let Ok(fd) = zygote_runtime::sys::pidfd_open(p.pid) else {
            continue;
        };
        // Compared after the pidfd is open: from then on it cannot change.
        if p.start_time.is_some() && state::start_time(p.pid) != p.start_time {
            continue;
        }
        match zygote_runtime::sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL) {
            Ok(()) => pidfds.push(fd),
            Err(e) => {
                warn!(id = %cfg.id, pid = p.pid, error = %e, "cannot kill a process of a task whose monitor is gone")
            }
        }
    }
    if !cfg.private_pidns {
        let _ = cgroup.kill_all(Signal::SIGKILL);
    }
    let killed = pidfds.len();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    for fd in pidfds {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut pfd = [libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        zygote_runtime::sys::poll(&mut pfd, left.as_millis() as i32);
    }
    killed
}

/// Removes the cgroup once the task's processes are gone (retrying while
/// they drain). With a private pid namespace, processes still in it belong
/// to another container given the same path: the cgroup is left to them.
fn remove_cgroup(cfg: &TaskConfig, cgroup: &Cgroup) {
    if cfg.private_pidns && cgroup.procs().is_ok_and(|p| !p.is_empty()) {
        warn!(id = %cfg.id, cgroup = %cgroup.path().display(), "the cgroup holds processes of another container; left in place");
        return;
    }
    for _ in 0..50 {
        if !cfg.private_pidns {
            let _ = cgroup.kill_all(Signal::SIGKILL);
        }
        match cgroup.remove() {
            Ok(()) => break,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Unmounts the rootfs we mounted and removes the task directory.
fn release_files(cfg: &TaskConfig, dir: &TaskDir) {
    if cfg.rootfs_mounted {
        if let Err(e) = zygote_runtime::mounts::unmount_rootfs(&cfg.rootfs) {
            warn!(id = %cfg.id, error = %crate::error::chain(&e), "cannot unmount rootfs");
        }
    }
    let _ = std::fs::remove_dir_all(dir.path());
}

/// What `delete` reports to containerd.
pub struct Deleted {
    pub pid: u32,
    pub exit_status: u32,
    pub exited_at_ns: i64,
}

/// Asks a live monitor to destroy its task (synchronously); returns the
/// task's final state from the monitor's memory.
fn destroy_via_monitor(dir: &TaskDir) -> Option<Snapshot> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType};
    let fd = socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None).ok()?;
    let addr = zygote_contract::sockaddr::ShortAddr::new(&dir.monitor_socket()).ok()?;
    connect(fd.as_raw_fd(), addr.addr()).ok()?;
    proto::send(fd.as_fd(), &Request::Destroy, &[]).ok()?;
    // Events may come first; wait for the reply.
    loop {
        match proto::recv::<Message>(fd.as_fd()) {
            Ok((
                Message::Reply {
                    reply: Reply::Snapshot { snapshot },
                },
                _,
            )) => return Some(snapshot),
            Ok((Message::Reply { .. }, _)) => return None,
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// Cleans up task `id` of the daemon in `daemon_dir`, whatever state it is
/// in. Returns its last known exit (137 if it had to be killed here).
pub fn delete_task(daemon_dir: &DaemonDir, id: &str) -> Option<Deleted> {
    let dir = daemon_dir.task(id);
    let cfg: TaskConfig = state::read(&dir.config()).ok()?;
    let before: Option<Snapshot> = state::read(&dir.state()).ok();
    let after = match destroy_via_monitor(&dir) {
        Some(last) => Some(last),
        None => {
            let cgroup = zygote_runtime::spec::load(&cfg.bundle)
                .ok()
                .and_then(|s| Cgroup::from_spec(&s, id).ok());
            let procs: Vec<ProcState> = before
                .iter()
                .flat_map(|s| std::iter::once(s.init.clone()).chain(s.execs.values().cloned()))
                .collect();
            if let Some(cg) = cgroup {
                kill_lost(&cfg, &cg, &procs);
                remove_cgroup(&cfg, &cg);
            }
            before
        }
    };
    release_files(&cfg, &dir);
    let snap = after?;
    let (status, at) = match snap.init.status {
        Status::Stopped => (
            snap.init.exit_status.unwrap_or(255),
            snap.init.exited_at_ns.unwrap_or_else(state::wall_ns),
        ),
        _ => (137, state::wall_ns()),
    };
    Some(Deleted {
        pid: snap.init.pid as u32,
        exit_status: status as u32,
        exited_at_ns: at,
    })
}

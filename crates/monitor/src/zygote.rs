//! A warm zygote's monitor: `containerd-shim-zygote-v1 __zygote <json>`.
//!
//! The daemon's pool spawns it with its control socket on fd 3 and a
//! [`ZygoteConfig`] as argument. It clones the zygote child into the
//! profile's namespaces ([`Zygote::spawn`]); when the pool names a cgroup
//! parent (where the profile's tasks' cgroups were last created) it also
//! puts the child in a pool cgroup `<parent>/zygote@<daemon>-<pid>` in advance, so a
//! claim renames that cgroup instead of migrating the process (the slow
//! part of a cold Create on cgroup v1; see [`pool_cgroup_name`]; on v2 the
//! daemon names none, and the claim clones the init into the task's cgroup
//! instead, see `monitor/create.rs`). It then reports [`Reply::Pid`] and
//! waits. On [`Request::Claim`] it becomes that task's ordinary monitor
//! ([`monitor::serve`] with [`Source::Warm`]).
//!
//! When the pool chose a NUMA node ([`ZygoteConfig::numa`]) it is placed
//! there before the clone, and its CPU affinity widened back at claim
//! (module `numa`).
//!
//! While it waits it answers the pool's [`Request::Ping`] (health probe)
//! from the same loop with its child's state (waiting, stopped, gone) and
//! the generation it was born with.
//!
//! If the child dies, or the daemon closes the socket (it stopped, was
//! killed, or discarded this zygote), it kills the child, removes the pool
//! cgroup and exits: no zygote outlives its daemon, and a damaged one is
//! never handed out (the daemon sees the socket close and replaces it).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use tracing::{info, warn};
use zygote_contract::zygote::{pool_cgroup_name, ChildState, Generation, ZygoteConfig};
use zygote_contract::{DaemonDir, TaskDir};
use zygote_runtime::cgroups::{Cgroup, Layout};
use zygote_runtime::guest::GuestSupport;
use zygote_runtime::zygote::Zygote;

use crate::monitor::{self, Source};
use crate::sys;
use zygote_contract::proto::{self, Failure, FailureKind, Message, Reply, Request};
use zygote_contract::state;

/// Runs a zygote; returns the process exit code. Must be called in a
/// fresh, single-threaded process.
pub fn run(config_json: &str) -> i32 {
    let control = sys::take_control_fd();
    let _ = nix::unistd::setsid();
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        warn!(error = %e, "cannot become a subreaper");
    }
    let fail = |control: &OwnedFd, failure: Failure| {
        warn!("{failure}");
        let reply = Reply::Error { failure };
        let _ = proto::send(control.as_fd(), &Message::Reply { reply }, &[]);
        1
    };
    let cfg: ZygoteConfig = match serde_json::from_str(config_json) {
        Ok(c) => c,
        Err(e) => {
            return fail(
                &control,
                Failure::context(FailureKind::Internal, "bad zygote config", &e),
            )
        }
    };
    let born_ns = state::monotonic_ns();
    let guest = GuestSupport {
        runner: &zygote_wasm::RUNNER,
        warm: cfg.wasm,
        hot: cfg.hot.clone(),
    };
    // Placed before the child is cloned, so the child inherits the node.
    let original_cpus = cfg.numa.as_ref().and_then(crate::numa::place);
    let zygote = match Zygote::spawn(CloneFlags::from_bits_retain(cfg.clone_flags), Some(guest)) {
        Ok(z) => z,
        Err(e) => return fail(&control, Failure::context(FailureKind::Internal, "spawn zygote", &e)),
    };
    let pool = match &cfg.cgroup_parent {
        Some(parent) => match place(parent, &cfg.daemon_dir, zygote.pid()) {
            Ok(c) => Some(c),
            Err(e) => {
                drop(zygote);
                return fail(&control, e);
            }
        },
        None => None,
    };
    let reply = Reply::Pid {
        pid: zygote.pid(),
        at_ns: state::monotonic_ns(),
    };
    if proto::send(control.as_fd(), &Message::Reply { reply }, &[]).is_err() {
        return discard(zygote, pool, "daemon gone");
    }
    match wait_for_claim(&control, &zygote, cfg.generation) {
        Ok(dir) => {
            let dir = TaskDir::at(dir);
            redirect_log(&dir);
            // Before the task's init exists (cloned from here) or gets its
            // task (the child): the task's CPUs are what runc would give it.
            if let Some(original) = &original_cpus {
                crate::numa::widen(original, zygote.pid());
            }
            info!(profile = %cfg.profile, pid = zygote.pid(), dir = %dir.path().display(), "zygote claimed");
            monitor::serve(&dir, control, Source::Warm { zygote, pool, born_ns })
        }
        Err(why) => discard(zygote, pool, why),
    }
}

/// Puts `pid` in a fresh pool cgroup under `parent` ([`pool_cgroup_name`]).
fn place(parent: &Path, daemon_dir: &DaemonDir, pid: i32) -> Result<Cgroup, Failure> {
    let path = parent.join(pool_cgroup_name(daemon_dir, pid));
    let internal = |e: &dyn std::error::Error| Failure::of(FailureKind::Internal, e);
    let layout = Layout::detect().map_err(|e| internal(&e))?;
    let cg = Cgroup::new(layout, &path.to_string_lossy(), "").map_err(|e| internal(&e))?;
    cg.create(None)
        .map_err(|e| Failure::context(FailureKind::Internal, "create pool cgroup", &e))?;
    if let Err(e) = cg.add_task(pid) {
        let _ = cg.remove();
        let what = format!("place zygote in {}", path.display());
        return Err(Failure::context(FailureKind::Internal, what, &e));
    }
    Ok(cg)
}

/// Blocks until the daemon claims the zygote (its task directory) or the
/// zygote must go (the reason). Answers the pool's pings meanwhile with
/// its child's state and `generation`.
fn wait_for_claim(control: &OwnedFd, zygote: &Zygote, generation: Generation) -> Result<PathBuf, &'static str> {
    let pidfd = zygote_runtime::sys::pidfd_open(zygote.pid()).map_err(|_| "pidfd_open failed")?;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: control.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if zygote_runtime::sys::poll(&mut fds, -1) == 0 {
            continue;
        }
        if fds[1].revents != 0 {
            return Err("zygote child died");
        }
        match proto::recv::<Request>(control.as_fd()) {
            Ok((Request::Claim { dir }, _)) if zygote.alive() => return Ok(dir),
            Ok((Request::Claim { .. }, _)) => return Err("zygote child died"),
            Ok((Request::Ping, _)) => {
                let child = child_state(zygote);
                let reply = Reply::Pong { child, generation };
                let _ = proto::send(control.as_fd(), &Message::Reply { reply }, &[]);
                if child == ChildState::Gone {
                    return Err("zygote child died");
                }
            }
            Ok((other, _)) => {
                let message = format!("a waiting zygote only accepts a claim, not {other:?}");
                let reply = Reply::Error {
                    failure: Failure::new(FailureKind::WrongPeer, message),
                };
                let _ = proto::send(control.as_fd(), &Message::Reply { reply }, &[]);
            }
            Err(proto::WireError::Io(nix::Error::EAGAIN | nix::Error::EINTR)) => {}
            Err(_) => return Err("daemon closed the zygote's socket"),
        }
    }
}

/// The child's state for a ping: gone (reaped now if it exited), stopped
/// (`T`/`t` in `/proc/<pid>/stat`: it would not serve a task), or waiting.
fn child_state(zygote: &Zygote) -> ChildState {
    if !zygote.alive() {
        return ChildState::Gone;
    }
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", zygote.pid())).unwrap_or_default();
    // "pid (comm) state ...": comm may hold spaces and parentheses.
    match stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
    {
        Some('T' | 't') => ChildState::Stopped,
        _ => ChildState::Waiting,
    }
}

fn discard(zygote: Zygote, pool: Option<Cgroup>, why: &str) -> i32 {
    info!(pid = zygote.pid(), why, "zygote discarded");
    // Dropping the zygote kills and reaps its child.
    drop(zygote);
    if let Some(cg) = pool {
        if let Err(e) = cg.remove() {
            warn!(cgroup = %cg.path().display(), error = %proto::error_chain(&e), "cannot remove the pool cgroup");
        }
    }
    0
}

/// From the claim on, this process logs to the task's `monitor.log`.
fn redirect_log(dir: &TaskDir) {
    let path = dir.monitor_log();
    match std::fs::OpenOptions::new().create(true).append(true).open(&path) {
        Ok(f) => {
            let _ = zygote_runtime::sys::dup2_all(&[(f.as_raw_fd(), 1), (f.as_raw_fd(), 2)]);
        }
        Err(e) => warn!(path = %path.display(), error = %e, "cannot open the task's monitor log"),
    }
}

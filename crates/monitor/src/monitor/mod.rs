//! The monitor: one per task, single-threaded.
//!
//! Started by the daemon as `containerd-shim-zygote-v1 __monitor <task dir>`
//! with the control socket on fd 3. It creates the container (stopped at its
//! exec barrier), answers the daemon's requests, reaps every child, records
//! exits in `state.json` before reporting them, pumps stdio, watches for OOM
//! kills, and restarts the daemon if the daemon dies. It exits only after
//! the daemon's `Destroy` (or when creation failed).

//!
//! Files: [`create`] makes the container and answers the create,
//! [`event_loop`] polls and dispatches, [`requests`] answers the daemon,
//! [`exits`] reaps, reports exits and destroys, [`persist`] keeps
//! `state.json`.

mod create;
mod event_loop;
mod exits;
mod persist;
mod requests;

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::unistd::Pid;
use tracing::warn;
use zygote_runtime::cgroups::Cgroup;
use zygote_runtime::container::{ContainerConfig, Pending};
use zygote_runtime::zygote::Zygote;

use crate::stdio::ProcessIo;
use crate::sys;
use zygote_contract::proto::{self, Message, Reply};
use zygote_contract::state::{self, ProcState, TaskConfig};
use zygote_contract::TaskDir;

use exits::Unreported;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("listen on {path}")]
    Listen {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error(transparent)]
    Addr(Box<zygote_contract::sockaddr::AddrError>),
    #[error("control socket")]
    Proto(#[from] proto::WireError),
}

struct Proc {
    state: ProcState,
    pending: Option<Pending>,
    io: ProcessIo,
    /// Readable when the process exits: wakes the loop to reap it at once.
    pidfd: Option<OwnedFd>,
}

impl Proc {
    fn new(pid: i32, pending: Pending, io: ProcessIo) -> Self {
        let pidfd = zygote_runtime::sys::pidfd_open(pid)
            .map_err(|e| warn!(pid, error = %e, "pidfd_open failed; exits seen by the 1 s sweep"))
            .ok();
        Proc {
            state: ProcState::created(pid),
            pending: Some(pending),
            io,
            pidfd,
        }
    }
}

struct Monitor {
    dir: TaskDir,
    cfg: TaskConfig,
    container: ContainerConfig,
    cgroup: Cgroup,
    /// The container has its own pid namespace (so the kernel kills the rest
    /// when init dies); otherwise we kill the cgroup like runc-v2 does.
    private_pidns: bool,
    control: Option<OwnedFd>,
    listener: OwnedFd,
    conns: Vec<(u64, OwnedFd)>,
    init: Proc,
    execs: BTreeMap<String, Proc>,
    oom_fd: Option<OwnedFd>,
    oom_kills: u64,
    log_binaries: Vec<Pid>,
    daemon_lost: Option<(Instant, Duration)>,
    /// Exits not reported yet: their output is still being read.
    unreported: Vec<Unreported>,
    /// `state.json` is behind what we know (a write failed, e.g. ENOSPC):
    /// retried on every wake-up; the truth stays in memory meanwhile.
    unsaved: bool,
    /// A full state dir has been reported in containerd's log.
    reported_full: bool,
}

/// Runs a monitor for the task in `dir`. Returns the process exit code.
/// Must be called in a fresh, single-threaded process.
pub fn run(dir: &Path) -> i32 {
    let dir = TaskDir::at(dir);
    let control = sys::take_control_fd();
    let _ = nix::unistd::setsid();
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        warn!(error = %e, "cannot become a subreaper");
    }
    serve(&dir, control, Source::Cold)
}

/// Where the container's process comes from.
pub enum Source {
    /// Cloned now by this monitor.
    Cold,
    /// A warm zygote's child, and the cgroup it was placed in in advance.
    Warm {
        zygote: Zygote,
        pool: Option<Cgroup>,
        born_ns: i64,
    },
}

/// Creates the task in `dir` from `source`, answers the create, and runs
/// the event loop. Returns the process exit code.
pub fn serve(dir: &TaskDir, control: OwnedFd, source: Source) -> i32 {
    match create::create(dir, &control, source) {
        Ok(mut m) => {
            m.control = Some(control);
            m.run_loop();
            0
        }
        Err(failure) => {
            let _ = proto::send(
                control.as_fd(),
                &Message::Reply {
                    reply: Reply::Error { failure },
                },
                &[],
            );
            1
        }
    }
}

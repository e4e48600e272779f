//! Warm zygotes: container children cloned before their task is known.
//!
//! [`Zygote::spawn`] runs in a single-threaded process (the zygote's
//! monitor). It opens its own namespace files for the kinds it is about to
//! create, clones a child into fresh `pre` namespaces (pid, uts, ipc, net as
//! the profile says) and leaves the child blocked on the sync channel. On
//! cgroup v2, which cannot rename a cgroup, a claim does not move the child:
//! [`Zygote::clone_init`] clones the init straight into the task's cgroup
//! (`CLONE_INTO_CGROUP`) joining the child's uts, ipc and net namespaces.
//! [`Zygote::serve`] hands it a task: the stdio descriptors, then a
//! [`ZygoteTask`]. The child loads the spec, builds its plan with
//! [`build::zygote_plan`] (unsharing what was not created in advance, which
//! always includes the mount namespace, and going back to the parent's
//! namespaces the spec does not want new) and runs the ordinary init
//! sequence from [`Phase::Namespaces`]. The caller's `place` closure puts the
//! child in its final cgroup (renaming a pre-placed cgroup, or a migration)
//! before `Placed` is sent; from `Ready` on it is a [`Pending`] exactly like
//! the cold path's. A spec the child cannot serve
//! ([`build::zygote_misfit`]: a pid namespace joined by path, the host's pid
//! namespace, a user namespace) is not sent to it: the zygote's process drops
//! the child and clones the init itself, as a cold monitor does.

use std::os::fd::{AsFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::container::{
    await_ready, create_adjusted, ensure_single_threaded, placing_failed, report_and_exit, stdio_plan, ChildGuard,
    ContainerConfig, Pending, Stdio,
};
use crate::error::{Context, RuntimeError};
use crate::guest::{GuestSupport, GuestTask};
use crate::init::plan::NsJoin;
use crate::init::{self, build, fs::open_owned, Message, Phase, StdioPlan, SyncChannel};
use crate::security::Security;
use crate::sys;

/// Namespace kinds a zygote may create before its task is known. Mount and
/// cgroup are never among them: a mount namespace copied before the task
/// would miss the mounts made since (containerd's rootfs, kubelet's
/// volumes), and a cgroup namespace must be rooted at the final cgroup.
pub const PRECREATABLE: CloneFlags = CloneFlags::CLONE_NEWPID
    .union(CloneFlags::CLONE_NEWUTS)
    .union(CloneFlags::CLONE_NEWIPC)
    .union(CloneFlags::CLONE_NEWNET);

/// What a zygote child needs to become a given container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZygoteTask {
    /// Container id (for messages).
    pub id: String,
    /// Bundle directory; the child loads `config.json` from it.
    pub bundle: PathBuf,
    /// Absolute host path of the mounted rootfs.
    pub rootfs: PathBuf,
    /// `process.terminal`: no stdio descriptors are sent.
    pub terminal: bool,
    /// Compiled seccomp and prepared Landlock.
    pub security: Security,
    /// Set for a guest (Wasm) task.
    #[serde(default)]
    pub guest: Option<GuestTask>,
}

/// A child waiting in fresh namespaces for a task.
#[derive(Debug)]
pub struct Zygote {
    pid: Pid,
    pre: CloneFlags,
    chan: SyncChannel,
    guard: ChildGuard,
}

impl Zygote {
    /// Clone a zygote child into new `pre` namespaces (only
    /// [`PRECREATABLE`] kinds). Must be called from a single-threaded
    /// process that reaps its children. With `guest`, the child can serve
    /// guest tasks too, and warms the runner first when asked to.
    pub fn spawn(pre: CloneFlags, guest: Option<GuestSupport>) -> Result<Zygote, RuntimeError> {
        if !PRECREATABLE.contains(pre) {
            return Err(RuntimeError::Setup(format!(
                "namespaces {:?} cannot be created before the task is known",
                pre.difference(PRECREATABLE)
            )));
        }
        ensure_single_threaded()?;
        let mut host_ns = Vec::new();
        for kind in [
            CloneFlags::CLONE_NEWUTS,
            CloneFlags::CLONE_NEWIPC,
            CloneFlags::CLONE_NEWNET,
        ] {
            if pre.contains(kind) {
                let path = format!("/proc/self/ns/{}", init::namespaces::ns_name(kind));
                let fd = open_owned(path.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                    .ctx(|| format!("open {path}"))?;
                host_ns.push((kind, fd));
            }
        }
        let (parent, child) = SyncChannel::pair()?;
        // SAFETY: the caller is single-threaded (checked above); the child
        // only runs `zygote_main`, which never returns.
        match unsafe { sys::clone3_fork(pre) }.ctx(|| format!("clone3 zygote with {pre:?}"))? {
            ForkResult::Child => {
                drop(parent);
                zygote_main(pre, &host_ns, guest.as_ref(), &child)
            }
            ForkResult::Parent { child: pid } => Ok(Zygote {
                pid,
                pre,
                chan: parent,
                guard: ChildGuard(Some(pid)),
            }),
        }
    }

    /// Host pid of the zygote child.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// The namespaces the child was cloned into.
    pub fn pre(&self) -> CloneFlags {
        self.pre
    }

    /// True while the child has not exited (a dead one is reaped here).
    pub fn alive(&self) -> bool {
        matches!(
            waitpid(self.pid, Some(WaitPidFlag::WNOHANG)),
            Ok(WaitStatus::StillAlive)
        )
    }

    /// Hand the child its task and wait until it is at the exec barrier.
    /// `place` puts the child (by host pid) in its final cgroup; it runs
    /// while the child already loads its spec. On error the child is killed
    /// and reaped.
    pub fn serve(
        self,
        task: &ZygoteTask,
        stdio: Stdio,
        place: impl FnOnce(i32) -> Result<(), RuntimeError>,
    ) -> Result<Pending, RuntimeError> {
        let Zygote { pid, chan, guard, .. } = self;
        if let StdioPlan::Fds { stdin, stdout, stderr } = stdio_plan(stdio)? {
            for fd in [&stdin, &stdout, &stderr] {
                chan.send_with_fd(&Message::Fd, Some(fd.as_fd()))?;
            }
        }
        let json = serde_json::to_string(task).map_err(|e| RuntimeError::Sync(format!("encode task: {e}")))?;
        chan.send(&Message::Task(json))?;
        let t = Instant::now();
        if let Err(e) = place(pid.as_raw()) {
            return Err(placing_failed(&task.id, &chan, guard, e));
        }
        let place_us = t.elapsed().as_micros() as u64;
        let _ = chan.send(&Message::Placed);
        let mut pending = await_ready(&task.id, pid, chan, guard)?;
        pending.place_us = place_us;
        Ok(pending)
    }

    /// cgroup v2 (no rename, so a pre-placed child would still migrate):
    /// the init is cloned now, straight into `cgroup` (`CLONE_INTO_CGROUP`,
    /// see [`create_container`]), and joins the child's pre-made uts, ipc
    /// and net namespaces; its pid namespace is new (the child is the init
    /// of its own, and a pid namespace has one init). The child goes once the
    /// init is at its barrier (dropping it kills and reaps it; the init holds
    /// the namespaces by then).
    pub fn clone_init(self, cfg: &ContainerConfig, cgroup: &Cgroup, stdio: Stdio) -> Result<Pending, RuntimeError> {
        let pid = self.pid.as_raw();
        let pre = self.pre;
        let r = create_adjusted(cfg, cgroup, stdio, |plan| {
            let ns = &mut plan.namespaces;
            for kind in [
                CloneFlags::CLONE_NEWUTS,
                CloneFlags::CLONE_NEWIPC,
                CloneFlags::CLONE_NEWNET,
            ] {
                if pre.contains(kind) && ns.clone_flags.contains(kind) {
                    let path = PathBuf::from(format!("/proc/{pid}/ns/{}", init::namespaces::ns_name(kind)));
                    let fd = open_owned(path.as_path(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                        .ctx(|| format!("open {}", path.display()))?;
                    ns.clone_flags.remove(kind);
                    ns.join_in_child.push(NsJoin { kind, path, fd });
                }
            }
            Ok(())
        });
        drop(self);
        r
    }
}

/// The zygote child: wait for a task, build the plan, run the init
/// sequence. A parent that goes away without a task makes it exit quietly.
fn zygote_main(
    pre: CloneFlags,
    host_ns: &[(CloneFlags, OwnedFd)],
    guest: Option<&GuestSupport>,
    chan: &SyncChannel,
) -> ! {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // A zygote killed with SIGKILL takes its child along (idle or claimed:
        // the claimed zygote process is the task's monitor).
        sys::die_with_parent().ctx(|| "prctl(PR_SET_PDEATHSIG)".into())?;
        sys::reset_signals().ctx(|| "reset signal dispositions".into())?;
        if let Some(GuestSupport {
            runner,
            warm: true,
            hot,
        }) = guest
        {
            if let Err(e) = runner.warm(hot) {
                // Not fatal: a claim loads what it needs itself.
                chan.warn(format!("warming the guest runner: {}", crate::error::chain(&e)));
            }
        }
        let mut fds = Vec::new();
        let json = loop {
            match chan.recv()? {
                Some((Message::Fd, Some(fd))) if fds.len() < 3 => fds.push(fd),
                Some((Message::Task(json), _)) => break json,
                None => sys::exit_now(0),
                Some((other, _)) => {
                    return Err(RuntimeError::Sync(format!(
                        "zygote expected a task, got {}",
                        other.name()
                    )))
                }
            }
        };
        let task: ZygoteTask =
            serde_json::from_str(&json).map_err(|e| RuntimeError::Sync(format!("decode task: {e}")))?;
        let stdio = if task.terminal {
            StdioPlan::Terminal
        } else {
            let mut it = fds.into_iter();
            match (it.next(), it.next(), it.next()) {
                (Some(stdin), Some(stdout), Some(stderr)) => StdioPlan::Fds { stdin, stdout, stderr },
                _ => {
                    return Err(RuntimeError::Sync(
                        "zygote task without its three stdio descriptors".into(),
                    ))
                }
            }
        };
        let spec = crate::spec::load(&task.bundle)?;
        let mut plan = build::zygote_plan(&spec, &task.bundle, &task.rootfs, stdio, &task.security, pre, host_ns)?;
        if let Some(g) = task.guest {
            let runner = guest
                .map(|s| s.runner)
                .ok_or_else(|| RuntimeError::Setup("this zygote cannot run guest (Wasm) tasks".into()))?;
            plan = init::guest::into_guest_plan(plan, g, runner, &task.rootfs)?;
        }
        init::run(&plan, Phase::Namespaces, chan)
    }));
    report_and_exit(result, chan)
}

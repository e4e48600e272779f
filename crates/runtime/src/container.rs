//! Parent side of container-process creation: the public API the monitor
//! calls ([`create_container`], [`exec_process`], [`Pending::start`]).
//!
//! It builds the [`InitPlan`], clones the child (through an intermediate
//! process when namespaces — always pid for exec — must be joined before
//! cloning), does the parent's part of the setup (uid/gid maps, cgroup,
//! oom_score_adj), releases the child into [`init::run`] and collects its
//! warnings, pty master and readiness over the sync channel.
//!
//! **Only call these from a single-threaded process** (the monitor): they
//! fork. The caller should be a child subreaper: processes created through
//! an intermediate are reparented to it, and it reaps everything once a
//! [`Pending`] is returned (on error the child is killed and reaped here).

use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use oci_spec::runtime::{LinuxIdMapping, Process, Spec};

use crate::cgroups::Cgroup;
use crate::error::{Context, RuntimeError};
use crate::guest::{GuestRunner, GuestTask};
use crate::init::{self, build, fs::open_owned, InitPlan, Message, Phase, StdioPlan, SyncChannel};
use crate::security::Security;
use crate::sys;

/// What the runtime needs to know about a container.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    /// Container id.
    pub id: String,
    /// Bundle directory (relative bind-mount sources are resolved in it).
    pub bundle: PathBuf,
    /// Absolute host path of the rootfs, already mounted.
    pub rootfs: PathBuf,
    /// The validated spec.
    pub spec: Spec,
    /// Compiled seccomp and prepared Landlock for every process of it.
    pub security: Security,
    /// A guest payload (Wasm) run instead of exec'ing `args[0]`.
    pub guest: Option<(GuestTask, &'static dyn GuestRunner)>,
}

/// Standard I/O of a new process.
#[derive(Debug)]
pub enum Stdio {
    /// Use these as fds 0, 1, 2 in the process. `None` means the host's
    /// `/dev/null`, opened in the parent before cloning (so it works
    /// whatever the container's `/dev` holds).
    Fds {
        /// Becomes fd 0.
        stdin: Option<OwnedFd>,
        /// Becomes fd 1.
        stdout: Option<OwnedFd>,
        /// Becomes fd 2.
        stderr: Option<OwnedFd>,
    },
    /// `process.terminal = true`: a pty allocated from the container's own
    /// devpts (`/dev/ptmx -> pts/ptmx`, opened after `pivot_root`), the slave
    /// as controlling terminal and fds 0-2, the master handed back in
    /// [`Pending::pty_master`].
    Terminal,
}

/// A process stopped at the exec barrier.
#[derive(Debug)]
pub struct Pending {
    /// Host pid of the process (the caller reaps it).
    pub pid: i32,
    /// The pty master for [`Stdio::Terminal`].
    pub pty_master: Option<OwnedFd>,
    /// Microseconds the child spent installing Landlock and seccomp so far
    /// ([`Pending::start`] adds a late filter's time).
    pub security_us: u64,
    /// Microseconds spent moving the process into its cgroup (0 when it was
    /// cloned into it).
    pub place_us: u64,
    /// The process was cloned straight into its cgroup
    /// (`CLONE_INTO_CGROUP`, cgroup v2): no migration.
    pub cloned_into_cgroup: bool,
    chan: SyncChannel,
}

impl Pending {
    /// Release the exec barrier. Returns `Ok` once `execve` succeeded (the
    /// child's end of the sync socket is close-on-exec, so EOF means exec
    /// happened) or `Err` with the child's error text if exec failed — the
    /// child has then exited and the caller reaps it. Dropping a `Pending`
    /// without starting it makes the child exit with status 1.
    pub fn start(mut self) -> Result<(), RuntimeError> {
        self.chan.send(&Message::Go)?;
        loop {
            match self.chan.recv()? {
                None => return Ok(()),
                Some((Message::SecurityTime(us), _)) => self.security_us += us,
                Some((Message::Error(text), _)) => return Err(RuntimeError::Container(text)),
                Some((Message::Warning(text), _)) => {
                    tracing::warn!(pid = self.pid, "container process: {text}")
                }
                Some((other, _)) => return Err(RuntimeError::Sync(format!("unexpected {} after go", other.name()))),
            }
        }
    }
}

/// Create the container's init process, stopped at the exec barrier.
///
/// The executable is resolved in the container's `PATH` here, so a missing
/// binary fails `create` (`exec: "x": executable file not found in $PATH`).
/// On error the child is killed and reaped before returning.
///
/// Must be called from a single-threaded process (it forks); see the module
/// docs for the subreaper requirement.
pub fn create_container(cfg: &ContainerConfig, cgroup: &Cgroup, stdio: Stdio) -> Result<Pending, RuntimeError> {
    create_adjusted(cfg, cgroup, stdio, |_| Ok(()))
}

/// [`create_container`] with the plan changed by `adjust` before the clone
/// (a warm zygote's claim on cgroup v2 joins its child's namespaces).
pub(crate) fn create_adjusted(
    cfg: &ContainerConfig,
    cgroup: &Cgroup,
    stdio: Stdio,
    adjust: impl FnOnce(&mut InitPlan) -> Result<(), RuntimeError>,
) -> Result<Pending, RuntimeError> {
    let mut plan = build::container_plan(&cfg.spec, &cfg.bundle, &cfg.rootfs, stdio_plan(stdio)?, &cfg.security)?;
    if let Some((task, runner)) = &cfg.guest {
        plan = init::guest::into_guest_plan(plan, task.clone(), *runner, &cfg.rootfs)?;
    }
    adjust(&mut plan)?;
    let oom = cfg.spec.process().as_ref().and_then(|p| p.oom_score_adj());
    spawn(&cfg.id, plan, cgroup, oom)
}

/// Exec an extra process into the running container whose init is
/// `init_pid`: all its namespaces are joined (user first) in an intermediate
/// process whose child is therefore inside the pid namespace; the
/// intermediate is reaped here and the process is reparented to the caller
/// (which must be a subreaper). The process joins the cgroup, gets
/// `process`'s credentials, capabilities, env, cwd and rlimits plus the
/// container's seccomp filter, and stops at the barrier. `Pending::pid` is
/// its host pid.
///
/// Must be called from a single-threaded process (it forks).
pub fn exec_process(
    cfg: &ContainerConfig,
    init_pid: i32,
    cgroup: &Cgroup,
    process: &Process,
    stdio: Stdio,
) -> Result<Pending, RuntimeError> {
    let plan = build::exec_plan(init_pid, process, stdio_plan(stdio)?, &cfg.security)?;
    if plan.namespaces.join_before_clone.is_empty() {
        return Err(RuntimeError::Setup(format!(
            "process {init_pid} shares all namespaces with the caller; refusing to exec outside a container"
        )));
    }
    spawn(&cfg.id, plan, cgroup, process.oom_score_adj())
}

/// Refuse to fork from a multi-threaded process: the child of such a fork
/// may inherit locks held by other threads (one procfs read, ~20µs).
pub(crate) fn ensure_single_threaded() -> Result<(), RuntimeError> {
    let status = std::fs::read_to_string("/proc/self/status").ctx(|| "read /proc/self/status".into())?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .unwrap_or(1);
    if threads > 1 {
        return Err(RuntimeError::Setup(format!(
            "container processes must be created from a single-threaded process (this one has {threads} threads)"
        )));
    }
    Ok(())
}

pub(crate) fn stdio_plan(stdio: Stdio) -> Result<StdioPlan, RuntimeError> {
    match stdio {
        Stdio::Terminal => Ok(StdioPlan::Terminal),
        Stdio::Fds { stdin, stdout, stderr } => {
            let null = || -> Result<OwnedFd, RuntimeError> {
                open_owned("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).ctx(|| "open /dev/null".into())
            };
            Ok(StdioPlan::Fds {
                stdin: stdin.map_or_else(null, Ok)?,
                stdout: stdout.map_or_else(null, Ok)?,
                stderr: stderr.map_or_else(null, Ok)?,
            })
        }
    }
}

/// Kills and reaps the child unless disarmed (error paths).
#[derive(Debug)]
pub(crate) struct ChildGuard(pub(crate) Option<Pid>);

impl ChildGuard {
    fn disarm(mut self) {
        self.0 = None;
    }

    /// Kill, reap and describe how the child ended.
    pub(crate) fn finish(mut self) -> String {
        match self.0.take() {
            Some(pid) => reap(pid, true),
            None => String::new(),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            reap(pid, true);
        }
    }
}

pub(crate) fn reap(pid: Pid, kill_first: bool) -> String {
    if kill_first {
        let _ = kill(pid, Signal::SIGKILL);
    }
    loop {
        match waitpid(pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(WaitStatus::Exited(_, code)) => return format!("exit status {code}"),
            Ok(WaitStatus::Signaled(_, sig, _)) => return format!("killed by {sig}"),
            Ok(other) => return format!("{other:?}"),
            Err(e) => return format!("not reaped: {e}"),
        }
    }
}

/// Clone the child (directly or via an intermediate), do the parent's part,
/// release it and wait until it is ready.
fn spawn(id: &str, plan: InitPlan, cgroup: &Cgroup, oom_score_adj: Option<i32>) -> Result<Pending, RuntimeError> {
    ensure_single_threaded()?;
    let (parent, child) = SyncChannel::pair()?;
    let mut cloned_into_cgroup = false;
    let pid = if plan.namespaces.needs_intermediate() {
        // SAFETY: the caller is single-threaded (documented requirement of
        // the public API); the intermediate only runs `intermediate_main`,
        // which never returns.
        match unsafe { fork() }.ctx(|| "fork intermediate process".into())? {
            ForkResult::Child => {
                drop(parent);
                intermediate_main(&plan, &child)
            }
            ForkResult::Parent { child: ipid } => {
                drop(child);
                let msg = parent.recv();
                let status = reap(ipid, false);
                match msg? {
                    Some((Message::ChildPid(pid), _)) => Pid::from_raw(pid),
                    Some((Message::Error(text), _)) => return Err(RuntimeError::Container(text)),
                    Some((other, _)) => {
                        return Err(RuntimeError::Sync(format!(
                            "unexpected {} from the intermediate process",
                            other.name()
                        )))
                    }
                    None => {
                        return Err(RuntimeError::Sync(format!(
                            "intermediate process ended ({status}) without reporting a pid"
                        )))
                    }
                }
            }
        }
    } else {
        // On cgroup v2 the child starts in its cgroup; where that is refused
        // (old kernel, odd cgroup) it is cloned as before and migrated.
        let target = cgroup.clone_target();
        let into = match &target {
            // SAFETY: as above; the child only runs `child_main`.
            Some(fd) => Some(unsafe { sys::clone3_fork_into(plan.namespaces.clone_flags, Some(fd.as_fd())) }),
            None => None,
        };
        let forked = match into {
            Some(Ok(r)) => {
                cloned_into_cgroup = true;
                r
            }
            other => {
                if let Some(Err(e)) = other {
                    tracing::debug!(container = id, error = %e, "clone3 with CLONE_INTO_CGROUP refused, migrating");
                }
                // SAFETY: as above; the child only runs `child_main`.
                unsafe { sys::clone3_fork(plan.namespaces.clone_flags) }
                    .ctx(|| format!("clone3 with {:?}", plan.namespaces.clone_flags))?
            }
        };
        match forked {
            ForkResult::Child => {
                drop(parent);
                child_main(&plan, &child, true)
            }
            ForkResult::Parent { child: pid } => {
                drop(child);
                pid
            }
        }
    };
    let guard = ChildGuard(Some(pid));
    if plan.namespaces.new_user_ns() {
        write_id_map(pid, "uid_map", &plan.namespaces.uid_mappings)?;
        write_id_map(pid, "gid_map", &plan.namespaces.gid_mappings)?;
    }
    // The child starts its setup now; moving it into its cgroup (slow on
    // cgroup v1) overlaps with that, and `Placed` tells it when it is done.
    parent.send(&Message::Continue)?;
    let t = Instant::now();
    let placed = if cloned_into_cgroup {
        Ok(())
    } else {
        cgroup.add_task(pid.as_raw()).map_err(RuntimeError::from)
    };
    let place_us = if cloned_into_cgroup {
        0
    } else {
        t.elapsed().as_micros() as u64
    };
    let placed = placed.and_then(|()| oom_score_adj.map_or(Ok(()), |adj| set_oom_score_adj(pid, adj)));
    if let Err(e) = placed {
        return Err(placing_failed(id, &parent, guard, e));
    }
    // A child that already failed has closed its end; its Error is read below.
    let _ = parent.send(&Message::Placed);
    let mut pending = await_ready(id, pid, parent, guard)?;
    pending.place_us = place_us;
    pending.cloned_into_cgroup = cloned_into_cgroup;
    Ok(pending)
}

/// Placing the child in its cgroup failed. The child may have failed (and
/// exited) on its own meanwhile, which is what made placing it fail: its own
/// report is the better error. The child is killed and reaped.
pub(crate) fn placing_failed(id: &str, chan: &SyncChannel, guard: ChildGuard, e: RuntimeError) -> RuntimeError {
    let status = guard.finish();
    while let Ok(Some((m, _))) = chan.recv() {
        if let Message::Error(text) = m {
            return RuntimeError::Container(text);
        }
    }
    tracing::debug!(container = id, %status, "child ended while being placed");
    e
}

/// Collect the child's warnings, pty master and security time until it is
/// `Ready` at the exec barrier (shared by the cold and the warm path).
pub(crate) fn await_ready(id: &str, pid: Pid, parent: SyncChannel, guard: ChildGuard) -> Result<Pending, RuntimeError> {
    let mut pty_master = None;
    let mut security_us = 0;
    loop {
        match parent.recv()? {
            Some((Message::Warning(text), _)) => {
                tracing::warn!(container = id, pid = pid.as_raw(), "container process: {text}")
            }
            Some((Message::PtyMaster, Some(fd))) => pty_master = Some(fd),
            Some((Message::SecurityTime(us), _)) => security_us += us,
            Some((Message::Ready, _)) => break,
            Some((Message::Error(text), _)) => {
                drop(guard);
                return Err(RuntimeError::Container(text));
            }
            Some((other, _)) => return Err(RuntimeError::Sync(format!("unexpected {} before ready", other.name()))),
            None => {
                let status = guard.finish();
                return Err(RuntimeError::Sync(format!(
                    "container process ended ({status}) before it was ready"
                )));
            }
        }
    }
    guard.disarm();
    tracing::debug!(
        container = id,
        pid = pid.as_raw(),
        "container process ready at the exec barrier"
    );
    Ok(Pending {
        pid: pid.as_raw(),
        pty_master,
        security_us,
        place_us: 0,
        cloned_into_cgroup: false,
        chan: parent,
    })
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    let msg = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("container init panicked: {msg}")
}

/// Report `result` (an error or a panic) to the parent and exit.
pub(crate) fn report_and_exit(result: std::thread::Result<Result<Infallible, RuntimeError>>, chan: &SyncChannel) -> ! {
    let text = match result {
        Ok(Ok(never)) => match never {},
        Ok(Err(e)) => crate::error::chain(&e),
        Err(p) => panic_text(p),
    };
    let _ = chan.send(&Message::Error(text));
    sys::exit_now(1)
}

/// Entry point of the cloned child: wait for the parent's `Continue`, run
/// the init sequence from the start. Never returns. A child cloned by the
/// monitor itself (`direct`) dies with it; one cloned by an intermediate
/// process cannot ask for that (its parent exits at once), so the daemon
/// kills it if its monitor is lost.
fn child_main(plan: &InitPlan, chan: &SyncChannel, direct: bool) -> ! {
    let result = catch_unwind(AssertUnwindSafe(|| {
        if direct {
            sys::die_with_parent().ctx(|| "prctl(PR_SET_PDEATHSIG)".into())?;
        }
        sys::reset_signals().ctx(|| "reset signal dispositions".into())?;
        chan.wait_for(&Message::Continue)?;
        init::run(plan, Phase::Namespaces, chan)
    }));
    report_and_exit(result, chan)
}

/// Entry point of the intermediate process: join the pre-clone namespaces,
/// clone the real child into them, report its host pid and exit.
fn intermediate_main(plan: &InitPlan, chan: &SyncChannel) -> ! {
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<Infallible, RuntimeError> {
        init::namespaces::join_before_clone(&plan.namespaces)?;
        // SAFETY: this intermediate process is single-threaded (forked from
        // a single-threaded caller); the child only runs `child_main`.
        match unsafe { sys::clone3_fork(plan.namespaces.clone_flags) }
            .ctx(|| format!("clone3 with {:?}", plan.namespaces.clone_flags))?
        {
            ForkResult::Child => child_main(plan, chan, false),
            ForkResult::Parent { child } => {
                chan.send(&Message::ChildPid(child.as_raw()))?;
                sys::exit_now(0)
            }
        }
    }));
    report_and_exit(result, chan)
}

fn write_id_map(pid: Pid, file: &str, mappings: &[LinuxIdMapping]) -> Result<(), RuntimeError> {
    let text: String = mappings
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    let path = format!("/proc/{pid}/{file}");
    // One write(2): the kernel accepts a map only in a single write.
    std::fs::write(&path, text.as_bytes()).ctx(|| format!("write {path}"))
}

/// Write `/proc/<pid>/oom_score_adj`. Without `CAP_SYS_RESOURCE` the value
/// cannot be lowered; like containerd's `restrict_oom_score_adj` we then
/// keep the current (higher) value and warn instead of failing.
pub fn set_oom_score_adj(pid: Pid, adj: i32) -> Result<(), RuntimeError> {
    let path = format!("/proc/{pid}/oom_score_adj");
    match std::fs::write(&path, adj.to_string()) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) => {
            let current: i32 = std::fs::read_to_string(&path)
                .ctx(|| format!("read {path}"))?
                .trim()
                .parse()
                .map_err(|_| RuntimeError::Setup(format!("{path}: not a number")))?;
            if adj < current {
                tracing::warn!(
                    pid = pid.as_raw(),
                    requested = adj,
                    kept = current,
                    "cannot lower oom_score_adj without CAP_SYS_RESOURCE; keeping the current value"
                );
                Ok(())
            } else {
                Err(RuntimeError::Io {
                    context: format!("write {path} = {adj}"),
                    error: e,
                })
            }
        }
        Err(e) => Err(RuntimeError::Io {
            context: format!("write {path} = {adj}"),
            error: e,
        }),
    }
}

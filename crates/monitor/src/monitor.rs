//! The monitor's event loop.
//!
//! Started by the daemon as `containerd-shim-zygote-v1 __monitor <task dir>`
//! with the control socket on fd 3. It creates the container (stopped at its
//! exec barrier), answers the daemon's requests, reaps every child, records
//! exits in `state.json` before reporting them, pumps stdio, watches for OOM
//! kills, and restarts the daemon if the daemon dies. It exits only after
//! the daemon's `Destroy` (or when creation failed).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tracing::{debug, info, warn};
use zygote_runtime::cgroups::Cgroup;
use zygote_runtime::container::{self, ContainerConfig, Pending};
use zygote_runtime::guest::GuestRunner;
use zygote_runtime::security::Security;
use zygote_runtime::zygote::{Zygote, ZygoteTask};

use crate::stdio::{self, ProcessIo};
use crate::sys;
use zygote_contract::proto::{self, CreateDetail, ErrorKind, Event, Message, Reply, Request};
use zygote_contract::state::{self, ProcState, Snapshot, Status, TaskConfig};
use zygote_contract::TaskDir;

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

/// The longest an exit is held back while its output is being read.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// How long unread output may sit without anyone reading it before the
/// exit is reported anyway.
const DRAIN_STALL: Duration = Duration::from_secs(1);

/// An exit waiting for its output to be read (see `report_exits`).
struct Unreported {
    event: Event,
    since: Instant,
    /// Bytes still unread at the last look, and when that last went down.
    unread: usize,
    progress: Instant,
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
    match create(dir, &control, source) {
        Ok(mut m) => {
            m.control = Some(control);
            m.run_loop();
            0
        }
        Err((kind, message)) => {
            let _ = proto::send(
                control.as_fd(),
                &Message::Reply {
                    reply: Reply::Error { kind, message },
                },
                &[],
            );
            1
        }
    }
}

fn create(dir: &TaskDir, control: &OwnedFd, source: Source) -> Result<Monitor, (ErrorKind, String)> {
    let internal = |e: &dyn std::error::Error| (ErrorKind::Internal, proto::error_chain(e));
    let t0 = Instant::now();
    let stage = |what: &str| debug!(us = t0.elapsed().as_micros() as u64, "create: {what}");
    let cfg: TaskConfig = state::read(&dir.config()).map_err(|e| internal(&e))?;
    let spec =
        zygote_runtime::spec::load(&cfg.bundle).map_err(|e| (ErrorKind::InvalidArgument, proto::error_chain(&e)))?;
    let cgroup = Cgroup::from_spec(&spec, &cfg.id).map_err(|e| (ErrorKind::InvalidArgument, proto::error_chain(&e)))?;
    let private_pidns = zygote_runtime::spec::private_pid_namespace(&spec);
    let resources = cfg
        .resources
        .clone()
        .or_else(|| spec.linux().as_ref().and_then(|l| l.resources().clone()));
    let security = match &cfg.security {
        Some(s) => s.clone(),
        None => Security::from_spec(&spec).map_err(|e| (ErrorKind::InvalidArgument, proto::error_chain(&e)))?,
    };
    let guest = cfg
        .guest
        .clone()
        .map(|g| (g, &zygote_wasm::RUNNER as &'static dyn GuestRunner));
    let container = ContainerConfig {
        id: cfg.id.clone(),
        bundle: cfg.bundle.clone(),
        rootfs: cfg.rootfs.clone(),
        spec,
        security,
        guest,
    };
    let listener = listen(&dir.monitor_socket()).map_err(|e| internal(&e))?;
    let owner = stdio::Owner {
        id: &cfg.id,
        namespace: &cfg.namespace,
        bundle: &cfg.bundle,
    };
    let (stdio, mut io) = stdio::prepare(&cfg.stdio, &owner).map_err(|e| internal(&e))?;
    let log_binaries: Vec<Pid> = io.log_binary.into_iter().collect();
    stage("spec, listener and stdio ready");
    let failed = |e: &dyn std::error::Error, kind| {
        // Our child is gone by now: processes still in the cgroup belong to
        // another container given the same path, and so does the cgroup.
        if cgroup.procs().map_or(true, |p| p.is_empty()) {
            let _ = cgroup.remove();
        }
        for pid in &log_binaries {
            let _ = waitpid(*pid, None);
        }
        (kind, proto::error_chain(e))
    };
    let oom_adj = container.spec.process().as_ref().and_then(|p| p.oom_score_adj());
    let mut detail = CreateDetail::default();
    let created = match source {
        Source::Cold => {
            if let Err(e) = cgroup.create(resources.as_ref()) {
                return Err(failed(&e, ErrorKind::InvalidArgument));
            }
            container::create_container(&container, &cgroup, stdio)
        }
        Source::Warm { zygote, pool, born_ns } => {
            detail.warm = true;
            detail.zygote_born_ns = born_ns;
            let renamed = match &pool {
                Some(p) => cgroup.create_by_rename(p, resources.as_ref()),
                None => Ok(false),
            };
            detail.cgroup_renamed = matches!(renamed, Ok(true));
            stage("cgroup renamed");
            let made = match renamed {
                Ok(true) => Ok(()),
                Ok(false) => cgroup.create(resources.as_ref()),
                Err(e) => Err(e),
            };
            if let Err(e) = made {
                // The child first (dropping the zygote kills and reaps it), so
                // its pool cgroup is empty and goes at once.
                drop(zygote);
                if let Some(p) = &pool {
                    if let Err(e) = p.remove() {
                        warn!(cgroup = %p.path().display(), error = %proto::error_chain(&e), "cannot remove the zygote's pool cgroup");
                    }
                }
                return Err(failed(&e, ErrorKind::InvalidArgument));
            }
            let task = ZygoteTask {
                id: cfg.id.clone(),
                bundle: cfg.bundle.clone(),
                rootfs: cfg.rootfs.clone(),
                terminal: cfg.stdio.terminal,
                security: container.security.clone(),
                guest: cfg.guest.clone(),
            };
            let renamed = detail.cgroup_renamed;
            let r = zygote.serve(&task, stdio, |pid| {
                if renamed {
                    // A hybrid host's unified hierarchy cannot rename.
                    cgroup.add_task_unified(pid)?;
                } else {
                    cgroup.add_task(pid)?;
                }
                match oom_adj {
                    Some(adj) => container::set_oom_score_adj(Pid::from_raw(pid), adj),
                    None => Ok(()),
                }
            });
            // What is left of the pool cgroup: all of it after a migration,
            // the unified directory after a rename on a hybrid host.
            if let Some(p) = &pool {
                if let Err(e) = p.remove() {
                    warn!(cgroup = %p.path().display(), error = %proto::error_chain(&e), "cannot remove the zygote's pool cgroup");
                }
            }
            r
        }
    };
    stage("container at its barrier");
    let mut pending = match created {
        Ok(p) => p,
        Err(e) => return Err(failed(&e, ErrorKind::FailedPrecondition)),
    };
    if let Some(master) = pending.pty_master.take() {
        if let Err(e) = io.attach_master(master) {
            drop(pending);
            let _ = cgroup.remove();
            return Err(internal(&e));
        }
    }
    detail.security_us = pending.security_us;
    let pid = pending.pid;
    let oom_fd = cgroup.oom_event_fd().unwrap_or(None);
    let oom_kills = cgroup.oom_kill_count().unwrap_or(0);
    let mut m = Monitor {
        dir: dir.clone(),
        cfg,
        container,
        cgroup,
        private_pidns,
        control: None,
        listener,
        conns: Vec::new(),
        init: Proc::new(pid, pending, io),
        execs: BTreeMap::new(),
        oom_fd,
        oom_kills,
        log_binaries,
        daemon_lost: None,
        unreported: Vec::new(),
        unsaved: false,
        reported_full: false,
    };
    state::make_reserve(dir);
    m.persist();
    let reply = Reply::Created {
        pid,
        at_ns: state::monotonic_ns(),
        detail,
    };
    if let Err(e) = proto::send(control.as_fd(), &Message::Reply { reply }, &[]) {
        // The daemon died mid-Create. Keep the container: a restarted daemon
        // adopts it, or containerd's `shim delete` destroys it.
        warn!(error = %e, "daemon gone before the create reply");
    }
    Ok(m)
}

fn listen(path: &Path) -> Result<OwnedFd, MonitorError> {
    use nix::sys::socket::{bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    let err = |source| MonitorError::Listen {
        path: path.into(),
        source,
    };
    let _ = std::fs::remove_file(path);
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(err)?;
    bind(fd.as_raw_fd(), &UnixAddr::new(path).map_err(err)?).map_err(err)?;
    listen(&fd, Backlog::new(8).map_err(err)?).map_err(err)?;
    Ok(fd)
}

#[derive(Clone)]
enum Token {
    Control,
    Listener,
    Oom,
    Child,
    Pump(Option<String>, usize),
}

impl Monitor {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            init: self.init.state.clone(),
            execs: self.execs.iter().map(|(k, v)| (k.clone(), v.state.clone())).collect(),
        }
    }

    /// Writes state.json; an exit status is on disk before it is reported.
    ///
    /// When the state dir is full, the task's reserve file (made at create)
    /// is given up so this write fits; if it still fails, the state stays
    /// in memory (the daemon gets every exit over the control socket, and
    /// Destroy returns the final snapshot) and the write is retried on every
    /// wake-up. A full state dir is reported once in containerd's log
    /// (whether or not the reserve saved the write), since our own log is
    /// likely on the same full filesystem.
    fn persist(&mut self) {
        let path = self.dir.state();
        let snap = self.snapshot();
        let mut r = state::write_atomic(&path, &snap);
        let full = r
            .as_ref()
            .err()
            .filter(|e| e.is_no_space())
            .map(|e| proto::error_chain(e));
        if full.is_some() && state::release_reserve(&self.dir) {
            r = state::write_atomic(&path, &snap);
        }
        if let Some(cause) = &full {
            if !self.reported_full {
                self.reported_full = true;
                let outcome = if r.is_ok() {
                    "saved it in the space the task reserved at create"
                } else {
                    "cannot save its state; exit statuses are kept in memory and still reported"
                };
                let text = format!(
                    "zygote: task {}: the state dir is full ({cause}); {outcome}",
                    self.cfg.id
                );
                warn!("{text}");
                crate::shim_log::write(&self.cfg.bundle, &text);
            }
        }
        match r {
            Ok(()) => {
                if self.unsaved {
                    self.unsaved = false;
                    info!(id = %self.cfg.id, "state saved again");
                    state::make_reserve(&self.dir);
                }
            }
            Err(e) => {
                if !self.unsaved && full.is_none() {
                    let text = format!(
                        "zygote: task {}: cannot save its state ({}); exit statuses are kept in memory and still reported",
                        self.cfg.id,
                        proto::error_chain(&e)
                    );
                    warn!("{text}");
                    crate::shim_log::write(&self.cfg.bundle, &text);
                }
                self.unsaved = true;
            }
        }
    }

    fn send(&mut self, msg: &Message, fds: &[RawFd]) {
        let Some(c) = &self.control else { return };
        if proto::send(c.as_fd(), msg, fds).is_err() {
            self.lose_daemon();
        }
    }

    fn lose_daemon(&mut self) {
        if self.control.take().is_some() {
            info!(id = %self.cfg.id, "daemon connection lost");
            self.daemon_lost = Some((Instant::now() + Duration::from_millis(50), Duration::from_millis(500)));
        }
    }

    fn run_loop(&mut self) {
        loop {
            let (mut fds, tokens) = self.poll_set();
            let timeout = if !self.unreported.is_empty() {
                2
            } else if self.daemon_lost.is_some() || self.unsaved {
                100
            } else {
                1000
            };
            let n = zygote_runtime::sys::poll(&mut fds, timeout);
            if n > 0 {
                for (pfd, tok) in fds.iter().zip(tokens) {
                    if pfd.revents != 0 && self.handle(tok) {
                        return;
                    }
                }
            }
            self.reap();
            self.report_exits();
            if self.unsaved {
                self.persist();
            }
            self.check_oom_v2();
            self.maybe_restart_daemon();
        }
    }

    fn poll_set(&self) -> (Vec<libc::pollfd>, Vec<Token>) {
        let mut fds = Vec::new();
        let mut tokens = Vec::new();
        let mut add = |fd: RawFd, ev: i16, t: Token| {
            fds.push(libc::pollfd {
                fd,
                events: ev,
                revents: 0,
            });
            tokens.push(t);
        };
        if let Some(c) = &self.control {
            add(c.as_raw_fd(), libc::POLLIN, Token::Control);
        }
        add(self.listener.as_raw_fd(), libc::POLLIN, Token::Listener);
        if let Some(o) = &self.oom_fd {
            add(o.as_raw_fd(), libc::POLLIN, Token::Oom);
        }
        let procs = std::iter::once((None, &self.init)).chain(self.execs.iter().map(|(k, v)| (Some(k.clone()), v)));
        for (key, p) in procs {
            if let (Some(fd), Status::Created | Status::Running) = (&p.pidfd, p.state.status) {
                add(fd.as_raw_fd(), libc::POLLIN, Token::Child);
            }
            let pumps = p.io.stdin.iter().chain(p.io.output.iter());
            for (i, pump) in pumps.enumerate() {
                if let Some((fd, ev)) = pump.interest() {
                    add(fd, ev.bits(), Token::Pump(key.clone(), i));
                }
            }
        }
        (fds, tokens)
    }

    /// Returns true when the monitor should exit.
    fn handle(&mut self, tok: Token) -> bool {
        match tok {
            Token::Control => {
                let Some(c) = &self.control else { return false };
                match proto::recv::<Request>(c.as_fd()) {
                    Ok((req, fds)) => return self.request(req, fds),
                    Err(proto::WireError::Io(nix::Error::EAGAIN)) => {}
                    Err(_) => self.lose_daemon(),
                }
            }
            Token::Listener => {
                if let Ok(fd) = sys::accept(self.listener.as_fd()) {
                    if self.control.is_some() {
                        return self.serve_oneshot(fd);
                    }
                    self.control = Some(fd);
                    self.daemon_lost = None;
                    info!(id = %self.cfg.id, "daemon connected");
                }
            }
            Token::Child => self.reap(),
            Token::Oom => {
                let mut b = [0u8; 8];
                if let Some(o) = &self.oom_fd {
                    let _ = nix::unistd::read(o.as_raw_fd(), &mut b);
                }
                self.send(&Message::Event { event: Event::Oom }, &[]);
            }
            Token::Pump(key, i) => {
                let p = match &key {
                    None => Some(&mut self.init),
                    Some(k) => self.execs.get_mut(k),
                };
                if let Some(p) = p {
                    if let Some(pump) = p.io.pumps_mut().nth(i) {
                        pump.step();
                    }
                    if p.io.output.as_ref().is_some_and(|o| o.done()) {
                        p.io.output = None;
                    }
                    if p.io.stdin.as_ref().is_some_and(|o| o.done()) {
                        p.io.stdin = None;
                    }
                }
            }
        }
        false
    }

    /// A second client while the daemon is attached (containerd's `shim
    /// delete`): answer its one request on its own connection, keeping the
    /// daemon's. Returns true when the monitor should exit.
    fn serve_oneshot(&mut self, fd: OwnedFd) -> bool {
        use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
        let _ = setsockopt(&fd, ReceiveTimeout, &nix::sys::time::TimeVal::new(2, 0));
        let Ok((req, fds)) = proto::recv::<Request>(fd.as_fd()) else {
            return false;
        };
        info!(id = %self.cfg.id, ?req, "request from a second client");
        let daemon = self.control.replace(fd);
        let exit = self.request(req, fds);
        if daemon.is_some() {
            self.control = daemon;
            self.daemon_lost = None;
        }
        exit
    }

    fn proc_mut(&mut self, exec_id: &Option<String>) -> Result<&mut Proc, Reply> {
        match exec_id {
            None => Ok(&mut self.init),
            Some(id) => self.execs.get_mut(id).ok_or_else(|| Reply::Error {
                kind: ErrorKind::NotFound,
                message: format!("process {id} not found"),
            }),
        }
    }

    fn request(&mut self, req: Request, fds: Vec<OwnedFd>) -> bool {
        debug!(?req, "request");
        let mut out_fds = Vec::new();
        let mut exit = false;
        let reply = match req {
            Request::Hello => {
                out_fds = self.conns.iter().map(|(_, f)| f.as_raw_fd()).collect();
                Reply::Snapshot {
                    snapshot: self.snapshot(),
                }
            }
            Request::AdoptConnection => {
                for fd in fds {
                    let ino = nix::sys::stat::fstat(fd.as_raw_fd()).map(|s| s.st_ino).unwrap_or(0);
                    if !self.conns.iter().any(|(i, _)| *i == ino) {
                        self.conns.push((ino, fd));
                    }
                }
                Reply::Ok
            }
            Request::Start { exec_id } => self.start(&exec_id),
            Request::Kill { exec_id, signal, all } => self.kill(&exec_id, signal, all),
            Request::Exec {
                exec_id,
                process,
                stdio,
            } => self.exec(exec_id, &process, &stdio),
            Request::CloseStdin { exec_id } => match self.proc_mut(&exec_id) {
                Ok(p) => {
                    p.io.close_stdin();
                    Reply::Ok
                }
                Err(r) => r,
            },
            Request::Resize { exec_id, width, height } => match self.proc_mut(&exec_id) {
                Ok(p) => match p.io.resize(width, height) {
                    Ok(()) => Reply::Ok,
                    Err(e) => Reply::Error {
                        kind: ErrorKind::Internal,
                        message: format!("resize pty: {e}"),
                    },
                },
                Err(r) => r,
            },
            Request::DeleteExec { exec_id } => match self.execs.get(&exec_id) {
                None => Reply::Error {
                    kind: ErrorKind::NotFound,
                    message: format!("process {exec_id} not found"),
                },
                Some(p) if p.state.status == Status::Running => Reply::Error {
                    kind: ErrorKind::FailedPrecondition,
                    message: format!("cannot delete running process {exec_id}"),
                },
                Some(_) => {
                    self.execs.remove(&exec_id);
                    self.persist();
                    Reply::Ok
                }
            },
            Request::Destroy => {
                self.destroy();
                exit = true;
                // The final state, also when it could not be saved.
                Reply::Snapshot {
                    snapshot: self.snapshot(),
                }
            }
            Request::Claim { .. } => Reply::Error {
                kind: ErrorKind::FailedPrecondition,
                message: "this monitor already serves a task".into(),
            },
        };
        self.send(&Message::Reply { reply }, &out_fds);
        exit
    }

    fn start(&mut self, exec_id: &Option<String>) -> Reply {
        if exec_id.is_some() && self.init.state.status == Status::Stopped {
            return Reply::Error {
                kind: ErrorKind::FailedPrecondition,
                message: "container is not running".into(),
            };
        }
        let p = match self.proc_mut(exec_id) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let Some(pending) = p.pending.take() else {
            return Reply::Error {
                kind: ErrorKind::FailedPrecondition,
                message: "process already started".into(),
            };
        };
        let pid = p.state.pid;
        // Nothing the process writes may be lost: containerd's readers first.
        let missing = p.io.await_readers();
        if !missing.is_empty() {
            warn!(exec = ?exec_id, fifos = ?missing, "no reader on output FIFOs; starting anyway (output is held for a late reader)");
        }
        match pending.start() {
            Ok(()) => {
                if p.state.status == Status::Created {
                    p.state.status = Status::Running;
                }
                self.persist();
                Reply::Pid {
                    pid,
                    at_ns: state::monotonic_ns(),
                }
            }
            Err(e) => Reply::Error {
                kind: ErrorKind::FailedPrecondition,
                message: proto::error_chain(&e),
            },
        }
    }

    fn kill(&mut self, exec_id: &Option<String>, signal: i32, all: bool) -> Reply {
        let sig = match Signal::try_from(signal) {
            Ok(s) => s,
            Err(_) => {
                return Reply::Error {
                    kind: ErrorKind::InvalidArgument,
                    message: format!("invalid signal {signal}"),
                }
            }
        };
        let p = match self.proc_mut(exec_id) {
            Ok(p) => p,
            Err(r) => return r,
        };
        if p.state.status == Status::Stopped {
            return Reply::Error {
                kind: ErrorKind::NotFound,
                message: "process already finished".into(),
            };
        }
        let pid = Pid::from_raw(p.state.pid);
        if all && exec_id.is_none() {
            if let Err(e) = self.cgroup.kill_all(sig) {
                warn!(error = %proto::error_chain(&e), "kill all through the cgroup failed; signalling init only");
            }
        }
        match kill(pid, sig) {
            Ok(()) => Reply::Ok,
            Err(nix::Error::ESRCH) if all => Reply::Ok,
            Err(nix::Error::ESRCH) => Reply::Error {
                kind: ErrorKind::NotFound,
                message: "process already finished".into(),
            },
            Err(e) => Reply::Error {
                kind: ErrorKind::Internal,
                message: format!("kill {pid}: {e}"),
            },
        }
    }

    fn exec(&mut self, exec_id: String, process: &oci_spec::runtime::Process, paths: &state::StdioPaths) -> Reply {
        if self.execs.contains_key(&exec_id) {
            return Reply::Error {
                kind: ErrorKind::FailedPrecondition,
                message: format!("process {exec_id} already exists"),
            };
        }
        if self.init.state.status != Status::Running {
            return Reply::Error {
                kind: ErrorKind::FailedPrecondition,
                message: "container is not running".into(),
            };
        }
        if self.cfg.guest.is_some() {
            // A guest has no root filesystem of its own to exec a binary in.
            let message = "exec is not supported in a WebAssembly task".to_string();
            return Reply::Error {
                kind: ErrorKind::FailedPrecondition,
                message,
            };
        }
        let owner = stdio::Owner {
            id: &self.cfg.id,
            namespace: &self.cfg.namespace,
            bundle: &self.cfg.bundle,
        };
        let (stdio, mut io) = match stdio::prepare(paths, &owner) {
            Ok(x) => x,
            Err(e) => {
                return Reply::Error {
                    kind: ErrorKind::InvalidArgument,
                    message: proto::error_chain(&e),
                }
            }
        };
        self.log_binaries.extend(io.log_binary);
        match container::exec_process(&self.container, self.init.state.pid, &self.cgroup, process, stdio) {
            Ok(mut pending) => {
                if let Some(master) = pending.pty_master.take() {
                    if let Err(e) = io.attach_master(master) {
                        return Reply::Error {
                            kind: ErrorKind::Internal,
                            message: format!("pty: {e}"),
                        };
                    }
                }
                let pid = pending.pid;
                self.execs.insert(exec_id, Proc::new(pid, pending, io));
                self.persist();
                Reply::Pid {
                    pid,
                    at_ns: state::monotonic_ns(),
                }
            }
            Err(e) => Reply::Error {
                kind: ErrorKind::FailedPrecondition,
                message: proto::error_chain(&e),
            },
        }
    }

    /// Reaps every exited child and reports the ones we track.
    fn reap(&mut self) {
        loop {
            let st = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(st) => st,
            };
            let (pid, code) = match st {
                WaitStatus::Exited(pid, c) => (pid, c),
                WaitStatus::Signaled(pid, sig, _) => (pid, 128 + sig as i32),
                _ => continue,
            };
            self.record_exit(pid.as_raw(), code);
        }
    }

    fn record_exit(&mut self, pid: i32, code: i32) {
        let now = state::wall_ns();
        let key = if self.init.state.pid == pid && self.init.state.status != Status::Stopped {
            None
        } else if let Some((k, _)) = self
            .execs
            .iter()
            .find(|(_, p)| p.state.pid == pid && p.state.status != Status::Stopped)
        {
            Some(k.clone())
        } else {
            self.log_binaries.retain(|p| p.as_raw() != pid);
            return;
        };
        if key.is_none() {
            self.check_oom_v2();
            if !self.private_pidns {
                let _ = self.cgroup.kill_all(Signal::SIGKILL);
            }
        }
        let p = self.proc_mut(&key).expect("tracked process");
        p.state.status = Status::Stopped;
        p.state.exit_status = Some(code);
        p.state.exited_at_ns = Some(now);
        p.pending = None;
        p.pidfd = None;
        info!(id = %self.cfg.id, exec = ?key, pid, code, "process exited");
        self.persist();
        let event = Event::Exited {
            exec_id: key,
            pid,
            status: code,
            exited_at_ns: now,
        };
        self.unreported.push(Unreported {
            event,
            since: Instant::now(),
            unread: usize::MAX,
            progress: Instant::now(),
        });
        self.report_exits();
    }

    /// Reports exits whose output has been read. A client learns of an exit
    /// and may stop reading at once (ctr 1.6 cancels an output FIFO open it
    /// has not yet taken note of, even after the kernel completed it): so
    /// an exit is held back while the process's output still sits unread in
    /// its FIFOs and a reader is taking it, at most [`DRAIN_LIMIT`], and
    /// for [`DRAIN_STALL`] when nobody reads (a `ctr run -d` that is gone).
    fn report_exits(&mut self) {
        let mut i = 0;
        while i < self.unreported.len() {
            let key = match &self.unreported[i].event {
                Event::Exited { exec_id, .. } => exec_id.clone(),
                Event::Oom => None,
            };
            let unread = self.proc_mut(&key).map(|p| p.io.unread_output()).unwrap_or(0);
            let u = &mut self.unreported[i];
            if unread < u.unread {
                u.progress = Instant::now();
            }
            u.unread = unread;
            let give_up = u.since.elapsed() >= DRAIN_LIMIT || u.progress.elapsed() >= DRAIN_STALL;
            if unread == 0 || give_up {
                if unread > 0 {
                    warn!(id = %self.cfg.id, exec = ?key, unread, "output not read; reporting the exit anyway");
                }
                let u = self.unreported.remove(i);
                self.send(&Message::Event { event: u.event }, &[]);
            } else {
                i += 1;
            }
        }
    }

    /// cgroup v2 has no OOM eventfd: compare the oom_kill counter.
    fn check_oom_v2(&mut self) {
        if self.oom_fd.is_some() {
            return;
        }
        if let Ok(n) = self.cgroup.oom_kill_count() {
            if n > self.oom_kills {
                self.oom_kills = n;
                self.send(&Message::Event { event: Event::Oom }, &[]);
            }
        }
    }

    fn maybe_restart_daemon(&mut self) {
        let Some((when, backoff)) = self.daemon_lost else {
            return;
        };
        if Instant::now() < when {
            return;
        }
        info!(id = %self.cfg.id, "restarting the zygote daemon");
        let r = zygote_contract::daemon::spawn(&self.cfg.exe, &self.cfg.daemon_dir);
        if let Err(e) = r {
            warn!(error = %e, "cannot restart the daemon");
        }
        self.daemon_lost = Some((Instant::now() + backoff, (backoff * 2).min(Duration::from_secs(30))));
    }

    /// Reaps until `done` holds or `limit` passes (never blocks in waitpid).
    fn reap_until(&mut self, limit: Duration, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) && Instant::now() < deadline {
            self.reap();
            if !done(self) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Delete: nothing of the task may survive, and nothing that is not the
    /// task's is touched. With its own pid namespace, the task is exactly
    /// that namespace: killing its init makes the kernel kill the rest, and
    /// whatever else is in the cgroup belongs to someone else (a container
    /// given the same `cgroupsPath`), so it is left running and the cgroup
    /// stays for it, as with runc-v2. Sharing a pid namespace, the task's
    /// processes are told apart by their cgroup only, and all of them are
    /// killed, as runc-v2 does.
    fn destroy(&mut self) {
        // A frozen process cannot die: thaw first (a paused task can be deleted).
        let _ = self.cgroup.thaw();
        let init = Pid::from_raw(self.init.state.pid);
        if self.init.state.status != Status::Stopped {
            if !self.private_pidns {
                let _ = self.cgroup.kill_all(Signal::SIGKILL);
            }
            let _ = kill(init, Signal::SIGKILL);
            self.reap_until(Duration::from_secs(10), |m| m.init.state.status == Status::Stopped);
        }
        let running: Vec<Pid> = self
            .execs
            .values()
            .filter(|p| p.state.status != Status::Stopped)
            .map(|p| Pid::from_raw(p.state.pid))
            .collect();
        for pid in running {
            let _ = kill(pid, Signal::SIGKILL);
        }
        self.reap_until(Duration::from_secs(5), |m| {
            m.execs.values().all(|p| p.state.status == Status::Stopped)
        });
        // Loggers get what is left of the output, then SIGTERM, then SIGKILL
        // (runc-v2 does the same).
        self.reap_until(Duration::from_millis(200), |m| m.log_binaries.is_empty());
        for pid in &self.log_binaries {
            let _ = kill(*pid, Signal::SIGTERM);
        }
        self.reap_until(Duration::from_secs(2), |m| m.log_binaries.is_empty());
        for pid in &self.log_binaries {
            let _ = kill(*pid, Signal::SIGKILL);
        }
        self.reap_until(Duration::from_secs(1), |m| m.log_binaries.is_empty());
        self.remove_cgroup();
    }

    /// Removes the task's cgroup once its processes are gone; a cgroup that
    /// still holds others' processes is left to them.
    fn remove_cgroup(&mut self) {
        if self.private_pidns {
            match self.cgroup.procs() {
                Ok(pids) if !pids.is_empty() => {
                    info!(id = %self.cfg.id, cgroup = %self.cgroup.path().display(), others = pids.len(),
                        "the cgroup holds processes of another container; left in place");
                    return;
                }
                _ => {}
            }
        }
        for _ in 0..50 {
            match self.cgroup.remove() {
                Ok(()) => break,
                Err(e) => {
                    debug!(error = %proto::error_chain(&e), "cgroup not removable yet");
                    if !self.private_pidns {
                        let _ = self.cgroup.kill_all(Signal::SIGKILL);
                    }
                    self.reap();
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        let _ = std::fs::remove_file(self.dir.monitor_socket());
    }
}

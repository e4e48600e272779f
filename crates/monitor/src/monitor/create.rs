//! Creating the task: read `task.json`, load the spec, prepare the
//! cgroup, stdio and the listener, then get the container to its exec
//! barrier, cloned here (cold, or a claimed zygote whose child cannot
//! serve the spec) or from a warm zygote's child; answer the daemon with the
//! create reply.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Instant;

use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::LinuxResources;
use tracing::{debug, warn};
use zygote_contract::proto::{self, CreateDetail, Failure, FailureKind, Message, Reply};
use zygote_contract::state::{self, TaskConfig};
use zygote_contract::TaskDir;
use zygote_runtime::cgroups::{Cgroup, CgroupError, CgroupVersion};
use zygote_runtime::container::{self, ContainerConfig, Pending};
use zygote_runtime::guest::GuestRunner;
use zygote_runtime::init::build::zygote_misfit;
use zygote_runtime::security::Security;
use zygote_runtime::zygote::{Zygote, ZygoteTask};
use zygote_runtime::RuntimeError;

use super::{Monitor, MonitorError, Proc, Source};
use crate::stdio;

pub(super) fn create(dir: &TaskDir, control: &OwnedFd, source: Source) -> Result<Monitor, Failure> {
    let mut source = Some(source);
    let r = create_from(dir, control, &mut source);
    if let Some(Source::Warm { zygote, pool, .. }) = source {
        // Failed before the zygote was handed its task: its child (killed
        // and reaped on drop) and its pool cgroup go now, not with the pool.
        drop(zygote);
        if let Some(p) = pool {
            if let Err(e) = p.remove() {
                warn!(cgroup = %p.path().display(), error = %proto::error_chain(&e), "cannot remove the zygote's pool cgroup");
            }
        }
    }
    r
}

fn create_from(dir: &TaskDir, control: &OwnedFd, source: &mut Option<Source>) -> Result<Monitor, Failure> {
    let internal = |e: &dyn std::error::Error| Failure::of(FailureKind::Internal, e);
    let t0 = Instant::now();
    let stage = |what: &str| debug!(us = t0.elapsed().as_micros() as u64, "create: {what}");
    let cfg: TaskConfig = state::read(&dir.config()).map_err(|e| internal(&e))?;
    let invalid = |e: &dyn std::error::Error| Failure::of(FailureKind::InvalidSpec, e);
    let spec = zygote_runtime::spec::load(&cfg.bundle).map_err(|e| invalid(&e))?;
    let cgroup = Cgroup::from_spec(&spec, &cfg.id).map_err(|e| invalid(&e))?;
    let private_pidns = zygote_runtime::spec::private_pid_namespace(&spec);
    let resources = cfg
        .resources
        .clone()
        .or_else(|| spec.linux().as_ref().and_then(|l| l.resources().clone()));
    let security = match &cfg.security {
        Some(s) => s.clone(),
        None => Security::from_spec(&spec).map_err(|e| invalid(&e))?,
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
        Failure::of(kind, e)
    };
    let oom_adj = container.spec.process().as_ref().and_then(|p| p.oom_score_adj());
    let mut detail = CreateDetail::default();
    let created = match source.take().expect("the source is taken once") {
        Source::Cold => {
            let t = Instant::now();
            if let Err(e) = cgroup.create(resources.as_ref()) {
                return Err(failed(&e, FailureKind::Cgroup));
            }
            detail.cgroup_us = t.elapsed().as_micros() as u64;
            container::create_container(&container, &cgroup, stdio)
        }
        Source::Warm { zygote, pool, born_ns } => {
            detail.warm = true;
            detail.zygote_born_ns = born_ns;
            let warm = Warm {
                cfg: &cfg,
                container: &container,
                cgroup: &cgroup,
                resources: resources.as_ref(),
                oom_adj,
            };
            match warm.create(zygote, pool, stdio, &mut detail, &stage) {
                Ok(r) => r,
                Err(e) => return Err(failed(&e, FailureKind::Cgroup)),
            }
        }
    };
    stage("container at its barrier");
    let mut pending = match created {
        Ok(p) => p,
        Err(e) => return Err(failed(&e, FailureKind::Container)),
    };
    if let Some(master) = pending.pty_master.take() {
        if let Err(e) = io.attach_master(master) {
            drop(pending);
            let _ = cgroup.remove();
            return Err(internal(&e));
        }
    }
    detail.security_us = pending.security_us;
    detail.place_us = pending.place_us;
    detail.cloned_into_cgroup = pending.cloned_into_cgroup;
    detail.devices_us = cgroup.devices_us();
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

/// A claimed zygote creating its task: the task's cgroup from the pool's
/// (renamed when it can be), then the container from the zygote's child, or
/// cloned here when the child cannot serve the spec.
struct Warm<'a> {
    cfg: &'a TaskConfig,
    container: &'a ContainerConfig,
    cgroup: &'a Cgroup,
    resources: Option<&'a LinuxResources>,
    oom_adj: Option<i32>,
}

impl Warm<'_> {
    /// The outer error is the cgroup's (nothing was created); the inner
    /// result is the container's.
    fn create(
        &self,
        zygote: Zygote,
        pool: Option<Cgroup>,
        stdio: container::Stdio,
        detail: &mut CreateDetail,
        stage: &dyn Fn(&str),
    ) -> Result<Result<Pending, RuntimeError>, CgroupError> {
        // A spec the child cannot serve (it joins a pid namespace by path,
        // keeps the host's, or wants a user namespace) gets an init cloned
        // here instead: the child goes first (dropping the zygote kills and
        // reaps it), and the rest of the warm work (this process, the pool
        // cgroup) is kept.
        let misfit = zygote_misfit(&self.container.spec, zygote.pre());
        let zygote = match misfit {
            Some(reason) => {
                debug!(
                    reason,
                    "the zygote's child cannot serve this spec: the init is cloned at claim"
                );
                detail.cloned_at_claim = Some(reason.to_string());
                drop(zygote);
                None
            }
            None => Some(zygote),
        };
        let remove_pool = || {
            if let Some(p) = &pool {
                if let Err(e) = p.remove() {
                    warn!(cgroup = %p.path().display(), error = %proto::error_chain(&e), "cannot remove the zygote's pool cgroup");
                }
            }
        };
        let t = Instant::now();
        let renamed = match &pool {
            Some(p) => self.cgroup.create_by_rename(p, self.resources),
            None => Ok(false),
        };
        detail.cgroup_renamed = matches!(renamed, Ok(true));
        stage("cgroup renamed");
        let made = match renamed {
            Ok(true) => Ok(()),
            Ok(false) => self.cgroup.create(self.resources),
            Err(e) => Err(e),
        };
        if let Err(e) = made {
            // The child first (dropping the zygote kills and reaps it), so
            // its pool cgroup is empty and goes at once.
            drop(zygote);
            remove_pool();
            return Err(e);
        }
        detail.cgroup_us = t.elapsed().as_micros() as u64;
        // cgroup v2 cannot rename: rather than migrating the child, the init
        // is cloned into the cgroup and joins the child's namespaces (not
        // for a guest task, whose child holds a warmed runner).
        let clone_init = self.cgroup.version() == CgroupVersion::V2 && self.container.guest.is_none();
        let r = match zygote {
            Some(zygote) if clone_init => zygote.clone_init(self.container, self.cgroup, stdio),
            Some(zygote) => self.serve(zygote, stdio, detail.cgroup_renamed),
            None => container::create_container(self.container, self.cgroup, stdio),
        };
        // What is left of the pool cgroup: all of it after a migration,
        // the unified directory after a rename on a hybrid host.
        remove_pool();
        Ok(r)
    }

    /// Hands the task to the zygote's child.
    fn serve(&self, zygote: Zygote, stdio: container::Stdio, renamed: bool) -> Result<Pending, RuntimeError> {
        let task = ZygoteTask {
            id: self.cfg.id.clone(),
            bundle: self.cfg.bundle.clone(),
            rootfs: self.cfg.rootfs.clone(),
            terminal: self.cfg.stdio.terminal,
            security: self.container.security.clone(),
            guest: self.cfg.guest.clone(),
        };
        zygote.serve(&task, stdio, |pid| {
            if renamed {
                // A hybrid host's unified hierarchy cannot rename.
                self.cgroup.add_task_unified(pid)?;
            } else {
                self.cgroup.add_task(pid)?;
            }
            match self.oom_adj {
                Some(adj) => container::set_oom_score_adj(Pid::from_raw(pid), adj),
                None => Ok(()),
            }
        })
    }
}

fn listen(path: &Path) -> Result<OwnedFd, MonitorError> {
    use nix::sys::socket::{bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType};
    use zygote_contract::sockaddr::ShortAddr;
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
    let addr = ShortAddr::new(path).map_err(|e| MonitorError::Addr(Box::new(e)))?;
    bind(fd.as_raw_fd(), addr.addr()).map_err(err)?;
    listen(&fd, Backlog::new(8).map_err(err)?).map_err(err)?;
    Ok(fd)
}

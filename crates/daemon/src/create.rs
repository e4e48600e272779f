//! Create: the longest path through the daemon, as named steps.
//!
//! [`Daemon::create`] runs [`Daemon::create_steps`] to completion in a task
//! of its own: [`Daemon::check_spec`] (spec, cgroup, profile),
//! [`Daemon::mount_rootfs`], the Wasm decision, [`Daemon::task_config`],
//! [`Daemon::start_container`] (a warm zygote's claim, or the cold path
//! with its reason counted), then [`Daemon::register`] (the task table,
//! its watcher, the containerd connection, TaskCreate). Any failure undoes
//! every earlier step before the error returns.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use containerd_shim_protos::api::{CreateTaskRequest, CreateTaskResponse};
use containerd_shim_protos::events::task::{TaskCreate, TaskIO};
use containerd_shim_protos::topics;
use oci_spec::runtime::Spec;
use tokio::sync::mpsc;
use tracing::{info, warn};
use zygote_contract::proto::{self, CreateDetail, Reply, Request};
use zygote_contract::state::{self, ProcState, StdioPaths, TaskConfig};
use zygote_contract::TaskDir;
use zygote_runtime::cgroups::Cgroup;
use zygote_runtime::mounts::{self, RootfsMount};

use crate::daemon::Daemon;
use crate::error::DaemonError;
use crate::monitor_client::{self as monitor_client, MonitorClient};
use crate::pool::Fallback;
use crate::profiles::Resolved;
use crate::task::{CreateTiming, ProcInfo, Task};
use crate::wasm::WasmDetail;

/// Container ids become directory names: keep them boring.
pub(crate) fn validate_id(id: &str) -> Result<(), DaemonError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(DaemonError::InvalidId(id.into()))
    }
}

/// A task may not take (or nest under) one of the warm pools' cgroups: its
/// Delete would kill a zygote, and a claim would rename it away.
fn refuse_pool_cgroup(cgroup: &Cgroup) -> Result<(), DaemonError> {
    let prefix = zygote_contract::zygote::POOL_CGROUP_PREFIX;
    if cgroup
        .path()
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with(prefix))
    {
        return Err(DaemonError::ReservedCgroup {
            path: zygote_config::quote(&cgroup.path().to_string_lossy()),
            prefix,
        });
    }
    Ok(())
}

/// A monitor serving a new task: its connection, its events, the
/// container's pid, when it was ready, and how it was created.
type Spawned = (
    MonitorClient,
    mpsc::UnboundedReceiver<crate::monitor_client::Incoming>,
    i32,
    i64,
    CreateDetail,
);

/// How long a monitor (or claimed zygote) may take to create a container.
/// Below the 60 s that `ctr` and the tests give a Create, so that a stuck
/// monitor's error, with its last log lines, reaches the client instead of
/// a client-side timeout.
const CREATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45);

/// Removes a half-created task's leftovers.
fn undo(dir: &TaskDir, rootfs: &Path, mounted: bool) {
    if mounted {
        if let Err(e) = mounts::unmount_rootfs(rootfs) {
            warn!(rootfs = %rootfs.display(), error = %crate::error::chain(&e), "cannot unmount rootfs");
        }
    }
    let _ = std::fs::remove_dir_all(dir.path());
}

impl Daemon {
    pub(crate) async fn create(
        self: &Arc<Self>,
        req: &CreateTaskRequest,
        namespace: String,
        conn: RawFd,
    ) -> Result<CreateTaskResponse, DaemonError> {
        let received = state::monotonic_ns();
        validate_id(&req.id)?;
        if !req.checkpoint.is_empty() {
            return Err(DaemonError::Unimplemented("restoring from a checkpoint"));
        }
        if self.tasks.read().expect("tasks lock").contains_key(&req.id)
            || !self.creating.lock().expect("creating lock").insert(req.id.clone())
        {
            return Err(DaemonError::AlreadyExists(req.id.clone()));
        }
        // Run to completion even if containerd drops the request (its
        // connection closing cancels the handler): a half-done Create must
        // either finish or undo itself, never stop in between.
        let (this, req) = (self.clone(), req.clone());
        tokio::spawn(async move {
            let r = this.create_steps(&req, namespace, conn, received).await;
            this.creating.lock().expect("creating lock").remove(&req.id);
            // Refill when the task is deleted (or now, if Create failed), not
            // while it runs: a zygote's birth moves it into a cgroup, which
            // holds the kernel's cgroup_mutex through an RCU grace period and
            // would stall this task's cgroup rename or removal. The pool's
            // 250 ms tick refills meanwhile for long-running tasks.
            if r.is_err() {
                this.pools.settled();
            }
            r
        })
        .await
        .map_err(|e| DaemonError::io("create task")(std::io::Error::other(e)))?
    }

    /// The steps of a Create, in order; see the module docs.
    async fn create_steps(
        self: &Arc<Self>,
        req: &CreateTaskRequest,
        namespace: String,
        conn: RawFd,
        received: i64,
    ) -> Result<CreateTaskResponse, DaemonError> {
        let bundle = PathBuf::from(&req.bundle);
        let (spec, cgroup, resolved) = self.check_spec(req, &bundle)?;
        let dir = self.dir.task(&req.id);
        let (rootfs, mounted) = self.mount_rootfs(req, &bundle, &spec)?;
        let wasm = match self.wasm.decide(&spec, &resolved, &rootfs).await {
            Ok(w) => w,
            Err(e) => {
                undo(&dir, &rootfs, mounted);
                return Err(e);
            }
        };
        let cfg = self.task_config(
            req,
            namespace,
            bundle,
            (rootfs.clone(), mounted),
            &spec,
            &resolved,
            &wasm,
        );
        tracing::debug!(id = %req.id, us = (state::monotonic_ns() - received) / 1000, "create: rootfs mounted, task.json next");
        let (client, rx, pid, at_ns, detail) = match self.start_container(&dir, &cfg, &spec, &cgroup).await {
            Ok(x) => x,
            Err(e) => {
                // A monitor that failed removed what it made; one that was
                // killed could not, and its cgroup is empty now (unless
                // another container shares it).
                tokio::task::block_in_place(|| {
                    if cgroup.procs().is_ok_and(|p| p.is_empty()) {
                        let _ = cgroup.remove();
                    }
                });
                undo(&dir, &rootfs, mounted);
                return Err(e);
            }
        };
        if let Some(reason) = &detail.cloned_at_claim {
            self.pools.cloned_at_claim(&cfg.profile, reason);
        }
        let task = Arc::new(Task::new(cfg, dir, cgroup));
        task.set_monitor(Some(client));
        task.set_init(ProcInfo {
            state: ProcState::created(pid),
            stdio: task.cfg().stdio.clone(),
        });
        let timing = CreateTiming {
            received_ns: received,
            ready_ns: at_ns,
            detail,
            wasm: wasm.map(|(_, d)| d),
        };
        self.register(req, &task, rx, conn, timing).await;
        info!(id = %req.id, pid, us = (at_ns - received) / 1000, "created");
        Ok(CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    /// Loads the bundle's spec, its cgroup (not one of the pools') and the
    /// task's profile.
    fn check_spec(&self, req: &CreateTaskRequest, bundle: &Path) -> Result<(Spec, Cgroup, Resolved), DaemonError> {
        let spec = zygote_runtime::spec::load(bundle)?;
        let cgroup = Cgroup::from_spec(&spec, &req.id)?;
        refuse_pool_cgroup(&cgroup)?;
        let options = req.options.as_ref().map(|a| (a.type_url.as_str(), a.value.as_slice()));
        let resolved = self.profiles().resolve(&spec, options)?;
        Ok((spec, cgroup, resolved))
    }

    /// The root filesystem: the request's mounts on `<bundle>/rootfs`
    /// (true: mounted by us), or the spec's `root.path` as it is.
    fn mount_rootfs(
        &self,
        req: &CreateTaskRequest,
        bundle: &Path,
        spec: &Spec,
    ) -> Result<(PathBuf, bool), DaemonError> {
        if req.rootfs.is_empty() {
            let r = zygote_runtime::spec::resolve_rootfs(bundle, spec);
            if !r.is_dir() {
                return Err(DaemonError::NoRootfs(r));
            }
            return Ok((r, false));
        }
        let target = bundle.join("rootfs");
        std::fs::create_dir_all(&target).map_err(DaemonError::io(format!("create {}", target.display())))?;
        let ms: Vec<RootfsMount> = req
            .rootfs
            .iter()
            .map(|m| RootfsMount {
                fstype: m.type_.clone(),
                source: m.source.clone(),
                options: m.options.clone(),
            })
            .collect();
        mounts::mount_rootfs(&ms, &target)?;
        Ok((target, true))
    }

    /// What the task's monitor reads from `task.json`.
    #[allow(clippy::too_many_arguments)]
    fn task_config(
        &self,
        req: &CreateTaskRequest,
        namespace: String,
        bundle: PathBuf,
        (rootfs, rootfs_mounted): (PathBuf, bool),
        spec: &Spec,
        resolved: &Resolved,
        wasm: &Option<(zygote_runtime::guest::GuestTask, WasmDetail)>,
    ) -> TaskConfig {
        TaskConfig {
            id: req.id.clone(),
            namespace,
            bundle,
            rootfs,
            rootfs_mounted,
            stdio: StdioPaths {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            },
            ttrpc_address: self.ttrpc_address.clone(),
            daemon_dir: self.dir.clone(),
            exe: self.exe.clone(),
            profile: resolved.profile.clone(),
            private_pidns: zygote_runtime::spec::private_pid_namespace(spec),
            resources: resolved.resources.clone(),
            security: Some(resolved.security.clone()),
            guest: wasm.as_ref().map(|(g, _)| g.clone()),
        }
    }

    /// Gets the container to its exec barrier: a warm zygote of the
    /// profile when one waits, else (the reason counted) a monitor that
    /// clones it. Teaches the pool where the profile's tasks go first.
    async fn start_container(
        &self,
        dir: &TaskDir,
        cfg: &TaskConfig,
        spec: &Spec,
        cgroup: &Cgroup,
    ) -> Result<Spawned, DaemonError> {
        if let Some(g) = &cfg.guest {
            self.pools.learn_hot(&cfg.profile, &g.artifact);
        }
        // A pod's containers all have their pod's own cgroup as parent, and
        // it goes with the pod: zygotes pre-placed there would be charged to
        // that pod and keep kubelet from removing its cgroup. Pods' tasks
        // are placed at claim instead; only parents that outlive their
        // tasks are learnt.
        if let Some(parent) = cgroup.path().parent().filter(|_| !in_a_pod(spec)) {
            self.pools.learn_parent(&cfg.profile, parent);
        }
        // Any spec can be claimed: a zygote whose child cannot serve it
        // (`zygote_misfit`) clones the init itself and says why.
        match self.pools.claim(&cfg.profile) {
            Ok(w) => match self.claim_zygote(dir, cfg, w).await {
                Err(DaemonError::MonitorGone { .. }) => {
                    self.pools.fallback(&cfg.profile, Fallback::ZygoteLost);
                    self.spawn_monitor(dir, cfg).await
                }
                other => other,
            },
            Err(reason) => {
                self.pools.fallback(&cfg.profile, reason);
                // Overlap the kernel's cgroup-migration grace period with the
                // monitor's start-up (see `prime_migration`). Only here: it
                // holds cgroup_mutex, which a warm claim's rename needs.
                tokio::task::spawn_blocking(|| zygote_runtime::cgroups::prime_migration(std::process::id()));
                self.spawn_monitor(dir, cfg).await
            }
        }
    }

    /// Puts the created task in the table, watches its monitor, hands it
    /// containerd's connection and publishes TaskCreate.
    async fn register(
        self: &Arc<Self>,
        req: &CreateTaskRequest,
        task: &Arc<Task>,
        rx: mpsc::UnboundedReceiver<crate::monitor_client::Incoming>,
        conn: RawFd,
        timing: CreateTiming,
    ) {
        self.tasks
            .write()
            .expect("tasks lock")
            .insert(req.id.clone(), task.clone());
        self.watch(task.clone(), rx);
        self.adopt_connection(task, conn).await;
        let pid = task.proc("").map_or(0, |p| p.state.pid);
        task.set_timing(timing);
        let ev = TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: Some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            })
            .into(),
            checkpoint: req.checkpoint.clone(),
            pid: pid as u32,
            ..Default::default()
        };
        self.publish(task, topics::TASK_CREATE_EVENT_TOPIC, Box::new(ev));
    }

    /// Hands the task in `dir` to a warm zygote. `MonitorGone` means the
    /// zygote died before answering (the caller then takes the cold path).
    async fn claim_zygote(
        &self,
        dir: &TaskDir,
        cfg: &TaskConfig,
        mut w: crate::pool::Warm,
    ) -> Result<Spawned, DaemonError> {
        std::fs::create_dir_all(dir.path()).map_err(DaemonError::io(format!("create {}", dir.path().display())))?;
        state::write_atomic(&dir.config(), cfg)?;
        let monitor = w.monitor.take();
        let generation = w.generation;
        let (client, events) = w.into_parts();
        let claim = Request::Claim {
            dir: dir.path().to_path_buf(),
        };
        let Ok(replied) = tokio::time::timeout(CREATE_TIMEOUT, client.call(&claim, &[])).await else {
            return Err(self.stuck_monitor(dir, cfg, monitor));
        };
        match replied {
            Ok((Reply::Created { pid, at_ns, mut detail }, _)) => {
                detail.zygote_generation = Some(generation);
                Ok((client, events, pid, at_ns, detail))
            }
            Ok((Reply::Error { failure }, _)) => Err(DaemonError::Monitor {
                id: cfg.id.clone(),
                failure,
            }),
            Ok((other, _)) => Err(DaemonError::UnexpectedReply {
                from: "zygote",
                reply: Box::new(other),
            }),
            Err(source) => Err(DaemonError::MonitorGone {
                id: cfg.id.clone(),
                source,
            }),
        }
    }

    async fn spawn_monitor(&self, dir: &TaskDir, cfg: &TaskConfig) -> Result<Spawned, DaemonError> {
        std::fs::create_dir_all(dir.path()).map_err(DaemonError::io(format!("create {}", dir.path().display())))?;
        state::write_atomic(&dir.config(), cfg)?;
        let (ours, theirs) = proto::pair().map_err(|source| DaemonError::Channel {
            what: "create a control socketpair",
            source,
        })?;
        let pid = monitor_client::spawn(
            &self.exe,
            &["__monitor".as_ref(), dir.path().as_os_str()],
            &dir.monitor_log(),
            theirs,
        )
        .map_err(DaemonError::io("spawn monitor"))?;
        let monitor = zygote_runtime::sys::pidfd_open(pid as i32).ok();
        let (tx, rx) = mpsc::unbounded_channel();
        let (client, first_reply) = MonitorClient::spawned(ours, tx).map_err(DaemonError::io("monitor socket"))?;
        let Ok(replied) = tokio::time::timeout(CREATE_TIMEOUT, first_reply).await else {
            return Err(self.stuck_monitor(dir, cfg, monitor));
        };
        match replied {
            Ok(Reply::Created { pid, at_ns, detail }) => Ok((client, rx, pid, at_ns, detail)),
            Ok(Reply::Error { failure }) => Err(DaemonError::Monitor {
                id: cfg.id.clone(),
                failure,
            }),
            Ok(other) => Err(DaemonError::UnexpectedReply {
                from: "monitor",
                reply: Box::new(other),
            }),
            Err(cause) => {
                let log = std::fs::read_to_string(dir.monitor_log()).unwrap_or_default();
                Err(DaemonError::MonitorDiedEarly {
                    cause,
                    log: log.trim().to_string(),
                })
            }
        }
    }

    /// A monitor that did not finish a Create in [`CREATE_TIMEOUT`] is
    /// killed (its container, cloned by it, dies with it) so the Create can
    /// fail cleanly; its log is quoted in the error.
    fn stuck_monitor(&self, dir: &TaskDir, cfg: &TaskConfig, monitor: Option<std::os::fd::OwnedFd>) -> DaemonError {
        if let Some(fd) = &monitor {
            use std::os::fd::AsFd;
            let _ = zygote_runtime::sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        }
        let log = std::fs::read_to_string(dir.monitor_log()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        warn!(id = %cfg.id, "monitor did not create the container in time; killed");
        DaemonError::MonitorStuck {
            timeout: CREATE_TIMEOUT,
            last_words: tail.into_iter().rev().collect::<Vec<_>>().join(" | "),
        }
    }
}

/// The annotation containerd's CRI plugin puts on every container of a pod
/// (the sandbox's own included).
const CRI_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

/// True for a task that belongs to a Kubernetes pod (made by CRI).
fn in_a_pod(spec: &Spec) -> bool {
    spec.annotations()
        .as_ref()
        .is_some_and(|a| a.contains_key(CRI_SANDBOX_ID))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        assert!(validate_id("abc-123_x.y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "x\0"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }
}

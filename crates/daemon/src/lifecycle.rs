//! Create, Start, Delete, State and Wait: the task lifecycle.
//!
//! The path of a Create: validate the id and `config.json`, resolve the
//! profile (annotation, runtime options, default) and its security, mount
//! the rootfs from the request, write `task.json`, then either claim a warm
//! zygote of the profile (which takes over its pre-placed cgroup and runs
//! the rest of the init sequence) or, when the spec does not fit a zygote
//! or the pool is empty, spawn a monitor that creates the cgroup and clones
//! the container (the cold path; the reason is counted). Either way the
//! container ends at its exec barrier. Any failure undoes every earlier
//! step before the error returns.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zygote_contract::TaskDir;

use containerd_shim_protos::api::{
    CreateTaskRequest, CreateTaskResponse, DeleteResponse, StateResponse, Status as ApiStatus, WaitResponse,
};
use containerd_shim_protos::events::task::{TaskCreate, TaskDelete, TaskExecStarted, TaskExit, TaskIO, TaskStart};
use containerd_shim_protos::topics;
use tokio::sync::mpsc;
use tracing::{info, warn};
use zygote_contract::proto::{self, CreateDetail, Reply, Request};
use zygote_contract::state::{self, ProcState, Status, StdioPaths, TaskConfig};
use zygote_runtime::cgroups::Cgroup;
use zygote_runtime::mounts::{self, RootfsMount};

use crate::daemon::{timestamp, Daemon};
use crate::error::DaemonError;
use crate::monitor_client::{self as monitor_client, MonitorClient};
use crate::task::{ProcInfo, Task};

/// Container ids become directory names: keep them boring.
pub fn validate_id(id: &str) -> Result<(), DaemonError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(DaemonError::InvalidArgument(format!(
            "invalid task id {id:?}: use letters, digits, '.', '_' and '-'"
        )))
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
        return Err(DaemonError::InvalidArgument(format!(
            "linux.cgroupsPath {}: cgroup names starting with {prefix:?} are reserved for zygote's warm pools",
            zygote_config::quote(&cgroup.path().to_string_lossy())
        )));
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
const CREATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

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
    pub async fn create(
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
            let r = this.create_inner(&req, namespace, conn, received).await;
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

    async fn create_inner(
        self: &Arc<Self>,
        req: &CreateTaskRequest,
        namespace: String,
        conn: RawFd,
        received: i64,
    ) -> Result<CreateTaskResponse, DaemonError> {
        let bundle = PathBuf::from(&req.bundle);
        let spec = zygote_runtime::spec::load(&bundle)?;
        let cgroup = Cgroup::from_spec(&spec, &req.id)?;
        refuse_pool_cgroup(&cgroup)?;
        let options = req.options.as_ref().map(|a| (a.type_url.as_str(), a.value.as_slice()));
        let resolved = self.profiles.resolve(&spec, options)?;
        let dir = self.dir.task(&req.id);
        let (rootfs, mounted) = if req.rootfs.is_empty() {
            let r = zygote_runtime::spec::resolve_rootfs(&bundle, &spec);
            if !r.is_dir() {
                return Err(DaemonError::InvalidArgument(format!(
                    "rootfs {} does not exist",
                    r.display()
                )));
            }
            (r, false)
        } else {
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
            mounts::mount_rootfs(&ms, &target).map_err(|e| DaemonError::InvalidArgument(crate::error::chain(&e)))?;
            (target, true)
        };
        let wasm = match self.wasm.decide(&spec, &resolved, &rootfs).await {
            Ok(w) => w,
            Err(e) => {
                undo(&dir, &rootfs, mounted);
                return Err(e);
            }
        };
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let cfg = TaskConfig {
            id: req.id.clone(),
            namespace,
            bundle,
            rootfs: rootfs.clone(),
            rootfs_mounted: mounted,
            stdio: stdio.clone(),
            ttrpc_address: self.ttrpc_address.clone(),
            daemon_dir: self.dir.clone(),
            exe: self.exe.clone(),
            profile: resolved.profile.clone(),
            private_pidns: zygote_runtime::spec::private_pid_namespace(&spec),
            resources: resolved.resources,
            security: Some(resolved.security),
            guest: wasm.as_ref().map(|(g, _)| g.clone()),
        };
        if let Some((g, _)) = &wasm {
            self.pools.learn_hot(&cfg.profile, &g.artifact);
        }
        if let Some(parent) = cgroup.path().parent() {
            self.pools.learn_parent(&cfg.profile, parent);
        }
        let warm = match zygote_runtime::init::build::zygote_misfit(&spec, resolved.clone_flags) {
            Some(reason) => Err(reason),
            None => self.pools.claim(&cfg.profile),
        };
        tracing::debug!(id = %req.id, us = (state::monotonic_ns() - received) / 1000, warm = warm.is_ok(), "create: rootfs mounted, task.json next");
        let spawned = match warm {
            Ok(w) => match self.claim_zygote(&dir, &cfg, w).await {
                Err(DaemonError::MonitorGone { .. }) => {
                    self.pools.fallback(&cfg.profile, "zygote_lost");
                    self.spawn_monitor(&dir, &cfg).await
                }
                other => other,
            },
            Err(reason) => {
                self.pools.fallback(&cfg.profile, reason);
                // Overlap the kernel's cgroup-migration grace period with the
                // monitor's start-up (see `prime_migration`). Only here: it
                // holds cgroup_mutex, which a warm claim's rename needs.
                tokio::task::spawn_blocking(|| zygote_runtime::cgroups::prime_migration(std::process::id()));
                self.spawn_monitor(&dir, &cfg).await
            }
        };
        let (client, rx, pid, at_ns, detail) = match spawned {
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
        let task = Arc::new(Task::new(cfg, dir, cgroup));
        *task.monitor.lock().expect("monitor lock") = Some(client);
        task.state.lock().expect("state lock").init = Some(ProcInfo {
            state: ProcState::created(pid),
            stdio,
        });
        self.tasks
            .write()
            .expect("tasks lock")
            .insert(req.id.clone(), task.clone());
        self.watch(task.clone(), rx);
        self.adopt_connection(&task, conn).await;
        *task.created_ns.lock().expect("created lock") = Some((received, at_ns));
        *task.create_detail.lock().expect("detail lock") = Some(detail);
        *task.wasm_detail.lock().expect("wasm detail lock") = wasm.map(|(_, d)| d);
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
        self.publish(&task, topics::TASK_CREATE_EVENT_TOPIC, Box::new(ev));
        info!(id = %req.id, pid, us = (at_ns - received) / 1000, "created");
        Ok(CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
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
        let (client, events) = w.into_parts();
        let claim = Request::Claim {
            dir: dir.path().to_path_buf(),
        };
        let Ok(replied) = tokio::time::timeout(CREATE_TIMEOUT, client.call(&claim, &[])).await else {
            return Err(self.stuck_monitor(dir, cfg, monitor));
        };
        match replied {
            Ok((Reply::Created { pid, at_ns, detail }, _)) => Ok((client, events, pid, at_ns, detail)),
            Ok((Reply::Error { kind, message }, _)) => Err(DaemonError::Monitor {
                id: cfg.id.clone(),
                kind,
                message,
            }),
            Ok((other, _)) => Err(DaemonError::FailedPrecondition(format!(
                "unexpected zygote reply {other:?}"
            ))),
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
        let client = MonitorClient::new(ours, tx).map_err(DaemonError::io("monitor socket"))?;
        let Ok(replied) = tokio::time::timeout(CREATE_TIMEOUT, client.first_reply()).await else {
            return Err(self.stuck_monitor(dir, cfg, monitor));
        };
        match replied {
            Ok(Reply::Created { pid, at_ns, detail }) => Ok((client, rx, pid, at_ns, detail)),
            Ok(Reply::Error { kind, message }) => Err(DaemonError::Monitor {
                id: cfg.id.clone(),
                kind,
                message,
            }),
            Ok(other) => Err(DaemonError::FailedPrecondition(format!(
                "unexpected monitor reply {other:?}"
            ))),
            Err(source) => {
                let log = std::fs::read_to_string(dir.monitor_log()).unwrap_or_default();
                Err(DaemonError::FailedPrecondition(format!(
                    "monitor failed before creating the container: {source}: {}",
                    log.trim()
                )))
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
        DaemonError::FailedPrecondition(format!(
            "the monitor did not create the container within {CREATE_TIMEOUT:?} and was killed; its last words: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ))
    }

    pub async fn start(&self, id: &str, exec_id: &str) -> Result<u32, DaemonError> {
        let task = self.get(id)?;
        let Some(m) = task.monitor() else {
            return Err(DaemonError::FailedPrecondition(format!("task {id} has no monitor")));
        };
        let started = state::monotonic_ns();
        let order = task.lifecycle.lock().await;
        let exec = (!exec_id.is_empty()).then(|| exec_id.to_string());
        let (reply, _) = m
            .call(&Request::Start { exec_id: exec.clone() }, &[])
            .await
            .map_err(|source| DaemonError::MonitorGone { id: id.into(), source })?;
        let (pid, at_ns) = match reply {
            Reply::Pid { pid, at_ns } => (pid, at_ns),
            Reply::Error { kind, message } => {
                return Err(DaemonError::Monitor {
                    id: id.into(),
                    kind,
                    message,
                })
            }
            other => {
                return Err(DaemonError::FailedPrecondition(format!(
                    "unexpected monitor reply {other:?}"
                )))
            }
        };
        task.update(exec_id, |p| {
            if p.state.status == Status::Created {
                p.state.status = Status::Running;
            }
        });
        match exec {
            None => {
                let ev = TaskStart {
                    container_id: id.into(),
                    pid: pid as u32,
                    ..Default::default()
                };
                self.publish(&task, topics::TASK_START_EVENT_TOPIC, Box::new(ev));
                self.record_timing(&task, started, at_ns);
            }
            Some(e) => {
                let ev = TaskExecStarted {
                    container_id: id.into(),
                    exec_id: e,
                    pid: pid as u32,
                    ..Default::default()
                };
                self.publish(&task, topics::TASK_EXEC_STARTED_EVENT_TOPIC, Box::new(ev));
            }
        }
        drop(order);
        Ok(pid as u32)
    }

    /// One line per started task: where the time between Create and exec went.
    fn record_timing(&self, task: &Task, start_received: i64, exec_ns: i64) {
        let Some((create_received, created)) = *task.created_ns.lock().expect("created lock") else {
            return;
        };
        let detail = task
            .create_detail
            .lock()
            .expect("detail lock")
            .clone()
            .unwrap_or_default();
        let line = serde_json::json!({
            "id": task.cfg.id,
            "profile": task.cfg.profile,
            "path": if detail.warm { "warm" } else { "cold" },
            "cgroup_renamed": detail.cgroup_renamed,
            "security_us": detail.security_us,
            "zygote_age_ms": if detail.warm { (create_received - detail.zygote_born_ns).max(0) / 1_000_000 } else { 0 },
            "create_to_ready_us": (created - create_received) / 1000,
            "start_to_exec_us": (exec_ns - start_received) / 1000,
            "create_to_exec_us": (exec_ns - create_received) / 1000,
            "kind": if task.cfg.guest.is_some() { "wasm" } else { "linux" },
            "wasm": *task.wasm_detail.lock().expect("wasm detail lock"),
        });
        use std::io::Write;
        let path = self.dir.timings();
        // Bounded: keep one previous generation of at most 1 MiB.
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > 1 << 20) {
            let _ = std::fs::rename(&path, path.with_extension("jsonl.1"));
        }
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&path) {
            let _ = writeln!(f, "{line}");
        }
    }

    pub fn state(&self, id: &str, exec_id: &str) -> Result<StateResponse, DaemonError> {
        let task = self.get(id)?;
        let p = task
            .proc(exec_id)
            .ok_or_else(|| DaemonError::NotFound(format!("{id}/{exec_id}")))?;
        let status = match p.state.status {
            Status::Created => ApiStatus::CREATED,
            Status::Running if exec_id.is_empty() && task.is_paused() => ApiStatus::PAUSED,
            Status::Running => ApiStatus::RUNNING,
            Status::Stopped => ApiStatus::STOPPED,
        };
        Ok(StateResponse {
            id: if exec_id.is_empty() { id.into() } else { exec_id.into() },
            bundle: task.cfg.bundle.display().to_string(),
            pid: p.state.pid as u32,
            status: status.into(),
            stdin: p.stdio.stdin,
            stdout: p.stdio.stdout,
            stderr: p.stdio.stderr,
            terminal: p.stdio.terminal,
            exit_status: p.state.exit_status.unwrap_or(0) as u32,
            exited_at: p.state.exited_at_ns.map(timestamp).into(),
            exec_id: exec_id.into(),
            ..Default::default()
        })
    }

    pub async fn wait(&self, id: &str, exec_id: &str) -> Result<WaitResponse, DaemonError> {
        let task = self.get(id)?;
        let mut rx = task.changed.subscribe();
        loop {
            let p = task
                .proc(exec_id)
                .ok_or_else(|| DaemonError::NotFound(format!("{id}/{exec_id}")))?;
            if p.state.status == Status::Stopped {
                return Ok(WaitResponse {
                    exit_status: p.state.exit_status.unwrap_or(0) as u32,
                    exited_at: p.state.exited_at_ns.map(timestamp).into(),
                    ..Default::default()
                });
            }
            if rx.changed().await.is_err() {
                return Err(DaemonError::NotFound(id.into()));
            }
        }
    }

    pub async fn delete(&self, id: &str, exec_id: &str) -> Result<DeleteResponse, DaemonError> {
        let r = self.delete_inner(id, exec_id).await;
        if exec_id.is_empty() {
            // Refill now that this task's cgroup is gone (see `create`).
            self.pools.settled();
        }
        r
    }

    async fn delete_inner(&self, id: &str, exec_id: &str) -> Result<DeleteResponse, DaemonError> {
        let task = self.get(id)?;
        let p = task
            .proc(exec_id)
            .ok_or_else(|| DaemonError::NotFound(format!("{id}/{exec_id}")))?;
        if p.state.status == Status::Running {
            return Err(DaemonError::FailedPrecondition(format!(
                "cannot delete running process {}",
                if exec_id.is_empty() { id } else { exec_id }
            )));
        }
        let monitor = task.monitor();
        if !exec_id.is_empty() {
            if let Some(m) = &monitor {
                let _ = m
                    .call(
                        &Request::DeleteExec {
                            exec_id: exec_id.into(),
                        },
                        &[],
                    )
                    .await;
            }
            task.state.lock().expect("state lock").execs.remove(exec_id);
            // A Wait on this exec must see it gone.
            task.notify();
        } else {
            task.deleting.store(true, std::sync::atomic::Ordering::SeqCst);
            // The final state comes from the monitor's memory (a Created task
            // was killed by Destroy); its state.json may be behind when the
            // state dir is full.
            let mut last = None;
            if let Some(m) = &monitor {
                match tokio::time::timeout(std::time::Duration::from_secs(30), m.call(&Request::Destroy, &[])).await {
                    Ok(Ok((Reply::Snapshot { snapshot }, _))) => last = Some(snapshot),
                    Ok(Ok((other, _))) => warn!(id, reply = ?other, "unexpected reply to destroy"),
                    Ok(Err(e)) => warn!(id, error = %e, "monitor did not confirm destroy"),
                    Err(_) => {
                        warn!(id, "monitor did not answer destroy in 30 s; cleaning up without it");
                        crate::cleanup::orphan(&task.cfg, &task.dir, &task.cgroup, &task.procs());
                    }
                }
            } else {
                crate::cleanup::orphan(&task.cfg, &task.dir, &task.cgroup, &task.procs());
            }
            if let Some(s) = last.or_else(|| state::read(&task.dir.state()).ok()) {
                task.apply_snapshot(&s);
            }
            if task.cfg.rootfs_mounted {
                if let Err(e) = mounts::unmount_rootfs(&task.cfg.rootfs) {
                    warn!(id, error = %crate::error::chain(&e), "cannot unmount rootfs");
                }
            }
            let _ = std::fs::remove_dir_all(task.dir.path());
            self.tasks.write().expect("tasks lock").remove(id);
            task.notify();
        }
        let was_stopped = p.state.status == Status::Stopped;
        let p = task.proc(exec_id).unwrap_or(p);
        let exit_status = p
            .state
            .exit_status
            .unwrap_or(if p.state.status == Status::Stopped { 0 } else { 137 }) as u32;
        let exited_at = p.state.exited_at_ns.unwrap_or_else(state::wall_ns);
        if exec_id.is_empty() {
            if !was_stopped {
                // A created-but-never-started task dies in Delete: its exit
                // goes out here, ahead of TaskDelete (the watcher stays quiet
                // while `deleting` is set).
                let ev = TaskExit {
                    container_id: id.into(),
                    id: id.into(),
                    pid: p.state.pid as u32,
                    exit_status,
                    exited_at: Some(timestamp(exited_at)).into(),
                    ..Default::default()
                };
                self.publish(&task, topics::TASK_EXIT_EVENT_TOPIC, Box::new(ev));
            }
            let ev = TaskDelete {
                container_id: id.into(),
                pid: p.state.pid as u32,
                exit_status,
                exited_at: Some(timestamp(exited_at)).into(),
                id: id.into(),
                ..Default::default()
            };
            self.publish(&task, topics::TASK_DELETE_EVENT_TOPIC, Box::new(ev));
        }
        Ok(DeleteResponse {
            pid: p.state.pid as u32,
            exit_status,
            exited_at: Some(timestamp(exited_at)).into(),
            ..Default::default()
        })
    }
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

//! Start, Delete, State and Wait: the task lifecycle after Create
//! ([`crate::create`]).

use containerd_shim_protos::api::{DeleteResponse, StateResponse, Status as ApiStatus, WaitResponse};
use containerd_shim_protos::events::task::{TaskDelete, TaskExecStarted, TaskExit, TaskStart};
use containerd_shim_protos::topics;
use tracing::warn;
use zygote_contract::proto::{Reply, Request};
use zygote_contract::state::{self, Status};
use zygote_runtime::mounts;

use crate::daemon::{timestamp, Daemon};
use crate::error::DaemonError;
use crate::task::{CreateTiming, Task};

impl Daemon {
    pub(crate) async fn start(&self, id: &str, exec_id: &str) -> Result<u32, DaemonError> {
        let task = self.get(id)?;
        let Some(m) = task.monitor() else {
            return Err(DaemonError::NoMonitor(id.into()));
        };
        let started = state::monotonic_ns();
        let order = task.lifecycle().await;
        let exec = (!exec_id.is_empty()).then(|| exec_id.to_string());
        let (reply, _) = m
            .call(&Request::Start { exec_id: exec.clone() }, &[])
            .await
            .map_err(|source| DaemonError::MonitorGone { id: id.into(), source })?;
        let (pid, at_ns) = match reply {
            Reply::Pid { pid, at_ns } => (pid, at_ns),
            Reply::Error { failure } => return Err(DaemonError::Monitor { id: id.into(), failure }),
            other => {
                return Err(DaemonError::UnexpectedReply {
                    from: "monitor",
                    reply: Box::new(other),
                })
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
        let Some(CreateTiming {
            received_ns: create_received,
            ready_ns: created,
            detail,
            wasm,
        }) = task.timing()
        else {
            return;
        };
        let line = serde_json::json!({
            "id": task.cfg().id,
            "profile": task.cfg().profile,
            "path": if detail.warm { "warm" } else { "cold" },
            "cgroup_renamed": detail.cgroup_renamed,
            "cloned_at_claim": detail.cloned_at_claim,
            "cloned_into_cgroup": detail.cloned_into_cgroup,
            "cgroup_us": detail.cgroup_us,
            "devices_us": detail.devices_us,
            "place_us": detail.place_us,
            "security_us": detail.security_us,
            "zygote_generation": detail.zygote_generation,
            "zygote_age_ms": if detail.warm { (create_received - detail.zygote_born_ns).max(0) / 1_000_000 } else { 0 },
            "create_to_ready_us": (created - create_received) / 1000,
            "start_to_exec_us": (exec_ns - start_received) / 1000,
            "create_to_exec_us": (exec_ns - create_received) / 1000,
            "kind": if task.cfg().guest.is_some() { "wasm" } else { "linux" },
            "wasm": wasm,
        });
        crate::metrics::task_started(
            &task.cfg().profile,
            task.cfg().guest.is_some(),
            detail.warm,
            exec_ns - create_received,
            detail.security_us,
        );
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

    pub(crate) fn state(&self, id: &str, exec_id: &str) -> Result<StateResponse, DaemonError> {
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
            bundle: task.cfg().bundle.display().to_string(),
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

    pub(crate) async fn wait(&self, id: &str, exec_id: &str) -> Result<WaitResponse, DaemonError> {
        let task = self.get(id)?;
        let mut rx = task.subscribe();
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

    pub(crate) async fn delete(&self, id: &str, exec_id: &str) -> Result<DeleteResponse, DaemonError> {
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
            return Err(DaemonError::ProcessRunning(
                (if exec_id.is_empty() { id } else { exec_id }).to_string(),
            ));
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
            task.remove_exec(exec_id);
            // A Wait on this exec must see it gone.
            task.notify();
        } else {
            task.mark_deleting();
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
                        crate::cleanup::orphan(task.cfg(), task.dir(), task.cgroup(), &task.procs());
                    }
                }
            } else {
                crate::cleanup::orphan(task.cfg(), task.dir(), task.cgroup(), &task.procs());
            }
            if let Some(s) = last.or_else(|| state::read(&task.dir().state()).ok()) {
                task.apply_snapshot(&s);
            }
            if task.cfg().rootfs_mounted {
                if let Err(e) = mounts::unmount_rootfs(&task.cfg().rootfs) {
                    warn!(id, error = %crate::error::chain(&e), "cannot unmount rootfs");
                }
            }
            let _ = std::fs::remove_dir_all(task.dir().path());
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

//! Kill, Exec, Pause/Resume, ResizePty, CloseIO, Update and Pids: requests
//! on a task that already exists.

use containerd_shim_protos::api::{ExecProcessRequest, ProcessInfo, ResizePtyRequest};
use containerd_shim_protos::events::task::{TaskExecAdded, TaskPaused, TaskResumed};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message as _;
use containerd_shim_protos::shim::oci::ProcessDetails;
use containerd_shim_protos::topics;
use zygote_contract::proto::{Reply, Request};
use zygote_contract::state::{ProcState, Status, StdioPaths};

use crate::daemon::Daemon;
use crate::error::DaemonError;
use crate::task::{ProcInfo, Task};

const SIGKILL: u32 = 9;

impl Daemon {
    /// Sends a request to the task's monitor and turns error replies into errors.
    pub(crate) async fn ask(&self, task: &Task, req: Request) -> Result<Reply, DaemonError> {
        let id = task.cfg().id.clone();
        let m = task.monitor().ok_or_else(|| DaemonError::NotRunning(id.clone()))?;
        match m.call(&req, &[]).await {
            Ok((Reply::Error { failure }, _)) => Err(DaemonError::Monitor { id, failure }),
            Ok((r, _)) => Ok(r),
            Err(source) => Err(DaemonError::MonitorGone { id, source }),
        }
    }

    pub(crate) async fn kill(&self, id: &str, exec_id: &str, signal: u32, all: bool) -> Result<(), DaemonError> {
        let task = self.get(id)?;
        let p = task
            .proc(exec_id)
            .ok_or_else(|| DaemonError::NotFound(format!("{id}/{exec_id}")))?;
        if p.state.status == Status::Stopped {
            return Err(DaemonError::ProcessExited);
        }
        let exec = (!exec_id.is_empty()).then(|| exec_id.to_string());
        self.ask(
            &task,
            Request::Kill {
                exec_id: exec,
                signal: signal as i32,
                all,
            },
        )
        .await?;
        // A frozen process cannot die: like runc, thaw after SIGKILL.
        if signal == SIGKILL && task.is_paused() {
            let cg = task.cgroup_handle();
            tokio::task::spawn_blocking(move || cg.thaw()).await.ok();
            task.set_paused(false);
        }
        Ok(())
    }

    pub(crate) async fn exec(&self, req: &ExecProcessRequest) -> Result<(), DaemonError> {
        let task = self.get(&req.id)?;
        crate::create::validate_id(&req.exec_id)?;
        if task.proc(&req.exec_id).is_some() {
            return Err(DaemonError::AlreadyExists(format!("exec {}", req.exec_id)));
        }
        let process: oci_spec::runtime::Process =
            serde_json::from_slice(&req.spec.value).map_err(|source| DaemonError::MalformedProcess {
                exec_id: req.exec_id.clone(),
                source,
            })?;
        if process.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(DaemonError::NoArgs(req.exec_id.clone()));
        }
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let reply = self
            .ask(
                &task,
                Request::Exec {
                    exec_id: req.exec_id.clone(),
                    process: Box::new(process),
                    stdio: stdio.clone(),
                },
            )
            .await?;
        let Reply::Pid { pid, .. } = reply else {
            return Err(DaemonError::UnexpectedReply {
                from: "monitor",
                reply: Box::new(reply),
            });
        };
        let info = ProcInfo {
            state: ProcState::created(pid),
            stdio,
        };
        task.add_exec(&req.exec_id, info);
        let ev = TaskExecAdded {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        };
        self.publish(&task, topics::TASK_EXEC_ADDED_EVENT_TOPIC, Box::new(ev));
        Ok(())
    }

    pub(crate) async fn pause(&self, id: &str, pause: bool) -> Result<(), DaemonError> {
        let task = self.get(id)?;
        if task.init_status() != Some(Status::Running) {
            return Err(DaemonError::NotRunning(id.into()));
        }
        let cg = task.cgroup_handle();
        let r = tokio::task::spawn_blocking(move || if pause { cg.freeze() } else { cg.thaw() })
            .await
            .map_err(|e| DaemonError::io("freezer")(std::io::Error::other(e)))?;
        r?;
        task.set_paused(pause);
        task.notify();
        if pause {
            self.publish(
                &task,
                topics::TASK_PAUSED_EVENT_TOPIC,
                Box::new(TaskPaused {
                    container_id: id.into(),
                    ..Default::default()
                }),
            );
        } else {
            self.publish(
                &task,
                topics::TASK_RESUMED_EVENT_TOPIC,
                Box::new(TaskResumed {
                    container_id: id.into(),
                    ..Default::default()
                }),
            );
        }
        Ok(())
    }

    pub(crate) async fn resize(&self, req: &ResizePtyRequest) -> Result<(), DaemonError> {
        let task = self.get(&req.id)?;
        let exec_id = (!req.exec_id.is_empty()).then(|| req.exec_id.clone());
        self.ask(
            &task,
            Request::Resize {
                exec_id,
                width: req.width,
                height: req.height,
            },
        )
        .await
        .map(drop)
    }

    pub(crate) async fn close_io(&self, id: &str, exec_id: &str, stdin: bool) -> Result<(), DaemonError> {
        let task = self.get(id)?;
        if !stdin {
            return Ok(());
        }
        let exec = (!exec_id.is_empty()).then(|| exec_id.to_string());
        self.ask(&task, Request::CloseStdin { exec_id: exec }).await.map(drop)
    }

    pub(crate) async fn update(&self, id: &str, resources: &Any) -> Result<(), DaemonError> {
        let task = self.get(id)?;
        let res: oci_spec::runtime::LinuxResources =
            serde_json::from_slice(&resources.value).map_err(DaemonError::MalformedResources)?;
        let cg = task.cgroup_handle();
        tokio::task::spawn_blocking(move || cg.update(&res))
            .await
            .map_err(|e| DaemonError::io("update")(std::io::Error::other(e)))??;
        Ok(())
    }

    /// The task's processes: its cgroup's, or, once every one of them has
    /// exited and the task is not yet deleted, its init's pid (the one
    /// State reports for the stopped task). containerd 1.7 and 2.x, when
    /// they start, take a task whose Pids are empty for a shim leaked by a
    /// crash during Create and delete it unseen: a container that exited
    /// while containerd was down would lose its exit status (CRI reports
    /// 255 "Unknown"); listed, it is loaded as STOPPED with its status.
    pub(crate) async fn pids(&self, id: &str) -> Result<Vec<ProcessInfo>, DaemonError> {
        let task = self.get(id)?;
        let cg = task.cgroup_handle();
        let procs = tokio::task::spawn_blocking(move || cg.procs())
            .await
            .map_err(|e| DaemonError::io("pids")(std::io::Error::other(e)))?;
        let stopped_init = task
            .proc("")
            .filter(|p| p.state.status == Status::Stopped && p.state.pid > 0)
            .map(|p| p.state.pid);
        let pids = match (procs, stopped_init) {
            (Ok(pids), Some(init)) if pids.is_empty() => vec![init],
            (Ok(pids), _) => pids,
            // Its cgroup may be gone with its last process.
            (Err(_), Some(init)) => vec![init],
            (Err(e), None) => return Err(e.into()),
        };
        let execs = task.exec_pids();
        Ok(pids
            .into_iter()
            .map(|pid| {
                let mut info = ProcessInfo {
                    pid: pid as u32,
                    ..Default::default()
                };
                if let Some((exec_id, _)) = execs.iter().find(|(_, p)| *p == pid) {
                    let details = ProcessDetails {
                        exec_id: exec_id.clone(),
                        ..Default::default()
                    };
                    if let Ok(value) = details.write_to_bytes() {
                        info.info = Some(Any {
                            type_url: "containerd.runc.v1.ProcessDetails".into(),
                            value,
                            ..Default::default()
                        })
                        .into();
                    }
                }
                info
            })
            .collect())
    }
}

//! The ttrpc `containerd.task.v2.Task` service: every method implemented,
//! each a thin adapter onto [`Daemon`]; unsupported ones answer
//! UNIMPLEMENTED (the generated defaults would answer NOT_FOUND).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use containerd_shim_protos::api::*;
use containerd_shim_protos::shim_async::Task as TaskService;
use containerd_shim_protos::ttrpc::{self, r#async::TtrpcContext};
use tracing::{debug, warn};

use crate::daemon::Daemon;
use crate::error::DaemonError;

/// containerd puts the namespace of every request in this metadata key.
const NAMESPACE_KEY: &str = "containerd-namespace-ttrpc";

#[derive(Clone)]
pub(crate) struct Service {
    pub(crate) daemon: Arc<Daemon>,
}

fn namespace_of(ctx: &TtrpcContext, bundle: &str) -> String {
    if let Some(ns) = ctx.metadata.get(NAMESPACE_KEY).and_then(|v| v.first()) {
        return ns.clone();
    }
    // containerd's v2 bundles live at <state>/io.containerd.runtime.v2.task/<ns>/<id>.
    std::path::Path::new(bundle)
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "default".into())
}

/// Logs the request's outcome and duration (debug level) and converts the
/// error at the RPC edge.
fn done<T>(method: &str, id: &str, start: Instant, r: Result<T, DaemonError>) -> ttrpc::Result<T> {
    let elapsed = start.elapsed();
    let us = elapsed.as_micros() as u64;
    match r {
        Ok(v) => {
            crate::metrics::rpc(method, "ok", elapsed.as_secs_f64());
            debug!(method, id, us, "request done");
            Ok(v)
        }
        Err(e) => {
            crate::metrics::rpc(method, e.code_name(), elapsed.as_secs_f64());
            debug!(method, id, us, error = %crate::error::chain(&e), "request failed");
            Err(e.into())
        }
    }
}

impl Service {
    async fn adopt(&self, ctx: &TtrpcContext, id: &str) {
        if let Ok(task) = self.daemon.get(id) {
            self.daemon.adopt_connection(&task, ctx.fd).await;
        }
    }
}

#[async_trait]
impl TaskService for Service {
    async fn state(&self, ctx: &TtrpcContext, req: StateRequest) -> ttrpc::Result<StateResponse> {
        let t = Instant::now();
        self.adopt(ctx, &req.id).await;
        done("state", &req.id, t, self.daemon.state(&req.id, &req.exec_id))
    }

    async fn create(&self, ctx: &TtrpcContext, req: CreateTaskRequest) -> ttrpc::Result<CreateTaskResponse> {
        let t = Instant::now();
        let ns = namespace_of(ctx, &req.bundle);
        let r = self.daemon.create(&req, ns, ctx.fd).await;
        if let Err(e) = &r {
            warn!(id = %req.id, error = %crate::error::chain(e), "create failed");
        }
        done("create", &req.id, t, r)
    }

    async fn start(&self, ctx: &TtrpcContext, req: StartRequest) -> ttrpc::Result<StartResponse> {
        let t = Instant::now();
        self.adopt(ctx, &req.id).await;
        let pid = done("start", &req.id, t, self.daemon.start(&req.id, &req.exec_id).await)?;
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    async fn delete(&self, ctx: &TtrpcContext, req: DeleteRequest) -> ttrpc::Result<DeleteResponse> {
        let t = Instant::now();
        self.adopt(ctx, &req.id).await;
        done("delete", &req.id, t, self.daemon.delete(&req.id, &req.exec_id).await)
    }

    async fn pids(&self, ctx: &TtrpcContext, req: PidsRequest) -> ttrpc::Result<PidsResponse> {
        let t = Instant::now();
        self.adopt(ctx, &req.id).await;
        let processes = done("pids", &req.id, t, self.daemon.pids(&req.id).await)?;
        Ok(PidsResponse {
            processes,
            ..Default::default()
        })
    }

    async fn pause(&self, ctx: &TtrpcContext, req: PauseRequest) -> ttrpc::Result<Empty> {
        let t = Instant::now();
        self.adopt(ctx, &req.id).await;
        done("pause", &req.id, t, self.daemon.pause(&req.id, true).await).map(|_| Empty::new())
    }

    async fn resume(&self, ctx: &TtrpcContext, req: ResumeRequest) -> ttrpc::Result<Empty> {
        let t = Instant::now();
        self.adopt(ctx, &req.id).await;
        done("resume", &req.id, t, self.daemon.pause(&req.id, false).await).map(|_| Empty::new())
    }

    async fn checkpoint(&self, _ctx: &TtrpcContext, _req: CheckpointTaskRequest) -> ttrpc::Result<Empty> {
        Err(DaemonError::Unimplemented("checkpoint").into())
    }

    async fn kill(&self, ctx: &TtrpcContext, req: KillRequest) -> ttrpc::Result<Empty> {
        let t = Instant::now();
        self.adopt(ctx, &req.id).await;
        done(
            "kill",
            &req.id,
            t,
            self.daemon.kill(&req.id, &req.exec_id, req.signal, req.all).await,
        )
        .map(|_| Empty::new())
    }

    async fn exec(&self, ctx: &TtrpcContext, req: ExecProcessRequest) -> ttrpc::Result<Empty> {
        let t = Instant::now();
        self.adopt(ctx, &req.id).await;
        done("exec", &req.id, t, self.daemon.exec(&req).await).map(|_| Empty::new())
    }

    async fn resize_pty(&self, ctx: &TtrpcContext, req: ResizePtyRequest) -> ttrpc::Result<Empty> {
        let t = Instant::now();
        self.adopt(ctx, &req.id).await;
        done("resize_pty", &req.id, t, self.daemon.resize(&req).await).map(|_| Empty::new())
    }

    async fn close_io(&self, ctx: &TtrpcContext, req: CloseIORequest) -> ttrpc::Result<Empty> {
        let t = Instant::now();
        self.adopt(ctx, &req.id).await;
        done(
            "close_io",
            &req.id,
            t,
            self.daemon.close_io(&req.id, &req.exec_id, req.stdin).await,
        )
        .map(|_| Empty::new())
    }

    async fn update(&self, ctx: &TtrpcContext, req: UpdateTaskRequest) -> ttrpc::Result<Empty> {
        let t = Instant::now();
        self.adopt(ctx, &req.id).await;
        done("update", &req.id, t, self.daemon.update(&req.id, &req.resources).await).map(|_| Empty::new())
    }

    async fn wait(&self, ctx: &TtrpcContext, req: WaitRequest) -> ttrpc::Result<WaitResponse> {
        let t = Instant::now();
        self.adopt(ctx, &req.id).await;
        // Written down until answered, so a restarted daemon can answer it.
        let pending = self
            .daemon
            .get(&req.id)
            .ok()
            .zip(crate::waits::connection_id(ctx.fd))
            .map(|(task, conn)| {
                let w = crate::waits::PendingWait {
                    conn,
                    stream: ctx.mh.stream_id,
                    exec_id: req.exec_id.clone(),
                };
                task.add_wait(w.clone());
                (task, w)
            });
        let r = self.daemon.wait(&req.id, &req.exec_id).await;
        if let Some((task, w)) = pending {
            task.remove_wait(&w);
        }
        done("wait", &req.id, t, r)
    }

    async fn stats(&self, ctx: &TtrpcContext, req: StatsRequest) -> ttrpc::Result<StatsResponse> {
        let t = Instant::now();
        self.adopt(ctx, &req.id).await;
        let stats = done("stats", &req.id, t, self.daemon.stats(&req.id).await)?;
        Ok(StatsResponse {
            stats: Some(stats).into(),
            ..Default::default()
        })
    }

    async fn connect(&self, ctx: &TtrpcContext, req: ConnectRequest) -> ttrpc::Result<ConnectResponse> {
        self.adopt(ctx, &req.id).await;
        let task_pid = self
            .daemon
            .get(&req.id)
            .ok()
            .and_then(|t| t.proc(""))
            .map(|p| p.state.pid as u32)
            .unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: "2".into(),
            ..Default::default()
        })
    }

    async fn shutdown(&self, _ctx: &TtrpcContext, req: ShutdownRequest) -> ttrpc::Result<Empty> {
        // One daemon serves every task and (later) the warm pools: a task's
        // Shutdown never stops it.
        debug!(id = %req.id, tasks = self.daemon.task_count(), "shutdown requested; daemon stays");
        Ok(Empty::new())
    }
}

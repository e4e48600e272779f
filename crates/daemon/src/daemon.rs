//! The daemon's shared state: the task table, event sink, and the per-task
//! watcher that turns monitor events into containerd events.

use std::collections::{HashMap, HashSet};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use containerd_shim_protos::events::task::{TaskExit, TaskOOM};
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::topics;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use zygote_monitor::proto::{Event, Request};
use zygote_monitor::state::{self, ProcState, Snapshot, Status};

use crate::error::DaemonError;
use crate::events::Events;
use crate::task::Task;
use zygote_monitor::client::Incoming;

pub struct Daemon {
    pub dir: PathBuf,
    /// The shim binary (monitors are this binary in `__monitor` mode).
    pub exe: PathBuf,
    /// containerd's ttrpc address (events go there).
    pub ttrpc_address: String,
    pub tasks: RwLock<HashMap<String, Arc<Task>>>,
    /// Ids with a Create in flight.
    pub creating: std::sync::Mutex<HashSet<String>>,
    pub events: Events,
    /// The configuration's profiles, their security, the seccomp cache.
    pub profiles: crate::profiles::Profiles,
    /// Warm zygotes per profile.
    pub pools: std::sync::Arc<zygote_pool::PoolSet>,
    /// Wasm tasks: entrypoint detection and the artifact cache.
    pub wasm: crate::wasm::Wasm,
}

pub fn timestamp(ns: i64) -> Timestamp {
    let mut t = Timestamp::new();
    t.seconds = ns.div_euclid(1_000_000_000);
    t.nanos = ns.rem_euclid(1_000_000_000) as i32;
    t
}

impl Daemon {
    pub fn new(dir: &Path, exe: PathBuf, ttrpc_address: String) -> Self {
        let profiles = crate::profiles::Profiles::load();
        // Only cgroup v1 can rename a cgroup into place at claim time.
        let pre_place = matches!(
            zygote_runtime::cgroups::Layout::detect().map(|l| l.version()),
            Ok(zygote_runtime::cgroups::CgroupVersion::V1)
        );
        let exe_for_pools = exe.clone();
        Daemon {
            dir: dir.to_path_buf(),
            exe,
            ttrpc_address,
            tasks: RwLock::new(HashMap::new()),
            creating: Default::default(),
            events: Events::start(),
            pools: zygote_pool::PoolSet::new(exe_for_pools, dir, pre_place, profiles.pool_specs()),
            wasm: crate::wasm::Wasm::new(&profiles.wasm_node(), dir),
            profiles,
        }
    }

    pub fn get(&self, id: &str) -> Result<Arc<Task>, DaemonError> {
        self.tasks.read().expect("tasks lock").get(id).cloned().ok_or_else(|| DaemonError::NotFound(id.to_string()))
    }

    pub fn task_count(&self) -> usize {
        self.tasks.read().expect("tasks lock").len()
    }

    pub fn publish(
        &self,
        task: &Task,
        topic: &'static str,
        event: Box<dyn containerd_shim_protos::protobuf::MessageDyn>,
    ) {
        self.events.publish(&task.cfg.ttrpc_address, &task.cfg.namespace, topic, event);
    }

    /// Hands the containerd connection that carried a request for `task` to
    /// its monitor (once per connection), so the connection survives us.
    pub async fn adopt_connection(&self, task: &Task, fd: RawFd) {
        let Ok(st) = nix::sys::stat::fstat(fd) else {
            return;
        };
        if !task.adopted.lock().expect("adopted lock").insert(st.st_ino) {
            return;
        }
        // A connection proxied by ourselves after a restart is already held.
        if let Ok(cred) = nix::sys::socket::getsockopt(&borrow(fd), nix::sys::socket::sockopt::PeerCredentials) {
            if cred.pid() == std::process::id() as i32 {
                return;
            }
        }
        if let Some(m) = task.monitor() {
            if let Err(e) = m.call(&Request::AdoptConnection, &[fd]).await {
                warn!(id = %task.cfg.id, error = %e, "cannot hand connection to monitor");
            }
        }
    }

    /// Consumes a monitor's events for as long as it lives.
    pub fn watch(self: &Arc<Self>, task: Arc<Task>, mut rx: mpsc::UnboundedReceiver<Incoming>) {
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    Incoming::Event(Event::Exited { exec_id, pid, status, exited_at_ns }) => {
                        let _order = task.lifecycle.lock().await;
                        let key = exec_id.clone().unwrap_or_default();
                        task.update(&key, |p| {
                            p.state = ProcState {
                                pid,
                                status: Status::Stopped,
                                exit_status: Some(status),
                                exited_at_ns: Some(exited_at_ns),
                            };
                        });
                        // During Delete, Delete itself publishes the exit,
                        // before TaskDelete.
                        if !task.deleting.load(std::sync::atomic::Ordering::SeqCst) {
                            this.publish_exit(&task, exec_id.as_deref(), pid, status, exited_at_ns);
                        }
                    }
                    Incoming::Event(Event::Oom) => {
                        info!(id = %task.cfg.id, "oom kill");
                        let ev = TaskOOM { container_id: task.cfg.id.clone(), ..Default::default() };
                        this.publish(&task, topics::TASK_OOM_EVENT_TOPIC, Box::new(ev));
                    }
                    Incoming::Closed => {
                        this.monitor_gone(&task);
                        return;
                    }
                }
            }
        });
    }

    pub fn publish_exit(&self, task: &Task, exec_id: Option<&str>, pid: i32, status: i32, exited_at_ns: i64) {
        let ev = TaskExit {
            container_id: task.cfg.id.clone(),
            id: exec_id.unwrap_or(&task.cfg.id).to_string(),
            pid: pid as u32,
            exit_status: status as u32,
            exited_at: Some(timestamp(exited_at_ns)).into(),
            ..Default::default()
        };
        self.publish(task, topics::TASK_EXIT_EVENT_TOPIC, Box::new(ev));
        let _ = std::fs::write(task.dir.join(state::exit_marker(exec_id)), b"");
    }

    /// The monitor died (it never should): what it persisted is the truth;
    /// processes it did not see exit are reported as killed (255, like a
    /// lost runc-v2 shim).
    fn monitor_gone(&self, task: &Task) {
        *task.monitor.lock().expect("monitor lock") = None;
        if task.deleting.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let snap: Option<Snapshot> = state::read(&task.dir.join(state::STATE_FILE)).ok();
        if let Some(snap) = &snap {
            task.apply_snapshot(snap);
        }
        let init = task.proc("");
        if let Some(p) = init {
            if p.state.status != Status::Stopped {
                warn!(id = %task.cfg.id, "monitor vanished while the task ran");
                let now = state::wall_ns();
                task.update("", |p| {
                    p.state.status = Status::Stopped;
                    p.state.exit_status = Some(255);
                    p.state.exited_at_ns = Some(now);
                });
                self.publish_exit(task, None, p.state.pid, 255, now);
            }
        }
        debug!(id = %task.cfg.id, "monitor connection closed");
    }
}

fn borrow(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: callers pass a descriptor owned by the ttrpc connection that is
    // serving the current request, which stays open until the handler returns;
    // the borrow does not escape the handler.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

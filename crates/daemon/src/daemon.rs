//! The daemon's shared state: the task table, event sink, and the per-task
//! watcher that turns monitor events into containerd events.

use std::collections::{HashMap, HashSet};
use std::os::fd::RawFd;
use std::path::PathBuf;

use std::sync::{Arc, RwLock};
use zygote_contract::DaemonDir;

use containerd_shim_protos::events::task::{TaskExit, TaskOOM};
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::topics;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use zygote_contract::proto::{Event, Request};
use zygote_contract::state::{self, Snapshot, Status};

use crate::error::DaemonError;
use crate::events::Events;
use crate::monitor_client::Incoming;
use crate::task::Task;

pub(crate) struct Daemon {
    pub(crate) dir: DaemonDir,
    /// The shim binary (monitors are this binary in `__monitor` mode).
    pub(crate) exe: PathBuf,
    /// containerd's ttrpc address (events go there).
    pub(crate) ttrpc_address: String,
    pub(crate) tasks: RwLock<HashMap<String, Arc<Task>>>,
    /// Ids with a Create in flight.
    pub(crate) creating: std::sync::Mutex<HashSet<String>>,
    pub(crate) events: Events,
    /// The configuration's profiles, their security, the seccomp cache;
    /// replaced whole by a reload (`crate::reload`).
    profiles: RwLock<Arc<crate::profiles::Profiles>>,
    /// Warm zygotes per profile.
    pub(crate) pools: std::sync::Arc<crate::pool::PoolSet>,
    /// Wasm tasks: entrypoint detection and the artifact cache.
    pub(crate) wasm: crate::wasm::Wasm,
    /// Inherited containerd connections we serve through a proxy, by the
    /// inode of containerd's socket: where a frame can be put between our
    /// replies (see [`crate::waits`]).
    pub(crate) injectors: std::sync::Mutex<HashMap<u64, mpsc::UnboundedSender<Vec<u8>>>>,
    pub(crate) proxy_seq: std::sync::atomic::AtomicU64,
}

/// Everything a daemon is built from that it would otherwise read from the
/// environment, the host or config files: [`Settings::from_env`] reads
/// those at the binary's edge; unit tests build one by hand.
pub(crate) struct Settings {
    pub(crate) dir: DaemonDir,
    /// The shim binary (monitors are this binary in `__monitor` mode).
    pub(crate) exe: PathBuf,
    pub(crate) ttrpc_address: String,
    pub(crate) profiles: crate::profiles::Profiles,
    /// Pre-place zygotes in pool cgroups (only cgroup v1 can rename one
    /// into place at claim time).
    pub(crate) pre_place: bool,
    /// `$ZYGOTE_WASM_CACHE_DIR`, which overrides the configuration's.
    pub(crate) wasm_cache_dir: Option<PathBuf>,
    /// How the pools get their zygotes.
    pub(crate) spawner: Arc<dyn crate::pool::Spawner>,
    /// The node's pressure (the pools' gate).
    pub(crate) pressure: crate::pressure::Pressure,
}

impl Settings {
    /// Reads the configuration (`$ZYGOTE_CONFIG`, `/etc/zygote/config.toml`
    /// or the built-in default), the cgroup version and the environment.
    pub(crate) fn from_env(dir: &DaemonDir, exe: PathBuf, ttrpc_address: String) -> Settings {
        let pre_place = matches!(
            zygote_runtime::cgroups::Layout::detect().map(|l| l.version()),
            Ok(zygote_runtime::cgroups::CgroupVersion::V1)
        );
        let spawner = Arc::new(crate::pool::ProcessSpawner {
            exe: exe.clone(),
            log: dir.zygotes_log(),
        });
        Settings {
            dir: dir.clone(),
            exe,
            ttrpc_address,
            profiles: crate::profiles::Profiles::load(),
            pre_place,
            wasm_cache_dir: std::env::var_os(crate::wasm::CACHE_DIR_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            spawner,
            pressure: crate::pressure::Pressure::start(crate::pressure::Sources::host()),
        }
    }
}

pub fn timestamp(ns: i64) -> Timestamp {
    let mut t = Timestamp::new();
    t.seconds = ns.div_euclid(1_000_000_000);
    t.nanos = ns.rem_euclid(1_000_000_000) as i32;
    t
}

impl Daemon {
    /// A daemon with no tasks; its pools are not started yet. Needs a
    /// tokio runtime (the event sender is a task).
    pub(crate) fn new(s: Settings) -> Self {
        let Settings {
            dir,
            exe,
            ttrpc_address,
            profiles,
            pre_place,
            wasm_cache_dir,
            spawner,
            pressure,
        } = s;
        Daemon {
            pools: crate::pool::PoolSet::new(spawner, &dir, pre_place, profiles.pool_specs(), pressure),
            wasm: crate::wasm::Wasm::new(&profiles.wasm_node(), &dir, wasm_cache_dir),
            dir,
            exe,
            ttrpc_address,
            tasks: RwLock::new(HashMap::new()),
            creating: Default::default(),
            events: Events::start(),
            profiles: RwLock::new(Arc::new(profiles)),
            injectors: Default::default(),
            proxy_seq: Default::default(),
        }
    }

    /// The profiles in force (a reload may replace them at any time; a
    /// Create keeps the ones it resolved with).
    pub(crate) fn profiles(&self) -> Arc<crate::profiles::Profiles> {
        self.profiles.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts reloaded profiles in force.
    pub(crate) fn set_profiles(&self, p: crate::profiles::Profiles) {
        *self.profiles.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(p);
    }

    pub(crate) fn get(&self, id: &str) -> Result<Arc<Task>, DaemonError> {
        self.tasks
            .read()
            .expect("tasks lock")
            .get(id)
            .cloned()
            .ok_or_else(|| DaemonError::NotFound(id.to_string()))
    }

    pub(crate) fn task_count(&self) -> usize {
        self.tasks.read().expect("tasks lock").len()
    }

    pub(crate) fn publish(
        &self,
        task: &Task,
        topic: &'static str,
        event: Box<dyn containerd_shim_protos::protobuf::MessageDyn>,
    ) {
        self.events
            .publish(&task.cfg().ttrpc_address, &task.cfg().namespace, topic, event);
    }

    /// Hands the containerd connection that carried a request for `task` to
    /// its monitor (once per connection), so the connection survives us.
    pub(crate) async fn adopt_connection(&self, task: &Task, fd: RawFd) {
        let Ok(st) = nix::sys::stat::fstat(fd) else {
            return;
        };
        if !task.first_request_on(st.st_ino) {
            return;
        }
        // A connection proxied by ourselves after a restart is already held.
        if crate::waits::is_proxied(fd) {
            return;
        }
        if let Some(m) = task.monitor() {
            if let Err(e) = m.call(&Request::AdoptConnection, &[fd]).await {
                warn!(id = %task.cfg().id, error = %e, "cannot hand connection to monitor");
            }
        }
    }

    /// Consumes a monitor's events for as long as it lives.
    pub(crate) fn watch(self: &Arc<Self>, task: Arc<Task>, mut rx: mpsc::UnboundedReceiver<Incoming>) {
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    Incoming::Event(Event::Exited {
                        exec_id,
                        pid,
                        status,
                        exited_at_ns,
                    }) => {
                        let _order = task.lifecycle().await;
                        let key = exec_id.clone().unwrap_or_default();
                        task.update(&key, |p| {
                            p.state.pid = pid;
                            p.state.status = Status::Stopped;
                            p.state.exit_status = Some(status);
                            p.state.exited_at_ns = Some(exited_at_ns);
                        });
                        if exec_id.is_none() {
                            crate::metrics::task_exited(task.cfg().guest.is_some());
                        }
                        // During Delete, Delete itself publishes the exit,
                        // before TaskDelete.
                        if !task.is_deleting() {
                            this.publish_exit(&task, exec_id.as_deref(), pid, status, exited_at_ns);
                        }
                    }
                    Incoming::Event(Event::Oom) => {
                        info!(id = %task.cfg().id, "oom kill");
                        crate::metrics::oom_killed(task.cfg().guest.is_some());
                        let ev = TaskOOM {
                            container_id: task.cfg().id.clone(),
                            ..Default::default()
                        };
                        this.publish(&task, topics::TASK_OOM_EVENT_TOPIC, Box::new(ev));
                    }
                    Incoming::Closed => {
                        this.monitor_gone(&task).await;
                        return;
                    }
                }
            }
        });
    }

    pub(crate) fn publish_exit(&self, task: &Task, exec_id: Option<&str>, pid: i32, status: i32, exited_at_ns: i64) {
        let ev = TaskExit {
            container_id: task.cfg().id.clone(),
            id: exec_id.unwrap_or(&task.cfg().id).to_string(),
            pid: pid as u32,
            exit_status: status as u32,
            exited_at: Some(timestamp(exited_at_ns)).into(),
            ..Default::default()
        };
        self.publish(task, topics::TASK_EXIT_EVENT_TOPIC, Box::new(ev));
        let _ = std::fs::write(task.dir().exit_marker(exec_id), b"");
    }

    /// The monitor died (it never should, short of `kill -9`): like
    /// containerd after losing a runc-v2 shim, the task's processes that
    /// still run are killed (most died with it already: a container cloned
    /// by its monitor has it as parent-death signal) and reported as killed
    /// (137); what the monitor persisted is the truth for the others.
    async fn monitor_gone(&self, task: &Task) {
        task.set_monitor(None);
        if task.is_deleting() {
            return;
        }
        if let Ok(snap) = state::read::<Snapshot>(&task.dir().state()) {
            task.apply_snapshot(&snap);
        }
        self.end_lost_processes(task).await;
        debug!(id = %task.cfg().id, "monitor connection closed");
    }

    /// Kills what still runs of a task without a monitor and reports each
    /// such process as killed by SIGKILL.
    pub(crate) async fn end_lost_processes(&self, task: &Task) {
        let procs = task.procs();
        if procs.iter().all(|p| p.status == Status::Stopped) {
            return;
        }
        warn!(id = %task.cfg().id, "monitor vanished while the task ran; killing what is left of it");
        let (cfg, cgroup) = (task.cfg().clone(), task.cgroup_handle());
        let lost = procs.clone();
        let _ = tokio::task::spawn_blocking(move || crate::cleanup::kill_lost(&cfg, &cgroup, &lost)).await;
        let now = state::wall_ns();
        let killed = 128 + libc::SIGKILL;
        let execs: Vec<String> = task.exec_ids();
        for key in std::iter::once(String::new()).chain(execs) {
            let Some(p) = task.proc(&key) else { continue };
            if p.state.status == Status::Stopped {
                continue;
            }
            task.update(&key, |p| {
                p.state.status = Status::Stopped;
                p.state.exit_status = Some(killed);
                p.state.exited_at_ns = Some(now);
            });
            let exec = (!key.is_empty()).then_some(key.as_str());
            self.publish_exit(task, exec, p.state.pid, killed, now);
        }
    }
}

#[cfg(test)]
#[path = "daemon_tests.rs"]
mod tests;

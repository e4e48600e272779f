//! One task as the daemon sees it: its static config, the last known state
//! of its processes, its monitor connection, and the waiters on its exits.
//!
//! The monitor is the source of truth (it writes `state.json` before it
//! reports anything); this struct is the daemon's cache of it, updated from
//! replies and events, and rebuilt from a `Hello` snapshot on re-adoption.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use zygote_contract::TaskDir;

use tokio::sync::watch;
use zygote_contract::proto::CreateDetail;
use zygote_contract::state::{ProcState, Snapshot, Status, StdioPaths, TaskConfig};
use zygote_runtime::cgroups::Cgroup;

use crate::monitor_client::MonitorClient;

use crate::waits::PendingWait;

/// A process (init or exec) and its stdio.
#[derive(Debug, Clone)]
pub(crate) struct ProcInfo {
    pub(crate) state: ProcState,
    pub(crate) stdio: StdioPaths,
}

#[derive(Debug, Default)]
struct TaskState {
    init: Option<ProcInfo>,
    execs: HashMap<String, ProcInfo>,
    paused: bool,
}

/// A task. What never changes after Create is readable as is ([`Task::cfg`],
/// [`Task::dir`], [`Task::cgroup`]); what changes sits behind the methods
/// below, each taking its lock for one step (none is held across an
/// `.await` except the Start/exit order guard, [`Task::lifecycle`]).
pub(crate) struct Task {
    cfg: TaskConfig,
    dir: TaskDir,
    cgroup: Arc<Cgroup>,
    monitor: Mutex<Option<MonitorClient>>,
    state: Mutex<TaskState>,
    /// Bumped whenever a process changes state; `Wait` watches it.
    changed: watch::Sender<u64>,
    /// Held while a Start is in flight so a fast exit's TaskExit is
    /// published after the TaskStart it follows.
    lifecycle: tokio::sync::Mutex<()>,
    /// Inodes of containerd connections already handed to the monitor.
    adopted: Mutex<HashSet<u64>>,
    /// How the task was created, for `timings.jsonl`.
    timing: Mutex<Option<CreateTiming>>,
    /// Set when Delete began: the monitor's exit is expected.
    deleting: AtomicBool,
    /// `Wait`s containerd has pending on this task, also on disk
    /// ([`crate::waits`]).
    waits: Mutex<Vec<PendingWait>>,
}

/// How a task was created, for its line in `timings.jsonl`.
#[derive(Debug, Clone)]
pub(crate) struct CreateTiming {
    /// Create received, on CLOCK_MONOTONIC.
    pub(crate) received_ns: i64,
    /// The container at its barrier, on CLOCK_MONOTONIC.
    pub(crate) ready_ns: i64,
    /// Warm or cold, and what that took.
    pub(crate) detail: CreateDetail,
    /// How a Wasm task's artifact was found.
    pub(crate) wasm: Option<crate::wasm::WasmDetail>,
}

impl Task {
    pub(crate) fn new(cfg: TaskConfig, dir: TaskDir, cgroup: Cgroup) -> Self {
        Task {
            cfg,
            dir,
            cgroup: Arc::new(cgroup),
            monitor: Mutex::new(None),
            state: Mutex::new(TaskState::default()),
            changed: watch::channel(0).0,
            lifecycle: tokio::sync::Mutex::new(()),
            adopted: Mutex::new(HashSet::new()),
            timing: Mutex::new(None),
            deleting: AtomicBool::new(false),
            waits: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn cfg(&self) -> &TaskConfig {
        &self.cfg
    }

    pub(crate) fn dir(&self) -> &TaskDir {
        &self.dir
    }

    pub(crate) fn cgroup(&self) -> &Cgroup {
        &self.cgroup
    }

    /// The cgroup, for a blocking task.
    pub(crate) fn cgroup_handle(&self) -> Arc<Cgroup> {
        self.cgroup.clone()
    }

    /// Connects (or, with `None`, forgets) the task's monitor.
    pub(crate) fn set_monitor(&self, m: Option<MonitorClient>) {
        *self.monitor.lock().expect("monitor lock") = m;
    }

    /// Held from a Start's request until its TaskStart is published; an
    /// exit's TaskExit waits for it.
    pub(crate) async fn lifecycle(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.lifecycle.lock().await
    }

    /// Records that containerd connection `ino` carried a request for the
    /// task; true the first time.
    pub(crate) fn first_request_on(&self, ino: u64) -> bool {
        self.adopted.lock().expect("adopted lock").insert(ino)
    }

    /// Wakes up on every change of a process's state.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub(crate) fn set_init(&self, init: ProcInfo) {
        self.state.lock().expect("state lock").init = Some(init);
        self.notify();
    }

    pub(crate) fn add_exec(&self, exec_id: &str, p: ProcInfo) {
        self.state.lock().expect("state lock").execs.insert(exec_id.into(), p);
        self.notify();
    }

    pub(crate) fn remove_exec(&self, exec_id: &str) {
        self.state.lock().expect("state lock").execs.remove(exec_id);
        self.notify();
    }

    pub(crate) fn exec_ids(&self) -> Vec<String> {
        self.state.lock().expect("state lock").execs.keys().cloned().collect()
    }

    /// Every exec's id and pid.
    pub(crate) fn exec_pids(&self) -> Vec<(String, i32)> {
        let st = self.state.lock().expect("state lock");
        st.execs.iter().map(|(k, v)| (k.clone(), v.state.pid)).collect()
    }

    pub(crate) fn set_paused(&self, paused: bool) {
        self.state.lock().expect("state lock").paused = paused;
        self.notify();
    }

    pub(crate) fn set_timing(&self, t: CreateTiming) {
        *self.timing.lock().expect("timing lock") = Some(t);
    }

    pub(crate) fn timing(&self) -> Option<CreateTiming> {
        self.timing.lock().expect("timing lock").clone()
    }

    /// Delete began: the monitor's exit is expected from now on.
    pub(crate) fn mark_deleting(&self) {
        self.deleting.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_deleting(&self) -> bool {
        self.deleting.load(Ordering::SeqCst)
    }

    /// The pending waits found on disk by a restarted daemon.
    pub(crate) fn set_waits(&self, waits: Vec<PendingWait>) {
        *self.waits.lock().expect("waits lock") = waits;
    }

    pub(crate) fn waits(&self) -> Vec<PendingWait> {
        self.waits.lock().expect("waits lock").clone()
    }

    /// Records a `Wait` containerd is waiting on.
    pub(crate) fn add_wait(&self, w: PendingWait) {
        let mut waits = self.waits.lock().expect("waits lock");
        waits.push(w);
        crate::waits::save(&self.dir, &waits);
    }

    /// Forgets an answered `Wait`.
    pub(crate) fn remove_wait(&self, w: &PendingWait) {
        let mut waits = self.waits.lock().expect("waits lock");
        let before = waits.len();
        waits.retain(|x| x != w);
        if waits.len() != before && !self.is_deleting() {
            crate::waits::save(&self.dir, &waits);
        }
    }

    pub(crate) fn monitor(&self) -> Option<MonitorClient> {
        self.monitor.lock().expect("monitor lock").clone()
    }

    pub(crate) fn notify(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// Looks up a process; `None` or `""` is the init.
    pub(crate) fn proc(&self, exec_id: &str) -> Option<ProcInfo> {
        let st = self.state.lock().expect("state lock");
        if exec_id.is_empty() {
            st.init.clone()
        } else {
            st.execs.get(exec_id).cloned()
        }
    }

    pub(crate) fn update<R>(&self, exec_id: &str, f: impl FnOnce(&mut ProcInfo) -> R) -> Option<R> {
        let mut st = self.state.lock().expect("state lock");
        let p = if exec_id.is_empty() {
            st.init.as_mut()
        } else {
            st.execs.get_mut(exec_id)
        };
        let r = p.map(f);
        drop(st);
        self.notify();
        r
    }

    /// Merges a monitor snapshot (re-adoption, Delete, a state file) into
    /// the cached state. Never goes back: a process known to have stopped
    /// keeps the exit it was reported with, whatever an older snapshot (a
    /// state file that could not be rewritten) says.
    pub(crate) fn apply_snapshot(&self, snap: &Snapshot) {
        let mut st = self.state.lock().expect("state lock");
        let merged = |old: Option<&ProcInfo>, new: &ProcState| match old {
            Some(o) if o.state.status == Status::Stopped && new.status != Status::Stopped => o.state.clone(),
            _ => new.clone(),
        };
        let init = merged(st.init.as_ref(), &snap.init);
        st.init = Some(ProcInfo {
            state: init,
            stdio: self.cfg.stdio.clone(),
        });
        let old = std::mem::take(&mut st.execs);
        for (id, ps) in &snap.execs {
            let state = merged(old.get(id), ps);
            let stdio = old.get(id).map(|p| p.stdio.clone()).unwrap_or_default();
            st.execs.insert(id.clone(), ProcInfo { state, stdio });
        }
        drop(st);
        self.notify();
    }

    /// Every process's last known state (init first).
    pub(crate) fn procs(&self) -> Vec<ProcState> {
        let st = self.state.lock().expect("state lock");
        st.init
            .iter()
            .chain(st.execs.values())
            .map(|p| p.state.clone())
            .collect()
    }

    pub(crate) fn init_status(&self) -> Option<Status> {
        self.state
            .lock()
            .expect("state lock")
            .init
            .as_ref()
            .map(|p| p.state.status)
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.state.lock().expect("state lock").paused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zygote_runtime::cgroups::Layout;

    fn task() -> Task {
        let cfg: TaskConfig = serde_json::from_value(serde_json::json!({
            "id": "t", "namespace": "ns", "bundle": "/b", "rootfs": "/b/rootfs", "rootfs_mounted": false,
            "stdio": { "stdin": "", "stdout": "", "stderr": "", "terminal": false },
            "ttrpc_address": "/c", "daemon_dir": "/d", "exe": "/x"
        }))
        .unwrap();
        let cg = Cgroup::new(Layout::V2("/nonexistent".into()), "/ns/t", "t").unwrap();
        Task::new(cfg, TaskDir::at("/d/tasks/t"), cg)
    }

    fn proc_state(status: Status, exit: Option<i32>) -> ProcState {
        ProcState {
            pid: 7,
            status,
            exit_status: exit,
            exited_at_ns: exit.map(|_| 1),
            start_time: None,
        }
    }

    /// A stale state file (one that could not be rewritten on a full disk)
    /// never takes back an exit the monitor already reported.
    #[test]
    fn an_older_snapshot_never_undoes_an_exit() {
        let t = task();
        t.apply_snapshot(&Snapshot {
            init: proc_state(Status::Stopped, Some(3)),
            execs: Default::default(),
        });
        t.apply_snapshot(&Snapshot {
            init: proc_state(Status::Running, None),
            execs: Default::default(),
        });
        let init = t.proc("").unwrap().state;
        assert_eq!((init.status, init.exit_status), (Status::Stopped, Some(3)));
        // A newer one still applies.
        t.apply_snapshot(&Snapshot {
            init: proc_state(Status::Stopped, Some(4)),
            execs: Default::default(),
        });
        assert_eq!(t.proc("").unwrap().state.exit_status, Some(4));
    }
}

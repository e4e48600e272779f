//! Node pressure (Linux PSI): what the pools consult before a zygote is
//! born. This module owns reading `/proc/pressure/{cpu,memory,io}` and the
//! cgroup v2 `{cpu,memory,io}.pressure` files of the pools' cgroup parents
//! ([`psi`]), the monitor thread that keeps a fresh [`PressureSnapshot`]
//! (woken within a second of rising pressure by PSI triggers, else reading
//! every second: [`monitor`]), and the per-profile gate that compares a
//! snapshot with the profile's thresholds ([`gate`]).
//!
//! The snapshot is published on a `tokio::sync::watch` channel: reading it
//! ([`Pressure::now`]) is one lock-free-ish borrow and an `Arc` clone, cheap
//! enough for the refill loop's every round and for a sizing policy.
//! Nothing here runs on a task's critical path: the monitor is a thread of
//! its own.

pub(crate) mod gate;
mod monitor;
pub(crate) mod psi;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

pub(crate) use monitor::Sources;

/// The PSI resources.
pub(crate) const RESOURCES: [Resource; 3] = [Resource::Cpu, Resource::Memory, Resource::Io];

/// A PSI resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Resource {
    Cpu,
    Memory,
    Io,
}

impl Resource {
    /// The file name under `/proc/pressure`, and the label value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
            Resource::Io => "io",
        }
    }
}

/// One resource's pressure, percent of wall time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Stall {
    /// The kernel's 10 s average of `some`.
    pub(crate) some_avg10: f64,
    /// The kernel's 10 s average of `full`.
    pub(crate) full_avg10: f64,
    /// `some` since the previous read (at most about a second ago), from
    /// the `total` counter: what reacts within a second.
    pub(crate) some_recent: f64,
}

impl Stall {
    /// What a gate compares with its threshold: the larger of the kernel's
    /// 10 s average and the recent share (rises fast, falls with avg10).
    pub(crate) fn some_gate(&self) -> f64 {
        self.some_avg10.max(self.some_recent)
    }
}

/// cpu, memory and io of one place (the node or one cgroup).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Readings {
    pub(crate) cpu: Stall,
    pub(crate) memory: Stall,
    pub(crate) io: Stall,
}

impl Readings {
    pub(crate) fn get(&self, r: Resource) -> &Stall {
        match r {
            Resource::Cpu => &self.cpu,
            Resource::Memory => &self.memory,
            Resource::Io => &self.io,
        }
    }

    pub(crate) fn get_mut(&mut self, r: Resource) -> &mut Stall {
        match r {
            Resource::Cpu => &mut self.cpu,
            Resource::Memory => &mut self.memory,
            Resource::Io => &mut self.io,
        }
    }
}

/// The pressure as last read.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PressureSnapshot {
    /// `/proc/pressure/*`; all zeros where PSI is unavailable.
    pub(crate) node: Readings,
    /// The watched cgroups (v2 path below the root, e.g. `/default`) that
    /// have pressure files.
    pub(crate) cgroups: BTreeMap<PathBuf, Readings>,
    /// PSI could be read at all (the node files exist).
    pub(crate) available: bool,
}

// The node's averages, for a sizing policy to take as inputs (the
// forecast policy of issue 15 takes CPU pressure).
#[allow(dead_code)]
impl PressureSnapshot {
    pub(crate) fn cpu_some_avg10(&self) -> f64 {
        self.node.cpu.some_avg10
    }
    pub(crate) fn memory_some_avg10(&self) -> f64 {
        self.node.memory.some_avg10
    }
    pub(crate) fn memory_full_avg10(&self) -> f64 {
        self.node.memory.full_avg10
    }
    pub(crate) fn io_some_avg10(&self) -> f64 {
        self.node.io.some_avg10
    }

    /// The readings a pool under `parent` is judged by: per resource, the
    /// worse of the node's and the parent cgroup's.
    pub(crate) fn for_parent(&self, parent: Option<&Path>) -> Readings {
        let mut out = self.node;
        if let Some(cg) = parent.and_then(|p| self.cgroups.get(p)) {
            for r in RESOURCES {
                let (o, c) = (out.get_mut(r), cg.get(r));
                o.some_avg10 = o.some_avg10.max(c.some_avg10);
                o.full_avg10 = o.full_avg10.max(c.full_avg10);
                o.some_recent = o.some_recent.max(c.some_recent);
            }
        }
        out
    }
}

/// A handle on the current pressure: cheap to clone and to read.
#[derive(Clone)]
pub(crate) struct Pressure {
    rx: watch::Receiver<Arc<PressureSnapshot>>,
    /// Cgroup parents the monitor also reads (the pools' parents).
    watched: Arc<Mutex<BTreeSet<PathBuf>>>,
}

impl Pressure {
    /// The latest snapshot.
    pub(crate) fn now(&self) -> Arc<PressureSnapshot> {
        self.rx.borrow().clone()
    }

    /// Also read `parent`'s (cgroup v2) pressure files from now on.
    pub(crate) fn watch_cgroup(&self, parent: &Path) {
        self.watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(parent.to_path_buf());
    }

    /// Starts the monitor thread on `sources`; it ends when every handle
    /// is dropped.
    pub(crate) fn start(sources: Sources) -> Pressure {
        let (feed, pressure) = Pressure::manual();
        monitor::spawn(sources, feed.tx, pressure.watched.clone());
        pressure
    }

    /// A handle whose snapshots come from the returned [`Feed`] (tests,
    /// and a daemon that runs without a monitor).
    pub(crate) fn manual() -> (Feed, Pressure) {
        let (tx, rx) = watch::channel(Arc::new(PressureSnapshot::default()));
        (
            Feed { tx },
            Pressure {
                rx,
                watched: Default::default(),
            },
        )
    }
}

/// Publishes snapshots to [`Pressure`] handles.
pub(crate) struct Feed {
    tx: watch::Sender<Arc<PressureSnapshot>>,
}

impl Feed {
    #[cfg(test)]
    pub(crate) fn publish(&self, s: PressureSnapshot) {
        self.tx.send_replace(Arc::new(s));
    }
}

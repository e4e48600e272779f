//! The pools: one per profile, refilled by one background task (its
//! rounds are in `refill.rs`).
//!
//! Locking: one `std::sync::Mutex` over all pools, never held across an
//! `.await`; spawning runs in tasks of its own and reports back under the
//! lock. The refill loop wakes when a task is deleted ([`PoolSet::settled`])
//! and every 250 ms.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::monitor_client::{Incoming, MonitorClient};
use tokio::sync::{mpsc, Notify};
use tracing::{debug, info, warn};
use zygote_contract::zygote::{Generation, ZygoteConfig};
use zygote_contract::DaemonDir;

use super::sizing::{Bounds, Demand};
use super::spawner::Spawner;
use super::stats::{Fallback, ProfileStats, Stats};
use crate::pressure::gate::Gate;
use crate::pressure::Pressure;

#[path = "health.rs"]
pub(super) mod health;
#[path = "reconfigure.rs"]
mod reconfigure;
#[path = "refill.rs"]
mod refill;
pub(crate) use health::Unhealthy;

/// Zygotes created at the same time, over all profiles (2-core nodes).
const MAX_PARALLEL_SPAWNS: usize = 2;
/// Refill period when nothing wakes the loop.
const TICK: Duration = Duration::from_millis(250);
/// Births per second over all profiles (each profile has its own bound
/// too, `pool.max_births_per_sec`).
pub(crate) const NODE_MAX_BIRTHS_PER_SEC: usize = 20;
/// The pacing window.
const PACE: Duration = Duration::from_secs(1);

/// What the daemon's configuration says about one profile's pool.
#[derive(Debug, Clone)]
pub(crate) struct PoolSpec {
    pub(crate) profile: String,
    /// `CLONE_NEW*` bits the zygotes create in advance.
    pub(crate) clone_flags: i32,
    pub(crate) bounds: Bounds,
    pub(crate) max_age: Duration,
    /// Zygotes build the Wasm engine and load the hot modules in advance.
    pub(crate) wasm: bool,
    /// Pressure above which no zygote is born.
    pub(crate) pressure: zygote_config::PoolPressure,
    /// Births started per second, at most.
    pub(crate) max_births_per_sec: usize,
    /// What the profile's zygotes are made from now; idle ones of another
    /// generation are retired ([`health`]).
    pub(crate) generation: Generation,
    /// Probe period and ping timeout.
    pub(crate) health: zygote_config::PoolHealth,
    /// The NUMA node of each birth (`pool.placement` as this machine
    /// allows it).
    pub(crate) placement: super::placement::Plan,
    /// Files read ahead after births (`pool.prefetch`).
    pub(crate) prefetch: Vec<PathBuf>,
}

/// How many recent tasks' cgroup parents decide where zygotes go.
const PARENT_WINDOW: usize = 16;
const MAX_REMEMBERED_PARENTS: usize = 64;

/// How many recently used artifacts a Wasm profile's zygotes preload.
const HOT_MODULES: usize = 4;

/// A warm zygote: its control connection (send it `Request::Claim`), the
/// receiver of its events, its child's pid.
///
/// Dropping a `Warm` that was not taken with [`Warm::into_parts`] hangs up
/// on the zygote, which then kills its child, removes its pool cgroup and
/// exits: a zygote the pool lets go of (target fell, `max_age` reached,
/// drain) never lingers.
pub(crate) struct Warm {
    parts: Option<(MonitorClient, mpsc::UnboundedReceiver<Incoming>)>,
    pub(crate) pid: i32,
    pub(crate) born: Instant,
    /// A pidfd of the zygote process itself (which becomes the monitor).
    pub(crate) monitor: Option<std::os::fd::OwnedFd>,
    /// The zygote process's pid (0: unknown).
    pub(crate) zygote_pid: i32,
    /// The generation it was made with ([`Warm::made_from`]).
    pub(crate) generation: Generation,
    /// Where its child was pre-placed (its pool cgroup is under it).
    cgroup_parent: Option<PathBuf>,
    /// The NUMA node it was born on (`None`: not placed).
    pub(super) node: Option<u32>,
    /// Tells idle zygotes apart while the health probe runs unlocked.
    serial: u64,
}

impl Warm {
    /// A zygote waiting on `client` (its events on `events`).
    pub(crate) fn new(
        client: MonitorClient,
        events: mpsc::UnboundedReceiver<Incoming>,
        pid: i32,
        born: Instant,
        monitor: Option<std::os::fd::OwnedFd>,
    ) -> Warm {
        Warm {
            parts: Some((client, events)),
            pid,
            born,
            monitor,
            zygote_pid: 0,
            generation: Generation::default(),
            cgroup_parent: None,
            node: None,
            serial: 0,
        }
    }

    /// Records what the pool asked of this zygote (its generation, where
    /// its child is pre-placed).
    pub(crate) fn made_from(mut self, cfg: &ZygoteConfig) -> Warm {
        self.generation = cfg.generation;
        self.cgroup_parent = cfg.cgroup_parent.clone();
        self.node = cfg.numa.as_ref().map(|n| n.node);
        self
    }

    /// False once its process exited (its pidfd is readable: caught even
    /// while something else still holds its socket open) or its control
    /// socket closed. Checked every refill round and at claim, so a dead
    /// zygote is replaced (counted in `died`) and never handed out.
    pub(super) fn alive(&mut self) -> bool {
        if self.monitor.as_ref().is_some_and(exited) {
            return false;
        }
        match self.parts.as_mut().map(|(_, events)| events.try_recv()) {
            Some(Err(mpsc::error::TryRecvError::Empty)) => true,
            // A waiting zygote sends no events; anything else means trouble.
            _ => false,
        }
    }

    /// The connection and its events, for the task that claims the zygote.
    pub(crate) fn into_parts(mut self) -> (MonitorClient, mpsc::UnboundedReceiver<Incoming>) {
        self.parts
            .take()
            .expect("a Warm always holds its connection until taken")
    }
}

/// The process behind `pidfd` has exited (a pidfd polls readable then).
fn exited(pidfd: &std::os::fd::OwnedFd) -> bool {
    use std::os::fd::AsFd;
    let mut fds = [nix::poll::PollFd::new(pidfd.as_fd(), nix::poll::PollFlags::POLLIN)];
    matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO), Ok(n) if n > 0)
}

impl Drop for Warm {
    fn drop(&mut self) {
        if let Some((client, _)) = self.parts.take() {
            client.close();
        }
    }
}

pub(super) struct Pool {
    spec: PoolSpec,
    pub(super) idle: VecDeque<Warm>,
    spawning: usize,
    demand: Demand,
    parent: Option<PathBuf>,
    /// Cgroup parents of the profile's recent tasks (newest last).
    recent_parents: VecDeque<PathBuf>,
    /// Artifacts of the profile's most recent Wasm tasks, newest first.
    hot: VecDeque<PathBuf>,
    stats: ProfileStats,
    creation_us: VecDeque<u64>,
    pub(super) retry_at: Option<(Instant, Duration)>,
    gate: Gate,
    /// When the births of the last [`PACE`] started.
    births: VecDeque<Instant>,
    /// When the health probe pings this pool's idle zygotes next.
    next_probe: Option<Instant>,
    /// Turns the round-robin of [`super::placement::Plan::choose`].
    placement_cursor: usize,
}

impl Pool {
    fn new(spec: PoolSpec) -> Pool {
        let stats = ProfileStats {
            generation: spec.generation,
            ..Default::default()
        };
        Pool {
            spec,
            idle: VecDeque::new(),
            spawning: 0,
            demand: Demand::default(),
            parent: None,
            recent_parents: VecDeque::new(),
            hot: VecDeque::new(),
            stats,
            creation_us: VecDeque::new(),
            retry_at: None,
            gate: Gate::default(),
            births: VecDeque::new(),
            next_probe: None,
            placement_cursor: 0,
        }
    }
}

/// Every profile's pool.
pub(crate) struct PoolSet {
    pub(super) spawner: Arc<dyn Spawner>,
    dir: DaemonDir,
    stats_path: PathBuf,
    /// Pre-place zygotes in a pool cgroup (cgroup v1, where a claim can
    /// rename it).
    pre_place: bool,
    pools: Mutex<BTreeMap<String, Pool>>,
    wake: Notify,
    /// Wakes the writer of `pools.json` (claims and fallbacks change it).
    stats_wake: Notify,
    stopping: AtomicBool,
    stats_writer: Mutex<()>,
    pressure: Pressure,
    /// Births per second over all pools.
    pub(super) node_max_births: usize,
    /// The next idle zygote's [`Warm::serial`].
    serial: std::sync::atomic::AtomicU64,
    /// When each `pool.prefetch` file was last read ahead.
    pub(super) prefetcher: Arc<super::prefetch::Prefetcher>,
}

impl PoolSet {
    /// Pools for `specs`, filled by `spawner`; counters go to
    /// `<dir>/pools.json`.
    pub(crate) fn new(
        spawner: Arc<dyn Spawner>,
        dir: &DaemonDir,
        pre_place: bool,
        specs: Vec<PoolSpec>,
        pressure: Pressure,
    ) -> Arc<PoolSet> {
        let pools = specs
            .into_iter()
            .map(|spec| (spec.profile.clone(), Pool::new(spec)))
            .collect();
        Arc::new(PoolSet {
            spawner,
            dir: dir.clone(),
            stats_path: dir.pool_stats(),
            pre_place,
            pools: Mutex::new(pools),
            wake: Notify::new(),
            stats_wake: Notify::new(),
            stopping: AtomicBool::new(false),
            stats_writer: Mutex::new(()),
            pressure,
            node_max_births: NODE_MAX_BIRTHS_PER_SEC,
            serial: std::sync::atomic::AtomicU64::new(1),
            prefetcher: Arc::default(),
        })
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Pool>> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the background refill loop.
    pub(crate) fn start(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move { this.refill_loop().await });
        let this = self.clone();
        tokio::spawn(async move { this.health_loop().await });
        let this = self.clone();
        tokio::spawn(async move {
            while !this.stopping.load(Ordering::SeqCst) {
                this.stats_wake.notified().await;
                this.write_stats();
            }
        });
    }

    /// Takes a live warm zygote of `profile`, or says why not (the reason
    /// a task then takes the cold path; the caller counts it with
    /// [`PoolSet::fallback`]).
    pub(crate) fn claim(&self, profile: &str) -> Result<Warm, Fallback> {
        let mut pools = self.lock();
        let Some(pool) = pools.get_mut(profile) else {
            return Err(Fallback::PoolDisabled);
        };
        pool.demand.record(Instant::now());
        if pool.spec.bounds.max == 0 {
            return Err(Fallback::PoolDisabled);
        }
        while let Some(mut w) = pool.idle.pop_front() {
            // Between probes: dead, stale or stopped zygotes are not handed
            // out (a pidfd poll, a comparison, one /proc read).
            match health::at_claim(&mut w, pool.spec.generation) {
                None => {
                    self.stats_wake.notify_one();
                    pool.stats.claimed += 1;
                    pool.stats.idle = pool.idle.len();
                    return Ok(w);
                }
                Some(why) => self.retire(profile, pool, w, why),
            }
        }
        pool.stats.idle = 0;
        Err(Fallback::PoolEmpty)
    }

    /// A task was deleted (or its Create failed): refill now. (Not at claim
    /// time: a zygote's birth moves it into its pool cgroup, which on cgroup
    /// v1 holds the kernel's `cgroup_mutex` through an RCU grace period and
    /// would stall the claiming task's cgroup rename and removal.)
    pub(crate) fn settled(&self) {
        self.wake.notify_one();
    }

    /// Counts a task of `profile` that took the cold path.
    pub(crate) fn fallback(&self, profile: &str, reason: Fallback) {
        if let Some(pool) = self.lock().get_mut(profile) {
            *pool.stats.fallbacks.entry(reason.to_string()).or_default() += 1;
            self.stats_wake.notify_one();
        }
    }

    /// Counts a claim of `profile` whose zygote cloned the init itself.
    pub(crate) fn cloned_at_claim(&self, profile: &str, reason: &str) {
        if let Some(pool) = self.lock().get_mut(profile) {
            *pool.stats.cloned_at_claim.entry(reason.to_string()).or_default() += 1;
            self.stats_wake.notify_one();
        }
    }

    /// Where one of `profile`'s tasks got its cgroup (its parent, e.g.
    /// `/default`). New zygotes are pre-placed under the parent most of the
    /// profile's recent tasks used, so one task with an odd `cgroupsPath`
    /// does not move where the others' zygotes go.
    pub(crate) fn learn_parent(&self, profile: &str, parent: &Path) {
        if !self.pre_place {
            return;
        }
        let mut pools = self.lock();
        let Some(pool) = pools.get_mut(profile) else { return };
        pool.recent_parents.push_back(parent.to_path_buf());
        if pool.recent_parents.len() > PARENT_WINDOW {
            pool.recent_parents.pop_front();
        }
        let chosen = super::sizing::most_frequent(&pool.recent_parents, pool.parent.as_ref());
        if let Some(chosen) = chosen.filter(|c| pool.parent.as_ref() != Some(c)) {
            info!(profile, parent = %chosen.display(), "zygotes will be pre-placed under this cgroup parent");
            self.pressure.watch_cgroup(&chosen);
            pool.parent = Some(chosen.clone());
            drop(pools);
            self.remember_parent(&chosen);
        }
    }

    /// Adds `parent` to `pool-parents.json`: where a restarted daemon looks
    /// for pool cgroups its predecessor left behind.
    fn remember_parent(&self, parent: &Path) {
        let path = self.dir.pool_parents();
        let mut known: Vec<PathBuf> = zygote_contract::state::read(&path).unwrap_or_default();
        if known.iter().any(|p| p == parent) {
            return;
        }
        known.push(parent.to_path_buf());
        if known.len() > MAX_REMEMBERED_PARENTS {
            known.remove(0);
        }
        if let Err(e) = zygote_contract::state::write_atomic(&path, &known) {
            warn!(error = %e, "cannot record the pool cgroup parent");
        }
    }

    /// Removes the pool cgroups a previous daemon of this directory left
    /// (it was killed together with its zygotes): every empty
    /// `zygote@<this daemon>-*` directory under a recorded parent, in every
    /// hierarchy. A live zygote's cgroup is not empty and stays.
    pub(crate) fn sweep_stale_cgroups(&self) {
        let parents: Vec<PathBuf> = zygote_contract::state::read(&self.dir.pool_parents()).unwrap_or_default();
        if parents.is_empty() {
            return;
        }
        let Ok(layout) = zygote_runtime::cgroups::Layout::detect() else {
            return;
        };
        let stem = zygote_contract::zygote::pool_cgroup_stem(&self.dir);
        let mut removed = 0;
        for root in layout.roots() {
            for parent in &parents {
                let dir = root.join(parent.strip_prefix("/").unwrap_or(parent));
                let Ok(entries) = std::fs::read_dir(&dir) else { continue };
                for e in entries.flatten() {
                    if e.file_name().to_string_lossy().starts_with(&stem) && std::fs::remove_dir(e.path()).is_ok() {
                        removed += 1;
                    }
                }
            }
        }
        if removed > 0 {
            info!(removed, "removed pool cgroups left by a previous daemon");
        }
    }

    /// A Wasm task of `profile` used `artifact`: zygotes born from now on
    /// preload it (the profile's few most recent ones).
    pub(crate) fn learn_hot(&self, profile: &str, artifact: &Path) {
        if let Some(pool) = self.lock().get_mut(profile) {
            if pool.hot.front().map(PathBuf::as_path) == Some(artifact) {
                return;
            }
            pool.hot.retain(|p| p != artifact);
            pool.hot.push_front(artifact.to_path_buf());
            pool.hot.truncate(HOT_MODULES);
        }
    }

    /// The node's pressure, as the pools see it.
    pub(crate) fn pressure(&self) -> &Pressure {
        &self.pressure
    }

    /// A copy of the counters.
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            profiles: self.lock().iter().map(|(k, p)| (k.clone(), p.stats.clone())).collect(),
        }
    }

    /// Pids of each profile's idle zygotes' children (metrics read their
    /// memory at scrape time).
    pub(crate) fn idle_pids(&self) -> BTreeMap<String, Vec<i32>> {
        let pools = self.lock();
        pools
            .iter()
            .map(|(k, p)| (k.clone(), p.idle.iter().map(|w| w.pid).collect()))
            .collect()
    }

    /// Stops refilling and lets every idle zygote go (each kills its child
    /// and exits when its socket closes); waits up to 3 s for them.
    pub(crate) async fn drain(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        let idle: Vec<Warm> = self.lock().values_mut().flat_map(|p| p.idle.drain(..)).collect();
        let n = let_go(idle).await;
        info!(zygotes = n, "pools drained");
        self.write_stats();
    }

    /// `pools.json`, one writer at a time with the counters as they are
    /// then, so the file never goes back to an older count.
    fn write_stats(&self) {
        let _one = self.stats_writer.lock().unwrap_or_else(|e| e.into_inner());
        let stats = self.stats();
        if let Err(e) = zygote_contract::state::write_atomic(&self.stats_path, &stats) {
            debug!(error = %e, "cannot write pools.json");
        }
    }
}

/// Hangs up on `idle` zygotes (each kills its child, removes its pool
/// cgroup and exits) and waits up to 3 s for them to be gone; how many.
pub(super) async fn let_go(idle: Vec<Warm>) -> usize {
    let pids: Vec<i32> = idle.iter().map(|w| w.pid).collect();
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(3);
    while pids.iter().any(|p| zygote_contract::daemon::process_alive(*p)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pids.len()
}

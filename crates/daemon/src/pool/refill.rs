//! Births: the refill loop that keeps each profile's pool at its target.
//! Each round sweeps dead and old zygotes, asks the sizing policy for a
//! target, holds births back while a pressure gate is closed (and lets idle
//! zygotes beyond `min` go under memory pressure), paces them (per profile
//! and per node, [`super::PACE`]) and backs off after failures, picks each
//! birth's NUMA node ([`crate::pool::placement`]), and after a birth reads
//! the profile's `pool.prefetch` files ahead ([`crate::pool::prefetch`]).
//! The pools' state and locking are [`super`]'s.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, warn};
use zygote_contract::zygote::ZygoteConfig;

use super::{Pool, PoolSet, Unhealthy, Warm, MAX_PARALLEL_SPAWNS, PACE, TICK};
use crate::pool::spawner::SpawnError;
use crate::pressure::Resource;

impl PoolSet {
    pub(super) async fn refill_loop(self: Arc<Self>) {
        while !self.stopping.load(Ordering::SeqCst) {
            for cfg in self.plan_spawns() {
                let this = self.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let profile = cfg.profile.clone();
                    let r = this.spawner.spawn(&cfg).await.map(|w| w.made_from(&cfg));
                    if this.spawned(&profile, r, started) {
                        this.prefetch(&profile);
                    }
                });
            }
            self.write_stats();
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }

    fn plan_spawns(&self) -> Vec<ZygoteConfig> {
        self.plan_spawns_at(Instant::now())
    }

    /// Sweeps dead and old zygotes, then decides what to spawn, as of `now`.
    pub(in crate::pool) fn plan_spawns_at(&self, now: Instant) -> Vec<ZygoteConfig> {
        let mut pools = self.lock();
        let mut budget = MAX_PARALLEL_SPAWNS.saturating_sub(pools.values().map(|p| p.spawning).sum());
        for pool in pools.values_mut() {
            while pool
                .births
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= PACE)
            {
                pool.births.pop_front();
            }
        }
        let mut node_births = self
            .node_max_births
            .saturating_sub(pools.values().map(|p| p.births.len()).sum());
        let pressure = self.pressure.now();
        let mut out = Vec::new();
        for (name, pool) in pools.iter_mut() {
            self.sweep(name, pool, |w| (!w.alive()).then_some(Unhealthy::Dead));
            let max_age = pool.spec.max_age;
            let before = pool.idle.len();
            pool.idle.retain(|w| now.saturating_duration_since(w.born) < max_age);
            pool.stats.recycled += (before - pool.idle.len()) as u64;
            // The forecast policy does not grow under CPU pressure (the
            // pool's parent cgroup counts where it has pressure files).
            let cpu = pressure
                .available
                .then(|| pressure.for_parent(pool.parent.as_deref()).cpu.some_avg10);
            let target = pool.demand.target_with_pressure(pool.spec.bounds, now, cpu);
            if target != pool.stats.target {
                crate::metrics::pool_scaled(name, pool.stats.target, target);
            }
            pool.idle.truncate(target);
            // A disabled pool has nothing to gate (and logs nothing).
            let over = if pool.spec.bounds.max == 0 {
                Vec::new()
            } else {
                pool.gate
                    .update(name, &pressure.for_parent(pool.parent.as_deref()), &pool.spec.pressure)
                    .to_vec()
            };
            if over.contains(&Resource::Memory) {
                release_oldest(pool);
            }
            pool.stats.pressure_gate = over.iter().map(|r| r.name().to_string()).collect();
            pool.stats.target = target;
            pool.stats.idle = pool.idle.len();
            if pool.retry_at.is_some_and(|(t, _)| now < t) {
                continue;
            }
            let want = target.saturating_sub(pool.idle.len() + pool.spawning).min(budget);
            if want > 0 && pool.gate.closed() {
                for r in &over {
                    *pool
                        .stats
                        .births_deferred_by_pressure
                        .entry(r.name().into())
                        .or_default() += 1;
                }
                continue;
            }
            let pace = pool
                .spec
                .max_births_per_sec
                .saturating_sub(pool.births.len())
                .min(node_births);
            let need = want.min(pace);
            if need < want {
                pool.stats.births_deferred_by_pacing += 1;
            }
            budget -= need;
            node_births -= need;
            pool.births.extend(std::iter::repeat_n(now, need));
            pool.spawning += need;
            pool.stats.spawning = pool.spawning;
            let mut on_node = std::collections::BTreeMap::new();
            for node in pool.idle.iter().filter_map(|w| w.node) {
                *on_node.entry(node).or_default() += 1;
            }
            for _ in 0..need {
                let numa = pool.spec.placement.choose(&on_node, &mut pool.placement_cursor);
                if let Some(n) = &numa {
                    *on_node.entry(n.node).or_default() += 1;
                }
                out.push(ZygoteConfig {
                    numa,
                    generation: pool.spec.generation,
                    profile: name.clone(),
                    clone_flags: pool.spec.clone_flags,
                    cgroup_parent: pool.parent.clone(),
                    daemon_dir: self.dir.clone(),
                    wasm: pool.spec.wasm,
                    hot: if pool.spec.wasm {
                        pool.hot.iter().cloned().collect()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
        out
    }

    /// A birth of `profile` ended with `r`; true when a zygote joined the pool.
    pub(in crate::pool) fn spawned(&self, profile: &str, r: Result<Warm, SpawnError>, started: Instant) -> bool {
        let mut pools = self.lock();
        let Some(pool) = pools.get_mut(profile) else {
            return false;
        };
        pool.spawning = pool.spawning.saturating_sub(1);
        pool.stats.spawning = pool.spawning;
        match r {
            // Born for a definition replaced while it was starting.
            Ok(w) if w.generation != pool.spec.generation => self.retire(profile, pool, w, Unhealthy::StaleGeneration),
            Ok(mut w) if !self.stopping.load(Ordering::SeqCst) => {
                w.serial = self.serial.fetch_add(1, Ordering::Relaxed);
                let us = started.elapsed().as_micros() as u64;
                crate::metrics::zygote_created(profile, pool.spec.wasm, us as f64 / 1e6);
                debug!(profile, pid = w.pid, us, "zygote ready");
                pool.creation_us.push_back(us);
                if pool.creation_us.len() > 64 {
                    pool.creation_us.pop_front();
                }
                let mut sorted: Vec<u64> = pool.creation_us.iter().copied().collect();
                sorted.sort_unstable();
                pool.stats.creation_us_p50 = sorted[sorted.len() / 2];
                pool.stats.created += 1;
                if let Some(node) = w.node {
                    *pool.stats.placed.entry(node).or_default() += 1;
                    crate::metrics::zygote_placed(profile, node);
                }
                pool.retry_at = None;
                pool.idle.push_back(w);
                pool.stats.idle = pool.idle.len();
                return true;
            }
            Ok(_) => {}
            Err(e) => {
                pool.stats.spawn_failures += 1;
                let backoff = pool.retry_at.map_or(Duration::from_millis(500), |(_, b)| {
                    (b * 2).min(Duration::from_secs(30))
                });
                warn!(profile, error = %crate::error::chain(&e), retry_in_ms = backoff.as_millis() as u64, "cannot create a zygote");
                pool.retry_at = Some((Instant::now() + backoff, backoff));
            }
        }
        false
    }

    /// After a birth of `profile`: reads its `pool.prefetch` files ahead on
    /// a blocking thread ([`super::prefetch`]), unless its memory pressure
    /// gate is closed (the cache would only be evicted again).
    fn prefetch(self: &Arc<Self>, profile: &str) {
        let paths = {
            let pools = self.lock();
            let Some(pool) = pools.get(profile) else { return };
            let memory = Resource::Memory.name();
            if pool.spec.prefetch.is_empty() || pool.stats.pressure_gate.iter().any(|r| r == memory) {
                return;
            }
            pool.spec.prefetch.clone()
        };
        let this = self.clone();
        let profile = profile.to_string();
        tokio::task::spawn_blocking(move || {
            let done = this.prefetcher.run(&profile, &paths, Instant::now());
            if let Some(pool) = this.lock().get_mut(&profile) {
                pool.stats.prefetched += done.files;
                pool.stats.prefetch_failures += done.failed;
            }
        });
    }
}

/// Under memory pressure: lets the pool's idle zygotes beyond `min` go,
/// oldest first (each hangs up, kills its child and exits).
fn release_oldest(pool: &mut Pool) {
    while pool.idle.len() > pool.spec.bounds.min {
        pool.idle.pop_front();
        pool.stats.released_for_memory_pressure += 1;
    }
}

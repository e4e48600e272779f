//! A reloaded configuration's pools ([`PoolSet::reconfigure`]): removed
//! profiles' pools drain, new ones are added (the refill loop fills them),
//! changed bounds apply at the loop's next round. Zygotes already claimed
//! are tasks' monitors and are not the pool's any more: nothing here
//! touches them.

use std::collections::BTreeMap;

use tracing::info;

use super::{let_go, Pool, PoolSet, PoolSpec, Unhealthy, Warm};

impl PoolSet {
    /// Makes the pools those of `specs`; returns how many idle zygotes
    /// were let go (and are gone, or given 3 s to go). A profile whose
    /// generation changed (pre-created namespaces, mode, security settings)
    /// loses its idle zygotes too, counted `stale_generation`: they were
    /// made for the old definition. Its counters stay.
    pub(crate) async fn reconfigure(&self, specs: Vec<PoolSpec>) -> usize {
        let mut wanted: BTreeMap<String, PoolSpec> = specs.into_iter().map(|s| (s.profile.clone(), s)).collect();
        let mut going: Vec<Warm> = Vec::new();
        {
            let mut pools = self.lock();
            pools.retain(|name, pool| {
                if wanted.contains_key(name) {
                    return true;
                }
                info!(profile = %name, idle = pool.idle.len(), "profile removed: draining its pool");
                going.extend(pool.idle.drain(..));
                false
            });
            for (name, pool) in pools.iter_mut() {
                let spec = wanted.remove(name).expect("kept pools are wanted");
                if spec.generation != pool.spec.generation {
                    info!(profile = %name, idle = pool.idle.len(), old = ?pool.spec.generation, new = ?spec.generation, "profile's zygote or security settings changed: replacing its zygotes");
                    let stale = pool.idle.len() as u64;
                    *pool
                        .stats
                        .unhealthy
                        .entry(Unhealthy::StaleGeneration.as_str().to_string())
                        .or_default() += stale;
                    going.extend(pool.idle.drain(..));
                    pool.stats.idle = 0;
                    pool.stats.generation = spec.generation;
                }
                if spec.placement != pool.spec.placement {
                    info!(profile = %name, "pool placement changed: zygotes born from now on follow it");
                }
                if spec.bounds != pool.spec.bounds || spec.max_age != pool.spec.max_age {
                    info!(profile = %name, min = spec.bounds.min, initial = spec.bounds.initial, max = spec.bounds.max, "pool bounds changed");
                }
                pool.retry_at = None;
                pool.next_probe = None;
                pool.spec = spec;
            }
            for (name, spec) in wanted {
                info!(profile = %name, initial = spec.bounds.initial, "profile added: filling its pool");
                pools.insert(name, Pool::new(spec));
            }
        }
        self.wake.notify_one();
        self.stats_wake.notify_one();
        let_go(going).await
    }
}

//! Pool counters, written by the daemon to `<daemon dir>/pools.json` and
//! read by tests, `hack/bench` and (later) the metrics exporter.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counters of one profile's pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProfileStats {
    /// Warm zygotes waiting now.
    pub(crate) idle: usize,
    /// Zygotes being created now.
    pub(crate) spawning: usize,
    /// Current target size.
    pub(crate) target: usize,
    /// Zygotes that reached the pool.
    pub(crate) created: u64,
    /// Zygotes that could not be created.
    pub(crate) spawn_failures: u64,
    /// Zygotes handed to a task.
    pub(crate) claimed: u64,
    /// Zygotes found dead or damaged (never handed out) and replaced.
    pub(crate) died: u64,
    /// Zygotes retired for being older than `max_age`.
    pub(crate) recycled: u64,
    /// Tasks that took the cold path, by reason.
    pub(crate) fallbacks: BTreeMap<String, u64>,
    /// Claims whose zygote child could not serve the spec, by reason (from
    /// `zygote_runtime::init::build::zygote_misfit`): the zygote's process
    /// cloned the init itself (warm, without the pre-made namespaces).
    pub(crate) cloned_at_claim: BTreeMap<String, u64>,
    /// Median zygote creation time (spawn to waiting), microseconds, over
    /// the last 64 zygotes.
    pub(crate) creation_us_p50: u64,
    /// Resources now above the profile's pressure thresholds (empty: births
    /// allowed).
    #[serde(default)]
    pub(crate) pressure_gate: Vec<String>,
    /// Refill rounds (every 250 ms or sooner) that held births back because
    /// a resource was above its threshold, by resource (cpu, memory, io).
    #[serde(default)]
    pub(crate) births_deferred_by_pressure: BTreeMap<String, u64>,
    /// Refill rounds that held births back to keep to `max_births_per_sec`
    /// (the profile's or the node's).
    #[serde(default)]
    pub(crate) births_deferred_by_pacing: u64,
    /// Idle zygotes beyond `min` released under memory pressure.
    #[serde(default)]
    pub(crate) released_for_memory_pressure: u64,
    /// Idle zygotes found unhealthy (by the health probe, a claim, a
    /// refill round or a reload) and replaced, by reason (`dead`,
    /// `unresponsive`, `stale_generation`; `dead` is also `died`).
    #[serde(default)]
    pub(crate) unhealthy: BTreeMap<String, u64>,
    /// Pings sent to idle zygotes by the health probe.
    #[serde(default)]
    pub(crate) probes: u64,
    /// Zygotes that reached the pool placed on a NUMA node, by node id
    /// (`pool.placement`; empty when it places nothing).
    #[serde(default)]
    pub(crate) placed: BTreeMap<u32, u64>,
    /// Prefetch runs after births (`pool.prefetch`): files read ahead, and
    /// paths that failed (each failing path is logged once).
    #[serde(default)]
    pub(crate) prefetched: u64,
    #[serde(default)]
    pub(crate) prefetch_failures: u64,
    /// The generation the pool's zygotes are made with now.
    #[serde(default)]
    pub(crate) generation: zygote_contract::zygote::Generation,
}

/// Every profile's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stats {
    pub(crate) profiles: BTreeMap<String, ProfileStats>,
}

/// Why a task took the cold path; its text is the key of
/// [`ProfileStats::fallbacks`] (and what tests and docs look for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fallback {
    /// The profile's pool has `max = 0` (or no pool of that name).
    PoolDisabled,
    /// No live zygote was waiting.
    PoolEmpty,
    /// The claimed zygote died before it answered.
    ZygoteLost,
}

impl Fallback {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Fallback::PoolDisabled => "pool_disabled",
            Fallback::PoolEmpty => "pool_empty",
            Fallback::ZygoteLost => "zygote_lost",
        }
    }
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Fallback;

    #[test]
    fn fallback_reasons_print_as_before() {
        assert_eq!(Fallback::PoolDisabled.to_string(), "pool_disabled");
        assert_eq!(Fallback::PoolEmpty.to_string(), "pool_empty");
        assert_eq!(Fallback::ZygoteLost.to_string(), "zygote_lost");
    }
}

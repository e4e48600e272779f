//! Pool counters, written by the daemon to `<daemon dir>/pools.json` and
//! read by tests, `hack/bench` and (later) the metrics exporter.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counters of one profile's pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileStats {
    /// Warm zygotes waiting now.
    pub idle: usize,
    /// Zygotes being created now.
    pub spawning: usize,
    /// Current target size.
    pub target: usize,
    /// Zygotes that reached the pool.
    pub created: u64,
    /// Zygotes that could not be created.
    pub spawn_failures: u64,
    /// Zygotes handed to a task.
    pub claimed: u64,
    /// Zygotes found dead or damaged (never handed out) and replaced.
    pub died: u64,
    /// Zygotes retired for being older than `max_age`.
    pub recycled: u64,
    /// Tasks that took the cold path, by reason.
    pub fallbacks: BTreeMap<String, u64>,
    /// Median zygote creation time (spawn to waiting), microseconds, over
    /// the last 64 zygotes.
    pub creation_us_p50: u64,
}

/// Every profile's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub profiles: BTreeMap<String, ProfileStats>,
}

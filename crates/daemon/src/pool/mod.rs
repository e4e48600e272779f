//! The daemon's per-profile pools of warm zygotes.
//!
//! A warm zygote is a `__zygote` process (see the `zygote-monitor` crate)
//! whose child already lives in the profile's namespaces and, on cgroup v1,
//! in a pool cgroup next to where the profile's tasks' cgroups go. The pool
//! keeps each profile at its target size in the background ([`PoolSet`]'s
//! refill loop, never on a task's critical path), hands zygotes out
//! ([`PoolSet::claim`]), replaces those that die (their control socket
//! closes), stop answering its pings, were made for a definition of their
//! profile no longer loaded, or grow older than the profile's `max_age`, counts every claim
//! and every fallback to the cold path by reason ([`Stats`]), and drains on
//! stop: dropping a zygote's socket makes it kill its child and exit.
//!
//! Modules: [`sizing`] decides the target size, [`placement`] the NUMA
//! node of each birth, [`prefetch`] the files read ahead after births,
//! [`stats`] the counters,
//! [`set`] the pools themselves (with `health.rs`: the probe of idle
//! zygotes, the checks at claim, retiring unhealthy ones), [`spawner`] how
//! a zygote is made (a seam for unit tests).

pub(crate) mod placement;
pub(crate) mod prefetch;
pub(crate) mod set;
pub(crate) mod sizing;
mod spawner;
pub(crate) mod stats;

pub(crate) use set::{PoolSet, PoolSpec, Warm};
#[cfg(test)]
pub(crate) use spawner::SpawnError;
pub(crate) use spawner::{ProcessSpawner, Spawner};
pub(crate) use stats::Fallback;

#[cfg(test)]
mod gate_tests;
#[cfg(test)]
mod health_tests;
#[cfg(test)]
mod tests;

//! The daemon's per-profile pools of warm zygotes.
//!
//! A warm zygote is a `__zygote` process (see the `zygote-monitor` crate)
//! whose child already lives in the profile's namespaces and, on cgroup v1,
//! in a pool cgroup next to where the profile's tasks' cgroups go. The pool
//! keeps each profile at its target size in the background ([`PoolSet`]'s
//! refill loop, never on a task's critical path), hands zygotes out
//! ([`PoolSet::claim`]), replaces those that die (their control socket
//! closes) or grow older than the profile's `max_age`, counts every claim
//! and every fallback to the cold path by reason ([`Stats`]), and drains on
//! stop: dropping a zygote's socket makes it kill its child and exit.
//!
//! Modules: [`sizing`] decides the target size, [`stats`] the counters,
//! [`set`] the pools themselves.

pub mod set;
pub mod sizing;
pub mod stats;

pub use set::{PoolSet, PoolSpec, Warm};

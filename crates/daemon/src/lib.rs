//! zygote-daemon: the one long-lived process per node that containerd talks
//! to for every zygote task.
//!
//! It serves containerd's task API (v2) over ttrpc ([`service`]), keeps the
//! task table ([`daemon`], [`task`]), publishes events ([`events`]), keeps
//! the warm pools ([`pool`]), and delegates everything that forks to the
//! per-task monitors, through [`monitor_client`]: it is multi-threaded
//! (tokio), so it must never fork without exec. Killing it loses nothing:
//! monitors keep the containers, their exit statuses and containerd's
//! connections, restart it, and it re-adopts them ([`adopt`], [`waits`]).
//! `zygotectl` talks to it over its control socket ([`ctl`]); SIGHUP or
//! `zygotectl reload` re-read the config ([`reload`]).
//! It serves Prometheus metrics on the config's `[metrics] listen` ([`metrics`]).
//!
//! The path of a Create through these modules is in `docs/architecture.md`.

mod adopt;
mod cleanup;
mod control;
mod create;
mod ctl;
mod daemon;
mod error;
mod events;
mod lifecycle;
mod metrics;
mod monitor_client;
mod pool;
mod pressure;
mod profiles;
mod reload;
mod server;
mod service;
mod stats;
mod task;
mod waits;
mod wasm;

pub use cleanup::{delete_task, Deleted};
pub use daemon::timestamp;
pub use error::{chain, DaemonError};
pub use server::{run, Outcome};

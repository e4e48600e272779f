//! zygote-daemon: the one long-lived process per node that containerd talks
//! to for every zygote task.
//!
//! It serves containerd's task API (v2) over ttrpc, keeps the task table,
//! publishes events, and delegates everything that forks to the per-task
//! monitors (`zygote-monitor`), because it is multi-threaded (tokio) and so
//! must never fork without exec. Killing it loses nothing: monitors keep the
//! containers, their exit statuses and containerd's connections, restart it,
//! and it re-adopts them ([`adopt`]).

pub mod adopt;
pub mod cleanup;
pub mod control;
pub mod daemon;
pub mod error;
pub mod events;
pub mod lifecycle;
pub mod paths;
pub mod profiles;
pub mod server;
pub mod service;
pub mod stats;
pub mod task;
pub mod waits;
pub mod wasm;

pub use error::DaemonError;
pub use server::{run, DaemonConfig, Outcome};

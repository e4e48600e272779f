//! zygote-contract: what crosses zygote's process boundaries.
//!
//! The daemon (containerd's side), the per-task monitors and the warm
//! zygotes are separate processes that must agree on a few things, and
//! this crate is where they are written down, once:
//!
//! * [`proto`]: the messages on a monitor's control socket (daemon ↔
//!   monitor or zygote);
//! * [`state`]: a task's files (`task.json`, `state.json`), written so a
//!   restarted daemon can take over;
//! * [`layout`]: where every file of the state dir lives ([`DaemonDir`],
//!   [`TaskDir`]);
//! * [`sockaddr`]: socket addresses that fit whatever the length of the
//!   id and the depth of the state dir;
//! * [`zygote`]: what the pool asks of a zygote, and the names of pool
//!   cgroups;
//! * [`ctl`]: the daemon's control socket (`zygotectl`'s requests and
//!   replies);
//! * [`daemon`]: how a daemon is started (by `shim start`, or by a monitor
//!   that lost it) and what it reads at start.

pub mod ctl;
pub mod daemon;
pub mod layout;
pub mod proto;
pub mod sockaddr;
pub mod state;
pub mod zygote;

pub use layout::{DaemonDir, TaskDir};

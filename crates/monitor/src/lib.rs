//! zygote-monitor: the tiny per-task process that outlives the daemon.
//!
//! Each task gets one monitor (in the spirit of CRI-O's conmon). It is
//! single-threaded, so it may clone the container; it is a subreaper, so
//! it reaps the container and every process exec'd into it; it writes
//! every exit status to disk before telling anyone; and it keeps a
//! duplicate of each containerd connection that carried a request for its
//! task, so killing or upgrading the daemon never closes containerd's
//! connection (which containerd 1.6/1.7 would take as "the shim died").
//!
//! Modules: [`proto`] is the daemon↔monitor wire protocol, [`client`] the
//! daemon's end of it, [`state`] the
//! files on disk, [`stdio`] containerd's stdio URIs, [`shim_log`] containerd's per-task log, [`pump`] the copy loops,
//! [`monitor`] the event loop itself, [`zygote`] a warm zygote waiting to
//! become a task's monitor, [`sys`] its raw syscalls.

pub mod client;
pub mod monitor;
pub mod proto;
pub mod pump;
pub mod shim_log;
pub mod state;
pub mod stdio;
pub mod sys;
pub mod zygote;

pub use monitor::run;

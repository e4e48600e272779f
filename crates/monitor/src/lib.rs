//! zygote-monitor: the tiny per-task monitor process, and the warm zygote
//! that becomes one.
//!
//! Each task gets one monitor (in the spirit of CRI-O's conmon). It is
//! single-threaded, so it may clone the container; it is a subreaper, so
//! it reaps the container and every process exec'd into it; it writes
//! every exit status to disk before telling anyone; and it keeps a
//! duplicate of each containerd connection that carried a request for its
//! task, so killing or upgrading the daemon never closes containerd's
//! connection (which containerd 1.6/1.7 would take as "the shim died").
//!
//! Modules: [`monitor`] the event loop itself, [`zygote`] a warm zygote
//! waiting to become a task's monitor, [`stdio`] containerd's stdio URIs,
//! [`pump`] the copy loops, [`shim_log`] containerd's per-task log, [`sys`]
//! raw syscalls, [`numa`] a zygote's NUMA placement. What it says to the daemon and keeps on disk is in
//! `zygote-contract`.

mod monitor;
mod numa;
mod pump;
mod shim_log;
mod stdio;
mod sys;
mod zygote;

pub use monitor::run;
pub use zygote::run as run_zygote;

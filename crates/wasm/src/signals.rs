//! Ending a running module on a signal.
//!
//! A Wasm task is pid 1 of its pid namespace, where signals without a
//! handler are dropped, and a module cannot install handlers. So the task
//! process handles the terminating signals itself: SIGKILL needs nothing
//! (the kernel ends the process: status 137, as with runc); SIGTERM,
//! SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGALRM end the module
//! with status 128 + signal, as a program killed by them would report.
//!
//! How: the handler records the signal and bumps the engine's epoch; the
//! store's deadline is one epoch, so compiled code traps at its next
//! function entry or loop back-edge (an infinite loop included). A module
//! blocked in a host call (reading stdin, sleeping) cannot check epochs, so
//! the store's call hook keeps an "in host" flag and the handler `_exit`s
//! at once when it is set; the hook also refuses to enter the host once a
//! signal is pending. Both sides set their flag before reading the
//! other's (sequentially consistent), so one of them always sees the
//! signal.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::SeqCst};
use std::sync::OnceLock;

use nix::sys::signal::Signal;
use wasmtime::{CallHook, Engine};

use crate::sys;

static ENGINE: OnceLock<Engine> = OnceLock::new();
static PENDING: AtomicI32 = AtomicI32::new(0);
static IN_HOST: AtomicBool = AtomicBool::new(false);

/// Signals that end a module.
pub const ENDING: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
];

extern "C" fn on_signal(signal: libc::c_int) {
    let _ = PENDING.compare_exchange(0, signal, SeqCst, SeqCst);
    if IN_HOST.load(SeqCst) {
        // Blocked (or about to block) in a host call: no epoch check will
        // come. Nothing is left to clean up in a task process.
        // SAFETY: _exit is async-signal-safe and has no preconditions.
        unsafe { libc::_exit(128 + signal) }
    }
    if let Some(engine) = ENGINE.get() {
        engine.increment_epoch();
    }
}

/// Install the handlers for `engine`'s stores. Call once, in the task
/// process, before entering the module.
pub fn arm(engine: &Engine) -> nix::Result<()> {
    let _ = ENGINE.set(engine.clone());
    for signal in ENDING {
        sys::on_signal(signal, on_signal)?;
    }
    Ok(())
}

/// The signal that ended the module, if one did.
pub fn pending() -> Option<i32> {
    match PENDING.load(SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The store's call hook.
pub fn hook(transition: CallHook) -> wasmtime::Result<()> {
    match transition {
        CallHook::CallingHost => IN_HOST.store(true, SeqCst),
        CallHook::ReturningFromHost => IN_HOST.store(false, SeqCst),
        _ => {}
    }
    match pending() {
        Some(s) => Err(wasmtime::format_err!("interrupted by signal {s}")),
        None => Ok(()),
    }
}

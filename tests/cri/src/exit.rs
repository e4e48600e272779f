//! Work run when the test binary exits ([`at_exit`]): libtest has no hook
//! after the last test, and statics are never dropped, so the node's
//! containerd is stopped from a libc `atexit` handler (which runs when
//! libtest's `main` returns or calls `process::exit`).

use std::sync::Mutex;

static HOOKS: Mutex<Vec<fn()>> = Mutex::new(Vec::new());

extern "C" fn run_hooks() {
    let hooks = std::mem::take(&mut *HOOKS.lock().unwrap_or_else(|e| e.into_inner()));
    for h in hooks.into_iter().rev() {
        let _ = std::panic::catch_unwind(h);
    }
}

/// Runs `f` when the process exits normally (last registered, first run).
pub(crate) fn at_exit(f: fn()) {
    let mut hooks = HOOKS.lock().unwrap_or_else(|e| e.into_inner());
    if hooks.is_empty() {
        // SAFETY: `run_hooks` is an `extern "C" fn()` with static lifetime
        // that does not unwind (each hook runs under `catch_unwind`), as
        // atexit requires; it takes no arguments and touches only HOOKS.
        let rc = unsafe { libc::atexit(run_hooks) };
        assert_eq!(rc, 0, "atexit failed");
    }
    hooks.push(f);
}

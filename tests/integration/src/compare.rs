//! Side-by-side comparison: run a scenario under every selected runtime
//! ([`run_each`]), then require equal observations ([`both`]) or equal and
//! expected ones ([`both_expect`]); plus the binary-wide [`exclusive`] lock
//! for tests that must not overlap.

use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};

use crate::runtime::{selected_runtimes, Runtime};

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = e.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic>".to_string()
    }
}

/// Run `f` under each selected runtime (runc first), catching failures so the
/// report shows every runtime's outcome.
pub fn run_each<T, F>(scenario: &str, f: F) -> Vec<(Runtime, Result<T, String>)>
where
    T: Debug,
    F: Fn(Runtime) -> T,
{
    let mut results = Vec::new();
    for rt in selected_runtimes() {
        eprintln!("--- {scenario}: running under {} ({})", rt.short(), rt.name());
        let r = catch_unwind(AssertUnwindSafe(|| f(rt))).map_err(|e| panic_message(e.as_ref()));
        match &r {
            Ok(v) => eprintln!("--- {scenario}: {} observed {v:?}", rt.short()),
            Err(m) => eprintln!("--- {scenario}: {} FAILED: {m}", rt.short()),
        }
        results.push((rt, r));
    }
    results
}

fn report<T: Debug>(results: &[(Runtime, Result<T, String>)]) -> String {
    results
        .iter()
        .map(|(rt, r)| match r {
            Ok(v) => format!("  {:>6}: {v:?}", rt.short()),
            Err(m) => format!("  {:>6}: FAILED: {m}", rt.short()),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn check_results<T: PartialEq + Debug + Clone>(
    scenario: &str,
    expected: Option<&T>,
    results: Vec<(Runtime, Result<T, String>)>,
) -> T {
    let summary = report(&results);
    if results.iter().any(|(_, r)| r.is_err()) {
        panic!("{scenario}: a runtime failed:\n{summary}");
    }
    let values: Vec<T> = results.into_iter().map(|(_, r)| r.unwrap()).collect();
    if let Some(e) = expected {
        if values.iter().any(|v| v != e) {
            panic!("{scenario}: result differs from expected {e:?}:\n{summary}");
        }
    }
    if values.windows(2).any(|w| w[0] != w[1]) {
        panic!("{scenario}: runtimes disagree:\n{summary}");
    }
    values.into_iter().next().expect("no runtime selected")
}

/// Run the scenario under each runtime and assert all observed results are equal.
pub fn both<T, F>(scenario: &str, f: F) -> T
where
    T: PartialEq + Debug + Clone,
    F: Fn(Runtime) -> T,
{
    check_results(scenario, None, run_each(scenario, f))
}

/// Like [`both`], and the (common) result must also equal `expected`.
///
/// The reference (runc-v2) gets two more tries when it observes something
/// else: under ctr 1.6 on a loaded node it loses a task's output now and
/// then (ctr cancels an output FIFO open it has not yet taken note of; fixed
/// in containerd 1.7), which says nothing about zygote. zygote gets one try,
/// and every retry of the reference is printed.
pub fn both_expect<T, F>(scenario: &str, expected: T, f: F) -> T
where
    T: PartialEq + Debug + Clone,
    F: Fn(Runtime) -> T,
{
    let mut results = run_each(scenario, &f);
    for (rt, r) in results.iter_mut() {
        let mut tries = 1;
        while *rt == Runtime::Runc && tries < 3 && r.as_ref().is_ok_and(|v| *v != expected) {
            eprintln!(
                "--- {scenario}: NOTE: runc-v2 (the reference) observed {r:?}, expected {expected:?}; trying it again"
            );
            tries += 1;
            *r = catch_unwind(AssertUnwindSafe(|| f(*rt))).map_err(|e| panic_message(e.as_ref()));
        }
    }
    check_results(scenario, Some(&expected), results)
}

/// Serialises tests of one test binary that must not overlap (containerd
/// restarts, global measurements).  Poison-tolerant.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

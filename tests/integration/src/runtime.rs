//! The two runtimes under test ([`Runtime`]), which of them
//! `ZYGOTE_TEST_RUNTIMES` selects, and container ids unique per runtime and
//! test run ([`unique_id`]).

use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Runtime {
    Runc,
    Zygote,
}

impl Runtime {
    pub const ALL: [Runtime; 2] = [Runtime::Runc, Runtime::Zygote];

    /// containerd runtime type, as given to `ctr run --runtime`.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Runc => "io.containerd.runc.v2",
            Runtime::Zygote => "io.containerd.zygote.v1",
        }
    }

    /// Short name used in ids and `ZYGOTE_TEST_RUNTIMES`.
    pub fn short(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Zygote => "zygote",
        }
    }
}

/// Runtimes selected by `ZYGOTE_TEST_RUNTIMES` (comma separated, default both).
pub fn selected_runtimes() -> Vec<Runtime> {
    let raw = std::env::var("ZYGOTE_TEST_RUNTIMES").unwrap_or_default();
    if raw.trim().is_empty() {
        return Runtime::ALL.to_vec();
    }
    let mut out = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let rt = match part {
            "runc" | "io.containerd.runc.v2" => Runtime::Runc,
            "zygote" | "io.containerd.zygote.v1" => Runtime::Zygote,
            other => panic!("ZYGOTE_TEST_RUNTIMES: unknown runtime {other:?} (use runc, zygote)"),
        };
        if !out.contains(&rt) {
            out.push(rt);
        }
    }
    out.sort();
    out
}

pub fn runtime_selected(rt: Runtime) -> bool {
    selected_runtimes().contains(&rt)
}

/// For tests that only make sense for one runtime: returns false (and says so
/// loudly) when `ZYGOTE_TEST_RUNTIMES` explicitly excludes it. Under CI it
/// panics instead: CI runs every test on every runtime.
pub fn require_runtime(rt: Runtime, test: &str) -> bool {
    if runtime_selected(rt) {
        true
    } else if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
        panic!(
            "{test}: needs runtime {} but ZYGOTE_TEST_RUNTIMES={:?} excludes it; CI runs every test on every runtime",
            rt.short(),
            std::env::var("ZYGOTE_TEST_RUNTIMES").unwrap_or_default()
        );
    } else {
        eprintln!(
            "NOTICE: {test}: not run: it needs runtime {} which ZYGOTE_TEST_RUNTIMES={:?} excludes",
            rt.short(),
            std::env::var("ZYGOTE_TEST_RUNTIMES").unwrap_or_default()
        );
        false
    }
}

/// The length of every id the suite makes: a CRI id's (64 hex digits), so
/// any path built from an id is as long in the tests as on a node.
pub const ID_LEN: usize = 64;

/// A container id unique in this test run, [`ID_LEN`] characters long:
/// `zt-<test>-<runtime>-<pid>-<n>-` filled up with hex digits. All ids
/// have the same length, so none is a substring of another.
pub fn unique_id(test: &str, rt: Runtime) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let mut t: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while t.contains("--") {
        t = t.replace("--", "-");
    }
    let t = t.trim_matches('-');
    let t = if t.len() > 24 { &t[..24] } else { t };
    let t = t.trim_end_matches('-');
    let base = format!("zt-{t}-{}-{:x}-{n:05}-", rt.short(), std::process::id());
    let fill: String = "0123456789abcdef"
        .chars()
        .cycle()
        .take(ID_LEN.saturating_sub(base.len()))
        .collect();
    format!("{base}{fill}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_valid() {
        let a = unique_id("Some_test name!!", Runtime::Runc);
        let b = unique_id("Some_test name!!", Runtime::Runc);
        assert_ne!(a, b);
        assert!(!a.contains(&b) && !b.contains(&a));
        assert!(a.starts_with("zt-some-test-name-runc-"), "{a}");
        assert_eq!(a.len(), ID_LEN, "{a}");
        assert_eq!(unique_id(&"x".repeat(200), Runtime::Zygote).len(), ID_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }
}

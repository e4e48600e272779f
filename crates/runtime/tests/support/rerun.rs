//! The one "re-run this test binary in a child" harness of zygote-runtime's
//! tests, shared by the unit tests in `src/` (included with `#[path]`) and
//! the integration tests in `tests/`.
//!
//! Some scenarios change the calling process for good (a seccomp filter, a
//! Landlock domain) or must run in a single-threaded process (forking the
//! container init), neither of which fits the shared multi-threaded
//! `cargo test` process. Such a test calls [`rerun`]: the test binary is
//! executed again with only that test selected (`--exact <filter>
//! --test-threads=1`) and [`CHILD_ENV`] naming the scenario; in that fresh
//! process the same test function sees [`is_child`] and runs the scenario,
//! reading its scratch directory from [`child_tmp`]. The outer test then
//! asserts on the child's exit status and output.
//!
//! [`require_root`] is how a test that needs root says so: it panics with
//! "needs root: <why>" instead of failing somewhere later with `EPERM`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Names the scenario the re-executed child is to run.
pub const CHILD_ENV: &str = "ZYGOTE_TEST_CHILD";
/// The scratch directory the outer test made for the child.
pub const TMP_ENV: &str = "ZYGOTE_TEST_TMP";

/// Whether this process is the re-executed child for scenario `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).as_deref() == Ok(name)
}

/// The scratch directory given to this child by [`rerun`].
pub fn child_tmp() -> PathBuf {
    PathBuf::from(std::env::var_os(TMP_ENV).expect("ZYGOTE_TEST_TMP is set by rerun"))
}

/// Run the test `filter` (its full libtest name: `module::test` for a unit
/// test, `test` for an integration test) alone in a fresh process of this
/// test binary, as scenario `name`, with `tmp` as its scratch directory and
/// `env` added. Returns the child's status and captured output. Panics if
/// the filter selected no test (a child that ran nothing must not pass).
pub fn rerun(filter: &str, name: &str, tmp: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args([filter, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .env(TMP_ENV, tmp);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("re-exec the test binary");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("running 1 test"),
        "the child selected no test with filter {filter:?}: {}",
        describe(&out)
    );
    out
}

/// The child's output as text, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Panic with "needs root: `why`" unless running as root.
#[track_caller]
pub fn require_root(why: &str) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "needs root: {why} (run the tests as root, e.g. `sudo -E cargo test`)"
    );
}

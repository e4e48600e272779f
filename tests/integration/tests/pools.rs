//! Profiles and warm pools through ctr: profile choice (annotation, runtime
//! options, default), rejection of unknown or malformed profiles, Landlock /
//! seccomp / TCP enforcement seen from inside, and (on the warm pass) pool
//! drain and refill, replacement of killed zygotes, and a clean stop.
//!
//! hack/test.sh runs this file twice: `ZYGOTE_TEST_PATH=warm` under
//! `tests/integration/config/warm.toml` and `cold` under `cold.toml`
//! (every pool disabled). Both configs define the profiles `default`,
//! `locked` and `open`. Tests that drive the daemon as a whole take the
//! binary-wide `exclusive()` lock (all of them here: the pool tests kill
//! zygote children and stop the daemon).

use std::net::TcpListener;
use std::time::Duration;

use zygote_integration_tests::*;

const Z: Runtime = Runtime::Zygote;

/// Reads /etc/passwd, makes a directory and connects to `port` on the host.
fn probe_script(port: u16) -> String {
    format!(
        "cat /etc/passwd >/dev/null && echo read=ok; mkdir /tmp/d && echo mkdir=ok; \
         echo hi | nc -w 2 127.0.0.1 {port} && echo connect=ok; true"
    )
}

fn run_probe(test: &str, extra: &[&str]) -> Output {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming().take(1) {
            drop(s);
        }
    });
    let id = unique_id(test, Z);
    let mut args = vec!["--net-host"];
    args.extend_from_slice(extra);
    let out = Ctr::new().run_rm(Z, &id, &args, &["sh", "-c", &probe_script(port)]);
    assert_no_leftovers(&id);
    out
}

fn assert_locked(out: &Output) {
    assert!(out.success(), "{}", out.describe());
    assert!(!out.stdout.contains("read=ok"), "Landlock must deny /etc: {}", out.describe());
    assert!(out.stderr.contains("Permission denied"), "EACCES from Landlock: {}", out.describe());
    assert!(!out.stdout.contains("mkdir=ok"), "seccomp must deny mkdir: {}", out.describe());
    assert!(out.stderr.contains("Operation not permitted"), "EPERM from seccomp: {}", out.describe());
    assert!(!out.stdout.contains("connect=ok"), "Landlock must deny TCP connect: {}", out.describe());
}

#[test]
fn profile_by_annotation_is_enforced_inside() {
    if !require_runtime(Z, "profile_by_annotation_is_enforced_inside") {
        return;
    }
    let _g = exclusive();
    assert_locked(&run_probe("ann_locked", &["--annotation", "zygote.dev/profile=locked"]));
    let open = run_probe("ann_open", &["--annotation", "zygote.dev/profile=open"]);
    assert!(open.success(), "{}", open.describe());
    assert_eq!(open.stdout.lines().collect::<Vec<_>>(), ["read=ok", "mkdir=ok", "connect=ok"], "{}", open.describe());
}

#[test]
fn profile_by_runtime_options() {
    if !require_runtime(Z, "profile_by_runtime_options") {
        return;
    }
    let _g = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let opts = dir.path().join("zygote-options.toml");
    std::fs::write(&opts, "profile = \"locked\"\n").unwrap();
    let opts = opts.to_string_lossy().into_owned();
    assert_locked(&run_probe("opt_locked", &["--runtime-config-path", &opts]));
    // The annotation wins over the runtime options.
    let out = run_probe("opt_ann", &["--runtime-config-path", &opts, "--annotation", "zygote.dev/profile=open"]);
    assert!(out.stdout.contains("mkdir=ok"), "{}", out.describe());
}

#[test]
fn default_profile_and_expected_path() {
    if !require_runtime(Z, "default_profile_and_expected_path") {
        return;
    }
    let _g = exclusive();
    let path = test_path();
    ensure_daemon();
    if path == "warm" {
        assert!(wait_until(Duration::from_secs(10), || pool_counter("default", "idle") >= 1), "pool never filled: {}", pools_json());
    }
    let id = unique_id("default_path", Z);
    let out = Ctr::new().run_rm(Z, &id, &[], &["true"]);
    assert!(out.success(), "{}", out.describe());
    let t = timing(&id).unwrap_or_else(|| panic!("no timing line for {id}"));
    assert_eq!(t["profile"], "default", "{t}");
    assert_eq!(t["path"], path, "{t}");
    if path == "cold" {
        assert!(pool_fallbacks("default", "pool_disabled") >= 1, "{}", pools_json());
        assert_eq!(pool_counter("default", "created"), 0, "{}", pools_json());
    }
}

#[test]
fn unknown_or_malformed_profile_is_rejected_cleanly() {
    if !require_runtime(Z, "unknown_or_malformed_profile_is_rejected_cleanly") {
        return;
    }
    let _g = exclusive();
    let before = cgroup_count();
    let id = unique_id("unknown_profile", Z);
    let out = Ctr::new().run_rm(Z, &id, &["--annotation", "zygote.dev/profile=nope"], &["true"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(out.stderr.contains("selects profile \"nope\", which is not configured"), "{}", out.describe());
    assert!(out.stderr.contains("known profiles: default, locked, open"), "{}", out.describe());
    Ctr::new().cleanup(&id);
    assert_no_leftovers(&id);
    let id = unique_id("bad_annotation", Z);
    let out = Ctr::new().run_rm(Z, &id, &["--annotation", "zygote.dev/profile=Not/A Name"], &["true"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(out.stderr.contains("annotation zygote.dev/profile=\"Not/A Name\""), "{}", out.describe());
    Ctr::new().cleanup(&id);
    assert_no_leftovers(&id);
    assert_eq!(cgroup_count(), before);
    // The node keeps working.
    let id = unique_id("after_bad_profile", Z);
    assert!(Ctr::new().run_rm(Z, &id, &[], &["true"]).success());
}

#[test]
fn claims_drain_and_refill_the_pool() {
    if test_path() != "warm" || !require_runtime(Z, "claims_drain_and_refill_the_pool") {
        return;
    }
    let _g = exclusive();
    ensure_daemon();
    let target = 3; // warm.toml: default pool initial = 3
    assert!(wait_until(Duration::from_secs(15), || pool_counter("default", "idle") >= target), "{}", pools_json());
    let created = pool_counter("default", "created");
    let claimed = pool_counter("default", "claimed");
    let ids: Vec<String> = (0..3).map(|i| unique_id(&format!("drain{i}"), Z)).collect();
    for id in &ids {
        Ctr::new().run_detached(Z, id, &[], &["sleep", "30"]).assert_success();
    }
    assert!(wait_until(Duration::from_secs(5), || pool_counter("default", "claimed") >= claimed + 3), "{}", pools_json());
    for id in &ids {
        assert_eq!(timing(id).map(|t| t["path"].clone()), Some("warm".into()), "{id} was not served warm");
    }
    assert!(
        wait_until(Duration::from_secs(15), || pool_counter("default", "idle") >= target && pool_counter("default", "created") >= created + 3),
        "pool did not refill: {}",
        pools_json()
    );
    for id in &ids {
        Ctr::new().cleanup(id);
        assert_no_leftovers(id);
    }
}

#[test]
fn killed_zygote_is_replaced_and_never_handed_out() {
    if test_path() != "warm" || !require_runtime(Z, "killed_zygote_is_replaced_and_never_handed_out") {
        return;
    }
    let _g = exclusive();
    ensure_daemon();
    assert!(wait_until(Duration::from_secs(15), || pool_counter("default", "idle") >= 3), "{}", pools_json());
    let died = pool_counter("default", "died");
    // Kill the waiting child of every idle zygote, then ask for a task at once.
    let mut killed = 0;
    for z in zygote_pids() {
        for child in children_of(z) {
            unsafe_free_kill(child);
            killed += 1;
        }
    }
    assert!(killed >= 3, "expected at least 3 waiting zygote children, killed {killed}");
    let id = unique_id("after_kill", Z);
    let out = Ctr::new().run_rm(Z, &id, &[], &["echo", "served"]);
    assert!(out.success() && out.stdout == "served\n", "{}", out.describe());
    assert!(wait_until(Duration::from_secs(10), || pool_counter("default", "died") >= died + 1), "{}", pools_json());
    assert!(wait_until(Duration::from_secs(15), || pool_counter("default", "idle") >= 3), "not replaced: {}", pools_json());
    assert_no_leftovers(&id);
}

/// SIGKILL through the `kill` command (keeps this file free of `unsafe`).
fn unsafe_free_kill(pid: i32) {
    let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
}

#[test]
fn daemon_stop_with_full_pools_leaves_no_zygote() {
    if test_path() != "warm" || !require_runtime(Z, "daemon_stop_with_full_pools_leaves_no_zygote") {
        return;
    }
    let _g = exclusive();
    // Make sure a daemon runs and its pools are full.
    let id = unique_id("before_stop", Z);
    assert!(Ctr::new().run_rm(Z, &id, &[], &["true"]).success());
    assert!(wait_until(Duration::from_secs(15), || pool_counter("default", "idle") >= 3), "{}", pools_json());
    assert!(!zygote_pids().is_empty());
    let dir = daemon_dir().expect("daemon dir");
    let pid = std::fs::read_to_string(dir.join("daemon.pid")).unwrap();
    let _ = std::process::Command::new("kill").args(["-TERM", pid.trim()]).status();
    assert!(wait_until(Duration::from_secs(10), || zygote_pids().is_empty()), "zygotes outlived the daemon: {:?}", zygote_pids());
    assert!(cgroups_named("zygote@").is_empty(), "pool cgroups left: {:?}", cgroups_named("zygote@"));
    // The next task starts a new daemon.
    let id = unique_id("after_stop", Z);
    assert!(Ctr::new().run_rm(Z, &id, &[], &["true"]).success());
}

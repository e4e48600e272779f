//! WebAssembly tasks through ctr: the modules of `tests/wasm/*.wat` in an
//! ordinary image whose entrypoint is a `.wasm` file (hack/test.sh builds
//! and imports it). Output, exit codes, args and env, the rootfs as `/`
//! and nothing outside it, Kill of a spinning and of a blocked module,
//! the memory limit, twenty at once, a busybox container beside them, and
//! the artifact cache (compile once, hit, survive a daemon restart, recover
//! a corrupt entry).
//!
//! Runs on both passes of hack/test.sh: the `wasm` profile's pool is full
//! on the warm pass and disabled on the cold pass; every task is asserted
//! to have taken the pass's path.

use std::time::{Duration, Instant};

use zygote_integration_tests::*;

const Z: Runtime = Runtime::Zygote;
const WASM_PROFILE: &[&str] = &["--annotation", "zygote.dev/profile=wasm"];

/// The timing line of a finished task, checked to be a Wasm task that took
/// this pass's path.
fn wasm_timing(id: &str) -> serde_json::Value {
    let mut t = None;
    wait_until(Duration::from_secs(5), || {
        t = timing(id);
        t.is_some()
    });
    let t = t.unwrap_or_else(|| panic!("no timings.jsonl line for {id}"));
    assert_eq!(t["kind"], "wasm", "{t}");
    assert_eq!(t["path"], test_path(), "{t}");
    t
}

fn run_ok(test: &str, extra: &[&str], cmd: &[&str]) -> (String, Output) {
    let id = unique_id(test, Z);
    let out = run_wasm(&id, true, &[WASM_PROFILE, extra].concat(), cmd);
    assert!(out.success(), "{}", out.describe());
    assert_no_leftovers(&id);
    (id, out)
}

#[test]
fn hello_exit_codes_and_traps() {
    if !require_runtime(Z, "hello_exit_codes_and_traps") {
        return;
    }
    {
        // Alone, with the pool refilled, so the path is the pass's.
        let _g = exclusive();
        if test_path() == "warm" {
            ensure_daemon();
            assert!(
                wait_until(Duration::from_secs(15), || pool_counter("wasm", "idle") >= 1),
                "{}",
                pools_json()
            );
        }
        let (id, out) = run_ok("w_hello", &[], &[]);
        assert_eq!(out.stdout, "hello from wasm\n", "{}", out.describe());
        wasm_timing(&id);
    }
    // Detected by its header with the default profile too, and found in
    // PATH without an extension.
    let id = unique_id("w_path", Z);
    let out = run_wasm(&id, true, &[], &["hello"]);
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (0, "hello from wasm\n"),
        "{}",
        out.describe()
    );
    assert_eq!(timing(&id).expect("timing")["kind"], "wasm");

    let id = unique_id("w_exit5", Z);
    let out = run_wasm(&id, true, WASM_PROFILE, &["/exit5.wasm"]);
    assert_eq!(out.code(), 5, "{}", out.describe());
    assert!(out.stderr.contains("exiting with 5"), "{}", out.describe());
    assert_no_leftovers(&id);

    let id = unique_id("w_trap", Z);
    let out = run_wasm(&id, true, WASM_PROFILE, &["/trap.wasm"]);
    assert_eq!(out.code(), 134, "a trap is 128 + SIGABRT: {}", out.describe());
    assert!(
        out.stderr.contains("wasm trap") && out.stderr.contains("unreachable"),
        "{}",
        out.describe()
    );
    assert_no_leftovers(&id);
}

#[test]
fn args_env_and_the_rootfs_as_root() {
    if !require_runtime(Z, "args_env_and_the_rootfs_as_root") {
        return;
    }
    let (_, out) = run_ok(
        "w_echo",
        &["--env", "GREETING=hi there"],
        &["/echo.wasm", "one", "two words"],
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(&lines[..3], ["/echo.wasm", "one", "two words"], "{}", out.describe());
    assert!(
        lines.contains(&"GREETING=hi there") && lines.contains(&"PATH=/bin"),
        "{}",
        out.describe()
    );

    let (_, out) = run_ok("w_cat", &[], &["/cat.wasm", "etc/greeting"]);
    assert_eq!(out.stdout, "greetings from the rootfs\n", "{}", out.describe());

    // Nothing outside the rootfs: `..` and absolute symlinks stay inside.
    let id = unique_id("w_cat_out", Z);
    let out = run_wasm(
        &id,
        true,
        WASM_PROFILE,
        &["/cat.wasm", "../../../../../../etc/hostname"],
    );
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert!(
        out.stderr.contains("open failed") && out.stdout.is_empty(),
        "{}",
        out.describe()
    );

    let id = unique_id("w_escape", Z);
    let marker = format!("escape-{id}");
    let out = run_wasm(&id, true, WASM_PROFILE, &["/create.wasm", &format!("../{marker}")]);
    assert_ne!(out.code(), 0, "{}", out.describe());
    assert_eq!(out.stdout, "denied\n", "{}", out.describe());
    let bundle = bundle_dir(&id);
    assert!(!bundle.join(&marker).exists() && !std::path::Path::new("/").join(&marker).exists());
    assert_no_leftovers(&id);

    let (_, out) = run_ok("w_create", &[], &["/create.wasm", "tmp/inside"]);
    assert_eq!(
        out.stdout,
        "created\n",
        "writing inside the rootfs works: {}",
        out.describe()
    );
}

fn kill_case(module: &str, signal: &str, expected: i32) {
    let ctr = Ctr::new();
    let id = unique_id(&format!("w_kill_{}", &module[..4]), Z);
    let out = run_wasm(&id, false, WASM_PROFILE, &[module]);
    assert!(out.success(), "{}", out.describe());
    ctr.wait_status(&id, "RUNNING", Duration::from_secs(10));
    // Let it reach its loop (or its blocking call).
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    ctr.run(&["task", "kill", "-s", signal, &id]).assert_success();
    ctr.wait_status(&id, "STOPPED", Duration::from_secs(5));
    let took = t0.elapsed();
    assert_eq!(
        ctr.delete_task_exit_status(&id),
        Ok(expected),
        "{module} after {signal}"
    );
    ctr.run(&["container", "delete", &id]).assert_success();
    assert_no_leftovers(&id);
    eprintln!("{module} {signal}: stopped after {took:?}");
}

#[test]
fn kill_ends_spinning_and_blocked_modules() {
    if !require_runtime(Z, "kill_ends_spinning_and_blocked_modules") {
        return;
    }
    kill_case("/loop.wasm", "SIGKILL", 137);
    kill_case("/loop.wasm", "SIGTERM", 143);
    kill_case("/sleep.wasm", "SIGTERM", 143);
    kill_case("/sleep.wasm", "SIGINT", 130);
}

#[test]
fn memory_limit_stops_a_memory_bomb() {
    if !require_runtime(Z, "memory_limit_stops_a_memory_bomb") {
        return;
    }
    let id = unique_id("w_bomb", Z);
    let limit = 64 << 20;
    let out = run_wasm(
        &id,
        true,
        &[WASM_PROFILE, &["--memory-limit", &limit.to_string()]].concat(),
        &["/membomb.wasm"],
    );
    assert_eq!(out.code(), 134, "{}", out.describe());
    assert!(out.stdout.starts_with("growing"), "{}", out.describe());
    assert!(
        out.stderr.contains("memory limit reached") && out.stderr.contains(&limit.to_string()),
        "the error names the limit: {}",
        out.describe()
    );
    assert_no_leftovers(&id);
}

#[test]
fn twenty_wasm_tasks_at_once() {
    if !require_runtime(Z, "twenty_wasm_tasks_at_once") {
        return;
    }
    // Counters and log are the daemon's: no daemon restart in between.
    let _g = exclusive();
    let looked_up = || counter("hits") + counter("compiles");
    let before = looked_up();
    let log_from = daemon_dir()
        .and_then(|d| std::fs::metadata(d.join("daemon.log")).ok())
        .map_or(0, |m| m.len());
    let handles: Vec<_> = (0..20)
        .map(|i| {
            std::thread::spawn(move || {
                let id = unique_id(&format!("w_many{i}"), Z);
                (
                    run_wasm(&id, true, WASM_PROFILE, &["/echo.wasm", &format!("task-{i}")]),
                    i,
                    id,
                )
            })
        })
        .collect();
    for h in handles {
        let (out, i, id) = h.join().unwrap();
        assert!(out.success(), "task {i}: {}", out.describe());
        assert!(
            out.stdout.lines().nth(1) == Some(&format!("task-{i}")),
            "task {i}: {}",
            out.describe()
        );
        assert_no_leftovers(&id);
    }
    // Regression (issue 16): concurrent counter writes lost updates and
    // logged "cannot write wasm cache counters". Every lookup is counted,
    // and the daemon logged no failed write.
    assert!(
        wait_until(Duration::from_secs(5), || looked_up() >= before + 20),
        "20 lookups, counters went from {before} to {}: {}",
        looked_up(),
        wasm_cache_stats()
    );
    let log = daemon_dir()
        .expect("the tasks ran on a zygote daemon")
        .join("daemon.log");
    let text = std::fs::read(&log).unwrap_or_default();
    let tail = String::from_utf8_lossy(&text[(log_from as usize).min(text.len())..]);
    assert!(
        !tail.contains("cannot write wasm cache counters"),
        "the daemon failed to write its cache counters:\n{tail}"
    );
}

#[test]
fn busybox_and_wasm_side_by_side() {
    if !require_runtime(Z, "busybox_and_wasm_side_by_side") {
        return;
    }
    let ctr = Ctr::new();
    let native = unique_id("w_side_bb", Z);
    ctr.run_detached(Z, &native, &[], &["sleep", "30"]);
    let wasm = unique_id("w_side_wasm", Z);
    assert!(run_wasm(&wasm, false, WASM_PROFILE, &["/sleep.wasm"]).success());
    ctr.wait_status(&wasm, "RUNNING", Duration::from_secs(10));
    // Exec works in the container and is refused, with a reason, in the Wasm task.
    let out = ctr.run(&["task", "exec", "--exec-id", "e1", &native, "echo", "in-busybox"]);
    assert_eq!(out.stdout.trim(), "in-busybox", "{}", out.describe());
    let out = ctr.run(&["task", "exec", "--exec-id", "e1", &wasm, "/bin/sh"]);
    assert!(
        !out.success() && out.stderr.contains("not supported in a WebAssembly task"),
        "{}",
        out.describe()
    );
    // Both are listed with their own pids, both stop on SIGKILL.
    let pids = (ctr.task_pid(&native), ctr.task_pid(&wasm));
    assert!(pids.0 > 0 && pids.1 > 0 && pids.0 != pids.1);
    let out = ctr.run(&["task", "ps", &wasm]);
    assert!(
        out.success() && out.stdout.contains(&pids.1.to_string()),
        "{}",
        out.describe()
    );
    for id in [&native, &wasm] {
        ctr.run(&["task", "kill", "-s", "SIGKILL", id]).assert_success();
        ctr.wait_status(id, "STOPPED", Duration::from_secs(5));
        assert_eq!(ctr.delete_task_exit_status(id), Ok(137));
        ctr.run(&["container", "delete", id]).assert_success();
        assert_no_leftovers(id);
    }
}

#[test]
fn wasm_profile_refuses_a_native_entrypoint() {
    if !require_runtime(Z, "wasm_profile_refuses_a_native_entrypoint") {
        return;
    }
    let id = unique_id("w_native", Z);
    let out = Ctr::new().run_rm(Z, &id, WASM_PROFILE, &["sh", "-c", "true"]);
    assert!(!out.success(), "{}", out.describe());
    assert!(out.stderr.contains("is not a WebAssembly module"), "{}", out.describe());
    Ctr::new().cleanup(&id);
    assert_no_leftovers(&id);
}

/// How the task's artifact was found (its path is not checked: right after
/// a daemon restart the pool is still empty).
fn cache_outcome(id: &str) -> String {
    wait_until(Duration::from_secs(5), || timing(id).is_some());
    let t = timing(id).unwrap_or_else(|| panic!("no timings.jsonl line for {id}"));
    assert_eq!(t["kind"], "wasm", "{t}");
    t["wasm"]["cache"].as_str().unwrap_or_default().to_string()
}

fn counter(name: &str) -> u64 {
    wasm_cache_stats()[name].as_u64().unwrap_or(0)
}

#[test]
fn cache_compiles_once_hits_and_survives_a_daemon_restart() {
    if !require_runtime(Z, "cache_compiles_once_hits_and_survives_a_daemon_restart") {
        return;
    }
    let _g = exclusive();
    let digest = module_digest("cachetest.wasm");
    for f in cache_artifacts(&digest) {
        std::fs::remove_file(&f).unwrap();
    }
    let compiles = counter("compiles");
    let (first, out) = run_ok("w_cache1", &[], &["/cachetest.wasm"]);
    assert_eq!(out.stdout, "cache test ok!!\n");
    let outcome = cache_outcome(&first);
    assert!(
        outcome == "compiled" || outcome == "recompiled",
        "first run after removing the entry compiles: {outcome}"
    );
    assert!(counter("compiles") > compiles, "{}", wasm_cache_stats());
    assert_eq!(cache_artifacts(&digest).len(), 1, "one artifact on disk");
    let (second, _) = run_ok("w_cache2", &[], &["/cachetest.wasm"]);
    assert_eq!(cache_outcome(&second), "hit");
    // A new daemon finds the entry on disk.
    let dir = daemon_dir().expect("daemon dir");
    let pid = std::fs::read_to_string(dir.join("daemon.pid")).unwrap();
    let _ = std::process::Command::new("kill").args(["-TERM", pid.trim()]).status();
    assert!(wait_until(Duration::from_secs(10), || {
        !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists()
    }));
    let (third, out) = run_ok("w_cache3", &[], &["/cachetest.wasm"]);
    assert_eq!(out.stdout, "cache test ok!!\n");
    assert_eq!(cache_outcome(&third), "hit", "the cache survives a daemon restart");
}

#[test]
fn corrupt_cache_entry_is_detected_and_recompiled() {
    if !require_runtime(Z, "corrupt_cache_entry_is_detected_and_recompiled") {
        return;
    }
    let _g = exclusive();
    let digest = module_digest("cachetest.wasm");
    run_ok("w_corrupt0", &[], &["/cachetest.wasm"]);
    let artifacts = cache_artifacts(&digest);
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    // Overwrite part of the artifact in place (as a disk error would).
    let mut bytes = std::fs::read(&artifacts[0]).unwrap();
    let (mid, len) = (bytes.len() / 2, bytes.len());
    for b in &mut bytes[mid..(mid + 64).min(len)] {
        *b ^= 0xa5;
    }
    std::fs::write(&artifacts[0], &bytes).unwrap();
    let recompiled = counter("recompiled");
    let (id, out) = run_ok("w_corrupt1", &[], &["/cachetest.wasm"]);
    assert_eq!(out.stdout, "cache test ok!!\n", "{}", out.describe());
    assert_eq!(cache_outcome(&id), "recompiled");
    assert!(counter("recompiled") > recompiled, "{}", wasm_cache_stats());
    // Truncated: also recompiled; the daemon keeps serving.
    std::fs::write(&cache_artifacts(&digest)[0], b"\x7fELF").unwrap();
    let (id, _) = run_ok("w_corrupt2", &[], &["/cachetest.wasm"]);
    assert_eq!(cache_outcome(&id), "recompiled");
    let (id, _) = run_ok("w_corrupt3", &[], &["/cachetest.wasm"]);
    assert_eq!(cache_outcome(&id), "hit");
}

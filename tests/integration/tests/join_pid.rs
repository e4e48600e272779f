//! A container that joins another container's pid namespace by path
//! (`ctr run --with-ns pid:/proc/<pid>/ns/pid`, what containerd's CRI plugin
//! does for a pod with a shared pid namespace) behaves as under runc-v2, and
//! is served by a zygote on the warm path: the zygote's child, pid 1 of its
//! own namespace, cannot move into another one, so the claimed zygote clones
//! the init itself and counts the reason.

use std::time::Duration;

use zygote_integration_tests::*;

const Z: Runtime = Runtime::Zygote;

/// What the joining container sees: the owner's `sleep` as pid 1, itself not.
const SCRIPT: &str =
    "printf 'pid1=%s self_is_1=%s\\n' \"$(tr '\\0' ' ' </proc/1/cmdline)\" \"$([ $$ = 1 ] && echo yes || echo no)\"";

fn join_owner(rt: Runtime, test: &str) -> (Output, String) {
    let ctr = Ctr::new();
    let owner = Container::new(&format!("{test}-owner"), rt);
    ctr.run_detached(rt, owner.id(), &[], &["sleep", "1000"]);
    let pid = ctr.task_pid(owner.id());
    let joiner = Container::new(&format!("{test}-joiner"), rt);
    let out = ctr.run_rm(
        rt,
        joiner.id(),
        &["--with-ns", &format!("pid:/proc/{pid}/ns/pid")],
        &["sh", "-c", SCRIPT],
    );
    (out, joiner.id().to_string())
}

#[test]
fn joins_another_containers_pid_namespace() {
    // Not alongside the warm test below: it counts this binary's claims.
    let _g = exclusive();
    let expected = (0, "pid1=sleep 1000  self_is_1=no\n".to_string());
    both_expect("join another container's pid namespace", expected, |rt| {
        let (out, _) = join_owner(rt, "joinpid");
        (out.code(), out.stdout)
    });
}

#[test]
fn joining_a_pid_namespace_is_served_warm() {
    if !require_runtime(Z, "joining_a_pid_namespace_is_served_warm") {
        return;
    }
    let _g = exclusive();
    let path = test_path();
    ensure_daemon();
    let before = pool_cloned_at_claim("default", "join_pid_namespace");
    let fell_back = pool_fallbacks("default", "join_pid_namespace");
    if path == "warm" {
        // The owner and the joiner each claim one.
        assert!(
            wait_until(Duration::from_secs(20), || pool_counter("default", "idle") >= 2),
            "pool never filled: {}",
            pools_json()
        );
    }
    let (out, id) = join_owner(Z, "joinpidwarm");
    assert!(out.success(), "{}", out.describe());
    let t = timing(&id).unwrap_or_else(|| panic!("no timing line for {id}"));
    assert_eq!(t["path"], path, "{t}");
    if path == "warm" {
        assert_eq!(t["cloned_at_claim"], "join_pid_namespace", "{t}");
        assert!(
            pool_cloned_at_claim("default", "join_pid_namespace") > before,
            "{}",
            pools_json()
        );
    } else {
        assert!(t["cloned_at_claim"].is_null(), "{t}");
    }
    assert_eq!(
        pool_fallbacks("default", "join_pid_namespace"),
        fell_back,
        "no task takes the cold path for joining a pid namespace: {}",
        pools_json()
    );
}

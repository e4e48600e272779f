//! Specs a zygote's pre-made child cannot serve, because a process cannot
//! leave the pid namespace it is pid 1 of or enter a user namespace after
//! its other namespaces were made: a container joining another container's
//! pid namespace by path (`ctr run --with-ns pid:/proc/<pid>/ns/pid`, what
//! containerd's CRI plugin does for a pod with a shared pid namespace) and a
//! container in a user namespace (`--uidmap`). Each behaves as under runc-v2,
//! and is served by a zygote on the warm path: the claimed zygote clones the
//! init itself and counts the reason (`cloned_at_claim`), never the cold path.

use std::time::Duration;

use zygote_integration_tests::*;

const Z: Runtime = Runtime::Zygote;

/// What the joining container sees: the owner's `sleep` as pid 1, itself not.
const JOIN_SCRIPT: &str =
    "printf 'pid1=%s self_is_1=%s\\n' \"$(tr '\\0' ' ' </proc/1/cmdline)\" \"$([ $$ = 1 ] && echo yes || echo no)\"";

/// Inside a user namespace: root, the map, a writable rootfs.
const USERNS_SCRIPT: &str = "id -u; tr -s ' ' </proc/self/uid_map; touch /written && echo written";
const USERNS_MAP: [&str; 4] = ["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"];

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
        &["sh", "-c", JOIN_SCRIPT],
    );
    (out, joiner.id().to_string())
}

fn in_user_namespace(rt: Runtime, test: &str) -> (Output, String) {
    let c = Container::new(test, rt);
    let out = Ctr::new().run_rm(rt, c.id(), &USERNS_MAP, &["sh", "-c", USERNS_SCRIPT]);
    (out, c.id().to_string())
}

#[test]
fn joins_another_containers_pid_namespace() {
    // Not alongside the warm tests below: they count this binary's claims.
    let _g = exclusive();
    let expected = (0, "pid1=sleep 1000  self_is_1=no\n".to_string());
    both_expect("join another container's pid namespace", expected, |rt| {
        let (out, _) = join_owner(rt, "joinpid");
        (out.code(), out.stdout)
    });
}

#[test]
fn runs_in_a_user_namespace() {
    let _g = exclusive();
    let expected = (0, "0\n 0 100000 65536\nwritten\n".to_string());
    both_expect("ctr run --uidmap/--gidmap", expected, |rt| {
        let (out, _) = in_user_namespace(rt, "userns");
        (out.code(), out.stdout)
    });
}

/// Runs `run` (which claims `claims` zygotes) and checks that the task it
/// names took the expected path, with the init cloned at claim for `reason`.
fn served_warm(test: &str, reason: &str, claims: u64, run: impl FnOnce() -> (Output, String)) {
    if !require_runtime(Z, test) {
        return;
    }
    let _g = exclusive();
    let path = test_path();
    ensure_daemon();
    let before = pool_cloned_at_claim("default", reason);
    let fell_back = pool_fallbacks("default", reason);
    if path == "warm" {
        assert!(
            wait_until(Duration::from_secs(20), || pool_counter("default", "idle") >= claims),
            "pool never filled: {}",
            pools_json()
        );
    }
    let (out, id) = run();
    assert!(out.success(), "{}", out.describe());
    let t = timing(&id).unwrap_or_else(|| panic!("no timing line for {id}"));
    assert_eq!(t["path"], path, "{t}");
    if path == "warm" {
        assert_eq!(t["cloned_at_claim"], reason, "{t}");
        assert!(pool_cloned_at_claim("default", reason) > before, "{}", pools_json());
    } else {
        assert!(t["cloned_at_claim"].is_null(), "{t}");
    }
    assert_eq!(
        pool_fallbacks("default", reason),
        fell_back,
        "{reason} never sends a task down the cold path: {}",
        pools_json()
    );
}

#[test]
fn joining_a_pid_namespace_is_served_warm() {
    // The owner and the joiner each claim one.
    served_warm(
        "joining_a_pid_namespace_is_served_warm",
        "join_pid_namespace",
        2,
        || join_owner(Z, "joinpidwarm"),
    );
}

#[test]
fn a_user_namespace_is_served_warm() {
    served_warm("a_user_namespace_is_served_warm", "user_namespace", 1, || {
        in_user_namespace(Z, "usernswarm")
    });
}

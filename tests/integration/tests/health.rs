//! Health of idle zygotes against a real daemon: a zygote stopped with
//! SIGSTOP stops answering the pool's pings and is killed, replaced and
//! counted (`unhealthy.unresponsive`), and no task is served by it; a live
//! reload that changes a profile's security setting retires the idle
//! zygotes of the old generation (`unhealthy.stale_generation`), and the
//! next task is served warm by a zygote of the new one (`timings.jsonl`'s
//! `zygote_generation`, `pools.json`'s `generation`, each zygote's
//! argument). Both run on a private containerd whose daemon reads a config
//! of the test's own ([`ControlledNode`]): short probe intervals, and a
//! reload, never touch the shared test config.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use zygote_integration_tests::*;

const Z: Runtime = Runtime::Zygote;

/// A pool of 2 probed every 400 ms; a ping unanswered for 250 ms fails.
const PROBED: &str = "[profiles.default.pool]\nmin = 0\ninitial = 2\nmax = 3\n\
                      [profiles.default.pool.health]\nprobe_interval_ms = 400\nping_timeout_ms = 250\n";

/// The same with a seccomp filter denying mkdir: another security generation.
const NO_MKDIR: &str = "[profiles.default.pool]\nmin = 0\ninitial = 2\nmax = 3\n\
                        [profiles.default.pool.health]\nprobe_interval_ms = 400\nping_timeout_ms = 250\n\
                        [profiles.default.seccomp]\nmode = \"add\"\n\
                        filter = { defaultAction = \"SCMP_ACT_ALLOW\", syscalls = [ { names = [\"mkdir\", \"mkdirat\"], action = \"SCMP_ACT_ERRNO\", errnoRet = 1 } ] }\n";

fn pools(node: &ControlledNode) -> Value {
    std::fs::read_to_string(node.daemon_dir().join("pools.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

fn unhealthy(node: &ControlledNode, reason: &str) -> u64 {
    pools(node)["profiles"]["default"]["unhealthy"][reason]
        .as_u64()
        .unwrap_or(0)
}

/// The generation in a `__zygote` process's argument.
fn zygote_generation(pid: i32) -> Value {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let arg = raw.split(|b| *b == 0).nth(2).unwrap_or_default();
    serde_json::from_slice::<Value>(arg).unwrap_or(Value::Null)["generation"].clone()
}

fn timing(node: &ControlledNode, id: &str) -> Value {
    let text = std::fs::read_to_string(node.daemon_dir().join("timings.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["id"] == id)
        .unwrap_or(Value::Null)
}

fn parent_of(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Starts the node's daemon with one task and waits for a full pool.
fn started(config: &str) -> ControlledNode {
    let node = ControlledNode::start(config);
    let (out, _b) = node.run(&unique_id("health-start", Z), "default", &["true"], false);
    assert!(out.success(), "{}", out.describe());
    assert!(
        wait_until(Duration::from_secs(30), || node.idle("default").len() == 2),
        "the pool fills: {}",
        node.status()
    );
    node
}

#[test]
fn a_stopped_zygote_is_replaced_counted_and_never_claimed() {
    if !require_runtime(Z, "a_stopped_zygote_is_replaced_counted_and_never_claimed") {
        return;
    }
    let node = started(PROBED);
    let dir = node.daemon_dir();
    let stopped = node.idle("default")[0].clone();
    assert!(send_signal(stopped.pid as u32, libc::SIGSTOP));
    // A claim right away (before or after a probe saw it) is not served by it.
    let id = unique_id("health-after-stop", Z);
    let (out, _b) = node.run(&id, "default", &["sleep", "30"], true);
    assert!(out.success(), "{}", out.describe());
    let ctr = node.containerd.ctr();
    let pid = ctr.task_pid(&id);
    assert_ne!(
        parent_of(pid),
        Some(stopped.pid),
        "the task was served by the stopped zygote"
    );

    assert!(
        wait_until(Duration::from_secs(20), || unhealthy(&node, "unresponsive") >= 1),
        "the stopped zygote is counted: {}",
        pools(&node)
    );
    let killed = wait_proc_gone(stopped.pid as u32, Duration::from_secs(10))
        && wait_proc_gone(stopped.child as u32, Duration::from_secs(10));
    if !killed {
        send_signal(stopped.pid as u32, libc::SIGKILL);
    }
    assert!(killed, "the stopped zygote {stopped:?} still runs");
    assert!(
        wait_until(Duration::from_secs(10), || !daemon_pool_cgroups(&dir)
            .iter()
            .any(|c| pool_cgroup_pid(Path::new(c)) == Some(stopped.child))),
        "its pool cgroup is left: {:?}",
        daemon_pool_cgroups(&dir)
    );
    assert!(
        wait_until(Duration::from_secs(30), || {
            let idle = node.idle("default");
            idle.len() == 2 && idle.iter().all(|z| z.pid != stopped.pid)
        }),
        "replaced: {}",
        node.status()
    );
    let st = node.status();
    assert!(
        st["pools"]["default"]["unhealthy"]["unresponsive"].as_u64() >= Some(1),
        "{st}"
    );
    // pools.json is rewritten on the pool's next change, so its probe count
    // may lag the status just read: waited for, not read once.
    assert!(
        wait_until(Duration::from_secs(10), || pools(&node)["profiles"]["default"]
            ["probes"]
            .as_u64()
            >= Some(2)),
        "the periodic probe ran: {}",
        pools(&node)
    );
    // The node keeps serving, warm.
    let again = unique_id("health-again", Z);
    let (out, _b2) = node.run(&again, "default", &["echo", "served"], false);
    assert!(out.success() && out.stdout == "served\n", "{}", out.describe());
    assert_eq!(node.timing_path(&again).as_deref(), Some("warm"));
    ctr.cleanup(&id);
    let _ = ctr.run(&["container", "delete", &again]);
}

#[test]
fn a_security_change_retires_idle_zygotes_as_stale() {
    if !require_runtime(Z, "a_security_change_retires_idle_zygotes_as_stale") {
        return;
    }
    let node = started(PROBED);
    let old = node.idle("default");
    let old_gen = pools(&node)["profiles"]["default"]["generation"].clone();
    assert!(old_gen["security"].is_u64(), "{}", pools(&node));
    for z in &old {
        assert_eq!(zygote_generation(z.pid), old_gen, "{z:?}");
    }

    std::fs::write(&node.config, NO_MKDIR).unwrap();
    let r = json_of(&node.ctl(&["reload", "--json"]));
    assert_eq!(r["changed"], serde_json::json!(["default"]), "{r}");
    assert!(r["zygotes_drained"].as_u64() >= Some(2), "{r}");
    let new_gen = pools(&node)["profiles"]["default"]["generation"].clone();
    assert_ne!(new_gen["security"], old_gen["security"], "{}", pools(&node));
    assert_eq!(new_gen["config"], old_gen["config"], "only security changed");
    assert!(unhealthy(&node, "stale_generation") >= 2, "{}", pools(&node));
    for z in &old {
        assert!(
            wait_proc_gone(z.pid as u32, Duration::from_secs(10)),
            "stale {z:?} runs"
        );
    }
    assert!(
        wait_until(Duration::from_secs(30), || node.idle("default").len() == 2),
        "the pool refills: {}",
        node.status()
    );
    for z in node.idle("default") {
        assert_eq!(zygote_generation(z.pid), new_gen, "{z:?}");
    }

    let id = unique_id("health-new-gen", Z);
    let (out, _b) = node.run(&id, "default", &["sh", "-c", "mkdir /made && echo made; true"], false);
    assert!(out.success(), "{}", out.describe());
    assert!(
        !out.stdout.contains("made") && out.stderr.contains("Operation not permitted"),
        "the new seccomp filter applies: {}",
        out.describe()
    );
    let t = timing(&node, &id);
    assert_eq!(t["path"], "warm", "{t}");
    assert_eq!(
        t["zygote_generation"], new_gen,
        "served by a zygote of the new generation: {t}"
    );
    let _ = node.containerd.ctr().run(&["container", "delete", &id]);
}

//! Fault tests: the zygote daemon killed with SIGKILL, containerd restarted.
//!
//! These tests disturb the shared containerd / daemon, so they take the
//! binary-wide `exclusive()` lock (cargo runs test binaries one at a time).
//!
//! How exit statuses are observed with ctr 1.6 (it has no `task wait`):
//!  * `ctr task ls` shows STOPPED once the init process exited;
//!  * `ctr task delete <id>` prints `task <id> exit with non-zero exit code N`
//!    on stderr for N != 0 (nothing for 0) and exits 0;
//!  * `ctr events` shows `/tasks/exit {..., "exit_status": N}` (the field is
//!    omitted when 0).

use std::time::Duration;

use zygote_integration_tests::*;

/// kill -9 the zygote daemon while a container runs: the container keeps
/// running, ctr keeps working (a new daemon takes over), a new container can
/// be run, and the old container's exit status (7) is still delivered.
#[test]
fn zygote_daemon_sigkill() {
    let _g = exclusive();
    if !require_runtime(Runtime::Zygote, "zygote_daemon_sigkill") {
        return;
    }
    let rt = Runtime::Zygote;
    let ctr = Ctr::new();
    let events = Events::start();
    let c = Container::new("daemon-kill", rt);
    ctr.run_detached(rt, c.id(), &[], &["sh", "-c", "sleep 6; exit 7"]);
    let task = ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
    assert!(
        proc_alive(task.pid),
        "container init {} not alive",
        task.pid
    );

    let daemons = zygote_daemons();
    assert!(
        !daemons.is_empty(),
        "no live zygote daemon found under {}/*/daemon.pid while a zygote task runs",
        env().state_dir.display()
    );
    for (file, pid) in &daemons {
        eprintln!("killing zygote daemon {pid} ({})", file.display());
        assert!(send_signal(*pid, libc::SIGKILL), "kill -9 {pid}");
    }
    for (_, pid) in &daemons {
        assert!(
            wait_proc_gone(*pid, Duration::from_secs(10)),
            "daemon {pid} survived SIGKILL"
        );
    }

    // The container survives the daemon.
    assert!(
        proc_alive(task.pid),
        "container init {} died with the daemon",
        task.pid
    );

    // ctr task ls still works and lists it.
    let out = ctr.run(&["task", "ls"]);
    out.assert_success();
    let listed = parse_task_ls(&out.stdout)
        .into_iter()
        .find(|t| t.id == c.id());
    assert!(
        listed.is_some(),
        "task {} not listed after daemon kill:\n{}",
        c.id(),
        out.describe()
    );
    assert_eq!(
        listed.unwrap().pid,
        task.pid,
        "pid changed after daemon kill"
    );

    // A new container works.
    let c2 = Container::new("after-daemon-kill", rt);
    let out = ctr.run_rm(rt, c2.id(), &[], &["echo", "ok"]);
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (0, "ok\n"),
        "{}",
        out.describe()
    );

    // The old container finishes normally and its status is delivered.
    ctr.wait_status(c.id(), "STOPPED", Duration::from_secs(30));
    assert_eq!(
        events.exit_status(c.id(), Duration::from_secs(10)),
        Some(7),
        "no /tasks/exit with status 7"
    );
    assert_eq!(ctr.delete_task_exit_status(c.id()), Ok(7));
    drop(c);
    drop(c2);
}

/// A zygote daemon killed while idle is replaced transparently.
#[test]
fn zygote_daemon_sigkill_idle() {
    let _g = exclusive();
    if !require_runtime(Runtime::Zygote, "zygote_daemon_sigkill_idle") {
        return;
    }
    let rt = Runtime::Zygote;
    let ctr = Ctr::new();
    let c = Container::new("warm", rt);
    ctr.run_rm(rt, c.id(), &[], &["true"]).assert_success();
    for (_, pid) in zygote_daemons() {
        send_signal(pid, libc::SIGKILL);
        assert!(wait_proc_gone(pid, Duration::from_secs(10)));
    }
    let c2 = Container::new("idle-kill", rt);
    let out = ctr.run_rm(rt, c2.id(), &[], &["echo", "ok"]);
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (0, "ok\n"),
        "{}",
        out.describe()
    );
    assert_no_leftovers(c2.id());
}

/// Restart containerd while a task runs: the task completes normally and its
/// exit status (5) is visible through ctr afterwards.
#[test]
fn containerd_restart() {
    let _g = exclusive();
    let _ = both_expect(
        "containerd restart",
        ("STOPPED".to_string(), Ok(5), true),
        |rt| {
            let ctr = Ctr::new();
            let c = Container::new("ctrd-restart", rt);
            ctr.run_detached(rt, c.id(), &[], &["sh", "-c", "sleep 4; exit 5"]);
            let before = ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
            let out = containerd_sh("restart");
            assert!(
                out.success(),
                "containerd.sh restart failed:\n{}",
                out.describe()
            );
            // Still running (and the same process) right after the restart.
            let after = ctr
                .task(c.id())
                .expect("task lost across containerd restart");
            assert_eq!(
                (after.pid, after.status.as_str()),
                (before.pid, "RUNNING"),
                "task changed across restart"
            );
            let t = ctr.wait_status(c.id(), "STOPPED", Duration::from_secs(30));
            let status = ctr.delete_task_exit_status(c.id());
            // The restarted containerd can still run containers of this runtime.
            let c2 = Container::new("post-restart", rt);
            let ok = ctr.run_rm(rt, c2.id(), &[], &["true"]).success();
            (t.status, status, ok)
        },
    );
}

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
    assert!(proc_alive(task.pid), "container init {} not alive", task.pid);

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
    assert!(proc_alive(task.pid), "container init {} died with the daemon", task.pid);

    // ctr task ls still works and lists it.
    let out = ctr.run(&["task", "ls"]);
    out.assert_success();
    let listed = parse_task_ls(&out.stdout).into_iter().find(|t| t.id == c.id());
    assert!(
        listed.is_some(),
        "task {} not listed after daemon kill:\n{}",
        c.id(),
        out.describe()
    );
    assert_eq!(listed.unwrap().pid, task.pid, "pid changed after daemon kill");

    // A new container works.
    let c2 = Container::new("after-daemon-kill", rt);
    echo_ok_after_a_kill(&ctr, rt, c2.id());

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

/// `echo ok` in a new container `id` prints ok; else the failure and the
/// last lines of containerd's and the daemons' logs (what explains a failure
/// right after a daemon was killed does not name the task).
fn echo_ok_after_a_kill(ctr: &Ctr, rt: Runtime, id: &str) {
    let out = ctr.run_rm(rt, id, &[], &["echo", "ok"]);
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (0, "ok\n"),
        "{}\n{}",
        out.describe(),
        recent_logs(60)
    );
}

/// A zygote daemon killed while idle is replaced transparently. Regression
/// (containerd 1.7 and 2.1 every other run): the next `ctr run` failed with
/// `ttrpc: closed`, because the killed daemon's listener still took
/// connections until its last thread had exited, so `shim start` started no
/// new daemon; now `start` checks the listener's process and a new daemon
/// waits for the exiting one's lock.
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
    echo_ok_after_a_kill(&ctr, rt, c2.id());
    assert_no_leftovers(c2.id());
}

/// Restart containerd while a task runs: the task completes normally and its
/// exit status (5) is visible through ctr afterwards.
#[test]
fn containerd_restart() {
    let _g = exclusive();
    let _ = both_expect("containerd restart", ("STOPPED".to_string(), Ok(5), true), |rt| {
        let ctr = Ctr::new();
        let c = Container::new("ctrd-restart", rt);
        ctr.run_detached(rt, c.id(), &[], &["sh", "-c", "sleep 4; exit 5"]);
        let before = ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        let out = containerd_sh("restart");
        assert!(out.success(), "containerd.sh restart failed:\n{}", out.describe());
        // Still running (and the same process) right after the restart.
        let after = ctr.task(c.id()).expect("task lost across containerd restart");
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
    });
}

/// A task that exits while containerd is down (stopped with SIGTERM, as
/// systemd and the node installer restart it): once containerd is back,
/// zygote's task is listed STOPPED and `ctr task delete` reports its 7, on
/// containerd 1.6, 1.7 and 2.x. runc-v2 runs the same scenario as the
/// reference only: containerd 1.7 and 2.x delete its task unseen when they
/// start (a task with no pids is taken for a shim leaked by a crash during
/// Create), 1.6 keeps it.
#[test]
fn exit_while_containerd_is_down_keeps_its_status() {
    let _g = exclusive();
    let seen = run_each("exit while containerd is down", |rt| {
        let ctr = Ctr::new();
        let c = Container::new("ctrd-down-exit", rt);
        let script = "while [ ! -e /go ]; do sleep 0.1; done; exit 7";
        ctr.run_detached(rt, c.id(), &[], &["sh", "-c", script]);
        let task = ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        let e = env();
        let pid_file = e.containerd_dir.join("containerd.pid");
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .expect("containerd.pid")
            .trim()
            .parse()
            .expect("containerd pid");
        assert!(send_signal(pid, libc::SIGTERM), "SIGTERM containerd {pid}");
        assert!(
            wait_proc_gone(pid, Duration::from_secs(60)),
            "containerd {pid} did not stop"
        );
        let rootfs = e
            .containerd_dir
            .join("state/io.containerd.runtime.v2.task")
            .join(&ctr.namespace)
            .join(c.id())
            .join("rootfs");
        std::fs::write(rootfs.join("go"), b"").expect("release the task");
        let exited = wait_proc_gone(task.pid, Duration::from_secs(30));
        let out = containerd_sh("start");
        assert!(out.success(), "containerd.sh start failed:\n{}", out.describe());
        assert!(exited, "task {} did not exit", task.pid);
        let listed = ctr.task(c.id()).map(|t| t.status);
        let status = listed.is_some().then(|| ctr.delete_task_exit_status(c.id()));
        (listed, status)
    });
    let mut failures = Vec::new();
    for (rt, r) in &seen {
        eprintln!("exit while containerd is down: {}: {r:?}", rt.short());
        let expected = (Some("STOPPED".to_string()), Some(Ok(7)));
        if *rt == Runtime::Zygote && r.as_ref() != Ok(&expected) {
            failures.push(format!("{}: {r:?}, expected {expected:?}", rt.short()));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

/// The parent of process `pid` (`PPid` in `/proc/<pid>/status`).
fn parent_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no parent found for pid {pid}"))
}

/// kill -9 of the process holding a running container (runc-v2: its shim;
/// zygote: its monitor) must not leave the container running untracked.
/// Regression: zygote reported exit 255 while the container kept running,
/// reparented to PID 1. Now, like runc-v2, the container dies and its exit
/// is reported as 137. `with_ns` joins a host process's pid namespace
/// (zygote then clones through an intermediate, so the kernel's parent-death
/// signal does not apply and the daemon kills the container itself).
fn monitor_sigkill(name: &str, join_host_pidns: bool) {
    let _g = exclusive();
    let host = HostProcess::sleeper();
    let expected = (Some(137), false, true);
    both_expect(name, expected, |rt| {
        let ctr = Ctr::new();
        let events = Events::start();
        let c = Container::new(name, rt);
        let pidns = format!("pid:{}", host.ns_path("pid"));
        let extra: Vec<&str> = if join_host_pidns {
            vec!["--with-ns", &pidns]
        } else {
            vec![]
        };
        ctr.run_detached(rt, c.id(), &extra, &["sleep", "600"]);
        let task = ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        let holder = parent_of(task.pid);
        eprintln!("{name}: {} container init {} held by {holder}", rt.short(), task.pid);
        assert!(send_signal(holder, libc::SIGKILL), "kill -9 {holder}");
        let status = events.exit_status(c.id(), Duration::from_secs(30));
        let survived = !wait_proc_gone(task.pid, Duration::from_secs(10));
        (status, survived, proc_alive(host.pid()))
    });
}

#[test]
fn monitor_sigkill_ends_the_task_with_137() {
    monitor_sigkill("monitor-kill", false);
}

#[test]
fn monitor_sigkill_ends_a_task_in_a_joined_pid_namespace() {
    monitor_sigkill("monitor-kill-pidns", true);
}

/// Exit statuses survive a full state dir. Regression: with the zygote
/// state dir on a small tmpfs filled while tasks ran, `ctr task rm`
/// reported 137 or 255 instead of 3, 4 and 5 (state.json could not be
/// rewritten and Delete trusted it), and nothing was logged. Now the exits
/// are reported right, and the full state dir is reported in containerd's log
/// (whether the task's reserve saved the write or not).
#[test]
fn full_state_dir_keeps_exit_statuses() {
    let _g = exclusive();
    let codes = [3, 4, 5];
    both_expect(
        "exit statuses with a full zygote state dir",
        codes.map(Ok).to_vec(),
        |rt| {
            // Room for the daemon's files and log until the test fills it
            // (64 KiB filled up with debug logs before the tasks started).
            let tmpfs = Tmpfs::mount("1m");
            let containerd = PrivateContainerd::start("enospc", &tmpfs.path);
            let ctr = containerd.ctr();
            let ids: Vec<String> = codes.iter().map(|_| unique_id("enospc", rt)).collect();
            let bundles: Vec<ConfigBundle> = ids
                .iter()
                .zip(codes)
                .map(|(id, code)| {
                    let script = format!("while [ ! -e /go ]; do sleep 0.1; done; exit {code}");
                    ConfigBundle::new(id, &["sh", "-c", &script], |_| {})
                })
                .collect();
            for (id, b) in ids.iter().zip(&bundles) {
                let cfg = b.config_str();
                ctr.run(&["run", "-d", "--runtime", rt.name(), "--config", &cfg, id])
                    .assert_success();
            }
            for id in &ids {
                ctr.wait_status(id, "RUNNING", Duration::from_secs(30));
            }
            let filler = tmpfs.fill();
            for b in &bundles {
                std::fs::write(b.rootfs.join("go"), b"").expect("release the task");
            }
            for id in &ids {
                ctr.wait_status(id, "STOPPED", Duration::from_secs(30));
            }
            let statuses: Vec<Result<i32, String>> = ids.iter().map(|id| ctr.delete_task_exit_status(id)).collect();
            eprintln!("{}: exit statuses {statuses:?}", rt.short());
            if rt == Runtime::Zygote {
                let log = containerd.log();
                assert!(
                    log.contains("the state dir is full"),
                    "the full state dir is not reported in containerd's log:\n{}",
                    log.lines().rev().take(30).collect::<Vec<_>>().join("\n")
                );
            }
            let _ = std::fs::remove_file(filler);
            for id in &ids {
                ctr.run(&["container", "delete", id]).assert_success();
                assert_no_leftovers(id);
            }
            statuses
        },
    );
}

/// A foreground `ctr run` returns with the task's status after the zygote
/// daemon is killed while it waits. Regression: the `Wait` containerd had
/// pending on the dead daemon was never answered, so ctr hung although the
/// exit event went out; now the restarted daemon answers it.
#[test]
fn foreground_run_returns_after_daemon_sigkill() {
    let _g = exclusive();
    if !require_runtime(Runtime::Zygote, "foreground_run_returns_after_daemon_sigkill") {
        return;
    }
    let rt = Runtime::Zygote;
    let ctr = Ctr::new();
    let c = Container::new("fg-daemon-kill", rt);
    let run = ctr.spawn(&run_args(
        rt,
        c.id(),
        true,
        &[],
        &["sh", "-c", "sleep 4; echo done; exit 7"],
    ));
    ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
    let daemons = zygote_daemons();
    assert!(!daemons.is_empty(), "no zygote daemon while a zygote task runs");
    for (_, pid) in &daemons {
        assert!(send_signal(*pid, libc::SIGKILL), "kill -9 {pid}");
        assert!(
            wait_proc_gone(*pid, Duration::from_secs(10)),
            "daemon {pid} survived SIGKILL"
        );
    }
    let out = run.wait(Duration::from_secs(60));
    assert!(
        !out.timed_out,
        "ctr run never returned after the daemon was killed:\n{}",
        out.describe()
    );
    assert_eq!((out.code(), out.stdout.as_str()), (7, "done\n"), "{}", out.describe());
    assert_no_leftovers(c.id());
}

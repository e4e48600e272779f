//! Basic task behaviour through `ctr`, zygote side by side with runc.
//!
//! Every test runs its scenario under each runtime (`both`/`both_expect`) and
//! compares what ctr observed: exit codes, output, status transitions.

use std::collections::BTreeSet;
use std::thread;
use std::time::Duration;

use zygote_integration_tests::*;

/// Plain `ctr run --rm` exit codes.
#[test]
fn exit_codes() {
    let cases: &[(&str, &[&str], i32)] = &[
        ("true", &["true"], 0),
        ("exit3", &["sh", "-c", "exit 3"], 3),
        ("exit255", &["sh", "-c", "exit 255"], 255),
        // A nonzero status above 128 that is NOT a signal death.
        ("exit143", &["sh", "-c", "exit 143"], 143),
    ];
    let expected: Vec<(String, i32)> = cases.iter().map(|(n, _, c)| (n.to_string(), *c)).collect();
    both_expect("exit codes", expected, |rt| {
        let ctr = Ctr::new();
        cases
            .iter()
            .map(|(name, cmd, _)| {
                let c = Container::new(&format!("exit-{name}"), rt);
                let out = ctr.run_rm(rt, c.id(), &[], cmd);
                (name.to_string(), out.code())
            })
            .collect::<Vec<_>>()
    });
}

/// A process that dies of a signal is reported as 128+signal.  A container's
/// pid 1 cannot be killed by a signal from inside its own pid namespace (and
/// ignores SIGTERM without a handler), so these containers join the pid
/// namespace of a host `sleep`: their `sh` is an ordinary process there.
#[test]
fn exit_codes_signal_death() {
    both_expect("signal death exit codes", (137, 143), |rt| {
        let ctr = Ctr::new();
        let host = HostProcess::sleeper();
        let pidns = format!("pid:{}", host.ns_path("pid"));
        let c9 = Container::new("sigdeath-kill", rt);
        let k = ctr.run_rm(
            rt,
            c9.id(),
            &["--with-ns", &pidns],
            &["sh", "-c", "kill -9 $$; echo survived"],
        );
        let c15 = Container::new("sigdeath-term", rt);
        let t = ctr.run_rm(
            rt,
            c15.id(),
            &["--with-ns", &pidns],
            &["sh", "-c", "kill -TERM $$; echo survived"],
        );
        assert!(!k.stdout.contains("survived"), "{}", k.describe());
        assert!(!t.stdout.contains("survived"), "{}", t.describe());
        (k.code(), t.code())
    });
}

/// `ctr task kill -s SIGKILL` on an attached `ctr run --rm`: ctr exits 137.
#[test]
fn exit_code_after_task_kill_sigkill() {
    both_expect("ctr task kill -s SIGKILL", 137, |rt| {
        let ctr = Ctr::new();
        let c = Container::new("kill9", rt);
        let bg = ctr.spawn(&run_args(rt, c.id(), true, &[], &["sleep", "100"]));
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        ctr.run(&["task", "kill", "-s", "SIGKILL", c.id()]).assert_success();
        bg.wait(Duration::from_secs(30)).code()
    });
}

/// `ctr task kill -s SIGTERM` on an attached `ctr run --rm` whose `sleep` is
/// not pid 1 (shared host pid namespace): ctr exits 143.
#[test]
fn exit_code_after_task_kill_sigterm() {
    both_expect("ctr task kill -s SIGTERM", 143, |rt| {
        let ctr = Ctr::new();
        let host = HostProcess::sleeper();
        let pidns = format!("pid:{}", host.ns_path("pid"));
        let c = Container::new("kill15", rt);
        let bg = ctr.spawn(&run_args(rt, c.id(), true, &["--with-ns", &pidns], &["sleep", "100"]));
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        ctr.run(&["task", "kill", "-s", "SIGTERM", c.id()]).assert_success();
        bg.wait(Duration::from_secs(30)).code()
    });
}

/// stdout and stderr arrive separately and intact.
#[test]
fn stdout_and_stderr() {
    let expected = (0, "out\nmore out\n".to_string(), "err\n".to_string());
    both_expect("stdout/stderr", expected, |rt| {
        let c = Container::new("stdio", rt);
        let out = Ctr::new().run_rm(rt, c.id(), &[], &["sh", "-c", "echo out; echo err >&2; echo more out"]);
        (out.code(), out.stdout, out.stderr)
    });
}

/// A larger output (~1 MiB) is delivered completely.
#[test]
fn large_output() {
    both_expect("1 MiB of stdout", (0, 1_048_576usize), |rt| {
        let c = Container::new("bigout", rt);
        let out = Ctr::new().run_rm(rt, c.id(), &[], &["sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' x"]);
        (out.code(), out.stdout.len())
    });
}

/// `--env` and the environment the runtime adds (compared as a sorted list).
#[test]
fn environment() {
    let env = both("env", |rt| {
        let c = Container::new("env", rt);
        let out = Ctr::new().run_rm(rt, c.id(), &["--env", "FOO=bar", "--env", "EMPTY="], &["env"]);
        let mut lines: Vec<String> = out.stdout.lines().map(str::to_string).collect();
        lines.sort();
        (out.code(), lines)
    });
    assert_eq!(env.0, 0);
    assert!(env.1.contains(&"FOO=bar".to_string()), "{env:?}");
    assert!(env.1.contains(&"EMPTY=".to_string()), "{env:?}");
    assert!(
        env.1.iter().any(|l| l.starts_with("PATH=") && l.contains("/bin")),
        "{env:?}"
    );
}

/// `--cwd`.
#[test]
fn working_directory() {
    both_expect("cwd", (0, "/tmp\n".to_string()), |rt| {
        let c = Container::new("cwd", rt);
        let out = Ctr::new().run_rm(rt, c.id(), &["--cwd", "/tmp"], &["pwd"]);
        (out.code(), out.stdout)
    });
}

/// process.user from the spec (ctr 1.6 `run` has no --user flag, so this
/// uses `ctr run --config` with uid/gid 1000).
#[test]
fn user_from_spec() {
    let expected = (
        0,
        "uid=1000(user) gid=1000(user)\n".to_string(),
        "1000 1000\n".to_string(),
    );
    both_expect("process.user 1000:1000", expected, |rt| {
        let c = Container::new("user", rt);
        let b = ConfigBundle::new(c.id(), &["sh", "-c", "id; id -u >&2; id -g >&2"], |s| {
            s["process"]["user"] = serde_json::json!({ "uid": 1000, "gid": 1000 });
        });
        let out = Ctr::new().run_config(rt, &b, c.id());
        let ids = out.stderr.split_whitespace().collect::<Vec<_>>().join(" ") + "\n";
        (out.code(), out.stdout, ids)
    });
}

/// Additional gids from the spec.
#[test]
fn user_additional_gids() {
    both_expect("additionalGids", (0, "1000 0 65534\n".to_string()), |rt| {
        let c = Container::new("gids", rt);
        let b = ConfigBundle::new(c.id(), &["id", "-G"], |s| {
            s["process"]["user"] = serde_json::json!({ "uid": 1000, "gid": 1000, "additionalGids": [0, 65534] });
        });
        let out = Ctr::new().run_config(rt, &b, c.id());
        (out.code(), out.stdout)
    });
}

/// `ctr run -t` gets a pty as stdin/stdout; the exit code still comes through.
#[test]
fn tty() {
    let expected = (0, "/dev/pts/0\n".to_string(), 6, true);
    both_expect("tty", expected, |rt| {
        let ctr = Ctr::new();
        let c1 = Container::new("tty", rt);
        let a = ctr.run_tty(&run_args(rt, c1.id(), true, &["-t"], &["tty"]));
        let c2 = Container::new("tty-exit", rt);
        let b = ctr.run_tty(&run_args(
            rt,
            c2.id(),
            true,
            &["-t"],
            &["sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty; exit 6"],
        ));
        let b_out = normalize_tty(&b.stdout);
        (a.code(), normalize_tty(&a.stdout), b.code(), b_out.contains("is-a-tty"))
    });
}

/// Waits (up to 10 s) until `stty size` differs from `$1`, then prints
/// `size=<rows> <cols>`; the size is left in `$s`.  A pty's size is 0x0 (and
/// busybox `stty size` fails) until ctr's first ResizePty arrives, which ctr
/// sends only after Start, so a container must poll for it.
const WAIT_SIZE: &str = r#"w() { i=0; s=$1; while [ "$s" = "$1" ] && [ $i -lt 200 ]; do sleep 0.05; s=$(stty size 2>/dev/null); i=$((i+1)); done; echo "size=$s"; }"#;

/// ResizePty: `ctr run -t` passes its terminal's size (set with `stty` on the
/// pty of `script`) to the container's pty, and a later resize of that
/// terminal (SIGWINCH to ctr) too.
#[test]
fn tty_size_and_resize() {
    let expected = (0, vec!["size=33 77".to_string(), "size=40 100".to_string()]);
    both_expect("ResizePty", expected, |rt| {
        let ctr = Ctr::new();
        let c = Container::new("tty-resize", rt);
        let script = format!("{WAIT_SIZE}; w \"\"; w \"$s\"");
        let args = run_args(rt, c.id(), true, &["-t"], &["sh", "-c", &script]);
        // `tty` tells which pty ctr runs on, to resize it from here.
        let mut bg = Background::spawn(ctr.tty_command("stty rows 33 cols 77 && tty", &args), false);
        assert!(
            bg.wait_for_stdout("size=33 77", Duration::from_secs(30)),
            "never saw the first size: {:?} {:?}",
            bg.stdout_so_far(),
            bg.stderr_so_far()
        );
        let pty = normalize_tty(&bg.stdout_so_far())
            .lines()
            .find(|l| l.starts_with("/dev/pts/"))
            .unwrap_or_else(|| panic!("no pty path in {:?}", bg.stdout_so_far()))
            .to_string();
        let mut stty = std::process::Command::new("stty");
        stty.args(["-F", &pty, "rows", "40", "cols", "100"]);
        run_cmd(stty, Duration::from_secs(10)).assert_success();
        let out = bg.wait(Duration::from_secs(30));
        let sizes: Vec<String> = normalize_tty(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("size="))
            .map(str::to_string)
            .collect();
        (out.code(), sizes)
    });
}

/// Data piped into `ctr run` reaches the container's stdin, and EOF closes it.
///
/// ctr 1.6 races: if its stdin hits EOF before the task is created, it never
/// closes the container's stdin.  So stdin is closed only once the task runs.
#[test]
fn stdin_piped() {
    both_expect("stdin", (0, "hello\nworld\n".to_string(), "2\n".to_string()), |rt| {
        let ctr = Ctr::new();
        let c = Container::new("stdin", rt);
        let mut bg = ctr.spawn_with_stdin(&run_args(rt, c.id(), true, &[], &["sh", "-c", "cat; cat /dev/null"]));
        bg.write_stdin(b"hello\n");
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        thread::sleep(Duration::from_millis(300));
        bg.write_stdin(b"world\n");
        bg.close_stdin();
        let out = bg.wait(Duration::from_secs(30));

        let c2 = Container::new("stdin-wc", rt);
        let mut bg2 = ctr.spawn_with_stdin(&run_args(rt, c2.id(), true, &[], &["wc", "-l"]));
        bg2.write_stdin(b"a\nb\n");
        ctr.wait_status(c2.id(), "RUNNING", Duration::from_secs(20));
        thread::sleep(Duration::from_millis(300));
        bg2.close_stdin();
        let out2 = bg2.wait(Duration::from_secs(30));
        assert_eq!(out2.code(), 0, "{}", out2.describe());
        (out.code(), out.stdout, out2.stdout.trim_start().to_string())
    });
}

/// `ctr task exec`: output, exit code, --user, --cwd, and an exec of a
/// missing binary failing.
#[test]
fn exec() {
    #[derive(Debug, Clone, PartialEq)]
    struct Obs {
        out: (i32, String, String),
        user: (i32, String),
        cwd: (i32, String),
        missing_fails: bool,
        missing_mentions_name: bool,
        init_still_running: bool,
    }
    let obs = both("ctr task exec", |rt| {
        let ctr = Ctr::new();
        let c = Container::new("exec", rt);
        ctr.run_detached(rt, c.id(), &[], &["sleep", "60"]);
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        let a = ctr.run(&[
            "task",
            "exec",
            "--exec-id",
            "e1",
            c.id(),
            "sh",
            "-c",
            "echo exo; echo exe >&2; exit 4",
        ]);
        let u = ctr.run(&["task", "exec", "--exec-id", "e2", "--user", "1000:1000", c.id(), "id"]);
        let w = ctr.run(&["task", "exec", "--exec-id", "e3", "--cwd", "/etc", c.id(), "pwd"]);
        let m = ctr.run(&["task", "exec", "--exec-id", "e4", c.id(), "/bin/no-such-binary-zt"]);
        let running = ctr.task(c.id()).map(|t| t.status) == Some("RUNNING".to_string());
        Obs {
            out: (a.code(), a.stdout, a.stderr),
            user: (u.code(), u.stdout),
            cwd: (w.code(), w.stdout),
            missing_fails: !m.success() && !m.timed_out,
            missing_mentions_name: m.stderr.contains("no-such-binary-zt"),
            init_still_running: running,
        }
    });
    assert_eq!(obs.out, (4, "exo\n".to_string(), "exe\n".to_string()));
    assert_eq!(
        obs.user,
        (0, "uid=1000(user) gid=1000(user) groups=1000(user)\n".to_string())
    );
    assert_eq!(obs.cwd, (0, "/etc\n".to_string()));
    assert!(
        obs.missing_fails && obs.missing_mentions_name && obs.init_still_running,
        "{obs:?}"
    );
}

/// `ctr task exec -t`: the exec'd process gets a pty of its own (stdin,
/// stdout and stderr) with ctr's terminal size (ResizePty of an exec), its
/// output and exit code come through, and the init keeps running.
#[test]
fn exec_tty() {
    let expected = (
        5,
        "size=22 61\n/dev/pts/0\nall-tty\nto-err\n".to_string(),
        "RUNNING".to_string(),
    );
    both_expect("ctr task exec -t", expected, |rt| {
        let ctr = Ctr::new();
        let c = Container::new("exec-tty", rt);
        ctr.run_detached(rt, c.id(), &[], &["sleep", "60"]);
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        let script = format!(
            "{WAIT_SIZE}; w \"\"; tty; test -t 0 && test -t 1 && test -t 2 && echo all-tty; echo to-err >&2; exit 5"
        );
        let out = run_cmd(
            ctr.tty_command(
                "stty rows 22 cols 61",
                &["task", "exec", "-t", "--exec-id", "t1", c.id(), "sh", "-c", &script],
            ),
            Duration::from_secs(60),
        );
        let status = ctr.task(c.id()).map(|t| t.status).unwrap_or_default();
        (out.code(), normalize_tty(&out.stdout), status)
    });
}

/// CloseIO of an exec: data piped into `ctr task exec` reaches the process'
/// stdin, and ctr's EOF closes it (`cat` ends).  ctr only closes the stdin
/// once the exec exists (see `stdin_piped`), so EOF comes after "ready".
#[test]
fn exec_stdin_close() {
    let expected = (0, "ready\nhello\nworld\neof-seen\n".to_string(), "RUNNING".to_string());
    both_expect("exec stdin + CloseIO", expected, |rt| {
        let ctr = Ctr::new();
        let c = Container::new("exec-stdin", rt);
        ctr.run_detached(rt, c.id(), &[], &["sleep", "60"]);
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        let mut bg = ctr.spawn_with_stdin(&[
            "task",
            "exec",
            "--exec-id",
            "in1",
            c.id(),
            "sh",
            "-c",
            "echo ready; cat; echo eof-seen",
        ]);
        bg.write_stdin(b"hello\n");
        assert!(
            bg.wait_for_stdout("ready", Duration::from_secs(20)),
            "exec never ready: {:?}",
            bg.stderr_so_far()
        );
        thread::sleep(Duration::from_millis(300));
        bg.write_stdin(b"world\n");
        bg.close_stdin();
        let out = bg.wait(Duration::from_secs(30));
        let status = ctr.task(c.id()).map(|t| t.status).unwrap_or_default();
        (out.code(), out.stdout, status)
    });
}

/// Several execs at once in one container.
#[test]
fn exec_concurrent() {
    let expected: Vec<(i32, String)> = (0..5).map(|i| (i, format!("exec-{i}\n"))).collect();
    both_expect("5 concurrent execs", expected, |rt| {
        let ctr = Ctr::new();
        let c = Container::new("execs", rt);
        ctr.run_detached(rt, c.id(), &[], &["sleep", "60"]);
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        let bgs: Vec<_> = (0..5)
            .map(|i| {
                let script = format!("sleep 0.2; echo exec-{i}; exit {i}");
                ctr.spawn(&[
                    "task",
                    "exec",
                    "--exec-id",
                    &format!("x{i}"),
                    c.id(),
                    "sh",
                    "-c",
                    &script,
                ])
            })
            .collect();
        bgs.into_iter()
            .map(|b| {
                let o = b.wait(Duration::from_secs(60));
                (o.code(), o.stdout)
            })
            .collect::<Vec<_>>()
    });
}

/// Container processes (init and exec) start with no signal blocked and none
/// ignored, whatever the runtime's own processes do with their signals.
#[test]
fn signal_dispositions() {
    let clean = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n".to_string();
    both_expect("signal mask and ignored signals", (clean.clone(), clean), |rt| {
        let ctr = Ctr::new();
        let c = Container::new("sigmask", rt);
        let show = ["sh", "-c", "grep -E '^Sig(Blk|Ign):' /proc/self/status; sleep 60"];
        let mut bg = ctr.spawn(&run_args(rt, c.id(), true, &[], &show));
        assert!(
            bg.wait_for_stdout("SigIgn", Duration::from_secs(20)),
            "init printed nothing: {:?}",
            bg.stderr_so_far()
        );
        let exec = ctr.run(&[
            "task",
            "exec",
            "--exec-id",
            "sig",
            c.id(),
            "grep",
            "-E",
            "^Sig(Blk|Ign):",
            "/proc/self/status",
        ]);
        exec.assert_success();
        (bg.stdout_so_far(), exec.stdout)
    });
}

/// `ctr task kill -s SIGUSR1` reaches a handler in the init process.
#[test]
fn kill_sigusr1() {
    both_expect("SIGUSR1", (10, true), |rt| {
        let ctr = Ctr::new();
        let c = Container::new("usr1", rt);
        let script = "trap 'echo got-usr1; exit 10' USR1; echo ready; while :; do sleep 0.1; done";
        let mut bg = ctr.spawn(&run_args(rt, c.id(), true, &[], &["sh", "-c", script]));
        assert!(
            bg.wait_for_stdout("ready", Duration::from_secs(20)),
            "never ready: {:?}",
            bg.stderr_so_far()
        );
        ctr.run(&["task", "kill", "-s", "SIGUSR1", c.id()]).assert_success();
        let out = bg.wait(Duration::from_secs(30));
        (out.code(), out.stdout.contains("got-usr1"))
    });
}

/// `ctr task kill -s SIGKILL` on a detached task: STOPPED, exit status 137.
#[test]
fn kill_sigkill_detached() {
    let _ = both_expect("SIGKILL detached", ("STOPPED".to_string(), Ok(137)), |rt| {
        let ctr = Ctr::new();
        let c = Container::new("kill-d", rt);
        ctr.run_detached(rt, c.id(), &[], &["sleep", "60"]);
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        ctr.run(&["task", "kill", "-s", "SIGKILL", c.id()]).assert_success();
        let t = ctr.wait_status(c.id(), "STOPPED", Duration::from_secs(20));
        (t.status, ctr.delete_task_exit_status(c.id()))
    });
}

/// `ctr task kill -a` signals every process of the container.
#[test]
fn kill_all() {
    let _ = both_expect("kill --all", ("STOPPED".to_string(), Ok(137)), |rt| {
        let ctr = Ctr::new();
        let c = Container::new("kill-a", rt);
        ctr.run_detached(rt, c.id(), &[], &["sh", "-c", "sleep 60 & sleep 61 & wait"]);
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        ctr.run(&["task", "kill", "-a", "-s", "SIGKILL", c.id()])
            .assert_success();
        let t = ctr.wait_status(c.id(), "STOPPED", Duration::from_secs(20));
        (t.status, ctr.delete_task_exit_status(c.id()))
    });
}

/// pause / resume show in `ctr task ls`, and a paused task does not run.
#[test]
fn pause_resume() {
    let expected = (
        vec!["RUNNING".to_string(), "PAUSED".to_string(), "RUNNING".to_string()],
        true,
        true,
    );
    both_expect("pause/resume", expected, |rt| {
        let ctr = Ctr::new();
        let c = Container::new("pause", rt);
        // The task counts up in a file; while paused the count must not move.
        ctr.run_detached(
            rt,
            c.id(),
            &[],
            &[
                "sh",
                "-c",
                "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done",
            ],
        );
        let mut states = vec![ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20)).status];
        thread::sleep(Duration::from_millis(300));
        ctr.run(&["task", "pause", c.id()]).assert_success();
        states.push(ctr.task(c.id()).expect("task").status);
        let pid = ctr.task_pid(c.id());
        let read = || std::fs::read_to_string(format!("/proc/{pid}/root/tmp/n")).unwrap_or_default();
        let before = read();
        thread::sleep(Duration::from_millis(500));
        let frozen = read() == before;
        ctr.run(&["task", "resume", c.id()]).assert_success();
        states.push(ctr.task(c.id()).expect("task").status);
        thread::sleep(Duration::from_millis(500));
        let moving = read() != before;
        (states, frozen, moving)
    });
}

/// `ctr task ps` lists the init pid (and the children).
#[test]
fn task_ps() {
    both_expect("ctr task ps", (0, true, 3), |rt| {
        let ctr = Ctr::new();
        let c = Container::new("ps", rt);
        ctr.run_detached(rt, c.id(), &[], &["sh", "-c", "sleep 60 & sleep 61 & wait"]);
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        thread::sleep(Duration::from_millis(300));
        let pid = ctr.task_pid(c.id());
        let out = ctr.run(&["task", "ps", c.id()]);
        let pids: Vec<u32> = out
            .stdout
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        (out.code(), pids.contains(&pid), pids.len())
    });
}

/// `ctr task metrics` works and reports memory usage.
#[test]
fn task_metrics() {
    both_expect("ctr task metrics", (0, true, true), |rt| {
        let ctr = Ctr::new();
        let c = Container::new("metrics", rt);
        ctr.run_detached(rt, c.id(), &[], &["sleep", "60"]);
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        let out = ctr.run(&["task", "metrics", c.id()]);
        let usage = out
            .stdout
            .lines()
            .find(|l| l.starts_with("memory.usage_in_bytes") || l.starts_with("memory.usage "))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok());
        (
            out.code(),
            usage.is_some_and(|u| u > 0),
            out.stdout.contains("pids.current"),
        )
    });
}

/// The task's file `v1` of cgroup v1 controller `controller`, or `v2` on
/// cgroup v2 (the cgroup ctr asks for: `/<namespace>/<id>`), trimmed.
fn task_cgroup_file(id: &str, controller: &str, v1: &str, v2: &str) -> String {
    let ns = &env().namespace;
    let base = std::path::Path::new("/sys/fs/cgroup");
    let path = if base.join("cgroup.controllers").exists() {
        base.join(ns).join(id).join(v2)
    } else {
        base.join(controller).join(ns).join(id).join(v1)
    };
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()))
}

/// The shim's ttrpc address and task service for the task in bundle
/// `bundle_of`: containerd 2.x records them in `bootstrap.json` (runc-v2 2.x
/// serves task API v3 there), 1.x shims write a bare `address` (task API v2).
fn shim_endpoint(bundle_of: &str) -> Result<(String, &'static str), String> {
    let dir = bundle_dir(bundle_of);
    if let Ok(text) = std::fs::read_to_string(dir.join("bootstrap.json")) {
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("bootstrap.json of {bundle_of}: {e}: {text}"))?;
        let address = v["address"].as_str().unwrap_or_default().to_string();
        let service = if v["version"].as_i64() == Some(3) {
            "containerd.task.v3.Task"
        } else {
            "containerd.task.v2.Task"
        };
        return Ok((address, service));
    }
    let address = std::fs::read_to_string(dir.join("address"))
        .map_err(|e| format!("read the shim address of {bundle_of}: {e}"))?;
    Ok((address.trim().to_string(), "containerd.task.v2.Task"))
}

/// containerd's `Tasks.Update` for task `id`: ctr 1.6 has no `task update`,
/// so this sends what containerd sends to the shim (`UpdateTaskRequest`, the
/// OCI `LinuxResources` as JSON in an `Any`) over ttrpc to the task's shim
/// ([`shim_endpoint`]), with the namespace in the ttrpc metadata.
fn shim_update(bundle_of: &str, id: &str, resources: &serde_json::Value) -> Result<(), String> {
    use containerd_shim_protos::protobuf::Message as _;
    use containerd_shim_protos::{api, protobuf, ttrpc, Client};
    let (address, service) = shim_endpoint(bundle_of)?;
    let client = Client::connect(&address).map_err(|e| format!("connect to {address}: {e}"))?;
    let mut ctx = ttrpc::context::with_duration(Duration::from_secs(20));
    ctx.add("containerd-namespace-ttrpc".to_string(), env().namespace.clone());
    let any = protobuf::well_known_types::any::Any {
        type_url: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".to_string(),
        value: serde_json::to_vec(resources).expect("serialize resources"),
        ..Default::default()
    };
    let req = api::UpdateTaskRequest {
        id: id.to_string(),
        resources: protobuf::MessageField::some(any),
        ..Default::default()
    };
    let mut creq = ttrpc::Request::new();
    creq.set_service(service.to_string());
    creq.set_method("Update".to_string());
    creq.set_timeout_nano(ctx.timeout_nano);
    creq.set_metadata(ttrpc::context::to_pb(ctx.metadata));
    creq.payload = req.write_to_bytes().expect("encode UpdateTaskRequest");
    client.request(creq).map(|_| ()).map_err(|e| match e {
        // The ttrpc status code first: "NOT_FOUND: <message>".
        ttrpc::Error::RpcStatus(s) => format!("{:?}: {}", s.code(), s.message),
        e => format!("update {id}: {e}"),
    })
}

/// Update of a running task's resources (what `ctr task update
/// --memory-limit` does in later ctr versions): the new memory limit and
/// CPU quota land in the task's cgroup, the task keeps running, and an
/// Update for an unknown task id fails with NOT_FOUND.
#[test]
fn update_resources() {
    #[derive(Debug, Clone, PartialEq)]
    struct Obs {
        memory_before: String,
        update: Result<(), String>,
        memory_after: String,
        cpu_after: (String, String),
        status: String,
        /// ttrpc status code of an Update for an unknown task id.
        unknown_id_code: String,
    }
    let obs = both("Update (resources)", |rt| {
        let ctr = Ctr::new();
        let c = Container::new("update", rt);
        ctr.run_detached(rt, c.id(), &["--memory-limit", "100000000"], &["sleep", "60"]);
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        let memory = || task_cgroup_file(c.id(), "memory", "memory.limit_in_bytes", "memory.max");
        let memory_before = memory();
        let update = shim_update(
            c.id(),
            c.id(),
            &serde_json::json!({
                "memory": { "limit": 67108864 },
                "cpu": { "quota": 20000, "period": 100000 },
            }),
        );
        let cpu_after = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            let max = task_cgroup_file(c.id(), "cpu", "", "cpu.max");
            let mut f = max.split_whitespace().map(str::to_string);
            (f.next().unwrap_or_default(), f.next().unwrap_or_default())
        } else {
            (
                task_cgroup_file(c.id(), "cpu", "cpu.cfs_quota_us", ""),
                task_cgroup_file(c.id(), "cpu", "cpu.cfs_period_us", ""),
            )
        };
        let unknown = shim_update(
            c.id(),
            "zt-no-such-task",
            &serde_json::json!({ "memory": { "limit": 67108864 } }),
        );
        eprintln!("{rt:?}: update of an unknown task: {unknown:?}");
        Obs {
            memory_before,
            update,
            memory_after: memory(),
            cpu_after,
            status: ctr.task(c.id()).map(|t| t.status).unwrap_or_default(),
            unknown_id_code: match unknown {
                Ok(()) => "Ok".to_string(),
                Err(e) => e.split(':').next().unwrap_or_default().to_string(),
            },
        }
    });
    assert_eq!(obs.update, Ok(()), "{obs:?}");
    assert_eq!(obs.memory_after, "67108864", "{obs:?}");
    assert_eq!(obs.cpu_after, ("20000".to_string(), "100000".to_string()), "{obs:?}");
    assert_eq!(obs.status, "RUNNING", "{obs:?}");
    assert_eq!(obs.unknown_id_code, "NOT_FOUND", "{obs:?}");
}

/// `--read-only` rootfs.
#[test]
fn read_only_rootfs() {
    both_expect("--read-only", (1, true, 0), |rt| {
        let ctr = Ctr::new();
        let c = Container::new("ro", rt);
        let out = ctr.run_rm(rt, c.id(), &["--read-only"], &["touch", "/x"]);
        let c2 = Container::new("rw", rt);
        let rw = ctr.run_rm(rt, c2.id(), &[], &["touch", "/x"]);
        (out.code(), out.stderr.contains("Read-only file system"), rw.code())
    });
}

/// `--memory-limit` with a memory hog: 137 and a /tasks/oom event.
#[test]
fn memory_limit_oom() {
    both_expect("OOM", (137, true, Some(137)), |rt| {
        let events = Events::start();
        let c = Container::new("oom", rt);
        let out = Ctr::new().run_rm(
            rt,
            c.id(),
            &["--memory-limit", "20000000"],
            &["sh", "-c", "x=0123456789; while :; do x=$x$x; done"],
        );
        let oom = events.wait_for(c.id(), "/tasks/oom", Duration::from_secs(10)).is_some();
        (out.code(), oom, events.exit_status(c.id(), Duration::from_secs(10)))
    });
}

/// `--net-host` joins the host's network namespace (the one this test and
/// its containerd run in); the default gets a namespace of its own with only
/// `lo`. Namespaces are compared by identity (`readlink /proc/self/ns/net`),
/// not by the host's interface list, which other runtimes on the node change
/// at any time (veths of their containers).
#[test]
fn network_host_and_private() {
    let host_ns = ns_link("self", "net");
    let lo: BTreeSet<String> = ["lo".to_string()].into();
    // First line: the container's network namespace; then its /proc/net/dev.
    let script = &["sh", "-c", "readlink /proc/self/ns/net && cat /proc/net/dev"];
    let split = |out: &str| {
        let (ns, dev) = out.split_once('\n').unwrap_or((out, ""));
        (ns.trim().to_string(), net_dev_interfaces(dev))
    };
    both_expect("--net-host", (0, true, 0, true, lo.clone()), |rt| {
        let ctr = Ctr::new();
        let c = Container::new("nethost", rt);
        let a = ctr.run_rm(rt, c.id(), &["--net-host"], script);
        let c2 = Container::new("netpriv", rt);
        let b = ctr.run_rm(rt, c2.id(), &[], script);
        let (a_ns, _) = split(&a.stdout);
        let (b_ns, b_ifaces) = split(&b.stdout);
        if a_ns != host_ns || b_ns == host_ns || b_ns.is_empty() {
            eprintln!("--- --net-host: host {host_ns}, --net-host container {a_ns:?}, private container {b_ns:?}");
        }
        (
            a.code(),
            a_ns == host_ns,
            b.code(),
            b_ns != host_ns && b_ns.starts_with("net:["),
            b_ifaces,
        )
    });
}

/// `--with-ns network:<path>` joins that network namespace.
#[test]
fn with_ns_network() {
    both_expect("--with-ns network", (0, true), |rt| {
        let host = HostProcess::sleeper();
        let expected = ns_link(&host.pid().to_string(), "net");
        let c = Container::new("withns", rt);
        let out = Ctr::new().run_rm(
            rt,
            c.id(),
            &["--with-ns", &format!("network:{}", host.ns_path("net"))],
            &["readlink", "/proc/self/ns/net"],
        );
        (out.code(), out.stdout.trim() == expected)
    });
}

/// Hostname and basic namespace isolation (own pid namespace: init is pid 1).
#[test]
fn namespaces_basics() {
    both_expect("pid 1 and mounts", (0, "1\n".to_string()), |rt| {
        let c = Container::new("pid1", rt);
        let out = Ctr::new().run_rm(rt, c.id(), &[], &["sh", "-c", "echo $$"]);
        (out.code(), out.stdout)
    });
}

/// The process runs in the cgroup ctr asked for (`/<namespace>/<id>`), seen
/// from the node in `/proc/<pid>/cgroup` (the memory hierarchy's line on v1,
/// the unified `0::` line on v2), and sees inside what runc shows.
#[test]
fn cgroup_placement() {
    let v2 = cgroup_v2();
    // Inside, as runc shows it: the namespace's root `/` when the spec asks
    // for a cgroup namespace, else the full path (ctr 1.6's default spec has
    // none, on v1 and v2).
    let inside_want = |id: &str| {
        let spec: serde_json::Value = std::fs::read_to_string(bundle_dir(id).join("config.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let cgroupns = spec["linux"]["namespaces"]
            .as_array()
            .is_some_and(|ns| ns.iter().any(|n| n["type"] == "cgroup"));
        if cgroupns {
            "/".to_string()
        } else {
            format!("/{}/{id}", env().namespace)
        }
    };
    // The path of the memory hierarchy's line (v1) or the unified one (v2)
    // of a /proc/<pid>/cgroup text.
    let path_in = move |text: &str| {
        text.lines()
            .map(|l| l.splitn(3, ':').collect::<Vec<_>>())
            .find(|f| {
                f.len() == 3
                    && if v2 {
                        f[0] == "0" && f[1].is_empty()
                    } else {
                        f[1].split(',').any(|c| c == "memory")
                    }
            })
            .map(|f| f[2].to_string())
            .unwrap_or_else(|| format!("<no {} line in {text:?}>", if v2 { "0::" } else { "memory" }))
    };
    both_expect("cgroup", (true, true), |rt| {
        let ctr = Ctr::new();
        let c = Container::new("cg", rt);
        ctr.run_detached(rt, c.id(), &[], &["sleep", "60"]);
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        // From the node: the task is in /<namespace>/<id>.
        let pid = ctr.task_pid(c.id());
        let host = path_in(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default());
        let exec = ctr.run(&["task", "exec", "--exec-id", "cg", c.id(), "cat", "/proc/self/cgroup"]);
        let inside = path_in(&exec.stdout);
        let want = inside_want(c.id());
        eprintln!("{rt:?}: from the node {host}, inside {inside} (runc shows {want})");
        (host == format!("/{}/{}", env().namespace, c.id()), inside == want)
    });
}

/// After `ctr run --rm` nothing is left for the container.
#[test]
fn no_leftovers_after_rm() {
    both_expect("leftovers after run --rm", (0, true), |rt| {
        let c = Container::new("clean", rt);
        let out = Ctr::new().run_rm(rt, c.id(), &[], &["true"]);
        assert_no_leftovers(c.id());
        (out.code(), true)
    });
}

/// The leftover detectors really see a live container (so that "no
/// leftovers" elsewhere means something), and see nothing once it is gone.
#[test]
fn leftover_detectors_see_a_live_container() {
    both_expect("leftover detectors", (true, true, true, true, true), |rt| {
        let ctr = Ctr::new();
        let c = Container::new("detect", rt);
        ctr.run_detached(rt, c.id(), &[], &["sleep", "60"]);
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        let l = leftovers(c.id());
        eprintln!("{rt:?} live container: {l:#?}");
        let seen = (
            !l.mounts.is_empty(),
            !l.cgroups.is_empty(),
            !l.fifos_and_sockets.is_empty(),
            !l.state_dirs.is_empty(),
        );
        let id = c.id().to_string();
        drop(c);
        assert_no_leftovers(&id);
        (seen.0, seen.1, seen.2, seen.3, true)
    });
}

/// Regression (defect: `lo` stayed down in a new network namespace under
/// zygote; runc brings it up): in the default private network namespace
/// `lo` has IFF_UP (bit 0x1 of `/sys/class/net/lo/flags`), `ping 127.0.0.1`
/// answers, and a TCP listener inside the container accepts a connection to
/// 127.0.0.1 made from inside.  busybox `nc` (no `-s`) listens on every
/// address of the namespace, which here is only lo's; `-e echo` makes it
/// answer a fixed line, so the client's output proves the connection.
#[test]
fn loopback_up_in_new_network_namespace() {
    #[derive(Debug, Clone, PartialEq)]
    struct Obs {
        code: i32,
        lo_flags: String,
        lo_up: bool,
        ping: String,
        tcp_reply: String,
    }
    // The client retries (up to 50 x 0.1 s) until the listener is there.
    let script = r#"echo "flags=$(cat /sys/class/net/lo/flags)"
if ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1; then echo ping=ok; else echo ping=failed; fi
nc -l -p 7777 -e echo from-listener & l=$!
i=0; r=
while [ $i -lt 50 ]; do r=$(nc 127.0.0.1 7777 </dev/null 2>/dev/null); [ -n "$r" ] && break; sleep 0.1; i=$((i+1)); done
echo "tcp=$r"
kill $l 2>/dev/null; wait $l 2>/dev/null; exit 0"#;
    let obs = both("lo up in a new network namespace", |rt| {
        let c = Container::new("loopback", rt);
        let out = Ctr::new().run_rm(rt, c.id(), &[], &["sh", "-c", script]);
        eprintln!("{}", out.describe());
        let field = |name: &str| {
            out.stdout
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or("<missing>")
                .trim()
                .to_string()
        };
        let lo_flags = field("flags=");
        let lo_up = u32::from_str_radix(lo_flags.trim_start_matches("0x"), 16).is_ok_and(|f| f & 0x1 != 0);
        Obs {
            code: out.code(),
            lo_up,
            lo_flags,
            ping: field("ping="),
            tcp_reply: field("tcp="),
        }
    });
    assert_eq!(obs.code, 0, "{obs:?}");
    assert!(obs.lo_up, "lo is not up (IFF_UP 0x1 missing): {obs:?}");
    assert_eq!(obs.ping, "ok", "{obs:?}");
    assert_eq!(obs.tcp_reply, "from-listener", "{obs:?}");
}

/// The mount options of `mount_point` in a mountinfo text (the last, i.e.
/// topmost, mount there), restricted to `ro`, `nosuid`, `nodev`, `noexec`.
fn security_mount_flags(mountinfo: &str, mount_point: &str) -> Vec<String> {
    let opts = mountinfo.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 5 && f[4] == mount_point).then(|| f[5].to_string())
    });
    let Some(opts) = opts else {
        return vec![format!("<no mount at {mount_point}>")];
    };
    let opts: Vec<&str> = opts.split(',').collect();
    ["ro", "nosuid", "nodev", "noexec"]
        .iter()
        .filter(|f| opts.contains(f))
        .map(|f| f.to_string())
        .collect()
}

/// Regression (defects: hardening differences from runc under zygote):
/// * the read-only paths `/proc/bus`, `/proc/fs`, `/proc/irq`, `/proc/sys`
///   lost procfs' `nosuid,nodev,noexec` when remounted read-only (runc keeps
///   them): each must be `ro,nosuid,nodev,noexec`;
/// * the container's `oom_score_adj` was containerd's (0) instead of what
///   runc-v2 gives (the shim's: containerd's + 1, inherited);
/// * on this cgroup v1 hybrid host the container was not placed in the
///   unified (cgroup2, `/sys/fs/cgroup/unified`) hierarchy: the `0::` line of
///   `/proc/self/cgroup` must show the container's cgroup `/<namespace>/<id>`.
#[test]
fn hardening_parity_with_runc() {
    #[derive(Debug, Clone, PartialEq)]
    struct Obs {
        code: i32,
        proc_mount_flags: Vec<(String, Vec<String>)>,
        oom_score_adj: String,
        unified_line: String,
    }
    let containerd_pid =
        std::fs::read_to_string(env().containerd_dir.join("containerd.pid")).expect("read containerd.pid");
    let containerd_adj: i32 = std::fs::read_to_string(format!("/proc/{}/oom_score_adj", containerd_pid.trim()))
        .expect("read containerd's oom_score_adj")
        .trim()
        .parse()
        .expect("containerd's oom_score_adj is a number");
    let paths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"];
    let hardened: Vec<String> = ["ro", "nosuid", "nodev", "noexec"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let expected = Obs {
        code: 0,
        proc_mount_flags: paths.iter().map(|p| (p.to_string(), hardened.clone())).collect(),
        oom_score_adj: (containerd_adj + 1).min(1000).to_string(),
        unified_line: format!("0::/{}/<id>", env().namespace),
    };
    both_expect("read-only /proc paths, oom_score_adj, unified cgroup", expected, |rt| {
        let c = Container::new("hardening", rt);
        let out = Ctr::new().run_rm(
            rt,
            c.id(),
            &[],
            &[
                "sh",
                "-c",
                "cat /proc/self/mountinfo; echo '--- oom'; cat /proc/self/oom_score_adj; echo '--- cgroup'; cat /proc/self/cgroup",
            ],
        );
        eprintln!("{}", out.describe());
        let (mountinfo, rest) = out.stdout.split_once("--- oom\n").unwrap_or((&out.stdout, ""));
        let (oom, cgroup) = rest.split_once("--- cgroup\n").unwrap_or((rest, ""));
        Obs {
            code: out.code(),
            proc_mount_flags: paths
                .iter()
                .map(|p| (p.to_string(), security_mount_flags(mountinfo, p)))
                .collect(),
            oom_score_adj: oom.trim().to_string(),
            unified_line: cgroup
                .lines()
                .find(|l| l.starts_with("0::"))
                .unwrap_or("<no 0:: line>")
                .replace(c.id(), "<id>"),
        }
    });
}

/// Regression (defect: zygote's Delete killed every process in the task's
/// cgroup, so deleting a container that shared its cgroup with another one
/// killed the other one too).  Container B is given container A's cgroup
/// (`--cgroup /<namespace>/<A>`, ctr's default for A); B is SIGKILLed and
/// deleted: A must still run with the same live pid.  Then A is killed and
/// deleted, and nothing is left for either.
#[test]
fn delete_kills_only_the_tasks_own_processes() {
    #[derive(Debug, Clone, PartialEq)]
    struct Obs {
        /// A's and B's init pids both listed in A's cgroup.
        sharing_a_cgroup: bool,
        b_status_after_kill: String,
        b_delete: Result<i32, String>,
        /// A's status after B's delete.
        a_status: String,
        a_same_pid: bool,
        a_alive: bool,
        a_delete: Result<i32, String>,
    }
    let expected = Obs {
        sharing_a_cgroup: true,
        b_status_after_kill: "STOPPED".to_string(),
        b_delete: Ok(137),
        a_status: "RUNNING".to_string(),
        a_same_pid: true,
        a_alive: true,
        a_delete: Ok(137),
    };
    both_expect("Delete of a task sharing a cgroup", expected, |rt| {
        let ctr = Ctr::new();
        // Dropped in reverse order: B first, then A.
        let a = Container::new("shared-cg-a", rt);
        let b = Container::new("shared-cg-b", rt);
        ctr.run_detached(rt, a.id(), &[], &["sleep", "600"]);
        let a_pid = ctr.wait_status(a.id(), "RUNNING", Duration::from_secs(20)).pid;
        let a_cgroup = format!("/{}/{}", env().namespace, a.id());
        ctr.run_detached(rt, b.id(), &["--cgroup", &a_cgroup], &["sleep", "600"]);
        let b_pid = ctr.wait_status(b.id(), "RUNNING", Duration::from_secs(20)).pid;
        let procs = task_cgroup_file(a.id(), "memory", "cgroup.procs", "cgroup.procs");
        eprintln!("{rt:?}: A pid {a_pid}, B pid {b_pid}, A's cgroup.procs: {procs:?}");
        let listed: Vec<u32> = procs.lines().filter_map(|l| l.trim().parse().ok()).collect();
        let sharing_a_cgroup = listed.contains(&a_pid) && listed.contains(&b_pid);

        ctr.run(&["task", "kill", "-s", "SIGKILL", b.id()]).assert_success();
        let b_status_after_kill = ctr.wait_status(b.id(), "STOPPED", Duration::from_secs(20)).status;
        let b_delete = ctr.delete_task_exit_status(b.id());
        ctr.run(&["container", "delete", b.id()]).assert_success();
        // Let anything asynchronous Delete might have set off happen.
        thread::sleep(Duration::from_millis(500));
        let a_now = ctr.task(a.id());
        eprintln!(
            "{rt:?}: A after B's delete: {a_now:?}, pid {a_pid} alive: {}",
            proc_alive(a_pid)
        );
        let a_status = a_now
            .as_ref()
            .map(|t| t.status.clone())
            .unwrap_or_else(|| "<gone>".into());
        let a_same_pid = a_now.as_ref().is_some_and(|t| t.pid == a_pid);
        let a_alive = proc_alive(a_pid);
        assert_no_leftovers(b.id());

        // (Fails harmlessly when A is already dead: the observation above
        // already says so.)
        let kill_a = ctr.run(&["task", "kill", "-s", "SIGKILL", a.id()]);
        if !kill_a.success() {
            eprintln!("{rt:?}: kill of A failed:\n{}", kill_a.describe());
        }
        ctr.wait_status(a.id(), "STOPPED", Duration::from_secs(20));
        let a_delete = ctr.delete_task_exit_status(a.id());
        ctr.run(&["container", "delete", a.id()]).assert_success();
        assert_no_leftovers(a.id());
        assert_no_leftovers(b.id());
        Obs {
            sharing_a_cgroup,
            b_status_after_kill,
            b_delete,
            a_status,
            a_same_pid,
            a_alive,
            a_delete,
        }
    });
}

/// A task with a CRI-style id (64 hex digits) and an exec with a 64-digit
/// exec id, under the suite's deep state dir (hack/test.sh: the daemon's
/// socket at the 107-byte limit). Regression: the monitor's socket,
/// `<state>/<16 hex>/tasks/<id>/monitor.sock`, was bound by its path and
/// every such Create failed with ENAMETOOLONG (every CRI pod, under the
/// default `/run/zygote`).
#[test]
fn cri_length_ids() {
    let obs = both("64-hex-digit ids", |rt| {
        let ctr = Ctr::new();
        // Hex only, like a CRI id; unique per runtime and process.
        let base = unique_id("cri-length", rt);
        let hex: String = base
            .bytes()
            .flat_map(|b| [b >> 4, b & 0xf])
            .map(|n| char::from_digit(u32::from(n), 16).expect("nibble"))
            .take(ID_LEN)
            .collect();
        let c = Container::with_id(hex, rt);
        assert_eq!(c.id().len(), 64);
        let first = ctr.run_rm(rt, c.id(), &[], &["sh", "-c", "echo ran"]);
        ctr.run_detached(rt, c.id(), &[], &["sleep", "60"]);
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(20));
        let exec_id: String = c.id().chars().rev().collect();
        let e = ctr.run(&[
            "task",
            "exec",
            "--exec-id",
            &exec_id,
            c.id(),
            "sh",
            "-c",
            "echo exec; exit 7",
        ]);
        ctr.cleanup(c.id());
        assert_no_leftovers(c.id());
        ((first.code(), first.stdout), (e.code(), e.stdout))
    });
    assert_eq!(obs, ((0, "ran\n".to_string()), (7, "exec\n".to_string())));
}

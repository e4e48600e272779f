//! Many containers at once.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use zygote_integration_tests::*;

/// 20 `ctr run --rm` at the same time: all exit 0 with their own output, and
/// nothing is left behind.
#[test]
fn twenty_at_once() {
    const N: usize = 20;
    let expected: Vec<(i32, String)> = (0..N).map(|i| (0, format!("hello-{i}\n"))).collect();
    both_expect("20 concurrent ctr run --rm", expected, |rt| {
        let ctr = Ctr::new().with_timeout(Duration::from_secs(120));
        let containers: Vec<Container> = (0..N).map(|_| Container::new("many", rt)).collect();
        let results: Vec<(i32, String)> = thread::scope(|s| {
            let handles: Vec<_> = containers
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let ctr = ctr.clone();
                    s.spawn(move || {
                        let out = ctr.run_rm(rt, c.id(), &[], &["sh", "-c", &format!("echo hello-{i}")]);
                        if !out.success() {
                            eprintln!("container {i} failed:\n{}", out.describe());
                        }
                        (out.code.unwrap_or(-1), out.stdout)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        for c in &containers {
            assert_no_leftovers(c.id());
        }
        results
    });
}

/// 10 detached containers running at once, each exec'd into, then all killed.
#[test]
fn ten_detached_with_exec() {
    const N: usize = 10;
    let expected: Vec<(i32, String, Result<i32, String>)> = (0..N).map(|i| (0, format!("in-{i}\n"), Ok(137))).collect();
    let _ = both_expect("10 detached + exec + kill", expected, |rt| {
        let ctr = Ctr::new().with_timeout(Duration::from_secs(120));
        let containers: Vec<Container> = (0..N).map(|_| Container::new("det", rt)).collect();
        for c in &containers {
            ctr.run_detached(rt, c.id(), &[], &["sleep", "120"]);
        }
        let mut out = Vec::new();
        for (i, c) in containers.iter().enumerate() {
            ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(30));
            let e = ctr.run(&[
                "task",
                "exec",
                "--exec-id",
                "e",
                c.id(),
                "sh",
                "-c",
                &format!("echo in-{i}"),
            ]);
            out.push((e.code.unwrap_or(-1), e.stdout));
        }
        for c in &containers {
            ctr.run(&["task", "kill", "-s", "SIGKILL", c.id()]).assert_success();
        }
        let mut res = Vec::new();
        for (c, (code, stdout)) in containers.iter().zip(out) {
            ctr.wait_status(c.id(), "STOPPED", Duration::from_secs(30));
            res.push((code, stdout, ctr.delete_task_exit_status(c.id())));
        }
        res
    });
}

/// Tasks of [`no_output_lost_eight_at_a_time`] per case.
const QUICK_RUNS: usize = 240;
/// A run that has not ended after this long is diagnosed as hung.
const HANG_AFTER: Duration = Duration::from_secs(40);
/// `ctr run --rm` in flight at once.
const QUICK_WORKERS: usize = 8;

/// What one case of [`no_output_lost_eight_at_a_time`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quick {
    /// busybox `sh -c 'echo out-<n>; echo err-<n> >&2'`: exit 0.
    Native,
    /// The Wasm image, alternately `hello.wasm` (its entrypoint: exit 0,
    /// "hello from wasm" on stdout) and `/exit5.wasm` (exit 5, "exiting
    /// with 5" on stderr); `true`: with the `wasm` profile's annotation,
    /// `false`: the default profile (detected by the module's header).
    Wasm(bool),
}

/// Runs task `n` of a case as `id`; returns `None` when ctr saw exactly the
/// expected exit status, stdout and stderr, else what it saw.
fn quick_run(rt: Runtime, kind: Quick, n: usize, id: &str) -> Option<String> {
    let (args, expected) = match kind {
        Quick::Native => {
            let script = format!("echo out-{n}; echo err-{n} >&2");
            let args = run_args(rt, id, true, &[], &["sh", "-c", &script]);
            (args, (0, format!("out-{n}\n"), format!("err-{n}\n")))
        }
        Quick::Wasm(profile) => {
            let extra: &[&str] = if profile {
                &["--annotation", "zygote.dev/profile=wasm"]
            } else {
                &[]
            };
            if n.is_multiple_of(2) {
                let args = wasm_run_args(id, true, extra, &[]);
                (args, (0, "hello from wasm\n".to_string(), String::new()))
            } else {
                let args = wasm_run_args(id, true, extra, &["/exit5.wasm"]);
                (args, (5, String::new(), "exiting with 5\n".to_string()))
            }
        }
    };
    // A run still going after HANG_AFTER is diagnosed while it hangs (once
    // ctr is killed, containerd cancels and cleans up what would explain
    // it), then killed at CTR_TIMEOUT.
    let mut ctr = Ctr::new().spawn(&args);
    let diagnosis = if ctr.exited_within(HANG_AFTER) {
        String::new()
    } else {
        diagnose_task(id)
    };
    // (`wait` counts its timeout from the spawn.)
    let out = ctr.wait(CTR_TIMEOUT);
    let code = if out.timed_out { None } else { out.code };
    if code == Some(expected.0) && out.stdout == expected.1 && out.stderr == expected.2 {
        return None;
    }
    // Whatever went wrong, leave nothing behind for the next runs.
    Ctr::new().cleanup(id);
    Some(format!(
        "expected exit {} stdout {:?} stderr {:?}, got:\n{}\n{diagnosis}",
        expected.0,
        expected.1,
        expected.2,
        out.describe()
    ))
}

/// No task output is lost under concurrency: many short tasks that print a
/// known line and exit at once, `ctr run --rm` 8 at a time, every one seen
/// by ctr with exactly its exit status, stdout and stderr. Cases: busybox
/// (stdout and stderr) under runc-v2 (the reference) and zygote, and Wasm
/// under zygote (`hello.wasm` and `exit5.wasm`, with the default profile
/// and with the `wasm` one; runc cannot run Wasm), 240 runs each, all cases
/// interleaved in one queue.
///
/// Regression: zygote released the process before containerd's reader had
/// opened the output FIFO, and ctr cancels its pending open when the task
/// exits, so about 1 Wasm run in 100 reported exit 0 with an empty stdout.
/// ctr keeps a smaller window of its own (its open has returned but its
/// goroutine has not yet taken note when it cancels; seen with ctr 1.6 and
/// 2.1): on a loaded node runc-v2 loses output that way now and then
/// (about 1 run in 400 here), so it is the reference, reported and not
/// asserted. zygote closes that window too (an exit is reported only once
/// its output has been read, and a reader that has the FIFO open but is
/// starved of CPU is waited for up to 5 s) and must lose nothing. The report of runs and losses per case is always
/// printed, pass or fail; a case excluded by `ZYGOTE_TEST_RUNTIMES` is
/// reported SKIPPED.
#[test]
fn no_output_lost_eight_at_a_time() {
    const TEST: &str = "no_output_lost_eight_at_a_time";
    let all = [
        ("runc-v2 busybox", Runtime::Runc, Quick::Native),
        ("zygote busybox", Runtime::Zygote, Quick::Native),
        ("zygote wasm, default profile", Runtime::Zygote, Quick::Wasm(false)),
        ("zygote wasm, wasm profile", Runtime::Zygote, Quick::Wasm(true)),
    ];
    let mut skipped = Vec::new();
    let mut cases = Vec::new();
    for (name, rt, kind) in all {
        if require_runtime(rt, &format!("{TEST} [{name}]")) {
            cases.push((name, rt, kind));
        } else {
            skipped.push(name);
        }
    }
    assert!(
        !cases.is_empty(),
        "{TEST}: ZYGOTE_TEST_RUNTIMES selects no runtime: nothing would be tested"
    );
    // Interleaved: every case runs under the same load.
    let jobs: Vec<(usize, usize)> = (0..QUICK_RUNS)
        .flat_map(|n| (0..cases.len()).map(move |c| (c, n)))
        .collect();
    let next = AtomicUsize::new(0);
    let t0 = Instant::now();
    let done: Vec<(usize, usize, String, Option<String>)> = thread::scope(|s| {
        let workers: Vec<_> = (0..QUICK_WORKERS)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let j = next.fetch_add(1, Ordering::SeqCst);
                        let Some(&(c, n)) = jobs.get(j) else {
                            return mine;
                        };
                        let (_, rt, kind) = cases[c];
                        let id = unique_id("no_output_lost", rt);
                        let loss = quick_run(rt, kind, n, &id);
                        mine.push((c, n, id, loss));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("worker")).collect()
    });
    let took = t0.elapsed();

    let mut report = format!("{TEST}: {} runs, {QUICK_WORKERS} at a time, in {took:?}\n", done.len());
    let mut total_losses = 0;
    for (c, (name, _, _)) in cases.iter().enumerate() {
        let runs = done.iter().filter(|d| d.0 == c).count();
        let losses: Vec<&(usize, usize, String, Option<String>)> =
            done.iter().filter(|d| d.0 == c && d.3.is_some()).collect();
        total_losses += losses.len();
        report += &format!("  {name:<30} runs {runs:>4}  losses {:>3}\n", losses.len());
        for (_, n, id, loss) in losses.iter().take(5) {
            report += &format!("    run {n} ({id}): {}\n", loss.as_deref().unwrap_or(""));
        }
    }
    let reference_losses = done
        .iter()
        .filter(|d| cases[d.0].1 == Runtime::Runc && d.3.is_some())
        .count();
    if reference_losses > 0 {
        report += "  runc-v2 lost output: ctr's own race (seen with ctr 1.6 and 2.1), which zygote closes\n";
    }
    let zygote_losses = total_losses - reference_losses;
    for name in &skipped {
        report += &format!("  {name:<30} SKIPPED (excluded by ZYGOTE_TEST_RUNTIMES)\n");
    }
    // Straight to stderr, not `eprintln!`: libtest captures that for a
    // passing test, and these numbers belong in the log either way.
    let _ = writeln!(std::io::stderr(), "{report}");
    assert_eq!(done.len(), jobs.len(), "every job ran:\n{report}");
    // runc-v2 is the reference, reported but not asserted: under ctr 1.6 it
    // loses output now and then on a loaded node. zygote may not: it holds
    // an exit back until the output has been read.
    assert_eq!(zygote_losses, 0, "zygote lost output:\n{report}");

    // A sample of each case: the first, every 60th and the last.
    for (_, n, id, _) in &done {
        if n % 60 == 0 || *n == QUICK_RUNS - 1 {
            assert_no_leftovers(id);
        }
    }
}

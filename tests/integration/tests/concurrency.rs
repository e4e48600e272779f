//! Many containers at once.

use std::thread;
use std::time::Duration;

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
                        let out =
                            ctr.run_rm(rt, c.id(), &[], &["sh", "-c", &format!("echo hello-{i}")]);
                        if !out.success() {
                            eprintln!("container {i} failed:\n{}", out.describe());
                        }
                        (out.code.unwrap_or(-1), out.stdout)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
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
    let expected: Vec<(i32, String, Result<i32, String>)> =
        (0..N).map(|i| (0, format!("in-{i}\n"), Ok(137))).collect();
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
            ctr.run(&["task", "kill", "-s", "SIGKILL", c.id()])
                .assert_success();
        }
        let mut res = Vec::new();
        for (c, (code, stdout)) in containers.iter().zip(out) {
            ctr.wait_status(c.id(), "STOPPED", Duration::from_secs(30));
            res.push((code, stdout, ctr.delete_task_exit_status(c.id())));
        }
        res
    });
}

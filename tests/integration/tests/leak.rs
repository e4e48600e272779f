//! Leak test: many create/start/delete cycles (`ctr run --rm`) must not grow
//! the zygote daemon (threads, fds, RSS) nor the node (mounts, cgroups, shim
//! processes, FIFO dirs).
//!
//! `ZYGOTE_TEST_LEAK_CYCLES` overrides the number of cycles (default 200).
//! The node-level checks run for runc as well: that validates the test.

use std::thread;
use std::time::{Duration, Instant};

use zygote_integration_tests::*;

const WARMUP: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    mounts: usize,
    cgroups: usize,
    shims: usize,
    fifos: usize,
}

fn node(rt: Runtime) -> Node {
    let exe = match rt {
        Runtime::Runc => "containerd-shim-runc",
        Runtime::Zygote => "containerd-shim-zygote",
    };
    Node {
        mounts: mount_count(),
        cgroups: cgroup_count(),
        shims: count_processes(exe, &env().address),
        fifos: test_fifo_count(),
    }
}

/// Sum over the live daemons (normally exactly one).
fn daemon_stats() -> Option<ProcStats> {
    let daemons = zygote_daemons();
    if daemons.is_empty() {
        return None;
    }
    let mut total = ProcStats {
        threads: 0,
        fds: 0,
        rss_kib: 0,
    };
    for (_, pid) in daemons {
        let s = proc_stats(pid)?;
        total.threads += s.threads;
        total.fds += s.fds;
        total.rss_kib += s.rss_kib;
    }
    Some(total)
}

fn cycle(ctr: &Ctr, rt: Runtime, i: usize) {
    let c = Container::new("leak", rt);
    let out = ctr.run_rm(rt, c.id(), &[], &["true"]);
    assert!(out.success(), "cycle {i} failed:\n{}", out.describe());
}

fn check(rt: Runtime, cycles: usize) -> Result<String, String> {
    let ctr = Ctr::new();
    for i in 0..WARMUP {
        cycle(&ctr, rt, i);
    }
    thread::sleep(Duration::from_secs(1));
    let node0 = node(rt);
    let d0 = if rt == Runtime::Zygote {
        Some(daemon_stats().ok_or("no live zygote daemon (no */daemon.pid) after warm-up")?)
    } else {
        None
    };
    let t0 = Instant::now();
    for i in 0..cycles {
        cycle(&ctr, rt, i);
    }
    let elapsed = t0.elapsed();

    // Let asynchronous teardown (shim exit, daemon bookkeeping) settle.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (node1, d1) = loop {
        let n = node(rt);
        let d = if rt == Runtime::Zygote { daemon_stats() } else { None };
        let settled = n == node0
            && match (d0, d) {
                (Some(a), Some(b)) => b.fds <= a.fds + 2 && b.threads <= a.threads + 2,
                _ => true,
            };
        if settled || Instant::now() > deadline {
            break (n, d);
        }
        thread::sleep(Duration::from_millis(250));
    };

    let mut problems = Vec::new();
    if node1.mounts != node0.mounts {
        problems.push(format!("mounts {} -> {}", node0.mounts, node1.mounts));
    }
    if node1.cgroups != node0.cgroups {
        problems.push(format!("cgroup dirs {} -> {}", node0.cgroups, node1.cgroups));
    }
    if node1.shims > node0.shims {
        problems.push(format!("shim processes {} -> {}", node0.shims, node1.shims));
    }
    if node1.fifos > node0.fifos {
        problems.push(format!(
            "test FIFOs in /run/containerd/fifo {} -> {}",
            node0.fifos, node1.fifos
        ));
    }
    if let Some(a) = d0 {
        match d1 {
            None => problems.push("zygote daemon gone after the cycles".to_string()),
            Some(b) => {
                if b.fds > a.fds + 2 {
                    problems.push(format!("daemon fds {} -> {}", a.fds, b.fds));
                }
                if b.threads > a.threads + 2 {
                    problems.push(format!("daemon threads {} -> {}", a.threads, b.threads));
                }
                if b.rss_kib > a.rss_kib + 10 * 1024 {
                    problems.push(format!("daemon RSS {} KiB -> {} KiB", a.rss_kib, b.rss_kib));
                }
            }
        }
    }
    let summary = format!(
        "{} cycles in {:.1}s ({:.0} ms/cycle); node {node0:?} -> {node1:?}; daemon {d0:?} -> {d1:?}",
        cycles,
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / cycles as f64
    );
    eprintln!("{}: {summary}", rt.short());
    if problems.is_empty() {
        Ok(summary)
    } else {
        Err(format!("{}; {summary}", problems.join(", ")))
    }
}

#[test]
fn leak_create_delete_cycles() {
    let _g = exclusive();
    let cycles: usize = std::env::var("ZYGOTE_TEST_LEAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let results = run_each("leak", |rt| check(rt, cycles));
    let mut failed = Vec::new();
    for (rt, r) in &results {
        match r {
            Ok(Ok(s)) => eprintln!("{}: ok: {s}", rt.short()),
            Ok(Err(e)) => failed.push(format!("{}: leak: {e}", rt.short())),
            Err(p) => failed.push(format!("{}: failed: {p}", rt.short())),
        }
    }
    assert!(failed.is_empty(), "leak test:\n{}", failed.join("\n"));
}

//! `bench`: zygote vs runc-v2 through a real containerd, interleaved.
//!
//! ```text
//! bench --address <containerd.sock> --image <ref> --state-dir <ZYGOTE_STATE_DIR> [-n 30] [--tasks 10]
//!       [--burst 50] [--wasm-image <ref> --wasm-cache <dir>]      (flags: clap, `bench --help`)
//! bench --address <containerd.sock> --image <ref> --state-dir <dir> -n 15 --scrape-metrics 127.0.0.1:9464
//! ```
//! With `--scrape-metrics` only the scrape comparison runs ([`scrape`]):
//! warm runs scraped every second vs not scraped, interleaved.
//!
//! Prints, for `ctr run --rm <image> /bin/true`: medians, p90 and p99 for
//! runc-v2, runc-v2 driving crun (`--runc-binary`), zygote warm and zygote
//! cold (runs alternate so all see the same machine noise; cold = profile
//! `cold` of hack/bench/zygote.toml, pool disabled) and the ratios, each next
//! to containerd's own floor measured in the same rounds ([`floor`]: a
//! container created and removed without a task); the daemon's own Create→exec figures, warm and cold
//! (from its timings.jsonl); a burst of `--burst` (50) concurrent runs, p50
//! and p99, runc-v2 vs zygote; zygote creation time and PSS per warm zygote;
//! the daemon's idle RSS and the memory each running task costs (daemon
//! growth plus the task's monitor PSS), next to runc-v2's shim PSS.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;

mod pool;
mod scrape;
mod wasm;

const RUNC: &str = "io.containerd.runc.v2";
const ZYGOTE: &str = "io.containerd.zygote.v1";
/// Flags that send a zygote task down the cold path (hack/bench/zygote.toml).
const COLD: &[&str] = &["--annotation", "zygote.dev/profile=cold"];
/// runc-v2 driving crun instead of runc.
const CRUN: &[&str] = &["--runc-binary", "/usr/bin/crun"];

/// zygote vs runc-v2 through a real containerd, interleaved (run by hack/demo.sh).
#[derive(Parser, Debug)]
#[command(name = "bench")]
pub struct Args {
    /// containerd's socket (`ctr --address`).
    #[arg(long, value_name = "SOCK")]
    pub address: String,
    /// The busybox image to run `/bin/true` from.
    #[arg(long, value_name = "REF")]
    pub image: String,
    /// The zygote daemon's state root (`ZYGOTE_STATE_DIR`).
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    /// Runs per runtime, interleaved.
    #[arg(short = 'n', default_value_t = 30, value_name = "N")]
    n: usize,
    /// Running tasks per runtime for the memory figures.
    #[arg(long, default_value_t = 10, value_name = "K")]
    tasks: usize,
    /// Concurrent runs in the burst.
    #[arg(long, default_value_t = 50, value_name = "N")]
    burst: usize,
    /// The Wasm image (with `--wasm-cache`: also bench Wasm tasks).
    #[arg(long, value_name = "REF", requires = "wasm_cache")]
    wasm_image: Option<String>,
    /// The daemon's compiled-module cache (`ZYGOTE_WASM_CACHE_DIR`).
    #[arg(long, value_name = "DIR", requires = "wasm_image")]
    wasm_cache: Option<PathBuf>,
    /// The daemon's metrics address (`[metrics] listen`): measure only the
    /// warm path scraped every second vs not scraped, interleaved.
    #[arg(long, value_name = "ADDR")]
    scrape_metrics: Option<String>,
}

pub fn ctr(a: &Args, args: &[&str]) -> Result<std::process::Output> {
    let out = Command::new("ctr")
        .arg("--address")
        .arg(&a.address)
        .args(args)
        .output()
        .context("run ctr")?;
    Ok(out)
}

pub fn run_true(a: &Args, runtime: &str, id: &str) -> Result<f64> {
    run_true_with(a, runtime, id, &[])
}

fn run_true_with(a: &Args, runtime: &str, id: &str, extra: &[&str]) -> Result<f64> {
    let t = Instant::now();
    let mut args = vec!["run", "--rm", "--runtime", runtime];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[&a.image, id, "/bin/true"]);
    let out = ctr(a, &args)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if !out.status.success() {
        bail!("{runtime} run {id} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(ms)
}

/// containerd's own floor for one `ctr run --rm`: what it costs without any
/// runtime. `ctr container create` (snapshot prepared, container record) and
/// `ctr container delete` (record and snapshot removed), minus one `ctr
/// version` (the second ctr process's exec and connection, which `ctr run
/// --rm` pays once).
fn floor(a: &Args, id: &str) -> Result<f64> {
    let t = Instant::now();
    let out = ctr(a, &["container", "create", &a.image, id, "/bin/true"])?;
    if !out.status.success() {
        bail!("container create {id}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = ctr(a, &["container", "delete", id])?;
    if !out.status.success() {
        bail!("container delete {id}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let both = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let out = ctr(a, &["version"])?;
    if !out.status.success() {
        bail!("ctr version: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(both - t.elapsed().as_secs_f64() * 1e3)
}

pub fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    v[(((v.len() - 1) as f64) * p).round() as usize]
}

fn daemon_dir(state: &Path) -> Result<PathBuf> {
    for e in std::fs::read_dir(state).with_context(|| format!("read {}", state.display()))? {
        let p = e?.path();
        if p.join("daemon.pid").exists() {
            return Ok(p);
        }
    }
    bail!("no running zygote daemon under {}", state.display())
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    field_kib(&s, key)
}

pub fn pss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    field_kib(&s, "Pss:")
}

fn field_kib(s: &str, key: &str) -> u64 {
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Pids whose cmdline contains all of `needles`.
pub fn pids_matching(needles: &[&str]) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if needles.iter().all(|n| cmd.contains(n)) {
            out.push(pid);
        }
    }
    out
}

pub fn timings(dir: &Path, prefix: &str) -> Vec<(f64, f64, f64)> {
    let s = std::fs::read_to_string(dir.join("timings.jsonl")).unwrap_or_default();
    s.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["id"].as_str().is_some_and(|id| id.starts_with(prefix)))
        .map(|v| {
            let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN) / 1000.0;
            (f("create_to_ready_us"), f("start_to_exec_us"), f("create_to_exec_us"))
        })
        .collect()
}

fn memory(a: &Args, dir: &Path) -> Result<()> {
    let dpid: u32 = std::fs::read_to_string(dir.join("daemon.pid"))?.trim().parse()?;
    let idle = status_kib(dpid, "VmRSS:");
    let idle_pss = pss_kib(dpid);
    let tag = format!("bm{}", std::process::id());
    for rt in [ZYGOTE, RUNC] {
        for i in 0..a.tasks {
            let id = format!("{tag}-{}-{i}", if rt == RUNC { "r" } else { "z" });
            let out = ctr(a, &["run", "-d", "--runtime", rt, &a.image, &id, "sleep", "600"])?;
            if !out.status.success() {
                bail!("start {id}: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let busy = status_kib(dpid, "VmRSS:");
    // Cold tasks have a `__monitor`; warm ones are served by their claimed
    // `__zygote`, whose child (the container) left the zygote's mount ns.
    let own = dir.to_string_lossy().into_owned();
    let mnt = |p: u32| std::fs::read_link(format!("/proc/{p}/ns/mnt")).ok();
    let claimed = pids_matching(&["__zygote", &own]).into_iter().filter(|z| {
        let kids = std::fs::read_to_string(format!("/proc/{z}/task/{z}/children")).unwrap_or_default();
        kids.split_whitespace()
            .filter_map(|k| k.parse::<u32>().ok())
            .any(|k| mnt(k) != mnt(*z))
    });
    let monitors: u64 = pids_matching(&["__monitor", &tag])
        .into_iter()
        .chain(claimed)
        .map(pss_kib)
        .sum();
    let shims: u64 = pids_matching(&["containerd-shim-runc-v2", &tag])
        .iter()
        .map(|p| pss_kib(*p))
        .sum();
    println!("\nmemory (KiB):");
    println!("  zygote daemon idle: RSS {idle}, PSS {idle_pss}");
    println!(
        "  zygote per running task: daemon RSS growth {:.0} + monitor PSS {:.0} = {:.0}",
        busy.saturating_sub(idle) as f64 / a.tasks as f64,
        monitors as f64 / a.tasks as f64,
        (busy.saturating_sub(idle) + monitors) as f64 / a.tasks as f64
    );
    println!(
        "  runc-v2 per running task: shim PSS {:.0}",
        shims as f64 / a.tasks as f64
    );
    for rt in ["r", "z"] {
        for i in 0..a.tasks {
            let id = format!("{tag}-{rt}-{i}");
            let _ = ctr(a, &["task", "kill", "-s", "KILL", &id]);
        }
    }
    for rt in ["r", "z"] {
        for i in 0..a.tasks {
            let id = format!("{tag}-{rt}-{i}");
            // `task delete` fails until the kill has landed: retry briefly.
            for _ in 0..50 {
                if ctr(a, &["task", "delete", &id])?.status.success() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let _ = ctr(a, &["container", "delete", &id]);
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let a = Args::parse();
    let tag = format!("b{}", std::process::id());
    // Warm-up: daemon start, page cache, snapshotter.
    run_true(&a, ZYGOTE, &format!("{tag}-wz"))?;
    run_true(&a, RUNC, &format!("{tag}-wr"))?;
    run_true_with(&a, ZYGOTE, &format!("{tag}-wc"), COLD)?;
    if let Some(addr) = &a.scrape_metrics {
        return scrape::run(&a, addr, &daemon_dir(&a.state_dir)?, &tag);
    }
    // crun refuses some hosts (1.8 on a cgroup v1 host whose unified
    // hierarchy has controllers: "cgroups in hybrid mode not supported"):
    // then it is left out, with crun's reason.
    let crun = match run_true_with(&a, RUNC, &format!("{tag}-wu"), CRUN) {
        Ok(_) => true,
        Err(e) => {
            println!("runc-v2 + crun: not measured: {}", e.to_string().trim());
            false
        }
    };
    floor(&a, &format!("{tag}-wf"))?;
    let (mut z, mut r, mut c, mut u, mut f) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..a.n {
        f.push(floor(&a, &format!("{tag}-f{i}"))?);
        r.push(run_true(&a, RUNC, &format!("{tag}-r{i}"))?);
        if crun {
            u.push(run_true_with(&a, RUNC, &format!("{tag}-u{i}"), CRUN)?);
        }
        z.push(run_true(&a, ZYGOTE, &format!("{tag}-z{i}"))?);
        c.push(run_true_with(&a, ZYGOTE, &format!("{tag}-c{i}"), COLD)?);
    }
    let fm = pct(&mut f, 0.5);
    println!("ctr run --rm {} /bin/true, {} runs each, interleaved:", a.image, a.n);
    println!(
        "  containerd floor : median {fm:7.1} ms   p99 {:7.1} ms   (container create + delete, no task; see `floor`)",
        pct(&mut f, 0.99)
    );
    let rows = [
        ("runc-v2         ", &mut r),
        ("runc-v2 + crun  ", &mut u),
        ("zygote warm     ", &mut z),
        ("zygote cold     ", &mut c),
    ];
    let mut medians = Vec::new();
    for (label, v) in rows {
        let m = pct(v, 0.5);
        medians.push(m);
        if v.is_empty() {
            continue;
        }
        println!(
            "  {label} : median {m:7.1} ms   p90 {:7.1} ms   p99 {:7.1} ms   above floor {:7.1} ms",
            pct(v, 0.9),
            pct(v, 0.99),
            m - fm
        );
    }
    let [rm, um, zm, cm] = [medians[0], medians[1], medians[2], medians[3]];
    println!(
        "  ratio (median) runc/zygote warm {:.2}x, runc/zygote cold {:.2}x, above floor runc/zygote warm {:.2}x",
        rm / zm,
        rm / cm,
        (rm - fm) / (zm - fm)
    );
    if crun {
        println!(
            "  ratio (median) crun/zygote warm {:.2}x, above floor {:.2}x",
            um / zm,
            (um - fm) / (zm - fm)
        );
    }
    let dir = daemon_dir(&a.state_dir)?;
    for (label, prefix) in [("warm", format!("{tag}-z")), ("cold", format!("{tag}-c"))] {
        let t = timings(&dir, &prefix);
        if t.is_empty() {
            continue;
        }
        let mut cr: Vec<f64> = t.iter().map(|x| x.0).collect();
        let mut s: Vec<f64> = t.iter().map(|x| x.1).collect();
        let mut e: Vec<f64> = t.iter().map(|x| x.2).collect();
        println!("shim-level, {label} (daemon timestamps, {} tasks):", t.len());
        println!(
            "  Create received -> container ready at exec barrier: median {:.2} ms",
            pct(&mut cr, 0.5)
        );
        println!(
            "  Start received -> user process exec'd:             median {:.2} ms",
            pct(&mut s, 0.5)
        );
        println!("  Create received -> user process exec'd:            median {:.2} ms (includes containerd's gap between Create and Start)", pct(&mut e, 0.5));
    }
    println!("burst of {} concurrent ctr run --rm /bin/true:", a.burst);
    let rb = pool::burst(&a, RUNC, &format!("{tag}-br"), a.burst, &[]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let zb = pool::burst(&a, ZYGOTE, &format!("{tag}-bz"), a.burst, &[]);
    pool::print_burst("runc-v2", rb, a.burst);
    pool::print_burst("zygote", zb, a.burst);
    pool::zygote_figures(&dir, "default")?;
    memory(&a, &dir)?;
    if let (Some(image), Some(cache)) = (&a.wasm_image, &a.wasm_cache) {
        wasm::run(&a, &dir, image, cache)?;
    }
    Ok(())
}

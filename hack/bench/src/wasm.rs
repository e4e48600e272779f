//! The Wasm part of the benchmark, interleaved with runc-v2 in the same
//! run: `ctr run --rm` of the hello module (profile `wasm`, warm pool) vs
//! runc-v2 busybox `/bin/true`; shim-level spawn from the daemon's
//! timestamps; the first run of a module (compile) vs a cached run; PSS per
//! warm Wasm zygote.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};

use crate::{ctr, pct, pool, run_true, timings, Args, RUNC, ZYGOTE};

const PROFILE: &[&str] = &["--annotation", "zygote.dev/profile=wasm"];

fn run_wasm(a: &Args, image: &str, id: &str, module: &str) -> Result<f64> {
    let t = Instant::now();
    let mut args = vec!["run", "--rm", "--runtime", ZYGOTE];
    args.extend_from_slice(PROFILE);
    args.extend_from_slice(&[image, id, module]);
    let out = ctr(a, &args)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if !out.status.success() {
        bail!("wasm run {id} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(ms)
}

fn line(dir: &Path, id: &str) -> serde_json::Value {
    let s = std::fs::read_to_string(dir.join("timings.jsonl")).unwrap_or_default();
    s.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["id"] == id)
        .unwrap_or_default()
}

/// sha256 of the image's hello module, read back from a finished task line.
fn hello_digest(dir: &Path, id: &str) -> String {
    line(dir, id)["wasm"]["digest"].as_str().unwrap_or_default().to_string()
}

pub fn run(a: &Args, dir: &Path, image: &str, cache: &Path) -> Result<()> {
    let tag = format!("bw{}", std::process::id());
    run_wasm(a, image, &format!("{tag}-warmup"), "/hello.wasm")?;
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (mut w, mut r) = (Vec::new(), Vec::new());
    for i in 0..a.n {
        r.push(run_true(a, RUNC, &format!("{tag}-r{i}"))?);
        w.push(run_wasm(a, image, &format!("{tag}-w{i}"), "/hello.wasm")?);
    }
    let (rm, wm) = (pct(&mut r, 0.5), pct(&mut w, 0.5));
    println!("\nWasm: ctr run --rm {image} (hello.wasm, profile wasm) vs runc-v2 busybox /bin/true, {} runs each, interleaved:", a.n);
    println!(
        "  runc-v2 busybox : median {rm:7.1} ms   p90 {:7.1} ms",
        pct(&mut r, 0.9)
    );
    println!(
        "  zygote wasm     : median {wm:7.1} ms   p90 {:7.1} ms",
        pct(&mut w, 0.9)
    );
    println!("  ratio runc/zygote wasm (median): {:.2}x", rm / wm);
    let t = timings(dir, &format!("{tag}-w"));
    let mut cr: Vec<f64> = t.iter().map(|x| x.0).collect();
    let mut st: Vec<f64> = t.iter().map(|x| x.1).collect();
    println!("shim-level wasm spawn (daemon timestamps, {} tasks):", t.len());
    println!(
        "  Create received -> instance ready at the barrier:  median {:.2} ms",
        pct(&mut cr, 0.5)
    );
    println!(
        "  Start received -> _start entered:                  median {:.2} ms",
        pct(&mut st, 0.5)
    );
    println!(
        "  sum (Create->ready + Start->_start, without ctr's gap): median {:.2} ms",
        pct(&mut cr, 0.5) + pct(&mut st, 0.5)
    );
    // First run (compile) vs cached: remove the module's entry, run twice.
    let digest = hello_digest(dir, &format!("{tag}-w0"));
    let (mut first, mut cached, mut compile) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..5 {
        for e in std::fs::read_dir(cache)?.flatten() {
            if !digest.is_empty() && e.file_name().to_string_lossy().starts_with(&digest) {
                std::fs::remove_file(e.path())?;
            }
        }
        for (kind, v) in [("f", &mut first), ("h", &mut cached)] {
            let id = format!("{tag}-{kind}{i}");
            run_wasm(a, image, &id, "/hello.wasm")?;
            let l = line(dir, &id);
            v.push(l["create_to_ready_us"].as_f64().unwrap_or(f64::NAN) / 1000.0);
            if kind == "f" {
                compile.push(l["wasm"]["compile_us"].as_f64().unwrap_or(f64::NAN) / 1000.0);
            }
        }
    }
    println!("first run (entry removed: compile) vs cached, Create -> ready, 5 each:");
    println!(
        "  first: median {:.2} ms (of which compiling: {:.2} ms)   cached: median {:.2} ms",
        pct(&mut first, 0.5),
        pct(&mut compile, 0.5),
        pct(&mut cached, 0.5)
    );
    pool::zygote_figures(dir, "wasm")
}

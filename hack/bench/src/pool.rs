//! The warm-pool figures: the burst of concurrent `ctr run --rm`, the
//! pool's own counters (zygote creation time), and PSS per warm zygote.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;

use crate::{pct, pids_matching, pss_kib, Args};

/// Runs `n` `ctr run --rm /bin/true` at once with `extra` flags; returns
/// each run's latency in ms (failed runs are reported and left out).
pub fn burst(a: &Args, runtime: &str, tag: &str, n: usize, extra: &[&str]) -> Vec<f64> {
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (addr, image, rt) = (a.address.clone(), a.image.clone(), runtime.to_string());
            let id = format!("{tag}-{i}");
            let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            std::thread::spawn(move || {
                let t = Instant::now();
                let out = std::process::Command::new("ctr")
                    .args(["--address", &addr, "run", "--rm", "--runtime", &rt])
                    .args(&extra)
                    .args([&image, &id, "/bin/true"])
                    .output();
                match out {
                    Ok(o) if o.status.success() => Some(t.elapsed().as_secs_f64() * 1e3),
                    Ok(o) => {
                        eprintln!("burst {id}: {}", String::from_utf8_lossy(&o.stderr).trim());
                        None
                    }
                    Err(e) => {
                        eprintln!("burst {id}: {e}");
                        None
                    }
                }
            })
        })
        .collect();
    handles.into_iter().filter_map(|h| h.join().ok().flatten()).collect()
}

pub fn print_burst(label: &str, mut v: Vec<f64>, n: usize) {
    println!(
        "  {label:8}: {}/{n} ok, p50 {:7.1} ms   p99 {:7.1} ms",
        v.len(),
        pct(&mut v, 0.5),
        pct(&mut v, 0.99)
    );
}

/// Pool counters of `profile` and PSS of its idle zygotes (each one: the
/// zygote process plus its waiting child).
pub fn zygote_figures(dir: &Path, profile: &str) -> Result<()> {
    let stats: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("pools.json"))?)?;
    let d = &stats["profiles"][profile];
    println!("\nwarm pool (profile {profile}): {d}");
    println!(
        "  zygote creation (spawn to waiting, median of last 64): {:.1} ms",
        d["creation_us_p50"].as_f64().unwrap_or(f64::NAN) / 1000.0
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    let own = dir.to_string_lossy().into_owned();
    let zygotes = pids_matching(&["__zygote", &own, &format!("\"profile\":\"{profile}\"")]);
    let mut total = 0u64;
    let mut count = 0u64;
    for z in &zygotes {
        let children: Vec<u32> = std::fs::read_to_string(format!("/proc/{z}/task/{z}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        // A claimed zygote is a task's monitor now; only idle ones count (an
        // idle child still shares its zygote's mount namespace).
        let mnt = |p: u32| std::fs::read_link(format!("/proc/{p}/ns/mnt")).ok();
        if children.len() == 1 && mnt(*z).is_some() && mnt(*z) == mnt(children[0]) {
            total += pss_kib(*z) + pss_kib(children[0]);
            count += 1;
        }
    }
    if count > 0 {
        println!(
            "  PSS per warm zygote (zygote process + waiting child, {count} idle): {:.0} KiB",
            total as f64 / count as f64
        );
    }
    Ok(())
}

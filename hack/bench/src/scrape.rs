//! `--scrape-metrics ADDR`: what a Prometheus scrape every second costs the
//! warm path. Warm runs alternate between "scraped" (a thread GETs
//! `http://ADDR/metrics` every second while they run) and "quiet" (no
//! scraping), so both halves see the same machine noise; medians and p99 of
//! both, the difference, from the client (`ctr run --rm`) and from the
//! daemon's own Create→exec timestamps.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::{pct, run_true, timings, Args, ZYGOTE};

/// One GET /metrics; its body's size.
fn scrape(addr: &str) -> Result<usize> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut body = Vec::new();
    s.read_to_end(&mut body)?;
    if !body.starts_with(b"HTTP/1.0 200") && !body.starts_with(b"HTTP/1.1 200") {
        bail!(
            "GET http://{addr}/metrics: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
    }
    Ok(body.len())
}

fn row(label: &str, v: &mut [f64]) -> (f64, f64) {
    let (m, p99) = (pct(v, 0.5), pct(v, 0.99));
    println!("  {label}: median {m:7.2} ms   p99 {p99:7.2} ms   ({} runs)", v.len());
    (m, p99)
}

pub fn run(a: &Args, addr: &str, dir: &Path, tag: &str) -> Result<()> {
    let bytes = scrape(addr)?;
    let on = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let scrapes = Arc::new(AtomicU64::new(0));
    let scraper = {
        let (on, stop, scrapes, addr) = (on.clone(), stop.clone(), scrapes.clone(), addr.to_string());
        std::thread::spawn(move || {
            let mut next = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                if on.load(Ordering::SeqCst) && Instant::now() >= next {
                    next = Instant::now() + Duration::from_secs(1);
                    if scrape(&addr).is_ok() {
                        scrapes.fetch_add(1, Ordering::SeqCst);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let (mut scraped, mut quiet) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for i in 0..a.n {
        // Alternate which half goes first, so neither always follows the other.
        for half in if i % 2 == 0 { [true, false] } else { [false, true] } {
            on.store(half, Ordering::SeqCst);
            let id = format!("{tag}-{}{i}", if half { "m" } else { "q" });
            let ms = run_true(a, ZYGOTE, &id)?;
            if half {
                scraped.push(ms);
            } else {
                quiet.push(ms);
            }
        }
    }
    on.store(false, Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let _ = scraper.join();
    let n = scrapes.load(Ordering::SeqCst);
    let scraped_secs = scraped.iter().sum::<f64>() / 1e3;
    println!(
        "metrics scrape cost, warm ctr run --rm /bin/true, {} runs each, interleaved ({:.0} s; {n} scrapes of {bytes} bytes during {scraped_secs:.1} s of scraped runs):",
        a.n,
        started.elapsed().as_secs_f64()
    );
    let (sm, sp) = row("scraped every 1 s", &mut scraped);
    let (qm, qp) = row("not scraped      ", &mut quiet);
    println!(
        "  difference: median {:+.2} ms ({:+.1}%), p99 {:+.2} ms",
        sm - qm,
        (sm - qm) / qm * 100.0,
        sp - qp
    );
    let daemon = |p: &str| -> Vec<f64> { timings(dir, &format!("{tag}-{p}")).iter().map(|t| t.2).collect() };
    let (mut ds, mut dq) = (daemon("m"), daemon("q"));
    if !ds.is_empty() && !dq.is_empty() {
        println!("  daemon Create received -> exec'd (timings.jsonl):");
        let (sm, _) = row("scraped every 1 s", &mut ds);
        let (qm, _) = row("not scraped      ", &mut dq);
        println!(
            "  difference: median {:+.2} ms ({:+.1}%)",
            sm - qm,
            (sm - qm) / qm * 100.0
        );
    }
    Ok(())
}

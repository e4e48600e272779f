//! The series read at scrape time: pool gauges and counters (from the
//! pools' own counters, the ones `pools.json` has), the PSS of idle
//! zygotes (`/proc/<pid>/smaps_rollup`), running tasks by mode and the Wasm
//! artifact cache's counters. Runs on a blocking thread (it reads /proc);
//! built fresh on every scrape, so a profile that goes away (reload) stops
//! being reported.

use std::collections::BTreeMap;

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use zygote_contract::state::Status;

use crate::daemon::Daemon;

fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid gauge definition")
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter definition")
}

/// Sets a counter built at scrape time to a total kept elsewhere.
fn set_counter(c: &IntCounterVec, labels: &[&str], total: u64) {
    c.with_label_values(labels).inc_by(total);
}

/// Everything the daemon knows now, as metric families.
pub(crate) fn scrape(daemon: &Daemon) -> Vec<MetricFamily> {
    let mut out = Vec::new();
    pools(daemon, &mut out);
    super::pressure::collect(daemon, &mut out);
    tasks(daemon, &mut out);
    wasm_cache(daemon, &mut out);
    out
}

fn pools(daemon: &Daemon, out: &mut Vec<MetricFamily>) {
    let idle = gauge(
        "zygote_pool_idle",
        "Warm zygotes waiting in the pool now.",
        &["profile"],
    );
    let target = gauge("zygote_pool_target", "The pool's current target size.", &["profile"]);
    let spawning = gauge("zygote_pool_spawning", "Zygotes being created now.", &["profile"]);
    let pss = gauge(
        "zygote_pool_idle_pss_bytes",
        "Proportional set size of the pool's idle zygotes (each zygote and its child), read at scrape.",
        &["profile"],
    );
    let claims = counter(
        "zygote_pool_claims_total",
        "Claims of a warm zygote by result: hit (a live zygote), empty (none waiting), disabled (pool max = 0).",
        &["profile", "result"],
    );
    let fallbacks = counter(
        "zygote_pool_fallbacks_total",
        "Tasks that took the cold path, by reason (pool_disabled, pool_empty, zygote_lost).",
        &["profile", "reason"],
    );
    let cloned = counter(
        "zygote_pool_cloned_at_claim_total",
        "Warm claims whose zygote's child could not serve the spec (the zygote cloned the init), by reason.",
        &["profile", "reason"],
    );
    let created = counter(
        "zygote_pool_zygotes_created_total",
        "Zygotes that reached the pool.",
        &["profile"],
    );
    let failed = counter(
        "zygote_pool_spawn_failures_total",
        "Zygotes that could not be created.",
        &["profile"],
    );
    let deaths = counter(
        "zygote_pool_deaths_total",
        "Idle zygotes found dead or damaged and replaced.",
        &["profile"],
    );
    let recycles = counter(
        "zygote_pool_recycles_total",
        "Idle zygotes retired for reaching the profile's max_age.",
        &["profile"],
    );
    let unhealthy = counter(
        "zygote_pool_unhealthy_total",
        "Idle zygotes found unhealthy and replaced, by reason (dead, unresponsive, stale_generation).",
        &["profile", "reason"],
    );
    let stats = daemon.pools.stats();
    let pids = daemon.pools.idle_pids();
    for (profile, s) in &stats.profiles {
        let p = profile.as_str();
        idle.with_label_values(&[p]).set(s.idle as i64);
        target.with_label_values(&[p]).set(s.target as i64);
        spawning.with_label_values(&[p]).set(s.spawning as i64);
        let fb = |r: &str| s.fallbacks.get(r).copied().unwrap_or(0);
        set_counter(&claims, &[p, "hit"], s.claimed);
        set_counter(&claims, &[p, "empty"], fb("pool_empty"));
        set_counter(&claims, &[p, "disabled"], fb("pool_disabled"));
        for (reason, n) in &s.fallbacks {
            set_counter(&fallbacks, &[p, reason], *n);
        }
        for (reason, n) in &s.cloned_at_claim {
            set_counter(&cloned, &[p, reason], *n);
        }
        set_counter(&created, &[p], s.created);
        set_counter(&failed, &[p], s.spawn_failures);
        set_counter(&deaths, &[p], s.died);
        set_counter(&recycles, &[p], s.recycled);
        for (reason, n) in &s.unhealthy {
            set_counter(&unhealthy, &[p, reason], *n);
        }
        let held = pids.get(profile).map_or(0, |pids| idle_pss(pids));
        pss.with_label_values(&[p]).set(held as i64);
    }
    out.extend(idle.collect());
    out.extend(target.collect());
    out.extend(spawning.collect());
    out.extend(pss.collect());
    for c in [claims, fallbacks, cloned, created, failed, deaths, recycles, unhealthy] {
        out.extend(c.collect());
    }
}

/// PSS bytes of idle zygotes: each child pid and its parent (the zygote
/// process), each process counted once.
fn idle_pss(children: &[i32]) -> u64 {
    let me = std::process::id() as i32;
    let mut seen = std::collections::BTreeSet::new();
    for &pid in children {
        seen.insert(pid);
        if let Some(ppid) = parent_of(pid).filter(|p| *p != me && *p > 1) {
            seen.insert(ppid);
        }
    }
    seen.into_iter().filter_map(pss_bytes).sum()
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// The `Pss:` line of `/proc/<pid>/smaps_rollup`, in bytes.
fn pss_bytes(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    parse_pss(&text)
}

fn parse_pss(smaps_rollup: &str) -> Option<u64> {
    let line = smaps_rollup.lines().find(|l| l.starts_with("Pss:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn tasks(daemon: &Daemon, out: &mut Vec<MetricFamily>) {
    let running = gauge(
        "zygote_tasks_running",
        "Tasks whose init process runs now, by mode.",
        &["mode"],
    );
    let mut by_mode: BTreeMap<&str, i64> = BTreeMap::from([("namespace", 0), ("wasm", 0)]);
    let tasks: Vec<_> = daemon.tasks.read().expect("tasks lock").values().cloned().collect();
    for t in tasks {
        if t.proc("").is_some_and(|p| p.state.status == Status::Running) {
            *by_mode.entry(super::mode(t.cfg().guest.is_some())).or_default() += 1;
        }
    }
    for (mode, n) in by_mode {
        running.with_label_values(&[mode]).set(n);
    }
    out.extend(running.collect());
}

fn wasm_cache(daemon: &Daemon, out: &mut Vec<MetricFamily>) {
    let Some(s) = daemon.wasm.cache_stats() else {
        return;
    };
    let c = |name: &str, help: &str, v: u64| {
        let c = counter(name, help, &[]);
        set_counter(&c, &[], v);
        c.collect()
    };
    let g = |name: &str, help: &str, v: u64| {
        let g = gauge(name, help, &[]);
        g.with_label_values(&[] as &[&str]).set(v as i64);
        g.collect()
    };
    out.extend(c("zygote_wasm_cache_hits_total", "Wasm artifact cache hits.", s.hits));
    out.extend(c(
        "zygote_wasm_cache_misses_total",
        "Wasm artifact cache misses (no entry: compiled).",
        s.compiles.saturating_sub(s.recompiled),
    ));
    out.extend(c(
        "zygote_wasm_cache_compiles_total",
        "Wasm modules compiled (misses and corrupt entries).",
        s.compiles,
    ));
    out.extend(c(
        "zygote_wasm_cache_corrupt_total",
        "Cache entries found corrupt or incomplete and compiled again.",
        s.recompiled,
    ));
    out.extend(c(
        "zygote_wasm_cache_evictions_total",
        "Entries evicted (LRU bound).",
        s.evictions,
    ));
    out.extend(g(
        "zygote_wasm_cache_bytes",
        "Bytes of compiled artifacts in the cache.",
        s.bytes,
    ));
    out.extend(g("zygote_wasm_cache_entries", "Artifacts in the cache.", s.entries));
    out.extend(g("zygote_wasm_cache_max_bytes", "The cache's size bound.", s.max_bytes));
}

#[cfg(test)]
mod tests {
    #[test]
    fn pss_is_read_in_bytes() {
        let text = "55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss: 900 kB\nPss: 412 kB\nPss_Anon: 300 kB\n";
        assert_eq!(super::parse_pss(text), Some(412 * 1024));
        assert_eq!(super::parse_pss("Rss: 1 kB\n"), None);
        let me = std::process::id() as i32;
        assert!(super::pss_bytes(me).is_some_and(|b| b > 0));
        assert_eq!(super::parent_of(me), Some(nix::unistd::getppid().as_raw()));
    }
}

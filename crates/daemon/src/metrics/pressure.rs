//! The pressure series, built at scrape time from the pools' pressure
//! handle and counters: the node's PSI as ratios (base unit, 0-1), each
//! pool's gate, and the births it held back and the zygotes it released.

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts};

use crate::daemon::Daemon;
use crate::pressure::RESOURCES;

pub(super) fn collect(daemon: &Daemon, out: &mut Vec<MetricFamily>) {
    let ratio = GaugeVec::new(
        Opts::new(
            "zygote_node_pressure_ratio",
            "The node's PSI as a ratio of wall time, by resource (cpu, memory, io) and kind (some_avg10, full_avg10, \
             some_recent: since the previous read, at most about 1 s).",
        ),
        &["resource", "kind"],
    )
    .expect("a valid gauge definition");
    let snap = daemon.pools.pressure().now();
    if snap.available {
        for r in RESOURCES {
            let s = snap.node.get(r);
            for (kind, v) in [
                ("some_avg10", s.some_avg10),
                ("full_avg10", s.full_avg10),
                ("some_recent", s.some_recent),
            ] {
                ratio.with_label_values(&[r.name(), kind]).set(v / 100.0);
            }
        }
    }
    let gate = IntGaugeVec::new(
        Opts::new(
            "zygote_pool_pressure_gate_closed",
            "1 while a resource is above the profile's pressure threshold (no births), by resource.",
        ),
        &["profile", "resource"],
    )
    .expect("a valid gauge definition");
    let deferred = IntCounterVec::new(
        Opts::new(
            "zygote_pool_births_deferred_total",
            "Refill rounds that held births back, by reason (cpu_pressure, memory_pressure, io_pressure, pacing).",
        ),
        &["profile", "reason"],
    )
    .expect("a valid counter definition");
    let released = IntCounterVec::new(
        Opts::new(
            "zygote_pool_released_total",
            "Idle zygotes let go beyond the pool's min, by reason (memory_pressure).",
        ),
        &["profile", "reason"],
    )
    .expect("a valid counter definition");
    for (profile, s) in &daemon.pools.stats().profiles {
        let p = profile.as_str();
        for r in RESOURCES {
            let closed = s.pressure_gate.iter().any(|g| g == r.name());
            gate.with_label_values(&[p, r.name()]).set(closed as i64);
            let n = s.births_deferred_by_pressure.get(r.name()).copied().unwrap_or(0);
            deferred
                .with_label_values(&[p, &format!("{}_pressure", r.name())])
                .inc_by(n);
        }
        deferred
            .with_label_values(&[p, "pacing"])
            .inc_by(s.births_deferred_by_pacing);
        released
            .with_label_values(&[p, "memory_pressure"])
            .inc_by(s.released_for_memory_pressure);
    }
    out.extend(ratio.collect());
    out.extend(gate.collect());
    out.extend(deferred.collect());
    out.extend(released.collect());
}

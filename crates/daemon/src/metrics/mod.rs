//! Prometheus metrics of the daemon: the series recorded as things happen
//! (this module), the ones read when Prometheus scrapes ([`collect`]) and
//! the HTTP endpoint that serves them ([`http`]).
//!
//! Recording never waits on anything a task needs: counters and histograms
//! are atomics of the `prometheus` crate (a label set's child is found
//! under a read lock, written only the first time that label set is seen),
//! kept in one process-wide [`Series`] so a recording call is one line
//! wherever the event is. Everything that costs something (pool gauges,
//! the PSS of idle zygotes, running tasks, the Wasm cache's counters) is
//! computed at scrape time, off the async threads.
//!
//! Names follow Prometheus' conventions: `zygote_` prefix, base units
//! (`_seconds`, `_bytes`), `_total` for counters, and no container ids as
//! labels (only profile, mode, path, reason, method, result: bounded sets).

pub(crate) mod collect;
pub(crate) mod http;
mod pressure;

use std::sync::LazyLock;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

pub(crate) use http::serve;

/// Task spawn latency buckets, seconds: 1 ms to 10 s.
const SPAWN_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Landlock + seccomp set-up buckets, seconds: 10 µs to 100 ms.
const SECURITY_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
];
/// Zygote creation and Wasm compile buckets, seconds: 5 ms to 60 s.
const SLOW_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// ttrpc request buckets, seconds: 50 µs to 60 s (`Wait` lasts as long as the task).
const RPC_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 10.0, 60.0,
];

/// The recorded series, registered in [`Series::registry`].
pub(crate) struct Series {
    pub(crate) registry: Registry,
    spawn: HistogramVec,
    security: HistogramVec,
    zygote_creation: HistogramVec,
    scaling: IntCounterVec,
    placed: IntCounterVec,
    exits: IntCounterVec,
    ooms: IntCounterVec,
    rpc_total: IntCounterVec,
    rpc_seconds: HistogramVec,
    wasm_compile: HistogramVec,
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: &[f64], labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels)
        .expect("a valid histogram definition");
    r.register(Box::new(h.clone())).expect("registered once");
    h
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter definition");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

impl Series {
    fn new() -> Series {
        let r = Registry::new();
        let info = IntGaugeVec::new(
            Opts::new("zygote_build_info", "The daemon's version; always 1."),
            &["version"],
        )
        .expect("a valid gauge definition");
        info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        r.register(Box::new(info)).expect("registered once");
        #[cfg(target_os = "linux")]
        r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("registered once");
        Series {
            spawn: histogram(
                &r,
                "zygote_spawn_duration_seconds",
                "Create received to the exec barrier released at Start (exec / Wasm _start next), by profile, mode, path.",
                SPAWN_BUCKETS,
                &["profile", "mode", "path"],
            ),
            security: histogram(
                &r,
                "zygote_security_setup_duration_seconds",
                "Time the container init spent installing Landlock and seccomp on the critical path.",
                SECURITY_BUCKETS,
                &["profile"],
            ),
            zygote_creation: histogram(
                &r,
                "zygote_pool_zygote_creation_duration_seconds",
                "Spawn of a warm zygote to it waiting in its pool.",
                SLOW_BUCKETS,
                &["profile", "mode"],
            ),
            scaling: counter(
                &r,
                "zygote_pool_scaling_events_total",
                "Changes of a pool's target size, by direction (up|down) and cause (initial|demand).",
                &["profile", "direction", "cause"],
            ),
            placed: counter(
                &r,
                "zygote_pool_placed_total",
                "Zygotes that reached their pool placed on a NUMA node (pool.placement), by profile and node.",
                &["profile", "node"],
            ),
            exits: counter(
                &r,
                "zygote_task_exits_total",
                "Tasks whose init process exited.",
                &["mode"],
            ),
            ooms: counter(
                &r,
                "zygote_oom_kills_total",
                "OOM kills reported in tasks' cgroups.",
                &["mode"],
            ),
            rpc_total: counter(
                &r,
                "zygote_ttrpc_requests_total",
                "containerd task API requests, by method and result (ok or the ttrpc status code).",
                &["method", "result"],
            ),
            rpc_seconds: histogram(
                &r,
                "zygote_ttrpc_request_duration_seconds",
                "containerd task API request latency, by method.",
                RPC_BUCKETS,
                &["method"],
            ),
            wasm_compile: histogram(
                &r,
                "zygote_wasm_compile_duration_seconds",
                "Compiles of Wasm modules into the node's artifact cache (misses and corrupt entries).",
                SLOW_BUCKETS,
                &[],
            ),
            registry: r,
        }
    }
}

static SERIES: LazyLock<Series> = LazyLock::new(Series::new);

/// The process-wide series.
pub(crate) fn series() -> &'static Series {
    &SERIES
}

/// `"wasm"` or `"namespace"`: the `mode` label.
pub(crate) fn mode(wasm: bool) -> &'static str {
    if wasm {
        "wasm"
    } else {
        "namespace"
    }
}

/// A task started: its Create-to-exec time and its security set-up time.
pub(crate) fn task_started(profile: &str, wasm: bool, warm: bool, create_to_exec_ns: i64, security_us: u64) {
    let s = series();
    let path = if warm { "warm" } else { "cold" };
    s.spawn
        .with_label_values(&[profile, mode(wasm), path])
        .observe(create_to_exec_ns.max(0) as f64 / 1e9);
    s.security
        .with_label_values(&[profile])
        .observe(security_us as f64 / 1e6);
}

/// A zygote of `profile` reached its pool after `seconds`.
pub(crate) fn zygote_created(profile: &str, wasm: bool, seconds: f64) {
    series()
        .zygote_creation
        .with_label_values(&[profile, mode(wasm)])
        .observe(seconds);
}

/// A pool's target moved from `from` to `to`. The first target (from 0) is
/// the profile's `pool.initial`: cause `initial`; later moves follow the
/// claims of the last 10 s: cause `demand`.
pub(crate) fn pool_scaled(profile: &str, from: usize, to: usize) {
    let direction = if to > from { "up" } else { "down" };
    let cause = if from == 0 { "initial" } else { "demand" };
    series().scaling.with_label_values(&[profile, direction, cause]).inc();
}

/// A zygote of `profile` born on NUMA node `node` reached its pool.
pub(crate) fn zygote_placed(profile: &str, node: u32) {
    series().placed.with_label_values(&[profile, &node.to_string()]).inc();
}

/// A task's init process exited.
pub(crate) fn task_exited(wasm: bool) {
    series().exits.with_label_values(&[mode(wasm)]).inc();
}

/// An OOM kill in a task's cgroup.
pub(crate) fn oom_killed(wasm: bool) {
    series().ooms.with_label_values(&[mode(wasm)]).inc();
}

/// A ttrpc request finished; `result` is `"ok"` or its status code.
pub(crate) fn rpc(method: &str, result: &str, seconds: f64) {
    let s = series();
    s.rpc_total.with_label_values(&[method, result]).inc();
    s.rpc_seconds.with_label_values(&[method]).observe(seconds);
}

/// A Wasm module was compiled into the cache in `seconds`.
pub(crate) fn wasm_compiled(seconds: f64) {
    series().wasm_compile.with_label_values(&[] as &[&str]).observe(seconds);
}

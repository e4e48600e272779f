//! Sweeps the forecast policy's `z` (headroom, deviations) and
//! `min_hit_rate` (sparse apps: the hazard at which one zygote is kept) at
//! the simulator's horizon on a built-in trace, from its default seed or
//! another
//! (`cargo run --release -p zygote-sizing --example tune -- mixed [SEED]`):
//! how the defaults in docs/pool-sizing.md were chosen.

use zygote_sizing::sim::{simulate, Model, PolicySpec, SIM_HORIZON};
use zygote_sizing::{Bounds, ForecastParams, ForecastRule};

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "mixed".to_string());
    let trace = match std::env::args().nth(2) {
        Some(seed) => zygote_sizing::trace::builtin_seeded(&name, seed.parse().expect("a seed")),
        None => zygote_sizing::trace::builtin(&name),
    }
    .expect("a built-in trace");
    let b = Bounds {
        min: 0,
        initial: 2,
        max: 256,
    };
    let k = simulate(&trace, &PolicySpec::KeepAlive(600.0), &Model::default());
    println!(
        "{}: keep-alive-10m {:.2}% ({} misses) {:.0} idle zygote-s",
        trace.name,
        k.warm_hit_ratio * 100.0,
        k.claims - k.warm,
        k.idle_zygote_seconds
    );
    println!("      z  1/min_hit_rate   warm-hit   misses   idle zygote-s   births");
    for z in [2.0, 2.5, 3.0] {
        for per_hit in [120.0, 300.0, 1000.0] {
            let rule = ForecastRule {
                forecast: ForecastParams {
                    horizon: SIM_HORIZON,
                    z,
                    min_hit_rate: 1.0 / per_hit,
                    ..ForecastParams::default()
                },
                ..ForecastRule::default()
            };
            let o = simulate(&trace, &PolicySpec::Forecast(b, rule), &Model::default());
            println!(
                "{z:>7} {per_hit:>15} {:>9.2}% {:>8} {:>15.0} {:>8}",
                o.warm_hit_ratio * 100.0,
                o.claims - o.warm,
                o.idle_zygote_seconds,
                o.births
            );
        }
    }
}

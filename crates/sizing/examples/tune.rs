//! Sweeps the forecast policy's horizon and fallback keep-alive on a
//! built-in trace (`cargo run --release -p zygote-sizing --example tune -- mixed`):
//! how the defaults in docs/pool-sizing.md were chosen.

use zygote_sizing::sim::{simulate, Model, PolicySpec};
use zygote_sizing::{Bounds, ForecastParams, ForecastRule};

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "mixed".to_string());
    let trace = zygote_sizing::trace::builtin(&name).expect("a built-in trace");
    let b = Bounds {
        min: 0,
        initial: 2,
        max: 256,
    };
    println!("horizon        z   warm-hit   idle zygote-s   births");
    for horizon in [0.5, 1.0, 1.2, 1.5, 2.0] {
        for z in [1.0, 2.0, 3.0] {
            let rule = ForecastRule {
                forecast: ForecastParams {
                    horizon,
                    z,
                    ..ForecastParams::default()
                },
                ..ForecastRule::default()
            };
            let o = simulate(&trace, &PolicySpec::Forecast(b, rule), &Model::default());
            println!(
                "{horizon:>7} {z:>8} {:>9.2}% {:>15.0} {:>8}",
                o.warm_hit_ratio * 100.0,
                o.idle_zygote_seconds,
                o.births
            );
        }
    }
}

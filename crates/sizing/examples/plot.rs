//! Draws docs/pool-sizing.png: warm-hit ratio (y) against idle
//! zygote-seconds (x, log scale) per policy on the mixed trace
//! (`cargo run --release -p zygote-sizing --example plot -- docs/pool-sizing.png`).
//! No text is drawn (no font dependency): docs/pool-sizing.md labels the
//! points; each policy has its own colour, the forecast policy is the
//! large red dot, the keep-alives are blue, the fixed pools grey, the
//! recent-claims rule green.

use plotters::prelude::*;
use zygote_sizing::sim::{default_policies, simulate, Model, PolicySpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "docs/pool-sizing.png".to_string());
    let trace = zygote_sizing::trace::builtin("mixed").expect("built in");
    let points: Vec<(PolicySpec, f64, f64)> = default_policies()
        .into_iter()
        .map(|p| {
            let o = simulate(&trace, &p, &Model::default());
            (p, o.idle_zygote_seconds.max(1.0).log10(), o.warm_hit_ratio * 100.0)
        })
        .collect();
    let root = BitMapBackend::new(&out, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(30)
        .build_cartesian_2d(6.0f64..8.2, 30.0f64..101.0)?;
    // Grid: one vertical line per decade, one horizontal per 10 %.
    for x in [6.0, 7.0, 8.0] {
        chart.draw_series(LineSeries::new([(x, 30.0), (x, 101.0)], BLACK.mix(0.2)))?;
    }
    for y in (30..=100).step_by(10) {
        chart.draw_series(LineSeries::new([(6.0, y as f64), (8.2, y as f64)], BLACK.mix(0.2)))?;
    }
    chart.draw_series(LineSeries::new([(6.0, 95.0), (8.2, 95.0)], RED.mix(0.5)))?;
    for (p, x, y) in points {
        let (colour, size) = match p {
            PolicySpec::Forecast(..) => (RED, 9),
            PolicySpec::KeepAlive(_) => (BLUE, 7),
            PolicySpec::RecentClaims(_) => (GREEN, 7),
            PolicySpec::Fixed(_) => (RGBColor(128, 128, 128), 6),
        };
        chart.draw_series(std::iter::once(Circle::new((x, y), size, colour.filled())))?;
    }
    root.present()?;
    Ok(())
}

//! Where a policy wins and loses, per class of application, on a built-in
//! trace: misses and idle zygote-seconds of the keep-alive baselines and
//! the forecast policy, split by the mixed trace's app kind (timer,
//! diurnal, bursty) and by rate (rare: at most one claim an hour on
//! average; medium: at most one a minute; busy: more)
//! (`cargo run --release -p zygote-sizing --example breakdown -- mixed [SEED]`).

use std::collections::BTreeMap;

use zygote_sizing::sim::{default_policies, simulate, Model, PolicySpec};

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "mixed".to_string());
    let trace = match std::env::args().nth(2) {
        Some(seed) => zygote_sizing::trace::builtin_seeded(&name, seed.parse().expect("a seed")),
        None => zygote_sizing::trace::builtin(&name),
    }
    .expect("a built-in trace");
    let hours = trace.duration / 3600.0;
    for p in default_policies() {
        if !matches!(p, PolicySpec::KeepAlive(_) | PolicySpec::Forecast(..)) {
            continue;
        }
        let o = simulate(&trace, &p, &Model::default());
        println!(
            "\n{} on {}: {:.2}% warm, {:.0} idle zygote-s",
            o.policy,
            o.trace,
            o.warm_hit_ratio * 100.0,
            o.idle_zygote_seconds
        );
        println!(
            "{:<16} {:>5} {:>9} {:>8} {:>14}",
            "class", "apps", "claims", "misses", "idle zyg-s"
        );
        let mut classes: BTreeMap<String, (u32, u64, u64, f64)> = BTreeMap::new();
        for po in &o.profiles {
            let kind = po.profile.split('-').next().unwrap_or("?");
            let per_hour = po.claims as f64 / hours;
            let rate = if per_hour <= 1.0 {
                "rare"
            } else if per_hour <= 60.0 {
                "medium"
            } else {
                "busy"
            };
            for key in [format!("{kind}/{rate}"), format!("all/{rate}"), format!("{kind}/all")] {
                let c = classes.entry(key).or_default();
                c.0 += 1;
                c.1 += po.claims;
                c.2 += po.claims - po.warm;
                c.3 += po.idle_zygote_seconds;
            }
        }
        for (k, (apps, claims, misses, idle)) in classes {
            println!("{k:<16} {apps:>5} {claims:>9} {misses:>8} {idle:>14.0}");
        }
    }
}

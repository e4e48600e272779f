//! What the forecast policy costs per decision and per claim: replays a
//! built-in trace's claims into one [`ForecastPolicy`] per profile and
//! calls `decide` once a second per profile, as the simulator does, timing
//! both with the wall clock
//! (`cargo run --release -p zygote-sizing --example cost -- mixed`).
//! A measurement, not a test: the numbers depend on the machine.

use std::time::Instant;

use zygote_sizing::sim::{default_policies, PolicySpec};
use zygote_sizing::{ForecastPolicy, Policy};

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "mixed".to_string());
    let trace = zygote_sizing::trace::builtin(&name).expect("a built-in trace");
    let Some(PolicySpec::Forecast(bounds, rule)) = default_policies()
        .into_iter()
        .find(|p| matches!(p, PolicySpec::Forecast(..)))
    else {
        unreachable!("the default policies include the forecast policy")
    };
    let mut policies: Vec<ForecastPolicy> = trace
        .profiles
        .iter()
        .map(|_| ForecastPolicy::new(bounds, rule))
        .collect();
    let (mut decide_ns, mut record_ns, mut decisions, mut targets) = (0u128, 0u128, 0u64, 0usize);
    let mut next = 0;
    for s in 0..trace.duration as u64 {
        let now = s as f64;
        let start = Instant::now();
        for p in &mut policies {
            targets += p.decide(now, None).target;
        }
        decide_ns += start.elapsed().as_nanos();
        decisions += policies.len() as u64;
        let start = Instant::now();
        while let Some(&(t, p)) = trace.claims.get(next).filter(|c| c.0 < now + 1.0) {
            policies[p].record_claim(t);
            next += 1;
        }
        record_ns += start.elapsed().as_nanos();
    }
    println!(
        "{}: {} decisions, {:.0} ns each; {} claims recorded, {:.0} ns each (sum of targets {targets})",
        trace.name,
        decisions,
        decide_ns as f64 / decisions as f64,
        next,
        record_ns as f64 / next.max(1) as f64
    );
}

//! `zygotectl sim`: replays a claim trace (built-in or a file) against each
//! sizing policy with [`zygote_sizing::sim`] and prints one row per policy
//! (table or, with `--json`, a JSON array of outcomes). Needs no daemon.

use std::path::Path;

use anyhow::Context;
use zygote_sizing::sim::{self, Model, Outcome};
use zygote_sizing::trace::{self, Trace};

/// The traces named by `--trace`: a built-in name, `all`, or a file;
/// built-in ones from `seed` if given.
pub(crate) fn traces(arg: &str, seed: Option<u64>) -> anyhow::Result<Vec<Trace>> {
    let builtin = |n: &str| match seed {
        Some(s) => trace::builtin_seeded(n, s),
        None => trace::builtin(n),
    };
    if arg == "all" {
        return Ok(trace::BUILTIN.iter().filter_map(|n| builtin(n)).collect());
    }
    if let Some(t) = builtin(arg) {
        return Ok(vec![t]);
    }
    let path = Path::new(arg);
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "{arg} is neither a built-in trace ({}, all) nor a readable file",
            trace::BUILTIN.join(", ")
        )
    })?;
    Ok(vec![Trace::parse(&path.display().to_string(), &text)?])
}

/// Runs every default policy over every trace.
pub(crate) fn run(traces: &[Trace]) -> Vec<Outcome> {
    let model = Model::default();
    traces
        .iter()
        .flat_map(|t| {
            sim::default_policies()
                .into_iter()
                .map(move |p| sim::simulate(t, &p, &model))
        })
        .collect()
}

/// The outcomes as a table, one block per trace.
pub(crate) fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let mut last = "";
    for o in outcomes {
        if o.trace != last {
            last = &o.trace;
            out += &format!(
                "\ntrace {} ({} claims)\n{:<15} {:>9} {:>16} {:>9} {:>14}\n",
                o.trace, o.claims, "policy", "warm-hit", "idle zygote-s", "births", "p99 wait ms"
            );
        }
        out += &format!(
            "{:<15} {:>8.2}% {:>16.0} {:>9} {:>14.0}\n",
            o.policy,
            o.warm_hit_ratio * 100.0,
            o.idle_zygote_seconds,
            o.births,
            o.p99_claim_wait_ms
        );
    }
    out
}

//! The trace-replay simulator: replays a [`Trace`] against one sizing
//! policy per profile on a simulated clock and measures the pool.
//!
//! The model ([`Model`] holds its constants):
//! * every `tick` seconds each profile's policy decides a target (the real
//!   [`crate::policy`] code, with no CPU pressure); idle zygotes above the
//!   target are released at once, and births are started towards it,
//!   at most `births_per_sec * tick` per profile per tick; a birth takes
//!   `birth_secs`, then its zygote is idle;
//! * a claim takes an idle zygote if there is one (warm: it waits 0);
//!   otherwise it is a cold start, served by `cold_slots` node-wide cold
//!   start slots in arrival order, each taking `cold_start_secs`: its
//!   wait is the queueing plus the cold start;
//! * idle zygote-seconds integrate the number of idle zygotes over time
//!   (births in flight are not counted: memory-time held while waiting);
//! * zygotes do not age out (`max_age` is ignored) and never fail.

use serde::Serialize;

use crate::forecast::ForecastParams;
use crate::policy::{Bounds, Fixed, ForecastPolicy, ForecastRule, KeepAlive, Policy, RecentClaims};
use crate::trace::Trace;

/// The simulator's constants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Model {
    pub tick: f64,
    pub birth_secs: f64,
    pub births_per_sec: f64,
    pub cold_start_secs: f64,
    pub cold_slots: usize,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            tick: 1.0,
            birth_secs: 0.2,
            births_per_sec: 50.0,
            cold_start_secs: 0.25,
            cold_slots: 4,
        }
    }
}

/// A policy to simulate, the same for every profile of the trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PolicySpec {
    Fixed(usize),
    /// Keep-alive after use, seconds.
    KeepAlive(f64),
    RecentClaims(Bounds),
    Forecast(Bounds, ForecastRule),
}

impl PolicySpec {
    pub fn name(&self) -> String {
        match self {
            PolicySpec::Fixed(n) => format!("fixed-{n}"),
            PolicySpec::KeepAlive(s) => format!("keep-alive-{}m", s / 60.0),
            PolicySpec::RecentClaims(_) => "recent-claims".to_string(),
            PolicySpec::Forecast(..) => "forecast".to_string(),
        }
    }

    fn build(&self) -> Box<dyn Policy> {
        match *self {
            PolicySpec::Fixed(n) => Box::new(Fixed(n)),
            PolicySpec::KeepAlive(s) => Box::new(KeepAlive::new(s)),
            PolicySpec::RecentClaims(b) => Box::new(RecentClaims::new(b)),
            PolicySpec::Forecast(b, r) => Box::new(ForecastPolicy::new(b, r)),
        }
    }
}

/// The forecast horizon the simulator gives the forecast policy: its
/// refill lead time, [`Model::default`]'s tick plus birth (the daemon's
/// `horizon_secs` should be its own: pool tick plus birth time).
pub const SIM_HORIZON: f64 = 1.2;

/// The policies the simulator compares by default: fixed pools of 1, 2,
/// 4, 8, 16; keep-alive 10 and 20 minutes; the recent-claims rule and the
/// forecast rule with the daemon's default profile constants (`min` 0,
/// `initial` 2, `max` 256: the simulator does not cap pools below what the
/// config allows).
pub fn default_policies() -> Vec<PolicySpec> {
    let b = Bounds {
        min: 0,
        initial: 2,
        max: 256,
    };
    let mut v: Vec<PolicySpec> = [1, 2, 4, 8, 16].into_iter().map(PolicySpec::Fixed).collect();
    v.push(PolicySpec::KeepAlive(600.0));
    v.push(PolicySpec::KeepAlive(1200.0));
    v.push(PolicySpec::RecentClaims(b));
    v.push(PolicySpec::Forecast(
        b,
        ForecastRule {
            forecast: ForecastParams {
                horizon: SIM_HORIZON,
                ..ForecastParams::default()
            },
            ..ForecastRule::default()
        },
    ));
    v
}

/// What one policy did over one trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub policy: String,
    pub trace: String,
    pub claims: u64,
    pub warm: u64,
    pub warm_hit_ratio: f64,
    pub idle_zygote_seconds: f64,
    pub births: u64,
    pub p99_claim_wait_ms: f64,
    /// The most idle zygotes any profile held at once.
    pub peak_idle: usize,
    /// The same per profile (in the trace's order; not in the JSON).
    #[serde(skip)]
    pub profiles: Vec<ProfileOutcome>,
}

/// What one policy did for one profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileOutcome {
    pub profile: String,
    pub claims: u64,
    pub warm: u64,
    pub idle_zygote_seconds: f64,
    pub births: u64,
}

struct Pool {
    policy: Box<dyn Policy>,
    idle: usize,
    /// Ready times of births in flight, in order.
    births: std::collections::VecDeque<f64>,
    since: f64,
    idle_secs: f64,
    claims: u64,
    warm: u64,
    births_total: u64,
}

impl Pool {
    fn set_idle(&mut self, now: f64, idle: usize) {
        self.idle_secs += self.idle as f64 * (now - self.since);
        self.since = now;
        self.idle = idle;
    }

    fn land_births(&mut self, now: f64) {
        while self.births.front().is_some_and(|&t| t <= now) {
            let t = self.births.pop_front().unwrap_or(now);
            self.set_idle(t, self.idle + 1);
        }
    }
}

/// Replays `trace` with `policy` for every profile.
pub fn simulate(trace: &Trace, policy: &PolicySpec, m: &Model) -> Outcome {
    let mut pools: Vec<Pool> = trace
        .profiles
        .iter()
        .map(|_| Pool {
            policy: policy.build(),
            idle: 0,
            births: Default::default(),
            since: 0.0,
            idle_secs: 0.0,
            claims: 0,
            warm: 0,
            births_total: 0,
        })
        .collect();
    let mut slots = vec![0.0f64; m.cold_slots.max(1)];
    let mut cold_waits: Vec<f64> = Vec::new();
    let (mut warm, mut births, mut peak_idle) = (0u64, 0u64, 0usize);
    let per_tick = (m.births_per_sec * m.tick).max(1.0) as usize;
    let mut next = 0;
    let ticks = (trace.duration / m.tick).ceil() as u64;
    for k in 0..ticks {
        let now = k as f64 * m.tick;
        for pool in &mut pools {
            pool.land_births(now);
            let target = pool.policy.decide(now, None).target;
            if pool.idle > target {
                pool.set_idle(now, target);
            }
            let need = target.saturating_sub(pool.idle + pool.births.len()).min(per_tick);
            births += need as u64;
            pool.births_total += need as u64;
            pool.births.extend(std::iter::repeat_n(now + m.birth_secs, need));
        }
        let end = now + m.tick;
        while let Some(&(t, p)) = trace.claims.get(next).filter(|c| c.0 < end) {
            next += 1;
            let pool = &mut pools[p];
            pool.land_births(t);
            pool.policy.record_claim(t);
            pool.claims += 1;
            if pool.idle > 0 {
                warm += 1;
                pool.warm += 1;
                pool.set_idle(t, pool.idle - 1);
            } else {
                let slot = slots.iter_mut().min_by(|a, b| a.total_cmp(b)).expect("a slot");
                let done = slot.max(t) + m.cold_start_secs;
                *slot = done;
                cold_waits.push(done - t);
            }
        }
        for pool in &mut pools {
            pool.land_births(end);
            peak_idle = peak_idle.max(pool.idle);
        }
    }
    let profiles: Vec<ProfileOutcome> = pools
        .iter_mut()
        .zip(&trace.profiles)
        .map(|(p, name)| {
            p.set_idle(trace.duration, p.idle);
            ProfileOutcome {
                profile: name.clone(),
                claims: p.claims,
                warm: p.warm,
                idle_zygote_seconds: p.idle_secs,
                births: p.births_total,
            }
        })
        .collect();
    let idle_zygote_seconds = profiles.iter().map(|p| p.idle_zygote_seconds).sum();
    let claims = trace.claims.len() as u64;
    Outcome {
        policy: policy.name(),
        trace: trace.name.clone(),
        claims,
        warm,
        warm_hit_ratio: if claims == 0 { 1.0 } else { warm as f64 / claims as f64 },
        idle_zygote_seconds,
        births,
        p99_claim_wait_ms: p99(&mut cold_waits, claims) * 1000.0,
        peak_idle,
        profiles,
    }
}

/// The 99th percentile of all claim waits, of which the `waits` given are
/// the non-zero ones (warm claims wait 0).
fn p99(waits: &mut [f64], claims: u64) -> f64 {
    if claims == 0 {
        return 0.0;
    }
    let rank = ((0.99 * claims as f64).ceil() as u64).max(1); // 1-based
    let zeros = claims - waits.len() as u64;
    if rank <= zeros {
        return 0.0;
    }
    waits.sort_by(|a, b| a.total_cmp(b));
    waits[(rank - zeros - 1) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(claims: Vec<f64>) -> Trace {
        let text: String = claims.iter().map(|t| format!("{t}\n")).collect();
        Trace::parse("t", &text).unwrap()
    }

    #[test]
    fn fixed_pool_never_holds_more_than_its_size() {
        let t = crate::trace::builtin("step-burst").unwrap();
        for n in [1, 4, 16] {
            let o = simulate(&t, &PolicySpec::Fixed(n), &Model::default());
            assert!(o.peak_idle <= n, "{o:?}");
            assert!(o.idle_zygote_seconds <= n as f64 * t.duration + 1e-6, "{o:?}");
        }
    }

    #[test]
    fn size_zero_is_all_cold() {
        let t = trace((0..100).map(|i| i as f64 * 3.0).collect());
        let o = simulate(&t, &PolicySpec::Fixed(0), &Model::default());
        assert_eq!((o.warm, o.births, o.idle_zygote_seconds), (0, 0, 0.0));
        assert_eq!(o.p99_claim_wait_ms, 250.0);
    }

    #[test]
    fn cold_starts_queue_on_the_slots() {
        // 8 claims at once, 4 slots of 0.25 s: the last four wait 0.5 s.
        let t = trace(vec![5.0; 8]);
        let o = simulate(&t, &PolicySpec::Fixed(0), &Model::default());
        assert_eq!(o.p99_claim_wait_ms, 500.0);
    }

    #[test]
    fn a_sparse_pool_is_warm_and_idle_time_adds_up() {
        // One claim every 10 s, fixed pool of 1: all warm. One zygote idle
        // all the time but the first birth's 0.2 s, the 0.7 s from each
        // claim (at x.5) to its replacement (ticks at whole seconds, plus
        // 0.2 s), and after the last claim (the trace ends 0.5 s later).
        let t = trace((1..=100).map(|i| i as f64 * 10.0 + 0.5).collect());
        let o = simulate(&t, &PolicySpec::Fixed(1), &Model::default());
        assert_eq!(o.warm, 100);
        assert_eq!(o.births, 100);
        let expected = t.duration - 0.2 - 99.0 * 0.7 - 0.5;
        assert!((o.idle_zygote_seconds - expected).abs() < 1e-6, "{o:?} vs {expected}");
    }

    /// The target against keep-alive, on the mixed trace and on
    /// a second draw of it: more warm hits at less memory-time.
    #[test]
    fn forecast_beats_ten_minute_keep_alive_on_mixed() {
        let policies = default_policies();
        let forecast = policies.iter().find(|p| matches!(p, PolicySpec::Forecast(..))).unwrap();
        for seed in [2019, 7] {
            let t = crate::trace::builtin_seeded("mixed", seed).unwrap();
            let f = simulate(&t, forecast, &Model::default());
            let k = simulate(&t, &PolicySpec::KeepAlive(600.0), &Model::default());
            assert!(f.warm > k.warm, "seed {seed}: {f:?} vs {k:?}");
            assert!(
                f.idle_zygote_seconds <= k.idle_zygote_seconds,
                "seed {seed}: {f:?} vs {k:?}"
            );
        }
    }

    #[test]
    fn replays_are_deterministic() {
        let t = crate::trace::builtin("idle-gaps").unwrap();
        for p in default_policies() {
            assert_eq!(simulate(&t, &p, &Model::default()), simulate(&t, &p, &Model::default()));
        }
    }
}

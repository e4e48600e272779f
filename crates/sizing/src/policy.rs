//! Sizing policies: from claims seen and the node's pressure to a pool
//! target, one [`Decision`] (inputs and reason, for the log) per call.
//!
//! * [`ForecastPolicy`], the design's rule and the daemon's default: with
//!   `P` the claims predicted over the horizon and `S` the current target,
//!   scale up to `scale_up_to * P` when `P > scale_up_at * S` and CPU
//!   pressure is below the threshold (or unknown); scale down to
//!   `max(min, scale_down_to * P)` when `P < scale_down_at * S`; otherwise
//!   hold. Sizes round to the nearest integer; bounds always apply.
//! * [`RecentClaims`], the daemon's first rule: `initial`, grown to the
//!   claims of the last [`RECENT_WINDOW`] seconds, within the bounds.
//! * [`Fixed`] and [`KeepAlive`]: the baselines the simulator compares.

use std::collections::VecDeque;

use serde::Serialize;

use crate::forecast::{Forecast, ForecastParams, Forecaster};

/// Seconds of claims [`RecentClaims`] remembers.
pub const RECENT_WINDOW: f64 = 10.0;

/// A profile's pool bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub min: usize,
    pub initial: usize,
    pub max: usize,
}

impl Bounds {
    fn clamp(&self, n: usize) -> usize {
        n.clamp(self.min, self.max.max(self.min))
    }
}

/// The design rule's constants (profile keys of the same names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastRule {
    pub scale_up_at: f64,
    pub scale_up_to: f64,
    pub scale_down_at: f64,
    pub scale_down_to: f64,
    /// CPU pressure (PSI `some avg10`, percent) at or above which the pool
    /// does not grow.
    pub cpu_pressure_threshold: f64,
    pub forecast: ForecastParams,
}

impl Default for ForecastRule {
    fn default() -> Self {
        ForecastRule {
            scale_up_at: 1.2,
            scale_up_to: 1.3,
            scale_down_at: 0.6,
            scale_down_to: 1.1,
            cpu_pressure_threshold: 50.0,
            forecast: ForecastParams::default(),
        }
    }
}

/// Why a target was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// First decision: the profile's `initial`.
    Initial,
    ScaleUp,
    ScaleDown,
    /// The forecast is within the hysteresis band.
    Hold,
    /// The forecast asked to grow but CPU pressure is at the threshold.
    PressureHold,
    /// `initial`, or more when recent claims were more.
    RecentClaims,
    Fixed,
    KeepAlive,
}

/// One sizing decision, with its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Decision {
    /// Seconds (the caller's clock).
    pub now: f64,
    /// The target before this decision.
    pub current: usize,
    pub target: usize,
    pub reason: Reason,
    /// CPU pressure given (percent), if known.
    pub cpu_pressure: Option<f64>,
    /// The forecast, for [`ForecastPolicy`].
    pub forecast: Option<Forecast>,
}

/// A sizing policy for one profile. Time is seconds on the caller's clock
/// (monotonic; the simulator's is simulated).
pub trait Policy: Send {
    /// A claim (served or not) at `t`.
    fn record_claim(&mut self, t: f64);
    /// The target at `now`, given the CPU pressure if known.
    fn decide(&mut self, now: f64, cpu_pressure: Option<f64>) -> Decision;
}

/// The design's forecast-driven rule.
#[derive(Debug)]
pub struct ForecastPolicy {
    bounds: Bounds,
    rule: ForecastRule,
    forecaster: Forecaster,
    current: Option<usize>,
}

impl ForecastPolicy {
    pub fn new(bounds: Bounds, rule: ForecastRule) -> Self {
        ForecastPolicy {
            bounds,
            rule,
            forecaster: Forecaster::new(rule.forecast),
            current: None,
        }
    }

    /// The rule itself, on a forecast `p` and current size `s`.
    pub fn apply(&self, p: f64, s: usize, cpu_pressure: Option<f64>) -> (usize, Reason) {
        let r = &self.rule;
        let sf = s as f64;
        if p > r.scale_up_at * sf {
            if cpu_pressure.is_some_and(|c| c >= r.cpu_pressure_threshold) {
                return (s, Reason::PressureHold);
            }
            let up = self.bounds.clamp((r.scale_up_to * p).round() as usize);
            return if up > s {
                (up, Reason::ScaleUp)
            } else {
                (s, Reason::Hold)
            };
        }
        if p < r.scale_down_at * sf {
            let down = self
                .bounds
                .clamp(((r.scale_down_to * p).round() as usize).max(self.bounds.min));
            return if down < s {
                (down, Reason::ScaleDown)
            } else {
                (s, Reason::Hold)
            };
        }
        (s, Reason::Hold)
    }
}

impl Policy for ForecastPolicy {
    fn record_claim(&mut self, t: f64) {
        self.forecaster.record(t);
    }

    fn decide(&mut self, now: f64, cpu_pressure: Option<f64>) -> Decision {
        let fc = self.forecaster.forecast(now);
        let (current, (target, reason)) = match self.current {
            None => (0, (self.bounds.clamp(self.bounds.initial), Reason::Initial)),
            Some(s) => (s, self.apply(fc.predicted, s, cpu_pressure)),
        };
        let target = self.bounds.clamp(target);
        self.current = Some(target);
        Decision {
            now,
            current,
            target,
            reason,
            cpu_pressure,
            forecast: Some(fc),
        }
    }
}

/// The daemon's first rule.
#[derive(Debug)]
pub struct RecentClaims {
    bounds: Bounds,
    claims: VecDeque<f64>,
    current: usize,
}

impl RecentClaims {
    pub fn new(bounds: Bounds) -> Self {
        RecentClaims {
            bounds,
            claims: VecDeque::new(),
            current: 0,
        }
    }

    fn forget(&mut self, now: f64) {
        while self.claims.front().is_some_and(|&t| now - t > RECENT_WINDOW) {
            self.claims.pop_front();
        }
    }
}

impl Policy for RecentClaims {
    fn record_claim(&mut self, t: f64) {
        self.claims.push_back(t);
        self.forget(t);
    }

    fn decide(&mut self, now: f64, cpu_pressure: Option<f64>) -> Decision {
        self.forget(now);
        let target = self.bounds.clamp(self.bounds.initial.max(self.claims.len()));
        let current = std::mem::replace(&mut self.current, target);
        Decision {
            now,
            current,
            target,
            reason: Reason::RecentClaims,
            cpu_pressure,
            forecast: None,
        }
    }
}

/// A pool of constant size.
#[derive(Debug)]
pub struct Fixed(pub usize);

impl Policy for Fixed {
    fn record_claim(&mut self, _t: f64) {}
    fn decide(&mut self, now: f64, cpu_pressure: Option<f64>) -> Decision {
        Decision {
            now,
            current: self.0,
            target: self.0,
            reason: Reason::Fixed,
            cpu_pressure,
            forecast: None,
        }
    }
}

/// Keep-alive after use, as AWS Lambda and Azure Functions keep an
/// instance for a while after each invocation. Here a claim consumes its
/// zygote, so the replacement is what is kept: the target is the peak
/// number of claims in any one second within the last `keep` seconds (the
/// concurrency those claims needed), 0 once `keep` seconds pass with no
/// claim.
#[derive(Debug)]
pub struct KeepAlive {
    keep: f64,
    /// (second, claims in it), decreasing counts: a sliding-window maximum.
    peaks: VecDeque<(i64, usize)>,
    second: Option<(i64, usize)>,
    current: usize,
}

impl KeepAlive {
    pub fn new(keep_secs: f64) -> Self {
        KeepAlive {
            keep: keep_secs,
            peaks: VecDeque::new(),
            second: None,
            current: 0,
        }
    }

    fn push(&mut self, s: i64, n: usize) {
        while self.peaks.back().is_some_and(|&(_, m)| m <= n) {
            self.peaks.pop_back();
        }
        self.peaks.push_back((s, n));
    }
}

impl Policy for KeepAlive {
    fn record_claim(&mut self, t: f64) {
        let s = t.floor() as i64;
        match self.second {
            Some((cur, n)) if cur == s => self.second = Some((s, n + 1)),
            Some((cur, n)) => {
                self.push(cur, n);
                self.second = Some((s, 1));
            }
            None => self.second = Some((s, 1)),
        }
    }

    fn decide(&mut self, now: f64, cpu_pressure: Option<f64>) -> Decision {
        let oldest = (now - self.keep).floor() as i64;
        while self.peaks.front().is_some_and(|&(s, _)| s < oldest) {
            self.peaks.pop_front();
        }
        let open = self.second.filter(|&(s, _)| s >= oldest).map_or(0, |(_, n)| n);
        let target = self.peaks.front().map_or(0, |&(_, n)| n).max(open);
        let current = std::mem::replace(&mut self.current, target);
        Decision {
            now,
            current,
            target,
            reason: Reason::KeepAlive,
            cpu_pressure,
            forecast: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds {
        min: 1,
        initial: 2,
        max: 20,
    };

    fn policy() -> ForecastPolicy {
        ForecastPolicy::new(B, ForecastRule::default())
    }

    #[test]
    fn scale_up_only_above_the_threshold() {
        let p = policy();
        // S = 10: P = 12 is not above 1.2 * 10; 12.1 is: to round(1.3 * 12.1) = 16.
        assert_eq!(p.apply(12.0, 10, None), (10, Reason::Hold));
        assert_eq!(p.apply(12.1, 10, None), (16, Reason::ScaleUp));
        // Bounded by max.
        assert_eq!(p.apply(100.0, 10, None), (20, Reason::ScaleUp));
    }

    #[test]
    fn pressure_blocks_growth_only() {
        let p = policy();
        assert_eq!(p.apply(12.1, 10, Some(49.9)), (16, Reason::ScaleUp));
        assert_eq!(p.apply(12.1, 10, Some(50.0)), (10, Reason::PressureHold));
        // Shrinking is allowed under pressure.
        assert_eq!(p.apply(5.0, 10, Some(90.0)), (6, Reason::ScaleDown));
    }

    #[test]
    fn scale_down_only_below_the_threshold_and_not_below_min() {
        let p = policy();
        // S = 10: P = 6 is not below 0.6 * 10; 5.9 is: to round(1.1 * 5.9) = 6.
        assert_eq!(p.apply(6.0, 10, None), (10, Reason::Hold));
        assert_eq!(p.apply(5.9, 10, None), (6, Reason::ScaleDown));
        assert_eq!(p.apply(0.0, 10, None), (1, Reason::ScaleDown));
        assert_eq!(p.apply(0.0, 1, None), (1, Reason::Hold));
    }

    #[test]
    fn first_decision_is_initial_then_follows_a_burst() {
        let mut p = policy();
        let d = p.decide(0.0, None);
        assert_eq!((d.target, d.reason), (2, Reason::Initial));
        for i in 0..40 {
            p.record_claim(1.0 + i as f64 * 0.01);
        }
        let d = p.decide(1.5, None);
        assert_eq!((d.current, d.target, d.reason), (2, 20, Reason::ScaleUp));
    }

    #[test]
    fn recent_claims_is_the_old_rule() {
        let mut r = RecentClaims::new(Bounds {
            min: 1,
            initial: 2,
            max: 8,
        });
        assert_eq!(r.decide(0.0, None).target, 2);
        for _ in 0..20 {
            r.record_claim(1.0);
        }
        assert_eq!(r.decide(1.0, None).target, 8);
        r.record_claim(6.0);
        assert_eq!(r.decide(12.0, None).target, 2);
    }

    #[test]
    fn keep_alive_holds_the_peak_for_its_window() {
        let mut k = KeepAlive::new(600.0);
        assert_eq!(k.decide(0.0, None).target, 0);
        for _ in 0..3 {
            k.record_claim(10.2);
        }
        k.record_claim(20.0);
        assert_eq!(k.decide(21.0, None).target, 3);
        assert_eq!(k.decide(600.0, None).target, 3);
        assert_eq!(k.decide(612.0, None).target, 1, "the peak second left the window");
        assert_eq!(k.decide(621.5, None).target, 0);
    }
}

//! How many warm zygotes a profile should have right now: the daemon's
//! side of [`zygote_sizing`] (the policies are there, pure, and driven
//! here by the monotonic clock).
//!
//! Each profile's [`Bounds`] carry its [`Rule`]: the recent-claims rule
//! (`initial`, grown by the claims of the last [`WINDOW`], up to `max`; the
//! default) or the design's forecast rule (`policy = "forecast"`). Every
//! change of target is logged with the decision's inputs. CPU pressure is
//! an input ([`Demand::target_with_pressure`]), fed by the pressure monitor.
//! Also here: [`most_frequent`], how a pool picks its cgroup parent.

use std::collections::VecDeque;
use std::time::Instant;

use zygote_sizing::{ForecastPolicy, ForecastRule, Policy, RecentClaims};

/// How far back the recent-claims rule remembers demand (for the tests).
#[cfg(test)]
pub(crate) const WINDOW: std::time::Duration =
    std::time::Duration::from_secs(zygote_sizing::policy::RECENT_WINDOW as u64);

/// Which sizing policy a profile uses.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) enum Rule {
    #[default]
    RecentClaims,
    Forecast(ForecastRule),
}

/// The profile's sizing policy and constants.
pub(crate) fn rule(pool: &zygote_config::PoolBounds) -> Rule {
    match pool.policy {
        zygote_config::PoolPolicy::RecentClaims => Rule::RecentClaims,
        zygote_config::PoolPolicy::Forecast => Rule::Forecast(ForecastRule {
            scale_up_at: pool.scale_up_at,
            scale_up_to: pool.scale_up_to,
            scale_down_at: pool.scale_down_at,
            scale_down_to: pool.scale_down_to,
            cpu_pressure_threshold: pool.cpu_pressure_threshold,
            forecast: zygote_sizing::ForecastParams {
                horizon: pool.horizon_secs,
                ..zygote_sizing::ForecastParams::default()
            },
        }),
    }
}

/// Bounds and policy from the profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bounds {
    pub(crate) min: usize,
    pub(crate) initial: usize,
    pub(crate) max: usize,
    pub(crate) rule: Rule,
}

impl Bounds {
    fn policy(&self) -> Box<dyn Policy> {
        let b = zygote_sizing::Bounds {
            min: self.min,
            initial: self.initial,
            max: self.max,
        };
        match self.rule {
            Rule::RecentClaims => Box::new(RecentClaims::new(b)),
            Rule::Forecast(r) => Box::new(ForecastPolicy::new(b, r)),
        }
    }
}

/// Claim history and sizing policy of one profile. The policy is built
/// from the bounds on first use and rebuilt (history forgotten) when they
/// change.
#[derive(Default)]
pub(crate) struct Demand {
    origin: Option<Instant>,
    policy: Option<(Bounds, Box<dyn Policy>)>,
    /// Claims seen before the policy was built.
    early: Vec<f64>,
}

impl std::fmt::Debug for Demand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demand")
            .field("bounds", &self.policy.as_ref().map(|p| p.0))
            .finish()
    }
}

impl Demand {
    fn secs(&mut self, now: Instant) -> f64 {
        now.saturating_duration_since(*self.origin.get_or_insert(now))
            .as_secs_f64()
    }

    /// Records one claim attempt at `now`.
    pub(crate) fn record(&mut self, now: Instant) {
        let t = self.secs(now);
        match &mut self.policy {
            Some((_, p)) => p.record_claim(t),
            None => self.early.push(t),
        }
    }

    /// The target size at `now`, CPU pressure unknown.
    #[cfg(test)]
    pub(crate) fn target(&mut self, b: Bounds, now: Instant) -> usize {
        self.target_with_pressure(b, now, None)
    }

    /// The target size at `now`, given CPU pressure (PSI `some avg10`,
    /// percent) if known.
    pub(crate) fn target_with_pressure(&mut self, b: Bounds, now: Instant, cpu: Option<f64>) -> usize {
        let t = self.secs(now);
        if self.policy.as_ref().is_none_or(|(had, _)| *had != b) {
            let mut p = b.policy();
            for c in self.early.drain(..) {
                p.record_claim(c);
            }
            self.policy = Some((b, p));
        }
        let Some((_, p)) = &mut self.policy else {
            return b.initial.clamp(b.min, b.max);
        };
        let d = p.decide(t, cpu);
        if d.target != d.current {
            tracing::debug!(
                target = d.target,
                current = d.current,
                reason = ?d.reason,
                cpu_pressure = ?d.cpu_pressure,
                forecast = ?d.forecast,
                "pool target"
            );
        }
        d.target
    }
}

/// The value seen most often in `recent`; on a tie, `current` if it is
/// among the most frequent, else the most recent of them.
pub(crate) fn most_frequent<T: PartialEq + Clone>(recent: &VecDeque<T>, current: Option<&T>) -> Option<T> {
    let count = |v: &T| recent.iter().filter(|x| *x == v).count();
    let best = recent.iter().map(count).max()?;
    if let Some(c) = current.filter(|c| count(c) == best) {
        return Some(c.clone());
    }
    recent.iter().rev().find(|v| count(v) == best).cloned()
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_odd_parent_does_not_win() {
        let mut recent: VecDeque<&str> = ["/a", "/a", "/a"].into_iter().collect();
        assert_eq!(most_frequent(&recent, Some(&"/a")), Some("/a"));
        recent.push_back("/odd");
        assert_eq!(most_frequent(&recent, Some(&"/a")), Some("/a"));
        // A real move: the new parent becomes the majority.
        recent.extend(["/b", "/b", "/b", "/b"]);
        assert_eq!(most_frequent(&recent, Some(&"/a")), Some("/b"));
        // Ties keep the current choice.
        let tie: VecDeque<&str> = ["/a", "/b"].into_iter().collect();
        assert_eq!(most_frequent(&tie, Some(&"/a")), Some("/a"));
        assert_eq!(most_frequent(&tie, None), Some("/b"));
        assert_eq!(most_frequent(&VecDeque::<&str>::new(), None), None);
    }

    const B: Bounds = Bounds {
        min: 1,
        initial: 2,
        max: 8,
        rule: Rule::RecentClaims,
    };

    #[test]
    fn idle_profile_keeps_initial() {
        assert_eq!(Demand::default().target(B, Instant::now()), 2);
    }

    #[test]
    fn burst_grows_to_max_and_decays() {
        let mut d = Demand::default();
        let t0 = Instant::now();
        for _ in 0..20 {
            d.record(t0);
        }
        assert_eq!(d.target(B, t0), 8);
        d.record(t0 + Duration::from_secs(5));
        assert_eq!(d.target(B, t0 + Duration::from_secs(11)), 2);
    }

    #[test]
    fn forecast_rule_follows_a_burst_and_falls_to_min() {
        let b = Bounds {
            rule: Rule::Forecast(ForecastRule::default()),
            ..B
        };
        let mut d = Demand::default();
        let t0 = Instant::now();
        assert_eq!(d.target(b, t0), 2, "initial first");
        for _ in 0..20 {
            d.record(t0);
        }
        assert_eq!(d.target(b, t0 + Duration::from_millis(250)), 8);
        // Quiet: the forecast decays and the pool shrinks to min.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(d.target(b, later), 1);
        // Other bounds: a new policy, starting from initial.
        let wider = Bounds { max: 9, ..b };
        assert_eq!(d.target(wider, later), 2);
    }

    #[test]
    fn min_wins_over_a_smaller_initial() {
        let b = Bounds {
            min: 3,
            initial: 0,
            max: 4,
            rule: Rule::RecentClaims,
        };
        assert_eq!(Demand::default().target(b, Instant::now()), 3);
        let off = Bounds {
            min: 0,
            initial: 0,
            max: 0,
            rule: Rule::RecentClaims,
        };
        assert_eq!(Demand::default().target(off, Instant::now()), 0);
    }
}

//! How many warm zygotes a profile should have right now.
//!
//! The target starts at the profile's `initial` and follows demand: the
//! number of claims (served or not) in the last [`WINDOW`], so a burst grows
//! the pool up to `max` and a quiet period shrinks it back to `initial`
//! (never below `min`). Node pressure (PSI) joins this in a later issue.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back demand is remembered.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);

/// Bounds from the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub(crate) min: usize,
    pub(crate) initial: usize,
    pub(crate) max: usize,
}

/// Recent claim times of one profile.
#[derive(Debug, Default)]
pub(crate) struct Demand {
    claims: VecDeque<Instant>,
}

impl Demand {
    /// Records one claim attempt at `now`.
    pub(crate) fn record(&mut self, now: Instant) {
        self.claims.push_back(now);
        self.forget(now);
    }

    fn forget(&mut self, now: Instant) {
        while self.claims.front().is_some_and(|t| now.duration_since(*t) > WINDOW) {
            self.claims.pop_front();
        }
    }

    /// The target size at `now`.
    pub(crate) fn target(&mut self, b: Bounds, now: Instant) -> usize {
        self.forget(now);
        b.initial.max(self.claims.len()).clamp(b.min, b.max)
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
    fn min_wins_over_a_smaller_initial() {
        let b = Bounds {
            min: 3,
            initial: 0,
            max: 4,
        };
        assert_eq!(Demand::default().target(b, Instant::now()), 3);
        let off = Bounds {
            min: 0,
            initial: 0,
            max: 0,
        };
        assert_eq!(Demand::default().target(off, Instant::now()), 0);
    }
}

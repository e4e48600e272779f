//! The idle-time (inter-arrival) histogram of the hybrid-histogram policy
//! of Shahrad et al., "Serverless in the Wild" (USENIX ATC'20), for sparse
//! traffic, in one-minute bins over four hours as in the paper.
//!
//! The forecast reads it as a *hazard* ([`IdleHistogram::hazard`]): the
//! claims per second to expect at a given idle age, given none so far.
//! One zygote is warm at the ages whose hazard is at least a hit rate
//! ([`crate::ForecastParams::min_hit_rate`]): for a timer that is the bin
//! of its period (released on pattern before and after), for memoryless
//! traffic it is its rate (kept while a warm hit costs few enough idle
//! seconds, never otherwise). Before [`MIN_SAMPLES`] idle times the caller
//! falls back to a fixed keep-alive (the paper's fallback); beyond the
//! range the time-series forecast decides alone (the paper uses ARIMA
//! there).
//!
//! The paper's own window is kept for inspection ([`IdleHistogram::window`]):
//! from the *pre-warm* time (the 5th percentile of idle times, less 10 %)
//! to the *keep-alive* time (the 99th percentile, plus 10 %), when the
//! histogram is *representative* (at least [`MIN_SAMPLES`] idle times, at
//! most half of them beyond the range, bin counts with a coefficient of
//! variation of at least [`MIN_CV`]). The forecast no longer uses it: for
//! an app with bursts and long quiet spells its 99th percentile held a
//! zygote for hours after every claim (docs/pool-sizing.md has the
//! numbers).

/// Width of one bin, seconds.
pub const BIN: f64 = 60.0;
/// Bins (four hours).
pub const BINS: usize = 240;
/// Fewest idle times before the histogram is trusted.
pub const MIN_SAMPLES: u32 = 5;
/// Smallest coefficient of variation of the bin counts that is trusted.
pub const MIN_CV: f64 = 2.0;

/// Idle times between claims, in one-minute bins.
#[derive(Debug, Clone)]
pub(crate) struct IdleHistogram {
    bins: Vec<u32>,
    in_range: u32,
    beyond: u32,
    last: Option<f64>,
}

impl Default for IdleHistogram {
    fn default() -> Self {
        IdleHistogram {
            bins: vec![0; BINS],
            in_range: 0,
            beyond: 0,
            last: None,
        }
    }
}

/// When to hold a warm zygote after the last claim.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Seconds after the last claim at which one zygote should be warm.
    pub prewarm: f64,
    /// Seconds after the last claim at which it may go.
    pub keep_alive: f64,
}

impl IdleHistogram {
    /// Records a claim at `t` (claims closer than a second apart are one
    /// arrival: the histogram is about idle gaps, not burst sizes).
    pub(crate) fn record(&mut self, t: f64) {
        if let Some(last) = self.last {
            let idle = t - last;
            if idle < 1.0 {
                return;
            }
            let i = (idle / BIN) as usize;
            if i < BINS {
                self.bins[i] += 1;
                self.in_range += 1;
            } else {
                self.beyond += 1;
            }
        }
        self.last = Some(t);
    }

    /// Time of the last recorded claim.
    pub(crate) fn last(&self) -> Option<f64> {
        self.last
    }

    fn representative(&self) -> bool {
        let n = self.in_range;
        if n < MIN_SAMPLES || self.beyond > n {
            return false;
        }
        let mean = n as f64 / BINS as f64;
        let var = self.bins.iter().map(|&c| (c as f64 - mean).powi(2)).sum::<f64>() / BINS as f64;
        var.sqrt() / mean >= MIN_CV
    }

    /// Start of the bin holding the `q` quantile of the in-range idle times.
    fn quantile_bin(&self, q: f64) -> usize {
        let want = (q * self.in_range as f64).ceil().max(1.0) as u32;
        let mut seen = 0;
        for (i, &c) in self.bins.iter().enumerate() {
            seen += c;
            if seen >= want {
                return i;
            }
        }
        BINS - 1
    }

    /// The hazard at idle age `age` seconds: claims per second expected
    /// now given none since the last, estimated from the bin holding
    /// `age` (its idle times over the time the idle periods that reached
    /// it spent in it, with arrivals taken as uniform within the bin).
    /// `None` before [`MIN_SAMPLES`] idle times or beyond the range.
    #[cfg(test)]
    pub(crate) fn hazard(&self, age: f64) -> Option<f64> {
        self.max_hazard(age, age)
    }

    /// The highest hazard of the bins from idle age `from` to `to`
    /// seconds; `None` as for [`IdleHistogram::hazard`] at `from`.
    pub(crate) fn max_hazard(&self, from: f64, to: f64) -> Option<f64> {
        let first = (from.max(0.0) / BIN) as usize;
        if self.learning() || first >= BINS {
            return None;
        }
        let last = ((to.max(from) / BIN) as usize).min(BINS - 1);
        // Idle times that reached bin `last + 1` (in range or beyond).
        let mut reached: f64 = self.bins[last + 1..].iter().map(|&c| c as f64).sum::<f64>() + self.beyond as f64;
        let mut best: f64 = 0.0;
        for i in (first..=last).rev() {
            let here = self.bins[i] as f64;
            reached += here;
            if here > 0.0 {
                // Those that end in the bin spend half of it there on average.
                best = best.max(here / (BIN * (reached - here / 2.0)));
            }
        }
        Some(best)
    }

    /// Fewer than [`MIN_SAMPLES`] idle times yet (the paper's fallback to a
    /// fixed keep-alive applies).
    pub(crate) fn learning(&self) -> bool {
        self.in_range + self.beyond < MIN_SAMPLES
    }

    /// The pre-warm/keep-alive window, if the histogram is representative.
    pub(crate) fn window(&self) -> Option<Window> {
        if !self.representative() {
            return None;
        }
        let head = self.quantile_bin(0.05) as f64 * BIN;
        let tail = (self.quantile_bin(0.99) + 1) as f64 * BIN;
        Some(Window {
            prewarm: head * 0.9,
            keep_alive: tail * 1.1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_claims_give_a_narrow_window() {
        let mut h = IdleHistogram::default();
        for i in 0..20 {
            h.record(i as f64 * 1800.0); // every 30 minutes
        }
        let w = h.window().expect("representative");
        assert_eq!(w.prewarm, 30.0 * 60.0 * 0.9);
        assert!((w.keep_alive - 31.0 * 60.0 * 1.1).abs() < 1e-9, "{w:?}");
    }

    #[test]
    fn too_few_or_out_of_range_is_not_representative() {
        let mut h = IdleHistogram::default();
        for i in 0..4 {
            h.record(i as f64 * 600.0);
        }
        assert_eq!(h.window(), None, "3 idle times");
        let mut far = IdleHistogram::default();
        for i in 0..20 {
            far.record(i as f64 * 5.0 * 3600.0); // every 5 hours: beyond the range
        }
        assert_eq!(far.window(), None);
    }

    #[test]
    fn bursts_count_as_one_arrival() {
        let mut h = IdleHistogram::default();
        for i in 0..10 {
            let t = i as f64 * 600.0;
            h.record(t);
            h.record(t + 0.1);
            h.record(t + 0.2);
        }
        assert_eq!(h.in_range, 9);
    }

    #[test]
    fn hazard_is_high_at_the_period_and_zero_elsewhere() {
        let mut h = IdleHistogram::default();
        assert_eq!(h.hazard(0.0), None, "learning");
        for i in 0..20 {
            h.record(i as f64 * 1800.0);
        }
        assert_eq!(h.hazard(600.0), Some(0.0));
        // 19 idle times all in bin 30: they reach it and end in it.
        let at = h.hazard(1810.0).unwrap();
        assert!((at - 1.0 / 30.0).abs() < 1e-12, "{at}");
        assert_eq!(h.hazard(1900.0), Some(0.0), "none reached bin 31");
        assert_eq!(h.hazard(5.0 * 3600.0), None, "beyond the range");
    }

    #[test]
    fn hazard_of_even_idle_times_is_their_rate() {
        // One idle time in each of the 240 bins (the middle of it): at bin
        // i, 1 of the 240 - i that reached it ends there.
        let mut h = IdleHistogram::default();
        let mut t = 0.0;
        h.record(t);
        for i in 0..BINS {
            t += i as f64 * BIN + BIN / 2.0;
            h.record(t);
        }
        let got = h.hazard(0.0).unwrap();
        assert!((got - 1.0 / (BIN * 239.5)).abs() < 1e-12, "{got}");
    }
}

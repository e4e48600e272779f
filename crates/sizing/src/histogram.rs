//! The idle-time (inter-arrival) histogram of the hybrid-histogram policy
//! of Shahrad et al., "Serverless in the Wild" (USENIX ATC'20), for sparse
//! traffic: after a claim, nothing is kept warm until the *pre-warm* time
//! (the 5th percentile of past idle times, less a 10 % margin), then one
//! zygote is kept until the *keep-alive* time (the 99th percentile, plus
//! 10 %). The histogram has one-minute bins over four hours as in the
//! paper; it is *representative* when it holds at least [`MIN_SAMPLES`]
//! idle times, at most half of them beyond its range, and its bin counts
//! have a coefficient of variation of at least [`MIN_CV`] (the paper's
//! test). When it is not, the caller falls back to a fixed keep-alive
//! (the paper's fallback) and to the time-series forecast.

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

    /// Too few idle times yet, or too evenly spread to predict (the
    /// paper's fallback to a fixed keep-alive applies); false when the
    /// idle times mostly exceed the range (nothing to keep).
    pub(crate) fn learning_or_spread(&self) -> bool {
        self.beyond <= self.in_range.max(MIN_SAMPLES) && !self.representative()
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
}

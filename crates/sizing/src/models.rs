//! Online time-series models of claims per bin: each takes one bin's count
//! at a time and forecasts the next bin's, in O(1) time and memory (the
//! Holt-Winters season is a fixed table), so the daemon can run all of them
//! on every profile every tick.
//!
//! * [`Ewma`]: exponentially weighted mean (level only);
//! * [`Holt`]: level and trend (double exponential smoothing);
//! * [`HoltWinters`]: level, trend and an additive daily season kept in
//!   [`SEASON_BUCKETS`] buckets of the day (every bin of a bucket updates
//!   its bucket; the forecast reads the bucket of the bin ahead).

/// Seconds in the season of [`HoltWinters`].
pub const DAY: f64 = 86_400.0;
/// Buckets of the daily season (15 minutes each).
pub const SEASON_BUCKETS: usize = 96;

/// One online model of a counts series.
pub(crate) trait Model {
    /// Takes the count of the bin that started at `t` (seconds).
    fn update(&mut self, t: f64, y: f64);
    /// The forecast for the bin starting at `t`, never negative.
    fn forecast(&self, t: f64) -> f64;
}

/// Exponentially weighted moving average.
#[derive(Debug, Clone)]
pub(crate) struct Ewma {
    alpha: f64,
    level: Option<f64>,
}

impl Ewma {
    pub(crate) fn new(alpha: f64) -> Self {
        Ewma { alpha, level: None }
    }
}

impl Model for Ewma {
    fn update(&mut self, _t: f64, y: f64) {
        self.level = Some(match self.level {
            None => y,
            Some(l) => l + self.alpha * (y - l),
        });
    }
    fn forecast(&self, _t: f64) -> f64 {
        self.level.unwrap_or(0.0).max(0.0)
    }
}

/// Holt's linear method: level and trend.
#[derive(Debug, Clone)]
pub(crate) struct Holt {
    alpha: f64,
    beta: f64,
    state: Option<(f64, f64)>,
}

impl Holt {
    pub(crate) fn new(alpha: f64, beta: f64) -> Self {
        Holt {
            alpha,
            beta,
            state: None,
        }
    }
}

impl Model for Holt {
    fn update(&mut self, _t: f64, y: f64) {
        self.state = Some(match self.state {
            None => (y, 0.0),
            Some((l, b)) => {
                let nl = self.alpha * y + (1.0 - self.alpha) * (l + b);
                (nl, self.beta * (nl - l) + (1.0 - self.beta) * b)
            }
        });
    }
    fn forecast(&self, _t: f64) -> f64 {
        self.state.map_or(0.0, |(l, b)| (l + b).max(0.0))
    }
}

/// Additive Holt-Winters with a daily season in buckets.
#[derive(Debug, Clone)]
pub(crate) struct HoltWinters {
    alpha: f64,
    beta: f64,
    gamma: f64,
    level: Option<(f64, f64)>,
    season: [f64; SEASON_BUCKETS],
}

fn bucket(t: f64) -> usize {
    ((t.rem_euclid(DAY) / DAY) * SEASON_BUCKETS as f64) as usize % SEASON_BUCKETS
}

impl HoltWinters {
    pub(crate) fn new(alpha: f64, beta: f64, gamma: f64) -> Self {
        HoltWinters {
            alpha,
            beta,
            gamma,
            level: None,
            season: [0.0; SEASON_BUCKETS],
        }
    }
}

impl Model for HoltWinters {
    fn update(&mut self, t: f64, y: f64) {
        let k = bucket(t);
        let s = self.season[k];
        let (l, b) = match self.level {
            None => (y - s, 0.0),
            Some((l, b)) => {
                let nl = self.alpha * (y - s) + (1.0 - self.alpha) * (l + b);
                (nl, self.beta * (nl - l) + (1.0 - self.beta) * b)
            }
        };
        self.level = Some((l, b));
        self.season[k] = s + self.gamma * (y - l - s);
    }
    fn forecast(&self, t: f64) -> f64 {
        self.level
            .map_or(0.0, |(l, b)| (l + b + self.season[bucket(t)]).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(m: &mut dyn Model, series: impl Fn(f64) -> f64, bins: usize, width: f64) -> f64 {
        // Mean absolute one-step error over the last tenth of the series.
        let mut err = 0.0;
        let tail = bins / 10;
        for i in 0..bins {
            let t = i as f64 * width;
            if i >= bins - tail {
                err += (m.forecast(t) - series(t)).abs();
            }
            m.update(t, series(t));
        }
        err / tail as f64
    }

    #[test]
    fn constant_series_is_learned_by_all() {
        for m in [
            &mut Ewma::new(0.3) as &mut dyn Model,
            &mut Holt::new(0.3, 0.1),
            &mut HoltWinters::new(0.3, 0.05, 0.2),
        ] {
            assert!(run(m, |_| 5.0, 500, 10.0) < 1e-6);
        }
    }

    #[test]
    fn ramp_needs_a_trend() {
        let ramp = |t: f64| t / 10.0;
        let ewma = run(&mut Ewma::new(0.3), ramp, 1000, 10.0);
        let holt = run(&mut Holt::new(0.3, 0.1), ramp, 1000, 10.0);
        assert!(holt < 0.01, "holt {holt}");
        assert!(ewma > 1.0, "ewma {ewma}");
    }

    #[test]
    fn daily_season_is_learned_by_holt_winters_only() {
        // Three days of 5-minute bins: busy 08:00-20:00, quiet at night.
        let day = |t: f64| {
            if (t.rem_euclid(DAY) / 3600.0) as u32 % 24 >= 8 && ((t.rem_euclid(DAY)) / 3600.0) < 20.0 {
                20.0
            } else {
                0.0
            }
        };
        let bins = (3.0 * DAY / 300.0) as usize;
        let hw = run(&mut HoltWinters::new(0.01, 0.001, 0.5), day, bins, 300.0);
        let holt = run(&mut Holt::new(0.3, 0.1), day, bins, 300.0);
        assert!(hw < holt, "hw {hw} holt {holt}");
        assert!(hw < 1.0, "hw {hw}");
    }

    #[test]
    fn forecasts_are_never_negative() {
        let mut h = Holt::new(0.9, 0.9);
        for (i, y) in [10.0, 5.0, 0.0, 0.0].into_iter().enumerate() {
            h.update(i as f64, y);
        }
        assert_eq!(h.forecast(5.0), 0.0);
    }
}

//! One profile's claim history and its forecast of claims over a horizon.
//!
//! Claims are counted in bins of [`ForecastParams::bin`] seconds. When a bin
//! closes, every model ([`crate::models`]) first has its one-step error
//! folded into a rolling mean absolute error (an EWMA of |error| with weight
//! [`MAE_WEIGHT`]), then learns the count; the forecast uses the model with
//! the lowest rolling error. The pool must absorb the peaks of the claims
//! over the horizon, not their mean: the series forecast is the mean plus
//! [`ForecastParams::z`] deviations, the variance being the mean times the
//! profile's index of dispersion of claims per second (an EWMA over about
//! a minute, [`SECOND_WEIGHT`]: 1 for Poisson arrivals, near 0 for a timer,
//! above 1 for bursts). A burst the models have not seen yet (their bin
//! is still open) is caught by the claims of the last bin, sliding: when
//! they exceed the model's count for a bin by more than a deviation (and
//! one claim) they replace its rate. A *nowcast*, the claims of the last
//! horizon (sliding), is a floor under the result, so a burst is answered
//! within a tick rather than a bin. For sparse traffic the idle-time histogram
//! ([`crate::histogram`]) decides whether one zygote should be warm now: at
//! idle ages whose hazard is at least [`ForecastParams::min_hit_rate`].

use std::collections::VecDeque;

use serde::Serialize;

use crate::histogram::{IdleHistogram, Window};
use crate::models::{Ewma, Holt, HoltWinters, Model};

/// Weight of the newest error in the rolling mean absolute error.
pub const MAE_WEIGHT: f64 = 0.05;
/// Weight of the newest second in the mean and variance of claims per
/// second (about the last minute).
pub const SECOND_WEIGHT: f64 = 1.0 / 60.0;
/// Sparse traffic: the warm window opens this fraction of the idle age
/// early (the pre-warm margin of the hybrid-histogram policy).
pub const LOOKAHEAD: f64 = 0.1;
/// Quiet seconds after which the per-second mean and variance are reset
/// rather than decayed second by second (so a decision after a long idle
/// gap costs no more than one after a busy second).
const QUIET_SECONDS: f64 = 1000.0;

/// The time-series models, in the order of [`Forecaster`]'s table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    Ewma,
    Holt,
    HoltWinters,
}

const KINDS: [ModelKind; 3] = [ModelKind::Ewma, ModelKind::Holt, ModelKind::HoltWinters];

/// Forecast knobs of a profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastParams {
    /// Seconds per bin of the series.
    pub bin: f64,
    /// Seconds ahead the forecast covers (the demand a pool must absorb
    /// before refills catch up).
    pub horizon: f64,
    /// The pool covers the mean claims over the horizon plus this many
    /// standard deviations (`mean + z * sqrt(dispersion * mean)`): a pool
    /// must absorb the peaks, not the mean.
    pub z: f64,
    /// Seconds one zygote is kept after a claim while the idle-time
    /// histogram is still learning (fewer than its minimum of idle times).
    pub fallback_keep_alive: f64,
    /// Sparse traffic: one zygote is kept at an idle age whose hazard
    /// (claims per second expected, from the idle-time histogram) is at
    /// least this, i.e. while it is expected to earn a warm hit for at
    /// most `1 / min_hit_rate` idle zygote-seconds.
    pub min_hit_rate: f64,
}

impl Default for ForecastParams {
    fn default() -> Self {
        ForecastParams {
            bin: 10.0,
            horizon: 1.5,
            z: 2.5,
            fallback_keep_alive: 600.0,
            min_hit_rate: 1.0 / 300.0,
        }
    }
}

/// What the forecast saw and said.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Forecast {
    /// The model with the lowest rolling error (used).
    pub model: ModelKind,
    /// Its rolling mean absolute error, claims per bin.
    pub mae: f64,
    /// Claims expected over the horizon from the model (mean plus `z`
    /// deviations) and the nowcast, whichever is more.
    pub series: f64,
    /// One zygote wanted by the idle-time histogram's hazard (or its
    /// fallback keep-alive while it learns).
    pub sparse_warm: bool,
    /// Claims expected over the horizon: `series`, at least 1 when
    /// `sparse_warm`.
    pub predicted: f64,
}

/// Claim history and models of one profile.
pub struct Forecaster {
    params: ForecastParams,
    models: [Box<dyn Model + Send>; 3],
    mae: [f64; 3],
    bin_start: Option<f64>,
    in_bin: f64,
    /// Claim times of the last bin or horizon, whichever is longer.
    recent: VecDeque<f64>,
    idle: IdleHistogram,
    /// Claims per second: the open second, then EWMA mean and variance.
    second: Option<f64>,
    in_second: f64,
    per_second: (f64, f64),
}

impl std::fmt::Debug for Forecaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forecaster")
            .field("params", &self.params)
            .field("mae", &self.mae)
            .finish()
    }
}

impl Forecaster {
    pub fn new(params: ForecastParams) -> Self {
        Forecaster {
            params,
            models: [
                Box::new(Ewma::new(0.3)),
                Box::new(Holt::new(0.3, 0.05)),
                Box::new(HoltWinters::new(0.002, 0.0005, 0.2)),
            ],
            mae: [0.0; 3],
            bin_start: None,
            in_bin: 0.0,
            recent: VecDeque::new(),
            idle: IdleHistogram::default(),
            second: None,
            in_second: 0.0,
            per_second: (0.0, 0.0),
        }
    }

    /// Closes every bin that ended by `now`.
    fn advance(&mut self, now: f64) {
        let bin = self.params.bin;
        let start = *self.bin_start.get_or_insert(now);
        let mut start = start;
        while now >= start + bin {
            let y = std::mem::take(&mut self.in_bin);
            for (m, e) in self.models.iter_mut().zip(self.mae.iter_mut()) {
                *e += MAE_WEIGHT * ((m.forecast(start) - y).abs() - *e);
                m.update(start, y);
            }
            start += bin;
        }
        self.bin_start = Some(start);
        let sec = *self.second.get_or_insert(now.floor());
        let closed = (now - sec).floor();
        if closed >= 1.0 {
            let mut y = std::mem::take(&mut self.in_second);
            // The empty seconds after the first one exactly, up to
            // [`QUIET_SECONDS`]; after that many the mean and variance
            // are below 1e-7 of what they were: 0.
            if closed > QUIET_SECONDS {
                self.per_second = (0.0, 0.0);
            } else {
                for _ in 0..closed as u64 {
                    let (m, v) = &mut self.per_second;
                    let d = y - *m;
                    *m += SECOND_WEIGHT * d;
                    *v = (1.0 - SECOND_WEIGHT) * (*v + SECOND_WEIGHT * d * d);
                    y = 0.0;
                }
            }
            self.second = Some(sec + closed);
        }
        let keep = self.params.horizon.max(self.params.bin);
        while self.recent.front().is_some_and(|&t| now - t > keep) {
            self.recent.pop_front();
        }
    }

    /// Records one claim at `t` (seconds, non-decreasing).
    pub fn record(&mut self, t: f64) {
        self.advance(t);
        self.in_bin += 1.0;
        self.in_second += 1.0;
        self.recent.push_back(t);
        self.idle.record(t);
    }

    /// The histogram's pre-warm/keep-alive window, if representative.
    pub fn window(&self) -> Option<Window> {
        self.idle.window()
    }

    /// The forecast at `now`.
    pub fn forecast(&mut self, now: f64) -> Forecast {
        self.advance(now);
        let p = self.params;
        let best = (0..3).min_by(|&a, &b| self.mae[a].total_cmp(&self.mae[b])).unwrap_or(0);
        let next = self.bin_start.unwrap_or(now);
        let mean = self.models[best].forecast(next) * p.horizon / p.bin;
        // Index of dispersion of claims per second: 1 for Poisson
        // arrivals, near 0 for a timer, above 1 for bursts.
        let (m, v) = self.per_second;
        let dispersion = if m > 1e-3 { (v / m).clamp(0.0, 100.0) } else { 1.0 };
        // A burst the model has not seen yet (its bin is still open): the
        // claims of the last bin (sliding) above the model's count for a
        // bin by more than a deviation (and one claim) replace its rate.
        let since = |w: f64| self.recent.iter().rev().take_while(|&&t| now - t <= w).count() as f64;
        let per_bin = mean * p.bin / p.horizon;
        let last_bin = since(p.bin);
        let mean = if last_bin > per_bin + (dispersion * per_bin).sqrt() + 1.0 {
            last_bin * p.horizon / p.bin
        } else {
            mean
        };
        let series = (mean + p.z * (dispersion * mean).sqrt()).max(since(p.horizon));
        let sparse_warm = match self.idle.last() {
            None => false,
            // Warm by the time the hazard rises: looking ahead by the
            // refill lead time (the horizon) or by the paper's 10 % margin.
            Some(last) => {
                let age = now - last;
                match self.idle.max_hazard(age, age + p.horizon.max(LOOKAHEAD * age)) {
                    Some(h) => h >= p.min_hit_rate,
                    None => self.idle.learning() && age < p.fallback_keep_alive,
                }
            }
        };
        Forecast {
            model: KINDS[best],
            mae: self.mae[best],
            series,
            sparse_warm,
            predicted: if sparse_warm { series.max(1.0) } else { series },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ForecastParams {
        ForecastParams {
            bin: 10.0,
            horizon: 10.0,
            z: 0.0,
            fallback_keep_alive: 600.0,
            min_hit_rate: 1.0 / 300.0,
        }
    }

    #[test]
    fn steady_rate_is_forecast() {
        let mut f = Forecaster::new(params());
        for i in 0..3000 {
            f.record(i as f64 * 0.5); // 2 per second
        }
        let fc = f.forecast(1500.0);
        assert!((fc.predicted - 20.0).abs() < 1.0, "{fc:?}");
    }

    #[test]
    fn a_burst_is_seen_within_the_tick() {
        let mut f = Forecaster::new(params());
        for i in 0..30 {
            f.record(100.0 + i as f64 * 0.01);
        }
        assert!(f.forecast(100.5).predicted >= 30.0);
    }

    #[test]
    fn periodic_app_is_warm_only_around_its_period() {
        let mut f = Forecaster::new(params());
        for i in 0..30 {
            f.record(i as f64 * 1800.0);
        }
        let last = 29.0 * 1800.0;
        assert!(!f.forecast(last + 600.0).sparse_warm, "10 minutes after");
        assert!(f.forecast(last + 1750.0).sparse_warm, "just before the next");
        assert!(!f.forecast(last + 3000.0).sparse_warm, "long after");
    }

    #[test]
    fn a_timer_needs_less_headroom_than_poisson_arrivals() {
        let p = ForecastParams {
            z: 2.0,
            horizon: 1.0,
            ..params()
        };
        let (mut timer, mut poisson) = (Forecaster::new(p), Forecaster::new(p));
        let mut rng = crate::rng::Rng::new(5);
        for s in 0..600 {
            timer.record(s as f64 + 0.5);
            for _ in 0..rng.poisson(1.0) {
                poisson.record(s as f64 + rng.uniform());
            }
        }
        let (t, q) = (timer.forecast(600.0).series, poisson.forecast(600.0).series);
        assert!(t < 1.5, "timer {t}");
        assert!(q > 2.5, "poisson {q}");
    }

    #[test]
    fn a_rare_irregular_app_is_not_kept_warm_once_learned() {
        let mut f = Forecaster::new(params());
        // Idle times of 20, 50, 80, ... minutes: under one claim an hour.
        let mut t = 0.0;
        f.record(t);
        t += 1200.0;
        f.record(t);
        assert!(f.forecast(t + 300.0).sparse_warm, "learning: the fallback keep-alive");
        for i in 1..8 {
            t += 1200.0 + i as f64 * 1800.0;
            f.record(t);
        }
        for age in [60.0, 300.0, 1300.0, 3100.0] {
            assert!(!f.forecast(t + age).sparse_warm, "age {age}");
        }
    }

    #[test]
    fn seasonal_series_chooses_holt_winters() {
        let mut f = Forecaster::new(params());
        // Three days and a morning: 1 claim/s from 08:00 to 20:00, nothing
        // at night. Just after the fourth morning's rise, the seasonal
        // model (which saw it coming) has the lowest recent error.
        let end = 3 * 86_400 + 8 * 3600 + 120;
        for s in 0..end {
            let h = (s % 86_400) / 3600;
            if (8..20).contains(&h) {
                f.record(s as f64);
            }
        }
        let fc = f.forecast(end as f64);
        assert_eq!(fc.model, ModelKind::HoltWinters, "{fc:?} {f:?}");
    }
}

//! Claim arrival traces: the built-in generated ones and the file format
//! users replay their own with.
//!
//! File format: one claim per line, `t_seconds[,profile]`: seconds from
//! the trace's start (a non-negative decimal number), optionally a profile
//! name (default `default`; each profile gets its own pool). Blank lines
//! and lines starting with `#` are ignored; lines need not be sorted. The
//! trace lasts until its last claim, rounded up to the next second.
//!
//! Built-in traces ([`builtin`], generated deterministically from fixed
//! seeds ([`SEEDS`]) with [`crate::rng`]; [`builtin_seeded`] draws the same
//! shape from another seed):
//! * `mixed`: 40 applications over two days shaped after the published
//!   characterisation of the Azure Functions 2019 trace (Shahrad et al.,
//!   ATC'20): daily invocation counts log-uniform in three bands so that
//!   45 % of apps are invoked at most hourly and 81 % at most once a
//!   minute, the busiest about 10^6 a day (6 orders of magnitude across
//!   apps; the full trace's 8 include apps busier than one pool serves);
//!   a sixth are timer-driven (a fixed period, second-level jitter), half
//!   the rest follow a diurnal cycle (rate x (1 + 0.8 sin)), the others
//!   are Poisson with bursts (10x the rate for a minute, a few times a day);
//! * `step-burst`: one profile, 0.2 claims/s with three 5-minute steps to
//!   20 claims/s, over 2 hours;
//! * `ramp`: one profile ramping 0 -> 20 claims/s over an hour and back;
//! * `idle-gaps`: one profile active (1 claim/s) for 5 minutes at a time,
//!   separated by idle gaps of 20 minutes to 3 hours, over a day.

use std::f64::consts::PI;

use crate::rng::Rng;

/// Names of the built-in traces.
pub const BUILTIN: [&str; 4] = ["mixed", "step-burst", "ramp", "idle-gaps"];

/// Claims over time, per profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub name: String,
    pub profiles: Vec<String>,
    /// (seconds, index into `profiles`), sorted by time.
    pub claims: Vec<(f64, usize)>,
    /// Seconds simulated.
    pub duration: f64,
}

/// A trace file that cannot be read.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{name}: line {line}: {message}")]
pub struct TraceError {
    pub name: String,
    pub line: usize,
    pub message: String,
}

impl Trace {
    fn new(name: &str, profiles: Vec<String>, mut claims: Vec<(f64, usize)>, duration: Option<f64>) -> Trace {
        claims.sort_by(|a, b| a.0.total_cmp(&b.0));
        let end = claims.last().map_or(0.0, |c| c.0.floor() + 1.0);
        Trace {
            name: name.to_string(),
            profiles,
            claims,
            duration: duration.unwrap_or(end).max(end),
        }
    }

    /// Parses the file format above; `name` names the trace in errors.
    pub fn parse(name: &str, text: &str) -> Result<Trace, TraceError> {
        let mut profiles: Vec<String> = Vec::new();
        let mut claims = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let err = |message: String| TraceError {
                name: name.to_string(),
                line: i + 1,
                message,
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split(',').map(str::trim);
            let t_field = fields.next().unwrap_or_default();
            let t: f64 = t_field
                .parse()
                .map_err(|_| err(format!("time {t_field:?} is not a number of seconds")))?;
            if !t.is_finite() || t < 0.0 {
                return Err(err(format!("time {t_field:?} must be a finite number >= 0")));
            }
            let profile = fields.next().unwrap_or("default");
            if profile.is_empty() {
                return Err(err("empty profile name".to_string()));
            }
            if fields.next().is_some() {
                return Err(err("more than two fields (expected t_seconds[,profile])".to_string()));
            }
            let p = match profiles.iter().position(|x| x == profile) {
                Some(p) => p,
                None => {
                    profiles.push(profile.to_string());
                    profiles.len() - 1
                }
            };
            claims.push((t, p));
        }
        if claims.is_empty() {
            return Err(TraceError {
                name: name.to_string(),
                line: text.lines().count(),
                message: "no claims".to_string(),
            });
        }
        Ok(Trace::new(name, profiles, claims, None))
    }
}

/// The seeds the built-in traces are generated from by default (the
/// results in docs/ are for these), in the order of [`BUILTIN`].
pub const SEEDS: [u64; 4] = [2019, 11, 12, 13];

/// A built-in trace by name, from its default seed ([`SEEDS`]).
pub fn builtin(name: &str) -> Option<Trace> {
    let i = BUILTIN.iter().position(|&n| n == name)?;
    builtin_seeded(name, SEEDS[i])
}

/// A built-in trace by name, generated from `seed`: the same shape, other
/// draws. Named `NAME/seed=SEED` unless `seed` is the default.
pub fn builtin_seeded(name: &str, seed: u64) -> Option<Trace> {
    let mut t = generate(name, seed)?;
    if BUILTIN.iter().position(|&n| n == name).map(|i| SEEDS[i]) != Some(seed) {
        t.name = format!("{name}/seed={seed}");
    }
    Some(t)
}

fn generate(name: &str, seed: u64) -> Option<Trace> {
    Some(match name {
        "mixed" => mixed(seed),
        "step-burst" => one(name, 7200.0, seed, |t| {
            if (1200.0..1500.0).contains(&(t % 2400.0)) {
                20.0
            } else {
                0.2
            }
        }),
        "ramp" => one(name, 7200.0, seed, |t| 20.0 * (1.0 - (t - 3600.0).abs() / 3600.0)),
        "idle-gaps" => idle_gaps(seed),
        _ => return None,
    })
}

/// Poisson claims of one profile at `rate(t)` per second.
fn one(name: &str, duration: f64, seed: u64, rate: impl Fn(f64) -> f64) -> Trace {
    let mut rng = Rng::new(seed);
    let mut claims = Vec::new();
    poisson(&mut rng, duration, 0, &rate, &mut claims);
    Trace::new(name, vec!["default".to_string()], claims, Some(duration))
}

/// Claims second by second: a Poisson count at the second's rate, at
/// uniform times within it.
fn poisson(rng: &mut Rng, duration: f64, p: usize, rate: &dyn Fn(f64) -> f64, out: &mut Vec<(f64, usize)>) {
    for s in 0..duration as u64 {
        let t = s as f64;
        for _ in 0..rng.poisson(rate(t).max(0.0)) {
            out.push((t + rng.uniform(), p));
        }
    }
}

fn idle_gaps(seed: u64) -> Trace {
    let mut rng = Rng::new(seed);
    let duration = 86_400.0;
    let mut claims = Vec::new();
    let mut t: f64 = 600.0;
    while t < duration {
        let end = (t + 300.0).min(duration);
        let mut s = t;
        while s < end {
            // Exponential gaps of mean 1 s.
            s += -(1.0 - rng.uniform()).ln();
            if s < end {
                claims.push((s, 0));
            }
        }
        t = end + 1200.0 + rng.uniform() * (3.0 * 3600.0 - 1200.0);
    }
    Trace::new("idle-gaps", vec!["default".to_string()], claims, Some(duration))
}

/// Forty apps after the Azure Functions 2019 shape (see the module docs).
fn mixed(seed: u64) -> Trace {
    const APPS: usize = 40;
    let duration = 2.0 * 86_400.0;
    let mut rng = Rng::new(seed);
    let mut profiles = Vec::new();
    let mut claims = Vec::new();
    for app in 0..APPS {
        // Daily invocations, log10: 45 % in [0, log10 24], 36 % up to
        // log10 1440, 19 % up to 6.
        let band = rng.uniform();
        let (lo, hi) = if band < 0.45 {
            (0.0, 24f64.log10())
        } else if band < 0.81 {
            (24f64.log10(), 1440f64.log10())
        } else {
            (1440f64.log10(), 6.0)
        };
        let per_day = 10f64.powf(lo + rng.uniform() * (hi - lo));
        let rate = per_day / 86_400.0;
        let kind = rng.uniform();
        let phase = rng.uniform() * 86_400.0;
        let name;
        if kind < 1.0 / 6.0 {
            // Timer: a fixed period (a whole number of seconds), jitter
            // under a second.
            name = format!("timer-{app}");
            let period = (86_400.0 / per_day).round().max(1.0);
            let mut t = rng.uniform() * period;
            while t < duration {
                claims.push((t + rng.uniform(), app));
                t += period;
            }
        } else if kind < 1.0 / 6.0 + 5.0 / 12.0 {
            name = format!("diurnal-{app}");
            let f = move |t: f64| rate * (1.0 + 0.8 * (2.0 * PI * (t - phase) / 86_400.0).sin());
            poisson(&mut rng, duration, app, &f, &mut claims);
        } else {
            name = format!("bursty-{app}");
            // Bursts: 4 a day on average, a minute long, 10x the rate
            // (and at least 1 claim/s).
            let mut bursts = Vec::new();
            let mut t = 0.0;
            while t < duration {
                t += -(1.0 - rng.uniform()).ln() * 86_400.0 / 4.0;
                bursts.push(t);
            }
            let f = move |t: f64| {
                let hot = bursts.iter().any(|&b| (b..b + 60.0).contains(&t));
                if hot {
                    (rate * 10.0).max(1.0)
                } else {
                    rate
                }
            };
            poisson(&mut rng, duration, app, &f, &mut claims);
        }
        profiles.push(name);
    }
    Trace::new("mixed", profiles, claims, Some(duration))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_traces_are_deterministic() {
        for name in BUILTIN {
            let (a, b) = (builtin(name).unwrap(), builtin(name).unwrap());
            assert_eq!(a, b, "{name}");
            assert!(!a.claims.is_empty(), "{name}");
            assert!(a.claims.windows(2).all(|w| w[0].0 <= w[1].0), "{name} sorted");
        }
        assert_eq!(builtin("nope"), None);
    }

    #[test]
    fn another_seed_is_another_draw_of_the_same_shape() {
        let (a, b) = (builtin("mixed").unwrap(), builtin_seeded("mixed", 7).unwrap());
        assert_eq!(b.name, "mixed/seed=7");
        assert_eq!(builtin_seeded("mixed", 2019).unwrap(), a);
        assert_ne!(a.claims, b.claims);
        assert_eq!(a.profiles.len(), b.profiles.len());
        assert!(
            (a.duration - b.duration).abs() <= 1.0,
            "two days (and a timer's jitter)"
        );
    }

    #[test]
    fn mixed_spans_orders_of_magnitude() {
        let t = builtin("mixed").unwrap();
        let mut per = vec![0usize; t.profiles.len()];
        for &(_, p) in &t.claims {
            per[p] += 1;
        }
        let (lo, hi) = (per.iter().min().unwrap(), per.iter().max().unwrap());
        assert!(*hi as f64 / (*lo).max(1) as f64 > 1e4, "{lo}..{hi}");
        assert!(t.profiles.iter().any(|p| p.starts_with("timer-")));
    }

    #[test]
    fn parses_the_file_format() {
        let t = Trace::parse("x", "# comment\n\n2.5,api\n1,api\n3\n").unwrap();
        assert_eq!(t.profiles, vec!["api".to_string(), "default".to_string()]);
        assert_eq!(t.claims, vec![(1.0, 0), (2.5, 0), (3.0, 1)]);
        assert_eq!(t.duration, 4.0);
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = |text: &str| Trace::parse("f.csv", text).unwrap_err().to_string();
        assert_eq!(e("1\nabc\n"), "f.csv: line 2: time \"abc\" is not a number of seconds");
        assert_eq!(
            e("# c\n-1\n"),
            "f.csv: line 2: time \"-1\" must be a finite number >= 0"
        );
        assert_eq!(e("1\n2,\n"), "f.csv: line 2: empty profile name");
        assert_eq!(
            e("1,a,b\n"),
            "f.csv: line 1: more than two fields (expected t_seconds[,profile])"
        );
        assert_eq!(e("# only\n"), "f.csv: line 1: no claims");
        assert_eq!(e("inf\n"), "f.csv: line 1: time \"inf\" must be a finite number >= 0");
    }
}

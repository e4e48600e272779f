//! A profile's `[profiles.<name>.pool.health]` table: how often the pool
//! probes its idle zygotes (a ping over each one's control socket, which
//! its wait loop answers) and how long an answer may take before the
//! zygote counts as unresponsive and is replaced. The daemon's
//! `pool/health.rs` runs the probe.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::field::Invalid;

/// Probe period and ping timeout, in milliseconds in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolHealth {
    /// Every idle zygote of the profile is pinged this often.
    #[serde(default = "PoolHealth::default_interval_ms")]
    pub probe_interval_ms: u64,
    /// A ping unanswered for this long marks the zygote unresponsive.
    #[serde(default = "PoolHealth::default_timeout_ms")]
    pub ping_timeout_ms: u64,
}

impl PoolHealth {
    /// Bounds of `probe_interval_ms`: 100 ms to one hour.
    pub const INTERVAL_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;
    /// Lowest `ping_timeout_ms`.
    pub const MIN_TIMEOUT_MS: u64 = 10;

    /// A ping per idle zygote every 5 s: one datagram each way, answered
    /// in microseconds by a healthy zygote.
    fn default_interval_ms() -> u64 {
        5000
    }
    /// Generous: a zygote on a busy 2-core node may wait for a CPU for
    /// hundreds of milliseconds, and a false alarm costs a birth.
    fn default_timeout_ms() -> u64 {
        1000
    }

    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.probe_interval_ms)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.ping_timeout_ms)
    }

    /// The interval within its bounds, the timeout at least
    /// [`Self::MIN_TIMEOUT_MS`] and below the interval.
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        let bad = |key: &'static str, value: u64, want: &'static str| Invalid::PoolSizing {
            key,
            value: value.to_string(),
            want,
        };
        if !Self::INTERVAL_MS.contains(&self.probe_interval_ms) {
            return Err(bad(
                "pool.health.probe_interval_ms",
                self.probe_interval_ms,
                "in 100..=3600000",
            ));
        }
        let t = self.ping_timeout_ms;
        if t < Self::MIN_TIMEOUT_MS || t >= self.probe_interval_ms {
            return Err(bad(
                "pool.health.ping_timeout_ms",
                t,
                ">= 10 and below pool.health.probe_interval_ms",
            ));
        }
        Ok(())
    }
}

impl Default for PoolHealth {
    fn default() -> Self {
        PoolHealth {
            probe_interval_ms: Self::default_interval_ms(),
            ping_timeout_ms: Self::default_timeout_ms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::load;
    use super::PoolHealth;
    use crate::{Field, PolicyError};

    #[test]
    fn defaults_and_given_values() {
        let c =
            load("[profiles.a]\n[profiles.b.pool.health]\nprobe_interval_ms = 300\nping_timeout_ms = 50\n").unwrap();
        assert_eq!(c.profiles["a"].pool.health, PoolHealth::default());
        assert_eq!(
            (
                PoolHealth::default().probe_interval_ms,
                PoolHealth::default().ping_timeout_ms
            ),
            (5000, 1000)
        );
        let b = c.profiles["b"].pool.health;
        assert_eq!((b.interval().as_millis(), b.timeout().as_millis()), (300, 50));
    }

    #[test]
    fn bad_values_name_file_profile_and_field() {
        for (text, key, message) in [
            (
                "[profiles.x.pool.health]\nprobe_interval_ms = 50\n",
                "pool.health.probe_interval_ms",
                "/etc/zygote/config.toml: profile \"x\": pool.health.probe_interval_ms (50) must be in 100..=3600000",
            ),
            (
                "[profiles.x.pool.health]\nprobe_interval_ms = 500\nping_timeout_ms = 500\n",
                "pool.health.ping_timeout_ms",
                "/etc/zygote/config.toml: profile \"x\": pool.health.ping_timeout_ms (500) must be >= 10 and below pool.health.probe_interval_ms",
            ),
            (
                "[profiles.x.pool.health]\nping_timeout_ms = 5\n",
                "pool.health.ping_timeout_ms",
                "/etc/zygote/config.toml: profile \"x\": pool.health.ping_timeout_ms (5) must be >= 10 and below pool.health.probe_interval_ms",
            ),
        ] {
            let e = load(text).unwrap_err();
            assert_eq!(e.to_string(), message);
            match e {
                PolicyError::InvalidProfile { profile, invalid, .. } => {
                    assert_eq!((profile.as_str(), invalid.field()), ("x", Field::PoolSizing(key)))
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_their_place() {
        let e = load("[profiles.x.pool.health]\ninterval_ms = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("profile \"x\": pool.health.interval_ms"), "{e}");
        assert!(e.contains("unknown field `interval_ms`"), "{e}");
    }
}

//! A profile's `[profiles.<name>.pool.pressure]` table: the node pressure
//! (Linux PSI, percent of wall time some task stalled) above which the
//! profile's pool stops creating zygotes, and, for memory, releases its
//! idle zygotes beyond `pool.min`. The daemon's `pressure` module reads
//! PSI; the pool's refill loop compares against these.

use serde::{Deserialize, Serialize};

use crate::field::{Field, Invalid};

/// Thresholds in percent (0-100); 100 can never be exceeded, so it turns a
/// resource's gate off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolPressure {
    /// `cpu.pressure` `some`.
    #[serde(default = "PoolPressure::default_cpu")]
    pub cpu_some: f64,
    /// `memory.pressure` `some`: above it no births, and idle zygotes
    /// beyond `pool.min` are released (oldest first).
    #[serde(default = "PoolPressure::default_memory")]
    pub memory_some: f64,
    /// `io.pressure` `some`.
    #[serde(default = "PoolPressure::default_io")]
    pub io_some: f64,
}

impl PoolPressure {
    /// Off by default: a small node busy with builds sits at 99% CPU
    /// `some` for hours, and a pool that never refills there helps nobody.
    fn default_cpu() -> f64 {
        100.0
    }
    /// Off by default too: node-level memory PSI counts a container
    /// thrashing against its own memory limit (every OOM-bound task does
    /// for a while), which would drain the pools of the whole node.
    fn default_memory() -> f64 {
        100.0
    }
    /// Off by default, as CPU.
    fn default_io() -> f64 {
        100.0
    }

    /// Each threshold a finite percent.
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        for (field, value) in [
            (Field::PoolPressureCpuSome, self.cpu_some),
            (Field::PoolPressureMemorySome, self.memory_some),
            (Field::PoolPressureIoSome, self.io_some),
        ] {
            if !(0.0..=100.0).contains(&value) {
                return Err(Invalid::PressurePercent { field, value });
            }
        }
        Ok(())
    }
}

impl Default for PoolPressure {
    fn default() -> Self {
        PoolPressure {
            cpu_some: Self::default_cpu(),
            memory_some: Self::default_memory(),
            io_some: Self::default_io(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::load;
    use super::PoolPressure;
    use crate::Field;

    #[test]
    fn defaults_and_given_thresholds() {
        let c = load("[profiles.a]\n[profiles.b.pool]\nmax_births_per_sec = 3\n[profiles.b.pool.pressure]\ncpu_some = 40\nio_some = 100.0\n").unwrap();
        assert_eq!(c.profiles["a"].pool.pressure, PoolPressure::default());
        assert_eq!(c.profiles["a"].pool.max_births_per_sec, 10);
        let b = &c.profiles["b"].pool;
        assert_eq!(
            (b.pressure.cpu_some, b.pressure.memory_some, b.pressure.io_some),
            (40.0, 100.0, 100.0)
        );
        assert_eq!(b.max_births_per_sec, 3);
    }

    #[test]
    fn bad_thresholds_name_file_profile_and_field() {
        super::super::test_support::assert_refused(&[
            (
                "[profiles.x.pool.pressure]\ncpu_some = 140.0\n",
                Field::PoolPressureCpuSome,
                "/etc/zygote/config.toml: profile \"x\": pool.pressure.cpu_some (140) must be a percent in 0..=100",
            ),
            (
                "[profiles.x.pool.pressure]\nmemory_some = -1\n",
                Field::PoolPressureMemorySome,
                "/etc/zygote/config.toml: profile \"x\": pool.pressure.memory_some (-1) must be a percent in 0..=100",
            ),
            (
                "[profiles.x.pool.pressure]\nio_some = nan\n",
                Field::PoolPressureIoSome,
                "/etc/zygote/config.toml: profile \"x\": pool.pressure.io_some (NaN) must be a percent in 0..=100",
            ),
            (
                "[profiles.x.pool]\nmax_births_per_sec = 0\n",
                Field::PoolMaxBirthsPerSec,
                "/etc/zygote/config.toml: profile \"x\": pool.max_births_per_sec (0) must be >= 1",
            ),
        ]);
    }

    #[test]
    fn unknown_keys_are_refused_with_their_place() {
        let e = load("[profiles.x.pool.pressure]\ncpu_full = 3.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("profile \"x\": pool.pressure.cpu_full"), "{e}");
        assert!(e.contains("unknown field `cpu_full`"), "{e}");
    }
}

//! What a config error is about, as types: the [`Field`] of the file a
//! validation failure concerns, the [`Invalid`] value itself (its message
//! starts with the field's key), and the [`Location`] of a TOML error.
//! Callers match on these instead of reading the message text.

use std::fmt;
use std::path::PathBuf;

use crate::config::NsKind;

/// A key of the config file. Profile fields are relative to
/// `[profiles.<name>]`; the others are top-level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `default_profile`.
    DefaultProfile,
    /// `wasm.cache_dir`.
    WasmCacheDir,
    /// `wasm.cache_max_mb`.
    WasmCacheMaxMb,
    /// `metrics.listen`.
    MetricsListen,
    /// The profile's name (its table key).
    ProfileName,
    Namespaces,
    PoolMin,
    PoolMax,
    PoolInitial,
    PoolMaxAgeSecs,
    /// One of the pool's sizing keys (`pool.horizon_secs`, `pool.scale_up_at`, ...).
    PoolSizing(&'static str),
    PoolMaxBirthsPerSec,
    PoolPressureCpuSome,
    PoolPressureMemorySome,
    PoolPressureIoSome,
    ResourcesMemoryLimitBytes,
    ResourcesPidsLimit,
    ResourcesCpuShares,
    /// `pool.placement`: the NUMA node each zygote is born on.
    PoolPlacement,
    /// `pool.prefetch`: files read ahead when the pool refills.
    PoolPrefetch,
    Landlock,
    Seccomp,
}

impl Field {
    /// The dotted key as written in the file.
    pub fn key(self) -> &'static str {
        match self {
            Field::DefaultProfile => "default_profile",
            Field::WasmCacheDir => "wasm.cache_dir",
            Field::WasmCacheMaxMb => "wasm.cache_max_mb",
            Field::MetricsListen => "metrics.listen",
            Field::ProfileName => "name",
            Field::Namespaces => "namespaces",
            Field::PoolMin => "pool.min",
            Field::PoolMax => "pool.max",
            Field::PoolInitial => "pool.initial",
            Field::PoolMaxAgeSecs => "pool.max_age_secs",
            Field::PoolSizing(key) => key,
            Field::PoolMaxBirthsPerSec => "pool.max_births_per_sec",
            Field::PoolPressureCpuSome => "pool.pressure.cpu_some",
            Field::PoolPressureMemorySome => "pool.pressure.memory_some",
            Field::PoolPressureIoSome => "pool.pressure.io_some",
            Field::ResourcesMemoryLimitBytes => "resources.memory_limit_bytes",
            Field::ResourcesPidsLimit => "resources.pids_limit",
            Field::ResourcesCpuShares => "resources.cpu_shares",
            Field::PoolPlacement => "pool.placement",
            Field::PoolPrefetch => "pool.prefetch",
            Field::Landlock => "landlock",
            Field::Seccomp => "seccomp",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A string that is not a valid profile name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid profile name (it must match [a-z0-9][a-z0-9_-]{{0,62}})")]
pub struct BadProfileName;

/// A value of the config that failed validation. The message starts with
/// the field's key; [`Invalid::field`] gives it as a [`Field`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Invalid {
    #[error("name: {} is {BadProfileName}", crate::quote(.0))]
    ProfileName(String),
    #[error("namespaces: \"{}\" is listed twice", .0.name())]
    DuplicateNamespace(NsKind),
    #[error("pool.max ({0}) is larger than {limit}", limit = crate::PoolBounds::LIMIT)]
    PoolMaxOverLimit(u32),
    #[error("pool.initial ({initial}) is larger than pool.max ({max})")]
    PoolInitialOverMax { initial: u32, max: u32 },
    #[error("pool.min ({min}) is larger than pool.initial ({initial})")]
    PoolMinOverInitial { min: u32, initial: u32 },
    #[error("pool.max_age_secs (0) must be > 0")]
    PoolMaxAgeZero,
    /// A pool sizing key out of its range (`value` as written).
    #[error("{key} ({value}) must be {want}")]
    PoolSizing {
        key: &'static str,
        value: String,
        want: &'static str,
    },
    #[error("pool.max_births_per_sec (0) must be >= 1")]
    PoolBirthsPerSecZero,
    #[error("pool.placement: an empty node list places nothing; write \"none\" or name nodes")]
    PlacementEmpty,
    #[error("pool.placement: node {0} is listed twice")]
    PlacementDuplicate(u32),
    /// Entry `index` of `pool.prefetch` is not an absolute path without `..`.
    #[error("pool.prefetch[{index}]: {path:?} {why}")]
    PrefetchPath {
        index: usize,
        path: PathBuf,
        why: &'static str,
    },
    /// `field` is one of the `pool.pressure` thresholds.
    #[error("{field} ({value}) must be a percent in 0..=100")]
    PressurePercent { field: Field, value: f64 },
    /// `field` is one of the `resources` limits.
    #[error("{field} ({value}) must be > 0")]
    NotPositive { field: Field, value: i64 },
    #[error("resources.cpu_shares ({0}) must be in 2..=262144")]
    CpuSharesRange(u64),
    /// The landlock section's own message (it names its sub-field).
    #[error("landlock.{0}")]
    Landlock(String),
    /// `compatibility = "required"` and the kernel lacks a feature.
    #[error("landlock.compatibility: \"required\", but {0}")]
    LandlockRequired(String),
    #[error("seccomp.filter.syscalls[{rule}].names: empty")]
    SeccompNoNames { rule: usize },
    #[error("seccomp.filter.syscalls[{rule}].names[{name}]: empty name")]
    SeccompEmptyName { rule: usize, name: usize },
    #[error(
        "default_profile: profile \"{name}\" is not defined (known profiles: {})",
        known.join(", ")
    )]
    DefaultProfileUndefined { name: String, known: Vec<String> },
    #[error("wasm.cache_dir: {0:?} is not an absolute path")]
    WasmCacheDirRelative(PathBuf),
    #[error("wasm.cache_max_mb: must be at least 1")]
    WasmCacheMaxMbZero,
    #[error("metrics.listen: {} is not an ip:port (e.g. \"127.0.0.1:9464\")", crate::quote(.0))]
    MetricsListen(String),
    #[error("metrics.listen: {} has port 0; give the port Prometheus scrapes", crate::quote(.0))]
    MetricsPortZero(String),
}

impl Invalid {
    /// The field the value was given in.
    pub fn field(&self) -> Field {
        match self {
            Invalid::ProfileName(_) => Field::ProfileName,
            Invalid::NotPositive { field, .. } | Invalid::PressurePercent { field, .. } => *field,
            Invalid::DuplicateNamespace(_) => Field::Namespaces,
            Invalid::PoolMaxOverLimit(_) => Field::PoolMax,
            Invalid::PoolInitialOverMax { .. } => Field::PoolInitial,
            Invalid::PoolMinOverInitial { .. } => Field::PoolMin,
            Invalid::PoolMaxAgeZero => Field::PoolMaxAgeSecs,
            Invalid::PoolSizing { key, .. } => Field::PoolSizing(key),
            Invalid::PoolBirthsPerSecZero => Field::PoolMaxBirthsPerSec,
            Invalid::PlacementEmpty | Invalid::PlacementDuplicate(_) => Field::PoolPlacement,
            Invalid::PrefetchPath { .. } => Field::PoolPrefetch,
            Invalid::CpuSharesRange(_) => Field::ResourcesCpuShares,
            Invalid::Landlock(_) | Invalid::LandlockRequired(_) => Field::Landlock,
            Invalid::SeccompNoNames { .. } | Invalid::SeccompEmptyName { .. } => Field::Seccomp,
            Invalid::DefaultProfileUndefined { .. } => Field::DefaultProfile,
            Invalid::WasmCacheDirRelative(_) => Field::WasmCacheDir,
            Invalid::WasmCacheMaxMbZero => Field::WasmCacheMaxMb,
            Invalid::MetricsListen(_) | Invalid::MetricsPortZero(_) => Field::MetricsListen,
        }
    }
}

/// Where in a TOML text an error is: line and column (1-based) and, as far
/// as the text's table headers and `key =` tell, the profile and the
/// dotted key below it (or the top-level key path).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
    pub profile: Option<String>,
    /// Dotted key, relative to the profile when there is one.
    pub key: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)?;
        if let Some(p) = &self.profile {
            write!(f, ": profile \"{p}\"")?;
        }
        if let Some(k) = &self.key {
            write!(f, ": {k}")?;
        }
        Ok(())
    }
}

/// A TOML error's position, or its absence.
pub(crate) struct At<'a>(pub(crate) &'a Option<Location>);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(l) => l.fmt(f),
            None => f.write_str("(no position)"),
        }
    }
}

//! The value types of a profile ([`Profile`] and its sections) and how each
//! section is read from the config file (serde, unknown fields denied).

use std::path::PathBuf;
use std::time::Duration;

use nix::sched::CloneFlags;
use oci_spec::runtime::LinuxSeccomp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::landlock::LandlockPolicy;

/// How a profile runs containers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Namespace,
    Wasm,
}

/// A namespace a zygote creates in advance. There is deliberately no user
/// namespace: its ID mapping comes from the task's spec. Mount and cgroup
/// namespaces are not created in advance (each task's are made at Create):
/// the config refuses them rather than accept and drop them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NsKind {
    Pid,
    Uts,
    Ipc,
    Net,
}

impl NsKind {
    pub const ALL: [NsKind; 4] = [NsKind::Pid, NsKind::Uts, NsKind::Ipc, NsKind::Net];

    /// The name used in the config file.
    pub fn name(self) -> &'static str {
        match self {
            NsKind::Pid => "pid",
            NsKind::Uts => "uts",
            NsKind::Ipc => "ipc",
            NsKind::Net => "net",
        }
    }

    /// The `clone`/`unshare` flag creating this namespace.
    pub fn clone_flag(self) -> CloneFlags {
        match self {
            NsKind::Pid => CloneFlags::CLONE_NEWPID,
            NsKind::Uts => CloneFlags::CLONE_NEWUTS,
            NsKind::Ipc => CloneFlags::CLONE_NEWIPC,
            NsKind::Net => CloneFlags::CLONE_NEWNET,
        }
    }

    /// Parse a config-file name, with specific messages for `user`,
    /// `mount` and `cgroup`.
    pub fn from_name(name: &str) -> Result<NsKind, BadNamespace> {
        match name {
            "user" => return Err(BadNamespace::User),
            "mount" => return Err(BadNamespace::NotImplemented("mount")),
            "cgroup" => return Err(BadNamespace::NotImplemented("cgroup")),
            _ => {}
        }
        NsKind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| BadNamespace::Unknown(name.to_string()))
    }
}

/// A `namespaces` entry that is not a namespace zygotes create in advance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadNamespace {
    #[error(
        "\"user\" is not allowed: a user namespace cannot be created in advance \
         (its ID mapping comes from the task's spec)"
    )]
    User,
    #[error(
        "\"{0}\" is not implemented: zygotes do not create a {0} namespace in advance \
         (each task gets its own at Create); remove it"
    )]
    NotImplemented(&'static str),
    #[error("unknown namespace \"{0}\" (allowed: pid, uts, ipc, net)")]
    Unknown(String),
}

impl Serialize for NsKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for NsKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        NsKind::from_name(&name).map_err(serde::de::Error::custom)
    }
}

/// How a profile's pool target is chosen (file field `pool.policy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PoolPolicy {
    /// The design's rule on a forecast of claims (docs/pool-sizing.md).
    Forecast,
    /// `initial`, grown by the claims of the last 10 s (the default: an
    /// idle pool stays at `initial`, which nodes rely on today).
    #[default]
    RecentClaims,
}

/// Bounds and sizing of a profile's warm pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolBounds {
    #[serde(default)]
    pub min: u32,
    #[serde(default = "PoolBounds::default_max")]
    pub max: u32,
    #[serde(default = "PoolBounds::default_initial")]
    pub initial: u32,
    /// A zygote older than this is replaced. File field: `max_age_secs`.
    #[serde(rename = "max_age_secs", with = "secs", default = "PoolBounds::default_max_age")]
    pub max_age: Duration,
    #[serde(default)]
    pub policy: PoolPolicy,
    /// Seconds of demand the forecast covers.
    #[serde(default = "PoolBounds::default_horizon")]
    pub horizon_secs: f64,
    /// Grow when the forecast exceeds this times the current target ...
    #[serde(default = "PoolBounds::default_scale_up_at")]
    pub scale_up_at: f64,
    /// ... to this times the forecast.
    #[serde(default = "PoolBounds::default_scale_up_to")]
    pub scale_up_to: f64,
    /// Shrink when the forecast is below this times the current target ...
    #[serde(default = "PoolBounds::default_scale_down_at")]
    pub scale_down_at: f64,
    /// ... to this times the forecast (never below `min`).
    #[serde(default = "PoolBounds::default_scale_down_to")]
    pub scale_down_to: f64,
    /// CPU pressure (PSI some avg10, percent) from which the pool does not grow.
    #[serde(default = "PoolBounds::default_cpu_pressure_threshold")]
    pub cpu_pressure_threshold: f64,
    /// Most zygotes born per second for this profile (>= 1).
    #[serde(default = "PoolBounds::default_max_births_per_sec")]
    pub max_births_per_sec: u32,
    /// Node pressure above which no zygote is born.
    #[serde(default)]
    pub pressure: super::pressure::PoolPressure,
    /// Health probe of idle zygotes.
    #[serde(default)]
    pub health: super::health::PoolHealth,
    /// The NUMA node each zygote is born on.
    #[serde(default)]
    pub placement: super::placement::Placement,
    /// Files brought into the page cache when the pool refills (absolute).
    #[serde(default)]
    pub prefetch: Vec<PathBuf>,
}

impl PoolBounds {
    /// Upper limit of `max`.
    pub const LIMIT: u32 = 256;

    fn default_max() -> u32 {
        8
    }
    fn default_initial() -> u32 {
        2
    }
    fn default_max_age() -> Duration {
        Duration::from_secs(600)
    }
    fn default_horizon() -> f64 {
        1.5
    }
    fn default_scale_up_at() -> f64 {
        1.2
    }
    fn default_scale_up_to() -> f64 {
        1.3
    }
    fn default_scale_down_at() -> f64 {
        0.6
    }
    fn default_scale_down_to() -> f64 {
        1.1
    }
    fn default_cpu_pressure_threshold() -> f64 {
        50.0
    }
    fn default_max_births_per_sec() -> u32 {
        10
    }
}

impl Default for PoolBounds {
    fn default() -> Self {
        PoolBounds {
            min: 0,
            max: Self::default_max(),
            initial: Self::default_initial(),
            max_age: Self::default_max_age(),
            policy: PoolPolicy::default(),
            horizon_secs: Self::default_horizon(),
            scale_up_at: Self::default_scale_up_at(),
            scale_up_to: Self::default_scale_up_to(),
            scale_down_at: Self::default_scale_down_at(),
            scale_down_to: Self::default_scale_down_to(),
            cpu_pressure_threshold: Self::default_cpu_pressure_threshold(),
            max_births_per_sec: Self::default_max_births_per_sec(),
            pressure: Default::default(),
            health: Default::default(),
            placement: Default::default(),
            prefetch: Vec::new(),
        }
    }
}

/// `Duration` as whole seconds.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// Resource limits applied when the task's spec sets none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceDefaults {
    #[serde(default)]
    pub memory_limit_bytes: Option<i64>,
    #[serde(default)]
    pub pids_limit: Option<i64>,
    #[serde(default)]
    pub cpu_shares: Option<u64>,
}

/// How a profile's seccomp filter combines with the spec's `linux.seccomp`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompMode {
    /// Installed on top of the spec's filter (both apply).
    #[default]
    Add,
    /// Used instead of the spec's filter.
    Replace,
}

/// A profile's seccomp filter, an OCI `LinuxSeccomp` in its JSON field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeccompPolicy {
    #[serde(default)]
    pub mode: SeccompMode,
    #[serde(deserialize_with = "strict_seccomp")]
    pub filter: LinuxSeccomp,
}

/// Deserialize a `LinuxSeccomp`, rejecting field names oci-spec would ignore
/// (it does not deny unknown fields itself).
fn strict_seccomp<'de, D: Deserializer<'de>>(d: D) -> Result<LinuxSeccomp, D::Error> {
    use serde::de::Error;
    let input = serde_json::Value::deserialize(d)?;
    let filter: LinuxSeccomp = serde_json::from_value(input.clone()).map_err(D::Error::custom)?;
    let back = serde_json::to_value(&filter).map_err(D::Error::custom)?;
    if let Some(path) = unknown_key(&input, &back, "filter") {
        return Err(D::Error::custom(format!("unknown field `{path}`")));
    }
    Ok(filter)
}

/// The first object key of `input` that `known` (the same value after a
/// round trip through the typed struct) lacks, as a dotted path.
fn unknown_key(input: &serde_json::Value, known: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => i.iter().find_map(|(key, v)| match k.get(key) {
            None => Some(format!("{at}.{key}")),
            Some(kv) => unknown_key(v, kv, &format!("{at}.{key}")),
        }),
        (Value::Array(i), Value::Array(k)) => i
            .iter()
            .zip(k)
            .enumerate()
            .find_map(|(n, (iv, kv))| unknown_key(iv, kv, &format!("{at}[{n}]"))),
        _ => None,
    }
}

/// One profile, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub mode: Mode,
    /// Namespaces the zygotes create in advance.
    pub namespaces: Vec<NsKind>,
    pub pool: PoolBounds,
    pub resources: ResourceDefaults,
    pub landlock: Option<LandlockPolicy>,
    pub seccomp: Option<SeccompPolicy>,
}

impl Profile {
    pub(crate) fn default_namespaces() -> Vec<NsKind> {
        vec![NsKind::Pid, NsKind::Uts, NsKind::Ipc, NsKind::Net]
    }

    /// The built-in `default` profile.
    pub fn builtin() -> Profile {
        Profile {
            name: super::BUILTIN_PROFILE.to_string(),
            mode: Mode::Namespace,
            namespaces: Self::default_namespaces(),
            pool: PoolBounds::default(),
            resources: ResourceDefaults::default(),
            landlock: None,
            seccomp: None,
        }
    }

    /// The union of the clone flags of [`Profile::namespaces`].
    pub fn clone_flags(&self) -> CloneFlags {
        self.namespaces
            .iter()
            .fold(CloneFlags::empty(), |acc, ns| acc | ns.clone_flag())
    }
}

/// The node-level `[wasm]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmNode {
    /// Where compiled artifacts are kept (absolute).
    #[serde(default = "WasmNode::default_cache_dir")]
    pub cache_dir: PathBuf,
    /// Bound on the cache's size, MiB.
    #[serde(default = "WasmNode::default_cache_max_mb")]
    pub cache_max_mb: u64,
}

impl WasmNode {
    pub const DEFAULT_CACHE_DIR: &'static str = "/var/cache/zygote/wasm";

    fn default_cache_dir() -> PathBuf {
        PathBuf::from(Self::DEFAULT_CACHE_DIR)
    }

    fn default_cache_max_mb() -> u64 {
        1024
    }
}

impl Default for WasmNode {
    fn default() -> Self {
        WasmNode {
            cache_dir: Self::default_cache_dir(),
            cache_max_mb: Self::default_cache_max_mb(),
        }
    }
}

/// The node-level `[metrics]` table: where the daemon serves its Prometheus
/// metrics. `listen` is kept as written and checked at load (an
/// `address:port` with a non-zero port); `enabled = false` serves none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsNode {
    #[serde(default = "MetricsNode::default_enabled")]
    pub enabled: bool,
    /// `ip:port` of the HTTP listener (`GET /metrics`).
    #[serde(default = "MetricsNode::default_listen")]
    pub listen: String,
}

impl MetricsNode {
    /// Loopback only: reaching it from elsewhere is a deliberate choice.
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:9464";

    fn default_enabled() -> bool {
        true
    }

    fn default_listen() -> String {
        Self::DEFAULT_LISTEN.to_string()
    }

    /// The address to serve on; `None` when disabled. Validated at load, so
    /// a loaded config always has one when enabled.
    pub fn address(&self) -> Option<std::net::SocketAddr> {
        if !self.enabled {
            return None;
        }
        self.listen.parse().ok()
    }
}

impl Default for MetricsNode {
    fn default() -> Self {
        MetricsNode {
            enabled: Self::default_enabled(),
            listen: Self::default_listen(),
        }
    }
}

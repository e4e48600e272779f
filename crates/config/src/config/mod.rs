//! zygote's config file and its profiles: where the file is found, what a
//! profile holds, and which profile a task gets.
//!
//! The file is TOML, at `/etc/zygote/config.toml` unless `$ZYGOTE_CONFIG` or
//! an explicit path says otherwise; without a file zygote uses the built-in
//! `default` profile. Every table denies unknown fields. Format (see also
//! `crates/config/config.example.toml`, which the tests parse):
//!
//! ```toml
//! default_profile = "default"      # optional; defaults to "default"
//! [profiles.default]               # if no profile "default" is given, the built-in one is added
//! mode = "namespace"               # "namespace" (default) | "wasm"
//! namespaces = ["pid", "uts", "ipc", "net"]  # created in advance: pid, uts, ipc, net (not user, mount, cgroup)
//! [profiles.default.pool]          # every field optional (built-in values shown)
//! min = 0                          # 0 <= min <= initial <= max <= 256
//! max = 8
//! initial = 2
//! max_age_secs = 600               # > 0
//! max_births_per_sec = 10          # >= 1: births paced per profile
//! [profiles.default.pool.pressure] # node PSI "some", percent 0..=100 (100 = off)
//! cpu_some = 100.0                 # above: no births (100: off, the default)
//! memory_some = 20.0               # above: no births, idle beyond min released
//! io_some = 100.0                  # above: no births (100: off, the default)
//! [profiles.default.pool.health]   # probe of idle zygotes (pidfd, ping, generation)
//! probe_interval_ms = 5000         # 100..=3600000
//! ping_timeout_ms = 1000           # >= 10, below probe_interval_ms: unanswered -> replaced
//! # also in [profiles.default.pool]:
//! # placement = "none"             # "none" | "spread" | "least-pressure" | [0, 2] (NUMA node ids)
//! # prefetch = ["/usr/bin/python3"] # absolute, no "..": read ahead into the page cache at refills
//! [profiles.default.resources]     # defaults applied when the spec sets none
//! memory_limit_bytes = 536870912   # optional, > 0
//! pids_limit = 1024                # optional, > 0
//! cpu_shares = 1024                # optional, 2..=262144
//! [profiles.locked.landlock]       # see the `landlock` module
//! compatibility = "best_effort"    # or "required"
//! fs = [ { path = "/bin", access = ["read", "execute"] } ]
//! net_bind = [8080]                # absent = not restricted; [] = all denied
//! net_connect = [80, 443]
//! scope = ["abstract_unix_socket", "signal"]
//! [profiles.locked.seccomp]
//! mode = "add"                     # "add" (default, stacked on the spec's) | "replace"
//! filter = { defaultAction = "SCMP_ACT_ALLOW", syscalls = [ { names = ["mkdir"], action = "SCMP_ACT_ERRNO", errnoRet = 1 } ] }
//! [wasm]                           # node-level, optional
//! cache_dir = "/var/cache/zygote/wasm"  # compiled artifacts; $ZYGOTE_WASM_CACHE_DIR overrides
//! cache_max_mb = 1024              # LRU bound, >= 1
//! [metrics]                        # node-level, optional: the daemon's Prometheus endpoint
//! enabled = true                   # false: no listener
//! listen = "127.0.0.1:9464"        # ip:port, port > 0; GET /metrics
//! ```
//!
//! Keys zygote does not implement are refused at load with a message saying
//! so, never accepted and ignored: the namespaces `mount` and `cgroup`.
//!
//! Profile names match `[a-z0-9][a-z0-9_-]{0,62}`. A task's profile comes
//! from the `zygote.dev/profile` annotation, else from the runtime options
//! of the Create request (module `options`), else `default_profile`.

mod health;
pub(crate) mod parse;
mod placement;
mod pressure;
#[cfg(test)]
mod props;
#[cfg(test)]
mod select_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
mod types;
pub(crate) mod validate;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub use health::PoolHealth;
pub use placement::Placement;
pub use pressure::PoolPressure;
pub use types::{
    BadNamespace, MetricsNode, Mode, NsKind, PoolBounds, PoolPolicy, Profile, ResourceDefaults, SeccompMode,
    SeccompPolicy, WasmNode,
};

use crate::error::PolicyError;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/zygote/config.toml";
pub const CONFIG_ENV: &str = "ZYGOTE_CONFIG";
pub const PROFILE_ANNOTATION: &str = "zygote.dev/profile";
pub const BUILTIN_PROFILE: &str = "default";

/// The loaded config: every profile, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (`None` for the built-in config).
    pub source: Option<PathBuf>,
    pub default_profile: String,
    pub profiles: BTreeMap<String, Profile>,
    /// Node-level WebAssembly settings (the artifact cache).
    pub wasm: WasmNode,
    /// Where the daemon serves Prometheus metrics.
    pub metrics: MetricsNode,
}

impl Config {
    /// Load the config: explicit path > `$ZYGOTE_CONFIG` >
    /// `/etc/zygote/config.toml` if it exists > built-in. An explicit or
    /// `$ZYGOTE_CONFIG` path that does not exist is an error.
    ///
    /// `landlock_abi` is the running kernel's Landlock ABI (0 without
    /// Landlock; `zygote_runtime::landlock::abi_version()`), against which a
    /// policy with `compatibility = "required"` is checked.
    pub fn load(explicit: Option<&Path>, landlock_abi: u32) -> Result<Config, PolicyError> {
        let env = std::env::var_os(CONFIG_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Self::load_from(explicit, env.as_deref(), Path::new(DEFAULT_CONFIG_PATH), landlock_abi)
    }

    /// [`Config::load`] with the environment and default path passed in.
    pub(crate) fn load_from(
        explicit: Option<&Path>,
        env: Option<&Path>,
        default_path: &Path,
        landlock_abi: u32,
    ) -> Result<Config, PolicyError> {
        let (path, origin) = match (explicit, env) {
            (Some(p), _) => (p, "an explicit path"),
            (None, Some(p)) => (p, "$ZYGOTE_CONFIG"),
            (None, None) => (default_path, ""),
        };
        let text = match crate::read::small_text_file(path, crate::read::MAX_FILE_BYTES) {
            Ok(text) => text,
            Err(PolicyError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && origin.is_empty() =>
            {
                tracing::debug!(path = %path.display(), "no config file, using the built-in profile");
                return Ok(Config::builtin());
            }
            Err(PolicyError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(PolicyError::NotFound {
                    path: path.to_path_buf(),
                    origin,
                })
            }
            Err(e) => return Err(e),
        };
        let config = Config::from_toml(&text, Some(path), landlock_abi)?;
        tracing::info!(
            path = %path.display(),
            default_profile = %config.default_profile,
            profiles = ?config.profiles.keys().collect::<Vec<_>>(),
            "config loaded"
        );
        Ok(config)
    }

    /// Parse and validate a config file's text. `source` names the file in
    /// errors. A `landlock` policy with `compatibility = "required"` is
    /// checked against Landlock ABI `landlock_abi` (the running kernel's).
    pub fn from_toml(text: &str, source: Option<&Path>, landlock_abi: u32) -> Result<Config, PolicyError> {
        parse::parse(text, source, landlock_abi)
    }

    /// The config used when there is no file: one profile, `default`.
    pub fn builtin() -> Config {
        let profile = Profile::builtin();
        Config {
            source: None,
            default_profile: BUILTIN_PROFILE.to_string(),
            profiles: BTreeMap::from([(profile.name.clone(), profile)]),
            wasm: WasmNode::default(),
            metrics: MetricsNode::default(),
        }
    }

    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// Pick a task's profile: the `zygote.dev/profile` annotation first, then
    /// the profile named by the runtime options, then `default_profile`.
    pub fn select(
        &self,
        annotations: &HashMap<String, String>,
        options_profile: Option<&str>,
    ) -> Result<&Profile, PolicyError> {
        let (name, source_of_choice) = if let Some(value) = annotations.get(PROFILE_ANNOTATION) {
            validate::profile_name(value).map_err(|reason| PolicyError::BadAnnotation {
                value: value.clone(),
                reason,
            })?;
            (value.as_str(), "annotation zygote.dev/profile")
        } else if let Some(name) = options_profile {
            (name, "runtime options")
        } else {
            return Ok(self
                .profiles
                .get(&self.default_profile)
                .expect("default_profile is validated at load"));
        };
        self.profiles.get(name).ok_or_else(|| PolicyError::UnknownProfile {
            name: name.to_string(),
            source_of_choice,
            known: self.profiles.keys().cloned().collect(),
        })
    }
}

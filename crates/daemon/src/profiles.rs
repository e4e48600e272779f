//! Profiles at run time: the configuration loaded at start, each profile's
//! Landlock policy negotiated once against the kernel's ABI, the seccomp
//! cache (BPF compiled once per distinct spec filter + profile filter,
//! keyed by their sha256), and [`Profiles::resolve`], which turns a Create
//! request into the profile, security and resources of the task.
//!
//! A configuration that fails to load does not stop the daemon: every
//! Create then fails with the load error (which names the file, profile and
//! field), and tasks already running are unaffected.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::pool::placement;
use crate::pool::sizing::Bounds;
use crate::pool::PoolSpec;
use oci_spec::runtime::{LinuxResources, Spec};
use sha2::{Digest, Sha256};
use tracing::{info, warn};
use zygote_config::{Config, Mode, PreparedLandlock, Profile, SeccompMode};
use zygote_contract::zygote::Generation;
use zygote_runtime::seccomp::{self, CompiledSeccomp};
use zygote_runtime::security::Security;

use crate::error::DaemonError;

/// Reads and validates the config file as the daemon does at start and at
/// a reload: the message of a refusal is the load error's cause chain
/// (file, profile, field), the same text `zygotectl profiles check` prints.
pub(crate) fn load_config() -> Result<Config, String> {
    let abi = zygote_runtime::landlock::abi_version();
    Config::load(None, abi).map_err(|e| zygote_contract::proto::error_chain(&e))
}

/// What a Create needs from the task's profile.
pub(crate) struct Resolved {
    pub(crate) profile: String,
    pub(crate) security: Security,
    /// `linux.resources` with the profile's defaults; `None`: the spec's.
    pub(crate) resources: Option<LinuxResources>,
    /// The profile has `mode = "wasm"`: its tasks must be Wasm modules.
    pub(crate) wasm_mode: bool,
}

pub(crate) struct Profiles {
    /// The configuration, or why it cannot be loaded (its cause chain).
    config: Result<Config, String>,
    landlock: HashMap<String, Option<PreparedLandlock>>,
    seccomp: Mutex<HashMap<[u8; 32], Option<CompiledSeccomp>>>,
}

impl Profiles {
    /// Loads the configuration (`$ZYGOTE_CONFIG`, `/etc/zygote/config.toml`
    /// or the built-in default) and negotiates every Landlock policy.
    pub(crate) fn load() -> Profiles {
        Profiles::from_config(load_config())
    }

    /// The configuration in force, or why it is unusable.
    pub(crate) fn config(&self) -> Result<&Config, &str> {
        self.config.as_ref().map_err(String::as_str)
    }

    /// Profiles of a loaded configuration (or of none: why it failed).
    pub(crate) fn from_config(config: Result<Config, String>) -> Profiles {
        let abi = zygote_runtime::landlock::abi_version();
        let mut landlock = HashMap::new();
        match &config {
            Ok(c) => {
                for (name, p) in &c.profiles {
                    let prepared = match &p.landlock {
                        None => None,
                        Some(l) => match l.prepare(abi) {
                            Ok(x) => Some(x),
                            Err(e) => {
                                // Validated at load; the kernel changing under
                                // us is the only way here. Refuse the profile.
                                warn!(profile = %name, error = %e, "landlock policy unusable");
                                continue;
                            }
                        },
                    };
                    landlock.insert(name.clone(), prepared);
                }
                let source = c.source.as_ref().map_or("built-in".into(), |p| p.display().to_string());
                info!(%source, profiles = c.profiles.len(), landlock_abi = abi, "configuration loaded");
            }
            Err(e) => {
                warn!(error = %e, "configuration unusable: every Create will fail until it is fixed and reloaded (SIGHUP, zygotectl reload) or the daemon restarted")
            }
        }
        Profiles {
            config,
            landlock,
            seccomp: Mutex::new(HashMap::new()),
        }
    }

    /// The node-level `[wasm]` settings (defaults when the config is unusable).
    pub(crate) fn wasm_node(&self) -> zygote_config::WasmNode {
        self.config.as_ref().map(|c| c.wasm.clone()).unwrap_or_default()
    }

    /// Where to serve metrics (`None`: disabled); the default address when
    /// the config is unusable, so a broken node can still be watched.
    pub(crate) fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        match &self.config {
            Ok(c) => c.metrics.address(),
            Err(_) => zygote_config::MetricsNode::default().address(),
        }
    }

    /// One pool per profile; a Wasm profile's zygotes hold a warm engine.
    /// The NUMA topology is read here, once per load or reload, and each
    /// profile's `pool.placement` resolved against it (and logged) once.
    pub(crate) fn pool_specs(&self) -> Vec<PoolSpec> {
        let Ok(c) = &self.config else {
            return Vec::new();
        };
        let topology = placement::Topology::read(&placement::sysfs_root());
        c.profiles
            .values()
            .map(|p| PoolSpec {
                wasm: p.mode == Mode::Wasm,
                profile: p.name.clone(),
                clone_flags: (p.clone_flags() & zygote_runtime::zygote::PRECREATABLE).bits(),
                bounds: Bounds {
                    min: p.pool.min as usize,
                    initial: p.pool.initial as usize,
                    max: p.pool.max as usize,
                    rule: crate::pool::sizing::rule(&p.pool),
                },
                max_age: p.pool.max_age,
                pressure: p.pool.pressure,
                max_births_per_sec: p.pool.max_births_per_sec as usize,
                generation: self.generation(p),
                health: p.pool.health,
                placement: placement::resolve(&p.name, &p.pool.placement, &topology),
                prefetch: p.pool.prefetch.clone(),
            })
            .collect()
    }

    /// Fingerprints of what `p`'s zygotes are made from: the settings that
    /// shape one at birth, and its security settings (the Landlock policy
    /// as written and as negotiated with this kernel, the seccomp filter
    /// and mode). A reload that changes either retires the idle zygotes.
    fn generation(&self, p: &Profile) -> Generation {
        let landlock = self.landlock.get(&p.name);
        Generation {
            config: fingerprint(&(p.mode, &p.namespaces)),
            security: fingerprint(&(&p.landlock, landlock, &p.seccomp)),
        }
    }

    /// Picks the task's profile (annotation, then runtime options, then the
    /// default) and derives its security and resources.
    pub(crate) fn resolve(&self, spec: &Spec, options: Option<(&str, &[u8])>) -> Result<Resolved, DaemonError> {
        let config = self.config.as_ref().map_err(|e| DaemonError::Config(e.clone()))?;
        let bad = DaemonError::Policy;
        let from_options = match options {
            Some((type_url, value)) => zygote_config::profile_from_options(type_url, value).map_err(bad)?,
            None => None,
        };
        let annotations = spec.annotations().clone().unwrap_or_default();
        let profile = config.select(&annotations, from_options.as_deref()).map_err(bad)?;
        let landlock = self
            .landlock
            .get(&profile.name)
            .cloned()
            .ok_or_else(|| DaemonError::LandlockUnusable(profile.name.clone()))?;
        Ok(Resolved {
            profile: profile.name.clone(),
            security: Security {
                seccomp: self.seccomp_for(spec, profile)?,
                landlock,
            },
            resources: with_defaults(spec, profile),
            wasm_mode: profile.mode == Mode::Wasm,
        })
    }

    /// The spec's filter combined with the profile's, compiled at most once
    /// per distinct pair.
    fn seccomp_for(&self, spec: &Spec, profile: &Profile) -> Result<Option<CompiledSeccomp>, DaemonError> {
        let own = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&own).unwrap_or_default());
        h.update(b"\0");
        h.update(serde_json::to_vec(&profile.seccomp).unwrap_or_default());
        let key: [u8; 32] = h.finalize().into();
        if let Some(hit) = self.seccomp.lock().expect("seccomp cache").get(&key) {
            return Ok(hit.clone());
        }
        let compile = |s: &oci_spec::runtime::LinuxSeccomp, what: &str| {
            seccomp::compile(s).map_err(|source| DaemonError::Seccomp {
                what: what.to_string(),
                source,
            })
        };
        let spec_filter = match &own {
            Some(s) => Some(compile(s, "linux.seccomp")?),
            None => None,
        };
        let compiled = match &profile.seccomp {
            None => spec_filter,
            Some(p) => {
                let extra = compile(&p.filter, &format!("profile \"{}\" seccomp", profile.name))?;
                match (p.mode, spec_filter) {
                    (SeccompMode::Replace, _) | (SeccompMode::Add, None) => Some(extra),
                    (SeccompMode::Add, Some(base)) => Some(base.stacked(&extra)),
                }
            }
        };
        let mut cache = self.seccomp.lock().expect("seccomp cache");
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(key, compiled.clone());
        Ok(compiled)
    }
}

/// The first 8 bytes of the sha256 of `value`'s JSON.
fn fingerprint(value: &impl serde::Serialize) -> u64 {
    let digest = Sha256::digest(serde_json::to_vec(value).unwrap_or_default());
    u64::from_be_bytes(digest[..8].try_into().expect("a sha256 has 32 bytes"))
}

/// The spec's resources with the profile's defaults where the spec has
/// none; `None` when the profile has no defaults (use the spec's as is).
fn with_defaults(spec: &Spec, profile: &Profile) -> Option<LinuxResources> {
    let d = profile.resources;
    if d.memory_limit_bytes.is_none() && d.pids_limit.is_none() && d.cpu_shares.is_none() {
        return None;
    }
    // Merged on the JSON form: oci-spec's structs have no setters for all
    // of these fields, and only absent values are filled in.
    let r = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let mut v = serde_json::to_value(&r).ok()?;
    let mut fill = |section: &str, key: &str, value: serde_json::Value| {
        let obj = v.as_object_mut()?;
        let sec = obj.entry(section).or_insert_with(|| serde_json::json!({}));
        let sec = sec.as_object_mut()?;
        sec.entry(key).or_insert(value);
        Some(())
    };
    if let Some(limit) = d.memory_limit_bytes {
        fill("memory", "limit", limit.into());
    }
    if let Some(limit) = d.pids_limit {
        fill("pids", "limit", limit.into());
    }
    if let Some(shares) = d.cpu_shares {
        fill("cpu", "shares", shares.into());
    }
    let r: LinuxResources = serde_json::from_value(v).ok()?;
    Some(r)
}

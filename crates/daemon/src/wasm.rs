//! WebAssembly at Create: is the task a Wasm task, and which compiled
//! artifact serves it.
//!
//! A task is a Wasm task when its entrypoint (`args[0]` resolved in the
//! rootfs) starts with the Wasm module header, whatever its profile; a
//! profile with `mode = "wasm"` additionally refuses anything else. The
//! module is hashed and looked up in the node's artifact cache
//! (`zygote_wasm::Cache`, opened on first use in
//! `$ZYGOTE_WASM_CACHE_DIR`, else the config's `[wasm] cache_dir`); a miss
//! compiles it here, once per node, off the async threads. Counters go to
//! `<daemon dir>/wasm-cache.json`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use oci_spec::runtime::Spec;
use serde::Serialize;
use zygote_config::WasmNode;
use zygote_runtime::guest::GuestTask;
use zygote_wasm::{detect, Cache, Outcome, WasmError};

use crate::error::DaemonError;
use crate::profiles::Resolved;

/// Environment variable overriding the cache directory.
pub(crate) const CACHE_DIR_ENV: &str = "ZYGOTE_WASM_CACHE_DIR";

/// How a Wasm task's artifact was found, for `timings.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WasmDetail {
    pub(crate) cache: Outcome,
    pub(crate) compile_us: u64,
    pub(crate) lookup_us: u64,
    pub(crate) digest: String,
}

/// The daemon's Wasm state: settings and the lazily opened cache.
pub(crate) struct Wasm {
    dir: PathBuf,
    max_bytes: u64,
    cache: OnceLock<Result<Arc<Cache>, String>>,
    stats_path: PathBuf,
}

impl Wasm {
    /// `cache_dir` (from the environment) overrides the node's setting.
    pub(crate) fn new(node: &WasmNode, daemon_dir: &zygote_contract::DaemonDir, cache_dir: Option<PathBuf>) -> Wasm {
        let dir = cache_dir.unwrap_or_else(|| node.cache_dir.clone());
        Wasm {
            dir,
            max_bytes: node.cache_max_mb << 20,
            cache: OnceLock::new(),
            stats_path: daemon_dir.wasm_cache_stats(),
        }
    }

    /// The cache's counters, once it is open (for the metrics).
    pub(crate) fn cache_stats(&self) -> Option<zygote_wasm::CacheStats> {
        self.cache.get()?.as_ref().ok().map(|c| c.stats())
    }

    fn cache(&self) -> Result<Arc<Cache>, DaemonError> {
        self.cache
            .get_or_init(|| {
                Cache::open(&self.dir, self.max_bytes)
                    .map(Arc::new)
                    .map_err(|e| zygote_contract::proto::error_chain(&e))
            })
            .clone()
            .map_err(|chain| DaemonError::WasmCache {
                dir: self.dir.clone(),
                chain,
            })
    }

    /// `None` for a native task; for a Wasm task, what the task process
    /// needs and how the artifact was found.
    pub(crate) async fn decide(
        &self,
        spec: &Spec,
        resolved: &Resolved,
        rootfs: &Path,
    ) -> Result<Option<(GuestTask, WasmDetail)>, DaemonError> {
        let Some(process) = spec.process().as_ref() else {
            return Ok(None);
        };
        let args = process.args().clone().unwrap_or_default();
        let Some(arg0) = args.first() else {
            return if resolved.wasm_mode {
                Err(invalid(WasmError::NoEntrypoint))
            } else {
                Ok(None)
            };
        };
        let cwd = process.cwd().display().to_string();
        let env = process.env().clone().unwrap_or_default();
        let found = detect::entrypoint(rootfs, arg0, &cwd, &env).map_err(invalid)?;
        let Some(mut found) = found else {
            if resolved.wasm_mode {
                let e = WasmError::NotWasm {
                    profile: resolved.profile.clone(),
                    entrypoint: arg0.clone(),
                };
                return Err(invalid(e));
            }
            return Ok(None);
        };
        let cache = self.cache()?;
        let name = rootfs.join(found.in_rootfs.strip_prefix("/").unwrap_or(&found.in_rootfs));
        let (artifact, cache) = tokio::task::spawn_blocking(move || {
            let r = cache.get(&mut found.file, &name);
            (r, cache)
        })
        .await
        .map_err(|e| DaemonError::io("compile wasm module")(std::io::Error::other(e)))?;
        let artifact = artifact.map_err(invalid)?;
        if artifact.outcome != Outcome::Hit {
            crate::metrics::wasm_compiled(artifact.compile_us as f64 / 1e6);
        }
        self.write_stats(cache);
        let memory_limit = resolved
            .resources
            .as_ref()
            .or_else(|| spec.linux().as_ref().and_then(|l| l.resources().as_ref()))
            .and_then(|r| r.memory().as_ref())
            .and_then(|m| m.limit())
            .filter(|l| *l > 0)
            .map(|l| l as u64);
        let guest = GuestTask {
            module: rootfs.join(found.in_rootfs.strip_prefix("/").unwrap_or(&found.in_rootfs)),
            module_in_rootfs: found.in_rootfs.display().to_string(),
            artifact: artifact.path.clone(),
            digest: artifact.digest.clone(),
            memory_limit,
            readonly_root: spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false),
        };
        let detail = WasmDetail {
            cache: artifact.outcome,
            compile_us: artifact.compile_us,
            lookup_us: artifact.lookup_us,
            digest: artifact.digest,
        };
        Ok(Some((guest, detail)))
    }

    /// Counters to `wasm-cache.json`, off the Create path. One writer at a
    /// time, each taking the counters as they are when it writes, so the
    /// file never goes back to an older count.
    fn write_stats(&self, cache: Arc<Cache>) {
        static WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let path = self.stats_path.clone();
        tokio::task::spawn_blocking(move || {
            let _one = WRITER.lock().unwrap_or_else(|e| e.into_inner());
            let mut stats = serde_json::to_value(cache.stats()).unwrap_or_default();
            stats["dir"] = serde_json::Value::String(cache.dir().display().to_string());
            if let Err(e) = zygote_contract::state::write_atomic(&path, &stats) {
                tracing::warn!(path = %path.display(), error = %e, "cannot write wasm cache counters");
            }
        });
    }
}

fn invalid(e: WasmError) -> DaemonError {
    DaemonError::Wasm(e)
}

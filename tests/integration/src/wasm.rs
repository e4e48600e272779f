//! WebAssembly test helpers: the Wasm test image (built by
//! `hack/build-wasm-image.sh` from `tests/wasm/*.wat`), `ctr run` with it,
//! the node's artifact cache and its counters.

use std::path::PathBuf;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::command::Output;
use crate::ctr::Ctr;
use crate::pools::daemon_dir;
use crate::runtime::Runtime;

fn var(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("missing environment variable {name}: run the tests through hack/test.sh"),
    }
}

/// `docker.io/zygote/wasm:latest` (`ZYGOTE_TEST_WASM_IMAGE`).
pub fn wasm_image() -> String {
    var("ZYGOTE_TEST_WASM_IMAGE")
}

/// The node's artifact cache (`ZYGOTE_WASM_CACHE_DIR`).
pub fn wasm_cache_dir() -> PathBuf {
    PathBuf::from(var("ZYGOTE_WASM_CACHE_DIR"))
}

/// sha256 (hex) of the compiled test module `name` (e.g. `hello.wasm`).
pub fn module_digest(name: &str) -> String {
    let path = PathBuf::from(var("ZYGOTE_TEST_WASM_MODULES")).join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache's artifact files for a module digest.
pub fn cache_artifacts(digest: &str) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(wasm_cache_dir()) else {
        return Vec::new();
    };
    rd.flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy().into_owned();
            name.starts_with(digest) && name.ends_with(".cwasm")
        })
        .collect()
}

/// The daemon's cache counters (`wasm-cache.json`), `Null` before any.
pub fn wasm_cache_stats() -> Value {
    daemon_dir()
        .and_then(|d| std::fs::read(d.join("wasm-cache.json")).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// `ctr run [--rm|-d] --runtime zygote <extra> <wasm image> <id> <cmd...>`.
pub fn run_wasm(id: &str, rm: bool, extra: &[&str], cmd: &[&str]) -> Output {
    Ctr::new().run(&wasm_run_args(id, rm, extra, cmd))
}

/// The arguments of `ctr` that [`run_wasm`] runs.
pub fn wasm_run_args(id: &str, rm: bool, extra: &[&str], cmd: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec!["run".into()];
    v.push(if rm { "--rm" } else { "-d" }.into());
    v.push("--runtime".into());
    v.push(Runtime::Zygote.name().into());
    v.extend(extra.iter().map(|s| s.to_string()));
    v.push(wasm_image());
    v.push(id.to_string());
    v.extend(cmd.iter().map(|s| s.to_string()));
    v
}

//! The node's cache of compiled artifacts.
//!
//! One directory (root-only), two files per entry, named by the module's
//! sha256 and the engine's compatibility key (`engine::compat_key`):
//! `<sha>-<compat>.cwasm`, the artifact wasmtime maps, and
//! `<sha>-<compat>.meta`, JSON with the artifact's own sha256. Both are
//! written to a temporary file, synced and renamed into place (artifact
//! first: an entry exists once its meta does), so a crash never leaves a
//! half-written entry under a real name and a file is never modified in
//! place (task processes map artifacts). An entry is checked against its
//! recorded digest the first time this process serves it and again after
//! any change of the file's inode, size, mtime or ctime; a mismatch (a
//! corrupt or truncated entry) is removed, counted and compiled again.
//! The cache is bounded: after each insert the least recently used entries
//! (by the meta file's mtime, refreshed on use, so the order survives
//! restarts) are removed until the total size fits, sparing entries used in
//! the last few seconds (a task may be about to map them). Compiles are
//! serialized: twenty tasks of a new module compile it once.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::Engine;

use crate::engine::{self, hex};
use crate::error::WasmError;

/// Entries used more recently than this are not evicted.
const EVICTION_GRACE: Duration = Duration::from_secs(10);

/// How a lookup was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A valid entry was there.
    Hit,
    /// No entry: compiled now.
    Compiled,
    /// The entry was corrupt or incomplete: removed and compiled again.
    Recompiled,
}

/// Identity of an artifact file as last verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

impl Fingerprint {
    /// The fingerprint of a file's metadata.
    pub fn of(meta: &std::fs::Metadata) -> Fingerprint {
        Fingerprint {
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        }
    }
}

/// A verified artifact for one module.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub path: PathBuf,
    /// sha256 of the module (hex).
    pub digest: String,
    pub outcome: Outcome,
    /// Time spent compiling (0 on a hit).
    pub compile_us: u64,
    /// Time spent hashing the module and checking the entry.
    pub lookup_us: u64,
    pub fingerprint: Fingerprint,
}

/// Counters since this process opened the cache.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub compiles: u64,
    /// Entries found corrupt or incomplete and compiled again.
    pub recompiled: u64,
    pub evictions: u64,
    pub entries: u64,
    pub bytes: u64,
    pub max_bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    module_sha256: String,
    compat: String,
    artifact_sha256: String,
    artifact_bytes: u64,
}

#[derive(Debug)]
struct Entry {
    artifact_sha256: String,
    bytes: u64,
    last_use: SystemTime,
    verified: Option<Fingerprint>,
}

#[derive(Debug, Default)]
struct Index {
    entries: HashMap<String, Entry>,
    stats: CacheStats,
}

/// The artifact cache of one node.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
    engine: Engine,
    compat: String,
    index: Mutex<Index>,
    compile: Mutex<()>,
    grace: Duration,
}

impl Cache {
    /// Open (creating it, mode 0700) the cache in `dir`, bounded to
    /// `max_bytes`. Leftover temporary files and halves of entries are
    /// removed.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Cache, WasmError> {
        std::fs::create_dir_all(dir).map_err(WasmError::io(format!("create cache dir {}", dir.display())))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(WasmError::io(format!("chmod cache dir {}", dir.display())))?;
        let engine = engine::compiler()?;
        let compat = engine::compat_key(&engine);
        let cache = Cache {
            dir: dir.to_path_buf(),
            max_bytes,
            engine,
            compat,
            index: Default::default(),
            compile: Default::default(),
            grace: EVICTION_GRACE,
        };
        cache.scan()?;
        Ok(cache)
    }

    /// Spare entries used within `grace` from eviction (default 10 s).
    pub fn with_eviction_grace(mut self, grace: Duration) -> Cache {
        self.grace = grace;
        self
    }

    /// The engine artifacts are compiled with.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn scan(&self) -> Result<(), WasmError> {
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        let list = std::fs::read_dir(&self.dir).map_err(WasmError::io(format!("list {}", self.dir.display())))?;
        let mut names = Vec::new();
        for entry in list.flatten() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        for name in &names {
            let path = self.dir.join(name);
            if name.contains(".tmp.") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some(key) = name.strip_suffix(".meta") else {
                continue;
            };
            let artifact = self.dir.join(format!("{key}.cwasm"));
            let meta: Option<Meta> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
            let size = std::fs::metadata(&artifact).map(|m| m.len()).ok();
            match (meta, size) {
                (Some(m), Some(size)) if m.artifact_bytes == size => {
                    let last_use = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .unwrap_or(SystemTime::UNIX_EPOCH);
                    index.entries.insert(
                        key.to_string(),
                        Entry {
                            artifact_sha256: m.artifact_sha256,
                            bytes: size,
                            last_use,
                            verified: None,
                        },
                    );
                }
                _ => {
                    tracing::warn!(entry = key, "removing an incomplete cache entry");
                    let _ = std::fs::remove_file(&path);
                    let _ = std::fs::remove_file(&artifact);
                }
            }
        }
        for name in &names {
            if let Some(key) = name.strip_suffix(".cwasm") {
                if !index.entries.contains_key(key) {
                    let _ = std::fs::remove_file(self.dir.join(name));
                }
            }
        }
        index.stats.max_bytes = self.max_bytes;
        refresh_totals(&mut index);
        Ok(())
    }

    /// The verified artifact for the module read from `module` (`name` is
    /// for messages), compiling it if needed.
    pub fn get(&self, module: &mut File, name: &Path) -> Result<Artifact, WasmError> {
        let started = Instant::now();
        let mut bytes = Vec::new();
        module
            .seek(SeekFrom::Start(0))
            .map_err(WasmError::io(format!("seek {}", name.display())))?;
        module
            .read_to_end(&mut bytes)
            .map_err(WasmError::io(format!("read {}", name.display())))?;
        let digest = hex(&Sha256::digest(&bytes));
        let key = format!("{digest}-{}", self.compat);
        let path = self.dir.join(format!("{key}.cwasm"));
        let mut outcome = Outcome::Compiled;
        for attempt in 0..2 {
            match self.check(&key, &path) {
                Check::Valid(fingerprint) => {
                    self.count(|s| s.hits += 1);
                    self.touch(&key);
                    let lookup_us = started.elapsed().as_micros() as u64;
                    return Ok(Artifact {
                        path,
                        digest,
                        outcome: Outcome::Hit,
                        compile_us: 0,
                        lookup_us,
                        fingerprint,
                    });
                }
                Check::Corrupt => outcome = Outcome::Recompiled,
                Check::Missing => {}
            }
            if attempt == 1 {
                break;
            }
            let _serial = self.compile.lock().unwrap_or_else(|p| p.into_inner());
            // Someone may have compiled it while we waited.
            if let Check::Valid(_) = self.check(&key, &path) {
                continue;
            }
            let lookup_us = started.elapsed().as_micros() as u64;
            let t = Instant::now();
            let compiled = self.engine.precompile_module(&bytes).map_err(|e| WasmError::Compile {
                module: name.to_path_buf(),
                message: format!("{e:#}"),
            })?;
            let compile_us = t.elapsed().as_micros() as u64;
            let fingerprint = self.insert(&key, &digest, &compiled)?;
            self.count(|s| {
                s.compiles += 1;
                if outcome == Outcome::Recompiled {
                    s.recompiled += 1;
                }
            });
            self.evict(&key);
            return Ok(Artifact {
                path,
                digest,
                outcome,
                compile_us,
                lookup_us,
                fingerprint,
            });
        }
        Err(WasmError::Compile {
            module: name.to_path_buf(),
            message: "the cache entry vanished twice".into(),
        })
    }

    /// Counters and totals.
    pub fn stats(&self) -> CacheStats {
        self.index.lock().unwrap_or_else(|p| p.into_inner()).stats.clone()
    }

    fn count(&self, f: impl FnOnce(&mut CacheStats)) {
        f(&mut self.index.lock().unwrap_or_else(|p| p.into_inner()).stats);
    }

    fn check(&self, key: &str, path: &Path) -> Check {
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = index.entries.get_mut(key) else {
            return Check::Missing;
        };
        let verdict = match std::fs::metadata(path) {
            Ok(meta) if meta.len() == entry.bytes => {
                let fp = Fingerprint::of(&meta);
                if entry.verified == Some(fp) {
                    return Check::Valid(fp);
                }
                match file_sha256(path) {
                    Ok(sha) if sha == entry.artifact_sha256 => {
                        entry.verified = Some(fp);
                        return Check::Valid(fp);
                    }
                    _ => "its digest does not match",
                }
            }
            Ok(_) => "its size changed",
            Err(_) => "the artifact is missing",
        };
        tracing::warn!(entry = key, why = verdict, "corrupt cache entry: compiling again");
        index.entries.remove(key);
        let _ = std::fs::remove_file(self.dir.join(format!("{key}.meta")));
        let _ = std::fs::remove_file(path);
        refresh_totals(&mut index);
        Check::Corrupt
    }

    fn insert(&self, key: &str, digest: &str, compiled: &[u8]) -> Result<Fingerprint, WasmError> {
        let artifact = self.dir.join(format!("{key}.cwasm"));
        let artifact_sha256 = hex(&Sha256::digest(compiled));
        write_atomic(&artifact, compiled)?;
        let meta = Meta {
            module_sha256: digest.to_string(),
            compat: self.compat.clone(),
            artifact_sha256: artifact_sha256.clone(),
            artifact_bytes: compiled.len() as u64,
        };
        let json = serde_json::to_vec(&meta).map_err(|e| WasmError::io("encode cache meta")(e.into()))?;
        write_atomic(&self.dir.join(format!("{key}.meta")), &json)?;
        let fp = Fingerprint::of(
            &std::fs::metadata(&artifact).map_err(WasmError::io(format!("stat {}", artifact.display())))?,
        );
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        index.entries.insert(
            key.to_string(),
            Entry {
                artifact_sha256,
                bytes: compiled.len() as u64,
                last_use: SystemTime::now(),
                verified: Some(fp),
            },
        );
        refresh_totals(&mut index);
        Ok(fp)
    }

    /// Record a use (in memory and as the meta file's mtime).
    fn touch(&self, key: &str) {
        let now = SystemTime::now();
        if let Some(e) = self
            .index
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .get_mut(key)
        {
            e.last_use = now;
        }
        if let Ok(f) = File::options().write(true).open(self.dir.join(format!("{key}.meta"))) {
            let _ = f.set_modified(now);
        }
    }

    fn evict(&self, keep: &str) {
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        let now = SystemTime::now();
        while index.stats.bytes > self.max_bytes {
            let victim = index
                .entries
                .iter()
                .filter(|(k, e)| k.as_str() != keep && now.duration_since(e.last_use).unwrap_or_default() >= self.grace)
                .min_by_key(|(_, e)| e.last_use)
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else { break };
            index.entries.remove(&victim);
            let _ = std::fs::remove_file(self.dir.join(format!("{victim}.meta")));
            let _ = std::fs::remove_file(self.dir.join(format!("{victim}.cwasm")));
            index.stats.evictions += 1;
            tracing::info!(entry = %victim, "evicted from the wasm cache");
            refresh_totals(&mut index);
        }
    }
}

enum Check {
    Valid(Fingerprint),
    Corrupt,
    Missing,
}

fn refresh_totals(index: &mut Index) {
    index.stats.entries = index.entries.len() as u64;
    index.stats.bytes = index.entries.values().map(|e| e.bytes).sum();
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match f.read(&mut buf)? {
            0 => break,
            n => h.update(&buf[..n]),
        }
    }
    Ok(hex(&h.finalize()))
}

/// Write `bytes` to a fresh temporary file beside `path`, sync it and
/// rename it over `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WasmError> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(WasmError::io(format!("write {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(dir: &Path, name: &str, text: &str) -> PathBuf {
        let wat = format!(r#"(module (memory 1) (data (i32.const 0) "{text}") (func (export "_start")))"#);
        let path = dir.join(name);
        std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
        path
    }

    fn get(cache: &Cache, path: &Path) -> Artifact {
        cache.get(&mut File::open(path).unwrap(), path).unwrap()
    }

    #[test]
    fn compiles_once_then_hits_and_survives_reopen() {
        let d = tempfile::tempdir().unwrap();
        let m = module(d.path(), "a.wasm", "a");
        let cache = Cache::open(&d.path().join("c"), 1 << 30).unwrap();
        assert_eq!(get(&cache, &m).outcome, Outcome::Compiled);
        let hit = get(&cache, &m);
        assert_eq!(hit.outcome, Outcome::Hit);
        assert!(hit.path.exists());
        assert_eq!(cache.stats().compiles, 1);
        let again = Cache::open(&d.path().join("c"), 1 << 30).unwrap();
        assert_eq!(get(&again, &m).outcome, Outcome::Hit);
    }

    #[test]
    fn corrupt_and_half_written_entries_are_recompiled_or_removed() {
        let d = tempfile::tempdir().unwrap();
        let m = module(d.path(), "a.wasm", "a");
        let cache = Cache::open(&d.path().join("c"), 1 << 30).unwrap();
        let art = get(&cache, &m);
        let mut bytes = std::fs::read(&art.path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&art.path, &bytes).unwrap();
        assert_eq!(get(&cache, &m).outcome, Outcome::Recompiled);
        assert_eq!(get(&cache, &m).outcome, Outcome::Hit);
        assert_eq!(cache.stats().recompiled, 1);
        // A reopened cache drops an entry whose artifact has the wrong size
        // and a leftover temporary file.
        std::fs::write(&art.path, b"short").unwrap();
        std::fs::write(d.path().join("c/x.tmp.1.2"), b"junk").unwrap();
        let again = Cache::open(&d.path().join("c"), 1 << 30).unwrap();
        assert_eq!(again.stats().entries, 0);
        assert!(!d.path().join("c/x.tmp.1.2").exists());
        assert_eq!(get(&again, &m).outcome, Outcome::Compiled);
    }

    #[test]
    fn least_recently_used_entries_are_evicted_past_the_bound() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            module(d.path(), "a.wasm", "a"),
            module(d.path(), "b.wasm", "b"),
            module(d.path(), "c.wasm", "c"),
        );
        let probe = Cache::open(&d.path().join("p"), 1 << 30).unwrap();
        let one = std::fs::metadata(get(&probe, &a).path).unwrap().len();
        // Room for two artifacts.
        let cache = Cache::open(&d.path().join("c"), one * 2 + one / 2)
            .unwrap()
            .with_eviction_grace(Duration::ZERO);
        get(&cache, &a);
        std::thread::sleep(Duration::from_millis(20));
        get(&cache, &b);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(get(&cache, &a).outcome, Outcome::Hit);
        std::thread::sleep(Duration::from_millis(20));
        get(&cache, &c);
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.evictions), (2, 1), "{stats:?}");
        assert!(stats.bytes <= stats.max_bytes);
        // b was the least recently used.
        assert_eq!(get(&cache, &a).outcome, Outcome::Hit);
        assert_eq!(get(&cache, &b).outcome, Outcome::Compiled);
    }
}

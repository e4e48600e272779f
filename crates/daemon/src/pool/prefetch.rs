//! Page-cache prefetch (a profile's `pool.prefetch`): after a birth, the
//! files a profile's tasks will read first (an interpreter, a large
//! binary) are brought into the page cache with
//! `posix_fadvise(POSIX_FADV_WILLNEED)`, 128 KiB at a time, so the first
//! task after a cache drop does not wait for the disk. Off the critical
//! path: the pool runs [`Prefetcher::run`] on a blocking thread after a
//! birth, skips it while the profile's memory pressure gate is closed,
//! and each file is read ahead at most once per [`EVERY`]. A path that
//! cannot be read ahead is logged once (again only after it worked).

use std::collections::{HashMap, HashSet};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
use tracing::{debug, warn};

/// A file is read ahead at most this often.
pub(crate) const EVERY: Duration = Duration::from_secs(60);
/// The span of one `posix_fadvise` call.
pub(crate) const STEP: u64 = 128 << 10;

/// Why a file could not be read ahead.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PrefetchError {
    #[error("open {}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a regular file", .0.display())]
    NotAFile(PathBuf),
    #[error("posix_fadvise(WILLNEED) {}", .path.display())]
    Advise {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

/// Asks the kernel to read `path` into the page cache; its size in bytes.
pub(crate) fn will_need(path: &Path) -> Result<u64, PrefetchError> {
    let open = |source| PrefetchError::Open {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(open)?;
    let meta = file.metadata().map_err(open)?;
    if !meta.is_file() {
        return Err(PrefetchError::NotAFile(path.to_path_buf()));
    }
    let size = meta.len();
    let mut offset = 0;
    while offset < size {
        let len = STEP.min(size - offset);
        posix_fadvise(
            file.as_raw_fd(),
            offset as i64,
            len as i64,
            PosixFadviseAdvice::POSIX_FADV_WILLNEED,
        )
        .map_err(|source| PrefetchError::Advise {
            path: path.to_path_buf(),
            source,
        })?;
        offset += len;
    }
    Ok(size)
}

/// What one [`Prefetcher::run`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Files read ahead.
    pub(crate) files: u64,
    pub(crate) bytes: u64,
    /// Files that could not be.
    pub(crate) failed: u64,
    /// Failing paths logged by this run (each only until it works again).
    pub(crate) reported: Vec<PathBuf>,
}

/// When each file was last read ahead, and which failures were logged.
#[derive(Default)]
pub(crate) struct Prefetcher {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last: HashMap<PathBuf, Instant>,
    reported: HashSet<PathBuf>,
}

impl Prefetcher {
    /// Reads ahead those of `paths` not read ahead in the last [`EVERY`]
    /// as of `now` (blocking: run it on a blocking thread).
    pub(crate) fn run(&self, profile: &str, paths: &[PathBuf], now: Instant) -> Outcome {
        let due: Vec<PathBuf> = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            paths
                .iter()
                .filter(|p| {
                    let due = state
                        .last
                        .get(*p)
                        .is_none_or(|t| now.saturating_duration_since(*t) >= EVERY);
                    if due {
                        state.last.insert((*p).clone(), now);
                    }
                    due
                })
                .cloned()
                .collect()
        };
        let mut out = Outcome::default();
        for path in due {
            let r = will_need(&path);
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match r {
                Ok(bytes) => {
                    debug!(profile, path = %path.display(), bytes, "prefetched into the page cache");
                    out.files += 1;
                    out.bytes += bytes;
                    state.reported.remove(&path);
                }
                Err(e) => {
                    out.failed += 1;
                    if state.reported.insert(path.clone()) {
                        warn!(profile, error = %crate::error::chain(&e), "pool.prefetch: cannot read this file ahead");
                        out.reported.push(path);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use super::{will_need, Prefetcher, EVERY, STEP};

    #[test]
    fn a_file_is_read_ahead_in_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        let size = 3 * STEP + 17;
        std::fs::write(&path, vec![7u8; size as usize]).unwrap();
        assert_eq!(will_need(&path).unwrap(), size);
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(will_need(&empty).unwrap(), 0);
        let e = will_need(dir.path()).unwrap_err().to_string();
        assert!(e.ends_with("is not a regular file"), "{e}");
    }

    #[test]
    fn once_per_period_and_each_failure_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("lib.so");
        std::fs::write(&good, vec![1u8; 200 << 10]).unwrap();
        let missing = dir.path().join("missing");
        let paths = [good, missing.clone()];
        let p = Prefetcher::default();
        let t0 = Instant::now();
        let first = p.run("x", &paths, t0);
        assert_eq!((first.files, first.bytes, first.failed), (1, 200 << 10, 1));
        assert_eq!(first.reported, std::slice::from_ref(&missing));
        // Within the period: nothing is due.
        let soon = p.run("x", &paths, t0 + Duration::from_secs(1));
        assert_eq!((soon.files, soon.failed), (0, 0));
        // After it: both again, the failure not reported a second time.
        let later = p.run("x", &paths, t0 + EVERY);
        assert_eq!((later.files, later.failed), (1, 1));
        assert_eq!(later.reported, Vec::<PathBuf>::new());
        // Once it works, a new failure is reported again.
        std::fs::write(&missing, b"now here").unwrap();
        assert_eq!(p.run("x", std::slice::from_ref(&missing), t0 + 2 * EVERY).files, 1);
        std::fs::remove_file(&missing).unwrap();
        let again = p.run("x", std::slice::from_ref(&missing), t0 + 3 * EVERY);
        assert_eq!(again.reported, [missing]);
    }
}

//! The monitor thread: reads the node's and the watched cgroups' PSI files
//! every [`PERIOD`], and sooner when a PSI trigger on a node file fires
//! (`some <stall> <window>` written to the file, then `POLLPRI` on it; see
//! the kernel's Documentation/accounting/psi.rst). A process without
//! `CAP_SYS_RESOURCE` may only use windows that are multiples of 2 s, so a
//! refused 1 s window is retried with 2 s; where triggers are refused
//! altogether (PSI off, an old kernel, a read-only /proc) the monitor reads
//! periodically and says so once in the log. The poll is nix's.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::psi::{self, PsiError};
use super::{PressureSnapshot, Readings, RESOURCES};

/// Read at least this often.
pub(super) const PERIOD: Duration = Duration::from_secs(1);
/// After a trigger, read again no sooner than this after the last read
/// (the recent share needs a denominator).
const MIN_GAP: Duration = Duration::from_millis(200);
/// Trigger specs tried in order: (stall µs, window µs); 10% of the window.
const TRIGGERS: [(u64, u64); 2] = [(100_000, 1_000_000), (200_000, 2_000_000)];

/// Where the PSI files are (a root-path parameter: tests use fixtures).
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    /// `/proc/pressure` on a host.
    pub(crate) node: PathBuf,
    /// The cgroup v2 mount whose `<parent>/<resource>.pressure` files are
    /// read (a hybrid host's `unified` mount, or `/sys/fs/cgroup`).
    pub(crate) cgroup2: Option<PathBuf>,
    /// Arm PSI triggers on the node files.
    pub(crate) triggers: bool,
}

impl Sources {
    /// This host's.
    pub(crate) fn host() -> Sources {
        let cgroup2 = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.join("cgroup.controllers").exists());
        Sources {
            node: PathBuf::from("/proc/pressure"),
            cgroup2,
            triggers: true,
        }
    }
}

pub(super) fn spawn(
    sources: Sources,
    tx: watch::Sender<Arc<PressureSnapshot>>,
    watched: Arc<Mutex<BTreeSet<PathBuf>>>,
) {
    let started = std::thread::Builder::new()
        .name("zygote-psi".into())
        .spawn(move || run(sources, tx, watched));
    if let Err(e) = started {
        warn!(error = %e, "cannot start the pressure monitor: pools are not gated by pressure");
    }
}

fn run(sources: Sources, tx: watch::Sender<Arc<PressureSnapshot>>, watched: Arc<Mutex<BTreeSet<PathBuf>>>) {
    let triggers = if sources.triggers {
        arm(&sources.node)
    } else {
        Vec::new()
    };
    let mut sampler = Sampler::new(sources);
    let mut next = Instant::now();
    let mut last = Instant::now();
    while !tx.is_closed() {
        let now = Instant::now();
        if now >= next {
            let cgroups = watched.lock().unwrap_or_else(|e| e.into_inner()).clone();
            tx.send_replace(Arc::new(sampler.sample(&cgroups, now)));
            last = now;
            next = now + PERIOD;
            continue;
        }
        let wait = next.saturating_duration_since(now).as_millis().min(1000) as u16;
        if triggers.is_empty() {
            std::thread::sleep(Duration::from_millis(wait.into()));
            continue;
        }
        let mut fds: Vec<PollFd> = triggers
            .iter()
            .map(|f| PollFd::new(f.as_fd(), PollFlags::POLLPRI))
            .collect();
        match nix::poll::poll(&mut fds, PollTimeout::from(wait)) {
            Ok(n) if n > 0 => {
                let fired = fds.iter().any(|f| f.any().unwrap_or(false));
                if fired {
                    debug!("PSI trigger fired");
                    next = next.min(last + MIN_GAP);
                }
                if fds.iter().any(|f| {
                    f.revents()
                        .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLNVAL))
                }) {
                    // The file went away (never on a live kernel): stop
                    // polling it rather than spin.
                    warn!("PSI trigger error: reading every second only");
                    return run_periodic(sampler, tx, watched, next);
                }
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                warn!(error = %e, "poll on PSI triggers failed: reading every second only");
                return run_periodic(sampler, tx, watched, next);
            }
        }
    }
}

fn run_periodic(
    mut sampler: Sampler,
    tx: watch::Sender<Arc<PressureSnapshot>>,
    watched: Arc<Mutex<BTreeSet<PathBuf>>>,
    mut next: Instant,
) {
    while !tx.is_closed() {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        let cgroups = watched.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let now = Instant::now();
        tx.send_replace(Arc::new(sampler.sample(&cgroups, now)));
        next = now + PERIOD;
    }
}

/// Opens each node file and writes a trigger; the open files, or none
/// (said once in the log).
fn arm(node: &Path) -> Vec<File> {
    let mut refused = None;
    for (stall, window) in TRIGGERS {
        let mut files = Vec::new();
        for r in RESOURCES {
            let path = node.join(r.name());
            match arm_one(&path, stall, window) {
                Ok(f) => files.push(f),
                Err(e) => {
                    refused = Some((path, e));
                    break;
                }
            }
        }
        if files.len() == RESOURCES.len() {
            info!(
                stall_us = stall,
                window_us = window,
                files = %node.display(),
                "PSI triggers armed on cpu, memory, io: pressure is read within a second of rising, and every second"
            );
            return files;
        }
    }
    if let Some((path, e)) = refused {
        warn!(file = %path.display(), error = %e, "PSI triggers refused: reading pressure every second instead");
    }
    Vec::new()
}

fn arm_one(path: &Path, stall: u64, window: u64) -> std::io::Result<File> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    f.write_all(format!("some {stall} {window}\0").as_bytes())?;
    Ok(f)
}

/// Reads files and turns `total` counters into recent shares.
pub(super) struct Sampler {
    sources: Sources,
    /// Per file: when last read and its `some` total.
    prev: BTreeMap<PathBuf, (Instant, u64)>,
    /// Files whose errors were already logged.
    told: BTreeSet<PathBuf>,
}

impl Sampler {
    pub(super) fn new(sources: Sources) -> Sampler {
        Sampler {
            sources,
            prev: BTreeMap::new(),
            told: BTreeSet::new(),
        }
    }

    /// A snapshot as of `now`, with `cgroups` (paths below the v2 root).
    pub(super) fn sample(&mut self, cgroups: &BTreeSet<PathBuf>, now: Instant) -> PressureSnapshot {
        let mut snap = PressureSnapshot::default();
        let node = self.sources.node.clone();
        match self.readings(&node, "", now) {
            Ok(r) => {
                snap.node = r;
                snap.available = true;
            }
            Err(e) => self.tell(&node, &e, "node pressure unreadable: pools are not gated by pressure"),
        }
        let Some(root) = self.sources.cgroup2.clone() else {
            return snap;
        };
        for cg in cgroups {
            let dir = root.join(cg.strip_prefix("/").unwrap_or(cg));
            match self.readings(&dir, ".pressure", now) {
                Ok(r) => {
                    snap.cgroups.insert(cg.clone(), r);
                }
                Err(e) => self.tell(&dir, &e, "cgroup pressure unreadable: the node's is used"),
            }
        }
        snap
    }

    fn tell(&mut self, key: &Path, e: &PsiError, what: &str) {
        if self.told.insert(key.to_path_buf()) {
            info!(error = %crate::error::chain(e), "{what}");
        }
    }

    fn readings(&mut self, dir: &Path, suffix: &str, now: Instant) -> Result<Readings, PsiError> {
        let mut out = Readings::default();
        for r in RESOURCES {
            let path = dir.join(format!("{}{suffix}", r.name()));
            let p = psi::read(&path)?;
            let s = out.get_mut(r);
            s.some_avg10 = p.some.avg10;
            s.full_avg10 = p.full.map_or(0.0, |f| f.avg10);
            let total = p.some.total_us;
            s.some_recent = match self.prev.insert(path, (now, total)) {
                Some((then, before)) if now > then => {
                    let us = now.duration_since(then).as_micros() as f64;
                    (total.saturating_sub(before) as f64 * 100.0 / us).clamp(0.0, 100.0)
                }
                _ => 0.0,
            };
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "monitor_tests.rs"]
mod tests;

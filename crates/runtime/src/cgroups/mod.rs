//! The per-container cgroup, on cgroup v1 and v2.
//!
//! This module owns the container's cgroup from creation to removal:
//! turning `linux.cgroupsPath` into a directory ([`parse_cgroups_path`]),
//! finding the hierarchies ([`Layout`]), creating the directory in each of
//! them, applying and updating `linux.resources`, moving processes in,
//! listing, freezing, signalling them, OOM accounting and notification,
//! statistics, and removal — and, for warm zygotes, taking over a cgroup
//! prepared in advance by renaming it ([`Cgroup::create_by_rename`]).
//!
//! It works directly on cgroupfs files rather than through `cgroups-rs`:
//! cgroups-rs 0.3 fixes the v2 root at `/sys/fs/cgroup` and reads the v1
//! hierarchies from `/proc/self/mountinfo` (so nothing is testable against a
//! fixture directory), ignores errors when creating v1 directories, reports
//! a failed `procs` read as an empty list and does not wait for the v1
//! freezer to settle. Every operation here takes the hierarchy root from the
//! [`Layout`], so `Cgroup::with_root` points it at a temporary directory in
//! tests, and every error names the file and value involved.
//!
//! systemd-style paths (`slice:prefix:name`) are created directly in
//! cgroupfs at the path systemd would use; systemd is not contacted over
//! D-Bus (see [`parse_cgroups_path`]).
//!
//! Not handled: `linux.resources.devices` on v2 (needs an eBPF program; a
//! warning is logged and the rules are not enforced), `network`, `rdma`,
//! realtime CPU and kernel memory limits (ignored with a warning).

mod fs;
mod layout;
mod path;
mod resources;
mod stats;
mod tree;

#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
mod tests;

use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};

use tree::{collect_procs, enable_controllers, init_cpuset, remove_tree_retry};

pub use layout::{CgroupVersion, Layout, V1Hierarchy, CGROUP_ROOT, HYBRID_UNIFIED, V1_CONTROLLERS};
pub use path::{expand_slice, parse_cgroups_path, DEFAULT_PARENT};
pub use stats::{CgroupStats, CpuStats, MemoryStats, PidsStats, ThrottlingStats};

/// How long freeze/thaw wait for the state to settle.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long remove() retries rmdir while the cgroup is still busy.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Errors from cgroup operations.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("no cgroup hierarchy found under {root}")]
    NoHierarchy { root: PathBuf },
    #[error("cgroup {path} does not exist")]
    NotFound { path: PathBuf },
    #[error("create cgroup directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("controller {controller} is not available for cgroup {cgroup}")]
    ControllerUnavailable { controller: String, cgroup: PathBuf },
    #[error("{field} {reason}")]
    InvalidResource { field: String, reason: String },
    #[error("{path}: state did not become {want} within {waited_ms} ms (last state {state:?})")]
    FreezeTimeout {
        path: PathBuf,
        want: String,
        state: String,
        waited_ms: u128,
    },
    #[error("remove cgroup directory {path}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("send {signal} to pid {pid}: {errno}")]
    Signal { pid: i32, signal: Signal, errno: Errno },
    #[error("register an oom eventfd for {path}: {errno}")]
    EventFd { path: PathBuf, errno: Errno },
}

type Result<T> = std::result::Result<T, CgroupError>;

/// A container's cgroup: one directory per v1 hierarchy, or one in the
/// unified hierarchy.
#[derive(Debug)]
pub struct Cgroup {
    /// Absolute cgroup path, e.g. `/default/abc`.
    path: PathBuf,
    layout: Layout,
    /// Directories made by [`Cgroup::create`], parents first, so
    /// [`Cgroup::remove`] can also remove intermediate directories it made
    /// (only while they are empty). Lost if the handle is rebuilt in
    /// another process; then only the leaf is removed.
    created: Mutex<Vec<PathBuf>>,
}

impl Cgroup {
    /// The container's cgroup from `linux.cgroupsPath` (see
    /// [`parse_cgroups_path`]) on the host's hierarchies ([`Layout::detect`]).
    pub fn from_spec(spec: &Spec, id: &str) -> Result<Cgroup> {
        let cgroups_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        Cgroup::new(Layout::detect()?, &cgroups_path, id)
    }

    /// Like [`Cgroup::from_spec`] with the hierarchies found under `root`
    /// (see [`Layout::from_root`]).
    pub fn with_root(root: &Path, cgroups_path: &str, id: &str) -> Result<Cgroup> {
        Cgroup::new(Layout::from_root(root)?, cgroups_path, id)
    }

    /// A cgroup for `cgroups_path` (spec syntax) on an explicit layout.
    pub fn new(layout: Layout, cgroups_path: &str, id: &str) -> Result<Cgroup> {
        Ok(Cgroup {
            path: parse_cgroups_path(cgroups_path, id)?,
            layout,
            created: Mutex::new(Vec::new()),
        })
    }

    /// The cgroup path as seen in `/proc/<pid>/cgroup`, e.g. `/default/abc`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn version(&self) -> CgroupVersion {
        self.layout.version()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn rel(&self) -> &Path {
        self.path.strip_prefix("/").unwrap_or(&self.path)
    }

    /// The cgroup's directory in every hierarchy.
    pub fn dirs(&self) -> Vec<PathBuf> {
        match &self.layout {
            Layout::V1(h) => h.iter().map(|h| h.mount_point.join(self.rel())).collect(),
            Layout::V2(root) => vec![root.join(self.rel())],
        }
    }

    /// Directory holding `controller`'s files: the hierarchy carrying it on
    /// v1, the unified directory on v2.
    pub(crate) fn controller_dir(&self, controller: &str) -> Result<PathBuf> {
        // On v2 every controller lives in the one directory; whether its
        // files exist is checked where they are written.
        match &self.layout {
            Layout::V1(h) => h
                .iter()
                .find(|h| h.has(controller))
                .map(|h| h.mount_point.join(self.rel()))
                .ok_or_else(|| CgroupError::ControllerUnavailable {
                    controller: controller.to_string(),
                    cgroup: self.path.clone(),
                }),
            Layout::V2(root) => Ok(root.join(self.rel())),
        }
    }

    /// Creates the cgroup in every hierarchy and applies `resources`. On
    /// failure, whatever this call created is removed again.
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let res = self.create_inner(resources);
        if let Err(err) = &res {
            tracing::warn!(cgroup = %self.path.display(), error = %err, "cgroup creation failed, cleaning up");
            if let Err(e) = self.remove() {
                tracing::warn!(cgroup = %self.path.display(), error = %e, "cleanup after failed creation");
            }
        }
        res
    }

    /// Takes over `pool`'s directories as this cgroup's by renaming them
    /// (cgroup v1 allows a rename within the same parent; the processes in
    /// it stay, so nothing migrates and no RCU grace period is waited for),
    /// then applies `resources` like [`Cgroup::create`]. Returns `Ok(false)`
    /// without changing anything when a rename is not possible (different
    /// parent, target exists, cgroup v2): the caller then creates the
    /// cgroup and moves the process.
    ///
    /// cgroup2 has no rename: on a hybrid host the unified directory is
    /// created instead, and the caller moves the process there with
    /// [`Cgroup::add_task_unified`] (a migration after all, but only of that
    /// hierarchy).
    pub fn create_by_rename(&self, pool: &Cgroup, resources: Option<&LinuxResources>) -> Result<bool> {
        let Layout::V1(hiers) = &self.layout else {
            return Ok(false);
        };
        if self.path.parent() != pool.path.parent() {
            return Ok(false);
        }
        let pairs: Vec<(PathBuf, PathBuf)> = hiers
            .iter()
            .filter(|h| !h.is_unified())
            .map(|h| (h.mount_point.join(pool.rel()), h.mount_point.join(self.rel())))
            .collect();
        if pairs.iter().any(|(_, to)| to.exists()) || self.unified_leaf().is_some_and(|d| d.exists()) {
            return Ok(false);
        }
        for (i, (from, to)) in pairs.iter().enumerate() {
            if let Err(e) = std::fs::rename(from, to) {
                tracing::debug!(from = %from.display(), to = %to.display(), error = %e, "cgroup rename refused");
                for (from, to) in pairs[..i].iter() {
                    let _ = std::fs::rename(to, from);
                }
                return Ok(false);
            }
        }
        let unified = hiers.iter().find(|h| h.is_unified()).map(|h| h.mount_point.clone());
        let res = match unified {
            Some(base) => self.make_dirs(&base, |_| Ok(())),
            None => Ok(()),
        }
        .and_then(|()| self.configure(resources));
        if let Err(err) = &res {
            tracing::warn!(cgroup = %self.path.display(), error = %err, "cgroup configuration failed, cleaning up");
            let _ = self.remove();
        }
        res.map(|()| true)
    }

    /// A hybrid host's unified directory of this cgroup.
    fn unified_leaf(&self) -> Option<PathBuf> {
        match &self.layout {
            Layout::V1(h) => h
                .iter()
                .find(|h| h.is_unified())
                .map(|h| h.mount_point.join(self.rel())),
            Layout::V2(_) => None,
        }
    }

    /// Moves process `pid` into this cgroup's directory of a hybrid host's
    /// unified hierarchy (after [`Cgroup::create_by_rename`] took over the
    /// v1 ones); nothing to do elsewhere.
    pub fn add_task_unified(&self, pid: i32) -> Result<()> {
        match self.unified_leaf() {
            Some(dir) => fs::write(&dir.join("cgroup.procs"), &pid.to_string()),
            None => Ok(()),
        }
    }

    fn create_inner(&self, resources: Option<&LinuxResources>) -> Result<()> {
        match &self.layout {
            Layout::V1(hiers) => {
                for h in hiers {
                    self.make_dirs(&h.mount_point, |_| Ok(()))?;
                    if h.has("cpuset") {
                        init_cpuset(&h.mount_point, self.rel())?;
                    }
                }
            }
            Layout::V2(root) => {
                enable_controllers(root);
                self.make_dirs(root, |dir| {
                    enable_controllers(dir);
                    Ok(())
                })?;
            }
        }
        tracing::debug!(cgroup = %self.path.display(), version = ?self.version(), "cgroup created");
        self.configure(resources)
    }

    /// Device rules (v1) and `resources` on an existing directory.
    fn configure(&self, resources: Option<&LinuxResources>) -> Result<()> {
        if let Some(r) = resources {
            let mut r = r.clone();
            if matches!(self.layout, Layout::V1(_)) {
                // Written once here, with runc's defaults; apply() below
                // (shared with Update) leaves devices alone without rules.
                resources::v1_create_devices(self, Some(&r))?;
                r.set_devices(None);
            }
            resources::apply(self, &r)?;
        } else if matches!(self.layout, Layout::V1(_)) {
            resources::v1_create_devices(self, None)?;
        }
        Ok(())
    }

    /// Creates `base/<rel>` component by component, recording what it made.
    /// `on_parent` runs for every directory below `base` except the leaf.
    fn make_dirs(&self, base: &Path, on_parent: impl Fn(&Path) -> Result<()>) -> Result<()> {
        let mut cur = base.to_path_buf();
        let comps: Vec<_> = self.rel().components().collect();
        for (i, comp) in comps.iter().enumerate() {
            cur.push(comp);
            match std::fs::create_dir(&cur) {
                Ok(()) => self.created.lock().unwrap_or_else(|e| e.into_inner()).push(cur.clone()),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(CgroupError::CreateDir {
                        path: cur.clone(),
                        source,
                    })
                }
            }
            if i + 1 < comps.len() {
                on_parent(&cur)?;
            }
        }
        Ok(())
    }

    /// Updates limits of an existing cgroup.
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        resources::apply(self, resources)
    }

    /// Moves process `pid` (all its threads) into the cgroup in every
    /// hierarchy.
    pub fn add_task(&self, pid: i32) -> Result<()> {
        for dir in self.dirs() {
            fs::write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Every process in the cgroup or its descendants (all hierarchies on
    /// v1), sorted and deduplicated.
    pub fn procs(&self) -> Result<Vec<i32>> {
        let mut pids = Vec::new();
        let mut found = false;
        for dir in self.dirs() {
            if dir.is_dir() {
                found = true;
                collect_procs(&dir, &mut pids)?;
            }
        }
        if !found {
            return Err(CgroupError::NotFound {
                path: self.path.clone(),
            });
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// The unified-hierarchy directory (v2 only; on v1 the first hierarchy).
    fn unified_dir(&self) -> PathBuf {
        match &self.layout {
            Layout::V2(root) => root.join(self.rel()),
            Layout::V1(h) => h.first().map(|h| h.mount_point.join(self.rel())).unwrap_or_default(),
        }
    }

    /// The freezer control file with its "frozen" and "thawed" values.
    fn freezer_file(&self) -> Result<(PathBuf, &'static str, &'static str)> {
        Ok(match self.layout {
            Layout::V1(_) => (
                self.controller_dir("freezer")?.join("freezer.state"),
                "FROZEN",
                "THAWED",
            ),
            Layout::V2(_) => (self.unified_dir().join("cgroup.freeze"), "1", "0"),
        })
    }

    /// Freezes every process and waits until the kernel reports the cgroup
    /// frozen. On timeout the cgroup is thawed again and an error returned.
    pub fn freeze(&self) -> Result<()> {
        let (file, frozen, thawed) = self.freezer_file()?;
        fs::write(&file, frozen)?;
        let start = Instant::now();
        let mut attempt = 0u32;
        let mut since_write = 0u32;
        loop {
            let state = self.freezer_state()?;
            if state == FreezerState::Frozen {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                let _ = fs::write(&file, thawed);
                return Err(CgroupError::FreezeTimeout {
                    path: file,
                    want: frozen.to_string(),
                    state: format!("{state:?}"),
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            attempt += 1;
            since_write += 1;
            // v1: a cgroup can get stuck in FREEZING when a task is in an
            // uninterruptible sleep; writing FROZEN again retries.
            if self.version() == CgroupVersion::V1 && since_write == 10 {
                since_write = 0;
                fs::write(&file, frozen)?;
            }
            std::thread::sleep(Duration::from_millis(u64::from(attempt.min(10))));
        }
    }

    /// Thaws the cgroup and waits until it is running again.
    pub fn thaw(&self) -> Result<()> {
        let (file, _, thawed) = self.freezer_file()?;
        fs::write(&file, thawed)?;
        let start = Instant::now();
        loop {
            let state = self.freezer_state()?;
            if state == FreezerState::Thawed {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                return Err(CgroupError::FreezeTimeout {
                    path: file,
                    want: thawed.to_string(),
                    state: format!("{state:?}"),
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// True if the cgroup is completely frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        Ok(self.freezer_state()? == FreezerState::Frozen)
    }

    fn freezer_state(&self) -> Result<FreezerState> {
        match self.layout {
            Layout::V1(_) => {
                let file = self.controller_dir("freezer")?.join("freezer.state");
                Ok(match fs::read(&file)?.trim() {
                    "FROZEN" => FreezerState::Frozen,
                    "FREEZING" => FreezerState::Freezing,
                    "THAWED" => FreezerState::Thawed,
                    other => {
                        return Err(CgroupError::Parse {
                            path: file,
                            reason: format!("unknown freezer state {other:?}"),
                        })
                    }
                })
            }
            Layout::V2(_) => {
                let dir = self.unified_dir();
                let want = fs::read_u64(&dir.join("cgroup.freeze"))?;
                let frozen = fs::read_keyed_field(&dir.join("cgroup.events"), "frozen")?;
                Ok(match (want, frozen) {
                    (_, 1) => FreezerState::Frozen,
                    (1, _) => FreezerState::Freezing,
                    _ => FreezerState::Thawed,
                })
            }
        }
    }

    /// Sends `signal` to every process in the cgroup. SIGKILL uses
    /// `cgroup.kill` on v2 when the kernel has it (5.14+); otherwise, for
    /// SIGKILL, the cgroup is frozen around the signalling (when a freezer
    /// is available) so no process can fork a new one that escapes it.
    /// Processes that exit meanwhile are ignored.
    pub fn kill_all(&self, signal: Signal) -> Result<()> {
        if signal == Signal::SIGKILL {
            if let Layout::V2(_) = self.layout {
                let file = self.unified_dir().join("cgroup.kill");
                if file.exists() {
                    return fs::write(&file, "1");
                }
            }
        }
        let freeze = signal == Signal::SIGKILL && self.freezer_file().is_ok();
        let frozen = freeze && self.freeze().is_ok();
        let res = self.signal_procs(signal);
        if frozen {
            self.thaw()?;
        }
        res
    }

    fn signal_procs(&self, signal: Signal) -> Result<()> {
        let pids = match self.procs() {
            Ok(p) => p,
            Err(CgroupError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        for pid in pids {
            match kill(Pid::from_raw(pid), signal) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(errno) => return Err(CgroupError::Signal { pid, signal, errno }),
            }
        }
        Ok(())
    }

    /// Removes the cgroup (and any child cgroups below it) from every
    /// hierarchy, retrying while it is still busy with exiting processes;
    /// then removes intermediate directories that [`Cgroup::create`] made if
    /// they are now empty (a parent shared with other containers is left
    /// alone because rmdir refuses non-empty cgroups). Succeeds if already
    /// gone.
    pub fn remove(&self) -> Result<()> {
        for dir in self.dirs() {
            remove_tree_retry(&dir)?;
        }
        let created = std::mem::take(&mut *self.created.lock().unwrap_or_else(|e| e.into_inner()));
        for dir in created.iter().rev() {
            match std::fs::remove_dir(dir) {
                Ok(()) => tracing::debug!(dir = %dir.display(), "removed intermediate cgroup"),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::debug!(dir = %dir.display(), error = %e, "intermediate cgroup kept")
                }
            }
        }
        tracing::debug!(cgroup = %self.path.display(), "cgroup removed");
        Ok(())
    }

    /// Number of processes the OOM killer killed in this cgroup
    /// (v1: `memory.oom_control` field `oom_kill`, kernel 4.13+;
    /// v2: `memory.events` field `oom_kill`).
    pub fn oom_kill_count(&self) -> Result<u64> {
        let dir = self.controller_dir("memory")?;
        match self.layout {
            Layout::V1(_) => fs::read_keyed_field(&dir.join("memory.oom_control"), "oom_kill"),
            Layout::V2(_) => {
                let file = dir.join("memory.events");
                if !file.exists() {
                    return Err(CgroupError::ControllerUnavailable {
                        controller: "memory".to_string(),
                        cgroup: self.path.clone(),
                    });
                }
                fs::read_keyed_field(&file, "oom_kill")
            }
        }
    }

    /// v1: an eventfd that becomes readable on every OOM event in the
    /// cgroup (registered through `cgroup.event_control`). The kernel also
    /// signals it once when the cgroup is removed, so after a wake-up check
    /// [`Cgroup::oom_kill_count`] or whether the cgroup still exists.
    /// v2: `None`; poll `memory.events` (e.g. with inotify) instead.
    pub fn oom_event_fd(&self) -> Result<Option<OwnedFd>> {
        if let Layout::V2(_) = self.layout {
            return Ok(None);
        }
        let dir = self.controller_dir("memory")?;
        let control = dir.join("memory.oom_control");
        let efd: OwnedFd = nix::sys::eventfd::EventFd::from_flags(nix::sys::eventfd::EfdFlags::EFD_CLOEXEC)
            .map_err(|errno| CgroupError::EventFd {
                path: control.clone(),
                errno,
            })?
            .into();
        let cfile = std::fs::File::open(&control).map_err(|source| CgroupError::Read {
            path: control.clone(),
            source,
        })?;
        let line = format!("{} {}", efd.as_raw_fd(), cfile.as_raw_fd());
        // The kernel keeps its own references; `cfile` may be closed now.
        fs::write(&dir.join("cgroup.event_control"), &line)?;
        Ok(Some(efd))
    }

    /// Resource usage statistics (see [`CgroupStats`] for per-version
    /// availability).
    pub fn stats(&self) -> Result<CgroupStats> {
        stats::collect(self)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum FreezerState {
    Thawed,
    Freezing,
    Frozen,
}

/// Starts the kernel's cgroup-migration grace period now, off the critical
/// path, by "moving" the calling process into the cgroup it is already in.
///
/// Every write to `cgroup.procs` takes the global
/// `cgroup_threadgroup_rwsem` for writing; when no writer was active
/// recently that means waiting for an RCU grace period (≈12 ms on the
/// development machine). Writers that arrive while one is pending, or
/// shortly after, do not wait again. Calling this (on a thread that may
/// block) as soon as a Create arrives lets the container's own migration,
/// a few milliseconds later, share that grace period. Best effort: errors
/// are ignored.
pub fn prime_migration(own_pid: u32) {
    let Ok(text) = std::fs::read_to_string("/proc/self/cgroup") else {
        return;
    };
    // v2 line "0::/path", or the first v1 hierarchy with a controller.
    let target = text.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, ctrl, path) = (it.next()?, it.next()?, it.next()?);
        let base = if ctrl.is_empty() {
            PathBuf::from("/sys/fs/cgroup")
        } else if ctrl.starts_with("name=") {
            return None;
        } else {
            PathBuf::from("/sys/fs/cgroup").join(ctrl.split(',').next()?)
        };
        let dir = base.join(path.trim_start_matches('/'));
        dir.join("cgroup.procs").exists().then_some(dir.join("cgroup.procs"))
    });
    if let Some(procs) = target {
        let _ = std::fs::write(procs, own_pid.to_string());
    }
}

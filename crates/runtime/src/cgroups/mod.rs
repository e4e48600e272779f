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
//! systemd-style paths (`slice:prefix:name`) become a transient scope
//! started through systemd's D-Bus API when systemd is PID 1 ([`systemd`]);
//! elsewhere they are created directly in cgroupfs at the path systemd would
//! use (see [`parse_cgroups_path`]).
//!
//! Device rules: the v1 devices controller, or on a pure v2 host a
//! `BPF_CGROUP_DEVICE` program ([`devices`]); both start from deny-all and
//! get runc's default allow list after the spec's rules.
//!
//! Not handled: `network`, `rdma`, realtime CPU and kernel memory limits
//! (ignored with a warning).

mod devices;
mod error;
mod freezer;
mod fs;
mod layout;
mod oom;
mod path;
mod resources;
mod stats;
mod systemd;
mod tree;

#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
mod path_props;
#[cfg(test)]
mod tests;

use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use oci_spec::runtime::{LinuxResources, Spec};

use tree::{collect_procs, enable_controllers, init_cpuset, remove_tree_retry};

pub use error::CgroupError;
pub(crate) use error::Result;
pub use tree::prime_migration;

pub use layout::{CgroupVersion, Layout, V1Hierarchy};
pub(crate) use path::parse_cgroups_path;
pub use stats::{CgroupStats, CpuStats, MemoryStats, PidsStats, ThrottlingStats};

/// How long remove() retries rmdir while the cgroup is still busy.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(3);

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
    /// Microseconds the last BPF device program install took (v2), for the
    /// create figures.
    devices_us: AtomicU64,
    /// The systemd driver's scope, for a systemd-form path on a systemd
    /// host (see [`systemd`]).
    /// Boxed: most cgroups have none, and every `Cgroup` would carry its size.
    scope: Option<Box<systemd::ScopeState>>,
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
        let mut cg = Cgroup::new(Layout::detect()?, &cgroups_path, id)?;
        cg.scope = systemd::ScopeState::for_path(&cgroups_path).map(Box::new);
        Ok(cg)
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
            devices_us: AtomicU64::new(0),
            scope: None,
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
    /// With the systemd driver nothing is created before the init exists
    /// (a scope needs a process): [`Cgroup::add_task`] starts it.
    pub fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        if self.defer_to_scope(resources) {
            return Ok(());
        }
        let res = self.create_inner(resources);
        if let Err(err) = &res {
            tracing::warn!(cgroup = %self.path.display(), error = %crate::error::chain(err), "cgroup creation failed, cleaning up");
            if let Err(e) = self.remove() {
                tracing::warn!(cgroup = %self.path.display(), error = %crate::error::chain(&e), "cleanup after failed creation");
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
        if self.scope.is_some() {
            return Ok(false);
        }
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
            tracing::warn!(cgroup = %self.path.display(), error = %crate::error::chain(err), "cgroup configuration failed, cleaning up");
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

    /// Device rules (the devices controller on v1, a BPF device program on
    /// v2, both with runc's defaults) and `resources` on an existing
    /// directory.
    fn configure(&self, resources: Option<&LinuxResources>) -> Result<()> {
        if let Layout::V2(_) = &self.layout {
            let rules = resources.and_then(|r| r.devices().as_deref()).unwrap_or_default();
            let t = std::time::Instant::now();
            devices::install(&self.unified_dir(), rules)?;
            self.devices_us.store(t.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
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

    /// Updates limits of an existing cgroup. On v2, device rules (when
    /// given) replace the device program, defaults appended as at creation.
    pub fn update(&self, resources: &LinuxResources) -> Result<()> {
        if let (Layout::V2(_), Some(rules)) = (&self.layout, resources.devices().as_deref()) {
            if !rules.is_empty() {
                devices::install(&self.unified_dir(), rules)?;
            }
        }
        resources::apply(self, resources)
    }

    /// Microseconds the BPF device program took to build, load and attach
    /// at creation (v2; 0 on v1, where the devices controller is written).
    pub fn devices_us(&self) -> u64 {
        self.devices_us.load(Ordering::Relaxed)
    }

    /// On a pure cgroup v2 host, the cgroup's directory opened for
    /// `clone3(CLONE_INTO_CGROUP)` (the child starts inside, no migration);
    /// `None` on v1 and hybrid hosts (their v1 hierarchies need a migration
    /// anyway) or when it cannot be opened (the caller migrates).
    pub fn clone_target(&self) -> Option<OwnedFd> {
        let Layout::V2(_) = &self.layout else {
            return None;
        };
        let dir = self.unified_dir();
        match std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&dir)
        {
            Ok(f) => Some(f.into()),
            Err(e) => {
                tracing::debug!(cgroup = %dir.display(), error = %e, "cannot open the cgroup for CLONE_INTO_CGROUP");
                None
            }
        }
    }

    /// Moves process `pid` (all its threads) into the cgroup in every
    /// hierarchy.
    /// With the systemd driver the first process starts the scope.
    pub fn add_task(&self, pid: i32) -> Result<()> {
        if self.start_scope(pid)? {
            return Ok(());
        }
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

    /// Removes the cgroup (and any child cgroups below it) from every
    /// hierarchy, retrying while it is still busy with exiting processes;
    /// then removes intermediate directories that [`Cgroup::create`] made if
    /// they are now empty (a parent shared with other containers is left
    /// alone because rmdir refuses non-empty cgroups). Succeeds if already
    /// gone.
    pub fn remove(&self) -> Result<()> {
        self.stop_scope()?;
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

    /// Resource usage statistics (see [`CgroupStats`] for per-version
    /// availability).
    pub fn stats(&self) -> Result<CgroupStats> {
        stats::collect(self)
    }
}

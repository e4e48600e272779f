//! The systemd cgroup driver: a container whose `linux.cgroupsPath` has the
//! systemd form `slice:prefix:name` gets a transient scope unit
//! `prefix-name.scope` in `slice`, created through systemd's D-Bus API as
//! runc's `--systemd-cgroup` does (libcontainer/cgroups/systemd).
//!
//! Which driver: the path's form decides, as it does for runc under
//! containerd. containerd's `SystemdCgroup = true` (runc's options) only
//! tells runc to expect that form; CRI and `ctr run --cgroup` put it in the
//! spec, and zygote reads nothing else. On a host whose PID 1 is not systemd
//! (no `/run/systemd/system`) the same path is still mapped to the cgroupfs
//! directory systemd would use (see `parse_cgroups_path`), as before. Names
//! ending in `.slice` (runc creates a transient slice for those) are mapped
//! that way too.
//!
//! The scope: `StartTransientUnit(<unit>, "replace", [Description, Slice,
//! Delegate=true, PIDs=[init], Memory/CPU/Tasks/IOAccounting=true,
//! DefaultDependencies=false] + the limits systemd would otherwise reset on
//! a reload)`, then the job's `JobRemoved` signal must say `done`. Systemd
//! needs a process to start a scope, so the unit is started when the init
//! is placed ([`super::Cgroup::add_task`]); the resources are then written
//! through cgroupfs on the scope's directory like for the cgroupfs driver.
//! Removal: `StopUnit` (waiting for its job), then `ResetFailedUnit`, so no
//! failed unit is left behind.
//!
//! D-Bus goes through `zbus` (async API, tokio backend). Each call runs on a
//! short-lived thread of its own with a current-thread runtime, joined before
//! returning: callers are plain threads (the monitor clones processes and
//! must not keep helper threads around) or tokio workers inside
//! `block_in_place`/`spawn_blocking`, where starting a nested runtime on the
//! same thread would panic.

mod dbus;

use std::path::Path;
use std::sync::Mutex;

use oci_spec::runtime::LinuxResources;

use super::{fs, Cgroup, CgroupError, Result};

/// Where systemd's presence as the service manager is announced
/// (`sd_booted()`).
const BOOTED: &str = "/run/systemd/system";

/// A transient scope unit standing for a container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    /// e.g. `zygote-test-<id>.scope`.
    pub(crate) unit: String,
    /// e.g. `system.slice`.
    pub(crate) slice: String,
}

/// True when systemd is the service manager (PID 1) of this host.
pub(crate) fn booted() -> bool {
    Path::new(BOOTED).is_dir()
}

impl Scope {
    /// The scope for a systemd-form cgroups path, or None for any other form
    /// (or a `.slice` name, see the module docs).
    pub(crate) fn from_cgroups_path(path: &str) -> Option<Scope> {
        if path.starts_with('/') || !path.contains(':') {
            return None;
        }
        let parts: Vec<&str> = path.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return None;
        };
        if name.is_empty() || name.ends_with(".slice") {
            return None;
        }
        let slice = if slice.is_empty() { "system.slice" } else { slice };
        let unit = if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        Some(Scope {
            unit,
            slice: slice.to_string(),
        })
    }

    /// Starts the scope with `pid` in it and waits until systemd has done so.
    pub(crate) fn start(&self, pid: u32, resources: Option<&LinuxResources>) -> Result<()> {
        let props = dbus::Properties::for_scope(self, pid, resources);
        run(self, "start", move |bus| async move { bus.start(&props).await })
    }

    /// Stops the scope (killing what is left in it) and forgets a failed
    /// state; a unit that is already gone is fine.
    pub(crate) fn stop(&self) -> Result<()> {
        let unit = self.unit.clone();
        run(self, "stop", move |bus| async move { bus.stop(&unit).await })
    }
}

/// A [`Cgroup`]'s scope and what waits for it.
#[derive(Debug)]
pub(crate) struct ScopeState {
    scope: Scope,
    /// `Some(resources)` between [`Cgroup::create`] and the first
    /// [`Cgroup::add_task`], which starts the unit and applies them.
    pending: Mutex<Option<Option<LinuxResources>>>,
}

impl ScopeState {
    /// The scope for a systemd-form path when systemd runs this host.
    pub(crate) fn for_path(path: &str) -> Option<ScopeState> {
        if !booted() {
            return None;
        }
        Scope::from_cgroups_path(path).map(|scope| ScopeState {
            scope,
            pending: Mutex::new(None),
        })
    }
}

impl Cgroup {
    /// The systemd driver's unit name (e.g. `zygote-test-<id>.scope`), None
    /// for the cgroupfs driver.
    pub fn systemd_unit(&self) -> Option<&str> {
        self.scope.as_ref().map(|s| s.scope.unit.as_str())
    }

    /// [`Cgroup::create`] with the systemd driver: keeps `resources` for
    /// [`Cgroup::start_scope`]; false for the cgroupfs driver.
    pub(super) fn defer_to_scope(&self, resources: Option<&LinuxResources>) -> bool {
        let Some(s) = &self.scope else {
            return false;
        };
        *s.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(resources.cloned());
        true
    }

    /// The first [`Cgroup::add_task`] after [`Cgroup::create`] with the
    /// systemd driver: starts the scope with `pid` in it, then (like the
    /// cgroupfs driver) makes the directories systemd does not manage (v1
    /// hierarchies without a systemd controller), puts `pid` there and
    /// applies the resources through cgroupfs. False when there is nothing
    /// to start (cgroupfs driver, or the scope runs already).
    pub(super) fn start_scope(&self, pid: i32) -> Result<bool> {
        let Some(s) = &self.scope else {
            return Ok(false);
        };
        let Some(resources) = s.pending.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(false);
        };
        let pid_u32 = u32::try_from(pid).map_err(|_| CgroupError::InvalidResource {
            field: "pid".to_string(),
            reason: format!("{pid} is not a process id"),
        })?;
        s.scope.start(pid_u32, resources.as_ref())?;
        self.create_inner(resources.as_ref())?;
        for dir in self.dirs() {
            fs::write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(true)
    }

    /// [`Cgroup::remove`] with the systemd driver: stops the unit first.
    pub(super) fn stop_scope(&self) -> Result<()> {
        match &self.scope {
            Some(s) => s.scope.stop(),
            None => Ok(()),
        }
    }
}

/// Runs one D-Bus conversation on a thread of its own (see the module docs).
fn run<F, Fut>(scope: &Scope, op: &'static str, f: F) -> Result<()>
where
    F: FnOnce(dbus::Systemd) -> Fut + Send,
    Fut: std::future::Future<Output = std::result::Result<(), dbus::BusError>>,
{
    let err = |message: String| CgroupError::Systemd {
        unit: scope.unit.clone(),
        op,
        message,
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| err(format!("tokio runtime: {e}")))?;
            rt.block_on(async {
                let bus = dbus::Systemd::connect().await.map_err(|e| err(e.to_string()))?;
                f(bus).await.map_err(|e| err(e.to_string()))
            })
        })
        .join()
        .unwrap_or_else(|_| Err(err("the D-Bus thread panicked".to_string())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_from_cgroups_path() {
        let s = Scope::from_cgroups_path("system.slice:zygote-test:abc").unwrap();
        assert_eq!(s.unit, "zygote-test-abc.scope");
        assert_eq!(s.slice, "system.slice");
        let s = Scope::from_cgroups_path(":cri-containerd:abc").unwrap();
        assert_eq!(
            (s.unit.as_str(), s.slice.as_str()),
            ("cri-containerd-abc.scope", "system.slice")
        );
        let s = Scope::from_cgroups_path("kubepods-pod1.slice::abc").unwrap();
        assert_eq!(
            (s.unit.as_str(), s.slice.as_str()),
            ("abc.scope", "kubepods-pod1.slice")
        );
        for none in ["/a/b", "a/b", "", "a:b", "a.slice:p:", "a.slice:p:x.slice"] {
            assert_eq!(Scope::from_cgroups_path(none), None, "{none:?}");
        }
    }
}

//! OOM accounting of a [`Cgroup`]: the kill count and, on v1, an eventfd
//! that wakes on every OOM event.

use std::os::fd::{AsRawFd, OwnedFd};

use super::{fs, Cgroup, CgroupError, Layout, Result};

impl Cgroup {
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
}

//! The `cgroup` mount type: showing the container its own cgroups.
//!
//! As runc 1.1 (`mountCgroupV1`/`mountCgroupV2` in libcontainer's
//! `rootfs_linux.go`), compared side by side with runc-v2 in
//! `tests/integration/tests/cgroupfs_view.rs` (also in the v2 VM's list):
//! - cgroup v1 (and hybrid): a tmpfs (`nosuid,nodev,noexec`, `mode=755`)
//!   at the destination, left read-write whatever the mount's options (runc
//!   does not remount it); in it one subdirectory per v1 hierarchy (the
//!   hybrid's `unified` cgroup2 mount is left out, as runc's
//!   `GetCgroupMounts(false)` does) holding the container's own cgroup
//!   directory, bind-mounted and remounted with the mount's flags (so
//!   read-only per its `ro`), plus symlinks for co-mounted controllers
//!   (`cpu -> cpu,cpuacct`). In a cgroup namespace of its own each
//!   hierarchy is mounted afresh instead (showing the namespace root), the
//!   `name=systemd` one with source `systemd`.
//! - pure cgroup v2: a fresh `cgroup2` mount with the mount's flags, with or
//!   without a cgroup namespace (without one it shows the whole hierarchy,
//!   as under runc); only where that is refused (EPERM/EBUSY, a user
//!   namespace without a cgroup namespace) a bind of the host's
//!   `/sys/fs/cgroup`, or of the container's own cgroup directory in a
//!   cgroup namespace.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::symlinkat;

use super::fs::{fd_path, Root};
use super::plan::{MountPlan, RootfsPlan};
use super::spec_mounts::remount_bind;
use crate::error::{Context, RuntimeError};
use crate::mounts::mountinfo::{self, MountInfo};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// One line of `/proc/self/cgroup`.
struct OwnCgroup {
    controllers: BTreeSet<String>,
    path: PathBuf,
}

fn own_cgroups() -> Result<Vec<OwnCgroup>, RuntimeError> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ctx(|| "read /proc/self/cgroup".into())?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let controllers = it.next()?;
            let path = it.next()?;
            Some(OwnCgroup {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect(),
                path: PathBuf::from(path),
            })
        })
        .collect())
}

/// Controller names (and `name=` named hierarchies) in v1 super options.
fn hierarchy_controllers(info: &MountInfo, known: &BTreeSet<String>) -> BTreeSet<String> {
    info.super_options
        .split(',')
        .filter(|o| o.starts_with("name=") || known.contains(*o))
        .map(String::from)
        .collect()
}

fn known_controllers() -> BTreeSet<String> {
    std::fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

/// Host directory of our own cgroup in hierarchy `info`.
fn host_dir(info: &MountInfo, own: &OwnCgroup) -> PathBuf {
    let rel = own.path.strip_prefix(&info.root).unwrap_or(&own.path);
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    info.mount_point.join(rel)
}

/// Mount the `cgroup` entry `m` inside the rootfs.
pub fn mount_cgroup(root: &Root, plan: &RootfsPlan, m: &MountPlan) -> Result<(), RuntimeError> {
    let infos = mountinfo::read_self().ctx(|| "read /proc/self/mountinfo".into())?;
    let own = own_cgroups()?;
    let pure_v2 = infos
        .iter()
        .any(|i| i.mount_point == Path::new(CGROUP_ROOT) && i.fstype == "cgroup2");
    if pure_v2 || m.fstype.as_deref() == Some("cgroup2") {
        let target = root.mkdir_all(&m.destination, Mode::from_bits_truncate(0o755))?;
        return mount_v2(root, plan, m, &infos, &own, &fd_path(target.as_fd()));
    }

    let dest = root.mkdir_all(&m.destination, Mode::from_bits_truncate(0o755))?;
    let tmpfs_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("tmpfs"),
        &fd_path(dest.as_fd()),
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755"),
    )
    .ctx(|| format!("mount tmpfs for cgroups at {}", m.destination.display()))?;
    let dest = root.resolve(&m.destination)?;

    let known = known_controllers();
    for info in infos
        .iter()
        .filter(|i| i.mount_point.starts_with(CGROUP_ROOT) && i.fstype == "cgroup")
    {
        let Some(name) = info.mount_point.file_name() else {
            continue;
        };
        let sub_path = m.destination.join(name);
        let sub = root.mkdir_all(&sub_path, Mode::from_bits_truncate(0o755))?;
        let target = fd_path(sub.as_fd());
        let controllers = hierarchy_controllers(info, &known);
        if plan.cgroup_ns {
            let data = controllers.iter().cloned().collect::<Vec<_>>().join(",");
            let source = if data == "name=systemd" { "systemd" } else { "cgroup" };
            mount(Some(source), &target, Some("cgroup"), m.flags, Some(data.as_str()))
                .ctx(|| format!("mount cgroup hierarchy {data} at {}", sub_path.display()))?;
        } else {
            let Some(mine) = own.iter().find(|o| o.controllers == controllers) else {
                continue; // a hierarchy we are not part of
            };
            let source = host_dir(info, mine);
            mount(
                Some(&source),
                &target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .ctx(|| format!("bind {} to {}", source.display(), sub_path.display()))?;
            let top = root.resolve(&sub_path)?;
            remount_bind(&fd_path(top.as_fd()), m.flags)?;
        }
        let name = name.to_string_lossy();
        if name.contains(',') {
            for part in name.split(',') {
                match symlinkat(name.as_ref(), Some(dest.as_raw_fd()), part) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(errno) => {
                        return Err(RuntimeError::Sys {
                            context: format!("symlink {}/{part}", m.destination.display()),
                            errno,
                        })
                    }
                }
            }
        }
    }
    Ok(())
}

fn mount_v2(
    root: &Root,
    plan: &RootfsPlan,
    m: &MountPlan,
    infos: &[MountInfo],
    own: &[OwnCgroup],
    target: &Path,
) -> Result<(), RuntimeError> {
    let data = (!m.data.is_empty()).then_some(m.data.as_str());
    let source = m.source.as_deref().unwrap_or(Path::new(""));
    match mount(Some(source), target, Some("cgroup2"), m.flags, data) {
        Err(Errno::EPERM | Errno::EBUSY) => {}
        r => return r.ctx(|| format!("mount cgroup2 at {}", m.destination.display())),
    }
    // Refused (a user namespace without a cgroup namespace of its own):
    // bind the host's hierarchy instead, as runc does.
    let info = infos
        .iter()
        .filter(|i| i.fstype == "cgroup2")
        .min_by_key(|i| i.mount_point != Path::new(CGROUP_ROOT))
        .ok_or_else(|| RuntimeError::Setup("no cgroup2 mount found on the host".into()))?;
    let source = if plan.cgroup_ns {
        let mine = own
            .iter()
            .find(|o| o.controllers.is_empty())
            .ok_or_else(|| RuntimeError::Setup("no cgroup2 entry in /proc/self/cgroup".into()))?;
        host_dir(info, mine)
    } else {
        info.mount_point.clone()
    };
    mount(
        Some(&source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx(|| format!("bind {} to {}", source.display(), m.destination.display()))?;
    let top = root.resolve(&m.destination)?;
    remount_bind(&fd_path(top.as_fd()), m.flags)
}

//! The `cgroup` mount type: showing the container its own cgroups.
//!
//! Like runc: on cgroup v1 (and hybrid) a tmpfs is mounted at the
//! destination and each host hierarchy gets a subdirectory holding the
//! container's own cgroup directory, bind-mounted (read-only per the mount's
//! options), with symlinks for co-mounted controllers (`cpu -> cpu,cpuacct`).
//! In a cgroup namespace of its own the hierarchies are mounted afresh
//! instead (they then show the namespace root). On a pure cgroup v2 host the
//! destination gets a `cgroup2` mount (cgroup namespace) or a bind of the
//! container's cgroup directory.

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
    let tmpfs_flags = m.flags - MsFlags::MS_RDONLY;
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
        .filter(|i| i.mount_point.starts_with(CGROUP_ROOT) && (i.fstype == "cgroup" || i.fstype == "cgroup2"))
    {
        let Some(name) = info.mount_point.file_name() else {
            continue;
        };
        let sub_path = m.destination.join(name);
        let sub = root.mkdir_all(&sub_path, Mode::from_bits_truncate(0o755))?;
        let target = fd_path(sub.as_fd());
        let v2 = info.fstype == "cgroup2";
        let controllers = hierarchy_controllers(info, &known);
        if plan.cgroup_ns {
            let data = if v2 {
                None
            } else {
                Some(controllers.iter().cloned().collect::<Vec<_>>().join(","))
            };
            mount(
                Some(info.fstype.as_str()),
                &target,
                Some(info.fstype.as_str()),
                m.flags,
                data.as_deref(),
            )
            .ctx(|| format!("mount {} hierarchy at {}", info.fstype, sub_path.display()))?;
        } else {
            let mine = own.iter().find(|o| {
                if v2 {
                    o.controllers.is_empty()
                } else {
                    o.controllers == controllers
                }
            });
            let Some(mine) = mine else {
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
    if m.flags.contains(MsFlags::MS_RDONLY) {
        mount(
            None::<&str>,
            &fd_path(dest.as_fd()),
            None::<&str>,
            m.flags | MsFlags::MS_REMOUNT,
            Some("mode=755"),
        )
        .ctx(|| format!("remount {} read-only", m.destination.display()))?;
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
    if plan.cgroup_ns {
        return mount(Some("cgroup2"), target, Some("cgroup2"), m.flags, None::<&str>)
            .ctx(|| format!("mount cgroup2 at {}", m.destination.display()));
    }
    let info = infos
        .iter()
        .filter(|i| i.fstype == "cgroup2")
        .min_by_key(|i| i.mount_point != Path::new(CGROUP_ROOT))
        .ok_or_else(|| RuntimeError::Setup("no cgroup2 mount found on the host".into()))?;
    let mine = own
        .iter()
        .find(|o| o.controllers.is_empty())
        .ok_or_else(|| RuntimeError::Setup("no cgroup2 entry in /proc/self/cgroup".into()))?;
    let source = host_dir(info, mine);
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

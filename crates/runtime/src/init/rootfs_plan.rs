//! Building the [`RootfsPlan`] (mount list, devices, masked/readonly paths,
//! sysctls) from the spec, in the parent.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::SFlag;
use oci_spec::runtime::{Linux, LinuxDeviceType, Mount, Spec};

use super::plan::{DevicePlan, MountKind, MountPlan, RootfsPlan};
use crate::error::{Context, RuntimeError};

/// Map an OCI propagation name (`rslave`, `private`, ...) to mount flags.
pub fn propagation_flags(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Parsed options of one spec mount.
struct Parsed {
    flags: MsFlags,
    propagation: Vec<MsFlags>,
    data: String,
    attr_set: u64,
    attr_clr: u64,
}

/// Parse fstab-style options via the `mounts` module (shared vocabulary
/// with containerd's rootfs mounts).
fn parse_options(options: &[String]) -> Parsed {
    let o = crate::mounts::parse_mount_options_ext(options);
    Parsed {
        flags: o.flags,
        propagation: o.propagation,
        data: o.data,
        attr_set: o.attr_set,
        attr_clr: o.attr_clr,
    }
}

/// Build the rootfs part of a container's plan, in named steps: resolve the
/// rootfs, its propagation, one [`MountPlan`] per spec mount, the device
/// list, then the paths and sysctls copied from `linux`.
#[allow(clippy::too_many_arguments)]
pub fn build_rootfs_plan(
    spec: &Spec,
    bundle: &Path,
    rootfs: &Path,
    cwd: &Path,
    user_ns: bool,
    cgroup_ns: bool,
    default_devices: Vec<DevicePlan>,
) -> Result<RootfsPlan, RuntimeError> {
    let rootfs = resolve_rootfs(rootfs)?;
    let linux = spec.linux().as_ref();
    let root_propagation = root_propagation(linux)?;
    let requested = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .is_some_and(|p| !p.is_empty());
    let root_propagation_after_pivot =
        (requested && !root_propagation.contains(MsFlags::MS_PRIVATE)).then_some(root_propagation);

    let mut mounts = Vec::new();
    let mut dev_readonly = false;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let (plan, ro_dev) = mount_plan(i, m, bundle)?;
        dev_readonly |= ro_dev;
        mounts.push(plan);
    }
    let setup_dev = !mounts
        .iter()
        .any(|m| matches!(m.kind, MountKind::Bind { .. }) && m.destination == Path::new("/dev"));
    let devices = device_plans(linux, default_devices)?;

    let paths = |v: Option<&Vec<String>>| v.into_iter().flatten().map(PathBuf::from).collect();
    Ok(RootfsPlan {
        rootfs,
        root_propagation,
        root_propagation_after_pivot,
        mounts,
        setup_dev,
        bind_devices: user_ns,
        devices,
        dev_readonly,
        masked_paths: paths(linux.and_then(|l| l.masked_paths().as_ref())),
        readonly_paths: paths(linux.and_then(|l| l.readonly_paths().as_ref())),
        readonly_root: spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false),
        sysctl: sorted_sysctl(linux),
        cgroup_ns,
        cwd: cwd.to_path_buf(),
    })
}

/// The rootfs as a canonical path to a directory.
fn resolve_rootfs(rootfs: &Path) -> Result<PathBuf, RuntimeError> {
    let resolved = std::fs::canonicalize(rootfs).ctx(|| format!("resolve rootfs {}", rootfs.display()))?;
    if !resolved.is_dir() {
        return Err(RuntimeError::InvalidSpec(format!(
            "rootfs {} is not a directory",
            resolved.display()
        )));
    }
    Ok(resolved)
}

/// `linux.rootfsPropagation` as mount flags (`rslave` when unset).
fn root_propagation(linux: Option<&Linux>) -> Result<MsFlags, RuntimeError> {
    match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => Ok(MsFlags::MS_SLAVE | MsFlags::MS_REC),
        Some(p) => propagation_flags(p)
            .ok_or_else(|| RuntimeError::InvalidSpec(format!("linux.rootfsPropagation: unknown mode {p:?}"))),
    }
}

/// The plan of `mounts[i]`, and whether it is a read-only `/dev` whose
/// `MS_RDONLY` was taken off (devices are created after mounting `/dev`,
/// which is remounted read-only afterwards).
fn mount_plan(i: usize, m: &Mount, bundle: &Path) -> Result<(MountPlan, bool), RuntimeError> {
    let options = m.options().clone().unwrap_or_default();
    let typ = m.typ().clone().unwrap_or_default();
    let Parsed {
        mut flags,
        propagation,
        data,
        attr_set,
        attr_clr,
    } = parse_options(&options);
    let is_bind = typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
    let kind = if is_bind {
        MountKind::Bind {
            recursive: options.iter().any(|o| o == "rbind"),
        }
    } else if typ == "cgroup" || typ == "cgroup2" {
        MountKind::Cgroup
    } else {
        MountKind::Filesystem
    };
    let destination = m.destination().clone();
    if !destination.is_absolute() {
        return Err(RuntimeError::InvalidSpec(format!(
            "mounts[{i}].destination {} is not absolute",
            destination.display()
        )));
    }
    let source = match (kind, m.source()) {
        (MountKind::Bind { .. }, None) => {
            return Err(RuntimeError::InvalidSpec(format!(
                "mounts[{i}].source is required for a bind mount"
            )))
        }
        (MountKind::Bind { .. }, Some(s)) if s.is_relative() => Some(bundle.join(s)),
        (_, s) => s.clone(),
    };
    flags -= MsFlags::MS_BIND | MsFlags::MS_REC;
    let mut dev_readonly = false;
    if kind == MountKind::Filesystem && destination == Path::new("/dev") && flags.contains(MsFlags::MS_RDONLY) {
        flags -= MsFlags::MS_RDONLY;
        dev_readonly = true;
    }
    let plan = MountPlan {
        destination,
        source,
        fstype: if is_bind { None } else { Some(typ) },
        kind,
        flags,
        propagation,
        data,
        attr_set,
        attr_clr,
    };
    Ok((plan, dev_readonly))
}

/// The default devices with `linux.devices` added (a spec device replaces
/// a default one at the same path).
fn device_plans(linux: Option<&Linux>, mut devices: Vec<DevicePlan>) -> Result<Vec<DevicePlan>, RuntimeError> {
    for (i, d) in linux
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(RuntimeError::InvalidSpec(format!(
                    "linux.devices[{i}].type \"a\" cannot be created"
                )))
            }
        };
        if !d.path().starts_with("/dev") {
            return Err(RuntimeError::InvalidSpec(format!(
                "linux.devices[{i}].path {} is not under /dev",
                d.path().display()
            )));
        }
        devices.retain(|x| x.path != *d.path());
        devices.push(DevicePlan {
            path: d.path().clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    Ok(devices)
}

/// `linux.sysctl`, sorted by key so the order of writes is stable.
fn sorted_sysctl(linux: Option<&Linux>) -> Vec<(String, String)> {
    let mut sysctl: Vec<(String, String)> = linux
        .and_then(|l| l.sysctl().clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    sysctl.sort();
    sysctl
}

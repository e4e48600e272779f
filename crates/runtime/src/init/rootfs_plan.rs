//! Building the [`RootfsPlan`] (mount list, devices, masked/readonly paths,
//! sysctls) from the spec, in the parent.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::SFlag;
use oci_spec::runtime::{LinuxDeviceType, Spec};

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

/// Build the rootfs part of a container's plan.
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
    let rootfs = std::fs::canonicalize(rootfs).ctx(|| format!("resolve rootfs {}", rootfs.display()))?;
    if !rootfs.is_dir() {
        return Err(RuntimeError::InvalidSpec(format!(
            "rootfs {} is not a directory",
            rootfs.display()
        )));
    }
    let linux = spec.linux().as_ref();
    let root_propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(p) => propagation_flags(p)
            .ok_or_else(|| RuntimeError::InvalidSpec(format!("linux.rootfsPropagation: unknown mode {p:?}")))?,
    };

    let mut mounts = Vec::new();
    let mut dev_readonly = false;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
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
        if kind == MountKind::Filesystem && destination == Path::new("/dev") && flags.contains(MsFlags::MS_RDONLY) {
            // Devices are created after mounting /dev: remount ro afterwards.
            flags -= MsFlags::MS_RDONLY;
            dev_readonly = true;
        }
        mounts.push(MountPlan {
            destination,
            source,
            fstype: if is_bind { None } else { Some(typ) },
            kind,
            flags,
            propagation,
            data,
            attr_set,
            attr_clr,
        });
    }
    let setup_dev = !mounts
        .iter()
        .any(|m| matches!(m.kind, MountKind::Bind { .. }) && m.destination == Path::new("/dev"));

    let mut devices = default_devices;
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

    let paths = |v: Option<&Vec<String>>| v.into_iter().flatten().map(PathBuf::from).collect();
    let mut sysctl: Vec<(String, String)> = linux
        .and_then(|l| l.sysctl().clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    sysctl.sort();
    Ok(RootfsPlan {
        rootfs,
        root_propagation,
        mounts,
        setup_dev,
        bind_devices: user_ns,
        devices,
        dev_readonly,
        masked_paths: paths(linux.and_then(|l| l.masked_paths().as_ref())),
        readonly_paths: paths(linux.and_then(|l| l.readonly_paths().as_ref())),
        readonly_root: spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false),
        sysctl,
        cgroup_ns,
        cwd: cwd.to_path_buf(),
    })
}

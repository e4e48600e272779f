//! `/dev` population inside the new rootfs: device nodes (`mknod`, or bind
//! mounts from the host inside a user namespace), the standard symlinks and
//! the `ptmx` link to the container's own devpts instance.

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::fs::{fd_path, Root};
use super::plan::{DevicePlan, RootfsPlan};
use crate::error::{Context, RuntimeError};

/// The devices every container gets (runc's list): null, zero, full, tty,
/// random, urandom, all `crw-rw-rw- root root`.
pub fn default_devices() -> Vec<DevicePlan> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/tty", 5, 0),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
    ]
    .into_iter()
    .map(|(path, major, minor)| DevicePlan {
        path: PathBuf::from(path),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// Create every device of the plan (ptmx excluded: it becomes a symlink).
pub fn create_devices(root: &Root, plan: &RootfsPlan) -> Result<(), RuntimeError> {
    for dev in &plan.devices {
        if dev.path == Path::new("/dev/ptmx") {
            continue;
        }
        if plan.bind_devices {
            bind_device(root, dev)?;
        } else {
            mknod_device(root, dev)?;
        }
    }
    Ok(())
}

fn split(dev: &DevicePlan) -> Result<(&Path, &std::ffi::OsStr), RuntimeError> {
    match (dev.path.parent(), dev.path.file_name()) {
        (Some(p), Some(n)) => Ok((p, n)),
        _ => Err(RuntimeError::InvalidSpec(format!(
            "device path {} has no file name",
            dev.path.display()
        ))),
    }
}

fn mknod_device(root: &Root, dev: &DevicePlan) -> Result<(), RuntimeError> {
    let (parent, name) = split(dev)?;
    let dir = root.mkdir_all(parent, Mode::from_bits_truncate(0o755))?;
    let mode = Mode::from_bits_truncate(dev.mode);
    match mknodat(
        Some(dir.as_raw_fd()),
        name,
        dev.kind,
        mode,
        makedev(dev.major, dev.minor),
    ) {
        Ok(()) => {}
        // Already provided (e.g. by a bind mount of the spec): keep it.
        Err(Errno::EEXIST) => return Ok(()),
        Err(errno) => {
            return Err(RuntimeError::Sys {
                context: format!("mknod {} ({}:{})", root.display(&dev.path), dev.major, dev.minor),
                errno,
            })
        }
    }
    fchownat(
        Some(dir.as_raw_fd()),
        name,
        Some(Uid::from_raw(dev.uid)),
        Some(Gid::from_raw(dev.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .ctx(|| format!("chown {} to {}:{}", root.display(&dev.path), dev.uid, dev.gid))
}

fn bind_device(root: &Root, dev: &DevicePlan) -> Result<(), RuntimeError> {
    let target = root.create_file(&dev.path, Mode::empty())?;
    mount(
        Some(&dev.path),
        &fd_path(target.as_fd()),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx(|| format!("bind device {} to {}", dev.path.display(), root.display(&dev.path)))
}

/// `/dev/fd`, `/dev/std{in,out,err}`, `/dev/core` (when the host has
/// `/proc/kcore`) and `/dev/ptmx -> pts/ptmx`.
pub fn create_dev_symlinks(root: &Root) -> Result<(), RuntimeError> {
    let dev = root.mkdir_all(Path::new("/dev"), Mode::from_bits_truncate(0o755))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match symlinkat(target, Some(dev.as_raw_fd()), name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(errno) => {
                return Err(RuntimeError::Sys {
                    context: format!("symlink {} -> {target}", root.display(&Path::new("/dev").join(name))),
                    errno,
                })
            }
        }
    }
    match unlinkat(Some(dev.as_raw_fd()), "ptmx", UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(errno) => {
            return Err(RuntimeError::Sys {
                context: format!("remove {}", root.display(Path::new("/dev/ptmx"))),
                errno,
            })
        }
    }
    symlinkat("pts/ptmx", Some(dev.as_raw_fd()), "ptmx")
        .ctx(|| format!("symlink {} -> pts/ptmx", root.display(Path::new("/dev/ptmx"))))
}

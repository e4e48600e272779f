//! Mounting the container rootfs that containerd hands over in the Create
//! request, unmounting it again, and the mount-option vocabulary shared with
//! the spec's `mounts[]`.
//!
//! [`mount_rootfs`] follows containerd's `mount.All`: every mount is stacked
//! onto the same target in order, options are split into `MS_*` flags,
//! propagation changes and data ([`parse_mount_options`]), a read-only bind
//! mount is remounted to take effect, and overlay data longer than the kernel
//! accepts is shortened by making the lowerdirs relative to their common
//! parent (the process chdirs there for the mount call and back afterwards,
//! so this must not run concurrently with other cwd-relative code; the
//! monitor is single-threaded). If a mount fails, the mounts made so far are
//! unmounted before the error is returned.
//!
//! [`unmount_rootfs`] removes everything mounted at or below a directory,
//! deepest first, falling back to a lazy unmount for busy mounts.

pub(crate) mod mountinfo;
mod options;

#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
mod options_props;

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

pub use options::parse_mount_options;
pub(crate) use options::parse_mount_options_ext;

/// One entry of the Create request's `rootfs` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsMount {
    /// Filesystem type (`overlay`, `bind`, `tmpfs`, ...).
    pub fstype: String,
    /// Mount source (a device, a directory for bind mounts, or a label such
    /// as `overlay`).
    pub source: String,
    /// Options in containerd/fstab syntax.
    pub options: Vec<String>,
}

/// Errors from mounting or unmounting.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount type {fstype} source {mount_source} on {target}: {errno}")]
    Mount {
        fstype: String,
        mount_source: String,
        target: PathBuf,
        errno: Errno,
    },
    #[error("remount {target} read-only (type {fstype} source {mount_source}): {errno}")]
    Remount {
        fstype: String,
        mount_source: String,
        target: PathBuf,
        errno: Errno,
    },
    #[error("set propagation {flags:?} on {target}: {errno}")]
    Propagation {
        target: PathBuf,
        flags: MsFlags,
        errno: Errno,
    },
    #[error("set recursive mount attributes on {target}: {errno}")]
    SetAttr { target: PathBuf, errno: Errno },
    #[error(
        "mount type {fstype} source {mount_source} on {target}: options are {len} bytes, more than the {max} the kernel accepts, and {reason}"
    )]
    DataTooLong {
        fstype: String,
        mount_source: String,
        target: PathBuf,
        len: usize,
        max: usize,
        reason: String,
    },
    #[error("mount type {fstype} source {mount_source} on {target}: option {option:?} is not supported")]
    UnsupportedOption {
        fstype: String,
        mount_source: String,
        target: PathBuf,
        option: String,
    },
    #[error("change directory to {path} for the overlay mount: {errno}")]
    Chdir { path: PathBuf, errno: Errno },
    #[error("unmount {target}: {errno}")]
    Unmount { target: PathBuf, errno: Errno },
    #[error("unmount {target}: mounts remain after {attempts} passes")]
    UnmountStuck { target: PathBuf, attempts: usize },
    #[error("read /proc/self/mountinfo")]
    MountInfo(#[source] std::io::Error),
    #[error("resolve {path}")]
    Resolve {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Mounts `mounts` onto `target` in order. On failure every mount made by
/// this call is unmounted again (lazily if busy) before the error returns.
pub fn mount_rootfs(mounts: &[RootfsMount], target: &Path) -> Result<(), MountError> {
    let mut mounted = 0usize;
    for m in mounts {
        let res = mount_one(m, target, &mut mounted);
        if let Err(err) = res {
            for _ in 0..mounted {
                if let Err(e) = unmount_top(target) {
                    tracing::warn!(target = %target.display(), error = %crate::error::chain(&e), "rollback unmount failed");
                }
            }
            return Err(err);
        }
    }
    tracing::debug!(target = %target.display(), count = mounts.len(), "rootfs mounted");
    Ok(())
}

fn mount_one(m: &RootfsMount, target: &Path, mounted: &mut usize) -> Result<(), MountError> {
    let opts = parse_mount_options_ext(&m.options);
    if m.options.iter().any(|o| o == "loop") {
        return Err(MountError::UnsupportedOption {
            fstype: m.fstype.clone(),
            mount_source: m.source.clone(),
            target: target.to_path_buf(),
            option: "loop".to_string(),
        });
    }
    let mut flags = opts.flags;
    if m.fstype == "bind" {
        flags.insert(MsFlags::MS_BIND);
    }
    let mount_err = |errno| MountError::Mount {
        fstype: m.fstype.clone(),
        mount_source: m.source.clone(),
        target: target.to_path_buf(),
        errno,
    };

    let mut data = opts.data.clone();
    let mut chdir: Option<PathBuf> = None;
    let max = page_size().saturating_sub(512);
    if data.len() >= max {
        let too_long = |reason: &str, len: usize| MountError::DataTooLong {
            fstype: m.fstype.clone(),
            mount_source: m.source.clone(),
            target: target.to_path_buf(),
            len,
            max,
            reason: reason.to_string(),
        };
        if m.fstype != "overlay" {
            return Err(too_long("only overlay options can be shortened", data.len()));
        }
        let Some((dir, compact)) = compact_lowerdirs(&data) else {
            return Err(too_long(
                "the lowerdirs have no common parent below / to make them relative to",
                data.len(),
            ));
        };
        if compact.len() >= max {
            return Err(too_long(
                "they are still too long with lowerdirs relative to their common parent",
                compact.len(),
            ));
        }
        tracing::debug!(dir = %dir.display(), before = data.len(), after = compact.len(), "shortened overlay lowerdirs");
        data = compact;
        chdir = Some(dir);
    }

    if !flags.contains(MsFlags::MS_REMOUNT) || !data.is_empty() {
        let data_arg = (!data.is_empty()).then_some(data.as_str());
        let res = match &chdir {
            Some(dir) => with_cwd(dir, || {
                mount(
                    Some(m.source.as_str()),
                    target,
                    Some(m.fstype.as_str()),
                    flags,
                    data_arg,
                )
            })?,
            None => mount(
                Some(m.source.as_str()),
                target,
                Some(m.fstype.as_str()),
                flags,
                data_arg,
            ),
        };
        res.map_err(mount_err)?;
        *mounted += 1;
    }
    for p in &opts.propagation {
        mount(None::<&str>, target, None::<&str>, *p, None::<&str>).map_err(|errno| MountError::Propagation {
            target: target.to_path_buf(),
            flags: *p,
            errno,
        })?;
    }
    if flags.contains(MsFlags::MS_BIND | MsFlags::MS_RDONLY) {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(|errno| MountError::Remount {
            fstype: m.fstype.clone(),
            mount_source: m.source.clone(),
            target: target.to_path_buf(),
            errno,
        })?;
    }
    if opts.has_recursive_attrs() {
        set_recursive_attrs(target, opts.attr_set, opts.attr_clr)?;
    }
    Ok(())
}

/// Runs `f` with the working directory set to `dir`, restoring the previous
/// working directory afterwards.
fn with_cwd<T>(dir: &Path, f: impl FnOnce() -> T) -> Result<T, MountError> {
    let saved = File::open(".").map_err(|e| MountError::Chdir {
        path: PathBuf::from("."),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    nix::unistd::chdir(dir).map_err(|errno| MountError::Chdir {
        path: dir.to_path_buf(),
        errno,
    })?;
    let out = f();
    if let Err(errno) = nix::unistd::fchdir(saved.as_raw_fd()) {
        tracing::error!(%errno, "could not restore the working directory after an overlay mount");
        return Err(MountError::Chdir {
            path: PathBuf::from("<previous working directory>"),
            errno,
        });
    }
    Ok(out)
}

/// Shortens overlay data by rewriting `lowerdir=` relative to the deepest
/// directory that is a proper ancestor of every lowerdir. Returns that
/// directory and the new data, or `None` if there is nothing to gain.
pub(crate) fn compact_lowerdirs(data: &str) -> Option<(PathBuf, String)> {
    let opts: Vec<&str> = data.split(',').collect();
    let idx = opts.iter().position(|o| o.starts_with("lowerdir="))?;
    let dirs: Vec<&Path> = opts[idx]["lowerdir=".len()..].split(':').map(Path::new).collect();
    if dirs.len() < 2 || dirs.iter().any(|d| !d.is_absolute()) {
        return None;
    }
    let mut common: PathBuf = dirs[0].to_path_buf();
    for d in &dirs[1..] {
        while !d.starts_with(&common) {
            common = common.parent()?.to_path_buf();
        }
    }
    // Every lowerdir must be strictly below the common directory.
    if dirs.iter().any(|d| *d == common) {
        common = common.parent()?.to_path_buf();
    }
    if common == Path::new("/") {
        return None;
    }
    let rel: Vec<String> = dirs
        .iter()
        .map(|d| d.strip_prefix(&common).map(|r| r.display().to_string()))
        .collect::<Result<_, _>>()
        .ok()?;
    let mut new_opts: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    new_opts[idx] = format!("lowerdir={}", rel.join(":"));
    Some((common, new_opts.join(",")))
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let sz = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(sz).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// Applies `MOUNT_ATTR_*` changes to `target` and every mount below it with
/// mount_setattr(2) (Linux 5.12+). Used for `rro` and friends.
pub fn set_recursive_attrs(target: &Path, attr_set: u64, attr_clr: u64) -> Result<(), MountError> {
    let err = |errno| MountError::SetAttr {
        target: target.to_path_buf(),
        errno,
    };
    let c_target = CString::new(target.as_os_str().as_bytes()).map_err(|_| err(Errno::EINVAL))?;
    let mut attr = libc::mount_attr {
        attr_set,
        attr_clr,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: c_target is a valid NUL-terminated string and `attr` a valid
    // mount_attr whose size we pass; the kernel only reads both.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c_target.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &mut attr as *mut libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc != 0 {
        return Err(err(Errno::last()));
    }
    Ok(())
}

/// Unmounts the topmost mount at `target`, lazily if it is busy.
fn unmount_top(target: &Path) -> Result<(), MountError> {
    match umount2(target, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(Errno::EBUSY) => umount2(target, MntFlags::MNT_DETACH).map_err(|errno| MountError::Unmount {
            target: target.to_path_buf(),
            errno,
        }),
        Err(errno) => Err(MountError::Unmount {
            target: target.to_path_buf(),
            errno,
        }),
    }
}

/// Unmounts everything mounted at or below `target`, deepest and most
/// recent first; busy mounts are detached lazily. Succeeds if nothing is
/// mounted there or `target` does not exist.
pub fn unmount_rootfs(target: &Path) -> Result<(), MountError> {
    let target = match std::fs::canonicalize(target) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(MountError::Resolve {
                path: target.to_path_buf(),
                source,
            })
        }
    };
    const PASSES: usize = 8;
    for _ in 0..PASSES {
        let infos = mountinfo::read_self().map_err(MountError::MountInfo)?;
        let mut points: Vec<(usize, usize, PathBuf)> = infos
            .into_iter()
            .enumerate()
            .filter(|(_, mi)| mi.mount_point.starts_with(&target))
            .map(|(i, mi)| (mi.mount_point.components().count(), i, mi.mount_point))
            .collect();
        if points.is_empty() {
            return Ok(());
        }
        points.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        for (_, _, point) in points {
            match unmount_top(&point) {
                Ok(()) => tracing::debug!(mount = %point.display(), "unmounted"),
                // Already gone, e.g. detached together with a parent.
                Err(MountError::Unmount {
                    errno: Errno::EINVAL | Errno::ENOENT,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Err(MountError::UnmountStuck {
        target,
        attempts: PASSES,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_common_parent() {
        let data = "index=off,lowerdir=/var/lib/s/snapshots/3/fs:/var/lib/s/snapshots/2/fs:/var/lib/s/snapshots/1/fs,upperdir=/u";
        let (dir, new) = compact_lowerdirs(data).unwrap();
        assert_eq!(dir, Path::new("/var/lib/s/snapshots"));
        assert_eq!(new, "index=off,lowerdir=3/fs:2/fs:1/fs,upperdir=/u");
    }

    #[test]
    fn compaction_when_one_lowerdir_is_the_prefix() {
        let (dir, new) = compact_lowerdirs("lowerdir=/a/b:/a/b/c").unwrap();
        assert_eq!(dir, Path::new("/a"));
        assert_eq!(new, "lowerdir=b:b/c");
    }

    #[test]
    fn no_compaction_without_gain() {
        assert!(compact_lowerdirs("lowerdir=/a/x:/b/y").is_none());
        assert!(compact_lowerdirs("lowerdir=/a/x").is_none());
        assert!(compact_lowerdirs("upperdir=/a").is_none());
        assert!(compact_lowerdirs("lowerdir=rel/a:rel/b").is_none());
    }
}

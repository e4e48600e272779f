//! [`Phase::Rootfs`](super::Phase::Rootfs): building the container's
//! filesystem view and `pivot_root`ing into it.
//!
//! Order (runc's): propagation of `/` (rslave by default), the mount
//! holding the rootfs private, bind of the rootfs onto itself, spec mounts
//! in order, device nodes and `/dev` symlinks, `pivot_root`, a requested
//! `rootfsPropagation` applied again to the new `/`, then — inside the new
//! root — cwd creation, `/dev`
//! read-only remount, sysctls, read-only paths, masked paths and finally the
//! read-only remount of `/`.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, fchdir, pivot_root};

use super::devices::{create_dev_symlinks, create_devices};
use super::fs::{open_owned, Root};
use super::plan::RootfsPlan;
use super::spec_mounts::{mount_all, remount_bind};
use crate::error::{Context, RuntimeError};

fn none() -> Option<&'static str> {
    None
}

/// Run the whole rootfs phase. Precondition: the process is in the mount
/// namespace the container will use (a fresh one, normally). `placed` is
/// called before the first step that needs the process in its cgroup.
pub fn setup(plan: &RootfsPlan, placed: &dyn Fn() -> Result<(), RuntimeError>) -> Result<(), RuntimeError> {
    // Device nodes and directories get exactly the modes the spec asks for.
    let old_umask = umask(Mode::empty());
    let result = setup_inner(plan, placed);
    umask(old_umask);
    result
}

fn setup_inner(plan: &RootfsPlan, placed: &dyn Fn() -> Result<(), RuntimeError>) -> Result<(), RuntimeError> {
    mount(none(), "/", none(), plan.root_propagation, none())
        .ctx(|| format!("set propagation {:?} on /", plan.root_propagation))?;
    make_rootfs_mount_private(&plan.rootfs)?;
    mount(
        Some(&plan.rootfs),
        &plan.rootfs,
        none(),
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none(),
    )
    .ctx(|| format!("bind rootfs {} onto itself", plan.rootfs.display()))?;
    let root = Root::open(&plan.rootfs)?;
    mount_all(&root, plan, placed)?;
    if plan.setup_dev {
        create_devices(&root, plan)?;
        create_dev_symlinks(&root)?;
    }
    drop(root);
    pivot(&plan.rootfs)?;
    // runc applies a requested propagation again to the new `/` (the rootfs
    // bind, private so far): applied before the pivot it would only have
    // reached the host's mounts.
    if let Some(flags) = plan.root_propagation_after_pivot {
        mount(none(), "/", none(), flags, none()).ctx(|| format!("apply root propagation {flags:?} to the new /"))?;
    }
    finalize(plan)
}

/// Make the mount holding the rootfs private, as runc's
/// `rootfsParentMountPrivate` does: the rootfs itself when it is a mount
/// point (the overlay containerd mounts at `<bundle>/rootfs`), else the
/// nearest mount above it. pivot_root(2) refuses (`EINVAL`) a new root or a
/// parent of it that is shared, which every mount is after `rshared` on `/`;
/// the bind of the rootfs onto itself below inherits this mount's
/// propagation and becomes the new `/`.
fn make_rootfs_mount_private(rootfs: &Path) -> Result<(), RuntimeError> {
    let mut path = rootfs;
    loop {
        match mount(none(), path, none(), MsFlags::MS_PRIVATE, none()) {
            Ok(()) => return Ok(()),
            // EINVAL: not a mount point, try the directory above.
            Err(Errno::EINVAL) if path != Path::new("/") => path = path.parent().unwrap_or(Path::new("/")),
            Err(errno) => {
                return Err(RuntimeError::Sys {
                    context: format!("make the mount holding {} private", rootfs.display()),
                    errno,
                })
            }
        }
    }
}

/// `pivot_root(".", ".")` then lazily detach the old root stacked on top,
/// so no directory for the old root is needed inside the rootfs.
fn pivot(rootfs: &Path) -> Result<(), RuntimeError> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old_root = open_owned("/", flags, Mode::empty()).ctx(|| "open /".into())?;
    let new_root = open_owned(rootfs, flags, Mode::empty()).ctx(|| format!("open rootfs {}", rootfs.display()))?;
    use std::os::fd::AsRawFd;
    fchdir(new_root.as_raw_fd()).ctx(|| format!("chdir to rootfs {}", rootfs.display()))?;
    pivot_root(".", ".").ctx(|| format!("pivot_root into {}", rootfs.display()))?;
    fchdir(old_root.as_raw_fd()).ctx(|| "chdir to the old root".into())?;
    // Keep the unmount below from propagating to the host.
    mount(none(), ".", none(), MsFlags::MS_SLAVE | MsFlags::MS_REC, none())
        .ctx(|| "make the old root rslave".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach the old root".into())?;
    chdir("/").ctx(|| "chdir to the new root".into())
}

/// Steps done inside the new root, before it is possibly made read-only.
fn finalize(plan: &RootfsPlan) -> Result<(), RuntimeError> {
    // runc creates a missing cwd (as root, 0755) before anything is ro.
    if !plan.cwd.as_os_str().is_empty() && !plan.cwd.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&plan.cwd)
            .ctx(|| format!("create cwd {}", plan.cwd.display()))?;
    }
    if plan.dev_readonly {
        remount_bind(Path::new("/dev"), MsFlags::MS_RDONLY)?;
    }
    // runc's order: sysctls before /proc/sys becomes read-only.
    for (key, value) in &plan.sysctl {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value).ctx(|| format!("write sysctl {key}={value}"))?;
    }
    for p in &plan.readonly_paths {
        readonly_path(p)?;
    }
    for p in &plan.masked_paths {
        mask_path(p)?;
    }
    if plan.readonly_root {
        remount_bind(Path::new("/"), MsFlags::MS_RDONLY | MsFlags::MS_REC).map_err(|e| match e {
            RuntimeError::Sys { errno, .. } => RuntimeError::Sys {
                context: "remount / read-only (root.readonly)".into(),
                errno,
            },
            e => e,
        })?;
    }
    Ok(())
}

/// Hide `path`: `/dev/null` over files, an empty read-only tmpfs over
/// directories. Missing paths are skipped.
fn mask_path(path: &Path) -> Result<(), RuntimeError> {
    match mount(Some("/dev/null"), path, none(), MsFlags::MS_BIND, none()) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::ENOTDIR) => mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, none())
            .ctx(|| format!("mask directory {}", path.display())),
        Err(errno) => Err(RuntimeError::Sys {
            context: format!("mask {}", path.display()),
            errno,
        }),
    }
}

/// Bind `path` onto itself read-only. Missing paths are skipped.
fn readonly_path(path: &Path) -> Result<(), RuntimeError> {
    match mount(Some(path), path, none(), MsFlags::MS_BIND | MsFlags::MS_REC, none()) {
        // Keep nosuid/nodev/noexec of the mount underneath (procfs has all
        // three), as runc does: a plain read-only remount would clear them.
        Ok(()) => remount_bind(path, MsFlags::MS_RDONLY | super::spec_mounts::security_flags(path)),
        Err(Errno::ENOENT) => Ok(()),
        Err(errno) => Err(RuntimeError::Sys {
            context: format!("bind read-only path {}", path.display()),
            errno,
        }),
    }
}

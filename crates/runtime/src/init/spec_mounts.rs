//! Performing the spec's `mounts` inside the rootfs (before `pivot_root`),
//! and the read-only remount helper shared with the finalisation steps.

use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{statvfs, FsFlags};

use super::cgroupfs;
use super::fs::{fd_path, Root};
use super::plan::{MountKind, MountPlan, RootfsPlan};
use crate::error::{Context, RuntimeError};

/// Mount every spec mount in order.
/// `placed` is called before anything that needs the process to be in its
/// cgroup already (the cgroup mount).
pub fn mount_all(
    root: &Root,
    plan: &RootfsPlan,
    placed: &dyn Fn() -> Result<(), RuntimeError>,
) -> Result<(), RuntimeError> {
    for m in &plan.mounts {
        mount_one(root, plan, m, placed)?;
    }
    Ok(())
}

fn describe(m: &MountPlan) -> String {
    let src = m
        .source
        .as_ref()
        .map(|s| s.display().to_string())
        .unwrap_or_else(|| "none".into());
    let typ = m.fstype.as_deref().unwrap_or("bind");
    format!("mount {src} ({typ}) to {}", m.destination.display())
}

fn none() -> Option<&'static str> {
    None
}

fn mount_one(
    root: &Root,
    plan: &RootfsPlan,
    m: &MountPlan,
    placed: &dyn Fn() -> Result<(), RuntimeError>,
) -> Result<(), RuntimeError> {
    match m.kind {
        MountKind::Bind { recursive } => {
            let src = m.source.as_deref().unwrap_or(Path::new(""));
            let meta = std::fs::metadata(src).ctx(|| format!("{}: stat source", describe(m)))?;
            let target = if meta.is_dir() {
                root.mkdir_all(&m.destination, Mode::from_bits_truncate(0o755))?
            } else {
                root.create_file(&m.destination, Mode::from_bits_truncate(0o644))?
            };
            let mut flags = MsFlags::MS_BIND;
            if recursive {
                flags |= MsFlags::MS_REC;
            }
            mount(Some(src), &fd_path(target.as_fd()), none(), flags, none()).ctx(|| describe(m))?;
            if !m.flags.is_empty() {
                // Bind mounts ignore most flags: apply them with a remount
                // of the new mount (re-resolved: the old fd is underneath).
                let top = root.resolve(&m.destination)?;
                remount_bind(&fd_path(top.as_fd()), m.flags).map_err(|e| prefix(e, &describe(m)))?;
            }
        }
        MountKind::Cgroup => {
            placed()?;
            cgroupfs::mount_cgroup(root, plan, m)?
        }
        MountKind::Filesystem => {
            let target = root.mkdir_all(&m.destination, Mode::from_bits_truncate(0o755))?;
            let fstype = m.fstype.as_deref().unwrap_or("none");
            let source = m
                .source
                .as_ref()
                .map(|s| s.as_os_str().to_owned())
                .unwrap_or_else(|| fstype.into());
            let data = (!m.data.is_empty()).then_some(m.data.as_str());
            mount(
                Some(source.as_os_str()),
                &fd_path(target.as_fd()),
                Some(fstype),
                m.flags,
                data,
            )
            .ctx(|| describe(m))?;
        }
    }
    if m.attr_set != 0 || m.attr_clr != 0 {
        let top = root.resolve(&m.destination)?;
        crate::mounts::set_recursive_attrs(&fd_path(top.as_fd()), m.attr_set, m.attr_clr)?;
    }
    for p in &m.propagation {
        let top = root.resolve(&m.destination)?;
        mount(none(), &fd_path(top.as_fd()), none(), *p, none())
            .ctx(|| format!("set propagation {p:?} on {}", m.destination.display()))?;
    }
    Ok(())
}

fn prefix(e: RuntimeError, what: &str) -> RuntimeError {
    match e {
        RuntimeError::Sys { context, errno } => RuntimeError::Sys {
            context: format!("{what}: {context}"),
            errno,
        },
        other => other,
    }
}

/// Flags the kernel keeps locked on a mount (inherited from a more
/// privileged namespace) and that a remount must therefore repeat.
fn locked_flags(path: &Path) -> MsFlags {
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

/// `nosuid`, `nodev` and `noexec` as currently set on the mount at `path`.
pub fn security_flags(path: &Path) -> MsFlags {
    locked_flags(path) & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC)
}

/// `mount(MS_BIND | MS_REMOUNT | flags)` on the mount whose root is `path`,
/// retrying with the currently locked flags added on `EPERM`.
pub fn remount_bind(path: &Path, flags: MsFlags) -> Result<(), RuntimeError> {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    let what = || format!("remount {} ({flags:?})", path.display());
    match mount(none(), path, none(), base | flags, none()) {
        Err(Errno::EPERM) => {
            let locked = locked_flags(path);
            mount(none(), path, none(), base | flags | locked, none()).ctx(what)
        }
        r => r.ctx(what),
    }
}

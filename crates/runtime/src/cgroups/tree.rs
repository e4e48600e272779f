//! Directory-level helpers: controller enabling, cpuset initialisation,
//! recursive process listing, removal of a cgroup subtree, and priming the
//! kernel's migration grace period ([`prime_migration`]).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{fs, CgroupError, Result, REMOVE_TIMEOUT};

/// v2: enables every useful controller the directory offers for its
/// children. Failures (e.g. EBUSY because the directory has processes) are
/// logged; a limit that then needs the controller fails with a clear error.
pub(super) fn enable_controllers(dir: &Path) {
    const WANTED: &[&str] = &["cpu", "cpuset", "io", "memory", "pids", "hugetlb", "misc", "rdma"];
    let Ok(Some(available)) = fs::read_opt(&dir.join("cgroup.controllers")) else {
        return;
    };
    let control = dir.join("cgroup.subtree_control");
    let enabled = fs::read_opt(&control).ok().flatten().unwrap_or_default();
    for c in available.split_whitespace() {
        if WANTED.contains(&c) && !enabled.split_whitespace().any(|e| e == c) {
            if let Err(e) = fs::write(&control, &format!("+{c}")) {
                tracing::warn!(error = %crate::error::chain(&e), "cannot enable cgroup controller");
            }
        }
    }
}

/// v1 cpuset: a new cgroup starts with empty `cpuset.cpus`/`cpuset.mems`,
/// and tasks cannot join it until they are set; copy them from the parent
/// along the whole path.
pub(super) fn init_cpuset(mount: &Path, rel: &Path) -> Result<()> {
    let mut parent = mount.to_path_buf();
    for comp in rel.components() {
        let cur = parent.join(comp);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if fs::read(&cur.join(file))?.trim().is_empty() {
                let value = fs::read(&parent.join(file))?;
                fs::write(&cur.join(file), value.trim())?;
            }
        }
        parent = cur;
    }
    Ok(())
}

pub(super) fn collect_procs(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let file = dir.join("cgroup.procs");
    match fs::read_opt(&file)? {
        Some(text) => out.extend(fs::parse_pids(&file, &text)?),
        None => return Ok(()), // removed meanwhile
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_procs(&entry.path(), out)?;
        }
    }
    Ok(())
}

pub(super) fn remove_tree_retry(dir: &Path) -> Result<()> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(5);
    loop {
        match remove_tree(dir) {
            Ok(()) => return Ok(()),
            Err(CgroupError::Remove { ref source, .. })
                if source.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < REMOVE_TIMEOUT =>
            {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
}

/// rmdir of `dir` after its child cgroups, deepest first; missing is fine.
fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Remove {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&entry.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CgroupError::Remove {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Starts the kernel's cgroup-migration grace period now, off the critical
/// path, by "moving" the calling process into the cgroup it is already in.
///
/// Every write to `cgroup.procs` takes the global
/// `cgroup_threadgroup_rwsem` for writing; when no writer was active
/// recently that means waiting for an RCU grace period (≈12 ms on the
/// development machine). Writers that arrive while one is pending, or
/// shortly after, do not wait again. Calling this (on a thread that may
/// block) as soon as a Create arrives lets the container's own migration,
/// a few milliseconds later, share that grace period. Best effort: errors
/// are ignored.
pub fn prime_migration(own_pid: u32) {
    let Ok(text) = std::fs::read_to_string("/proc/self/cgroup") else {
        return;
    };
    // v2 line "0::/path", or the first v1 hierarchy with a controller.
    let target = text.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, ctrl, path) = (it.next()?, it.next()?, it.next()?);
        let base = if ctrl.is_empty() {
            PathBuf::from("/sys/fs/cgroup")
        } else if ctrl.starts_with("name=") {
            return None;
        } else {
            PathBuf::from("/sys/fs/cgroup").join(ctrl.split(',').next()?)
        };
        let dir = base.join(path.trim_start_matches('/'));
        dir.join("cgroup.procs").exists().then_some(dir.join("cgroup.procs"))
    });
    if let Some(procs) = target {
        let _ = std::fs::write(procs, own_pid.to_string());
    }
}

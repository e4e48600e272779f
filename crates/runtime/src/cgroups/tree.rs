//! Directory-level helpers: controller enabling, cpuset initialisation,
//! recursive process listing and removal of a cgroup subtree.

use std::io::ErrorKind;
use std::path::Path;
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
                tracing::warn!(error = %e, "cannot enable cgroup controller");
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

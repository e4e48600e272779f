//! Where the cgroup hierarchies are: one unified (v2) tree, or one v1
//! hierarchy per mounted controller set.

use std::path::{Path, PathBuf};

use super::CgroupError;
use crate::mounts::mountinfo::{self, MountInfo};

/// Controllers a v1 hierarchy can carry.
pub const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// Default mount point of the cgroup filesystem(s).
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// cgroup version in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// One mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Where the hierarchy is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: PathBuf,
    /// Controllers bound to it (`memory`, or `cpu`+`cpuacct`), or a single
    /// `name=<x>` entry for a named hierarchy such as `name=systemd`.
    pub controllers: Vec<String>,
}

/// The "controller" of the unified (cgroup2) hierarchy of a hybrid host,
/// listed with the v1 hierarchies: it carries no controller, but runc
/// places containers in it too, so `/proc/<pid>/cgroup`'s `0::` line shows
/// the container's path.
pub const HYBRID_UNIFIED: &str = "unified";

impl V1Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The unified hierarchy of a hybrid host (see [`HYBRID_UNIFIED`]).
    pub fn is_unified(&self) -> bool {
        self.has(HYBRID_UNIFIED)
    }
}

/// The set of hierarchies a container cgroup is created in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    V1(Vec<V1Hierarchy>),
    /// Unified hierarchy rooted at the given directory.
    V2(PathBuf),
}

impl Layout {
    /// Detects the host's layout: cgroup2 mounted at `/sys/fs/cgroup` means
    /// v2; otherwise the v1 hierarchies are read from `/proc/self/mountinfo`
    /// (a hybrid host, whose `unified` mount has no controllers, is treated
    /// as v1, like runc and containerd do).
    pub fn detect() -> Result<Layout, CgroupError> {
        let root = Path::new(CGROUP_ROOT);
        if let Ok(st) = nix::sys::statfs::statfs(root) {
            if st.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
                return Ok(Layout::V2(root.to_path_buf()));
            }
        }
        let infos = mountinfo::read_self().map_err(|source| CgroupError::Read {
            path: PathBuf::from("/proc/self/mountinfo"),
            source,
        })?;
        let hiers = v1_from_mountinfo(&infos);
        if hiers.is_empty() {
            return Err(CgroupError::NoHierarchy {
                root: root.to_path_buf(),
            });
        }
        Ok(Layout::V1(hiers))
    }

    /// Builds the layout from a directory instead of the host's mounts
    /// (tests, or a non-standard mount point): if `root/cgroup.controllers`
    /// exists, `root` is a unified hierarchy; otherwise every real
    /// subdirectory with a `cgroup.procs` and no `cgroup.controllers` is a v1
    /// hierarchy whose controllers are its comma-separated name
    /// (`cpu,cpuacct`), or `name=<dir>` if the name is not made of known
    /// controllers. Symlinks (`cpu -> cpu,cpuacct`) are skipped.
    pub fn from_root(root: &Path) -> Result<Layout, CgroupError> {
        if root.join("cgroup.controllers").is_file() {
            return Ok(Layout::V2(root.to_path_buf()));
        }
        let entries = std::fs::read_dir(root).map_err(|source| CgroupError::Read {
            path: root.to_path_buf(),
            source,
        })?;
        let mut hiers = Vec::new();
        for entry in entries.flatten() {
            let Ok(ft) = entry.file_type() else { continue };
            if !ft.is_dir() {
                continue;
            }
            let dir = entry.path();
            if dir.join("cgroup.controllers").exists() || !dir.join("cgroup.procs").exists() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let parts: Vec<&str> = name.split(',').collect();
            let controllers = if parts.iter().all(|p| V1_CONTROLLERS.contains(p)) {
                parts.iter().map(|s| s.to_string()).collect()
            } else {
                vec![format!("name={name}")]
            };
            hiers.push(V1Hierarchy {
                mount_point: dir,
                controllers,
            });
        }
        hiers.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
        if hiers.is_empty() {
            return Err(CgroupError::NoHierarchy {
                root: root.to_path_buf(),
            });
        }
        Ok(Layout::V1(hiers))
    }

    /// Mount point of every hierarchy (with a hybrid host's unified one).
    pub fn roots(&self) -> Vec<PathBuf> {
        match self {
            Layout::V1(h) => h.iter().map(|h| h.mount_point.clone()).collect(),
            Layout::V2(root) => vec![root.clone()],
        }
    }

    pub fn version(&self) -> CgroupVersion {
        match self {
            Layout::V1(_) => CgroupVersion::V1,
            Layout::V2(_) => CgroupVersion::V2,
        }
    }
}

/// Extracts the v1 hierarchies from mountinfo entries: `cgroup` mounts, with
/// controllers taken from the superblock options. A controller set mounted
/// twice is listed once (first mount wins). A hybrid host's `cgroup2` mount
/// is listed last, as [`HYBRID_UNIFIED`].
pub fn v1_from_mountinfo(infos: &[MountInfo]) -> Vec<V1Hierarchy> {
    let mut out = v1_controller_mounts(infos);
    if let Some(mi) = infos.iter().find(|m| m.fstype == "cgroup2") {
        if !out.is_empty() {
            out.push(V1Hierarchy {
                mount_point: mi.mount_point.clone(),
                controllers: vec![HYBRID_UNIFIED.to_string()],
            });
        }
    }
    out
}

fn v1_controller_mounts(infos: &[MountInfo]) -> Vec<V1Hierarchy> {
    let mut out: Vec<V1Hierarchy> = Vec::new();
    for mi in infos.iter().filter(|m| m.fstype == "cgroup") {
        let controllers: Vec<String> = mi
            .super_options
            .split(',')
            .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
            .map(str::to_string)
            .collect();
        if controllers.is_empty() || out.iter().any(|h| h.controllers == controllers) {
            continue;
        }
        out.push(V1Hierarchy {
            mount_point: mi.mount_point.clone(),
            controllers,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_hierarchies() {
        let text = b"\
31 27 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
99 27 0:32 / /mnt/again rw,relatime - cgroup cgroup rw,memory
";
        let h = v1_from_mountinfo(&mountinfo::parse(text));
        assert_eq!(h.len(), 4);
        assert!(h[3].is_unified());
        assert_eq!(h[3].mount_point, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(h[0].mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(h[0].controllers, vec!["cpu", "cpuacct"]);
        assert!(h[0].has("cpuacct"));
        assert_eq!(h[1].controllers, vec!["memory"]);
        assert_eq!(h[2].controllers, vec!["name=systemd"]);
    }

    fn mkhier(root: &Path, name: &str) {
        std::fs::create_dir_all(root.join(name)).unwrap();
        std::fs::write(root.join(name).join("cgroup.procs"), "").unwrap();
    }

    #[test]
    fn from_root_scans_v1_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        mkhier(r, "cpu,cpuacct");
        mkhier(r, "memory");
        mkhier(r, "systemd");
        std::os::unix::fs::symlink(r.join("cpu,cpuacct"), r.join("cpu")).unwrap();
        mkhier(r, "unified");
        std::fs::write(r.join("unified/cgroup.controllers"), "").unwrap();
        std::fs::create_dir(r.join("not-a-hierarchy")).unwrap();
        let Layout::V1(h) = Layout::from_root(r).unwrap() else {
            panic!("expected v1")
        };
        let names: Vec<Vec<String>> = h.iter().map(|h| h.controllers.clone()).collect();
        assert_eq!(
            names,
            vec![
                vec!["cpu".to_string(), "cpuacct".to_string()],
                vec!["memory".to_string()],
                vec!["name=systemd".to_string()]
            ]
        );
    }

    #[test]
    fn from_root_detects_v2_and_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Layout::from_root(dir.path()),
            Err(CgroupError::NoHierarchy { .. })
        ));
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu memory").unwrap();
        assert_eq!(
            Layout::from_root(dir.path()).unwrap(),
            Layout::V2(dir.path().to_path_buf())
        );
    }

    #[test]
    fn host_layout_is_detected() {
        // Whatever the host runs, detection must find something usable.
        let l = Layout::detect().unwrap();
        match l {
            Layout::V1(h) => assert!(!h.is_empty()),
            Layout::V2(root) => assert!(root.join("cgroup.controllers").exists()),
        }
    }
}

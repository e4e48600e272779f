//! Leak detectors: what a container can leave on the node (mounts, cgroups,
//! processes, FIFOs and sockets, per-task state dirs) looked up by id
//! ([`leftovers`], [`assert_no_leftovers`]), and node-wide counts for the
//! leak test ([`mount_count`], [`cgroup_count`], [`test_fifo_count`]).

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::env::{bundle_dir, env};
use crate::process::{processes_mentioning, zygote_daemons};

fn mountinfo_sources() -> Vec<(String, String)> {
    // Our own mount namespace plus those of the zygote daemon(s), if different.
    let mut sources = vec![("self".to_string(), "/proc/self/mountinfo".to_string())];
    let my_ns = fs::read_link("/proc/self/ns/mnt").ok();
    for (_, pid) in zygote_daemons() {
        let ns = fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
        if ns.is_some() && ns != my_ns {
            sources.push((format!("zygote daemon {pid}"), format!("/proc/{pid}/mountinfo")));
        }
    }
    sources
}

/// Mounts (mountinfo lines) mentioning `id`.
pub fn mounts_mentioning(id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (who, path) in mountinfo_sources() {
        if let Ok(text) = fs::read_to_string(&path) {
            out.extend(text.lines().filter(|l| l.contains(id)).map(|l| format!("[{who}] {l}")));
        }
    }
    out
}

/// Number of mounts that belong to the test setup: in our mount namespace
/// those under the private containerd's dir, the zygote state dir or
/// /run/containerd (other containerds on a dev machine are not counted), plus
/// all mounts of zygote daemons living in another mount namespace.
pub fn mount_count() -> usize {
    let e = env();
    let needles = [
        e.containerd_dir.to_string_lossy().into_owned(),
        e.state_dir.to_string_lossy().into_owned(),
        "/run/containerd".to_string(),
    ];
    let mut n = 0;
    for (who, path) in mountinfo_sources() {
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        n += if who == "self" {
            text.lines()
                .filter(|l| needles.iter().any(|x| l.contains(x.as_str())))
                .count()
        } else {
            text.lines().count()
        };
    }
    n
}

/// Number of FIFOs in ctr's fifo dir (`/run/containerd/fifo/*/`) named after
/// test containers (`zt-...`).
pub fn test_fifo_count() -> usize {
    let mut out = Vec::new();
    special_files(Path::new("/run/containerd/fifo"), "zt-", 3, &mut out);
    out.len()
}

fn walk_dirs(dir: &Path, depth: usize, f: &mut dyn FnMut(&Path)) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for entry in rd.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() && !ft.is_symlink() {
            let p = entry.path();
            f(&p);
            if depth > 1 {
                walk_dirs(&p, depth - 1, f);
            }
        }
    }
}

/// Whether the node runs cgroup v2 only (the unified hierarchy mounted at
/// `/sys/fs/cgroup`), as in hack/vm's VM; a hybrid or v1 node otherwise.
pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Roots of the cgroup hierarchies (v1 controllers and/or the v2 tree).
pub fn cgroup_roots() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if cgroup_v2() {
        return vec![base.to_path_buf()];
    }
    let mut v: Vec<PathBuf> = fs::read_dir(base)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir() && !p.is_symlink())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// cgroup directories (up to depth 6 below each hierarchy root) whose name contains `id`.
pub fn cgroups_named(id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for root in cgroup_roots() {
        walk_dirs(&root, 6, &mut |p| {
            if p.file_name().is_some_and(|n| n.to_string_lossy().contains(id)) {
                out.push(p.to_string_lossy().into_owned());
            }
        });
    }
    out
}

/// Number of cgroup directories below `/<namespace>` in every hierarchy
/// (containers started by ctr live in `/<namespace>/<id>`).
pub fn cgroup_count() -> usize {
    let ns = &env().namespace;
    let mut n = 0;
    for root in cgroup_roots() {
        let d = root.join(ns);
        if d.is_dir() {
            n += 1;
            // Warm zygotes' pool cgroups come and go with the pools (the
            // pool tests account for them).
            walk_dirs(&d, 8, &mut |p| {
                if !p
                    .file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with("zygote@"))
                {
                    n += 1
                }
            });
        }
    }
    n
}

/// The warm pools' cgroups: directories named `zygote@...` (whatever the
/// build puts after the `@`) below the test namespace's cgroup parents,
/// `/<namespace>` and `/<namespace>-<anything>` (odd parents some tests
/// use), up to 4 levels down, in every hierarchy (a hybrid host's
/// `unified` one included). Only this test run's containerd creates tasks
/// under these parents, so every one found belongs to its zygote daemon.
pub fn pool_cgroups() -> Vec<PathBuf> {
    let ns = &env().namespace;
    let odd = format!("{ns}-");
    let mut out = Vec::new();
    for root in cgroup_roots() {
        let Ok(rd) = fs::read_dir(&root) else { continue };
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir() && !t.is_symlink());
            if !is_dir || (name != *ns && !name.starts_with(&odd)) {
                continue;
            }
            walk_dirs(&entry.path(), 4, &mut |p| {
                if p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("zygote@"))
                {
                    out.push(p.to_path_buf());
                }
            });
        }
    }
    out.sort();
    out
}

/// FIFOs and sockets whose name contains `needle` under `dir` (up to `depth`).
fn special_files(dir: &Path, needle: &str, depth: usize, out: &mut Vec<String>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for entry in rd.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        let p = entry.path();
        let name_hit = entry.file_name().to_string_lossy().contains(needle);
        if name_hit && (ft.is_fifo() || ft.is_socket()) {
            out.push(format!(
                "{} ({})",
                p.display(),
                if ft.is_fifo() { "fifo" } else { "socket" }
            ));
        } else if ft.is_dir() && !ft.is_symlink() && depth > 1 {
            special_files(&p, needle, depth - 1, out);
        }
    }
}

/// FIFOs / sockets named after `id` in ctr's fifo dir, containerd's state dir
/// and the zygote state dir.
pub fn fifos_named(id: &str) -> Vec<String> {
    let e = env();
    let mut out = Vec::new();
    special_files(Path::new("/run/containerd/fifo"), id, 3, &mut out);
    special_files(&e.containerd_dir.join("state"), id, 8, &mut out);
    special_files(&e.state_dir, id, 6, &mut out);
    out
}

/// Per-task directories the runtimes keep: zygote's `$ZYGOTE_STATE_DIR/*/tasks/<id>`,
/// containerd's bundle and runc's state dir.
pub fn state_dirs_for(id: &str) -> Vec<String> {
    let e = env();
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(&e.state_dir) {
        for entry in rd.flatten() {
            let p = entry.path().join("tasks").join(id);
            if p.exists() {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    for p in [
        bundle_dir(id),
        PathBuf::from("/run/containerd/runc").join(&e.namespace).join(id),
    ] {
        if p.exists() {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out
}

/// Everything left on the node for a container id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Leftovers {
    pub mounts: Vec<String>,
    pub cgroups: Vec<String>,
    pub processes: Vec<String>,
    pub fifos_and_sockets: Vec<String>,
    pub state_dirs: Vec<String>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
            && self.cgroups.is_empty()
            && self.processes.is_empty()
            && self.fifos_and_sockets.is_empty()
            && self.state_dirs.is_empty()
    }
}

pub fn leftovers(id: &str) -> Leftovers {
    Leftovers {
        mounts: mounts_mentioning(id),
        cgroups: cgroups_named(id),
        processes: processes_mentioning(id),
        fifos_and_sockets: fifos_named(id),
        state_dirs: state_dirs_for(id),
    }
}

/// Polls for up to 10 s (teardown is partly asynchronous), then panics with
/// whatever is left for `id`.
pub fn assert_no_leftovers(id: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let l = leftovers(id);
        if l.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("leftovers for {id}: {l:#?}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

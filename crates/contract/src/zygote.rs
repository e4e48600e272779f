//! What the daemon's pool asks of one zygote (`__zygote <json>`), and the
//! names of the pool cgroups zygotes wait in.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::layout::DaemonDir;

/// The argument of `containerd-shim-zygote-v1 __zygote`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZygoteConfig {
    /// Profile name (for logs).
    pub profile: String,
    /// `CLONE_NEW*` bits created in advance.
    pub clone_flags: i32,
    /// Cgroup parent to pre-place the child under (e.g. `/default`).
    pub cgroup_parent: Option<PathBuf>,
    /// The owning daemon's directory (shows in `ps`, tells nodes' zygotes
    /// of different containerds apart, names the pool cgroups).
    pub daemon_dir: DaemonDir,
    /// Build the Wasm engine in the child before a task comes (profiles
    /// with `mode = "wasm"`).
    #[serde(default)]
    pub wasm: bool,
    /// Compiled artifacts to load in advance (the profile's hot modules).
    #[serde(default)]
    pub hot: Vec<PathBuf>,
    /// What the zygote is made from; it answers a [`crate::proto::Request::Ping`]
    /// with it, and the pool retires it once the loaded config differs.
    #[serde(default)]
    pub generation: Generation,
    /// The NUMA node to be born on (the profile's `pool.placement`; `None`:
    /// nothing set). The zygote narrows its CPU affinity to `cpus` and
    /// prefers `node`'s memory before it clones its child.
    #[serde(default)]
    pub numa: Option<NumaPlacement>,
}

/// A NUMA node and its CPUs, as the daemon read them from sysfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumaPlacement {
    pub node: u32,
    pub cpus: Vec<u32>,
}

/// Fingerprints of what a zygote was made from, taken from its profile as
/// loaded when it was born. A zygote whose generation differs from its
/// profile's current one is stale: the pool retires it before any claim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Generation {
    /// The profile settings that shape a zygote at birth (mode, the
    /// namespaces created in advance).
    pub config: u64,
    /// The profile's security settings (its Landlock policy as written and
    /// as negotiated with the kernel, its seccomp filter and mode).
    pub security: u64,
}

/// How a waiting zygote's child is, as the zygote sees it (its answer to a
/// ping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildState {
    /// Alive and waiting for a task.
    Waiting,
    /// Alive but stopped (SIGSTOP, a tracer): it would not serve a task.
    Stopped,
    /// Exited (the zygote exits right after answering).
    Gone,
}

/// Names of pool cgroups start with this; tasks may not use such names.
pub const POOL_CGROUP_PREFIX: &str = "zygote@";

/// The pool cgroup of zygote child `pid` of the daemon in `daemon_dir`:
/// `zygote@<daemon dir name>-<pid>`, so each daemon of a node (one per
/// containerd) finds and sweeps only its own.
pub fn pool_cgroup_name(daemon_dir: &DaemonDir, pid: i32) -> String {
    format!("{}{pid}", pool_cgroup_stem(daemon_dir))
}

/// The common start of every pool cgroup name of the daemon in `daemon_dir`.
pub fn pool_cgroup_stem(daemon_dir: &DaemonDir) -> String {
    format!("{POOL_CGROUP_PREFIX}{}-", daemon_dir.tag())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_cgroup_names_carry_their_daemon() {
        let d = DaemonDir::at("/run/zygote/0123456789abcdef");
        assert_eq!(pool_cgroup_name(&d, 42), "zygote@0123456789abcdef-42");
        assert!(pool_cgroup_name(&d, 42).starts_with(&pool_cgroup_stem(&d)));
    }
}

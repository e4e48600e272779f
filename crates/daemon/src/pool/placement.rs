//! NUMA placement of zygotes (a profile's `pool.placement`): the machine's
//! nodes as sysfs shows them ([`Topology`]), a profile's policy resolved
//! against them once per load or reload ([`resolve`] into a [`Plan`]), and
//! the node each birth gets ([`Plan::choose`]). The zygote applies it
//! (`crates/monitor/src/numa.rs`): CPU affinity narrowed to the node's CPUs
//! and `MPOL_PREFERRED` on the node before it clones its child; at claim
//! the affinity is widened back, the memory preference stays.
//!
//! "least-pressure" means free memory: the kernel has no per-node PSI, so
//! the node with the highest `MemFree / MemTotal`
//! (`nodeN/meminfo`) wins, ties by fewest idle zygotes of the profile.
//!
//! The sysfs root is `/sys`, or `$ZYGOTE_SYSFS_ROOT` (tests give the daemon
//! a fixture tree with more nodes than the machine has).

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use tracing::{debug, error, warn};
use zygote_config::Placement;
use zygote_contract::zygote::NumaPlacement;

/// Overrides the sysfs root the topology is read from.
pub(crate) const SYSFS_ROOT_ENV: &str = "ZYGOTE_SYSFS_ROOT";

/// Where the daemon reads the topology: `$ZYGOTE_SYSFS_ROOT` or `/sys`.
pub(crate) fn sysfs_root() -> PathBuf {
    std::env::var_os(SYSFS_ROOT_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/sys"), PathBuf::from)
}

/// The topology could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TopologyError {
    #[error("read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a CPU/node list: {text:?}", .path.display())]
    List { path: PathBuf, text: String },
}

/// The online NUMA nodes and each one's CPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Topology {
    root: PathBuf,
    pub(crate) nodes: BTreeMap<u32, Vec<u32>>,
}

impl Topology {
    /// `<sysfs>/devices/system/node/online` and each `nodeN/cpulist`. A
    /// kernel without NUMA has no `online` file: one node, CPUs unknown.
    pub(crate) fn read(sysfs: &Path) -> Result<Topology, TopologyError> {
        let dir = sysfs.join("devices/system/node");
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path)
                .map_err(|source| TopologyError::Read {
                    path: path.clone(),
                    source,
                })
                .and_then(|text| parse_list(&text).ok_or(TopologyError::List { path, text }))
        };
        let online = match read(dir.join("online")) {
            Err(TopologyError::Read { source, .. }) if source.kind() == ErrorKind::NotFound => vec![0],
            other => other?,
        };
        let mut nodes = BTreeMap::new();
        for node in online {
            let cpus = match read(dir.join(format!("node{node}/cpulist"))) {
                Err(TopologyError::Read { source, .. }) if source.kind() == ErrorKind::NotFound => Vec::new(),
                other => other?,
            };
            nodes.insert(node, cpus);
        }
        Ok(Topology { root: dir, nodes })
    }

    /// `(MemFree, MemTotal)` of `node` in kB, from `nodeN/meminfo`.
    fn memory(&self, node: u32) -> Option<(u64, u64)> {
        let text = std::fs::read_to_string(self.root.join(format!("node{node}/meminfo"))).ok()?;
        // "Node 0 MemFree:   123456 kB"
        let field = |name: &str| {
            text.lines().find_map(|l| {
                let mut words = l.split_whitespace().skip(2);
                if words.next()? != name {
                    return None;
                }
                words.next()?.parse::<u64>().ok()
            })
        };
        Some((field("MemFree:")?, field("MemTotal:")?))
    }
}

/// A kernel list such as `0-3,8-11` (cpulist, node online): the ids in
/// order; `None` when malformed. An empty line is an empty list.
pub(crate) fn parse_list(text: &str) -> Option<Vec<u32>> {
    let text = text.trim();
    let mut out = Vec::new();
    if text.is_empty() {
        return Some(out);
    }
    for part in text.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let a = part.parse::<u32>().ok()?;
                (a, a)
            }
        };
        if b < a || b - a > 65_535 {
            return None;
        }
        out.extend(a..=b);
    }
    Some(out)
}

/// A profile's placement as this machine allows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Plan {
    /// Nothing set.
    #[default]
    None,
    /// Fewest idle zygotes, round-robin among equals, over these nodes.
    Spread(Topology),
    /// Most free memory relative to size, ties by fewest idle zygotes.
    LeastPressure(Topology),
}

/// Resolves `profile`'s `placement` against `topology` (read once per load
/// or reload, so each outcome is logged once): a single node, or a node
/// list naming a node that is not here or has no CPU, places nothing.
pub(crate) fn resolve(profile: &str, placement: &Placement, topology: &Result<Topology, TopologyError>) -> Plan {
    if *placement == Placement::None {
        return Plan::None;
    }
    let topology = match topology {
        Ok(t) => t,
        Err(e) => {
            warn!(profile, error = %crate::error::chain(e), "cannot read the NUMA topology: pool.placement ignored");
            return Plan::None;
        }
    };
    let with_cpus: BTreeMap<u32, Vec<u32>> = topology
        .nodes
        .iter()
        .filter(|(_, cpus)| !cpus.is_empty())
        .map(|(n, c)| (*n, c.clone()))
        .collect();
    let nodes = match placement {
        Placement::Nodes(wanted) => {
            let missing: Vec<u32> = wanted.iter().copied().filter(|n| !with_cpus.contains_key(n)).collect();
            if !missing.is_empty() {
                error!(
                    profile,
                    ?missing,
                    online = ?topology.nodes.keys().collect::<Vec<_>>(),
                    "pool.placement names NUMA nodes this machine lacks (or without CPUs): the profile places nothing"
                );
                return Plan::None;
            }
            with_cpus.into_iter().filter(|(n, _)| wanted.contains(n)).collect()
        }
        _ => with_cpus,
    };
    if topology.nodes.len() < 2 {
        debug!(profile, placement = %placement.name(), "single NUMA node: no placement");
        return Plan::None;
    }
    let topology = Topology {
        root: topology.root.clone(),
        nodes,
    };
    match placement {
        Placement::LeastPressure => Plan::LeastPressure(topology),
        _ => Plan::Spread(topology),
    }
}

impl Plan {
    /// The node for the next birth. `idle[n]` counts the pool's zygotes on
    /// node `n` (those waiting and those chosen earlier in this round);
    /// `cursor` turns the round-robin among equals and moves past the pick.
    pub(crate) fn choose(&self, idle: &BTreeMap<u32, usize>, cursor: &mut usize) -> Option<NumaPlacement> {
        let (topology, least_pressure) = match self {
            Plan::None => return None,
            Plan::Spread(t) => (t, false),
            Plan::LeastPressure(t) => (t, true),
        };
        let nodes: Vec<(&u32, &Vec<u32>)> = topology.nodes.iter().collect();
        let count = |n: u32| idle.get(&n).copied().unwrap_or(0);
        // Position after the cursor: equals are taken in turn.
        let turn = |i: usize| (i + nodes.len() - *cursor % nodes.len()) % nodes.len();
        let free = |n: u32| {
            topology
                .memory(n)
                .filter(|(_, total)| *total > 0)
                .map_or(-1.0, |(free, total)| free as f64 / total as f64)
        };
        let (i, (node, cpus)) = if least_pressure {
            let scored: Vec<f64> = nodes.iter().map(|(n, _)| free(**n)).collect();
            nodes.iter().enumerate().max_by(|(a, (na, _)), (b, (nb, _))| {
                scored[*a]
                    .total_cmp(&scored[*b])
                    .then(count(**nb).cmp(&count(**na)))
                    .then(turn(*b).cmp(&turn(*a)))
            })?
        } else {
            nodes
                .iter()
                .enumerate()
                .min_by_key(|(i, (n, _))| (count(**n), turn(*i)))?
        };
        *cursor = i + 1;
        Some(NumaPlacement {
            node: **node,
            cpus: cpus.to_vec(),
        })
    }
}

#[cfg(test)]
#[path = "placement_tests.rs"]
mod tests;

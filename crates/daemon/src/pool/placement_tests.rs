//! Placement on fixture sysfs trees (2 and 4 nodes, in a tempdir): the
//! topology as read, each policy's resolution and its choices.

use std::collections::BTreeMap;
use std::path::Path;

use zygote_config::Placement;

use super::{parse_list, resolve, Plan, Topology};

/// A sysfs tree with `cpulists[n]` as node n's CPUs and `free[n]` percent
/// of its 1 GiB free.
fn sysfs(root: &Path, online: &str, cpulists: &[&str], free: &[u64]) {
    let dir = root.join("devices/system/node");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("online"), format!("{online}\n")).unwrap();
    for (n, cpus) in cpulists.iter().enumerate() {
        let node = dir.join(format!("node{n}"));
        std::fs::create_dir_all(&node).unwrap();
        std::fs::write(node.join("cpulist"), format!("{cpus}\n")).unwrap();
        let total = 1_048_576u64;
        let f = total * free.get(n).copied().unwrap_or(50) / 100;
        std::fs::write(
            node.join("meminfo"),
            format!("Node {n} MemTotal:       {total} kB\nNode {n} MemFree:        {f} kB\nNode {n} MemUsed:        {} kB\n", total - f),
        )
        .unwrap();
    }
}

fn two_nodes(free: &[u64]) -> (tempfile::TempDir, Topology) {
    let t = tempfile::tempdir().unwrap();
    sysfs(t.path(), "0-1", &["0-3,8-11", "4-7,12-15"], free);
    let topo = Topology::read(t.path()).unwrap();
    (t, topo)
}

fn four_nodes(free: &[u64]) -> (tempfile::TempDir, Topology) {
    let t = tempfile::tempdir().unwrap();
    sysfs(t.path(), "0-3", &["0-1", "2-3", "4-5", "6-7"], free);
    let topo = Topology::read(t.path()).unwrap();
    (t, topo)
}

/// `n` choices in a row, each one counted as a zygote on its node.
fn picks(plan: &Plan, idle: &mut BTreeMap<u32, usize>, n: usize) -> Vec<u32> {
    let mut cursor = 0;
    (0..n)
        .map(|_| {
            let p = plan.choose(idle, &mut cursor).expect("a node");
            *idle.entry(p.node).or_default() += 1;
            p.node
        })
        .collect()
}

#[test]
fn cpulists_parse_as_the_kernel_writes_them() {
    assert_eq!(parse_list("0-3,8-11\n").unwrap(), [0, 1, 2, 3, 8, 9, 10, 11]);
    assert_eq!(parse_list("0").unwrap(), [0]);
    assert_eq!(parse_list("1,3,5-6").unwrap(), [1, 3, 5, 6]);
    assert_eq!(parse_list("\n").unwrap(), Vec::<u32>::new());
    for bad in ["0-", "a", "3-1", "0,,1", "-1", "0-4294967295"] {
        assert_eq!(parse_list(bad), None, "{bad}");
    }
}

#[test]
fn topologies_of_two_and_four_nodes() {
    let (_t, two) = two_nodes(&[]);
    assert_eq!(
        two.nodes,
        BTreeMap::from([
            (0, vec![0, 1, 2, 3, 8, 9, 10, 11]),
            (1, vec![4, 5, 6, 7, 12, 13, 14, 15])
        ])
    );
    let (_t, four) = four_nodes(&[]);
    assert_eq!(four.nodes.keys().copied().collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(four.nodes[&2], [4, 5]);
    assert_eq!(four.memory(1), Some((524_288, 1_048_576)));
    // A kernel without NUMA (no node directory): one node.
    let t = tempfile::tempdir().unwrap();
    assert_eq!(Topology::read(t.path()).unwrap().nodes, BTreeMap::from([(0, vec![])]));
    // A malformed file is an error naming it.
    sysfs(t.path(), "0-x", &[], &[]);
    let e = Topology::read(t.path()).unwrap_err().to_string();
    assert!(
        e.ends_with("devices/system/node/online: not a CPU/node list: \"0-x\\n\""),
        "{e}"
    );
}

#[test]
fn spread_takes_the_emptiest_node_in_turn() {
    let (_t, topo) = four_nodes(&[]);
    let plan = resolve("p", &Placement::Spread, &Ok(topo));
    assert!(matches!(plan, Plan::Spread(_)));
    let mut idle = BTreeMap::new();
    assert_eq!(picks(&plan, &mut idle, 6), [0, 1, 2, 3, 0, 1]);
    // Zygotes claimed from nodes 0 and 3: those are refilled first.
    let mut idle = BTreeMap::from([(0, 0), (1, 2), (2, 2), (3, 1)]);
    assert_eq!(picks(&plan, &mut idle, 3), [0, 3, 0]);
    // The choice carries the node's CPUs.
    let mut cursor = 0;
    let p = plan
        .choose(&BTreeMap::from([(0, 1), (1, 1), (2, 0), (3, 1)]), &mut cursor)
        .unwrap();
    assert_eq!((p.node, p.cpus), (2, vec![4, 5]));
    assert_eq!(cursor, 3);
}

#[test]
fn least_pressure_takes_the_freest_node_then_the_emptiest() {
    let (_t, topo) = four_nodes(&[10, 60, 30, 60]);
    let plan = resolve("p", &Placement::LeastPressure, &Ok(topo));
    assert!(matches!(plan, Plan::LeastPressure(_)));
    // Nodes 1 and 3 are equally free: fewest zygotes first, then in turn.
    let mut idle = BTreeMap::from([(1, 1)]);
    assert_eq!(picks(&plan, &mut idle, 3), [3, 1, 3]);
    let (_t, topo) = two_nodes(&[20, 80]);
    let plan = resolve("p", &Placement::LeastPressure, &Ok(topo));
    assert_eq!(picks(&plan, &mut BTreeMap::new(), 2), [1, 1]);
}

#[test]
fn a_node_list_spreads_over_its_nodes() {
    let (_t, topo) = four_nodes(&[]);
    let plan = resolve("p", &Placement::Nodes(vec![3, 1]), &Ok(topo));
    assert_eq!(picks(&plan, &mut BTreeMap::new(), 4), [1, 3, 1, 3]);
}

#[test]
fn what_places_nothing() {
    let (_t, two) = two_nodes(&[]);
    let ok = || Ok(two.clone());
    assert_eq!(resolve("p", &Placement::None, &ok()), Plan::None);
    // A listed node the machine lacks: the profile falls back to none.
    assert_eq!(resolve("p", &Placement::Nodes(vec![0, 2]), &ok()), Plan::None);
    // One node: every policy resolves to nothing.
    let t = tempfile::tempdir().unwrap();
    sysfs(t.path(), "0", &["0-1"], &[]);
    let one = Topology::read(t.path()).unwrap();
    for p in [Placement::Spread, Placement::LeastPressure, Placement::Nodes(vec![0])] {
        assert_eq!(resolve("p", &p, &Ok(one.clone())), Plan::None, "{p:?}");
    }
    // An unreadable topology.
    let bad = tempfile::tempdir().unwrap();
    sysfs(bad.path(), "0-1", &["0", "zero"], &[]);
    let e = Topology::read(bad.path());
    assert!(e.is_err());
    assert_eq!(resolve("p", &Placement::Spread, &e), Plan::None);
    assert_eq!(Plan::None.choose(&BTreeMap::new(), &mut 0), None);
}

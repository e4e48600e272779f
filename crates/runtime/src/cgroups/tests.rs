//! Fixture tests: a temporary directory stands in for the cgroup root, with
//! the control files the kernel would provide pre-created.

use std::fs as stdfs;
use std::path::Path;

use oci_spec::runtime::LinuxResources;
use serde_json::json;

use super::resources::{blkio_to_io_weight, shares_to_weight, v2_swap_value};
use super::*;

fn put(path: &Path, content: &str) {
    stdfs::create_dir_all(path.parent().unwrap()).unwrap();
    stdfs::write(path, content).unwrap();
}

fn get(path: &Path) -> String {
    stdfs::read_to_string(path).unwrap()
}

fn resources(v: serde_json::Value) -> LinuxResources {
    serde_json::from_value(v).expect("resources fixture deserialises")
}

/// A v1 root with the usual hierarchies and a pre-created leaf `rel`.
fn v1_fixture(root: &Path, rel: &str) {
    for h in [
        "memory",
        "cpu,cpuacct",
        "cpuset",
        "pids",
        "freezer",
        "blkio",
        "devices",
        "systemd",
    ] {
        put(&root.join(h).join("cgroup.procs"), "");
        put(&root.join(h).join(rel).join("cgroup.procs"), "");
    }
    let leaf = |h: &str, f: &str| root.join(h).join(rel).join(f);
    for f in [
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
        "memory.soft_limit_in_bytes",
        "memory.swappiness",
    ] {
        put(&leaf("memory", f), "9223372036854771712\n");
    }
    for f in ["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"] {
        put(&leaf("cpu,cpuacct", f), "");
    }
    put(&root.join("cpuset/cpuset.cpus"), "0-3\n");
    put(&root.join("cpuset/cpuset.mems"), "0\n");
    // Intermediate directories start empty, like a fresh kernel cgroup.
    let mut cur = root.join("cpuset");
    for comp in Path::new(rel).components() {
        cur.push(comp);
        put(&cur.join("cpuset.cpus"), "\n");
        put(&cur.join("cpuset.mems"), "\n");
    }
    put(&leaf("pids", "pids.max"), "max\n");
    put(&leaf("blkio", "blkio.weight"), "500\n");
    put(&leaf("devices", "devices.allow"), "");
    put(&leaf("devices", "devices.deny"), "");
    put(&leaf("freezer", "freezer.state"), "THAWED\n");
}

#[test]
fn v1_dirs_and_controller_dirs() {
    let dir = tempfile::tempdir().unwrap();
    v1_fixture(dir.path(), "default/abc");
    let cg = Cgroup::with_root(dir.path(), "/default/abc", "abc").unwrap();
    assert_eq!(cg.version(), CgroupVersion::V1);
    assert_eq!(cg.path(), Path::new("/default/abc"));
    assert_eq!(cg.dirs().len(), 8);
    assert!(cg.dirs().contains(&dir.path().join("systemd/default/abc")));
    assert_eq!(
        cg.controller_dir("cpuacct").unwrap(),
        dir.path().join("cpu,cpuacct/default/abc")
    );
    let err = cg.controller_dir("hugetlb").unwrap_err().to_string();
    assert_eq!(err, "controller hugetlb is not available for cgroup /default/abc");
}

#[test]
fn v1_create_applies_limits() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    v1_fixture(r, "default/abc");
    let cg = Cgroup::with_root(r, "/default/abc", "abc").unwrap();
    let res = resources(json!({
        "memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432, "swappiness": 10, "kernel": 1},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "1", "mems": "0"},
        "pids": {"limit": 32},
        "blockIO": {"weight": 300},
        "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    }));
    cg.create(Some(&res)).unwrap();
    let leaf = |h: &str, f: &str| r.join(h).join("default/abc").join(f);
    assert_eq!(get(&leaf("memory", "memory.limit_in_bytes")), "67108864");
    assert_eq!(get(&leaf("memory", "memory.memsw.limit_in_bytes")), "134217728");
    assert_eq!(get(&leaf("memory", "memory.soft_limit_in_bytes")), "33554432");
    assert_eq!(get(&leaf("memory", "memory.swappiness")), "10");
    assert_eq!(get(&leaf("cpu,cpuacct", "cpu.shares")), "512");
    assert_eq!(get(&leaf("cpu,cpuacct", "cpu.cfs_quota_us")), "50000");
    assert_eq!(get(&leaf("cpu,cpuacct", "cpu.cfs_period_us")), "100000");
    assert_eq!(get(&leaf("cpuset", "cpuset.cpus")), "1");
    assert_eq!(get(&leaf("cpuset", "cpuset.mems")), "0");
    // The intermediate directory got its parent's values.
    assert_eq!(get(&r.join("cpuset/default/cpuset.cpus")), "0-3");
    assert_eq!(get(&r.join("cpuset/default/cpuset.mems")), "0");
    assert_eq!(get(&leaf("pids", "pids.max")), "32");
    assert_eq!(get(&leaf("blkio", "blkio.weight")), "300");
    assert_eq!(get(&leaf("devices", "devices.deny")), "a *:* rwm");
    // Fixture files keep only the last write: runc's default allow list
    // comes after the spec's rules.
    assert_eq!(get(&leaf("devices", "devices.allow")), "c 10:200 rwm");
}

#[test]
fn v1_unlimited_and_missing_memsw() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    v1_fixture(r, "x");
    stdfs::remove_file(r.join("memory/x/memory.memsw.limit_in_bytes")).unwrap();
    let cg = Cgroup::with_root(r, "/x", "x").unwrap();
    cg.update(&resources(
        json!({"memory": {"limit": -1, "swap": 100}, "pids": {"limit": 0}}),
    ))
    .unwrap();
    assert_eq!(get(&r.join("memory/x/memory.limit_in_bytes")), "-1");
    assert!(!r.join("memory/x/memory.memsw.limit_in_bytes").exists());
    assert_eq!(get(&r.join("pids/x/pids.max")), "max");
}

#[test]
fn v1_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    v1_fixture(r, "x");
    let cg = Cgroup::with_root(r, "/x", "x").unwrap();
    let err = cg
        .update(&resources(json!({"memory": {"swappiness": 101}})))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "linux.resources.memory.swappiness must be between 0 and 100, got 101"
    );
    let err = cg
        .update(&resources(json!({"unified": {"memory.high": "1"}})))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "linux.resources.unified requires cgroup v2 but the host uses cgroup v1"
    );
    let err = cg
        .update(&resources(json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]})))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "controller hugetlb is not available for cgroup /x");
    // A control file that is not there: the write error names file and value.
    stdfs::remove_file(r.join("pids/x/pids.max")).unwrap();
    let err = crate::error::chain(&cg.update(&resources(json!({"pids": {"limit": 5}}))).unwrap_err());
    let want = format!("write \"5\" to {}: ", r.join("pids/x/pids.max").display());
    assert!(err.starts_with(&want), "{err}");
}

#[test]
fn create_failure_cleans_up_what_it_made() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    put(&r.join("memory/cgroup.procs"), "");
    put(&r.join("pids/cgroup.procs"), "");
    let cg = Cgroup::with_root(r, "/new/leaf", "leaf").unwrap();
    // No pids.max in the fresh fixture directory, so applying fails.
    let err = cg.create(Some(&resources(json!({"pids": {"limit": 3}})))).unwrap_err();
    assert!(matches!(err, CgroupError::Write { .. }), "{err:?}");
    assert!(!r.join("memory/new").exists());
    assert!(!r.join("pids/new").exists());
}

#[test]
fn procs_are_collected_recursively() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    v1_fixture(r, "c");
    put(&r.join("memory/c/cgroup.procs"), "10\n20\n");
    put(&r.join("memory/c/sub/cgroup.procs"), "30\n20\n");
    put(&r.join("pids/c/cgroup.procs"), "10\n40\n");
    let cg = Cgroup::with_root(r, "/c", "c").unwrap();
    assert_eq!(cg.procs().unwrap(), vec![10, 20, 30, 40]);
    let gone = Cgroup::with_root(r, "/missing", "m").unwrap();
    assert!(matches!(gone.procs(), Err(CgroupError::NotFound { .. })));
    gone.kill_all(nix::sys::signal::Signal::SIGTERM).unwrap();
}

#[test]
fn freezer_and_oom_state_v1() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    v1_fixture(r, "c");
    let cg = Cgroup::with_root(r, "/c", "c").unwrap();
    assert!(!cg.is_frozen().unwrap());
    put(&r.join("freezer/c/freezer.state"), "FROZEN\n");
    assert!(cg.is_frozen().unwrap());
    put(&r.join("freezer/c/freezer.state"), "FREEZING\n");
    assert!(!cg.is_frozen().unwrap());
    put(
        &r.join("memory/c/memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
    );
    assert_eq!(cg.oom_kill_count().unwrap(), 3);
    put(
        &r.join("memory/c/memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\n",
    );
    let err = cg.oom_kill_count().unwrap_err().to_string();
    assert!(err.ends_with("memory.oom_control: field oom_kill is missing"), "{err}");
}

#[test]
fn stats_v1() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    v1_fixture(r, "c");
    let acct = r.join("cpu,cpuacct/c");
    put(&acct.join("cpuacct.usage"), "3000\n");
    put(&acct.join("cpuacct.stat"), "user 2\nsystem 1\n");
    put(&acct.join("cpuacct.usage_percpu"), "1000 2000 \n");
    put(
        &acct.join("cpu.stat"),
        "nr_periods 10\nnr_throttled 4\nthrottled_time 999\n",
    );
    let mem = r.join("memory/c");
    put(&mem.join("memory.usage_in_bytes"), "1000\n");
    put(&mem.join("memory.limit_in_bytes"), "9223372036854771712\n");
    put(&mem.join("memory.max_usage_in_bytes"), "2000\n");
    put(&mem.join("memory.failcnt"), "5\n");
    put(
        &mem.join("memory.stat"),
        "cache 1\nrss 2\ntotal_cache 11\ntotal_rss 22\n",
    );
    put(&mem.join("memory.memsw.usage_in_bytes"), "1500\n");
    put(&mem.join("memory.memsw.limit_in_bytes"), "4096\n");
    put(&r.join("pids/c/pids.current"), "7\n");
    put(&r.join("pids/c/pids.max"), "max\n");
    let cg = Cgroup::with_root(r, "/c", "c").unwrap();
    let s = cg.stats().unwrap();
    assert_eq!(s.cpu.usage_total_ns, 3000);
    let tick = 1_000_000_000 / {
        // SAFETY: sysconf has no preconditions.
        unsafe { libc::sysconf(libc::_SC_CLK_TCK) as u64 }
    };
    assert_eq!(s.cpu.usage_user_ns, 2 * tick);
    assert_eq!(s.cpu.usage_kernel_ns, tick);
    assert_eq!(s.cpu.per_cpu_usage_ns, vec![1000, 2000]);
    assert_eq!(
        s.cpu.throttling,
        ThrottlingStats {
            periods: 10,
            throttled_periods: 4,
            throttled_time_ns: 999
        }
    );
    assert_eq!(s.memory.usage, 1000);
    assert_eq!(s.memory.limit, None);
    assert_eq!(s.memory.max_usage, 2000);
    assert_eq!(s.memory.failcnt, 5);
    assert_eq!((s.memory.cache, s.memory.rss), (11, 22));
    assert_eq!(s.memory.swap_usage, 500);
    assert_eq!(s.memory.memsw_limit, Some(4096));
    assert_eq!(s.memory.stat["rss"], 2);
    assert_eq!(
        s.pids,
        PidsStats {
            current: 7,
            limit: None
        }
    );
    // Nanosecond user/sys files win over the tick-based cpuacct.stat.
    put(&acct.join("cpuacct.usage_user"), "123\n");
    put(&acct.join("cpuacct.usage_sys"), "456\n");
    let s = cg.stats().unwrap();
    assert_eq!((s.cpu.usage_user_ns, s.cpu.usage_kernel_ns), (123, 456));
}

/// A v2 root offering `controllers`, with leaf `rel` pre-populated.
fn v2_fixture(root: &Path, rel: &str, files: &[&str]) {
    put(&root.join("cgroup.controllers"), "cpuset cpu io memory pids\n");
    put(&root.join("cgroup.subtree_control"), "");
    put(&root.join("cgroup.procs"), "");
    let leaf = root.join(rel);
    for f in files {
        put(&leaf.join(f), "");
    }
}

#[test]
fn v2_create_applies_converted_limits() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let files = [
        "cgroup.procs",
        "memory.max",
        "memory.swap.max",
        "memory.low",
        "cpu.weight",
        "cpu.max",
        "pids.max",
        "io.weight",
        "io.max",
        "cpuset.cpus",
        "memory.high",
    ];
    v2_fixture(r, "k/abc", &files);
    let cg = Cgroup::with_root(r, "/k/abc", "abc").unwrap();
    assert_eq!(cg.version(), CgroupVersion::V2);
    assert_eq!(cg.dirs(), vec![r.join("k/abc")]);
    let res = resources(json!({
        "memory": {"limit": 1048576, "swap": 3145728, "reservation": 1024, "swappiness": 5},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0"},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
        "unified": {"memory.high": "2097152"}
    }));
    cg.create(Some(&res)).unwrap();
    let leaf = r.join("k/abc");
    assert_eq!(get(&leaf.join("memory.max")), "1048576");
    assert_eq!(get(&leaf.join("memory.swap.max")), "2097152");
    assert_eq!(get(&leaf.join("memory.low")), "1024");
    assert_eq!(get(&leaf.join("cpu.weight")), "39");
    assert_eq!(get(&leaf.join("cpu.max")), "50000 100000");
    assert_eq!(get(&leaf.join("pids.max")), "max");
    assert_eq!(get(&leaf.join("io.weight")), "4950");
    assert_eq!(get(&leaf.join("io.max")), "8:0 rbps=1000");
    assert_eq!(get(&leaf.join("cpuset.cpus")), "0");
    assert_eq!(get(&leaf.join("memory.high")), "2097152");
    // Controllers were enabled on the root for its children.
    assert!(get(&r.join("cgroup.subtree_control")).starts_with('+'));
}

#[test]
fn v2_missing_controller_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    v2_fixture(r, "c", &["cgroup.procs", "cpu.max"]);
    let cg = Cgroup::with_root(r, "/c", "c").unwrap();
    let err = cg
        .update(&resources(json!({"pids": {"limit": 3}})))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "controller pids is not available for cgroup /c");
    // Quota without period keeps the current period.
    cg.update(&resources(json!({"cpu": {"quota": -1}}))).unwrap();
    assert_eq!(get(&r.join("c/cpu.max")), "max");
    // Swap "max" without swap accounting is silently fine (runc behaviour).
    v2_fixture(r, "c", &["memory.max"]);
    cg.update(&resources(json!({"memory": {"limit": -1}}))).unwrap();
    assert_eq!(get(&r.join("c/memory.max")), "max");
    let err = cg
        .update(&resources(json!({"unified": {"../escape": "1"}})))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "linux.resources.unified[\"../escape\"] is not a cgroup file name");
}

#[test]
fn v2_state_stats_and_oom() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    v2_fixture(r, "c", &["cgroup.procs"]);
    let leaf = r.join("c");
    put(&leaf.join("cgroup.freeze"), "1\n");
    put(&leaf.join("cgroup.events"), "populated 1\nfrozen 0\n");
    let cg = Cgroup::with_root(r, "/c", "c").unwrap();
    assert!(!cg.is_frozen().unwrap());
    put(&leaf.join("cgroup.events"), "populated 1\nfrozen 1\n");
    assert!(cg.is_frozen().unwrap());
    assert!(matches!(
        cg.oom_kill_count(),
        Err(CgroupError::ControllerUnavailable { .. })
    ));
    put(&leaf.join("memory.events"), "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n");
    assert_eq!(cg.oom_kill_count().unwrap(), 2);
    assert!(cg.oom_event_fd().unwrap().is_none());
    put(
        &leaf.join("cpu.stat"),
        "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 3\nnr_throttled 1\nthrottled_usec 7\n",
    );
    put(&leaf.join("memory.current"), "100\n");
    put(&leaf.join("memory.max"), "max\n");
    put(&leaf.join("memory.stat"), "anon 60\nfile 30\n");
    put(&leaf.join("memory.swap.current"), "5\n");
    put(&leaf.join("memory.swap.max"), "1000\n");
    put(&leaf.join("pids.current"), "2\n");
    put(&leaf.join("pids.max"), "10\n");
    let s = cg.stats().unwrap();
    assert_eq!(
        (s.cpu.usage_total_ns, s.cpu.usage_user_ns, s.cpu.usage_kernel_ns),
        (10_000, 6_000, 4_000)
    );
    assert_eq!(
        s.cpu.throttling,
        ThrottlingStats {
            periods: 3,
            throttled_periods: 1,
            throttled_time_ns: 7_000
        }
    );
    assert!(s.cpu.per_cpu_usage_ns.is_empty());
    assert_eq!((s.memory.usage, s.memory.limit, s.memory.failcnt), (100, None, 4));
    assert_eq!(
        (s.memory.rss, s.memory.cache, s.memory.swap_usage, s.memory.swap_limit),
        (60, 30, 5, Some(1000))
    );
    assert_eq!(
        s.pids,
        PidsStats {
            current: 2,
            limit: Some(10)
        }
    );
}

#[test]
fn conversions() {
    assert_eq!(shares_to_weight(0), 0);
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(1_000_000), 10_000);
    assert_eq!(blkio_to_io_weight(10), 1);
    assert_eq!(blkio_to_io_weight(1000), 10_000);
    assert_eq!(v2_swap_value(Some(-1), None).unwrap().as_deref(), Some("max"));
    assert_eq!(v2_swap_value(Some(100), Some(-1)).unwrap().as_deref(), Some("max"));
    assert_eq!(v2_swap_value(Some(100), None).unwrap(), None);
    assert_eq!(v2_swap_value(Some(100), Some(100)).unwrap().as_deref(), Some("0"));
    assert_eq!(v2_swap_value(Some(100), Some(250)).unwrap().as_deref(), Some("150"));
    assert!(v2_swap_value(None, Some(100)).is_err());
    assert!(v2_swap_value(Some(200), Some(100)).is_err());
}

#[test]
fn from_spec_uses_cgroups_path() {
    let spec: oci_spec::runtime::Spec = serde_json::from_value(json!({
        "ociVersion": "1.1.0",
        "linux": {"cgroupsPath": "system.slice:docker:abc"}
    }))
    .unwrap();
    let cg = Cgroup::from_spec(&spec, "abc").unwrap();
    assert_eq!(cg.path(), Path::new("/system.slice/docker-abc.scope"));
    let spec: oci_spec::runtime::Spec = serde_json::from_value(json!({"ociVersion": "1.1.0"})).unwrap();
    assert_eq!(
        Cgroup::from_spec(&spec, "xyz").unwrap().path(),
        Path::new("/zygote/xyz")
    );
}

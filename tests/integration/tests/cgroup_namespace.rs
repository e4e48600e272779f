//! The cgroup namespace and `/sys/fs/cgroup` inside the container, zygote
//! side by side with runc: `/proc/self/cgroup` and the cgroup mounts of
//! `/proc/self/mountinfo` (mount point, filesystem type, read-only or not,
//! the root shown) with and without a `cgroup` namespace in the spec. On this
//! machine (cgroup v1 hybrid: a tmpfs with one mount per hierarchy) and in
//! hack/vm/run.sh's cgroup v2 guest (one cgroup2 mount).

use zygote_integration_tests::*;

const PROBE: &str = "cat /proc/self/cgroup; echo ---; cat /proc/self/mountinfo; echo ---; ls /sys/fs/cgroup";

/// One cgroup-related mount as the container sees it.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
struct CgroupMount {
    mount_point: String,
    fstype: String,
    read_only: bool,
    /// The root of the mount, the container id replaced by `<id>`.
    root: String,
}

/// What the container shows.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Seen {
    /// `/proc/self/cgroup`'s paths (the id replaced by `<id>`), sorted and
    /// deduplicated.
    own_paths: Vec<String>,
    mounts: Vec<CgroupMount>,
    /// `ls /sys/fs/cgroup`.
    entries: Vec<String>,
}

fn parse(stdout: &str, id: &str) -> Seen {
    let parts: Vec<&str> = stdout.split("---\n").collect();
    assert_eq!(parts.len(), 3, "probe output: {stdout}");
    let norm = |s: &str| s.replace(id, "<id>");
    let mut own_paths: Vec<String> = parts[0]
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .map(norm)
        .collect();
    own_paths.sort();
    own_paths.dedup();
    let mut mounts: Vec<CgroupMount> = parts[1]
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let fstype = right.split(' ').next()?.to_string();
            let mount_point = f.get(4)?.to_string();
            if !mount_point.starts_with("/sys/fs/cgroup") {
                return None;
            }
            Some(CgroupMount {
                mount_point,
                fstype,
                read_only: f.get(5)?.split(',').any(|o| o == "ro"),
                root: norm(f.get(3)?),
            })
        })
        .collect();
    mounts.sort();
    let mut entries: Vec<String> = parts[2].split_whitespace().map(String::from).collect();
    entries.sort();
    Seen {
        own_paths,
        mounts,
        entries,
    }
}

/// Runs the probe with ctr's default spec, plus a cgroup namespace when
/// `cgroupns`, and the `/sys/fs/cgroup` mount's options edited by `opts`.
fn seen(rt: Runtime, test: &str, cgroupns: bool, opts: fn(&mut serde_json::Value)) -> Seen {
    let c = Container::new(test, rt);
    let b = ConfigBundle::new(c.id(), &["sh", "-c", PROBE], |s| {
        if cgroupns {
            s["linux"]["namespaces"]
                .as_array_mut()
                .expect("namespaces")
                .push(serde_json::json!({"type": "cgroup"}));
        }
        let mounts = s["mounts"].as_array_mut().expect("mounts");
        let m = mounts
            .iter_mut()
            .find(|m| m["destination"] == "/sys/fs/cgroup")
            .expect("ctr's default spec mounts /sys/fs/cgroup");
        opts(&mut m["options"]);
    });
    let out = Ctr::new().run_config(rt, &b, c.id());
    out.assert_success();
    parse(&out.stdout, c.id())
}

fn keep(_: &mut serde_json::Value) {}

fn rw(o: &mut serde_json::Value) {
    for v in o.as_array_mut().expect("options").iter_mut() {
        if v == "ro" {
            *v = serde_json::json!("rw");
        }
    }
}

/// With a cgroup namespace the container's own cgroup is its root: every
/// `/proc/self/cgroup` path is `/`, the cgroup mounts show `/`, read-only
/// as ctr's spec asks; the same as runc.
#[test]
fn cgroupns_shows_the_own_cgroup_as_root() {
    let s = both("cgroupns: /proc/self/cgroup and mounts", |rt| {
        seen(rt, "cgroupns-root", true, keep)
    });
    assert_eq!(s.own_paths, vec!["/".to_string()], "{s:?}");
    assert!(!s.mounts.is_empty(), "{s:?}");
    let hierarchies: Vec<&CgroupMount> = s.mounts.iter().filter(|m| m.fstype != "tmpfs").collect();
    assert!(
        !hierarchies.is_empty() && hierarchies.iter().all(|m| m.root == "/" && m.read_only),
        "{s:?}"
    );
}

/// Without a cgroup namespace the host paths show, and the mounts are
/// binds of the container's own cgroup directories (root = its path),
/// read-only; the same as runc.
#[test]
fn without_cgroupns_the_mounts_bind_the_own_cgroup() {
    let s = both("no cgroupns: /proc/self/cgroup and mounts", |rt| {
        seen(rt, "cgroupns-none", false, keep)
    });
    assert!(s.own_paths.iter().any(|p| p.ends_with("/<id>")), "{s:?}");
    let hierarchies: Vec<&CgroupMount> = s.mounts.iter().filter(|m| m.fstype != "tmpfs").collect();
    assert!(
        !hierarchies.is_empty() && hierarchies.iter().all(|m| m.root.ends_with("/<id>") && m.read_only),
        "{s:?}"
    );
}

/// `rw` in the mount's options (what a privileged container gets) leaves
/// the cgroup mounts writable; the same as runc.
#[test]
fn cgroupns_rw_option_gives_writable_mounts() {
    let s = both("cgroupns rw: mounts", |rt| seen(rt, "cgroupns-rw", true, rw));
    assert!(!s.mounts.is_empty() && s.mounts.iter().all(|m| !m.read_only), "{s:?}");
}

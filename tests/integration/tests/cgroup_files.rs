//! `linux.resources` from the spec as the container's cgroup files show them,
//! zygote side by side with runc: on cgroup v1 (this machine) and on cgroup
//! v2 (hack/vm/run.sh), each with its own file names and conversions.

use std::time::Duration;

use zygote_integration_tests::*;

/// One resource: controller (v1 hierarchy), v1 file and value, v2 file and
/// value (runc's conversion where the two differ).
struct Case {
    controller: &'static str,
    v1: (&'static str, &'static str),
    v2: (&'static str, &'static str),
}

const CASES: &[Case] = &[
    // v2: cpu.weight = 1 + (shares - 2) * 9999 / 262142 (runc 1.1).
    Case {
        controller: "cpu",
        v1: ("cpu.shares", "512"),
        v2: ("cpu.weight", "20"),
    },
    Case {
        controller: "cpu",
        v1: ("cpu.cfs_quota_us", "50000"),
        v2: ("cpu.max", "50000 100000"),
    },
    Case {
        controller: "pids",
        v1: ("pids.max", "64"),
        v2: ("pids.max", "64"),
    },
    Case {
        controller: "cpuset",
        v1: ("cpuset.cpus", "0"),
        v2: ("cpuset.cpus", "0"),
    },
    Case {
        controller: "memory",
        v1: ("memory.limit_in_bytes", "134217728"),
        v2: ("memory.max", "134217728"),
    },
    // Memory + swap on v1; swap alone on v2 (runc writes swap - limit).
    Case {
        controller: "memory",
        v1: ("memory.memsw.limit_in_bytes", "268435456"),
        v2: ("memory.swap.max", "134217728"),
    },
    // The reservation: the soft limit on v1, memory.low on v2.
    Case {
        controller: "memory",
        v1: ("memory.soft_limit_in_bytes", "33554432"),
        v2: ("memory.low", "33554432"),
    },
];

/// The file of the container's cgroup `/<namespace>/<id>`.
fn read_cgroup_file(id: &str, controller: &str, file: &str) -> String {
    let base = std::path::Path::new("/sys/fs/cgroup");
    let ns = &env().namespace;
    let path = if cgroup_v2() {
        base.join(ns).join(id).join(file)
    } else {
        base.join(controller).join(ns).join(id).join(file)
    };
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()))
}

/// cpu shares and CFS quota, a pids limit, cpuset cpus, a memory limit,
/// swap and reservation from the spec land in the files runc writes them to, with
/// the same values.
#[test]
fn spec_resources_in_cgroup_files() {
    let v2 = cgroup_v2();
    let expected: Vec<(String, String)> = CASES
        .iter()
        .map(|c| {
            let (file, value) = if v2 { c.v2 } else { c.v1 };
            (file.to_string(), value.to_string())
        })
        .collect();
    both_expect("spec resources in cgroup files", expected, |rt| {
        let ctr = Ctr::new();
        let c = Container::new("cgfiles", rt);
        let b = ConfigBundle::new(c.id(), &["sleep", "60"], |s| {
            s["linux"]["resources"] = serde_json::json!({
                "cpu": { "shares": 512, "quota": 50000, "period": 100000, "cpus": "0" },
                "pids": { "limit": 64 },
                "memory": { "limit": 134217728, "swap": 268435456, "reservation": 33554432 },
            });
        });
        let out = ctr.run(&["run", "-d", "--runtime", rt.name(), "--config", &b.config_str(), c.id()]);
        out.assert_success();
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(30));
        CASES
            .iter()
            .map(|case| {
                let file = if v2 { case.v2.0 } else { case.v1.0 };
                (file.to_string(), read_cgroup_file(c.id(), case.controller, file))
            })
            .collect::<Vec<_>>()
    });
}

/// The first whole disk of `/proc/partitions` (one without a `partition`
/// file in sysfs): `(major, minor)`. The host's and the VM's root disk.
fn a_disk() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/partitions").expect("read /proc/partitions");
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (major, minor) = (f.first()?.parse().ok()?, f.get(1)?.parse().ok()?);
            let name = f.get(3)?;
            let whole = !std::path::Path::new(&format!("/sys/dev/block/{major}:{minor}/partition")).exists();
            (whole && !name.starts_with("loop") && !name.starts_with("ram")).then_some((major, minor))
        })
        .next()
        .expect("no whole disk in /proc/partitions")
}

/// Whether the hugetlb controller is there for containers.
fn hugetlb_available() -> bool {
    if cgroup_v2() {
        std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "hugetlb"))
    } else {
        std::path::Path::new("/sys/fs/cgroup/hugetlb").is_dir()
    }
}

/// `blockIO` (weight, throttles on the machine's disk) and
/// `hugepageLimits` land where runc 1.1 writes them: v1 `blkio.weight` or
/// `blkio.bfq.weight`, `blkio.throttle.*_device`,
/// `hugetlb.2MB.limit_in_bytes`; v2 `io.bfq.weight` (BFQ) or `io.weight`
/// (runc's 10..1000 to 1..10000 conversion), `io.max` (one line per device,
/// the keys not given `max`), `hugetlb.2MB.max`. hugetlb only where the
/// controller is (not on this v1 host; in the VM).
///
/// Not here: the IOPS throttles. oci-spec 0.7 reads them as
/// `throttleReadIopsDevice`/`throttleWriteIopsDevice`, not the spec's
/// `throttle{Read,Write}IOPSDevice`, so zygote drops them (fixed in
/// oci-spec 0.10; the upgrade is still to do).
#[test]
fn block_io_and_hugepages_in_cgroup_files() {
    let v2 = cgroup_v2();
    let (major, minor) = a_disk();
    let hugetlb = hugetlb_available();
    let got = both("block io and hugepages in cgroup files", |rt| {
        let ctr = Ctr::new();
        let c = Container::new("cgfiles-io", rt);
        let b = ConfigBundle::new(c.id(), &["sleep", "60"], |s| {
            s["linux"]["resources"]["blockIO"] = serde_json::json!({
                "weight": 500,
                "throttleReadBpsDevice": [{ "major": major, "minor": minor, "rate": 1048576 }],
                "throttleWriteBpsDevice": [{ "major": major, "minor": minor, "rate": 2097152 }],
            });
            if hugetlb {
                s["linux"]["resources"]["hugepageLimits"] =
                    serde_json::json!([{ "pageSize": "2MB", "limit": 4194304 }]);
            }
        });
        let out = ctr.run(&["run", "-d", "--runtime", rt.name(), "--config", &b.config_str(), c.id()]);
        out.assert_success();
        ctr.wait_status(c.id(), "RUNNING", Duration::from_secs(30));
        let (controller, weight_files, files): (&str, [&str; 2], Vec<&str>) = if v2 {
            ("io", ["io.bfq.weight", "io.weight"], vec!["io.max"])
        } else {
            (
                "blkio",
                ["blkio.weight", "blkio.bfq.weight"],
                vec!["blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device"],
            )
        };
        let weight_file = weight_files
            .into_iter()
            .find(|f| !read_cgroup_file(c.id(), controller, f).starts_with("<cannot read"))
            .unwrap_or("<no weight file>");
        let mut seen = vec![(
            weight_file.to_string(),
            read_cgroup_file(c.id(), controller, weight_file),
        )];
        seen.extend(
            files
                .into_iter()
                .map(|f| (f.to_string(), read_cgroup_file(c.id(), controller, f))),
        );
        if hugetlb {
            let f = if v2 {
                "hugetlb.2MB.max"
            } else {
                "hugetlb.2MB.limit_in_bytes"
            };
            seen.push((f.to_string(), read_cgroup_file(c.id(), "hugetlb", f)));
        }
        seen
    });
    let dev = format!("{major}:{minor}");
    let mut expected = if v2 {
        let weight = if got[0].0 == "io.bfq.weight" {
            "default 500"
        } else {
            "default 4950"
        };
        vec![
            (got[0].0.clone(), weight.to_string()),
            (
                "io.max".to_string(),
                format!("{dev} rbps=1048576 wbps=2097152 riops=max wiops=max"),
            ),
        ]
    } else {
        vec![
            (got[0].0.clone(), "500".to_string()),
            ("blkio.throttle.read_bps_device".to_string(), format!("{dev} 1048576")),
            ("blkio.throttle.write_bps_device".to_string(), format!("{dev} 2097152")),
        ]
    };
    if hugetlb {
        let f = if v2 {
            "hugetlb.2MB.max"
        } else {
            "hugetlb.2MB.limit_in_bytes"
        };
        expected.push((f.to_string(), "4194304".to_string()));
    }
    assert_eq!(got, expected, "the runtimes agree, but not with runc 1.1's rules");
}

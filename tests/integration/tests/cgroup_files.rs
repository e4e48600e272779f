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

use std::path::Path;

use serde_json::{json, Value};

use super::*;

/// A minimal config.json that passes validation.
fn base() -> Value {
    json!({
        "ociVersion": "1.1.0",
        "root": {"path": "rootfs"},
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/sh", "-c", "true"],
            "env": ["PATH=/usr/bin:/bin", "EMPTY="],
            "cwd": "/",
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}]
        },
        "hostname": "box",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/etc/hosts", "type": "bind", "source": "/etc/hosts", "options": ["rbind", "ro"]}
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ],
            "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "100", "fs.mqueue.msg_max": "10"},
            "cgroupsPath": "/default/abc",
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"],
            "rootfsPropagation": "rprivate"
        }
    })
}

fn parse(v: &Value) -> Spec {
    serde_json::from_value(v.clone()).expect("fixture deserialises")
}

fn err_of(v: &Value) -> String {
    validate(&parse(v)).expect_err("validation should fail").to_string()
}

fn write_bundle(dir: &Path, content: &str) {
    std::fs::write(dir.join(CONFIG_FILE), content).unwrap();
}

#[test]
fn load_valid_bundle() {
    let dir = tempfile::tempdir().unwrap();
    write_bundle(dir.path(), &base().to_string());
    let spec = load(dir.path()).unwrap();
    assert_eq!(spec.process().as_ref().unwrap().args().as_ref().unwrap()[0], "/bin/sh");
    assert_eq!(resolve_rootfs(dir.path(), &spec), dir.path().join("rootfs"));
}

#[test]
fn resolve_rootfs_absolute_and_missing() {
    let mut v = base();
    v["root"]["path"] = json!("/srv/root");
    assert_eq!(resolve_rootfs(Path::new("/b"), &parse(&v)), Path::new("/srv/root"));
    let mut spec = parse(&base());
    spec.set_root(None);
    assert_eq!(resolve_rootfs(Path::new("/b"), &spec), Path::new("/b/rootfs"));
}

#[test]
fn malformed_json_names_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    write_bundle(dir.path(), "{\n  \"ociVersion\": \"1.0.0\",\n  \"root\": }\n");
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, SpecError::Parse { .. }), "{err:?}");
    let msg = crate::error::chain(&err);
    assert!(
        msg.contains(&dir.path().join("config.json").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("line 3"), "{msg}");
}

#[test]
fn unknown_seccomp_arch_is_a_parse_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut v = base();
    v["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]});
    write_bundle(dir.path(), &v.to_string());
    let msg = crate::error::chain(&load(dir.path()).unwrap_err());
    assert!(msg.contains("SCMP_ARCH_VAX"), "{msg}");
}

#[test]
fn missing_config_is_read_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(dir.path()).unwrap_err();
    assert!(matches!(err, SpecError::Read { .. }));
    assert!(err.to_string().starts_with("read "), "{err}");
    // What a user sees: each cause once.
    assert_eq!(
        crate::error::chain(&err),
        format!(
            "read {}: No such file or directory (os error 2)",
            dir.path().join("config.json").display()
        )
    );
}

#[test]
fn empty_args_rejected_with_field_name() {
    let mut v = base();
    v["process"]["args"] = json!([]);
    assert_eq!(err_of(&v), "config.json: process.args must not be empty");
    v["process"].as_object_mut().unwrap().remove("args");
    assert_eq!(err_of(&v), "config.json: process.args must not be empty");
    v["process"]["args"] = json!([""]);
    assert_eq!(err_of(&v), "config.json: process.args[0] must not be empty");
}

#[test]
fn missing_process_and_root() {
    let mut v = base();
    v.as_object_mut().unwrap().remove("process");
    assert_eq!(err_of(&v), "config.json: process is required");
    let mut v = base();
    v.as_object_mut().unwrap().remove("root");
    assert_eq!(err_of(&v), "config.json: root is required");
    let mut v = base();
    v["root"]["path"] = json!("");
    assert_eq!(err_of(&v), "config.json: root.path must not be empty");
}

#[test]
fn version_checked() {
    let mut v = base();
    v["ociVersion"] = json!("2.0.0");
    assert!(err_of(&v).starts_with("config.json: ociVersion \"2.0.0\""));
}

#[test]
fn process_fields() {
    let mut v = base();
    v["process"]["cwd"] = json!("work");
    assert_eq!(
        err_of(&v),
        "config.json: process.cwd must be an absolute path, got \"work\""
    );
    let mut v = base();
    v["process"]["env"] = json!(["A=1", "NOVALUE"]);
    assert_eq!(
        err_of(&v),
        "config.json: process.env[1] \"NOVALUE\" is not of the form KEY=value"
    );
    let mut v = base();
    v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]);
    assert_eq!(
        err_of(&v),
        "config.json: process.rlimits[0] soft limit 10 exceeds hard limit 5"
    );
    let mut v = base();
    v["process"]["rlimits"] = json!([
        {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 5},
        {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 5}
    ]);
    assert!(err_of(&v).starts_with("config.json: process.rlimits[1].type duplicates"));
    let mut v = base();
    v["process"]["oomScoreAdj"] = json!(1001);
    assert!(err_of(&v).contains("process.oomScoreAdj"));
}

#[test]
fn namespaces_checked() {
    let mut v = base();
    v["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "network"}, {"type": "pid"}]);
    assert_eq!(
        err_of(&v),
        "config.json: linux.namespaces[2].type duplicates namespace type pid"
    );
    let mut v = base();
    v["linux"]["namespaces"] = json!([{"type": "network", "path": "proc/1/ns/net"}, {"type": "uts"}]);
    assert!(err_of(&v).starts_with("config.json: linux.namespaces[0].path must be an absolute path"));
}

#[test]
fn id_mappings_need_user_namespace() {
    let maps = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let mut v = base();
    v["linux"]["uidMappings"] = maps.clone();
    v["linux"]["gidMappings"] = maps.clone();
    assert!(err_of(&v).contains("require a user namespace"));

    // New user namespace with mappings: fine.
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    validate(&parse(&v)).unwrap();

    // New user namespace without mappings.
    let mut w = base();
    w["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    assert!(err_of(&w).contains("needs both linux.uidMappings and linux.gidMappings"));

    // Joined user namespace with mappings.
    let mut x = v.clone();
    let nss = x["linux"]["namespaces"].as_array_mut().unwrap();
    nss.pop();
    nss.push(json!({"type": "user", "path": "/proc/1/ns/user"}));
    assert!(err_of(&x).contains("joining an existing user namespace"));

    // Zero-sized mapping.
    let mut y = v.clone();
    y["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 1, "size": 0}]);
    assert_eq!(
        err_of(&y),
        "config.json: linux.gidMappings[0].size must be greater than zero"
    );
}

#[test]
fn mounts_checked() {
    let mut v = base();
    v["mounts"][0]["destination"] = json!("proc");
    assert_eq!(
        err_of(&v),
        "config.json: mounts[0].destination must be an absolute path, got \"proc\""
    );
    let mut v = base();
    v["mounts"][1].as_object_mut().unwrap().remove("source");
    assert_eq!(err_of(&v), "config.json: mounts[1].source is required for bind mounts");
}

#[test]
fn hostname_needs_uts() {
    let mut v = base();
    v["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "network"}]);
    v["linux"]["sysctl"] = json!({});
    assert_eq!(
        err_of(&v),
        "config.json: hostname cannot be set without a uts namespace"
    );
}

#[test]
fn sysctls_need_their_namespace() {
    let cases = [
        (
            "kernel.shmmax",
            json!([{"type": "uts"}, {"type": "network"}]),
            "requires an ipc namespace",
        ),
        (
            "fs.mqueue.queues_max",
            json!([{"type": "uts"}]),
            "requires an ipc namespace",
        ),
        (
            "net.core.somaxconn",
            json!([{"type": "uts"}]),
            "requires a network namespace",
        ),
        (
            "net/ipv4/ip_forward",
            json!([{"type": "uts"}]),
            "requires a network namespace",
        ),
        (
            "kernel.hostname",
            json!([{"type": "uts"}]),
            "is not allowed; use hostname instead",
        ),
        ("vm.swappiness", json!([{"type": "uts"}]), "is not namespaced"),
    ];
    for (key, nss, want) in cases {
        let mut v = base();
        v["linux"]["namespaces"] = nss;
        v["linux"]["sysctl"] = json!({ key: "1" });
        let msg = err_of(&v);
        assert!(msg.contains(want) && msg.contains(key), "{key}: {msg}");
    }
    let mut v = base();
    v["linux"]["sysctl"] = json!({"kernel.domainname": "x", "net.ipv4.ip_forward": "1"});
    validate(&parse(&v)).unwrap();
}

#[test]
fn linux_paths_and_propagation() {
    let mut v = base();
    v["linux"]["maskedPaths"] = json!(["proc/kcore"]);
    assert!(err_of(&v).starts_with("config.json: linux.maskedPaths[0] must be an absolute path"));
    let mut v = base();
    v["linux"]["rootfsPropagation"] = json!("sideways");
    assert!(err_of(&v).starts_with("config.json: linux.rootfsPropagation \"sideways\" is not one of"));
    let mut v = base();
    v["hooks"] = json!({"createRuntime": [{"path": "hook.sh"}]});
    assert!(err_of(&v).starts_with("config.json: hooks.createRuntime[0].path must be an absolute path"));
}

#[test]
fn cgroups_path_checked() {
    for bad in ["/a/../b", "a:b", "nope:docker:abc"] {
        let mut v = base();
        v["linux"]["cgroupsPath"] = json!(bad);
        let msg = err_of(&v);
        assert!(
            msg.starts_with("config.json: linux.cgroupsPath is invalid"),
            "{bad}: {msg}"
        );
    }
    for good in ["", "system.slice:docker:abc", "/x/y"] {
        let mut v = base();
        v["linux"]["cgroupsPath"] = json!(good);
        validate(&parse(&v)).unwrap();
    }
}

#[test]
fn memory_swap_below_limit_rejected() {
    let mut v = base();
    v["linux"]["resources"] = json!({"memory": {"limit": 200, "swap": 100}});
    assert_eq!(
        err_of(&v),
        "config.json: linux.resources.memory.swap (100) must not be lower than linux.resources.memory.limit (200)"
    );
    v["linux"]["resources"] = json!({"memory": {"limit": 200, "swap": -1}});
    validate(&parse(&v)).unwrap();
}

#[test]
fn seccomp_checked() {
    let mut v = base();
    v["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    });
    assert_eq!(
        err_of(&v),
        "config.json: linux.seccomp.syscalls[0].args[0].index must be at most 5, got 6"
    );
    v["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]
    });
    assert!(err_of(&v).starts_with("config.json: linux.seccomp.listenerPath is required"));
    v["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]
    });
    assert_eq!(
        err_of(&v),
        "config.json: linux.seccomp.syscalls[0].names must not be empty"
    );
}

#[test]
fn time_offsets_need_time_namespace() {
    // oci-spec 0.7 models timeOffsets as a string map.
    let mut v = base();
    v["linux"]["timeOffsets"] = json!({"monotonic": "1"});
    assert_eq!(
        err_of(&v),
        "config.json: linux.timeOffsets requires a time namespace in linux.namespaces"
    );
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    validate(&parse(&v)).unwrap();
}

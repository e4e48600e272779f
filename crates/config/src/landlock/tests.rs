//! Tests of Landlock policy validation and ABI negotiation (no enforcement:
//! see `tests/landlock_enforce.rs`).

use std::path::PathBuf;

use super::*;

fn rule(path: &str, access: &[&str]) -> FsRule {
    FsRule {
        path: PathBuf::from(path),
        access: access.iter().map(|s| s.to_string()).collect(),
    }
}

fn policy(fs: Vec<FsRule>) -> LandlockPolicy {
    LandlockPolicy {
        fs,
        ..Default::default()
    }
}

const ABI1_FS: u64 = (1 << 13) - 1;

#[test]
fn validate_names_the_sub_field() {
    let p = policy(vec![rule("/a", &["read"]), rule("/b", &["wrte"])]);
    let e = p.validate().unwrap_err();
    assert!(e.starts_with("fs[1].access: unknown right \"wrte\""), "{e}");
    assert_eq!(
        policy(vec![rule("a", &["read"])]).validate().unwrap_err(),
        "fs[0].path: \"a\" is not an absolute path"
    );
    assert!(policy(vec![rule("/a", &[])])
        .validate()
        .unwrap_err()
        .starts_with("fs[0].access: empty"));
    let p = LandlockPolicy {
        net_connect: Some(vec![443, 0]),
        ..Default::default()
    };
    assert_eq!(p.validate().unwrap_err(), "net_connect[1]: port 0 is not in 1..=65535");
    let p = LandlockPolicy {
        scope: vec!["signal".into(), "ptrace".into()],
        ..Default::default()
    };
    assert!(p
        .validate()
        .unwrap_err()
        .starts_with("scope[1]: unknown scope \"ptrace\""));
    let all: Vec<&str> = FS_RIGHTS.iter().map(|r| r.0).chain(["read", "write", "all"]).collect();
    policy(vec![rule("/", &all)]).validate().unwrap();
}

#[test]
fn rights_per_abi() {
    assert_eq!(fs_rights_for_abi(0), 0);
    assert_eq!(fs_rights_for_abi(1), ABI1_FS);
    assert_eq!(fs_rights_for_abi(2), ABI1_FS | sys::ACCESS_FS_REFER);
    assert_eq!(fs_rights_for_abi(4), (1 << 15) - 1);
    assert_eq!(fs_rights_for_abi(5), (1 << 16) - 1);
    assert_eq!(fs_rights_for_abi(7), (1 << 16) - 1);
}

#[test]
fn prepare_expands_groups_and_handles_everything() {
    let p = policy(vec![
        rule("/bin", &["read", "execute"]),
        rule("/tmp", &["write"]),
        rule("/x", &["all"]),
    ]);
    let r = p.prepare(7).unwrap();
    assert_eq!(r.abi, 7);
    assert_eq!(r.handled_fs, (1 << 16) - 1);
    assert_eq!((r.handled_net, r.scoped), (0, 0));
    assert_eq!(
        r.fs_rules[0],
        (
            PathBuf::from("/bin"),
            sys::ACCESS_FS_READ_FILE | sys::ACCESS_FS_READ_DIR | sys::ACCESS_FS_EXECUTE
        )
    );
    // write: every make_*, removes, write_file, truncate; not refer.
    assert_eq!(r.fs_rules[1].1, 0b0101_1111_1111_0010);
    assert_eq!(r.fs_rules[2].1, (1 << 16) - 1);
    assert!(r.dropped.is_empty());
    // On ABI 2, write has no truncate and all has no truncate/ioctl_dev.
    let r = p.prepare(2).unwrap();
    assert_eq!(r.handled_fs, ABI1_FS | sys::ACCESS_FS_REFER);
    assert_eq!(r.fs_rules[1].1, 0b0001_1111_1111_0010);
    assert_eq!(r.fs_rules[2].1, r.handled_fs);
    assert!(r.dropped.is_empty(), "groups never count as missing");
}

#[test]
fn empty_fs_handles_no_fs_right() {
    let p = LandlockPolicy {
        net_bind: Some(vec![8080]),
        net_connect: Some(vec![443, 8080]),
        scope: vec!["signal".into()],
        ..Default::default()
    };
    let r = p.prepare(6).unwrap();
    assert_eq!(r.handled_fs, 0);
    assert_eq!(r.handled_net, sys::ACCESS_NET_BIND_TCP | sys::ACCESS_NET_CONNECT_TCP);
    assert_eq!(
        r.net_rules,
        [
            (443, sys::ACCESS_NET_CONNECT_TCP),
            (8080, sys::ACCESS_NET_BIND_TCP | sys::ACCESS_NET_CONNECT_TCP)
        ]
    );
    assert_eq!(r.scoped, sys::SCOPE_SIGNAL);
    // An empty list still handles the right: everything denied.
    let p = LandlockPolicy {
        net_connect: Some(vec![]),
        ..Default::default()
    };
    let r = p.prepare(4).unwrap();
    assert_eq!((r.handled_net, r.net_rules.len()), (sys::ACCESS_NET_CONNECT_TCP, 0));
    assert!(LandlockPolicy::default().prepare(7).unwrap().is_noop());
}

#[test]
fn best_effort_drops_what_the_abi_lacks() {
    let p = LandlockPolicy {
        fs: vec![rule("/dev", &["read_file", "ioctl_dev"]), rule("/r", &["refer"])],
        net_bind: Some(vec![80]),
        scope: vec!["abstract_unix_socket".into()],
        ..Default::default()
    };
    let r = p.prepare(1).unwrap();
    assert_eq!(r.handled_fs, ABI1_FS);
    assert_eq!(r.fs_rules, [(PathBuf::from("/dev"), sys::ACCESS_FS_READ_FILE)]);
    assert_eq!((r.handled_net, r.scoped), (0, 0));
    assert_eq!(
        r.dropped,
        [
            "fs[0].access right \"ioctl_dev\" needs Landlock ABI 5, the kernel has ABI 1",
            "fs[1].access right \"refer\" needs Landlock ABI 2, the kernel has ABI 1",
            "fs[1] (/r): no right left for this ABI, the path stays denied",
            "net_bind (TCP port rules) needs Landlock ABI 4, the kernel has ABI 1",
            "scope \"abstract_unix_socket\" needs Landlock ABI 6, the kernel has ABI 1",
        ]
    );
    let r = p.prepare(0).unwrap();
    assert!(r.is_noop());
    assert_eq!(
        r.dropped[0],
        "filesystem rules (fs) needs Landlock ABI 1, the kernel has ABI 0"
    );
    // Nothing dropped on a kernel that has it all.
    assert!(p.prepare(6).unwrap().dropped.is_empty());
}

#[test]
fn required_fails_naming_feature_and_abis() {
    let mut p = LandlockPolicy {
        compatibility: Compatibility::Required,
        fs: vec![rule("/", &["all"])],
        net_connect: Some(vec![443]),
        scope: vec!["signal".into()],
        ..Default::default()
    };
    assert_eq!(
        p.prepare(3).unwrap_err(),
        "net_connect (TCP port rules) needs Landlock ABI 4, the kernel has ABI 3"
    );
    assert_eq!(
        p.prepare(5).unwrap_err(),
        "scope \"signal\" needs Landlock ABI 6, the kernel has ABI 5"
    );
    assert_eq!(
        p.prepare(0).unwrap_err(),
        "filesystem rules (fs) needs Landlock ABI 1, the kernel has ABI 0"
    );
    let r = p.prepare(6).unwrap();
    assert_eq!(r.scoped, sys::SCOPE_SIGNAL);
    p.fs[0].access.push("truncate".into());
    assert_eq!(
        p.prepare(2).unwrap_err(),
        "fs[0].access right \"truncate\" needs Landlock ABI 3, the kernel has ABI 2"
    );
    // Invalid policies never prepare.
    p.fs[0].access.push("nope".into());
    assert!(p
        .prepare(7)
        .unwrap_err()
        .starts_with("fs[0].access: unknown right \"nope\""));
}

#[test]
fn config_form_round_trips_through_toml() {
    let text = "compatibility = \"required\"\nfs = [{ path = \"/bin\", access = [\"read\"] }]\n\
                net_bind = []\nscope = [\"signal\"]\n";
    let p: LandlockPolicy = toml::from_str(text).unwrap();
    assert_eq!(p.compatibility, Compatibility::Required);
    assert_eq!(p.net_bind, Some(vec![]));
    assert_eq!(p.net_connect, None);
    let back: LandlockPolicy = toml::from_str(&toml::to_string(&p).unwrap()).unwrap();
    assert_eq!(back, p);
    let prepared = p.prepare(7).unwrap();
    let json = serde_json::to_string(&prepared).unwrap();
    assert_eq!(serde_json::from_str::<PreparedLandlock>(&json).unwrap(), prepared);
}

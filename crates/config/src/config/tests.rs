//! Tests of config parsing, defaults and validation messages.

use std::path::Path;
use std::time::Duration;

use nix::sched::CloneFlags;
use oci_spec::runtime::LinuxSeccompAction;

use super::parse::parse;
use super::*;
use crate::field::{Field, Invalid};
use crate::landlock::Compatibility;

const EXAMPLE: &str = include_str!("../../config.example.toml");
const FILE: &str = "/etc/zygote/config.toml";

/// Parse as if from `/etc/zygote/config.toml` on a kernel with Landlock ABI 7.
fn load(text: &str) -> Result<Config, PolicyError> {
    parse(text, Some(Path::new(FILE)), 7)
}

fn err(text: &str) -> String {
    load(text).expect_err("config must be rejected").to_string()
}

#[test]
fn builtin_default_profile() {
    let c = Config::builtin();
    assert_eq!(c.source, None);
    assert_eq!(c.default_profile, "default");
    assert_eq!(c.profiles.len(), 1);
    let p = c.profile("default").unwrap();
    assert_eq!(p.mode, Mode::Namespace);
    assert_eq!(p.namespaces, [NsKind::Pid, NsKind::Uts, NsKind::Ipc, NsKind::Net]);
    assert_eq!(
        (p.pool.min, p.pool.initial, p.pool.max, p.pool.max_age),
        (0, 2, 8, Duration::from_secs(600))
    );
    assert_eq!(p.resources, ResourceDefaults::default());
    assert!(p.landlock.is_none() && p.seccomp.is_none());
}

#[test]
fn example_file_parses() {
    let c = load(EXAMPLE).unwrap();
    assert_eq!(c.source.as_deref(), Some(Path::new(FILE)));
    assert_eq!(c.profiles.keys().collect::<Vec<_>>(), ["default", "fast", "locked"]);
    assert_eq!(c.profile("default").unwrap(), &Profile::builtin());

    let fast = c.profile("fast").unwrap();
    assert_eq!(fast.namespaces.len(), 4);
    assert_eq!((fast.pool.min, fast.pool.initial, fast.pool.max), (2, 4, 16));
    assert_eq!(fast.pool.max_age, Duration::from_secs(300));
    assert_eq!(fast.resources.memory_limit_bytes, Some(536_870_912));
    assert_eq!(fast.resources.pids_limit, Some(1024));
    assert_eq!(fast.resources.cpu_shares, Some(1024));

    let locked = c.profile("locked").unwrap();
    assert_eq!(locked.pool, PoolBounds::default());
    let ll = locked.landlock.as_ref().unwrap();
    assert_eq!(ll.compatibility, Compatibility::BestEffort);
    assert_eq!(ll.fs.len(), 4);
    assert_eq!(ll.fs[2].path, Path::new("/tmp"));
    assert_eq!(ll.fs[2].access, ["read", "write"]);
    assert_eq!(ll.net_bind, Some(vec![8080]));
    assert_eq!(ll.net_connect, Some(vec![80, 443]));
    assert_eq!(ll.scope, ["abstract_unix_socket", "signal"]);
    let sc = locked.seccomp.as_ref().unwrap();
    assert_eq!(sc.mode, SeccompMode::Add);
    assert_eq!(sc.filter.default_action(), LinuxSeccompAction::ScmpActAllow);
    let rule = &sc.filter.syscalls().as_ref().unwrap()[0];
    assert_eq!(rule.names(), &["mkdir", "mkdirat"]);
    assert_eq!(rule.action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(rule.errno_ret(), Some(1));
    // Every landlock policy of the example negotiates on ABI 7 (the kernel
    // check is in zygote-runtime's landlock tests).
    ll.prepare(7).unwrap();
}

#[test]
fn empty_file_is_the_builtin_config() {
    let c = load("").unwrap();
    assert_eq!(c.default_profile, "default");
    assert_eq!(c.profiles, Config::builtin().profiles);
}

#[test]
fn builtin_default_is_added_and_can_be_overridden() {
    let c = load("[profiles.a]\n").unwrap();
    assert_eq!(c.profiles.keys().collect::<Vec<_>>(), ["a", "default"]);
    assert_eq!(c.profile("a").unwrap().pool, PoolBounds::default());
    let c = load("[profiles.default]\nmode = \"wasm\"\n[profiles.default.pool]\nmax = 3\ninitial = 1\n").unwrap();
    let d = c.profile("default").unwrap();
    assert_eq!(d.mode, Mode::Wasm);
    assert_eq!((d.pool.min, d.pool.initial, d.pool.max), (0, 1, 3));
}

#[test]
fn pool_errors_name_file_profile_and_field() {
    let e = err("[profiles.fast.pool]\ninitial = 9\nmax = 8\n");
    assert_eq!(
        e,
        "/etc/zygote/config.toml: profile \"fast\": pool.initial (9) is larger than pool.max (8)"
    );
    let e = err("[profiles.fast.pool]\nmin = 3\ninitial = 2\n");
    assert!(e.ends_with("pool.min (3) is larger than pool.initial (2)"), "{e}");
    let e = err("[profiles.fast.pool]\nmax = 257\ninitial = 2\n");
    assert!(e.ends_with("pool.max (257) is larger than 256"), "{e}");
    let e = err("[profiles.fast.pool]\nmax_age_secs = 0\n");
    assert!(e.contains("profile \"fast\": pool.max_age_secs (0) must be > 0"), "{e}");
    match load("[profiles.fast.pool]\ninitial = 9\n").unwrap_err() {
        PolicyError::InvalidProfile { profile, invalid, .. } => {
            assert_eq!((profile.as_str(), invalid.field()), ("fast", Field::PoolInitial));
            assert_eq!(invalid, Invalid::PoolInitialOverMax { initial: 9, max: 8 });
        }
        other => panic!("{other:?}"),
    }
    // Every kind of config error says its field as a type, not only in text.
    for (text, profile, field) in [
        ("[profiles.x.pool]\nmax = 300\n", Some("x"), Field::PoolMax),
        ("[profiles.x.pool]\nmin = 3\n", Some("x"), Field::PoolMin),
        (
            "[profiles.x.pool]\nmax_age_secs = 0\n",
            Some("x"),
            Field::PoolMaxAgeSecs,
        ),
        (
            "[profiles.x.resources]\npids_limit = 0\n",
            Some("x"),
            Field::ResourcesPidsLimit,
        ),
        (
            "[profiles.x.resources]\nmemory_limit_bytes = -5\n",
            Some("x"),
            Field::ResourcesMemoryLimitBytes,
        ),
        (
            "[profiles.x.resources]\ncpu_shares = 1\n",
            Some("x"),
            Field::ResourcesCpuShares,
        ),
        (
            "[profiles.x]\nnamespaces = [\"pid\", \"pid\"]\n",
            Some("x"),
            Field::Namespaces,
        ),
        ("[profiles.x.pool]\nplacement = []\n", Some("x"), Field::PoolPlacement),
        (
            "[profiles.x.pool]\nprefetch = [\"rel\"]\n",
            Some("x"),
            Field::PoolPrefetch,
        ),
        (
            "[profiles.x.landlock]\nscope = [\"nope\"]\n",
            Some("x"),
            Field::Landlock,
        ),
        ("[profiles.X]\n", Some("X"), Field::ProfileName),
        ("default_profile = \"nope\"\n", None, Field::DefaultProfile),
        ("[wasm]\ncache_dir = \"rel\"\n", None, Field::WasmCacheDir),
        ("[wasm]\ncache_max_mb = 0\n", None, Field::WasmCacheMaxMb),
        ("[metrics]\nlisten = \"localhost\"\n", None, Field::MetricsListen),
        ("[metrics]\nlisten = \"127.0.0.1:0\"\n", None, Field::MetricsListen),
        (
            "[metrics]\nenabled = false\nlisten = \"9464\"\n",
            None,
            Field::MetricsListen,
        ),
    ] {
        let e = load(text).unwrap_err();
        assert_eq!(e.field(), Some((profile, field)), "{text}: {e}");
        // The message starts with the field's key, after the profile.
        let after = profile.map_or(format!("{FILE}: "), |p| format!("{FILE}: profile \"{p}\": "));
        assert!(e.to_string().starts_with(&format!("{after}{field}")), "{e}");
    }
}

#[test]
fn syntax_errors_carry_file_line_and_column() {
    let e = err("default_profile = \"default\"\n[profiles.a]\nmode = 'x\n");
    assert!(
        e.starts_with("/etc/zygote/config.toml: line 3, column 10: profile \"a\": mode: "),
        "{e}"
    );
    let e = parse("a = = 1", None, 7).unwrap_err().to_string();
    assert!(e.starts_with("<config>: line 1, column 5"), "{e}");
}

#[test]
fn unknown_fields_are_reported_with_profile_and_position() {
    let e = err("[profiles.fast]\n[profiles.fast.pool]\nmni = 1\n");
    assert!(e.starts_with("/etc/zygote/config.toml: line 3, column 1"), "{e}");
    assert!(e.contains("profile \"fast\": pool.mni"), "{e}");
    assert!(e.contains("unknown field `mni`"), "{e}");
    let e = err("[profiles.x]\nresources = { memory_limit = 5 }\n");
    assert!(e.contains("line 2") && e.contains("profile \"x\": resources"), "{e}");
    assert!(e.contains("unknown field `memory_limit`"), "{e}");
    let e = err("defaultprofile = \"x\"\n");
    assert!(
        e.contains("line 1, column 1") && e.contains("unknown field `defaultprofile`"),
        "{e}"
    );
    let e = err("[profiles.x.pool]\nmin = \"two\"\n");
    assert!(
        e.contains("profile \"x\": pool.min") && e.contains("invalid type"),
        "{e}"
    );
    let e = err("[profiles.x]\nmode = \"vm\"\n");
    assert!(
        e.contains("profile \"x\": mode") && e.contains("unknown variant `vm`"),
        "{e}"
    );
}

#[test]
fn namespaces_are_checked() {
    let e = err("[profiles.x]\nnamespaces = [\"pid\", \"user\"]\n");
    assert!(e.contains("profile \"x\": namespaces"), "{e}");
    assert!(e.contains("\"user\" is not allowed"), "{e}");
    let e = err("[profiles.x]\nnamespaces = [\"mnt\"]\n");
    assert!(e.contains("unknown namespace \"mnt\""), "{e}");
    let e = err("[profiles.x]\nnamespaces = [\"pid\", \"net\", \"pid\"]\n");
    assert!(e.ends_with("profile \"x\": namespaces: \"pid\" is listed twice"), "{e}");
    let e = err("[profiles.x]\nnamespaces = [\"pid\", \"mount\"]\n");
    assert!(
        e.starts_with("/etc/zygote/config.toml: line 2, column 14: profile \"x\": namespaces: ")
            && e.contains("\"mount\" is not implemented"),
        "{e}"
    );
    let e = err("[profiles.x]\nnamespaces = [\"cgroup\"]\n");
    assert!(
        e.contains("profile \"x\": namespaces") && e.contains("\"cgroup\" is not implemented"),
        "{e}"
    );
    let c = load("[profiles.x]\nnamespaces = []\n").unwrap();
    assert!(c.profile("x").unwrap().namespaces.is_empty());
}

#[test]
fn clone_flags() {
    assert_eq!(NsKind::Pid.clone_flag(), CloneFlags::CLONE_NEWPID);
    assert_eq!(NsKind::Net.clone_flag(), CloneFlags::CLONE_NEWNET);
    assert_eq!(
        Profile::builtin().clone_flags(),
        CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNET
    );
}

#[test]
fn default_profile_and_names() {
    let e = err("default_profile = \"nope\"\n[profiles.a]\n");
    assert_eq!(
        e,
        "/etc/zygote/config.toml: default_profile: profile \"nope\" is not defined \
         (known profiles: a, default)"
    );
    let c = load("default_profile = \"a\"\n[profiles.a]\n").unwrap();
    assert_eq!(c.default_profile, "a");
    for bad in ["Fast", "-x", "\"a.b\"", "\"\"", &format!("a{}", "b".repeat(63))] {
        let e = err(&format!("[profiles.{bad}]\n"));
        assert!(e.contains("is not a valid profile name"), "{bad}: {e}");
    }
    load(&format!("[profiles.0{}]\n[profiles.a_b-c]\n", "z".repeat(62))).unwrap();
}

#[test]
fn resources_ranges() {
    let e = err("[profiles.x.resources]\nmemory_limit_bytes = 0\n");
    assert!(e.ends_with("resources.memory_limit_bytes (0) must be > 0"), "{e}");
    let e = err("[profiles.x.resources]\npids_limit = -1\n");
    assert!(e.ends_with("resources.pids_limit (-1) must be > 0"), "{e}");
    let e = err("[profiles.x.resources]\ncpu_shares = 1\n");
    assert!(e.ends_with("resources.cpu_shares (1) must be in 2..=262144"), "{e}");
    load("[profiles.x.resources]\ncpu_shares = 262144\n").unwrap();
}

#[test]
fn warm_up_keys_belong_to_the_pool_table() {
    // `placement` and `prefetch` are pool keys (config/placement.rs); at the
    // profile's level they are unknown, not silently taken.
    let e = err("[profiles.x.placement]\ncpus = \"0-1\"\n");
    assert!(e.contains("profile \"x\": placement"), "{e}");
    assert!(e.contains("unknown field `placement`"), "{e}");
    let e = err("[profiles.x]\nprefetch = [\"/a\"]\n");
    assert!(e.contains("unknown field `prefetch`"), "{e}");
}

#[test]
fn landlock_is_validated_at_load() {
    let e = err("[profiles.x.landlock]\nfs = [{ path = \"/a\", access = [\"read\"] }, { path = \"/b\", access = [\"wrte\"] }]\n");
    assert!(
        e.contains("profile \"x\": landlock.fs[1].access: unknown right \"wrte\""),
        "{e}"
    );
    let e = err("[profiles.x.landlock]\nfs = [{ path = \"b\", access = [\"read\"] }]\n");
    assert!(e.contains("landlock.fs[0].path"), "{e}");
    let e = err("[profiles.x.landlock]\nnet_bind = [80, 0]\n");
    assert!(e.contains("landlock.net_bind[1]: port 0"), "{e}");
    let e = err("[profiles.x.landlock]\nnet_bind = [70000]\n");
    assert!(e.contains("profile \"x\": landlock") && e.contains("70000"), "{e}");
    let e = err("[profiles.x.landlock]\nscope = [\"signals\"]\n");
    assert!(e.contains("landlock.scope[0]: unknown scope \"signals\""), "{e}");
    let e = err("[profiles.x.landlock]\nfs = [{ path = \"/a\", acess = [\"read\"] }]\n");
    assert!(e.contains("unknown field `acess`"), "{e}");
}

#[test]
fn required_landlock_is_checked_against_the_kernel_abi() {
    let text = "[profiles.x.landlock]\ncompatibility = \"required\"\n\
                fs = [{ path = \"/dev\", access = [\"read\", \"ioctl_dev\"] }]\n";
    let e = parse(text, Some(Path::new(FILE)), 4).unwrap_err().to_string();
    assert_eq!(
        e,
        "/etc/zygote/config.toml: profile \"x\": landlock.compatibility: \"required\", but \
         fs[0].access right \"ioctl_dev\" needs Landlock ABI 5, the kernel has ABI 4"
    );
    parse(text, Some(Path::new(FILE)), 5).unwrap();
    let best = text.replace("required", "best_effort");
    parse(&best, Some(Path::new(FILE)), 1).unwrap();
    // On ABI 7 the check passes for every feature (against the running
    // kernel: zygote-runtime's landlock tests).
    let all = "[profiles.x.landlock]\ncompatibility = \"required\"\n\
               fs = [{ path = \"/\", access = [\"all\", \"refer\", \"ioctl_dev\"] }]\n\
               net_bind = []\nnet_connect = [443]\nscope = [\"signal\", \"abstract_unix_socket\"]\n";
    Config::from_toml(all, None, 7).unwrap();
}

#[test]
fn seccomp_is_validated_at_load() {
    let e = err("[profiles.x.seccomp]\nfilter = { syscalls = [] }\n");
    assert!(
        e.contains("profile \"x\": seccomp") && e.contains("defaultAction"),
        "{e}"
    );
    let e = err("[profiles.x.seccomp]\nfilter = { defaultAction = \"SCMP_ACT_ALLOW\", syscall = [] }\n");
    assert!(e.contains("unknown field `filter.syscall`"), "{e}");
    let e = err("[profiles.x.seccomp]\nfilter = { defaultAction = \"SCMP_ACT_ALLOW\", syscalls = [{ names = [\"a\"], action = \"SCMP_ACT_KILL\", errno = 1 }] }\n");
    assert!(e.contains("unknown field `filter.syscalls[0].errno`"), "{e}");
    let e = err("[profiles.x.seccomp]\nfilter = { defaultAction = \"SCMP_ACT_ALLOW\", syscalls = [{ names = [], action = \"SCMP_ACT_KILL\" }] }\n");
    assert!(
        e.ends_with("profile \"x\": seccomp.filter.syscalls[0].names: empty"),
        "{e}"
    );
    let e = err("[profiles.x.seccomp]\nmode = \"stack\"\nfilter = { defaultAction = \"SCMP_ACT_ALLOW\" }\n");
    assert!(e.contains("unknown variant `stack`"), "{e}");
    let c = load("[profiles.x.seccomp]\nmode = \"replace\"\nfilter = { defaultAction = \"SCMP_ACT_ERRNO\", defaultErrnoRet = 38 }\n").unwrap();
    let sc = c.profile("x").unwrap().seccomp.as_ref().unwrap();
    assert_eq!(sc.mode, SeccompMode::Replace);
    assert_eq!(sc.filter.default_errno_ret(), Some(38));
}

#[test]
fn metrics_section_defaults_disables_and_refuses_unknown_keys() {
    let c = load("").unwrap();
    assert_eq!(c.metrics.address(), Some("127.0.0.1:9464".parse().unwrap()));
    let c = load("[metrics]\nlisten = \"[::1]:9100\"\n").unwrap();
    assert_eq!(c.metrics.address(), Some("[::1]:9100".parse().unwrap()));
    let c = load("[metrics]\nenabled = false\n").unwrap();
    assert_eq!(c.metrics.address(), None);
    assert_eq!(load(EXAMPLE).unwrap().metrics, MetricsNode::default());
    let e = load("[metrics]\nport = 9100\n").unwrap_err().to_string();
    assert!(e.starts_with(FILE) && e.contains("unknown field `port`"), "{e}");
    let e = load("[metrics]\nlisten = \"localhost:9100\"\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!("{FILE}: metrics.listen: \"localhost:9100\" is not an ip:port (e.g. \"127.0.0.1:9464\")")
    );
}

#[test]
fn pool_sizing_keys_load_and_are_validated() {
    let c = load("[profiles.p.pool]\npolicy = \"forecast\"\nhorizon_secs = 2.5\nscale_up_at = 1.5\n").unwrap();
    let p = &c.profile("p").unwrap().pool;
    assert_eq!(
        (p.policy, p.horizon_secs, p.scale_up_at),
        (crate::PoolPolicy::Forecast, 2.5, 1.5)
    );
    assert_eq!(PoolBounds::default().policy, crate::PoolPolicy::RecentClaims);
    let e = err("[profiles.p.pool]\nscale_down_at = 1.3\n");
    assert_eq!(
        e,
        "/etc/zygote/config.toml: profile \"p\": pool.scale_down_at (1.3) must be > 0 and below pool.scale_up_at"
    );
    let e = err("[profiles.p.pool]\ncpu_pressure_threshold = 0\n");
    assert!(
        e.ends_with("pool.cpu_pressure_threshold (0) must be a percentage in (0, 100]"),
        "{e}"
    );
    let e = err("[profiles.p.pool]\nhorizon_secs = -1\n");
    assert!(e.ends_with("pool.horizon_secs (-1) must be in (0, 3600]"), "{e}");
    let e = err("[profiles.p.pool]\npolicy = \"magic\"\n");
    assert!(e.contains("magic"), "{e}");
    let e = err("[profiles.p.pool]\nscale_up = 2\n");
    assert!(e.contains("unknown field `scale_up`"), "{e}");
}

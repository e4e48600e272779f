//! The warm path of the container-init sequence: a zygote cloned into fresh
//! namespaces before its task exists, then handed the task. Same real
//! namespaces, mounts, cgroups and busybox rootfs as `container_init.rs`;
//! root required.

mod common;

use common::{isolated, TestContainer};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, LinuxSeccomp, Spec};
use zygote_config::{Compatibility, FsRule, LandlockPolicy};

const PRE: CloneFlags = CloneFlags::CLONE_NEWPID
    .union(CloneFlags::CLONE_NEWUTS)
    .union(CloneFlags::CLONE_NEWIPC)
    .union(CloneFlags::CLONE_NEWNET);

fn without_ns(spec: &mut Spec, typ: LinuxNamespaceType) {
    let mut linux = spec.linux().clone().unwrap();
    let ns: Vec<_> = linux
        .namespaces()
        .clone()
        .unwrap()
        .into_iter()
        .filter(|n| n.typ() != typ)
        .collect();
    linux.set_namespaces(Some(ns));
    spec.set_linux(Some(linux));
}

#[test]
fn warm_container_runs_in_its_own_namespaces() {
    let out = isolated("warm_container_runs_in_its_own_namespaces", |tmp| {
        TestContainer::new(
            tmp,
            "warm",
            &[
                "sh",
                "-c",
                "echo $$ $(hostname); ls /proc/1/ns/net >/dev/null && echo ok",
            ],
            |s| {
                s.set_hostname(Some("warmhost".into()));
            },
        )
        .run_warm(PRE)
    });
    assert_eq!(out.create_error, None);
    assert_eq!(out.start_error, None);
    assert_eq!(out.stdout, "1 warmhost\nok\n", "stderr: {}", out.stderr);
    assert_eq!(out.status, 0);
    assert!(out.leftover_procs.is_empty(), "{:?}", out.leftover_procs);
    eprintln!("warm serve to ready: {}µs", out.notes["create_us"]);
}

#[test]
fn warm_zygote_leaves_namespaces_the_spec_does_not_want() {
    // The zygote has a network namespace; the spec wants the host's.
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    let out = isolated("warm_zygote_leaves_namespaces_the_spec_does_not_want", |tmp| {
        TestContainer::new(tmp, "hostnet", &["readlink", "/proc/self/ns/net"], |s| {
            without_ns(s, LinuxNamespaceType::Network)
        })
        .run_warm(PRE)
    });
    assert_eq!(out.create_error, None);
    assert_eq!(out.stdout.trim(), host_net.to_string_lossy(), "stderr: {}", out.stderr);
}

#[test]
fn warm_zygote_refuses_a_host_pid_spec() {
    let out = isolated("warm_zygote_refuses_a_host_pid_spec", |tmp| {
        TestContainer::new(tmp, "hostpid", &["true"], |s| without_ns(s, LinuxNamespaceType::Pid)).run_warm(PRE)
    });
    let err = out
        .create_error
        .expect("a zygote with its own pid namespace cannot serve a host-pid spec");
    assert!(err.contains("host_pid_namespace"), "{err}");
    assert!(out.leftover_procs.is_empty(), "{:?}", out.leftover_procs);
}

/// A container under a Landlock policy (read+exec /bin, read+write /tmp and
/// /dev, nothing else) and a profile seccomp filter denying mkdir.
fn locked(tmp: &std::path::Path, warm: bool) -> common::Outcome {
    let landlock = LandlockPolicy {
        compatibility: Compatibility::BestEffort,
        fs: vec![
            FsRule {
                path: "/bin".into(),
                access: vec!["read".into(), "execute".into()],
            },
            FsRule {
                path: "/tmp".into(),
                access: vec!["read".into(), "write".into()],
            },
            FsRule {
                path: "/dev".into(),
                access: vec!["read".into(), "write".into()],
            },
        ],
        net_bind: None,
        net_connect: None,
        scope: vec![],
    };
    let prepared = landlock
        .prepare(zygote_runtime::landlock::abi_version())
        .expect("prepare landlock");
    let deny_mkdir: LinuxSeccomp = serde_json::from_value(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }]
    }))
    .unwrap();
    let script = "cat /etc/hostname >/dev/null 2>&1 || echo read-denied; echo x > /tmp/f && echo write-ok; mkdir /tmp/d 2>&1; echo mkdir=$?";
    let mut c = TestContainer::new(tmp, "locked", &["sh", "-c", script], |_| {});
    c.cfg.security.landlock = Some(prepared);
    c.cfg.security.seccomp = Some(zygote_runtime::seccomp::compile(&deny_mkdir).unwrap());
    if warm {
        c.run_warm(PRE)
    } else {
        c.run()
    }
}

fn check_locked(out: common::Outcome, warm: bool) {
    assert_eq!(out.create_error, None, "warm={warm}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "warm={warm}: {:?} / {}", lines, out.stderr);
    assert_eq!(lines[0], "read-denied", "warm={warm}");
    assert_eq!(lines[1], "write-ok", "warm={warm}");
    assert!(
        lines[2].contains("Operation not permitted"),
        "warm={warm}: {}",
        lines[2]
    );
    assert_eq!(lines[3], "mkdir=1", "warm={warm}");
}

#[test]
fn landlock_and_profile_seccomp_enforced_warm() {
    let out = isolated("landlock_and_profile_seccomp_enforced_warm", |t| locked(t, true));
    assert!(
        out.notes["security_us"].parse::<u64>().unwrap() > 0,
        "security time is measured"
    );
    check_locked(out, true);
}

#[test]
fn landlock_and_profile_seccomp_enforced_cold() {
    check_locked(
        isolated("landlock_and_profile_seccomp_enforced_cold", |t| locked(t, false)),
        false,
    );
}

#[test]
fn a_dead_zygote_fails_the_claim_cleanly() {
    let out = isolated("a_dead_zygote_fails_the_claim_cleanly", |tmp| {
        let c = TestContainer::new(tmp, "dead", &["true"], |_| {});
        c.cfg.spec.save(c.cfg.bundle.join("config.json")).unwrap();
        let z = zygote_runtime::zygote::Zygote::spawn(PRE, None).unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(z.pid()), nix::sys::signal::Signal::SIGKILL).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!z.alive(), "a SIGKILLed zygote is not alive");
        let task = zygote_runtime::zygote::ZygoteTask {
            id: "dead".into(),
            bundle: c.cfg.bundle.clone(),
            rootfs: c.cfg.rootfs.clone(),
            terminal: false,
            security: Default::default(),
            guest: None,
        };
        let stdio = zygote_runtime::container::Stdio::Fds {
            stdin: None,
            stdout: None,
            stderr: None,
        };
        let mut o = common::Outcome::default();
        if let Err(e) = z.serve(&task, stdio, |_| Ok(())) {
            o.create_error = Some(e.to_string());
        }
        c.finish(&mut o);
        o
    });
    assert!(out.create_error.is_some(), "serving a dead zygote must fail");
    assert!(out.leftover_procs.is_empty());
}

//! Landlock enforcement tests: a real ruleset is applied and then probed.
//!
//! `landlock_restrict_self` restricts the calling thread for good, so a
//! scenario must not run inside the shared `cargo test` process. Each test
//! re-executes the test binary with only itself selected (`support/rerun.rs`,
//! the harness shared by every test of this crate); in that fresh process
//! the scenario applies the ruleset on its own thread (Landlock applies per
//! thread, so the probes that follow on the same thread
//! see it), probes, and prints a marker that the outer test requires, so a
//! child that ran nothing cannot pass. No root needed: the scenario sets
//! no_new_privs first, as the container init does.

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::getppid;
use zygote_config::{Compatibility, FsRule, LandlockPolicy};
use zygote_runtime::landlock::{abi_version, apply as enforce};

#[path = "support/rerun.rs"]
mod rerun;

const MARKER: &str = "ZYGOTE-POLICY-SCENARIO-DONE:";

/// Run `body` in a re-executed test process (see the module docs).
fn isolated(name: &str, body: fn(&Path)) {
    if rerun::is_child(name) {
        nix::sys::prctl::set_no_new_privs().expect("PR_SET_NO_NEW_PRIVS");
        body(&rerun::child_tmp());
        println!("{MARKER}{name}");
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("zygote-landlock-")
        .tempdir()
        .expect("create temp dir");
    let out = rerun::rerun(name, name, tmp.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("{MARKER}{name}")),
        "scenario {name} failed: {}",
        rerun::describe(&out)
    );
}

fn errno_of(e: &std::io::Error) -> Option<Errno> {
    e.raw_os_error().map(Errno::from_raw)
}

fn fs_rule(path: &Path, access: &[&str]) -> FsRule {
    FsRule {
        path: path.to_path_buf(),
        access: access.iter().map(|s| s.to_string()).collect(),
    }
}

/// Apply `policy` negotiated with the running kernel; returns the warnings.
fn apply(policy: &LandlockPolicy) -> Vec<String> {
    let abi = abi_version();
    assert!(abi >= 1, "Landlock must be enabled on this machine");
    let prepared = policy.prepare(abi).expect("prepare");
    assert!(prepared.dropped.is_empty(), "{:?}", prepared.dropped);
    enforce(&prepared).expect("apply")
}

#[test]
fn fs_read_only_beneath_one_directory() {
    isolated("fs_read_only_beneath_one_directory", |tmp| {
        let inside = tmp.join("inside");
        let outside = tmp.join("outside");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(inside.join("a.txt"), "a").unwrap();
        std::fs::write(outside.join("secret.txt"), "s").unwrap();
        std::fs::write(outside.join("single.txt"), "1").unwrap();
        // Control: everything is readable before the ruleset.
        std::fs::read(outside.join("secret.txt")).expect("readable before landlock");

        let policy = LandlockPolicy {
            compatibility: Compatibility::Required,
            fs: vec![
                fs_rule(&inside, &["read"]),
                // A file: `read` (read_file + read_dir) is masked to read_file;
                // unmasked, the kernel would reject the rule with EINVAL.
                fs_rule(&outside.join("single.txt"), &["read"]),
                fs_rule(&tmp.join("does-not-exist"), &["read"]),
            ],
            ..Default::default()
        };
        let warnings = apply(&policy);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("does-not-exist does not exist, rule skipped"));

        assert_eq!(std::fs::read_to_string(inside.join("a.txt")).unwrap(), "a");
        assert_eq!(std::fs::read_dir(&inside).unwrap().count(), 1);
        assert_eq!(std::fs::read_to_string(outside.join("single.txt")).unwrap(), "1");
        let e = std::fs::File::open(outside.join("secret.txt")).unwrap_err();
        assert_eq!(errno_of(&e), Some(Errno::EACCES), "{e}");
        let e = std::fs::write(inside.join("new.txt"), "x").unwrap_err();
        assert_eq!(errno_of(&e), Some(Errno::EACCES), "{e}");
        let e = std::fs::read_dir(&outside).unwrap_err();
        assert_eq!(errno_of(&e), Some(Errno::EACCES), "{e}");
    });
}

#[test]
fn net_connect_denied_by_empty_list() {
    isolated("net_connect_denied_by_empty_list", |_| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        TcpStream::connect(addr).expect("connect works before landlock");

        apply(&LandlockPolicy {
            compatibility: Compatibility::Required,
            net_connect: Some(vec![]),
            ..Default::default()
        });
        let e = TcpStream::connect(addr).unwrap_err();
        assert_eq!(errno_of(&e), Some(Errno::EACCES), "{e}");
        // The filesystem is not restricted by a net-only policy.
        std::fs::read("/proc/self/status").expect("fs not handled");
    });
}

#[test]
fn net_connect_allows_listed_ports_only() {
    isolated("net_connect_allows_listed_ports_only", |_| {
        let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = allowed.local_addr().unwrap().port();

        apply(&LandlockPolicy {
            net_connect: Some(vec![port]),
            net_bind: Some(vec![]),
            ..Default::default()
        });
        TcpStream::connect(allowed.local_addr().unwrap()).expect("listed port");
        let e = TcpStream::connect(other.local_addr().unwrap()).unwrap_err();
        assert_eq!(errno_of(&e), Some(Errno::EACCES), "{e}");
        let e = TcpListener::bind("127.0.0.1:0").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "bind denied: {e}");
    });
}

#[test]
fn signal_scope_blocks_signals_to_the_parent() {
    isolated("signal_scope_blocks_signals_to_the_parent", |_| {
        let parent = getppid();
        kill(parent, None).expect("signal 0 to the parent before landlock");
        apply(&LandlockPolicy {
            compatibility: Compatibility::Required,
            scope: vec!["signal".into()],
            ..Default::default()
        });
        assert_eq!(kill(parent, None), Err(Errno::EPERM));
    });
}

#[test]
fn abi_zero_is_a_noop_with_a_warning() {
    isolated("abi_zero_is_a_noop_with_a_warning", |tmp| {
        let policy = LandlockPolicy {
            fs: vec![fs_rule(&tmp.join("none"), &["read"])],
            net_connect: Some(vec![]),
            ..Default::default()
        };
        let prepared = policy.prepare(0).unwrap();
        let warnings = enforce(&prepared).unwrap();
        assert!(
            warnings[0].contains("not supported by this kernel (ABI 0)"),
            "{warnings:?}"
        );
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        std::fs::read("/proc/self/status").expect("nothing restricted");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        TcpStream::connect(listener.local_addr().unwrap()).expect("nothing restricted");
    });
}

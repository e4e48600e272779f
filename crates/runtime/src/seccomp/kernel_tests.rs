//! Enforcement by the real kernel. Each test re-executes the test binary,
//! running only itself (`crate::test_rerun`); in that
//! child the filter is installed on the test thread, syscalls are tried, and
//! the result is reported through the exit code (0 = all checks passed).
//! No root needed: the child sets no_new_privs.

use std::ffi::CString;
use std::os::unix::process::ExitStatusExt;

use serde_json::json;

use super::tests::profile;
use super::*;

use crate::test_rerun::{describe, is_child as in_child, rerun};

/// Re-run test `name` of this module alone in a child (see
/// `tests/support/rerun.rs`) and return how it ended.
fn spawn_self(name: &str, extra_env: &[(&str, &str)]) -> std::process::ExitStatus {
    let module = module_path!().split_once("::").map(|(_, m)| m).unwrap_or("");
    let tmp = tempfile::tempdir().expect("create temp dir");
    let out = rerun(&format!("{module}::{name}"), name, tmp.path(), extra_env);
    if !out.status.success() {
        eprintln!("child {name}: {}", describe(&out));
    }
    out.status
}

/// Child-side helpers: no allocation after the filter is installed.
fn child_prepare() {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

fn child_exit(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// A two-argument raw syscall.
fn raw(nr: i64, args: [i64; 2]) -> i64 {
    // SAFETY: the callers pass either plain integers or pointers to live,
    // correctly sized buffers / NUL-terminated strings for `nr`.
    unsafe { libc::syscall(nr, args[0], args[1]) }
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[test]
fn kernel_allow_default_denies_mkdir() {
    const NAME: &str = "kernel_allow_default_denies_mkdir";
    if in_child(NAME) {
        child_prepare();
        let path = CString::new(std::env::var("ZYGOTE_TEST_DIR").unwrap() + "/denied").unwrap();
        let devnull = CString::new("/dev/null").unwrap();
        let c = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
        })))
        .unwrap();
        c.apply().unwrap_or_else(|_| child_exit(2));
        // SAFETY: raw syscalls with valid NUL-terminated paths.
        let rc = unsafe { libc::syscall(libc::SYS_mkdir, path.as_ptr(), 0o755) };
        if rc != -1 || last_errno() != libc::EPERM {
            child_exit(3);
        }
        // SAFETY: as above.
        let rc = unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, path.as_ptr(), 0o755) };
        if rc != -1 || last_errno() != libc::EPERM {
            child_exit(4);
        }
        // SAFETY: as above.
        let fd = unsafe { libc::open(devnull.as_ptr(), libc::O_RDONLY) };
        // SAFETY: no arguments.
        if fd < 0 || unsafe { libc::getppid() } <= 0 {
            child_exit(5);
        }
        child_exit(0);
    }
    let dir = tempfile::tempdir().unwrap();
    let status = spawn_self(NAME, &[("ZYGOTE_TEST_DIR", dir.path().to_str().unwrap())]);
    assert_eq!(status.code(), Some(0), "child failed: {status:?}");
    assert!(!dir.path().join("denied").exists());
}

#[test]
fn kernel_deny_default_with_allow_list_and_args() {
    const NAME: &str = "kernel_deny_default_with_allow_list_and_args";
    if in_child(NAME) {
        child_prepare();
        let path = CString::new(std::env::var("ZYGOTE_TEST_DIR").unwrap() + "/denied").unwrap();
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() } as u64;
        let c = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": libc::EACCES,
            "syscalls": [
                {"names": ["exit_group", "exit", "getppid", "write", "rt_sigreturn"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS},
                {"names": ["getpgid"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["umask"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0o7000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": me, "op": "SCMP_CMP_EQ"},
                          {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}
            ]
        })))
        .unwrap();
        let mut uts = std::mem::MaybeUninit::<libc::utsname>::uninit();
        c.apply().unwrap_or_else(|_| child_exit(2));
        let check = |ok: bool, code: i32| {
            if !ok {
                child_exit(code)
            }
        };
        let denied = |rc: i64, e: i32| rc == -1 && last_errno() == e;
        check(
            denied(raw(libc::SYS_mkdir, [path.as_ptr() as i64, 0o755]), libc::EACCES),
            3,
        );
        check(raw(libc::SYS_getppid, [0, 0]) > 0, 4);
        check(
            denied(raw(libc::SYS_uname, [uts.as_mut_ptr() as i64, 0]), libc::ENOSYS),
            5,
        );
        check(raw(libc::SYS_getpgid, [0, 0]) >= 0, 6);
        check(denied(raw(libc::SYS_getpgid, [1, 0]), libc::EACCES), 7);
        check(denied(raw(libc::SYS_umask, [0o4022, 0]), libc::EACCES), 8);
        raw(libc::SYS_umask, [0o022, 0]);
        check(raw(libc::SYS_umask, [0o022, 0]) == 0o022, 9);
        check(raw(libc::SYS_kill, [me as i64, 0]) == 0, 10);
        check(
            denied(raw(libc::SYS_kill, [me as i64, libc::SIGCONT as i64]), libc::EACCES),
            11,
        );
        child_exit(0);
    }
    let dir = tempfile::tempdir().unwrap();
    let status = spawn_self(NAME, &[("ZYGOTE_TEST_DIR", dir.path().to_str().unwrap())]);
    assert_eq!(status.code(), Some(0), "child failed: {status:?}");
    assert!(!dir.path().join("denied").exists());
}

#[test]
fn kernel_kill_process_action() {
    const NAME: &str = "kernel_kill_process_action";
    if in_child(NAME) {
        child_prepare();
        let c = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]
        })))
        .unwrap();
        c.apply().unwrap_or_else(|_| child_exit(2));
        // SAFETY: no arguments; the filter kills us here.
        unsafe { libc::getppid() };
        child_exit(3);
    }
    let status = spawn_self(NAME, &[]);
    assert_eq!(
        status.signal(),
        Some(libc::SIGSYS),
        "child not killed by SIGSYS: {status:?}"
    );
}

#[test]
fn kernel_tsync_covers_other_threads() {
    const NAME: &str = "kernel_tsync_covers_other_threads";
    if in_child(NAME) {
        child_prepare();
        let path = CString::new(std::env::var("ZYGOTE_TEST_DIR").unwrap() + "/denied").unwrap();
        let c = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
        })))
        .unwrap();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            go_rx.recv().unwrap();
            // SAFETY: raw syscall with a valid path.
            let rc = unsafe { libc::syscall(libc::SYS_mkdir, path.as_ptr(), 0o755) };
            rc == -1 && last_errno() == libc::EPERM
        });
        c.apply().unwrap_or_else(|_| child_exit(2));
        go_tx.send(()).unwrap();
        child_exit(if other.join().unwrap() { 0 } else { 3 });
    }
    let dir = tempfile::tempdir().unwrap();
    let status = spawn_self(NAME, &[("ZYGOTE_TEST_DIR", dir.path().to_str().unwrap())]);
    assert_eq!(status.code(), Some(0), "child failed: {status:?}");
    assert!(!dir.path().join("denied").exists());
}

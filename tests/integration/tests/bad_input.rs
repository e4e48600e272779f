//! Bad input: ctr must fail with a clear message, and afterwards nothing may
//! be left for the container (mounts, cgroups, processes, FIFOs, sockets,
//! state directories, the container record).
//!
//! ctr 1.6 prints "ctr: failed to create shim task: <runtime's error>" when
//! the runtime refuses a task at Create; both runtimes must fail there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use zygote_integration_tests::*;

/// What a failed `ctr run --rm` looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    /// ctr exited non-zero (and did not hang).
    failed: bool,
    /// the message contains the expected word (case-insensitive).
    mentions: bool,
    /// the failure happened at task creation ("failed to create shim task").
    at_create: bool,
}

fn observe(out: &Output, word: &str) -> Failure {
    eprintln!("{}", out.describe());
    Failure {
        failed: !out.timed_out && out.code.is_some_and(|c| c != 0),
        mentions: out.stderr.to_lowercase().contains(&word.to_lowercase()),
        at_create: out.stderr.contains("failed to create shim task"),
    }
}

fn nothing_left(id: &str) {
    assert_no_leftovers(id);
    let ctr = Ctr::new();
    assert!(ctr.task(id).is_none(), "task {id} still listed");
    let ls = ctr.run(&["container", "ls", "-q"]);
    assert!(
        !ls.stdout.lines().any(|l| l.trim() == id),
        "container {id} still listed"
    );
}

const CREATE_ERROR: Failure = Failure {
    failed: true,
    mentions: true,
    at_create: true,
};

/// Runs `ctr run --rm --config <spec>` with a spec edited by `edit`.
fn run_config(
    rt: Runtime,
    test: &str,
    args: &[&str],
    word: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> Failure {
    let c = Container::new(test, rt);
    let b = ConfigBundle::new(c.id(), args, edit);
    let out = Ctr::new().run_config(rt, &b, c.id());
    let f = observe(&out, word);
    nothing_left(c.id());
    f
}

#[test]
fn spec_relative_cwd() {
    both_expect("relative process.cwd", CREATE_ERROR, |rt| {
        run_config(rt, "bad-cwd", &["true"], "cwd", |s| {
            s["process"]["cwd"] = serde_json::json!("relative/dir")
        })
    });
}

#[test]
fn spec_empty_args() {
    both_expect("empty process.args", CREATE_ERROR, |rt| {
        run_config(rt, "bad-args", &[], "args", |_| {})
    });
}

#[test]
fn spec_unknown_namespace_type() {
    both_expect("unknown namespace type", CREATE_ERROR, |rt| {
        run_config(rt, "bad-ns", &["true"], "bogus", |s| {
            s["linux"]["namespaces"]
                .as_array_mut()
                .expect("namespaces")
                .push(serde_json::json!({ "type": "bogus" }));
        })
    });
}

#[test]
fn spec_without_process() {
    both_expect("spec without process", CREATE_ERROR, |rt| {
        run_config(rt, "bad-noproc", &["true"], "process", |s| {
            s.as_object_mut().expect("object").remove("process");
        })
    });
}

/// Syntactically broken JSON never reaches a runtime: ctr refuses to decode
/// it.  Kept to pin that behaviour (identical for both runtimes).
#[test]
fn spec_malformed_json() {
    let expected = Failure {
        failed: true,
        mentions: true,
        at_create: false,
    };
    both_expect("malformed config.json", expected, |rt| {
        let c = Container::new("bad-json", rt);
        let path = env().containerd_dir.join(format!("{}.json", c.id()));
        std::fs::write(&path, b"{\"ociVersion\": \"1.0.2\", \"process\": {").expect("write");
        let out = Ctr::new().run(&[
            "run",
            "--rm",
            "--runtime",
            rt.name(),
            "--config",
            &path.to_string_lossy(),
            c.id(),
        ]);
        let _ = std::fs::remove_file(&path);
        let f = observe(&out, "decoding spec");
        nothing_left(c.id());
        f
    });
}

#[test]
fn missing_rootfs() {
    both_expect("missing rootfs", CREATE_ERROR, |rt| {
        run_config(rt, "no-rootfs", &["true"], "zt-no-such-rootfs", |s| {
            s["root"]["path"] = serde_json::json!("/var/tmp/zt-no-such-rootfs/rootfs");
        })
    });
}

#[test]
fn missing_executable_absolute() {
    both_expect("missing executable (absolute)", CREATE_ERROR, |rt| {
        let c = Container::new("no-exe", rt);
        let out = Ctr::new().run_rm(rt, c.id(), &[], &["/bin/zt-no-such-binary"]);
        let f = observe(&out, "zt-no-such-binary");
        nothing_left(c.id());
        f
    });
}

#[test]
fn missing_executable_in_path() {
    both_expect("missing executable ($PATH)", CREATE_ERROR, |rt| {
        let c = Container::new("no-exe-path", rt);
        let out = Ctr::new().run_rm(rt, c.id(), &[], &["zt-no-such-binary"]);
        let f = observe(&out, "zt-no-such-binary");
        nothing_left(c.id());
        f
    });
}

#[test]
fn not_executable() {
    both_expect("non-executable file", CREATE_ERROR, |rt| {
        let c = Container::new("no-x", rt);
        let out = Ctr::new().run_rm(rt, c.id(), &[], &["/etc/passwd"]);
        let f = observe(&out, "permission denied");
        nothing_left(c.id());
        f
    });
}

/// A cgroup path below a file (`cgroup.procs`) cannot be created.
/// (runc accepts odd-looking paths such as "a::b" or "relative/x" as plain
/// cgroupfs paths, so those are not "invalid".)
#[test]
fn invalid_cgroup_path() {
    both_expect("invalid cgroup path", CREATE_ERROR, |rt| {
        let c = Container::new("bad-cg", rt);
        let cg = format!("/cgroup.procs/{}", c.id());
        let out = Ctr::new().run_rm(rt, c.id(), &["--cgroup", &cg], &["true"]);
        let f = observe(&out, "cgroup");
        nothing_left(c.id());
        f
    });
}

/// After all those failures the runtime still works.
#[test]
fn still_works_after_failures() {
    both_expect("run after failures", (0, "ok\n".to_string()), |rt| {
        let ctr = Ctr::new();
        for i in 0..3 {
            let c = Container::new(&format!("fail-{i}"), rt);
            ctr.run_rm(rt, c.id(), &[], &["/bin/zt-no-such-binary"])
                .assert_failure();
        }
        let c = Container::new("after-fail", rt);
        let out = ctr
            .with_timeout(Duration::from_secs(60))
            .run_rm(rt, c.id(), &[], &["echo", "ok"]);
        (out.code(), out.stdout)
    });
}

/// What a zygote-only bad-input run looked like (with more detail than
/// [`Failure`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    /// ctr was still running when the test's (short) timeout hit.
    timed_out: bool,
    failed: bool,
    at_create: bool,
    /// Every expected piece of the message was there (see `missing`).
    mentions_all: bool,
}

/// `s` cut to about `max` bytes for the test's own report.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

fn refusal(out: &Output, words: &[&str]) -> Refusal {
    let mut shown = out.clone();
    shown.cmdline = cut(&out.cmdline, 512);
    shown.stderr = cut(&out.stderr, 2048);
    eprintln!("{}", shown.describe());
    let missing: Vec<&&str> = words.iter().filter(|w| !out.stderr.contains(**w)).collect();
    if !missing.is_empty() {
        eprintln!("message lacks {missing:?}");
    }
    Refusal {
        timed_out: out.timed_out,
        failed: !out.timed_out && out.code.is_some_and(|c| c != 0),
        at_create: out.stderr.contains("failed to create shim task"),
        mentions_all: missing.is_empty(),
    }
}

const REFUSED_AT_CREATE: Refusal = Refusal {
    timed_out: false,
    failed: true,
    at_create: true,
    mentions_all: true,
};

/// Opens the FIFO at `path` for writing without blocking: that succeeds
/// only while some process has it open for reading (e.g. a Create stuck
/// reading it).  Closing it again gives that reader EOF, which unblocks it.
fn fifo_has_blocked_reader(path: &std::path::Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .is_ok()
}

/// Regression (defect: zygote read `--runtime-config-path` with a plain
/// blocking read: a FIFO made Create hang until ctr's 60 s timeout, and a
/// file of any size was read whole).  Zygote only: runc-v2 reads runc's own
/// options from that path.  A FIFO must fail Create at once (well within a
/// 20 s ctr timeout) saying it is a FIFO, with no reader left blocked on it;
/// a 256 MiB (sparse) file must fail naming its size and the limit (1 MiB,
/// `MAX_FILE_BYTES` in crates/config/src/read.rs).  Nothing is left after
/// either, and a normal task works afterwards.
#[test]
fn runtime_config_path_fifo_and_huge_file() {
    const TEST: &str = "runtime_config_path_fifo_and_huge_file";
    if !require_runtime(Runtime::Zygote, TEST) {
        return;
    }
    let rt = Runtime::Zygote;
    let ctr = Ctr::new().with_timeout(Duration::from_secs(20));
    let dir = tempfile::tempdir_in(&env().containerd_dir).expect("tempdir");

    let fifo = dir.path().join("options.fifo");
    let c_fifo = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).expect("path");
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    let made = unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) };
    assert_eq!(made, 0, "mkfifo {}", fifo.display());
    let c = Container::new("rcp-fifo", rt);
    let fifo_str = fifo.to_string_lossy().into_owned();
    let out = ctr.run_rm(rt, c.id(), &["--runtime-config-path", &fifo_str], &["true"]);
    // Checked (and so released) before anything else: a Create stuck on the
    // FIFO would hold up the cleanup.
    let reader_left_blocked = fifo_has_blocked_reader(&fifo);
    let fifo_obs = (
        refusal(&out, &[&fifo_str, "FIFO"]),
        reader_left_blocked,
        left_nothing(c.id()),
    );
    if out.timed_out {
        remove_ctr_fifos(c.id());
    }
    drop(c);

    let big = dir.path().join("options.big");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(256 << 20))
        .expect("create a sparse 256 MiB file");
    let c = Container::new("rcp-big", rt);
    let big_str = big.to_string_lossy().into_owned();
    let out = ctr.run_rm(rt, c.id(), &["--runtime-config-path", &big_str], &["true"]);
    let big_obs = (
        refusal(&out, &[&big_str, "268435456 bytes", "1048576"]),
        left_nothing(c.id()),
    );
    if out.timed_out {
        remove_ctr_fifos(c.id());
    }
    drop(c);

    let c = Container::new("rcp-after", rt);
    let after = Ctr::new().run_rm(rt, c.id(), &[], &["echo", "ok"]);
    eprintln!("{}", after.describe());
    let after_obs = (after.code, after.stdout.clone(), left_nothing(c.id()));

    eprintln!("FIFO: (refusal, reader left blocked, nothing left) = {fifo_obs:?}");
    eprintln!("256 MiB: (refusal, nothing left) = {big_obs:?}");
    eprintln!("normal task afterwards: (code, stdout, nothing left) = {after_obs:?}");
    assert_eq!(
        fifo_obs,
        (REFUSED_AT_CREATE, false, true),
        "FIFO as --runtime-config-path"
    );
    assert_eq!(
        big_obs,
        (REFUSED_AT_CREATE, true),
        "256 MiB file as --runtime-config-path"
    );
    assert_eq!(
        after_obs,
        (Some(0), "ok\n".to_string(), true),
        "a normal task afterwards"
    );
}

/// [`nothing_left`] as an observation (its failure is printed, not raised),
/// so that a test can report all its parts.
fn left_nothing(id: &str) -> bool {
    std::panic::catch_unwind(|| nothing_left(id)).is_ok()
}

/// Removes the FIFOs a `ctr run` killed by the test's timeout left in its
/// fifo dir (`/run/containerd/fifo/<random>/<id>-std*`), and the dir.
fn remove_ctr_fifos(id: &str) {
    let Ok(rd) = std::fs::read_dir("/run/containerd/fifo") else {
        return;
    };
    for dir in rd.flatten() {
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        let mut ours = false;
        for f in files.flatten() {
            if f.file_name().to_string_lossy().starts_with(&format!("{id}-")) {
                ours = true;
                let _ = std::fs::remove_file(f.path());
            }
        }
        if ours {
            let _ = std::fs::remove_dir(dir.path());
        }
    }
}

/// Bytes in the live zygote daemons' `daemon.log` (in the daemon's dir, the
/// one under `$ZYGOTE_STATE_DIR` holding `daemon.pid`).
fn daemon_log_bytes() -> u64 {
    let daemons = zygote_daemons();
    assert!(
        !daemons.is_empty(),
        "no live zygote daemon under {}",
        env().state_dir.display()
    );
    daemons
        .iter()
        .map(|(pid_file, _)| {
            let log = pid_file.with_file_name("daemon.log");
            std::fs::metadata(&log)
                .unwrap_or_else(|e| panic!("{}: {e}", log.display()))
                .len()
        })
        .sum()
}

/// Regression (defect: error messages quoted outside values whole, so a
/// 64 KiB `zygote.dev/profile` annotation made a 64 KiB error for ctr and a
/// 64 KiB line in the daemon's log).  Zygote only.  Create must fail with a
/// clear error that quotes only a prefix: ctr's whole stderr stays under
/// 4 KiB, names the annotation and the value's length in bytes; and the
/// daemon's log grows by far less than 64 KiB (under 16 KiB) for it.
#[test]
fn huge_profile_annotation_is_quoted_cut() {
    const TEST: &str = "huge_profile_annotation_is_quoted_cut";
    if !require_runtime(Runtime::Zygote, TEST) {
        return;
    }
    let rt = Runtime::Zygote;
    let ctr = Ctr::new();
    // A task first, so the daemon is up and its log exists.
    let warm = Container::new("huge-ann-warm", rt);
    ctr.run_rm(rt, warm.id(), &[], &["true"]).assert_success();

    let value = "a".repeat(64 * 1024);
    let annotation = format!("zygote.dev/profile={value}");
    let c = Container::new("huge-ann", rt);
    let log_before = daemon_log_bytes();
    let out = ctr.run_rm(rt, c.id(), &["--annotation", &annotation], &["true"]);
    let log_growth = daemon_log_bytes().saturating_sub(log_before);
    eprintln!(
        "stderr: {} bytes; daemon.log grew by {log_growth} bytes",
        out.stderr.len()
    );
    let obs = (
        refusal(&out, &["zygote.dev/profile", "65536 bytes"]),
        out.stderr.len() < 4096,
        log_growth < 16 * 1024,
        left_nothing(c.id()),
    );
    if out.timed_out {
        remove_ctr_fifos(c.id());
    }
    eprintln!("(refusal, stderr under 4 KiB, daemon.log grew under 16 KiB, nothing left) = {obs:?}");
    assert_eq!(
        obs,
        (REFUSED_AT_CREATE, true, true, true),
        "64 KiB profile annotation: ctr's stderr {} bytes, daemon.log grew by {log_growth} bytes",
        out.stderr.len()
    );
}

/// A state dir so deep that the daemon's socket (which containerd dials by
/// its path) cannot fit in a Unix socket address: zygote refuses the task
/// at `shim start` with an error that names `ZYGOTE_STATE_DIR` and the
/// longest it may be, writes nothing into the state dir, and the same
/// containerd keeps running runc-v2 tasks. One byte less and zygote runs.
#[test]
fn state_dir_too_deep_for_a_socket() {
    let _g = exclusive();
    if !require_runtime(Runtime::Zygote, "state_dir_too_deep_for_a_socket") {
        return;
    }
    let parent = tempfile::Builder::new()
        .prefix("zt-deep-")
        .tempdir_in("/var/tmp")
        .expect("tempdir");
    // <root>/<16 hex>/daemon.sock is <root> + 29 bytes; 107 fit.
    let root_of = |len: usize| {
        let base = parent.path().join("s-");
        let pad = len - base.as_os_str().len();
        PathBuf::from(format!("{}{}", base.display(), "d".repeat(pad)))
    };
    let outcome = |state: &Path| {
        std::fs::create_dir_all(state).expect("state dir");
        let containerd = PrivateContainerd::start("deep", state);
        let ctr = containerd.ctr();
        let mut runs = Vec::new();
        for rt in [Runtime::Zygote, Runtime::Runc] {
            let id = unique_id("deep-state", rt);
            let b = ConfigBundle::new(&id, &["sh", "-c", "echo ran"], |_| {});
            let out = ctr.run_config(rt, &b, &id);
            let _ = ctr.run(&["container", "delete", &id]);
            runs.push(out);
        }
        let written: Vec<_> = std::fs::read_dir(state)
            .expect("read state dir")
            .flatten()
            .map(|e| e.path())
            .collect();
        (runs, written, containerd.log())
    };

    let (runs, written, log) = outcome(&root_of(79));
    eprintln!("79 bytes: zygote: {}\nrunc: {}", runs[0].describe(), runs[1].describe());
    assert!(
        !runs[0].success(),
        "zygote ran with a state dir too deep for its socket"
    );
    let text = format!("{}{log}", runs[0].stderr);
    assert!(
        text.contains("ZYGOTE_STATE_DIR") && text.contains("at most 78 bytes") && text.contains("107 bytes"),
        "the error does not name the setting and the limit:\n{}\n{}",
        runs[0].stderr,
        log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    assert!(
        written.is_empty(),
        "zygote wrote into the state dir it refused: {written:?}"
    );
    assert_eq!(
        (runs[1].code(), runs[1].stdout.as_str()),
        (0, "ran\n"),
        "runc-v2 on the same containerd"
    );

    let (runs, _, _) = outcome(&root_of(78));
    let got: Vec<_> = runs.iter().map(|r| (r.code(), r.stdout.clone())).collect();
    assert_eq!(got, vec![(0, "ran\n".to_string()); 2], "at 78 bytes both runtimes run");
}

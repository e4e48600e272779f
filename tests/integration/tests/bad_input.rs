//! Bad input: ctr must fail with a clear message, and afterwards nothing may
//! be left for the container (mounts, cgroups, processes, FIFOs, sockets,
//! state directories, the container record).
//!
//! ctr 1.6 prints "ctr: failed to create shim task: <runtime's error>" when
//! the runtime refuses a task at Create; both runtimes must fail there.

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
    let out = Ctr::new().run(&[
        "run",
        "--rm",
        "--runtime",
        rt.name(),
        "--config",
        &b.config_str(),
        c.id(),
    ]);
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
        let out =
            ctr.with_timeout(Duration::from_secs(60))
                .run_rm(rt, c.id(), &[], &["echo", "ok"]);
        (out.code(), out.stdout)
    });
}

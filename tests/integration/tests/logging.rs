//! `ctr run --log-uri`: the container's stdout and stderr go to a file
//! (`file://`) or to a logging binary (`binary://`) instead of ctr's FIFOs,
//! zygote side by side with runc.
//!
//! runc-v2's contract for a logging binary (containerd `pkg/process`
//! `NewBinaryIO`), which zygote must follow: the binary is started at Create
//! with the container's stdout on fd 3, its stderr on fd 4 and a readiness
//! pipe on fd 5 that it closes (or writes to) once ready (Create waits for
//! that); its environment is exactly `CONTAINER_ID` and
//! `CONTAINER_NAMESPACE`; the URI's query becomes its arguments
//! (`?arg=value` gives `arg value`).  runc-v2 keeps its ends of the stdout and
//! stderr pipes open until the task is deleted, and then kills the binary.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use zygote_integration_tests::*;

/// Polls `f` until it returns true or `timeout` passes; returns the last result.
fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()))
}

/// `--log-uri file:///<path>`: stdout and stderr are appended to the file
/// (created 0644 with its missing parent directories when needed).
#[test]
fn log_uri_file() {
    #[derive(Debug, Clone, PartialEq)]
    struct Obs {
        /// content of a file that existed before (with "pre\n"): appended to.
        existing: String,
        /// content and mode of a new file in directories that did not exist.
        created: String,
        created_mode: u32,
        /// what ctr printed itself (the output went to the file).
        ctr_stdout: String,
        exit_status: Result<i32, String>,
    }
    let expected = Obs {
        existing: "pre\nto-file\nerr-to-file\n".to_string(),
        created: "created\n".to_string(),
        created_mode: 0o644,
        ctr_stdout: String::new(),
        exit_status: Ok(3),
    };
    both_expect("--log-uri file://", expected, |rt| {
        let ctr = Ctr::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let existing = dir.path().join("out.log");
        fs::write(&existing, "pre\n").expect("write out.log");
        let created = dir.path().join("sub/dir/new.log");

        let c = Container::new("log-file", rt);
        let uri = format!("file://{}", existing.display());
        // The sleep orders the two lines: stdout and stderr are separate
        // pipes, copied into the file independently.
        let out = ctr.run_detached(
            rt,
            c.id(),
            &["--log-uri", &uri],
            &["sh", "-c", "echo to-file; sleep 0.2; echo err-to-file >&2; exit 3"],
        );
        let c2 = Container::new("log-file-new", rt);
        let uri2 = format!("file://{}", created.display());
        ctr.run_detached(rt, c2.id(), &["--log-uri", &uri2], &["echo", "created"]);

        ctr.wait_status(c.id(), "STOPPED", Duration::from_secs(20));
        ctr.wait_status(c2.id(), "STOPPED", Duration::from_secs(20));
        let want = "pre\nto-file\nerr-to-file\n";
        eventually(Duration::from_secs(10), || read(&existing) == want);
        eventually(Duration::from_secs(10), || read(&created) == "created\n");
        let exit_status = ctr.delete_task_exit_status(c.id());
        Obs {
            existing: read(&existing),
            created: read(&created),
            created_mode: fs::metadata(&created)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0),
            ctr_stdout: out.stdout,
            exit_status,
        }
        // `dir` (and the log files) is removed here.
    });
}

/// The logging binary written at test time: records its arguments, its exact
/// environment and a readiness marker, closes fd 5, then copies fd 3 and 4
/// into `<dir>/<CONTAINER_ID>.stdout` / `.stderr` through two copies of
/// itself (so every process of the logger mentions the script's path).
const LOGGER: &str = r#"#!/bin/sh
if [ "$1" = copy ]; then
    cat > "$2"
    exit 0
fi
o="$(dirname "$0")/$CONTAINER_ID"
printf '%s\n' "$@" > "$o.args"
tr '\0' '\n' < /proc/$$/environ | sort > "$o.env"
# Create must wait for this: ready only after a while.
sleep 0.5
touch "$o.ready"
exec 5>&-
"$0" copy "$o.stdout" <&3 &
"$0" copy "$o.stderr" <&4 &
exec 3<&- 4<&-
wait
touch "$o.done"
"#;

/// `--log-uri binary:///<script>?arg=value`: runc-v2's logging-binary
/// contract (see the module docs).
#[test]
fn log_uri_binary() {
    #[derive(Debug, Clone, PartialEq)]
    struct Obs {
        /// the binary was ready (closed fd 5) before `ctr run -d` returned.
        ready_before_run_returned: bool,
        args: String,
        /// the binary's environment, with the container id replaced by `<id>`
        /// (and the values of other variables elided).
        env: Vec<String>,
        stdout: String,
        stderr: String,
        /// what ctr printed itself.
        ctr_stdout: String,
        exit_status: Result<i32, String>,
        /// no process of the logging binary is left once the task is deleted.
        logger_gone_after_delete: bool,
    }
    let expected = Obs {
        ready_before_run_returned: true,
        args: "arg\nvalue\n".to_string(),
        env: vec![
            "CONTAINER_ID=<id>".to_string(),
            format!("CONTAINER_NAMESPACE={}", env().namespace),
        ],
        stdout: "to-bin\nmore\n".to_string(),
        stderr: "err-to-bin\n".to_string(),
        ctr_stdout: String::new(),
        exit_status: Ok(4),
        logger_gone_after_delete: true,
    };
    both_expect("--log-uri binary://", expected, |rt| {
        let ctr = Ctr::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("logger.sh");
        fs::write(&script, LOGGER).expect("write logger.sh");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
        let c = Container::new("log-bin", rt);
        let id = c.id().to_string();
        let file = |ext: &str| dir.path().join(format!("{id}.{ext}"));

        let uri = format!("binary://{}?arg=value", script.display());
        let out = ctr.run_detached(
            rt,
            &id,
            &["--log-uri", &uri],
            &["sh", "-c", "echo to-bin; echo err-to-bin >&2; echo more; exit 4"],
        );
        let ready_before_run_returned = file("ready").exists();
        ctr.wait_status(&id, "STOPPED", Duration::from_secs(20));
        eventually(Duration::from_secs(10), || {
            read(&file("stdout")) == "to-bin\nmore\n" && read(&file("stderr")) == "err-to-bin\n"
        });
        let exit_status = ctr.delete_task_exit_status(&id);
        let script_path = script.to_string_lossy().into_owned();
        let logger_gone_after_delete = eventually(Duration::from_secs(10), || {
            processes_mentioning(&script_path).is_empty()
        });
        if !logger_gone_after_delete {
            eprintln!(
                "{rt:?}: logger processes left: {:?}",
                processes_mentioning(&script_path)
            );
        }
        // Values of other variables are not shown: they come from the
        // environment of containerd (or the runtime) and could be secrets.
        let mut env: Vec<String> = read(&file("env"))
            .lines()
            .map(|l| match l.split_once('=') {
                Some((k, v)) if k == "CONTAINER_ID" || k == "CONTAINER_NAMESPACE" => {
                    format!("{k}={}", v.replace(id.as_str(), "<id>"))
                }
                Some((k, _)) => format!("{k}=..."),
                None => l.to_string(),
            })
            .collect();
        env.sort();
        Obs {
            ready_before_run_returned,
            args: read(&file("args")),
            env,
            stdout: read(&file("stdout")),
            stderr: read(&file("stderr")),
            ctr_stdout: out.stdout,
            exit_status,
            logger_gone_after_delete,
        }
    });
}

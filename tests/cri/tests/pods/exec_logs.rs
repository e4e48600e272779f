//! ExecSync (stdout, stderr, exit code) and container logs in CRI format
//! (`<RFC 3339 time> <stream> F <text>`), ReopenContainerLog.

use std::time::Duration;

use zygote_cri_tests::*;
use zygote_integration_tests::wait_until;

#[test]
fn exec_sync_stdout_stderr_exit_code() {
    for_each_handler("exec_sync_stdout_stderr_exit_code", |cri, h| {
        let mut pod = Pod::run(cri, h, pod_config());
        let id = pod.start(&container_config("exec sleep 1000"));
        let r = cri
            .exec_sync(&id, &["sh", "-c", "echo out; echo err >&2; exit 7"], 10)
            .expect("ExecSync");
        assert_eq!(String::from_utf8_lossy(&r.stdout), "out\n", "{}", h.name());
        assert_eq!(String::from_utf8_lossy(&r.stderr), "err\n", "{}", h.name());
        assert_eq!(r.exit_code, 7, "{}", h.name());
        let r = cri.exec_sync(&id, &["true"], 10).expect("ExecSync");
        assert_eq!((r.exit_code, r.stdout.len(), r.stderr.len()), (0, 0, 0));
        // A command that does not exist is an error or a non-zero exit
        // (containerd reports it as exit code 126/127 or an error): never 0.
        let missing = cri.exec_sync(&id, &["/no/such/binary"], 10);
        assert!(
            missing.as_ref().map_or(true, |r| r.exit_code != 0),
            "{}: {missing:?}",
            h.name()
        );
        pod.remove_and_check();
    });
}

/// `<time> <stream> <tag> <text>` lines of a CRI log file.
fn log_lines(path: &std::path::Path) -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let mut it = l.splitn(4, ' ');
            let mut next = || it.next().unwrap_or("").to_string();
            (next(), next(), next(), next())
        })
        .collect()
}

#[test]
fn logs_in_cri_format_and_reopen() {
    for_each_handler("logs_in_cri_format_and_reopen", |cri, h| {
        let mut pod = Pod::run(cri, h, pod_config());
        let cfg = container_config(
            "echo before; echo to-stderr >&2; \
             while true; do if [ -e /tmp/go ]; then rm /tmp/go; echo after; fi; sleep 0.1; done",
        );
        let id = pod.start(&cfg);
        let log = pod.log_path(&cfg);
        assert!(
            wait_until(Duration::from_secs(10), || log_lines(&log).len() >= 2),
            "{}: no log lines in {}",
            h.name(),
            log.display()
        );
        let lines = log_lines(&log);
        let find = |stream: &str, text: &str| lines.iter().find(|l| l.1 == stream && l.3 == text).cloned();
        let out = find("stdout", "before").unwrap_or_else(|| panic!("{}: {lines:?}", h.name()));
        let err = find("stderr", "to-stderr").unwrap_or_else(|| panic!("{}: {lines:?}", h.name()));
        for l in [&out, &err] {
            assert_eq!(l.2, "F", "{}: a full line: {l:?}", h.name());
            // RFC 3339 with nanoseconds: 2026-12-02T16:05:45.315555100Z
            assert!(
                l.0.len() >= 20 && l.0.as_bytes()[4] == b'-' && l.0.as_bytes()[10] == b'T',
                "{}: timestamp {:?}",
                h.name(),
                l.0
            );
        }

        // Log rotation: the file moves away, ReopenContainerLog makes a new one.
        let rotated = log.with_extension("log.1");
        std::fs::rename(&log, &rotated).expect("rotate the log");
        cri.reopen_log(&id).expect("ReopenContainerLog");
        let r = cri.exec_sync(&id, &["touch", "/tmp/go"], 10).expect("ExecSync");
        assert_eq!(r.exit_code, 0);
        assert!(
            wait_until(Duration::from_secs(10), || log_lines(&log)
                .iter()
                .any(|l| l.1 == "stdout" && l.3 == "after")),
            "{}: 'after' not in the reopened log {}: {:?}",
            h.name(),
            log.display(),
            log_lines(&log)
        );
        assert!(!log_lines(&rotated).iter().any(|l| l.3 == "after"));
        pod.remove_and_check();
    });
}

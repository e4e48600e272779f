//! Streaming through CRI: `Exec` and `Attach` answer a URL of containerd's
//! streaming server, spoken to in the remotecommand protocol over
//! WebSocket ([`Stream`]): stdin in, stdout and stderr apart, the exit code
//! in the v4 status, a terminal (tty, resize, ^D as end of input) for exec
//! and attach.
//! `PortForward` answers one for the port-forward protocol: bytes to a
//! port inside the pod's network namespace and back, and a clear error
//! for a port nothing listens on.

use std::time::Duration;

use zygote_cri_tests::*;
use zygote_integration_tests::wait_until;

/// The remotecommand subprotocol the node's streaming server picks of
/// those [`Stream`] offers (a `true` exec in container `id`).
fn negotiated(cri: &Cri, id: &str) -> String {
    let url = cri.exec(id, &["true"], false, false).expect("Exec");
    let mut s = Stream::remotecommand(&url);
    assert_eq!(s.wait_closed().exit_code(), Some(0), "exec true");
    s.protocol().to_string()
}

/// `<rows> <cols>` lines `stty size` printed (a tty's output has `\r\n`).
/// How many `stty size` have answered: a size, or busybox's error line
/// (`stty: standard input`) while the terminal still has no size (0 rows:
/// the resize travels on its own channel and may land later).
fn answers(out: &str) -> usize {
    sizes(out).len() + out.split("\r\n").filter(|l| l.starts_with("stty:")).count()
}

fn sizes(out: &str) -> Vec<String> {
    out.split("\r\n")
        .filter(|l| {
            let w: Vec<&str> = l.split(' ').collect();
            w.len() == 2 && w.iter().all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn exec_streams_stdin_stdout_stderr_exit_code() {
    for_each_handler("exec_streams_stdin_stdout_stderr_exit_code", |cri, h| {
        let mut pod = Pod::run(cri, h, pod_config());
        let id = pod.start(&container_config("exec sleep 1000"));
        // v5 can close stdin, so `cat` sees EOF; v4 (containerd 1.6/1.7)
        // has no half-close (kubernetes#89899): the command reads one line.
        let protocol = negotiated(cri, &id);
        eprintln!("{}: remotecommand protocol {protocol}", h.name());
        let v5 = protocol == "v5.channel.k8s.io";
        let script = if v5 { "cat" } else { "head -n 1" };
        let script = format!("{script}; echo err >&2; exit 3");
        let url = cri.exec(&id, &["sh", "-c", &script], true, false).expect("Exec");
        let mut s = Stream::remotecommand(&url);
        assert!(
            s.protocol().starts_with("v"),
            "{}: protocol {:?}",
            h.name(),
            s.protocol()
        );
        s.send(STDIN, b"hello\n");
        assert_eq!(s.close_channel(STDIN), v5);
        let r = s.wait_closed();
        assert_eq!(r.text(STDOUT), "hello\n", "{}: {r:?}", h.name());
        assert_eq!(r.text(STDERR), "err\n", "{}: {r:?}", h.name());
        assert_eq!(r.exit_code(), Some(3), "{}: status {:?}", h.name(), r.status());
        assert_eq!(r.status().expect("status")["reason"], "NonZeroExitCode");
        pod.remove_and_check();
    });
}

#[test]
fn exec_with_tty_and_resize() {
    for_each_handler("exec_with_tty_and_resize", |cri, h| {
        let mut pod = Pod::run(cri, h, pod_config());
        let id = pod.start(&container_config("exec sleep 1000"));
        let script = "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; \
                      while read -r l; do stty size; done; exit 5";
        let url = cri.exec(&id, &["sh", "-c", script], true, true).expect("Exec");
        let mut s = Stream::remotecommand(&url);
        s.resize(100, 30);
        // The resize and the lines travel on different channels: ask for
        // the size until the new one shows.
        for i in 1..=50 {
            s.send(STDIN, b"size\n");
            let r = s.read_until(|r| answers(&r.text(STDOUT)) >= i);
            if sizes(&r.text(STDOUT)).last().is_some_and(|l| l == "30 100") {
                break;
            }
        }
        // ^D at the start of a line: end of input on a terminal, `read` fails.
        s.send(STDIN, b"\x04");
        let r = s.wait_closed();
        let out = r.text(STDOUT);
        assert!(out.contains("is-a-tty\r\n"), "{}: not a terminal: {out:?}", h.name());
        assert_eq!(
            sizes(&out).last().map(String::as_str),
            Some("30 100"),
            "{}: {out:?}",
            h.name()
        );
        // The terminal echoes what was typed.
        assert!(out.contains("size\r\n"), "{}: {out:?}", h.name());
        assert_eq!(r.channel(STDERR), b"", "{}: a terminal has one output", h.name());
        assert_eq!(r.exit_code(), Some(5), "{}: status {:?}", h.name(), r.status());
        pod.remove_and_check();
    });
}

/// Detaching leaves the container running.
fn assert_running(cri: &Cri, id: &str, h: Handler) {
    let st = cri
        .container_status(id)
        .expect("ContainerStatus")
        .status
        .expect("status");
    assert_eq!(
        st.state,
        k8s_cri::v1::ContainerState::ContainerRunning as i32,
        "{}",
        h.name()
    );
}

#[test]
fn attach_to_stdin_of_a_running_container() {
    for_each_handler("attach_to_stdin_of_a_running_container", |cri, h| {
        let mut pod = Pod::run(cri, h, pod_config());
        let mut cfg = container_config("exec cat");
        cfg.stdin = true;
        let id = pod.start(&cfg);
        let url = cri.attach(&id, true, false).expect("Attach");
        let mut s = Stream::remotecommand(&url);
        s.send(STDIN, b"hello attach\n");
        let r = s.read_until(|r| r.channel(STDOUT).ends_with(b"\n"));
        assert_eq!(r.text(STDOUT), "hello attach\n", "{}: {r:?}", h.name());
        assert_eq!(r.channel(STDERR), b"", "{}", h.name());
        drop(s);
        // Detaching leaves the container running; its output is logged too.
        assert_running(cri, &id, h);
        let log = || std::fs::read_to_string(pod.log_path(&cfg)).unwrap_or_default();
        assert!(
            wait_until(Duration::from_secs(10), || log().contains(" stdout F hello attach")),
            "{}: log {:?}",
            h.name(),
            log()
        );
        pod.remove_and_check();
    });
}

#[test]
fn attach_with_tty() {
    for_each_handler("attach_with_tty", |cri, h| {
        let mut pod = Pod::run(cri, h, pod_config());
        let mut cfg = container_config("[ -t 0 ] && exec cat; exit 9");
        cfg.stdin = true;
        cfg.tty = true;
        let id = pod.start(&cfg);
        let url = cri.attach(&id, true, true).expect("Attach");
        let mut s = Stream::remotecommand(&url);
        s.send(STDIN, b"ping\n");
        // The terminal's echo, then cat's copy.
        let r = s.read_until(|r| r.text(STDOUT).matches("ping\r\n").count() >= 2);
        assert_eq!(r.text(STDOUT), "ping\r\nping\r\n", "{}: {r:?}", h.name());
        drop(s);
        assert_running(cri, &id, h);
        pod.remove_and_check();
    });
}

/// A pod-network container serving TCP port 8080: each connection gets
/// `pong <the line it sent>`.
fn pong_server() -> k8s_cri::v1::ContainerConfig {
    container_config(
        r#"printf '#!/bin/sh\nread -r l\necho "pong $l"\n' >/tmp/h; chmod +x /tmp/h; exec nc -ll -p 8080 -e /tmp/h"#,
    )
}

#[test]
fn port_forward_into_the_pod() {
    for_each_handler("port_forward_into_the_pod", |cri, h| {
        let mut pod = Pod::run(cri, h, pod_config());
        let id = pod.start(&pong_server());
        let listening = || sh_status(cri, &id, "netstat -ltn | grep -q ':8080 '").0 == 0;
        assert!(
            wait_until(Duration::from_secs(10), listening),
            "{}: nothing listens on 8080 in the pod",
            h.name()
        );
        let url = cri.port_forward(&pod.id, &[8080]).expect("PortForward");
        let mut s = Stream::port_forward(&url, 8080);
        let r = s.read_until(|r| r.ports.len() == 2);
        assert_eq!(r.ports.get(&0), Some(&8080), "{}: data channel: {r:?}", h.name());
        assert_eq!(r.ports.get(&1), Some(&8080), "{}: error channel: {r:?}", h.name());
        s.send(0, b"ping\n");
        let r = s.read_until(|r| r.channel(0).ends_with(b"\n"));
        assert_eq!(r.text(0), "pong ping\n", "{}: {r:?}", h.name());
        // The server closes the connection after one line: so does the stream.
        let r = s.wait_closed();
        assert_eq!(r.text(1), "", "{}: error channel", h.name());

        // Nothing listens on 8081: the error channel says so.
        let url = cri.port_forward(&pod.id, &[8081]).expect("PortForward");
        let mut s = Stream::port_forward(&url, 8081);
        let r = s.wait_closed();
        assert_eq!(r.ports.get(&1), Some(&8081), "{}: {r:?}", h.name());
        assert!(
            r.text(1).contains("8081"),
            "{}: error channel: {:?}",
            h.name(),
            r.text(1)
        );
        assert_eq!(r.text(0), "", "{}", h.name());
        pod.remove_and_check();
    });
}

//! Node labelling against a recording stand-in of the Kubernetes API server (no live cluster
//! exists here): a one-request HTTP server on 127.0.0.1 that records what kube-rs sends and
//! answers like the API server would (the patched Node, or a 403 Status).

#![cfg(feature = "kube")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::JoinHandle;

use zygote_installer::node::{client_from, patch_labels, Label};

/// One recorded request.
struct Request {
    method: String,
    path: String,
    content_type: String,
    body: serde_json::Value,
}

/// Serves one request with `status` and `reply`, returning what it received.
fn stand_in(status: &str, reply: &str) -> (u16, JoinHandle<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (status, reply) = (status.to_string(), reply.to_string());
    let h = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap().to_string();
        let path = parts.next().unwrap().to_string();
        let (mut len, mut content_type) = (0usize, String::new());
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap(),
                "content-type" => content_type = v.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let mut w = stream;
        write!(
            w,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
            reply.len()
        )
        .unwrap();
        Request {
            method,
            path,
            content_type,
            body: serde_json::from_slice(&body).unwrap(),
        }
    });
    (port, h)
}

fn kubeconfig(dir: &Path, port: u16) -> PathBuf {
    let p = dir.join("kubeconfig");
    std::fs::write(
        &p,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             users:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n\
             current-context: x\n"
        ),
    )
    .unwrap();
    p
}

const NODE: &str = "worker-0.example.internal";
const FORBIDDEN: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"nodes \"worker-0.example.internal\" is forbidden: User \"system:serviceaccount:zygote-system:zygote\" cannot patch resource \"nodes\" in API group \"\" at the cluster scope","reason":"Forbidden","details":{"name":"worker-0.example.internal","kind":"nodes"},"code":403}"#;

fn labels() -> Vec<Label> {
    vec![
        "zygote.dev/ready=true".parse().unwrap(),
        "zygote.dev/profiles=default".parse().unwrap(),
    ]
}

fn node_reply(labels: &str) -> String {
    format!(r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"{NODE}","labels":{labels}}}}}"#)
}

#[tokio::test]
async fn install_labels_the_node_with_a_merge_patch() {
    let dir = tempfile::tempdir().unwrap();
    let (port, h) = stand_in("200 OK", &node_reply(r#"{"zygote.dev/ready":"true"}"#));
    let client = client_from(&kubeconfig(dir.path(), port)).await.unwrap();
    patch_labels(client, NODE, &labels(), true).await.unwrap();
    let r = h.join().unwrap();
    assert_eq!(r.method, "PATCH");
    assert_eq!(r.path.split('?').next().unwrap(), format!("/api/v1/nodes/{NODE}"));
    assert_eq!(r.content_type, "application/merge-patch+json");
    assert_eq!(
        r.body,
        serde_json::json!({"metadata":{"labels":{"zygote.dev/ready":"true","zygote.dev/profiles":"default"}}})
    );
}

#[tokio::test]
async fn uninstall_removes_the_labels_with_null_values() {
    let dir = tempfile::tempdir().unwrap();
    let (port, h) = stand_in("200 OK", &node_reply("{}"));
    let client = client_from(&kubeconfig(dir.path(), port)).await.unwrap();
    patch_labels(client, NODE, &labels(), false).await.unwrap();
    let r = h.join().unwrap();
    assert_eq!(r.method, "PATCH");
    assert_eq!(r.path.split('?').next().unwrap(), format!("/api/v1/nodes/{NODE}"));
    assert_eq!(r.content_type, "application/merge-patch+json");
    assert_eq!(
        r.body,
        serde_json::json!({"metadata":{"labels":{"zygote.dev/ready":null,"zygote.dev/profiles":null}}})
    );
}

#[tokio::test]
async fn a_forbidden_patch_names_node_labels_and_the_api_error() {
    let dir = tempfile::tempdir().unwrap();
    let (port, h) = stand_in("403 Forbidden", FORBIDDEN);
    let client = client_from(&kubeconfig(dir.path(), port)).await.unwrap();
    let e = patch_labels(client, NODE, &labels(), true).await.unwrap_err();
    h.join().unwrap();
    let msg = format!("{e}: {}", std::error::Error::source(&e).unwrap());
    for want in [NODE, "zygote.dev/ready=true", "cannot patch resource \"nodes\""] {
        assert!(msg.contains(want), "{want:?} not in {msg:?}");
    }
}

/// The binary: a refused unlabel stops `uninstall` before it touches the node.
#[test]
fn uninstall_stops_when_unlabelling_fails() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc/containerd")).unwrap();
    std::fs::write(root.join("etc/containerd/config.toml"), "version = 2\n").unwrap();
    let (port, h) = stand_in("403 Forbidden", FORBIDDEN);
    let out = Command::new(env!("CARGO_BIN_EXE_zygote-installer"))
        .args([
            "uninstall",
            "--restart",
            "none",
            "--node-name",
            NODE,
            "--label",
            "zygote.dev/ready=true",
        ])
        .arg("--host-root")
        .arg(&root)
        .env("KUBECONFIG", kubeconfig(dir.path(), port))
        .output()
        .unwrap();
    let r = h.join().unwrap();
    assert_eq!(
        r.body,
        serde_json::json!({"metadata":{"labels":{"zygote.dev/ready":null}}})
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for want in ["nothing uninstalled", NODE, "zygote.dev/ready=true", "forbidden"] {
        assert!(err.contains(want), "{want:?} not in {err:?}");
    }
    assert_eq!(
        std::fs::read_to_string(root.join("etc/containerd/config.toml")).unwrap(),
        "version = 2\n"
    );
}

/// `--label` syntax is checked when the command line is parsed.
#[test]
fn a_bad_label_is_refused_at_parse_time() {
    let out = Command::new(env!("CARGO_BIN_EXE_zygote-installer"))
        .args(["install", "--zygote-config", "/nonexistent", "--node-name", NODE])
        .args(["--label", "Zygote.dev/ready=true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a DNS subdomain"), "{err}");
}

/// `install --restart none` probes nothing, so it refuses to label the node ready (before writing anything).
#[test]
fn install_without_a_probe_refuses_to_label() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zygote-installer"))
        .args([
            "install",
            "--restart",
            "none",
            "--zygote-config",
            "/nonexistent",
            "--node-name",
            NODE,
        ])
        .args(["--label", "zygote.dev/ready=true"])
        .arg("--host-root")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the handlers are not probed"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

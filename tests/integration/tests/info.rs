//! `containerd-shim-zygote-v1 -info`, the runtime info containerd 2.x asks
//! every shim for: run directly (the wire format containerd decodes) and,
//! on containerd 2.x, through containerd (`ctr plugins inspect-runtime`),
//! side by side with runc-v2.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message as _;
use containerd_shim_protos::types::introspection::RuntimeInfo;
use zygote_integration_tests::*;

const FEATURES_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

fn shim_binary() -> PathBuf {
    let dir = std::env::var("ZYGOTE_BIN_DIR").expect("ZYGOTE_BIN_DIR (hack/test.sh exports it)");
    PathBuf::from(dir).join("containerd-shim-zygote-v1")
}

fn run_info(stdin: &[u8]) -> (std::process::ExitStatus, Vec<u8>, String) {
    use std::io::Write;
    let mut child = Command::new(shim_binary())
        .arg("-info")
        // What containerd runs it from: no bundle, no namespace, no address.
        .current_dir("/")
        .env_remove("TTRPC_ADDRESS")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn containerd-shim-zygote-v1 -info");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write options");
    let out = child.wait_with_output().expect("wait for -info");
    (
        out.status,
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The binary answers `-info` with a protobuf `RuntimeInfo`: name, version,
/// the options it was given echoed back, and the OCI features as JSON in an
/// `Any` of containerd's type URL; garbage options are a clear error.
#[test]
fn info_answers_runtime_info() {
    let (status, stdout, stderr) = run_info(&[]);
    assert!(status.success(), "-info failed: {stderr}");
    let info = RuntimeInfo::parse_from_bytes(&stdout).expect("stdout is a RuntimeInfo");
    assert_eq!(info.name, "io.containerd.zygote.v1");
    assert!(!info.version.version.is_empty(), "{info:?}");
    assert!(info.options.is_none(), "{info:?}");
    assert_eq!(info.features.type_url, FEATURES_TYPE_URL);
    let features: serde_json::Value = serde_json::from_slice(&info.features.value).expect("features are JSON");
    assert_eq!(features["ociVersionMin"], "1.0.0", "{features}");
    assert!(features["linux"]["namespaces"]
        .as_array()
        .is_some_and(|n| n.iter().any(|x| x == "pid")));

    let opts = Any {
        type_url: "runtimeoptions.v1.Options".into(),
        value: b"\x1a\x11profile = \"fast\"".to_vec(),
        ..Default::default()
    };
    let (status, stdout, stderr) = run_info(&opts.write_to_bytes().expect("encode Any"));
    assert!(status.success(), "-info with options failed: {stderr}");
    let info = RuntimeInfo::parse_from_bytes(&stdout).expect("stdout is a RuntimeInfo");
    assert_eq!(info.options.type_url, opts.type_url);
    assert_eq!(info.options.value, opts.value);

    let (status, stdout, stderr) = run_info(b"\xff\xff\xff");
    assert!(!status.success(), "garbage options accepted: {stdout:?}");
    assert!(stderr.contains("not a protobuf Any"), "{stderr}");
}

/// containerd's major version (the server's, from `ctr version`).
fn containerd_major() -> u32 {
    let out = Ctr::new().run(&["version"]);
    out.assert_success();
    let server = out.stdout.split("Server:").nth(1).unwrap_or_default();
    let version = server
        .lines()
        .find_map(|l| l.trim().strip_prefix("Version:"))
        .unwrap_or_else(|| panic!("no server version in {}", out.describe()));
    version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .expect("major version")
}

/// The keys of a JSON object, but `hooks`: zygote runs no hooks (README),
/// and containerd drops the empty list (Go's `omitempty`).
fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().filter(|k| *k != "hooks").cloned().collect())
        .unwrap_or_default()
}

/// Through containerd 2.x (`ctr plugins inspect-runtime`, containerd's
/// introspection `PluginInfo`, which execs `<shim> -info`): both runtimes
/// answer with their own name and a features document containerd decodes,
/// with the same sections (found on 2.1.9: an empty `hooks` list is dropped). containerd 1.x has no `-info`: not run there.
#[test]
fn inspect_runtime_through_containerd() {
    let major = containerd_major();
    if major < 2 {
        eprintln!("NOTICE: inspect_runtime_through_containerd: not run (containerd {major}.x has no shim -info)");
    } else {
        both("ctr plugins inspect-runtime", |rt| {
            let out = Ctr::new().with_timeout(Duration::from_secs(30)).run(&[
                "plugins",
                "inspect-runtime",
                "--runtime",
                rt.name(),
            ]);
            eprintln!("{}", out.describe());
            let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
            (
                out.code(),
                v["Name"] == rt.name(),
                keys(&v["Features"]),
                keys(&v["Features"]["linux"]),
            )
        });
    }
}

//! The daemon's Prometheus metrics, read back through a real Prometheus.
//!
//! The test starts a private containerd whose zygote config it writes
//! (profiles `default` with a pool, `nopool` with `max = 0`, a `wasm` one,
//! and `[metrics] listen` on a free loopback port), and a Prometheus server
//! (Debian's `prometheus`) on another free port with its own storage in a
//! temp dir, scraping the daemon every second. It runs cold tasks (profile
//! `nopool`: fallback `pool_disabled`), warm tasks (`default`, each after
//! the pool has a zygote waiting) and a Wasm task, then queries Prometheus'
//! HTTP API and checks the series against what it ran: claims, fallbacks,
//! histogram counts by path, exits, ttrpc creates, the Wasm cache compile.
//! `promtool check metrics` on the daemon's exposition must be clean, and
//! every query of `deploy/grafana/zygote-dashboard.json` must evaluate
//! without error. Same on both passes of hack/test.sh (its own config).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use zygote_integration_tests::*;

const Z: Runtime = Runtime::Zygote;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A plain HTTP/1.0 GET: (status line, body).
fn http_get(addr: SocketAddr, path_and_query: &str) -> Result<(String, String), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path_and_query} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).map_err(|e| e.to_string())?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP header end: {raw}"))?;
    Ok((head.lines().next().unwrap_or_default().to_string(), body.to_string()))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus server of the test's own, stopped (killed) on drop.
struct Prometheus {
    addr: SocketAddr,
    process: Background,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("zt-prom-")
            .tempdir_in("/var/tmp")
            .unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: zygote\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut c = Command::new("prometheus");
        c.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn");
        let process = Background::spawn(c, false);
        let p = Prometheus {
            addr,
            process,
            _dir: dir,
        };
        assert!(
            wait_until(Duration::from_secs(30), || http_get(addr, "/-/ready")
                .is_ok_and(|(status, _)| status.contains(" 200"))),
            "prometheus did not get ready: {}",
            p.process.stderr_so_far()
        );
        p
    }

    /// `/api/v1/query`: `Ok(result vector)` or the error Prometheus gave.
    fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let (status, body) = http_get(self.addr, &format!("/api/v1/query?query={}", urlencode(promql)))?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{status}: {e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("{promql}: {status}: {body}"));
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// The value of a query that returns one sample (None: no sample).
    fn scalar(&self, promql: &str) -> Option<f64> {
        let r = self.query(promql).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.len() <= 1, "{promql}: more than one series: {r:?}");
        r.first()?["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `promql` gives `want` (Prometheus scrapes every second);
    /// panics with what it gave last.
    fn expect(&self, promql: &str, want: f64) {
        let mut last = None;
        let ok = wait_until(Duration::from_secs(30), || {
            last = self.scalar(promql);
            last == Some(want)
        });
        assert!(ok, "{promql}: want {want}, Prometheus says {last:?}");
    }
}

/// The zygote config of this test: three profiles and the metrics address.
fn write_config(dir: &Path, metrics: SocketAddr) -> PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        r#"
[profiles.default]
namespaces = ["pid", "uts", "ipc", "net"]
[profiles.default.pool]
min = 1
initial = 2
max = 4
[profiles.nopool]
[profiles.nopool.pool]
min = 0
initial = 0
max = 0
[profiles.wasm]
mode = "wasm"
[profiles.wasm.pool]
min = 1
initial = 1
max = 2
[metrics]
listen = "{metrics}"
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `pools.json` of the private daemon under `state`.
fn pool_idle(state: &Path, profile: &str) -> u64 {
    let Ok(rd) = std::fs::read_dir(state) else { return 0 };
    rd.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("pools.json")).ok())
        .filter_map(|s| serde_json::from_str::<Value>(&s).ok())
        .map(|v| v["profiles"][profile]["idle"].as_u64().unwrap_or(0))
        .max()
        .unwrap_or(0)
}

fn run_task(ctr: &Ctr, test: &str, profile: &str, args: &[&str], prepare: impl FnOnce(&Path)) -> Output {
    let id = unique_id(test, Z);
    let b = ConfigBundle::new(&id, args, |spec| {
        spec["annotations"] = serde_json::json!({ "zygote.dev/profile": profile });
    });
    prepare(&b.rootfs);
    let out = ctr.run_config(Z, &b, &id);
    let _ = ctr.run(&["container", "delete", &id]);
    out
}

#[test]
fn prometheus_scrapes_what_the_daemon_did() {
    if !require_runtime(Z, "prometheus_scrapes_what_the_daemon_did") {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("zt-metrics-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(tmp.path(), metrics);
    let state = tmp.path().join("zygote");
    std::fs::create_dir_all(&state).unwrap();
    let cache = tmp.path().join("wasm-cache");
    let containerd = PrivateContainerd::start_with(
        "metrics",
        &state,
        &[
            ("ZYGOTE_CONFIG", config.to_str().unwrap()),
            ("ZYGOTE_WASM_CACHE_DIR", cache.to_str().unwrap()),
        ],
    );
    let ctr = containerd.ctr();
    let prom = Prometheus::start(metrics);

    // Cold: the profile without a pool (the first one also starts the daemon).
    for _ in 0..3 {
        let out = run_task(&ctr, "m_cold", "nopool", &["sh", "-c", "echo cold"], |_| {});
        assert!(out.success() && out.stdout == "cold\n", "{}", out.describe());
    }
    // Warm: each once the pool has a zygote waiting.
    for _ in 0..2 {
        assert!(
            wait_until(Duration::from_secs(30), || pool_idle(&state, "default") >= 1),
            "the default pool never filled"
        );
        let out = run_task(&ctr, "m_warm", "default", &["sh", "-c", "echo warm"], |_| {});
        assert!(out.success() && out.stdout == "warm\n", "{}", out.describe());
    }
    // Wasm: a module in a copy of the busybox rootfs.
    assert!(
        wait_until(Duration::from_secs(60), || pool_idle(&state, "wasm") >= 1),
        "the wasm pool never filled"
    );
    let modules = PathBuf::from(std::env::var("ZYGOTE_TEST_WASM_MODULES").expect("hack/test.sh sets it"));
    let out = run_task(&ctr, "m_wasm", "wasm", &["/hello.wasm"], |rootfs| {
        std::fs::copy(modules.join("hello.wasm"), rootfs.join("hello.wasm")).unwrap();
    });
    assert!(out.success() && out.stdout == "hello from wasm\n", "{}", out.describe());

    // What was run, as Prometheus scraped it.
    prom.expect(r#"up{job="zygote"}"#, 1.0);
    prom.expect("zygote_build_info", 1.0);
    let count = |sel: &str| format!("sum(zygote_spawn_duration_seconds_count{{{sel}}})");
    prom.expect(&count(r#"mode="namespace",path="cold",profile="nopool""#), 3.0);
    prom.expect(&count(r#"mode="namespace",path="warm",profile="default""#), 2.0);
    prom.expect(&count(r#"mode="wasm",path="warm",profile="wasm""#), 1.0);
    prom.expect("sum(zygote_security_setup_duration_seconds_count)", 6.0);
    prom.expect(r#"zygote_pool_claims_total{profile="nopool",result="disabled"}"#, 3.0);
    prom.expect(
        r#"zygote_pool_fallbacks_total{profile="nopool",reason="pool_disabled"}"#,
        3.0,
    );
    prom.expect(r#"zygote_pool_claims_total{profile="default",result="hit"}"#, 2.0);
    prom.expect(r#"zygote_pool_claims_total{profile="wasm",result="hit"}"#, 1.0);
    prom.expect(
        r#"sum(zygote_pool_fallbacks_total{profile=~"default|wasm"}) or vector(0)"#,
        0.0,
    );
    prom.expect(r#"zygote_task_exits_total{mode="namespace"}"#, 5.0);
    prom.expect(r#"zygote_task_exits_total{mode="wasm"}"#, 1.0);
    prom.expect("sum(zygote_tasks_running)", 0.0);
    prom.expect(r#"zygote_ttrpc_requests_total{method="create",result="ok"}"#, 6.0);
    prom.expect(r#"zygote_ttrpc_request_duration_seconds_count{method="create"}"#, 6.0);
    prom.expect("zygote_wasm_cache_compiles_total", 1.0);
    prom.expect("zygote_wasm_cache_misses_total", 1.0);
    prom.expect("zygote_wasm_compile_duration_seconds_count", 1.0);
    prom.expect(r#"zygote_pool_target{profile="nopool"}"#, 0.0);
    prom.expect(
        r#"zygote_pool_scaling_events_total{profile="default",direction="up",cause="initial"}"#,
        1.0,
    );
    prom.expect(r#"zygote_pool_idle_pss_bytes{profile="default"} > bool 0"#, 1.0);
    prom.expect("process_resident_memory_bytes > bool 0", 1.0);
    prom.expect(
        r#"sum(zygote_pool_zygote_creation_duration_seconds_count{profile="default"}) >= bool 2"#,
        1.0,
    );

    // promtool's lint on the exposition itself.
    let (status, body) = http_get(metrics, "/metrics").expect("GET /metrics");
    assert!(status.contains(" 200"), "{status}");
    let check = tmp.path().join("exposition.txt");
    std::fs::write(&check, &body).unwrap();
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!("promtool check metrics < {}", check.display()));
    let out = run_cmd(c, Duration::from_secs(30));
    assert!(
        out.success() && out.stdout.trim().is_empty() && out.stderr.trim().is_empty(),
        "promtool check metrics: {}",
        out.describe()
    );

    // Every query of the dashboard evaluates (Grafana's variables as "all").
    let dashboard = env().hack_dir.join("../deploy/grafana/zygote-dashboard.json");
    let d: Value = serde_json::from_slice(&std::fs::read(&dashboard).unwrap()).unwrap();
    let exprs: Vec<String> = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    assert!(exprs.len() >= 10, "{}", dashboard.display());
    // rate() needs two samples of a series: wait for one more scrape of all.
    let samples = "count_over_time(zygote_task_exits_total{mode=\"wasm\"}[1m]) >= bool 2";
    prom.expect(samples, 1.0);
    let mut empty = Vec::new();
    for e in &exprs {
        let q = e
            .replace("$__rate_interval", "1m")
            .replace("$instance", ".*")
            .replace("$profile", ".*")
            .replace("$job", ".*");
        let r = prom
            .query(&q)
            .unwrap_or_else(|err| panic!("dashboard query failed: {err}"));
        if r.is_empty() {
            empty.push(q);
        }
    }
    // The panels this test's tasks feed must show something.
    for key in [
        "zygote_spawn_duration_seconds_bucket",
        "zygote_pool_idle",
        "zygote_pool_fallbacks_total",
    ] {
        assert!(
            !empty.iter().any(|q| q.contains(key)),
            "dashboard queries without data: {empty:#?}"
        );
    }
    eprintln!("dashboard queries without data (nothing of the kind ran): {empty:#?}");
    drop(prom);
    drop(containerd);
}

//! The metrics endpoint: `GET /metrics` over HTTP/1.1 (hyper), the
//! Prometheus text exposition. Anything else is 404 (405 for another
//! method on `/metrics`). Each scrape gathers on a blocking thread.
//!
//! Not being able to listen (address taken, not local) is logged as an
//! error and the daemon goes on serving tasks: metrics are for watching a
//! node, never a reason to stop it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{Encoder, TextEncoder};
use tracing::{debug, error, info, warn};

use crate::daemon::Daemon;

/// The exposition's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Starts serving on `addr` (`None`: metrics disabled). Returns the bound
/// address, or `None` when disabled or the bind failed (logged).
pub(crate) fn serve(daemon: Arc<Daemon>, addr: Option<SocketAddr>) -> Option<SocketAddr> {
    let Some(addr) = addr else {
        info!("metrics disabled ([metrics] enabled = false)");
        return None;
    };
    let bound = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(tokio::net::TcpListener::from_std);
    let listener = match bound {
        Ok(l) => l,
        Err(e) => {
            error!(%addr, error = %e, "cannot serve metrics on [metrics] listen; serving tasks without metrics");
            return None;
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    info!(url = %format!("http://{local}/metrics"), "serving metrics");
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let daemon = daemon.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| answer(daemon.clone(), req));
                let served = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
                if let Err(e) = served {
                    debug!(error = %e, "metrics connection ended");
                }
            });
        }
    });
    Some(local)
}

async fn answer(daemon: Arc<Daemon>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: Vec<u8>, ctype: &str| {
        Response::builder()
            .status(status)
            .header("content-type", ctype)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    if req.uri().path() != "/metrics" {
        return Ok(reply(StatusCode::NOT_FOUND, b"only /metrics\n".to_vec(), "text/plain"));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            b"GET only\n".to_vec(),
            "text/plain",
        ));
    }
    let text = tokio::task::spawn_blocking(move || render(&daemon)).await;
    Ok(match text {
        Ok(Ok(body)) => reply(StatusCode::OK, body, CONTENT_TYPE),
        Ok(Err(e)) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{e}\n").into_bytes(),
            "text/plain",
        ),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{e}\n").into_bytes(),
            "text/plain",
        ),
    })
}

/// The exposition: the recorded series, then those read now.
pub(crate) fn render(daemon: &Daemon) -> Result<Vec<u8>, prometheus::Error> {
    let mut families = super::series().registry.gather();
    // A label set not seen yet leaves a family without metrics, which the
    // encoder refuses (the registry's gather drops those itself).
    families.extend(
        super::collect::scrape(daemon)
            .into_iter()
            .filter(|f| !f.get_metric().is_empty()),
    );
    let mut body = Vec::new();
    TextEncoder::new().encode(&families, &mut body)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::Arc;

    use async_trait::async_trait;
    use zygote_contract::zygote::ZygoteConfig;

    use crate::daemon::{Daemon, Settings};
    use crate::pool::{SpawnError, Spawner, Warm};

    struct NoZygotes;

    #[async_trait]
    impl Spawner for NoZygotes {
        async fn spawn(&self, _cfg: &ZygoteConfig) -> Result<Warm, SpawnError> {
            Err(SpawnError::Timeout(std::time::Duration::ZERO))
        }
    }

    fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_the_exposition_and_survives_a_taken_address() {
        let tmp = tempfile::tempdir().unwrap();
        let config = zygote_config::Config::from_toml("[profiles.fast.pool]\nmax = 0\ninitial = 0\n", None, 0);
        let daemon = Arc::new(Daemon::new(Settings {
            dir: zygote_contract::DaemonDir::at(tmp.path()),
            exe: "/nonexistent/shim".into(),
            ttrpc_address: "/nonexistent/containerd.sock".into(),
            profiles: crate::profiles::Profiles::from_config(config.map_err(|e| e.to_string())),
            pre_place: false,
            wasm_cache_dir: Some(tmp.path().join("wasm")),
            pressure: crate::pressure::Pressure::manual().1,
            spawner: Arc::new(NoZygotes),
        }));
        assert!(daemon.pools.claim("fast").is_err());
        daemon.pools.fallback("fast", crate::pool::Fallback::PoolDisabled);
        crate::metrics::rpc("state", "not_found", 0.001);
        let addr = super::serve(daemon.clone(), Some("127.0.0.1:0".parse().unwrap())).expect("bound");
        let d = daemon.clone();
        let (ok, missing, body) =
            tokio::task::spawn_blocking(move || (get(addr, "/metrics"), get(addr, "/x"), super::render(&d)))
                .await
                .unwrap();
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        for series in [
            "zygote_build_info{version=\"",
            "zygote_pool_claims_total{profile=\"fast\",result=\"disabled\"} 1",
            "zygote_pool_fallbacks_total{profile=\"fast\",reason=\"pool_disabled\"} 1",
            "zygote_pool_target{profile=\"default\"}",
            "zygote_tasks_running{mode=\"wasm\"} 0",
            "zygote_ttrpc_requests_total{method=\"state\",result=\"not_found\"}",
            "process_resident_memory_bytes",
        ] {
            assert!(ok.contains(series), "{series} missing:\n{ok}");
        }
        assert!(String::from_utf8(body.unwrap())
            .unwrap()
            .contains("zygote_pool_idle_pss_bytes"));
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        // The address is taken now: logged, no listener, nothing else fails.
        assert_eq!(super::serve(daemon, Some(addr)), None);
    }
}

//! The CRI side: waiting for containerd's socket to answer, and the probe
//! that proves a handler works (RunPodSandbox, StopPodSandbox,
//! RemovePodSandbox of a host-network pod, so no CNI is needed), over the
//! `k8s-cri` crate's tonic client on the unix socket (as `tests/cri`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::service_fn;

use crate::error::{Error, Result};

async fn connect(socket: &Path) -> std::result::Result<RuntimeServiceClient<Channel>, String> {
    let path = socket.to_path_buf();
    let ch = Endpoint::try_from("http://[::]:50051")
        .map_err(|e| e.to_string())?
        .timeout(Duration::from_secs(60))
        .connect_with_connector(service_fn(move |_: Uri| {
            let path: PathBuf = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .map_err(|e| e.to_string())?;
    Ok(RuntimeServiceClient::new(ch))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("tokio runtime: {e}")))
}

/// Waits until CRI answers `Version` on `socket`, at most `timeout`.
pub fn wait_for_cri(socket: &Path, timeout: Duration) -> Result<String> {
    let rt = runtime()?;
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        let r = rt.block_on(async {
            let mut c = connect(socket).await?;
            c.version(VersionRequest::default())
                .await
                .map_err(|s| s.message().to_string())
        });
        match r {
            Ok(v) => {
                let v = v.into_inner();
                return Ok(format!("{} {}", v.runtime_name, v.runtime_version));
            }
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(Error::Other(format!(
        "containerd's CRI socket {} did not answer within {} s: {last}",
        socket.display(),
        timeout.as_secs()
    )))
}

/// Runs a pod with `handler`, then stops and removes it.
pub fn probe(socket: &Path, handler: &str) -> Result<()> {
    let err = |problem: String| Error::Probe {
        handler: handler.into(),
        socket: socket.into(),
        problem,
    };
    let rt = runtime()?;
    let name = format!("zygote-installer-probe-{}", std::process::id());
    let config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.clone(),
            uid: format!("{name}-uid"),
            namespace: "kube-system".into(),
            attempt: 0,
        }),
        // A host-network pod has no UTS namespace of its own, so no hostname.
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    rt.block_on(async {
        let mut c = connect(socket).await.map_err(err)?;
        let id = c
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: handler.into(),
            })
            .await
            .map_err(|s| err(format!("RunPodSandbox: {}", s.message())))?
            .into_inner()
            .pod_sandbox_id;
        tracing::info!(handler, pod = %id, "probe pod runs");
        let stop = c
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await;
        let remove = c
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await;
        stop.map_err(|s| err(format!("StopPodSandbox {id}: {}", s.message())))?;
        remove.map_err(|s| err(format!("RemovePodSandbox {id}: {}", s.message())))?;
        Ok(())
    })
}

//! A blocking CRI client ([`Cri`]): the `k8s-cri` crate's tonic clients
//! (CRI v1) over containerd's unix socket, each call run to completion on a
//! small tokio runtime of the client's own, so tests stay plain `#[test]`
//! functions. Errors are the gRPC [`Status`] CRI answered.

use std::path::Path;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Status;
use tower::service_fn;

/// Per-call deadline: nothing a test asks for takes this long.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Cri {
    rt: tokio::runtime::Runtime,
    rs: RuntimeServiceClient<Channel>,
    is: ImageServiceClient<Channel>,
}

impl Cri {
    /// Connects to the CRI socket at `socket`.
    pub fn connect(socket: &Path) -> Cri {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let path = socket.to_path_buf();
        let channel = rt
            .block_on(async move {
                Endpoint::try_from("http://[::]:50051")
                    .expect("endpoint")
                    .timeout(CALL_TIMEOUT)
                    .connect_with_connector(service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
                    }))
                    .await
            })
            .unwrap_or_else(|e| panic!("connect to CRI at {}: {e}", socket.display()));
        Cri {
            rt,
            rs: RuntimeServiceClient::new(channel.clone()),
            is: ImageServiceClient::new(channel),
        }
    }

    /// Runs one call of the runtime service.
    pub fn rs<T, F>(&self, f: impl FnOnce(RuntimeServiceClient<Channel>) -> F) -> Result<T, Status>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.rt.block_on(f(self.rs.clone())).map(|r| r.into_inner())
    }

    pub fn version(&self) -> Result<VersionResponse, Status> {
        self.rs(|mut c| async move { c.version(VersionRequest::default()).await })
    }

    pub fn image_status(&self, image: &str) -> Result<Option<Image>, Status> {
        let req = ImageStatusRequest {
            image: Some(ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            verbose: false,
        };
        let mut c = self.is.clone();
        self.rt
            .block_on(async move { c.image_status(req).await })
            .map(|r| r.into_inner().image)
    }

    pub fn run_pod(&self, config: &PodSandboxConfig, handler: &str) -> Result<String, Status> {
        let req = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        };
        self.rs(|mut c| async move { c.run_pod_sandbox(req).await })
            .map(|r| r.pod_sandbox_id)
    }

    pub fn stop_pod(&self, id: &str) -> Result<(), Status> {
        let req = StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.rs(|mut c| async move { c.stop_pod_sandbox(req).await }).map(drop)
    }

    pub fn remove_pod(&self, id: &str) -> Result<(), Status> {
        let req = RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.rs(|mut c| async move { c.remove_pod_sandbox(req).await })
            .map(drop)
    }

    pub fn pod_status(&self, id: &str) -> Result<PodSandboxStatusResponse, Status> {
        let req = PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: true,
        };
        self.rs(|mut c| async move { c.pod_sandbox_status(req).await })
    }

    pub fn list_pods(&self, filter: PodSandboxFilter) -> Result<Vec<PodSandbox>, Status> {
        let req = ListPodSandboxRequest { filter: Some(filter) };
        self.rs(|mut c| async move { c.list_pod_sandbox(req).await })
            .map(|r| r.items)
    }

    pub fn create_container(
        &self,
        pod_id: &str,
        config: &ContainerConfig,
        pod_config: &PodSandboxConfig,
    ) -> Result<String, Status> {
        let req = CreateContainerRequest {
            pod_sandbox_id: pod_id.into(),
            config: Some(config.clone()),
            sandbox_config: Some(pod_config.clone()),
        };
        self.rs(|mut c| async move { c.create_container(req).await })
            .map(|r| r.container_id)
    }

    pub fn start_container(&self, id: &str) -> Result<(), Status> {
        let req = StartContainerRequest {
            container_id: id.into(),
        };
        self.rs(|mut c| async move { c.start_container(req).await }).map(drop)
    }

    pub fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<(), Status> {
        let req = StopContainerRequest {
            container_id: id.into(),
            timeout: timeout_secs,
        };
        self.rs(|mut c| async move { c.stop_container(req).await }).map(drop)
    }

    pub fn remove_container(&self, id: &str) -> Result<(), Status> {
        let req = RemoveContainerRequest {
            container_id: id.into(),
        };
        self.rs(|mut c| async move { c.remove_container(req).await }).map(drop)
    }

    pub fn container_status(&self, id: &str) -> Result<ContainerStatusResponse, Status> {
        let req = ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        };
        self.rs(|mut c| async move { c.container_status(req).await })
    }

    pub fn list_containers(&self, filter: ContainerFilter) -> Result<Vec<Container>, Status> {
        let req = ListContainersRequest { filter: Some(filter) };
        self.rs(|mut c| async move { c.list_containers(req).await })
            .map(|r| r.containers)
    }

    pub fn exec_sync(&self, id: &str, cmd: &[&str], timeout_secs: i64) -> Result<ExecSyncResponse, Status> {
        let req = ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: timeout_secs,
        };
        self.rs(|mut c| async move { c.exec_sync(req).await })
    }

    /// Exec: the streaming URL of `cmd` in container `id`.
    pub fn exec(&self, id: &str, cmd: &[&str], stdin: bool, tty: bool) -> Result<String, Status> {
        let req = ExecRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            tty,
            stdin,
            stdout: true,
            // A terminal has one output stream.
            stderr: !tty,
        };
        self.rs(|mut c| async move { c.exec(req).await }).map(|r| r.url)
    }

    /// Attach: the streaming URL of container `id`'s stdio.
    pub fn attach(&self, id: &str, stdin: bool, tty: bool) -> Result<String, Status> {
        let req = AttachRequest {
            container_id: id.into(),
            stdin,
            tty,
            stdout: true,
            stderr: !tty,
        };
        self.rs(|mut c| async move { c.attach(req).await }).map(|r| r.url)
    }

    /// PortForward: the streaming URL for ports of pod `pod_id`.
    pub fn port_forward(&self, pod_id: &str, ports: &[i32]) -> Result<String, Status> {
        let req = PortForwardRequest {
            pod_sandbox_id: pod_id.into(),
            port: ports.to_vec(),
        };
        self.rs(|mut c| async move { c.port_forward(req).await }).map(|r| r.url)
    }

    pub fn reopen_log(&self, id: &str) -> Result<(), Status> {
        let req = ReopenContainerLogRequest {
            container_id: id.into(),
        };
        self.rs(|mut c| async move { c.reopen_container_log(req).await })
            .map(drop)
    }

    pub fn update_resources(&self, id: &str, linux: LinuxContainerResources) -> Result<(), Status> {
        let req = UpdateContainerResourcesRequest {
            container_id: id.into(),
            linux: Some(linux),
            ..Default::default()
        };
        self.rs(|mut c| async move { c.update_container_resources(req).await })
            .map(drop)
    }

    pub fn container_stats(&self, id: &str) -> Result<Option<ContainerStats>, Status> {
        let req = ContainerStatsRequest {
            container_id: id.into(),
        };
        self.rs(|mut c| async move { c.container_stats(req).await })
            .map(|r| r.stats)
    }

    pub fn pod_stats(&self, id: &str) -> Result<Option<PodSandboxStats>, Status> {
        let req = PodSandboxStatsRequest {
            pod_sandbox_id: id.into(),
        };
        self.rs(|mut c| async move { c.pod_sandbox_stats(req).await })
            .map(|r| r.stats)
    }
}

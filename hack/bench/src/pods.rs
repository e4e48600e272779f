//! `bench-pods`: pod start through containerd's CRI API, runtime handlers
//! side by side, interleaved.
//!
//! ```text
//! bench-pods --cri <containerd.sock> --image <ref in k8s.io> [--handlers runc,crun,zygote] [-n 20] [--burst 20]
//! ```
//! One sample is RunPodSandbox + CreateContainer (`sleep 3600`) +
//! StartContainer, timed per call and in all, until StartContainer returns
//! (the container's process runs). No CLI process is on the path: the calls
//! go straight to containerd's CRI socket (gRPC, `k8s-cri`). Pods with the
//! host's network and pods with their own network namespace from CNI
//! (whatever the CRI plugin's CNI config says) are measured separately:
//! their RunPodSandbox difference is CNI's cost. Handlers take turns in
//! every round, so all see the same machine noise. A burst starts `--burst`
//! pods of one handler at once (handlers in turn) and reports p50/p99 of the
//! whole start. Pods are stopped and removed after each sample, untimed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, CreateContainerRequest, ImageSpec, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxMetadata,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StopPodSandboxRequest,
};
use tonic::transport::{Channel, Endpoint, Uri};

type Client = RuntimeServiceClient<Channel>;

/// Pod start through CRI: runtime handlers interleaved (see the module docs).
#[derive(Parser, Debug)]
#[command(name = "bench-pods")]
struct Args {
    /// containerd's socket (the CRI plugin serves on it).
    #[arg(long, value_name = "SOCK")]
    cri: PathBuf,
    /// The container image (already in containerd's `k8s.io` namespace).
    #[arg(long, value_name = "REF")]
    image: String,
    /// CRI runtime handlers, comma separated (names in containerd's config).
    #[arg(long, value_delimiter = ',', default_value = "runc,crun,zygote")]
    handlers: Vec<String>,
    /// Samples per handler and network mode, interleaved.
    #[arg(short = 'n', default_value_t = 20, value_name = "N")]
    n: usize,
    /// Pods started at once in the burst (0: no burst).
    #[arg(long, default_value_t = 20, value_name = "N")]
    burst: usize,
}

/// The time of each call of one pod start.
#[derive(Debug, Clone, Copy)]
struct Sample {
    sandbox: Duration,
    create: Duration,
    start: Duration,
}

impl Sample {
    fn total(&self) -> Duration {
        self.sandbox + self.create + self.start
    }
}

async fn connect(sock: &Path) -> Result<Client> {
    let path = sock.to_path_buf();
    let channel = Endpoint::try_from("http://[::]:50051")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
        }))
        .await
        .with_context(|| format!("connect to CRI at {}", sock.display()))?;
    Ok(RuntimeServiceClient::new(channel))
}

fn pod_config(name: &str, host_network: bool) -> PodSandboxConfig {
    let network = if host_network {
        NamespaceMode::Node
    } else {
        NamespaceMode::Pod
    };
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.to_string(),
            uid: format!("{:x}", fnv(name)),
            namespace: "bench".into(),
            attempt: 0,
        }),
        hostname: if host_network { String::new() } else { "bench".into() },
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: network as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Starts one pod (timed), then stops and removes it (untimed).
async fn one_pod(mut c: Client, image: &str, handler: &str, name: &str, host_network: bool) -> Result<Sample> {
    let config = pod_config(name, host_network);
    let t0 = Instant::now();
    let pod = c
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.to_string(),
        })
        .await
        .with_context(|| format!("RunPodSandbox {name} ({handler})"))?
        .into_inner()
        .pod_sandbox_id;
    let t1 = Instant::now();
    let created = c
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: "app".into(),
                    attempt: 0,
                }),
                image: Some(ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
                command: vec!["sleep".into(), "3600".into()],
                ..Default::default()
            }),
            sandbox_config: Some(config),
        })
        .await;
    let t2 = Instant::now();
    let started = match created {
        Ok(r) => {
            let id = r.into_inner().container_id;
            c.start_container(StartContainerRequest { container_id: id })
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    };
    let t3 = Instant::now();
    let stopped = c
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await;
    let removed = c
        .remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: pod })
        .await;
    started.with_context(|| format!("CreateContainer + StartContainer in {name} ({handler})"))?;
    stopped.with_context(|| format!("StopPodSandbox {name}"))?;
    removed.with_context(|| format!("RemovePodSandbox {name}"))?;
    Ok(Sample {
        sandbox: t1 - t0,
        create: t2 - t1,
        start: t3 - t2,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn quantile(v: &[Duration], q: f64) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[((s.len() - 1) as f64 * q).round() as usize]
}

fn report(mode: &str, handlers: &[String], samples: &[Vec<Sample>]) {
    println!("\n{mode}: ms, median (p99) of {} samples per handler", samples[0].len());
    println!(
        "{:<10} {:>16} {:>16} {:>16} {:>16}",
        "handler", "RunPodSandbox", "CreateContainer", "StartContainer", "pod start"
    );
    for (h, s) in handlers.iter().zip(samples) {
        let col = |f: fn(&Sample) -> Duration| {
            let v: Vec<Duration> = s.iter().map(f).collect();
            format!("{:.1} ({:.1})", ms(quantile(&v, 0.5)), ms(quantile(&v, 0.99)))
        };
        println!(
            "{h:<10} {:>16} {:>16} {:>16} {:>16}",
            col(|s| s.sandbox),
            col(|s| s.create),
            col(|s| s.start),
            col(Sample::total)
        );
    }
    if let Some(z) = handlers.iter().position(|h| h == "zygote") {
        let med = |i: usize| quantile(&samples[i].iter().map(Sample::total).collect::<Vec<_>>(), 0.5);
        for (i, h) in handlers.iter().enumerate().filter(|(i, _)| *i != z) {
            println!("pod start, {h} / zygote (medians): {:.2}x", ms(med(i)) / ms(med(z)));
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let c = connect(&args.cri).await?;
    let tag = std::process::id();
    for host_network in [true, false] {
        let mode = if host_network { "host-network pods" } else { "CNI pods" };
        let mut samples = vec![Vec::new(); args.handlers.len()];
        // One untimed pod per handler first: image unpack, daemon start.
        for h in &args.handlers {
            one_pod(
                c.clone(),
                &args.image,
                h,
                &format!("warmup-{h}-{host_network}-{tag}"),
                host_network,
            )
            .await?;
        }
        for round in 0..args.n {
            for (i, h) in args.handlers.iter().enumerate() {
                let name = format!("bench-{h}-{host_network}-{tag}-{round}");
                samples[i].push(one_pod(c.clone(), &args.image, h, &name, host_network).await?);
            }
        }
        report(mode, &args.handlers, &samples);
    }
    if args.burst > 0 {
        println!("\nburst: {} CNI pods at once per handler, pod start ms", args.burst);
        for h in &args.handlers {
            let t0 = Instant::now();
            let all: Vec<_> = (0..args.burst)
                .map(|i| {
                    let (c, image, h) = (c.clone(), args.image.clone(), h.clone());
                    let name = format!("burst-{h}-{tag}-{i}");
                    tokio::spawn(async move { one_pod(c, &image, &h, &name, false).await })
                })
                .collect();
            let mut totals = Vec::new();
            for j in all {
                totals.push(j.await??.total());
            }
            println!(
                "{h:<10} p50 {:.1}  p99 {:.1}  all {} started and removed in {:.0}",
                ms(quantile(&totals, 0.5)),
                ms(quantile(&totals, 0.99)),
                totals.len(),
                ms(t0.elapsed())
            );
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let line: Vec<String> = std::env::args().collect();
    println!("command: {}", line.join(" "));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(args))
}

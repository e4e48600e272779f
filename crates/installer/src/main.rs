//! `zygote-installer install|uninstall|status`: the command line over the
//! library (see the crate docs and README "Install on a node").

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use zygote_installer::host::{under, Host};
use zygote_installer::install::{install, uninstall, Containerd};
use zygote_installer::node::Label;
use zygote_installer::restart::Restart;

#[derive(Parser)]
#[command(
    name = "zygote-installer",
    about = "Install zygote on a node: binaries, config, containerd handlers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct Node {
    /// The node's root filesystem (every path below is under it).
    #[arg(long, default_value = "/")]
    host_root: PathBuf,
    /// Where the shim and zygotectl go.
    #[arg(long, default_value = "/opt/zygote/bin")]
    install_dir: PathBuf,
    /// containerd's main config.
    #[arg(long, default_value = "/etc/containerd/config.toml")]
    containerd_config: PathBuf,
    /// zygote's config dir (config.toml, handlers/); the shim reads /etc/zygote/config.toml
    /// unless containerd's environment sets ZYGOTE_CONFIG.
    #[arg(long, default_value = "/etc/zygote")]
    zygote_dir: PathBuf,
    /// A directory on containerd's PATH for a symlink to the shim (containerd 1.6 ignores
    /// runtime_path); "" for none. An existing file of that name is left alone.
    #[arg(long, default_value = "/usr/local/bin")]
    link_dir: PathBuf,
    /// The zygote daemons' state root (running tasks are found there).
    #[arg(long, default_value = "/run/zygote")]
    state_dir: PathBuf,
}

#[derive(Args, Clone)]
struct Ctrd {
    /// How containerd is restarted after the config changes.
    #[arg(long, value_enum, default_value = "systemd")]
    restart: Restart,
    /// The systemd unit restarted by `--restart systemd`.
    #[arg(long, default_value = "containerd")]
    containerd_unit: String,
    /// containerd's pid for `--restart signal` (default: the one process named containerd).
    #[arg(long)]
    containerd_pid: Option<i32>,
    /// containerd's socket, under the host root.
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    containerd_socket: PathBuf,
    /// How long to wait for containerd's CRI socket after a restart, in seconds.
    #[arg(long, default_value_t = 120)]
    wait_secs: u64,
}

#[derive(Args, Clone)]
struct Labels {
    /// The Kubernetes node to label (install: once the probe passed; uninstall: unlabelled
    /// before the handlers go). Needs the Kubernetes API (service account or KUBECONFIG).
    #[arg(long, requires = "label")]
    node_name: Option<String>,
    /// KEY=VALUE node labels (Kubernetes label syntax) for --node-name; repeatable.
    /// uninstall removes these keys.
    #[arg(long, requires = "node_name")]
    label: Vec<Label>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Copy the binaries, write zygote's config, register the handlers, restart and probe.
    Install {
        #[command(flatten)]
        node: Node,
        #[command(flatten)]
        ctrd: Ctrd,
        /// Directory holding containerd-shim-zygote-v1 and zygotectl (default: the installer's own).
        #[arg(long)]
        source_dir: Option<PathBuf>,
        /// zygote's config.toml; its profiles decide the handlers.
        #[arg(long)]
        zygote_config: PathBuf,
        #[command(flatten)]
        labels: Labels,
    },
    /// Remove the handlers (config restored byte for byte), then the binaries unless tasks run.
    Uninstall {
        #[command(flatten)]
        node: Node,
        #[command(flatten)]
        ctrd: Ctrd,
        #[command(flatten)]
        labels: Labels,
    },
    /// What is installed.
    Status {
        #[command(flatten)]
        node: Node,
        #[arg(long)]
        json: bool,
    },
}

fn host(n: &Node) -> Host {
    let mut h = Host::new(
        &n.host_root,
        &n.install_dir,
        &n.containerd_config,
        &n.state_dir,
        &n.zygote_dir,
    );
    if !n.link_dir.as_os_str().is_empty() {
        h.link_dir = Some(under(&n.host_root, &n.link_dir));
    }
    h
}

fn containerd(n: &Node, c: &Ctrd) -> Containerd {
    Containerd {
        restart: c.restart,
        unit: c.containerd_unit.clone(),
        pid: c.containerd_pid,
        socket: under(&n.host_root, &c.containerd_socket),
        wait: Duration::from_secs(c.wait_secs),
    }
}

/// Sets or removes `labels` on node `name` through the Kubernetes API.
#[cfg(feature = "kube")]
fn label_node(name: &str, labels: &[Label], set: bool) -> anyhow::Result<()> {
    use zygote_installer::node::{default_client, patch_labels};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async { patch_labels(default_client().await?, name, labels, set).await })?;
    Ok(())
}

#[cfg(not(feature = "kube"))]
fn label_node(name: &str, _labels: &[Label], _set: bool) -> anyhow::Result<()> {
    anyhow::bail!("--node-name {name:?}: this zygote-installer is built without the `kube` feature")
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Cmd::Install {
            node,
            ctrd,
            source_dir,
            zygote_config,
            labels,
        } => {
            let source = match source_dir {
                Some(d) => d,
                None => std::env::current_exe()
                    .context("the installer's own path")?
                    .parent()
                    .context("the installer's directory")?
                    .to_path_buf(),
            };
            if let (Some(name), Restart::None) = (&labels.node_name, ctrd.restart) {
                // Nothing would probe the handlers: a "ready" label could send pods to a node without them.
                anyhow::bail!(
                    "--node-name {name:?} with --restart none: the handlers are not probed, so the node is not \
                     labelled; restart containerd, then install again with --restart systemd|signal"
                );
            }
            let hs = install(&host(&node), &source, &zygote_config, &containerd(&node, &ctrd))?;
            for h in &hs {
                println!("handler {} -> profile {}", h.name, h.profile);
            }
            if let Some(name) = &labels.node_name {
                // The install stays: the node works; the DaemonSet pod exits non-zero and is retried.
                label_node(name, &labels.label, true).with_context(|| {
                    format!("zygote is installed on this node, but node {name:?} is not labelled (the install stays)")
                })?;
            }
        }
        Cmd::Uninstall { node, ctrd, labels } => {
            if let Some(name) = &labels.node_name {
                // First, so no new pod is scheduled onto a node about to lose its handlers.
                label_node(name, &labels.label, false)
                    .with_context(|| format!("nothing uninstalled: the labels of node {name:?} are still set"))?;
            }
            let u = uninstall(&host(&node), &containerd(&node, &ctrd))?;
            if !u.blocked_by.is_empty() {
                println!(
                    "handlers removed; the shim stays: zygote tasks still run: {}",
                    u.blocked_by.join(", ")
                );
            }
        }
        Cmd::Status { node, json } => {
            let s = zygote_installer::status::status(&host(&node))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!(
                    "containerd config: {} (version {}, {:?})",
                    s.containerd_config.display(),
                    s.config_version,
                    s.mode
                );
                println!("handlers ({}): {}", s.handlers_file.display(), s.handlers.join(", "));
                for b in &s.binaries {
                    match b.bytes {
                        Some(n) => println!("binary {}: {n} bytes", b.path.display()),
                        None => println!("binary {}: missing", b.path.display()),
                    }
                }
                match &s.zygote_config {
                    Some(p) => println!("zygote config: {}", p.display()),
                    None => println!("zygote config: missing"),
                }
                println!("running zygote tasks: {}", s.running_tasks.len());
                for t in &s.running_tasks {
                    println!("  {t}");
                }
            }
        }
    }
    Ok(())
}

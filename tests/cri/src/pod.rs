//! Pods as the tests build them: the handlers ([`Handler`]), names that
//! look like CRI ids ([`hex64`]), sandbox and container configs
//! ([`pod_config`], [`container_config`]), and [`Pod`], a running sandbox
//! with its containers that is removed on drop and whose
//! [`Pod::remove_and_check`] asserts nothing of it is left on the node.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_cri::v1::*;
use zygote_integration_tests::{cgroup_roots, cgroups_named, mounts_mentioning, proc_alive, wait_until, Runtime};

use crate::client::Cri;
use crate::node::{node, remove_cgroup_tree};

/// A CRI runtime handler of the node (hack/containerd.sh, ZYGOTE_CRI=1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    Runc,
    Zygote,
    /// zygote with runtime options selecting profile "open".
    ZygoteAlt,
    /// zygote with runtime options naming a profile no config has.
    ZygoteBadOpts,
}

impl Handler {
    pub fn name(self) -> &'static str {
        match self {
            Handler::Runc => "runc",
            Handler::Zygote => "zygote",
            Handler::ZygoteAlt => "zygote-alt",
            Handler::ZygoteBadOpts => "zygote-badopts",
        }
    }

    pub fn of(rt: Runtime) -> Handler {
        match rt {
            Runtime::Runc => Handler::Runc,
            Runtime::Zygote => Handler::Zygote,
        }
    }

    pub fn is_zygote(self) -> bool {
        self != Handler::Runc
    }
}

/// 64 hex characters, unique in this run: what CRI ids look like, used for
/// every name CRI lets the tests choose.
pub fn hex64() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!(
        "{:08x}{:08x}{:048x}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        nanos
    )
}

/// Pod network and IPC, a pid namespace per container: what kubelet asks
/// for by default (CRI's zero value of `pid` would be POD, shared).
pub fn own_pid_namespace() -> NamespaceOption {
    NamespaceOption {
        pid: NamespaceMode::Container as i32,
        ..Default::default()
    }
}

/// A pod in its own cgroup (`<node parent>/<uid>`) and log directory, pod
/// network (CNI), containers in their own pid namespaces.
pub fn pod_config() -> PodSandboxConfig {
    let uid = hex64();
    let n = node();
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: hex64(),
            uid: uid.clone(),
            namespace: hex64(),
            attempt: 0,
        }),
        hostname: "zygote-cri".into(),
        log_directory: n.dir.join("logs").join(&uid).to_string_lossy().into_owned(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("{}/{uid}", n.cgroup_parent),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(own_pid_namespace()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A busybox container running `sh -c <script>`, logging to `<name>.log`.
pub fn container_config(script: &str) -> ContainerConfig {
    let name = hex64();
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.clone(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: node().image.clone(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        log_path: format!("{name}.log"),
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources::default()),
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(own_pid_namespace()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// A running pod sandbox. Dropping it stops and removes it (best effort);
/// tests end with [`Pod::remove_and_check`].
pub struct Pod<'a> {
    pub cri: &'a Cri,
    pub id: String,
    pub config: PodSandboxConfig,
    pub handler: Handler,
    /// Host pids of the sandbox and every container started, to check they
    /// are gone with the pod.
    pids: Vec<u32>,
    containers: Vec<String>,
}

/// The pid in a CRI status's verbose `info` (containerd puts it there).
pub fn info_pid(info: &std::collections::HashMap<String, String>) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    v["pid"].as_u64().map(|p| p as u32).filter(|p| *p > 0)
}

impl<'a> Pod<'a> {
    /// RunPodSandbox; panics with CRI's answer (and containerd's log) on failure.
    pub fn run(cri: &'a Cri, handler: Handler, config: PodSandboxConfig) -> Pod<'a> {
        let id = cri.run_pod(&config, handler.name()).unwrap_or_else(|e| {
            panic!(
                "RunPodSandbox with handler {}: {e:?}\n--- containerd log ---\n{}",
                handler.name(),
                node().log_tail(30)
            )
        });
        let mut pod = Pod {
            cri,
            id,
            config,
            handler,
            pids: Vec::new(),
            containers: Vec::new(),
        };
        let st = cri.pod_status(&pod.id).expect("PodSandboxStatus");
        pod.pids.extend(info_pid(&st.info));
        pod
    }

    /// CreateContainer (not started).
    pub fn create(&mut self, config: &ContainerConfig) -> Result<String, tonic::Status> {
        let id = self.cri.create_container(&self.id, config, &self.config)?;
        self.containers.push(id.clone());
        Ok(id)
    }

    /// CreateContainer + StartContainer; panics on failure.
    pub fn start(&mut self, config: &ContainerConfig) -> String {
        let id = self.create(config).unwrap_or_else(|e| {
            panic!(
                "CreateContainer ({}): {e:?}\n--- containerd log ---\n{}",
                self.handler.name(),
                node().log_tail(30)
            )
        });
        self.cri.start_container(&id).unwrap_or_else(|e| {
            panic!(
                "StartContainer ({}): {e:?}\n--- containerd log ---\n{}",
                self.handler.name(),
                node().log_tail(30)
            )
        });
        let st = self.cri.container_status(&id).expect("ContainerStatus");
        self.pids.extend(info_pid(&st.info));
        id
    }

    /// The container's log file on the host.
    pub fn log_path(&self, config: &ContainerConfig) -> PathBuf {
        PathBuf::from(&self.config.log_directory).join(&config.log_path)
    }

    /// The pod's cgroup below every hierarchy root.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let parent = self.config.linux.as_ref().map_or("", |l| l.cgroup_parent.as_str());
        cgroup_roots()
            .into_iter()
            .map(|r| r.join(parent.trim_start_matches('/')))
            .filter(|p| p.exists())
            .collect()
    }

    /// Stops and removes the pod, then asserts it left nothing: CRI lists
    /// neither it nor its containers, no process of it runs, no zygote task
    /// dir, mount or cgroup is named after its ids, its cgroup has no child.
    pub fn remove_and_check(mut self) {
        let cri = self.cri;
        cri.stop_pod(&self.id).expect("StopPodSandbox");
        cri.remove_pod(&self.id).expect("RemovePodSandbox");
        let filter = PodSandboxFilter {
            id: self.id.clone(),
            ..Default::default()
        };
        assert!(cri.list_pods(filter).expect("ListPodSandbox").is_empty());
        let filter = ContainerFilter {
            pod_sandbox_id: self.id.clone(),
            ..Default::default()
        };
        assert!(cri.list_containers(filter).expect("ListContainers").is_empty());
        let pids = std::mem::take(&mut self.pids);
        assert!(
            wait_until(Duration::from_secs(10), || pids.iter().all(|p| !proc_alive(*p))),
            "{}: processes of the removed pod still run: {pids:?}",
            self.handler.name()
        );
        let mut ids = vec![self.id.clone()];
        ids.extend(self.containers.iter().cloned());
        let n = node();
        for id in &ids {
            assert_eq!(
                n.zygote_task_dirs(id),
                Vec::<PathBuf>::new(),
                "zygote task dir of {id} left"
            );
            assert_eq!(mounts_mentioning(id), Vec::<String>::new(), "mounts of {id} left");
            assert_eq!(cgroups_named(id), Vec::<String>::new(), "cgroups of {id} left");
        }
        let (pool, others) = self.pool_cgroups_left();
        assert!(others.is_empty(), "cgroups left under the pod's cgroup: {others:?}");
        if !pool.is_empty() {
            // KNOWN ISSUE (zygote, reported to the lead): the pool pre-places
            // idle zygotes under the cgroup parent of the last task, which
            // under CRI is the pod's own cgroup; they stay after the pod is
            // removed, so kubelet could not remove the pod's cgroup.
            // `pod_cgroup_holds_no_pool_zygote` asserts it strictly.
            eprintln!(
                "NOTICE: {}: pool zygote cgroups left in the removed pod's cgroup: {pool:?}",
                self.handler.name()
            );
        }
        self.id.clear();
    }

    /// Child cgroups of the pod's cgroup, in every hierarchy: the zygote
    /// pool's (`zygote@...`, with their `cgroup.procs`) and the others.
    pub fn pool_cgroups_left(&self) -> (Vec<String>, Vec<PathBuf>) {
        let (mut pool, mut others) = (Vec::new(), Vec::new());
        for dir in self.cgroup_dirs() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                if !p.is_dir() {
                    continue;
                }
                if e.file_name().to_string_lossy().starts_with("zygote@") {
                    let procs = std::fs::read_to_string(p.join("cgroup.procs")).unwrap_or_default();
                    pool.push(format!(
                        "{} (procs: {})",
                        p.display(),
                        procs.split_whitespace().collect::<Vec<_>>().join(",")
                    ));
                } else {
                    others.push(p);
                }
            }
        }
        (pool, others)
    }
}

impl Drop for Pod<'_> {
    fn drop(&mut self) {
        if !self.id.is_empty() {
            let _ = self.cri.stop_pod(&self.id);
            let _ = self.cri.remove_pod(&self.id);
        }
        for dir in self.cgroup_dirs() {
            remove_cgroup_tree(&dir);
        }
        let _ = std::fs::remove_dir_all(&self.config.log_directory);
    }
}

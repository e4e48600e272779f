//! Pod sandbox and container lifecycle: run, create, start, status, list
//! with filters, stop with a timeout, remove; several containers per pod;
//! which zygote tasks ran warm.

use std::collections::HashMap;

use k8s_cri::v1::*;
use zygote_cri_tests::*;
use zygote_integration_tests::{require_runtime, wait_until, Runtime};

fn state(cri: &Cri, id: &str) -> ContainerState {
    let st = cri
        .container_status(id)
        .expect("ContainerStatus")
        .status
        .expect("status");
    ContainerState::try_from(st.state).expect("known state")
}

fn exit_code(cri: &Cri, id: &str) -> i32 {
    cri.container_status(id)
        .expect("ContainerStatus")
        .status
        .expect("status")
        .exit_code
}

fn listed(cri: &Cri, filter: ContainerFilter) -> Vec<String> {
    let mut v: Vec<String> = cri
        .list_containers(filter)
        .expect("ListContainers")
        .into_iter()
        .map(|c| c.id)
        .collect();
    v.sort();
    v
}

#[test]
fn pod_and_container_lifecycle() {
    for_each_handler("pod_and_container_lifecycle", |cri, h| {
        let mut pod = Pod::run(cri, h, pod_config());
        assert_eq!(pod.id.len(), 64);
        let st = cri
            .pod_status(&pod.id)
            .expect("PodSandboxStatus")
            .status
            .expect("status");
        assert_eq!(st.state, PodSandboxState::SandboxReady as i32, "{}", h.name());
        assert_eq!(st.runtime_handler, h.name());
        assert!(
            !st.network.expect("network").ip.is_empty(),
            "{}: the pod got no IP from CNI",
            h.name()
        );

        // pid 1 without a TERM handler: stopped by SIGKILL after the timeout.
        let mut sleeper = container_config("exec sleep 1000");
        sleeper.labels = HashMap::from([("role".to_string(), "sleeper".to_string())]);
        let a = pod.create(&sleeper).expect("CreateContainer");
        assert_eq!(a.len(), 64);
        assert_eq!(state(cri, &a), ContainerState::ContainerCreated, "{}", h.name());
        cri.start_container(&a).expect("StartContainer");
        assert_eq!(state(cri, &a), ContainerState::ContainerRunning, "{}", h.name());
        // A TERM handler that exits 3.
        let b = pod.start(&container_config("trap 'exit 3' TERM; while true; do sleep 0.1; done"));

        let both = {
            let mut v = vec![a.clone(), b.clone()];
            v.sort();
            v
        };
        let by_pod = ContainerFilter {
            pod_sandbox_id: pod.id.clone(),
            ..Default::default()
        };
        assert_eq!(listed(cri, by_pod.clone()), both, "{}", h.name());
        let by_id = ContainerFilter {
            id: a.clone(),
            ..Default::default()
        };
        assert_eq!(listed(cri, by_id), vec![a.clone()]);
        let by_label = ContainerFilter {
            pod_sandbox_id: pod.id.clone(),
            label_selector: HashMap::from([("role".to_string(), "sleeper".to_string())]),
            ..Default::default()
        };
        assert_eq!(listed(cri, by_label), vec![a.clone()]);

        cri.stop_container(&a, 1).expect("StopContainer a");
        assert_eq!(state(cri, &a), ContainerState::ContainerExited);
        assert_eq!(exit_code(cri, &a), 137, "{}: SIGKILL after the timeout", h.name());
        cri.stop_container(&b, 30).expect("StopContainer b");
        assert_eq!(exit_code(cri, &b), 3, "{}: the TERM handler's exit code", h.name());

        let running = ContainerFilter {
            pod_sandbox_id: pod.id.clone(),
            state: Some(ContainerStateValue {
                state: ContainerState::ContainerRunning as i32,
            }),
            ..Default::default()
        };
        assert!(listed(cri, running).is_empty());
        let exited = ContainerFilter {
            pod_sandbox_id: pod.id.clone(),
            state: Some(ContainerStateValue {
                state: ContainerState::ContainerExited as i32,
            }),
            ..Default::default()
        };
        assert_eq!(listed(cri, exited), both);

        cri.remove_container(&a).expect("RemoveContainer");
        assert_eq!(listed(cri, by_pod), vec![b.clone()]);
        assert!(
            cri.container_status(&a).is_err(),
            "{}: removed container has a status",
            h.name()
        );
        pod.remove_and_check();
    });
}

#[test]
fn several_containers_per_pod() {
    for_each_handler("several_containers_per_pod", |cri, h| {
        let mut pod = Pod::run(cri, h, pod_config());
        let ids: Vec<String> = (0..3)
            .map(|i| pod.start(&container_config(&format!("echo {i} > /tmp/me; exec sleep 1000"))))
            .collect();
        for (i, id) in ids.iter().enumerate() {
            let r = cri.exec_sync(id, &["cat", "/tmp/me"], 10).expect("ExecSync");
            assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), i.to_string(), "{}", h.name());
            // Own rootfs and pid namespace each, one network namespace.
            let r = cri
                .exec_sync(id, &["sh", "-c", "echo $$; readlink /proc/1/ns/net"], 10)
                .expect("ExecSync");
            assert_eq!(r.exit_code, 0);
        }
        let nets: Vec<String> = ids
            .iter()
            .map(|id| {
                let r = cri
                    .exec_sync(id, &["readlink", "/proc/self/ns/net"], 10)
                    .expect("ExecSync");
                String::from_utf8_lossy(&r.stdout).trim().to_string()
            })
            .collect();
        assert!(
            nets.iter().all(|n| n == &nets[0]),
            "{}: one pod network: {nets:?}",
            h.name()
        );
        let filter = ContainerFilter {
            pod_sandbox_id: pod.id.clone(),
            state: Some(ContainerStateValue {
                state: ContainerState::ContainerRunning as i32,
            }),
            ..Default::default()
        };
        assert_eq!(cri.list_containers(filter).expect("ListContainers").len(), 3);
        // RemovePodSandbox of a stopped pod removes its containers too.
        pod.remove_and_check();
    });
}

/// The zygote handler's sandbox and app containers in a profile whose pool
/// only this test uses, after it filled: which ran warm.
#[test]
fn zygote_pods_run_warm() {
    if !require_runtime(Runtime::Zygote, "zygote_pods_run_warm") {
        return;
    }
    let n = node();
    let cri = Cri::connect(&n.address);
    let mut cfg = pod_config();
    cfg.annotations = HashMap::from([("zygote.dev/profile".to_string(), "warmcheck".to_string())]);
    // The first pod starts the daemon when it is not running yet.
    let first = Pod::run(&cri, Handler::Zygote, cfg.clone());
    first.remove_and_check();
    assert!(
        // Four claims follow: two sandboxes, two app containers.
        wait_until(std::time::Duration::from_secs(30), || n.idle("warmcheck") >= 4),
        "the warmcheck pool did not fill"
    );
    let mut cfg = pod_config();
    cfg.annotations = HashMap::from([("zygote.dev/profile".to_string(), "warmcheck".to_string())]);
    // Pod-shared pid namespace: app containers join the sandbox's.
    let mut shared = pod_config();
    shared.annotations = cfg.annotations.clone();
    pod_ns(&mut shared).pid = NamespaceMode::Pod as i32;
    let joined_before = n.cloned_at_claim("warmcheck", "join_pid_namespace");
    let mut pod = Pod::run(&cri, Handler::Zygote, cfg);
    let own_pid = pod.start(&container_config("exec sleep 1000"));
    let mut pod2 = Pod::run(&cri, Handler::Zygote, shared);
    let mut c = container_config("exec sleep 1000");
    container_sc(&mut c).namespace_options = Some(NamespaceOption {
        pid: NamespaceMode::Pod as i32,
        ..Default::default()
    });
    let joins_pid = pod2.start(&c);
    let path = |id: &str| n.timing(id).map(|t| t["path"].as_str().unwrap_or("").to_string());
    let report = format!(
        "sandbox {:?}, app container {:?}, pid-sharing sandbox {:?}, app container joining its pid ns {:?}",
        path(&pod.id),
        path(&own_pid),
        path(&pod2.id),
        path(&joins_pid)
    );
    eprintln!("zygote_pods_run_warm: {report}");
    assert_eq!(path(&pod.id).as_deref(), Some("warm"), "{report}");
    assert_eq!(path(&own_pid).as_deref(), Some("warm"), "{report}");
    assert_eq!(path(&pod2.id).as_deref(), Some("warm"), "{report}");
    // The zygote's child, pid 1 of its own namespace, cannot move into the
    // sandbox's: the claimed zygote clones the init itself, still warm (no
    // monitor exec, the pool cgroup renamed), and says why.
    assert_eq!(path(&joins_pid).as_deref(), Some("warm"), "{report}");
    let cloned = n.timing(&joins_pid).map(|t| t["cloned_at_claim"].clone());
    assert_eq!(cloned, Some(serde_json::json!("join_pid_namespace")), "{report}");
    assert_eq!(
        n.timing(&own_pid).map(|t| t["cloned_at_claim"].clone()),
        Some(serde_json::Value::Null)
    );
    assert!(n.cloned_at_claim("warmcheck", "join_pid_namespace") > joined_before);
    assert_eq!(n.fallbacks("warmcheck", "join_pid_namespace"), 0);
    // The joined container sees the sandbox's pause process (busybox
    // `sleep 2147483647`, hack/build-pause-image.sh) as pid 1.
    let ps = sh(&cri, &joins_pid, "cat /proc/1/cmdline");
    assert!(ps.contains("2147483647"), "pid 1 seen by the joining container: {ps:?}");
    pod.remove_and_check();
    pod2.remove_and_check();
}

/// Regression (found by this suite): the pool pre-placed idle zygotes in
/// the cgroup parent its last task used, which under CRI is that task's pod
/// cgroup: idle zygotes were accounted to a running pod, and a removed
/// pod's cgroup still held `zygote@...` children (kubelet then cannot
/// remove it). Pods' tasks no longer teach the pool a parent.
#[test]
fn pod_cgroup_holds_no_pool_zygote() {
    for_each_handler("pod_cgroup_holds_no_pool_zygote", |cri, h| {
        let n = node();
        let mut pod = Pod::run(cri, h, pod_config());
        pod.start(&container_config("exec sleep 1000"));
        if h.is_zygote() {
            // The pool refilled after the claims (where it places new zygotes).
            assert!(
                wait_until(std::time::Duration::from_secs(20), || n.idle("default")
                    >= n.target("default")),
                "the default pool did not refill"
            );
        }
        // (The containers' own cgroups are the other children now.)
        let (pool, _) = pod.pool_cgroups_left();
        assert!(
            pool.is_empty(),
            "{}: pool zygotes in a running pod's cgroup: {pool:?}",
            h.name()
        );
        cri.stop_pod(&pod.id).expect("StopPodSandbox");
        cri.remove_pod(&pod.id).expect("RemovePodSandbox");
        let (pool, others) = pod.pool_cgroups_left();
        assert!(others.is_empty(), "{}: {others:?}", h.name());
        assert!(
            pool.is_empty(),
            "{}: pool zygotes in the removed pod's cgroup: {pool:?}",
            h.name()
        );
    });
}

//! Resources: a memory limit in the container's cgroup (as the host and
//! the container see it), UpdateContainerResources; OOM kill; ContainerStats
//! and PodSandboxStats.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_cri::v1::*;
use zygote_cri_tests::*;
use zygote_integration_tests::wait_until;

const MIB: i64 = 1 << 20;

fn v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The container's memory limit file on the host (`<cgroup parent>/<id>`,
/// containerd's cgroupfs layout) and inside the container.
fn limit_files(pod: &Pod, id: &str) -> (PathBuf, &'static str) {
    let parent = pod
        .config
        .linux
        .as_ref()
        .expect("linux")
        .cgroup_parent
        .trim_start_matches('/');
    if v2() {
        (
            Path::new("/sys/fs/cgroup").join(parent).join(id).join("memory.max"),
            "/sys/fs/cgroup/memory.max",
        )
    } else {
        (
            Path::new("/sys/fs/cgroup/memory")
                .join(parent)
                .join(id)
                .join("memory.limit_in_bytes"),
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        )
    }
}

fn inside(cri: &Cri, id: &str, file: &str) -> String {
    let r = cri.exec_sync(id, &["cat", file], 10).expect("ExecSync");
    assert_eq!(r.exit_code, 0, "cat {file}: {}", String::from_utf8_lossy(&r.stderr));
    String::from_utf8_lossy(&r.stdout).trim().to_string()
}

#[test]
fn memory_limit_and_update_container_resources() {
    for_each_handler("memory_limit_and_update_container_resources", |cri, h| {
        let mut pod = Pod::run(cri, h, pod_config());
        let mut cfg = container_config("exec sleep 1000");
        cfg.linux.as_mut().expect("linux").resources = Some(LinuxContainerResources {
            memory_limit_in_bytes: 64 * MIB,
            cpu_shares: 512,
            ..Default::default()
        });
        let id = pod.start(&cfg);
        let (host_file, in_file) = limit_files(&pod, &id);
        let host = std::fs::read_to_string(&host_file).unwrap_or_else(|e| panic!("{}: {e}", host_file.display()));
        assert_eq!(
            host.trim(),
            (64 * MIB).to_string(),
            "{}: host {}",
            h.name(),
            host_file.display()
        );
        assert_eq!(
            inside(cri, &id, in_file),
            (64 * MIB).to_string(),
            "{}: inside",
            h.name()
        );

        cri.update_resources(
            &id,
            LinuxContainerResources {
                memory_limit_in_bytes: 128 * MIB,
                cpu_shares: 512,
                ..Default::default()
            },
        )
        .expect("UpdateContainerResources");
        let host = std::fs::read_to_string(&host_file).expect("limit file");
        assert_eq!(host.trim(), (128 * MIB).to_string(), "{}: host after update", h.name());
        assert_eq!(
            inside(cri, &id, in_file),
            (128 * MIB).to_string(),
            "{}: inside after update",
            h.name()
        );
        pod.remove_and_check();
    });
}

#[test]
fn container_and_pod_stats() {
    for_each_handler("container_and_pod_stats", |cri, h| {
        let mut pod = Pod::run(cri, h, pod_config());
        // Some CPU time and memory to count.
        let id = pod.start(&container_config(
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo x > /tmp/x; exec sleep 1000",
        ));
        let cpu = |s: &ContainerStats| {
            s.cpu
                .as_ref()
                .and_then(|c| c.usage_core_nano_seconds.as_ref())
                .map_or(0, |v| v.value)
        };
        let mut last = None;
        // containerd collects metrics from the shim on demand.
        assert!(
            wait_until(Duration::from_secs(10), || {
                last = cri.container_stats(&id).expect("ContainerStats");
                last.as_ref().is_some_and(|s| cpu(s) > 0)
            }),
            "{}: ContainerStats without CPU usage: {last:?}",
            h.name()
        );
        let s = last.expect("stats");
        assert_eq!(s.attributes.as_ref().map(|a| a.id.as_str()), Some(id.as_str()));
        let ws = s
            .memory
            .as_ref()
            .and_then(|m| m.working_set_bytes.as_ref())
            .map_or(0, |v| v.value);
        assert!(ws > 0, "{}: working set {ws}: {s:?}", h.name());

        let ps = cri.pod_stats(&pod.id).expect("PodSandboxStats").expect("stats");
        assert_eq!(ps.attributes.as_ref().map(|a| a.id.as_str()), Some(pod.id.as_str()));
        let linux = ps.linux.expect("linux pod stats");
        let pod_cpu = linux
            .cpu
            .as_ref()
            .and_then(|c| c.usage_core_nano_seconds.as_ref())
            .map_or(0, |v| v.value);
        assert!(pod_cpu > 0, "{}: pod CPU usage {pod_cpu}", h.name());
        assert!(
            linux
                .containers
                .iter()
                .any(|c| c.attributes.as_ref().is_some_and(|a| a.id == id)),
            "{}: the container is not in the pod's stats",
            h.name()
        );
        pod.remove_and_check();
    });
}

#[test]
fn oom_killed_container() {
    for_each_handler("oom_killed_container", |cri, h| {
        let mut pod = Pod::run(cri, h, pod_config());
        // The shell holds 256 MiB of output in a variable: far beyond 32 MiB.
        let mut cfg = container_config("x=$(head -c 268435456 /dev/zero | tr '\\0' a); echo survived ${#x}");
        cfg.linux.as_mut().expect("linux").resources = Some(LinuxContainerResources {
            memory_limit_in_bytes: 32 * MIB,
            ..Default::default()
        });
        let id = pod.start(&cfg);
        let mut last = None;
        assert!(
            wait_until(Duration::from_secs(60), || {
                let s = cri.container_status(&id).expect("ContainerStatus").status;
                let exited = s
                    .as_ref()
                    .is_some_and(|s| s.state == ContainerState::ContainerExited as i32);
                last = s;
                exited
            }),
            "{}: container did not exit: {last:?}",
            h.name()
        );
        let s = last.expect("status");
        assert_eq!(
            (s.reason.as_str(), s.exit_code),
            ("OOMKilled", 137),
            "{}: {s:?}",
            h.name()
        );
        pod.remove_and_check();
    });
}

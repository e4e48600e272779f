//! Namespaces: host network, pid and ipc pods, the pod-shared pid namespace, container
//! pid isolation; mount propagation (private, rslave, rshared) of a host
//! path.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_cri::v1::*;
use zygote_cri_tests::*;
use zygote_integration_tests::run_cmd;

#[test]
fn host_network_pod() {
    for_each_handler("host_network_pod", |cri, h| {
        let mut cfg = pod_config();
        pod_ns(&mut cfg).network = NamespaceMode::Node as i32;
        // The node's hostname (no UTS namespace of the pod), as kubelet does.
        cfg.hostname.clear();
        let mut pod = Pod::run(cri, h, cfg);
        let mut c = container_config("exec sleep 1000");
        container_ns(&mut c).network = NamespaceMode::Node as i32;
        let id = pod.start(&c);
        let host = std::fs::read_link("/proc/self/ns/net").expect("host net ns");
        assert_eq!(
            sh(cri, &id, "readlink /proc/self/ns/net"),
            host.to_string_lossy(),
            "{}",
            h.name()
        );
        pod.remove_and_check();
    });
}

#[test]
fn host_pid_and_ipc_namespaces() {
    for_each_handler("host_pid_and_ipc_namespaces", |cri, h| {
        let mut cfg = pod_config();
        pod_ns(&mut cfg).pid = NamespaceMode::Node as i32;
        pod_ns(&mut cfg).ipc = NamespaceMode::Node as i32;
        let mut pod = Pod::run(cri, h, cfg);
        let mut c = container_config("exec sleep 1000");
        container_ns(&mut c).pid = NamespaceMode::Node as i32;
        container_ns(&mut c).ipc = NamespaceMode::Node as i32;
        let id = pod.start(&c);
        for ns in ["pid", "ipc"] {
            let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).expect("host ns");
            assert_eq!(
                sh(cri, &id, &format!("readlink /proc/self/ns/{ns}")),
                host.to_string_lossy(),
                "{}: {ns} namespace",
                h.name()
            );
        }
        // A host process (this test) is visible by its host pid.
        let me = std::process::id();
        let comm = std::fs::read_to_string("/proc/self/comm").expect("comm");
        assert_eq!(
            sh(cri, &id, &format!("cat /proc/{me}/comm")),
            comm.trim(),
            "{}",
            h.name()
        );
        pod.remove_and_check();
    });
}

#[test]
fn pod_shared_and_container_pid_namespaces() {
    for_each_handler("pod_shared_and_container_pid_namespaces", |cri, h| {
        let mut cfg = pod_config();
        pod_ns(&mut cfg).pid = NamespaceMode::Pod as i32;
        let mut pod = Pod::run(cri, h, cfg);
        let mut shared = container_config("exec sleep 1001");
        container_ns(&mut shared).pid = NamespaceMode::Pod as i32;
        let a = pod.start(&shared);
        let mut shared2 = container_config("exec sleep 1002");
        container_ns(&mut shared2).pid = NamespaceMode::Pod as i32;
        let b = pod.start(&shared2);
        // pid 1 is the sandbox's pause; each sees the other's process.
        let init = sh(cri, &a, "tr '\\0' ' ' < /proc/1/cmdline");
        assert!(init.contains("sleep 2147483647"), "{}: pid 1 is {init:?}", h.name());
        let ps = sh(cri, &a, "ps -o args");
        assert!(ps.contains("sleep 1002"), "{}: {ps}", h.name());
        let ps = sh(cri, &b, "ps -o args");
        assert!(ps.contains("sleep 1001"), "{}: {ps}", h.name());

        // A container of its own pid namespace (the default) in the same pod.
        let own = pod.start(&container_config("exec sleep 1003"));
        assert_eq!(
            sh(cri, &own, "tr '\\0' ' ' < /proc/1/cmdline"),
            "sleep 1003",
            "{}",
            h.name()
        );
        let ps = sh(cri, &own, "ps -o args");
        assert!(!ps.contains("sleep 1001"), "{}: {ps}", h.name());
        pod.remove_and_check();
    });
}

/// A tmpfs on a fresh host directory, made a shared mount (what containerd
/// requires for rslave and rshared); unmounted recursively on drop.
struct SharedDir(PathBuf);

impl SharedDir {
    fn new() -> SharedDir {
        let dir = tempfile::Builder::new()
            .prefix("zcri-prop-")
            .tempdir_in("/var/tmp")
            .expect("tempdir")
            .keep();
        mount(&["-t", "tmpfs", "tmpfs"], &dir);
        mount(&["--make-shared"], &dir);
        SharedDir(dir)
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        let mut c = Command::new("umount");
        c.arg("-R").arg("-l").arg(&self.0);
        let _ = run_cmd(c, Duration::from_secs(10));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mount(args: &[&str], target: &Path) {
    let mut c = Command::new("mount");
    c.args(args).arg(target);
    run_cmd(c, Duration::from_secs(10)).assert_success();
}

/// The container at `/mnt/h` with `propagation`: what its mountinfo says,
/// and whether a mount made on the host afterwards shows up inside.
fn propagation(test: &str, propagation: MountPropagation, privileged: bool) {
    for_each_handler(test, |cri, h| {
        let host = SharedDir::new();
        let mut pcfg = pod_config();
        if privileged {
            pod_sc(&mut pcfg).privileged = true;
        }
        let mut pod = Pod::run(cri, h, pcfg);
        let mut c = container_config("exec sleep 1000");
        c.mounts = vec![k8s_cri::v1::Mount {
            container_path: "/mnt/h".into(),
            host_path: host.0.to_string_lossy().into_owned(),
            propagation: propagation as i32,
            ..Default::default()
        }];
        if privileged {
            container_sc(&mut c).privileged = true;
        }
        let id = pod.start(&c);
        let info = sh(cri, &id, "grep ' /mnt/h ' /proc/self/mountinfo");
        let (shared, slave) = (info.contains(" shared:"), info.contains(" master:"));
        let want = match propagation {
            MountPropagation::PropagationPrivate => (false, false),
            MountPropagation::PropagationHostToContainer => (false, true),
            MountPropagation::PropagationBidirectional => (true, false),
        };
        assert_eq!((shared, slave), want, "{}: /mnt/h in the container: {info}", h.name());

        let sub = host.0.join("fromhost");
        std::fs::create_dir(&sub).expect("mkdir");
        mount(&["-t", "tmpfs", "tmpfs"], &sub);
        let seen = sh(cri, &id, "grep -c ' /mnt/h/fromhost ' /proc/self/mountinfo || true");
        let want_seen = propagation != MountPropagation::PropagationPrivate;
        assert_eq!(seen == "1", want_seen, "{}: host mount seen inside: {seen}", h.name());
        if propagation == MountPropagation::PropagationBidirectional {
            sh(cri, &id, "mkdir /mnt/h/fromc && mount -t tmpfs tmpfs /mnt/h/fromc");
            let host_info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
            let fromc = host.0.join("fromc");
            assert!(
                host_info.contains(&format!(" {} ", fromc.display())),
                "{}: the container's mount did not reach the host",
                h.name()
            );
        }
        pod.remove_and_check();
    });
}

#[test]
fn mount_propagation_private() {
    propagation("mount_propagation_private", MountPropagation::PropagationPrivate, false);
}

#[test]
fn mount_propagation_rslave() {
    propagation(
        "mount_propagation_rslave",
        MountPropagation::PropagationHostToContainer,
        false,
    );
}

/// rshared needs a privileged container to mount inside. Regression
/// (issue 11): through zygote this failed with `pivot_root into
/// <bundle>/rootfs: EINVAL` (the overlay at `<bundle>/rootfs` stayed shared).
#[test]
fn mount_propagation_rshared() {
    propagation(
        "mount_propagation_rshared",
        MountPropagation::PropagationBidirectional,
        true,
    );
}

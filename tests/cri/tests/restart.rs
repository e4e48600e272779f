//! containerd restarted while a pod's container runs, as the node installer
//! (and any containerd upgrade) does: a container that exits while
//! containerd is down must come back with its own exit status (handler
//! `zygote`; handler `runc` runs the same scenario as the reference). Its own test binary, so its
//! containerd restarts disturb no other test. Run with
//! `hack/test.sh -p zygote-cri-tests --test restart`.

use std::time::Duration;

use k8s_cri::v1::*;
use zygote_cri_tests::*;
use zygote_integration_tests::{wait_proc_gone, wait_until};

/// Waits for `/go` in its rootfs, then exits 7.
const SCRIPT: &str = "while [ ! -e /go ]; do sleep 0.1; done; exit 7";

/// The container's status once CRI reports it exited.
fn exited_status(cri: &Cri, id: &str) -> ContainerStatus {
    let exited = wait_until(Duration::from_secs(60), || {
        cri.container_status(id)
            .ok()
            .and_then(|s| s.status)
            .is_some_and(|s| s.state == ContainerState::ContainerExited as i32)
    });
    assert!(
        exited,
        "container {id} is not reported exited:\n{}",
        node().log_tail(40)
    );
    cri.container_status(id)
        .expect("ContainerStatus")
        .status
        .expect("status")
}

#[test]
fn exit_while_containerd_is_down_keeps_its_status() {
    let mut seen = Vec::new();
    for_each_handler("exit_while_containerd_is_down_keeps_its_status", |cri, h| {
        let n = node();
        let mut pod = Pod::run(cri, h, pod_config());
        let id = pod.start(&container_config(SCRIPT));
        let pid = info_pid(&cri.container_status(&id).expect("ContainerStatus").info).expect("container pid");
        // containerd mounts (runc-v2) or zygote mounts the rootfs in the bundle.
        let rootfs = n
            .dir
            .join("state/io.containerd.runtime.v2.task/k8s.io")
            .join(&id)
            .join("rootfs");
        restart_containerd(|| {
            std::fs::write(rootfs.join("go"), b"").expect("release the container");
            assert!(
                wait_proc_gone(pid, Duration::from_secs(30)),
                "{}: container {pid} did not exit",
                h.name()
            );
        });
        let st = exited_status(cri, &id);
        eprintln!(
            "{}: exit code {} reason {:?} message {:?}",
            h.name(),
            st.exit_code,
            st.reason,
            st.message
        );
        seen.push((h.name(), st.exit_code, st.reason.clone()));
        cri.remove_container(&id).expect("RemoveContainer");
        pod.remove_and_check();
    });
    // runc-v2 is the reference but not the bar here: containerd 1.7 and 2.x
    // delete a task whose Pids are empty when they start (their clean-up of
    // a shim leaked by a crash during Create), so its container comes back
    // as 255 "Unknown"; 1.6 keeps it. zygote keeps the status on all three.
    for (handler, code, reason) in &seen {
        eprintln!("{handler}: exit code {code} reason {reason:?} after the restart");
        if *handler != "runc" {
            assert_eq!(
                (*code, reason.as_str()),
                (7, "Error"),
                "{handler}: a container that exited 7 while containerd was down"
            );
        }
    }
}

//! Pod sysctls, kubelet's default masked and read-only paths (and none
//! for a privileged container), and run_as_username.

use std::collections::HashMap;

use k8s_cri::v1::*;
use zygote_cri_tests::*;

#[test]
fn pod_sysctls_visible_in_container() {
    let host_shm = std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").expect("host sysctl");
    for_each_handler("pod_sysctls_visible_in_container", |cri, h| {
        let mut cfg = pod_config();
        cfg.linux.as_mut().expect("linux").sysctls = HashMap::from([
            ("kernel.shm_rmid_forced".to_string(), "1".to_string()),
            ("net.ipv4.ip_unprivileged_port_start".to_string(), "80".to_string()),
        ]);
        let mut pod = Pod::run(cri, h, cfg);
        let id = pod.start(&container_config("exec sleep 1000"));
        assert_eq!(
            sh(cri, &id, "cat /proc/sys/kernel/shm_rmid_forced"),
            "1",
            "{}",
            h.name()
        );
        assert_eq!(
            sh(cri, &id, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start"),
            "80",
            "{}",
            h.name()
        );
        // The pod's IPC namespace, not the node's.
        assert_eq!(
            std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").expect("host sysctl"),
            host_shm,
            "{}: the pod's sysctl leaked to the host",
            h.name()
        );
        pod.remove_and_check();
    });
}

/// The file types of `/proc/keys` and `/proc/timer_list` (two of the
/// default masked paths this kernel has) and the mount options of
/// `/proc/sys` (empty when it is no mount of its own).
fn proc_confinement(cri: &Cri, id: &str) -> (String, String) {
    (
        sh(cri, id, "stat -c %F /proc/keys /proc/timer_list"),
        sh(cri, id, "awk '$2 == \"/proc/sys\" { print $4 }' /proc/mounts"),
    )
}

/// What kubelet sends for the default proc mount type
/// (`securitycontext.ConvertToRuntimeMaskedPaths`/`ReadonlyPaths`): CRI
/// leaves masking to the client, containerd masks nothing when the lists
/// are empty.
fn kubelet_default_paths(cfg: &mut ContainerConfig) {
    let s = container_sc(cfg);
    s.masked_paths = [
        "/proc/asound",
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
    ]
    .map(String::from)
    .to_vec();
    s.readonly_paths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        .map(String::from)
        .to_vec();
}

#[test]
fn masked_and_readonly_paths() {
    for_each_handler("masked_and_readonly_paths", |cri, h| {
        let mut pcfg = pod_config();
        pod_sc(&mut pcfg).privileged = true;
        let mut pod = Pod::run(cri, h, pcfg);

        // Non-privileged: /proc/keys and /proc/timer_list masked (/dev/null
        // over them), /proc/sys
        // read-only, /sys/firmware an empty tmpfs.
        let mut plain = container_config("exec sleep 1000");
        kubelet_default_paths(&mut plain);
        let plain = pod.start(&plain);
        let (masked, sys) = proc_confinement(cri, &plain);
        assert_eq!(
            masked,
            "character special file\ncharacter special file",
            "{}: not masked",
            h.name()
        );
        assert!(
            sys.split(',').any(|o| o == "ro"),
            "{}: /proc/sys mounted {sys:?}",
            h.name()
        );
        let r = cri
            .exec_sync(&plain, &["sh", "-c", "echo 1 > /proc/sys/kernel/shm_rmid_forced"], 10)
            .expect("ExecSync");
        assert_ne!(r.exit_code, 0, "{}: wrote to a read-only /proc/sys", h.name());
        assert_eq!(sh(cri, &plain, "ls -A /sys/firmware | wc -l"), "0", "{}", h.name());

        // Privileged: neither.
        let mut p = container_config("exec sleep 1000");
        kubelet_default_paths(&mut p);
        container_sc(&mut p).privileged = true;
        let p = pod.start(&p);
        let (masked, sys) = proc_confinement(cri, &p);
        assert_eq!(
            masked,
            "regular empty file\nregular empty file",
            "{}: masked when privileged",
            h.name()
        );
        assert!(
            !sys.split(',').any(|o| o == "ro"),
            "{}: /proc/sys read-only when privileged: {sys:?}",
            h.name()
        );
        assert_ne!(sh(cri, &p, "ls -A /sys/firmware | wc -l"), "0", "{}", h.name());
        pod.remove_and_check();
    });
}

#[test]
fn run_as_username() {
    for_each_handler("run_as_username", |cri, h| {
        let mut pod = Pod::run(cri, h, pod_config());
        let mut cfg = container_config("id -u > /tmp/u; id -g >> /tmp/u; exec sleep 1000");
        container_sc(&mut cfg).run_as_username = "nobody".into();
        let id = pod.start(&cfg);
        // The image's /etc/passwd: nobody:x:65534:65534.
        assert_eq!(sh(cri, &id, "cat /tmp/u"), "65534\n65534", "{}", h.name());
        assert_eq!(sh(cri, &id, "id -un"), "nobody", "{}", h.name());
        pod.remove_and_check();
    });
}

//! Security context: user and group, read-only rootfs, capabilities drop
//! and add, no_new_privs, privileged.

use k8s_cri::v1::*;
use zygote_cri_tests::*;

/// A `/proc/self/status` field of the exec'd shell.
fn status_field(cri: &Cri, id: &str, field: &str) -> String {
    let (code, out) = sh_status(cri, id, &format!("grep '^{field}:' /proc/self/status"));
    assert_eq!(code, 0, "{out}");
    out.split_whitespace().nth(1).unwrap_or("").to_string()
}

#[test]
fn run_as_user_group_and_read_only_rootfs() {
    for_each_handler("run_as_user_group_and_read_only_rootfs", |cri, h| {
        let mut pod = Pod::run(cri, h, pod_config());
        let mut cfg = container_config("id -u > /tmp/u; id -g >> /tmp/u; exec sleep 1000");
        let s = container_sc(&mut cfg);
        s.run_as_user = Some(Int64Value { value: 1000 });
        s.run_as_group = Some(Int64Value { value: 1000 });
        s.supplemental_groups = vec![65534];
        let id = pod.start(&cfg);
        assert_eq!(
            sh_status(cri, &id, "cat /tmp/u"),
            (0, "1000\n1000".into()),
            "{}",
            h.name()
        );
        // Execs run as the container's user too.
        assert_eq!(
            sh_status(cri, &id, "id -u; id -g"),
            (0, "1000\n1000".into()),
            "{}",
            h.name()
        );
        let (_, groups) = sh_status(cri, &id, "id -G");
        assert!(
            groups.split_whitespace().any(|g| g == "65534"),
            "{}: {groups}",
            h.name()
        );

        let mut ro = container_config("exec sleep 1000");
        container_sc(&mut ro).readonly_rootfs = true;
        let ro = pod.start(&ro);
        let (code, out) = sh_status(cri, &ro, "touch /newfile");
        assert_ne!(code, 0, "{}: wrote to a read-only rootfs", h.name());
        assert!(out.contains("Read-only file system"), "{}: {out}", h.name());
        pod.remove_and_check();
    });
}

#[test]
fn capabilities_no_new_privs_privileged() {
    for_each_handler("capabilities_no_new_privs_privileged", |cri, h| {
        let mut pcfg = pod_config();
        pod_sc(&mut pcfg).privileged = true;
        let mut pod = Pod::run(cri, h, pcfg);

        let mut cfg = container_config("exec sleep 1000");
        container_sc(&mut cfg).capabilities = Some(Capability {
            drop_capabilities: vec!["ALL".into()],
            add_capabilities: vec!["NET_ADMIN".into()],
            ..Default::default()
        });
        container_sc(&mut cfg).no_new_privs = true;
        let id = pod.start(&cfg);
        // CAP_NET_ADMIN is bit 12.
        assert_eq!(status_field(cri, &id, "CapBnd"), "0000000000001000", "{}", h.name());
        assert_eq!(status_field(cri, &id, "CapEff"), "0000000000001000", "{}", h.name());
        assert_eq!(status_field(cri, &id, "NoNewPrivs"), "1", "{}", h.name());

        let default = pod.start(&container_config("exec sleep 1000"));
        assert_eq!(status_field(cri, &default, "NoNewPrivs"), "0", "{}", h.name());
        // containerd's default set: no CAP_SYS_ADMIN (bit 21).
        let eff = u64::from_str_radix(&status_field(cri, &default, "CapEff"), 16).expect("hex");
        assert_eq!(eff & (1 << 21), 0, "{}: {eff:x}", h.name());

        let mut p = container_config("exec sleep 1000");
        container_sc(&mut p).privileged = true;
        let p = pod.start(&p);
        let eff = u64::from_str_radix(&status_field(cri, &p, "CapEff"), 16).expect("hex");
        assert_ne!(
            eff & (1 << 21),
            0,
            "{}: privileged without CAP_SYS_ADMIN: {eff:x}",
            h.name()
        );
        // Host devices.
        let (code, out) = sh_status(cri, &p, "ls /dev | wc -l");
        assert_eq!(code, 0, "{out}");
        let devices: u32 = out.trim().parse().unwrap_or(0);
        assert!(
            devices > 20,
            "{}: privileged container sees {devices} entries in /dev",
            h.name()
        );
        let (_, seccomp) = sh_status(cri, &p, "grep '^Seccomp:' /proc/self/status");
        assert!(
            seccomp.ends_with('0'),
            "{}: privileged container under seccomp: {seccomp}",
            h.name()
        );
        pod.remove_and_check();
    });
}

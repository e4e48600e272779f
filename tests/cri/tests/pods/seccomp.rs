//! Seccomp through CRI: RuntimeDefault (containerd's default profile),
//! Unconfined, and Localhost (a profile file on the node, written by the
//! test).

use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::*;
use zygote_cri_tests::*;

fn with_seccomp(profile_type: ProfileType, localhost_ref: &str) -> ContainerConfig {
    let mut cfg = container_config("exec sleep 1000");
    container_sc(&mut cfg).seccomp = Some(SecurityProfile {
        profile_type: profile_type as i32,
        localhost_ref: localhost_ref.into(),
    });
    cfg
}

/// The `Seccomp:` mode of the exec'd shell (0 none, 2 filter).
fn seccomp_mode(cri: &Cri, id: &str) -> String {
    let (code, out) = sh_status(cri, id, "grep '^Seccomp:' /proc/self/status");
    assert_eq!(code, 0, "{out}");
    out.split_whitespace().nth(1).unwrap_or("").to_string()
}

#[test]
fn seccomp_runtime_default_unconfined_localhost() {
    let dir = tempfile::Builder::new()
        .prefix("zcri-seccomp-")
        .tempdir_in("/var/tmp")
        .expect("profile dir");
    let profile = dir.path().join("deny-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    )
    .expect("write the seccomp profile");
    for_each_handler("seccomp_runtime_default_unconfined_localhost", |cri, h| {
        let mut pod = Pod::run(cri, h, pod_config());

        // RuntimeDefault: a filter; unshare (a new user namespace needs no
        // capability) is denied without CAP_SYS_ADMIN, ordinary work runs.
        let d = pod.start(&with_seccomp(ProfileType::RuntimeDefault, ""));
        assert_eq!(seccomp_mode(cri, &d), "2", "{}", h.name());
        let (code, out) = sh_status(cri, &d, "unshare -U true");
        assert_ne!(code, 0, "{}: unshare allowed under RuntimeDefault: {out}", h.name());
        assert!(out.contains("Operation not permitted"), "{}: {out}", h.name());
        assert_eq!(
            sh_status(cri, &d, "mkdir /tmp/d && echo made"),
            (0, "made".into()),
            "{}",
            h.name()
        );

        // Unconfined: no filter, the same unshare works.
        let u = pod.start(&with_seccomp(ProfileType::Unconfined, ""));
        assert_eq!(seccomp_mode(cri, &u), "0", "{}", h.name());
        assert_eq!(
            sh_status(cri, &u, "unshare -U true && echo ok"),
            (0, "ok".into()),
            "{}",
            h.name()
        );

        // Localhost: the node's profile file denies mkdir only.
        let l = pod.start(&with_seccomp(ProfileType::Localhost, &profile.to_string_lossy()));
        assert_eq!(seccomp_mode(cri, &l), "2", "{}", h.name());
        let (code, out) = sh_status(cri, &l, "mkdir /tmp/l");
        assert_ne!(code, 0, "{}: mkdir allowed by a profile denying it", h.name());
        assert!(out.contains("Operation not permitted"), "{}: {out}", h.name());
        assert_eq!(
            sh_status(cri, &l, "touch /tmp/f && echo touched"),
            (0, "touched".into()),
            "{}",
            h.name()
        );
        pod.remove_and_check();
    });
}

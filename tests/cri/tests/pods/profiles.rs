//! zygote profiles through CRI: chosen by the handler (`zygote-alt`'s
//! runtime options) and by the pod annotation `zygote.dev/profile`
//! (containerd's `pod_annotations = ["zygote.dev/*"]`); bad input (an
//! unknown profile by annotation or in a handler's options, an unknown
//! handler) is a clear error that leaves nothing behind.

use std::collections::HashMap;
use std::path::PathBuf;

use zygote_cri_tests::*;
use zygote_integration_tests::{require_runtime, Runtime};

fn profile_of(id: &str) -> String {
    let t = node()
        .timing(id)
        .unwrap_or_else(|| panic!("no timings.jsonl line for {id}"));
    t["profile"].as_str().unwrap_or("").to_string()
}

fn annotated(profile: &str) -> k8s_cri::v1::PodSandboxConfig {
    let mut cfg = pod_config();
    cfg.annotations = HashMap::from([("zygote.dev/profile".to_string(), profile.to_string())]);
    cfg
}

#[test]
fn profile_chosen_by_handler_options() {
    if !require_runtime(Runtime::Zygote, "profile_chosen_by_handler_options") {
        return;
    }
    let cri = Cri::connect(&node().address);
    let mut pod = Pod::run(&cri, Handler::ZygoteAlt, pod_config());
    let c = pod.start(&container_config("exec sleep 1000"));
    assert_eq!(profile_of(&pod.id), "open");
    assert_eq!(profile_of(&c), "open");
    pod.remove_and_check();
    // The same pod through handler zygote gets the default profile.
    let mut pod = Pod::run(&cri, Handler::Zygote, pod_config());
    let c = pod.start(&container_config("exec sleep 1000"));
    assert_eq!(profile_of(&pod.id), "default");
    assert_eq!(profile_of(&c), "default");
    pod.remove_and_check();
}

/// Profile "locked" denies mkdir (config/cri.toml): the annotation applies
/// it through zygote; runc ignores the annotation.
#[test]
fn profile_chosen_by_pod_annotation() {
    for_each_handler("profile_chosen_by_pod_annotation", |cri, h| {
        let mut pod = Pod::run(cri, h, annotated("locked"));
        let c = pod.start(&container_config("exec sleep 1000"));
        let r = cri.exec_sync(&c, &["mkdir", "/tmp/d"], 10).expect("ExecSync");
        if h.is_zygote() {
            assert_eq!(profile_of(&pod.id), "locked");
            assert_eq!(profile_of(&c), "locked");
            assert_ne!(r.exit_code, 0, "mkdir allowed under profile locked");
        } else {
            assert_eq!(r.exit_code, 0, "runc: {}", String::from_utf8_lossy(&r.stderr));
        }
        pod.remove_and_check();
    });
}

#[test]
fn annotation_wins_over_handler_options() {
    if !require_runtime(Runtime::Zygote, "annotation_wins_over_handler_options") {
        return;
    }
    let cri = Cri::connect(&node().address);
    let mut pod = Pod::run(&cri, Handler::ZygoteAlt, annotated("locked"));
    let c = pod.start(&container_config("exec sleep 1000"));
    assert_eq!(profile_of(&pod.id), "locked");
    assert_eq!(profile_of(&c), "locked");
    pod.remove_and_check();
}

/// containerd's task bundles (`<state>/io.containerd.runtime.v2.task/k8s.io/<id>`).
fn bundles() -> Vec<PathBuf> {
    let dir = node().dir.join("state/io.containerd.runtime.v2.task/k8s.io");
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn unknown_profile_is_a_clear_error_and_leaves_nothing() {
    if !require_runtime(Runtime::Zygote, "unknown_profile_is_a_clear_error_and_leaves_nothing") {
        return;
    }
    let cri = Cri::connect(&node().address);
    let cfg = annotated("nosuchprofile");
    let err = cri
        .run_pod(&cfg, Handler::Zygote.name())
        .expect_err("RunPodSandbox with an unknown profile succeeded");
    eprintln!("unknown profile: {err:?}");
    assert!(err.message().contains("nosuchprofile"), "{err:?}");
    assert_failed_pod_left_nothing(&cri, &cfg);
}

/// Handler `zygote-badopts`: its runtime options (`ConfigPath`, see
/// hack/containerd.sh) name profile "no-such-profile-badopts".
#[test]
fn unknown_handler_options_fail_and_leave_nothing() {
    if !require_runtime(Runtime::Zygote, "unknown_handler_options_fail_and_leave_nothing") {
        return;
    }
    let cri = Cri::connect(&node().address);
    let cfg = pod_config();
    let err = cri
        .run_pod(&cfg, Handler::ZygoteBadOpts.name())
        .expect_err("RunPodSandbox with handler options naming an unknown profile succeeded");
    eprintln!("unknown profile in handler options: {err:?}");
    assert!(err.message().contains("no-such-profile-badopts"), "{err:?}");
    assert_failed_pod_left_nothing(&cri, &cfg);
}

/// Nothing of a pod whose RunPodSandbox failed: no sandbox, no bundle
/// naming its uid, no mount in a task bundle that is gone or names it, no
/// cgroup or process below its cgroup parent, no zygote task dir without
/// a containerd bundle.
fn assert_failed_pod_left_nothing(cri: &Cri, cfg: &k8s_cri::v1::PodSandboxConfig) {
    let uid = cfg.metadata.as_ref().expect("metadata").uid.clone();
    let pods = cri.list_pods(Default::default()).expect("ListPodSandbox");
    assert!(
        !pods.iter().any(|p| p.metadata.as_ref().is_some_and(|m| m.uid == uid)),
        "the failed sandbox is listed"
    );
    for b in bundles() {
        let spec = std::fs::read_to_string(b.join("config.json")).unwrap_or_default();
        assert!(!spec.contains(&uid), "bundle {} of the failed pod left", b.display());
    }
    let task_root = node().dir.join("state/io.containerd.runtime.v2.task/k8s.io");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for mp in mountinfo.lines().filter_map(|l| l.split(' ').nth(4)) {
        let Ok(rest) = std::path::Path::new(mp).strip_prefix(&task_root) else {
            continue;
        };
        let Some(id) = rest.iter().next() else { continue };
        let spec = std::fs::read_to_string(task_root.join(id).join("config.json"));
        assert!(
            spec.as_ref().is_ok_and(|s| !s.contains(&uid)),
            "mount {mp} of a failed or removed task left"
        );
    }
    let parent = cfg.linux.as_ref().expect("linux").cgroup_parent.clone();
    for root in zygote_integration_tests::cgroup_roots() {
        let d = root.join(parent.trim_start_matches('/'));
        let children: Vec<_> = std::fs::read_dir(&d)
            .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
            .unwrap_or_default();
        assert!(children.is_empty(), "cgroups of the failed pod: {children:?}");
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
        assert_eq!(procs.trim(), "", "processes in the failed pod's cgroup {}", d.display());
        remove_cgroup_tree(&d);
    }
    let known: Vec<String> = bundles()
        .iter()
        .filter_map(|b| b.file_name().map(|f| f.to_string_lossy().into_owned()))
        .collect();
    if let Some(d) = node().daemon_dir() {
        for t in std::fs::read_dir(d.join("tasks")).into_iter().flatten().flatten() {
            let id = t.file_name().to_string_lossy().into_owned();
            assert!(known.contains(&id), "zygote task dir {id} without a containerd task");
        }
    }
}

#[test]
fn unknown_handler_is_an_error() {
    let cri = Cri::connect(&node().address);
    let err = cri
        .run_pod(&pod_config(), "no-such-handler")
        .expect_err("RunPodSandbox with an unknown handler succeeded");
    assert!(err.message().contains("no-such-handler"), "{err:?}");
}

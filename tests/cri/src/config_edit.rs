//! Small helpers every CRI test file uses: reaching into the optional
//! security contexts of the configs ([`pod_sc`], [`container_sc`], and
//! their namespace options) and running a shell script in a container
//! through ExecSync ([`sh`], [`sh_status`]).

use k8s_cri::v1::*;

use crate::client::Cri;

/// The sandbox's security context ([`crate::pod_config`] always has one).
pub fn pod_sc(cfg: &mut PodSandboxConfig) -> &mut LinuxSandboxSecurityContext {
    cfg.linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .expect("sandbox security context")
}

/// The container's security context ([`crate::container_config`] always
/// has one).
pub fn container_sc(cfg: &mut ContainerConfig) -> &mut LinuxContainerSecurityContext {
    cfg.linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .expect("security context")
}

/// The sandbox's namespace options.
pub fn pod_ns(cfg: &mut PodSandboxConfig) -> &mut NamespaceOption {
    pod_sc(cfg).namespace_options.as_mut().expect("namespace options")
}

/// The container's namespace options.
pub fn container_ns(cfg: &mut ContainerConfig) -> &mut NamespaceOption {
    container_sc(cfg).namespace_options.as_mut().expect("namespace options")
}

/// Runs `sh -c script` in container `id`: its exit code and its stdout
/// followed by its stderr, trimmed.
pub fn sh_status(cri: &Cri, id: &str, script: &str) -> (i32, String) {
    let r = cri.exec_sync(id, &["sh", "-c", script], 10).expect("ExecSync");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    (r.exit_code, out.trim().to_string())
}

/// Runs `sh -c script` in container `id`, which must exit 0: its stdout,
/// trimmed.
pub fn sh(cri: &Cri, id: &str, script: &str) -> String {
    let r = cri.exec_sync(id, &["sh", "-c", script], 10).expect("ExecSync");
    assert_eq!(r.exit_code, 0, "{script}: {}", String::from_utf8_lossy(&r.stderr));
    String::from_utf8_lossy(&r.stdout).trim().to_string()
}

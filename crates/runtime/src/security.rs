//! The task's security policy as the container child receives it: the
//! seccomp filter already compiled to BPF (by the daemon, cached by content
//! hash, or here from the spec when no one did) and the Landlock policy
//! already negotiated against the kernel's ABI. Nothing in here is compiled
//! on the child's side; it only installs.

use serde::{Deserialize, Serialize};
use zygote_config::PreparedLandlock;

use crate::error::RuntimeError;
use crate::seccomp::CompiledSeccomp;

/// Seccomp and Landlock for every process of one container (init and execs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Security {
    /// Installed last before exec (or before dropping privileges when
    /// `noNewPrivileges` is false, like runc).
    pub seccomp: Option<CompiledSeccomp>,
    /// Applied after every mount, before seccomp, while still privileged.
    pub landlock: Option<PreparedLandlock>,
}

impl Security {
    /// The spec's own `linux.seccomp`, compiled now; no Landlock.
    pub fn from_spec(spec: &oci_spec::runtime::Spec) -> Result<Security, RuntimeError> {
        let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(crate::seccomp::compile(s)?),
            None => None,
        };
        Ok(Security {
            seccomp,
            landlock: None,
        })
    }
}

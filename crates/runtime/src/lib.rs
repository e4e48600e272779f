//! zygote-runtime: turns an OCI bundle into a running container process.
//!
//! This crate owns everything that happens between "here is a spec" and
//! "the user's process has exec'd": loading and validating `config.json`,
//! mounting the rootfs handed over by containerd, cgroups, seccomp, and the
//! container-init sequence that runs inside the cloned child. It is used by
//! the single-threaded per-task monitor process, never by the multi-threaded
//! daemon for anything that forks.

pub mod cgroups;
pub mod container;
pub mod error;
pub mod guest;
pub mod init;
pub mod landlock;
pub mod mounts;
pub mod seccomp;
pub mod security;
pub mod spec;
pub mod sys;
pub mod wire;
pub mod zygote;

pub use error::RuntimeError;

/// The tests' shared re-exec harness and `require_root` (one file, also
/// used by the integration tests).
#[cfg(test)]
#[path = "../tests/support/rerun.rs"]
pub(crate) mod test_rerun;

//! The crate-wide error type.
//!
//! `RuntimeError` wraps the errors of the sibling modules (`spec`, `mounts`,
//! `seccomp`, `cgroups`, `landlock`) and adds the variants of the container-init
//! sequence. Messages are lowercase and name the path, field or syscall that
//! failed together with the errno, because for errors raised inside the
//! container process the message text is all the caller ever sees (it is sent
//! back over the sync channel).

use nix::errno::Errno;

/// Everything that can go wrong while creating or exec'ing a container process.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Loading or validating `config.json` failed.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// Mounting or unmounting the bundle rootfs failed.
    #[error(transparent)]
    Mount(#[from] crate::mounts::MountError),
    /// Compiling or applying the seccomp filter failed.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// A cgroup operation failed.
    #[error(transparent)]
    Cgroup(#[from] crate::cgroups::CgroupError),
    /// Enforcing the Landlock ruleset failed.
    #[error(transparent)]
    Landlock(#[from] crate::landlock::LandlockError),
    /// The spec asks for something inconsistent or unsupported.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// A system call failed; `context` names the operation and its target.
    #[error("{context}: {errno}")]
    Sys {
        /// What was being done, e.g. `mount proc to /proc`.
        context: String,
        /// The errno returned by the kernel.
        errno: Errno,
    },
    /// A file operation failed; `context` names the operation and path.
    #[error("{context}: {error}")]
    Io {
        /// What was being done, e.g. `write /proc/42/uid_map`.
        context: String,
        /// The underlying I/O error.
        error: std::io::Error,
    },
    /// The process executable could not be resolved (runc's wording:
    /// `exec: "name": executable file not found in $PATH`).
    #[error("exec: {name:?}: {reason}")]
    Exec {
        /// `process.args[0]` as given in the spec.
        name: String,
        /// Why it cannot be executed.
        reason: crate::init::ExecError,
    },
    /// An error reported by the container-side init process over the sync
    /// channel; the text already carries its context.
    #[error("{0}")]
    Container(String),
    /// A precondition of the setup does not hold (no cgroup2 mount, ...).
    #[error("{0}")]
    Setup(String),
    /// The parent/child synchronisation protocol broke down.
    #[error("sync with container init: {0}")]
    Sync(String),
    /// A message could not cross a channel (see [`crate::wire`]).
    #[error("{what}")]
    Channel {
        what: String,
        #[source]
        source: crate::wire::WireError,
    },
}

/// Attach context to a failed syscall or file operation.
pub(crate) trait Context<T> {
    /// Convert the error into a [`RuntimeError`] whose message starts with
    /// the text returned by `f`.
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T, RuntimeError>;
}

impl<T> Context<T> for Result<T, Errno> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T, RuntimeError> {
        self.map_err(|errno| RuntimeError::Sys { context: f(), errno })
    }
}

impl<T> Context<T> for Result<T, std::io::Error> {
    /// OS errors become [`RuntimeError::Sys`] so every message names the
    /// errno the same way (`ENOENT: No such file or directory`).
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T, RuntimeError> {
        self.map_err(|error| match error.raw_os_error() {
            Some(raw) => RuntimeError::Sys {
                context: f(),
                errno: Errno::from_raw(raw),
            },
            None => RuntimeError::Io { context: f(), error },
        })
    }
}

impl RuntimeError {
    /// The errno behind this error, if it is a plain syscall failure.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            RuntimeError::Sys { errno, .. } => Some(*errno),
            RuntimeError::Io { error, .. } => error.raw_os_error().map(Errno::from_raw),
            _ => None,
        }
    }
}

/// An error and its causes as one line (`a: b: c`): how errors travel as
/// text (from the container's init to its monitor, and on to containerd).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

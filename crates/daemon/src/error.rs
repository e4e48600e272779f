//! The daemon's error type and its one conversion to a ttrpc status: every
//! status code the daemon answers is decided here, from typed errors
//! (including a monitor's [`Failure`], by its kind).

use std::path::PathBuf;

use containerd_shim_protos::ttrpc;
use ttrpc::Code;
use zygote_contract::proto::{Failure, FailureKind, Reply, WireError};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("task {0} not found")]
    NotFound(String),
    #[error("task {0} already exists")]
    AlreadyExists(String),
    #[error("{0} is not supported by zygote")]
    Unimplemented(&'static str),
    #[error("invalid task id {0:?}: use letters, digits, '.', '_' and '-'")]
    InvalidId(String),
    /// `path` is quoted already.
    #[error("linux.cgroupsPath {path}: cgroup names starting with {prefix:?} are reserved for zygote's warm pools")]
    ReservedCgroup { path: String, prefix: &'static str },
    #[error("rootfs {} does not exist", .0.display())]
    NoRootfs(PathBuf),
    #[error(transparent)]
    Mount(#[from] zygote_runtime::mounts::MountError),
    #[error("exec {exec_id}: malformed process spec")]
    MalformedProcess {
        exec_id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("exec {0}: process.args must not be empty")]
    NoArgs(String),
    #[error("update: malformed resources")]
    MalformedResources(#[source] serde_json::Error),
    /// The configuration could not be loaded (its whole cause chain).
    #[error("zygote configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Policy(#[from] zygote_config::PolicyError),
    #[error("profile \"{0}\": its Landlock policy cannot be enforced on this kernel")]
    LandlockUnusable(String),
    #[error("{what}")]
    Seccomp {
        what: String,
        #[source]
        source: zygote_runtime::seccomp::SeccompError,
    },
    /// The Wasm artifact cache could not be opened (its whole cause chain).
    #[error("wasm artifact cache {}: {chain}", .dir.display())]
    WasmCache { dir: PathBuf, chain: String },
    /// Its message and its causes, as the Wasm crate gives them.
    #[error(transparent)]
    Wasm(zygote_wasm::WasmError),
    #[error("task {0} is not running")]
    NotRunning(String),
    #[error("task {0} has no monitor")]
    NoMonitor(String),
    #[error("cannot delete running process {0}")]
    ProcessRunning(String),
    /// Kill of a process whose exit is known (text kept as it always was).
    #[error("task process already finished not found")]
    ProcessExited,
    #[error("unexpected {from} reply {reply:?}")]
    UnexpectedReply { from: &'static str, reply: Box<Reply> },
    /// The monitor's control socket closed before its first reply; `log` is
    /// its log.
    #[error("monitor failed before creating the container: {cause}: {log}")]
    MonitorDiedEarly { cause: WireError, log: String },
    #[error(
        "the monitor did not create the container within {timeout:?} and was killed; its last words: {last_words}"
    )]
    MonitorStuck {
        timeout: std::time::Duration,
        last_words: String,
    },
    #[error("monitor of task {id}: {failure}")]
    Monitor { id: String, failure: Failure },
    #[error("monitor of task {id} is gone")]
    MonitorGone {
        id: String,
        #[source]
        source: WireError,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}")]
    Channel {
        what: &'static str,
        #[source]
        source: WireError,
    },
    #[error(transparent)]
    Runtime(#[from] zygote_runtime::RuntimeError),
    #[error(transparent)]
    Spec(#[from] zygote_runtime::spec::SpecError),
    #[error(transparent)]
    Cgroup(#[from] zygote_runtime::cgroups::CgroupError),
    #[error(transparent)]
    State(#[from] zygote_contract::state::StateError),
}

impl DaemonError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
        let what = what.into();
        move |source| DaemonError::Io { what, source }
    }

    /// The status code's name, lower case (a metrics label).
    pub(crate) fn code_name(&self) -> &'static str {
        match self.code() {
            Code::OK => "ok",
            Code::NOT_FOUND => "not_found",
            Code::ALREADY_EXISTS => "already_exists",
            Code::UNIMPLEMENTED => "unimplemented",
            Code::INVALID_ARGUMENT => "invalid_argument",
            Code::FAILED_PRECONDITION => "failed_precondition",
            Code::DEADLINE_EXCEEDED => "deadline_exceeded",
            Code::UNAVAILABLE => "unavailable",
            Code::RESOURCE_EXHAUSTED => "resource_exhausted",
            Code::PERMISSION_DENIED => "permission_denied",
            Code::INTERNAL => "internal",
            _ => "other",
        }
    }

    /// The one place a status code is chosen.
    fn code(&self) -> Code {
        use DaemonError as E;
        match self {
            E::NotFound(_) | E::ProcessExited => Code::NOT_FOUND,
            E::AlreadyExists(_) => Code::ALREADY_EXISTS,
            E::Unimplemented(_) => Code::UNIMPLEMENTED,
            E::InvalidId(_)
            | E::ReservedCgroup { .. }
            | E::NoRootfs(_)
            | E::Mount(_)
            | E::MalformedProcess { .. }
            | E::NoArgs(_)
            | E::MalformedResources(_)
            | E::Policy(_)
            | E::Seccomp { .. }
            | E::Spec(_) => Code::INVALID_ARGUMENT,
            E::Wasm(w) => match w {
                zygote_wasm::WasmError::Io { .. } | zygote_wasm::WasmError::Engine(_) => Code::FAILED_PRECONDITION,
                _ => Code::INVALID_ARGUMENT,
            },
            E::Config(_)
            | E::LandlockUnusable(_)
            | E::WasmCache { .. }
            | E::NotRunning(_)
            | E::NoMonitor(_)
            | E::ProcessRunning(_)
            | E::UnexpectedReply { .. }
            | E::MonitorDiedEarly { .. }
            | E::MonitorStuck { .. } => Code::FAILED_PRECONDITION,
            E::Monitor { failure, .. } => failure_code(failure.kind),
            E::MonitorGone { .. } | E::Io { .. } | E::Channel { .. } => Code::INTERNAL,
            E::Runtime(_) | E::Cgroup(_) | E::State(_) => Code::INTERNAL,
        }
    }
}

/// The status of a monitor's failure.
fn failure_code(kind: FailureKind) -> Code {
    use FailureKind as K;
    match kind {
        K::InvalidSpec | K::Cgroup | K::InvalidSignal | K::Stdio => Code::INVALID_ARGUMENT,
        K::NoSuchProcess | K::ProcessExited => Code::NOT_FOUND,
        K::NotRunning
        | K::AlreadyStarted
        | K::ExecExists
        | K::ProcessRunning
        | K::Unsupported
        | K::Container
        | K::WrongPeer => Code::FAILED_PRECONDITION,
        K::Internal => Code::INTERNAL,
    }
}

/// Full cause chain, the way containerd shows it to the user.
pub use zygote_contract::proto::error_chain as chain;

impl From<DaemonError> for ttrpc::Error {
    fn from(e: DaemonError) -> Self {
        let message = match &e {
            // The monitor's chain, as the monitor saw it.
            DaemonError::Monitor { failure, .. } => failure.to_string(),
            other => chain(other),
        };
        ttrpc::Error::RpcStatus(ttrpc::get_status(e.code(), message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(e: DaemonError) -> (Code, String) {
        match ttrpc::Error::from(e) {
            ttrpc::Error::RpcStatus(s) => (s.code(), s.message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn monitor_failures_keep_their_chain_and_get_their_code_here() {
        let failure = Failure {
            kind: FailureKind::Stdio,
            chain: vec!["open /x".into(), "No such file or directory (os error 2)".into()],
        };
        let (code, message) = status(DaemonError::Monitor {
            id: "t".into(),
            failure,
        });
        assert_eq!(code, Code::INVALID_ARGUMENT);
        assert_eq!(message, "open /x: No such file or directory (os error 2)");
        let (code, _) = status(DaemonError::Monitor {
            id: "t".into(),
            failure: Failure::new(FailureKind::ProcessExited, "process already finished"),
        });
        assert_eq!(code, Code::NOT_FOUND);
    }

    #[test]
    fn user_facing_messages_print_each_cause_once() {
        let bad: serde_json::Error = serde_json::from_str::<u32>("x").unwrap_err();
        let text = bad.to_string();
        let (code, message) = status(DaemonError::MalformedProcess {
            exec_id: "e1".into(),
            source: bad,
        });
        assert_eq!(code, Code::INVALID_ARGUMENT);
        assert_eq!(message, format!("exec e1: malformed process spec: {text}"));
        let (_, message) = status(DaemonError::io("create /b/rootfs")(std::io::Error::from_raw_os_error(
            2,
        )));
        assert_eq!(message, "create /b/rootfs: No such file or directory (os error 2)");
        let (code, message) = status(DaemonError::InvalidId("a/b".into()));
        assert_eq!(code, Code::INVALID_ARGUMENT);
        assert_eq!(
            message,
            "invalid task id \"a/b\": use letters, digits, '.', '_' and '-'"
        );
    }
}

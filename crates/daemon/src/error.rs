//! The daemon's error type and its one conversion to a ttrpc status.

use containerd_shim_protos::ttrpc;
use ttrpc::Code;
use zygote_contract::proto::{ErrorKind, WireError};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("task {0} not found")]
    NotFound(String),
    #[error("task {0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0} is not supported by zygote")]
    Unimplemented(&'static str),
    #[error("monitor of task {id}: {message}")]
    Monitor {
        id: String,
        kind: ErrorKind,
        message: String,
    },
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
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
        let what = what.into();
        move |source| DaemonError::Io { what, source }
    }

    fn code(&self) -> Code {
        match self {
            DaemonError::NotFound(_) => Code::NOT_FOUND,
            DaemonError::AlreadyExists(_) => Code::ALREADY_EXISTS,
            DaemonError::InvalidArgument(_) | DaemonError::Spec(_) => Code::INVALID_ARGUMENT,
            DaemonError::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            DaemonError::Unimplemented(_) => Code::UNIMPLEMENTED,
            DaemonError::Monitor { kind, .. } => match kind {
                ErrorKind::NotFound => Code::NOT_FOUND,
                ErrorKind::InvalidArgument => Code::INVALID_ARGUMENT,
                ErrorKind::FailedPrecondition => Code::FAILED_PRECONDITION,
                ErrorKind::Internal => Code::INTERNAL,
            },
            _ => Code::INTERNAL,
        }
    }
}

/// Full cause chain, the way containerd shows it to the user.
pub use zygote_contract::proto::error_chain as chain;

impl From<DaemonError> for ttrpc::Error {
    fn from(e: DaemonError) -> Self {
        let message = match &e {
            // The monitor already sends the full chain.
            DaemonError::Monitor { message, .. } => message.clone(),
            other => chain(other),
        };
        ttrpc::Error::RpcStatus(ttrpc::get_status(e.code(), message))
    }
}

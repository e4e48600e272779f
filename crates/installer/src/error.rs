//! The installer's errors: each names the file (and, for config problems,
//! the key) it is about, so a failed DaemonSet pod's log says what to fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid TOML, nothing changed: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("{path}: key `{key}`: {problem}")]
    Config {
        path: PathBuf,
        key: String,
        problem: String,
    },
    #[error("zygote config {path}: {source}")]
    Zygote {
        path: PathBuf,
        #[source]
        source: Box<zygote_config::PolicyError>,
    },
    #[error("restarting containerd ({how}): {problem}")]
    Restart { how: String, problem: String },
    #[error("probe of handler {handler} through {socket}: {problem}")]
    Probe {
        handler: String,
        socket: PathBuf,
        problem: String,
    },
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Wraps an io error with the path it is about.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

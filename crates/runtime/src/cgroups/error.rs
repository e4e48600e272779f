//! [`CgroupError`]: every failure of a cgroup operation, naming the file,
//! value or pid involved.

use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::Signal;

/// Errors from cgroup operations.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("no cgroup hierarchy found under {root}")]
    NoHierarchy { root: PathBuf },
    #[error("cgroup {path} does not exist")]
    NotFound { path: PathBuf },
    #[error("create cgroup directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("write {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    #[error("read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("controller {controller} is not available for cgroup {cgroup}")]
    ControllerUnavailable { controller: String, cgroup: PathBuf },
    #[error("{field} {reason}")]
    InvalidResource { field: String, reason: String },
    #[error("{path}: state did not become {want} within {waited_ms} ms (last state {state:?})")]
    FreezeTimeout {
        path: PathBuf,
        want: String,
        state: String,
        waited_ms: u128,
    },
    #[error("remove cgroup directory {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("send {signal} to pid {pid}: {errno}")]
    Signal { pid: i32, signal: Signal, errno: Errno },
    #[error("{op} of the device filter for {path}: {errno}{detail}")]
    DeviceFilter {
        path: PathBuf,
        op: &'static str,
        errno: Errno,
        detail: String,
    },
    #[error("systemd: {op} {unit}: {message}")]
    Systemd {
        unit: String,
        op: &'static str,
        message: String,
    },
    #[error("register an oom eventfd for {path}: {errno}")]
    EventFd { path: PathBuf, errno: Errno },
}

pub(crate) type Result<T> = std::result::Result<T, CgroupError>;

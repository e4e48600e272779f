//! Tasks whose payload runs inside the container child instead of an
//! `execve`'d binary: WebAssembly modules.
//!
//! This crate owns the order of the child's setup for them (see
//! [`crate::init::guest`]); the payload comes from a [`GuestRunner`]
//! (implemented by `zygote-wasm`), so the runtime does not link a Wasm
//! engine. The runner is a `'static` value handed to the zygote or the cold
//! path by the monitor; its three steps are typestates so that the order
//! (load, then restrict, then instantiate, then the barrier, then run) is
//! the only one that compiles.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;

/// What the daemon decided about a guest task, carried in `task.json` and
/// in a zygote's task message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestTask {
    /// Host path of the module in the rootfs (for messages).
    pub module: PathBuf,
    /// The module as the process sees it (`args[0]` resolved in the rootfs).
    pub module_in_rootfs: String,
    /// Host path of the compiled artifact in the node's cache.
    pub artifact: PathBuf,
    /// sha256 of the module (hex).
    pub digest: String,
    /// Cap on the total size of the instance's linear memories, bytes
    /// (`linux.resources.memory.limit`).
    pub memory_limit: Option<u64>,
    /// `root.readonly`: the rootfs is preopened read-only.
    pub readonly_root: bool,
}

/// Everything the instance needs from the spec, in host terms.
#[derive(Debug, Clone)]
pub struct GuestLaunch {
    /// `process.args` (the first is the module's name in the rootfs).
    pub args: Vec<String>,
    /// `process.env` as `(key, value)`.
    pub env: Vec<(String, String)>,
    /// Host path of the rootfs, preopened as `/`.
    pub rootfs: PathBuf,
}

/// Warming a guest runner failed (only reported: a claim loads what it
/// needs itself).
#[derive(Debug, thiserror::Error)]
pub enum WarmError {
    /// The engine could not be built.
    #[error("build the engine")]
    Engine(#[source] RuntimeError),
    /// Some hot artifacts could not be loaded: each with its cause chain.
    #[error("load {}", .0.iter().map(|(p, e)| format!("{}: {}", p.display(), crate::error::chain(e))).collect::<Vec<_>>().join("; "))]
    Artifacts(Vec<(PathBuf, RuntimeError)>),
}

/// Provides the payload of guest tasks.
pub trait GuestRunner: Sync + std::fmt::Debug {
    /// In a zygote child before its task is known (single-threaded, no
    /// restrictions yet): build the engine and load `hot` artifacts so a
    /// claim finds them ready. Failures are only reported: the claim then
    /// loads what it needs itself.
    fn warm(&self, hot: &[PathBuf]) -> Result<(), WarmError>;

    /// Load the task's artifact. Runs before Landlock and seccomp: the
    /// artifact lives in the node's cache, outside the rootfs.
    fn load(&self, task: &GuestTask) -> Result<Box<dyn LoadedGuest>, RuntimeError>;
}

/// What a zygote child gets to serve guest tasks.
#[derive(Debug, Clone)]
pub struct GuestSupport {
    /// Loads and runs guest tasks.
    pub runner: &'static dyn GuestRunner,
    /// Build the engine before the task is known ([`GuestRunner::warm`]).
    pub warm: bool,
    /// Artifacts to load in advance (the profile's hot modules).
    pub hot: Vec<PathBuf>,
}

/// A loaded module, not yet instantiated.
pub trait LoadedGuest {
    /// Instantiate with the rootfs preopened and stdio on fds 0-2. Runs after
    /// Landlock, seccomp (when it does not wait for the barrier) and the
    /// switch to the process's credentials, before `Ready`.
    fn instantiate(self: Box<Self>, launch: &GuestLaunch) -> Result<Box<dyn ReadyGuest>, RuntimeError>;
}

/// An instance ready to enter `_start`.
pub trait ReadyGuest {
    /// Run the instance to completion and return the process exit status.
    /// `entered` is called right before the entry point (the parent reads
    /// it as "exec happened").
    fn run(self: Box<Self>, entered: &dyn Fn()) -> i32;
}

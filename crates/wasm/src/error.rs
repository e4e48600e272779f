//! Errors of the Wasm crate.

use std::path::PathBuf;

/// What can go wrong deciding, compiling or caching a Wasm task.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// `context` says what was done to which path; the cause is the
    /// source (printed once, by the chain: see `zygote_runtime::error::chain`).
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the entrypoint {path} is a WebAssembly component; only WASI preview 1 modules are supported")]
    Component { path: String },
    #[error("profile {profile:?} runs WebAssembly (mode = \"wasm\") but the entrypoint {entrypoint:?} is not a WebAssembly module")]
    NotWasm { profile: String, entrypoint: String },
    #[error("process.args is empty: a WebAssembly task needs its module as args[0]")]
    NoEntrypoint,
    #[error("compile {module}: {message}")]
    Compile { module: PathBuf, message: String },
    #[error("wasmtime engine: {0}")]
    Engine(String),
}

impl WasmError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> WasmError {
        let context = context.into();
        move |source| WasmError::Io { context, source }
    }
}

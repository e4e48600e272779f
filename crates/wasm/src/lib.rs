//! zygote-wasm: WebAssembly tasks.
//!
//! * [`detect`]: is a task's entrypoint a Wasm module (by its header)?
//! * [`engine`]: the node's one wasmtime configuration.
//! * [`cache`]: compiled artifacts on disk, keyed by module digest and
//!   engine compatibility, verified, bounded (LRU); used by the daemon,
//!   which compiles each module once per node.
//! * [`runner`]: the runtime's guest runner for Wasm, used in the task
//!   process (warm zygote or cold child): load, instantiate, run.
//! * [`signals`]: how Kill ends a running module.
//! * `sys`: the crate's unsafe code.

pub mod cache;
pub mod detect;
pub mod engine;
pub mod error;
pub mod runner;
pub mod signals;
mod sys;

pub use cache::{Artifact, Cache, CacheStats, Outcome};
pub use error::WasmError;
pub use runner::{WasmRunner, RUNNER};

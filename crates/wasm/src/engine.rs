//! The node's one wasmtime configuration.
//!
//! The daemon compiles with it and the task processes run with it, so an
//! artifact compiled once serves every task on the node. Epoch
//! interruption is on (a signal ends a running module at its next loop
//! back-edge or call, see [`crate::signals`]). Task processes use the
//! pooling allocator with a single slot when the host allows it: the slot's
//! address space is reserved when the engine is built (in a warm zygote,
//! before the task is known) instead of at instantiation; the daemon, which
//! never instantiates, uses the on-demand allocator.

use std::hash::{Hash, Hasher};

use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::error::WasmError;

/// Largest linear memory a task may have (a 32-bit memory's whole range).
const MAX_MEMORY: usize = 4 << 30;

fn base() -> Config {
    let mut c = Config::new();
    c.epoch_interruption(true);
    c.cranelift_opt_level(OptLevel::Speed);
    c
}

/// The engine the daemon compiles with.
pub fn compiler() -> Result<Engine, WasmError> {
    Engine::new(&base()).map_err(|e| WasmError::Engine(format!("{e:#}")))
}

/// The engine a task process runs with: pooling (one slot) if the host
/// grants the reservation, otherwise on-demand. Returns whether pooling is
/// in use.
pub fn runner() -> Result<(Engine, bool), WasmError> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(1)
        .total_memories(1)
        .total_tables(1)
        .total_stacks(1)
        .total_component_instances(0)
        .max_memory_size(MAX_MEMORY);
    let mut c = base();
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&c) {
        Ok(e) => Ok((e, true)),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "pooling allocator unavailable, using on-demand allocation");
            Engine::new(&base())
                .map(|e| (e, false))
                .map_err(|e| WasmError::Engine(format!("{e:#}")))
        }
    }
}

/// A stable text key for "artifacts this engine can load": the first 16
/// hex digits of sha256 over wasmtime's compatibility hash.
pub fn compat_key(engine: &Engine) -> String {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = Sha(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex(&h.0.finalize()[..8])
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

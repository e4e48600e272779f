//! The in-task side: [`WasmRunner`], the runtime's [`GuestRunner`] for
//! WebAssembly.
//!
//! It runs in the container child (a zygote's, or a cold one), never in
//! the daemon. [`GuestRunner::warm`] (a zygote, before its task is known)
//! builds the engine, the WASI linker and an `InstancePre` for each hot
//! artifact; [`GuestRunner::load`] takes those or loads the artifact now
//! (mapped from the cache, never compiled here); instantiation preopens the
//! rootfs as `/` (read-only with `root.readonly`), passes args and env,
//! puts stdio on fds 0-2, caps linear memory at the task's memory limit
//! and checks for `_start`; [`ReadyGuest::run`] arms the signal handlers,
//! creates the Tokio runtime WASI needs (a single worker: threads are
//! only created here, after Landlock and seccomp, so they inherit both) and
//! calls `_start`.
//!
//! Exit status: `proc_exit(n)` is `n`; returning from `_start` is 0; a
//! terminating signal is 128 + signal (see [`crate::signals`]); a trap is
//! 134 (128 + SIGABRT, like the wasmtime CLI) with the trap on stderr, and
//! so is growing linear memory past the task's memory limit; any
//! other failure is 1 with the error on stderr.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use wasmtime::{Engine, InstancePre, Linker, ResourceLimiter, Store, Trap, TypedFunc};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};
use zygote_runtime::error::chain;
use zygote_runtime::guest::{GuestLaunch, GuestRunner, GuestTask, LoadedGuest, ReadyGuest, WarmError};
use zygote_runtime::RuntimeError;

use crate::cache::Fingerprint;
use crate::error::WasmError;
use crate::{engine, signals, sys};

/// Status of a trapped module.
pub const TRAP_STATUS: i32 = 128 + libc::SIGABRT;

/// The runner; stateless itself, its warm state lives in the process.
#[derive(Debug, Default)]
pub struct WasmRunner;

/// The one runner value handed to zygotes and cold children.
pub static RUNNER: WasmRunner = WasmRunner;

/// Per-store host state.
struct Host {
    wasi: WasiP1Ctx,
    cap: MemoryCap,
}

/// Linear memory cap from `linux.resources.memory.limit`.
struct MemoryCap(Option<usize>);

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        match self.0 {
            Some(limit) if desired > limit => Err(wasmtime::Error::new(MemoryLimitReached {
                current,
                desired,
                limit,
            })),
            _ => Ok(true),
        }
    }

    fn table_growing(&mut self, _current: usize, _desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// A memory.grow beyond the cap: ends the module like a trap.
#[derive(Debug, thiserror::Error)]
#[error(
    "memory limit reached: growing linear memory from {current} to {desired} bytes exceeds \
     linux.resources.memory.limit ({limit} bytes)"
)]
struct MemoryLimitReached {
    current: usize,
    desired: usize,
    limit: usize,
}

/// What a process keeps ready: engine, linker, hot modules by artifact
/// identity (inode, size, mtime, ctime at load).
struct Warm {
    engine: Engine,
    pooling: bool,
    linker: Linker<Host>,
    hot: HashMap<(PathBuf, Fingerprint), InstancePre<Host>>,
}

static WARM: Mutex<Option<Warm>> = Mutex::new(None);

/// What can go wrong preparing a module in the task process. It crosses
/// into the runtime as [`RuntimeError::Setup`] holding its whole chain.
#[derive(Debug, thiserror::Error)]
enum RunnerError {
    #[error("wasm: engine")]
    Engine(#[source] WasmError),
    /// A wasmtime step; `detail` is wasmtime's error with its causes.
    #[error("wasm: {context}: {detail}")]
    Wasmtime { context: String, detail: String },
    #[error("wasm: stat {}", path.display())]
    Stat {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("wasm: {module}: exports no `_start` function (not a WASI command module)")]
    NoStart { module: String },
}

impl RunnerError {
    fn wasmtime(context: impl Into<String>) -> impl FnOnce(wasmtime::Error) -> RunnerError {
        move |e| RunnerError::Wasmtime {
            context: context.into(),
            detail: format!("{e:#}"),
        }
    }
}

impl From<RunnerError> for RuntimeError {
    fn from(e: RunnerError) -> RuntimeError {
        RuntimeError::Setup(chain(&e))
    }
}

fn new_warm() -> Result<Warm, RunnerError> {
    let (engine, pooling) = engine::runner().map_err(RunnerError::Engine)?;
    let mut linker: Linker<Host> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |h: &mut Host| &mut h.wasi)
        .map_err(RunnerError::wasmtime("link WASI preview 1"))?;
    Ok(Warm {
        engine,
        pooling,
        linker,
        hot: HashMap::new(),
    })
}

fn identity(path: &Path) -> Result<(PathBuf, Fingerprint), RunnerError> {
    let meta = std::fs::metadata(path).map_err(|source| RunnerError::Stat {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((path.to_path_buf(), Fingerprint::of(&meta)))
}

fn prepare(warm: &Warm, artifact: &Path) -> Result<InstancePre<Host>, RunnerError> {
    let module = sys::load_artifact(&warm.engine, artifact)
        .map_err(RunnerError::wasmtime(format!("load artifact {}", artifact.display())))?;
    warm.linker.instantiate_pre(&module).map_err(RunnerError::wasmtime(
        "link the module's imports (only WASI preview 1 is provided)",
    ))
}

/// Builds the process's engine and linker once and makes `hot` artifacts
/// ready; every artifact that fails is reported, the others stay ready.
fn warm(hot: &[PathBuf]) -> Result<(), WarmError> {
    let mut slot = WARM.lock().unwrap_or_else(|p| p.into_inner());
    let warm = match slot.as_mut() {
        Some(w) => w,
        None => slot.insert(new_warm().map_err(|e| WarmError::Engine(e.into()))?),
    };
    let mut failed = Vec::new();
    for path in hot {
        match identity(path).and_then(|id| prepare(warm, path).map(|pre| (id, pre))) {
            Ok((id, pre)) => {
                warm.hot.insert(id, pre);
            }
            Err(e) => failed.push((path.clone(), e.into())),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(WarmError::Artifacts(failed))
    }
}

impl GuestRunner for WasmRunner {
    fn warm(&self, hot: &[PathBuf]) -> Result<(), WarmError> {
        warm(hot)
    }

    fn load(&self, task: &GuestTask) -> Result<Box<dyn LoadedGuest>, RuntimeError> {
        let warm = match WARM.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(w) => w,
            None => new_warm()?,
        };
        let id = identity(&task.artifact)?;
        let pre = match warm.hot.get(&id) {
            Some(pre) => pre.clone(),
            None => prepare(&warm, &task.artifact)?,
        };
        tracing::debug!(
            pooling = warm.pooling,
            hot = warm.hot.contains_key(&id),
            "wasm module loaded"
        );
        // The other hot modules are never released: releasing one reads its
        // mapping (unwind tables), and a cache file changed in place since
        // it was mapped (a corrupt entry the daemon has since replaced)
        // would raise SIGBUS. The process ends with its task anyway.
        std::mem::forget(warm.hot);
        Ok(Box::new(Loaded {
            engine: warm.engine,
            pre,
            task: task.clone(),
        }))
    }
}

struct Loaded {
    engine: Engine,
    pre: InstancePre<Host>,
    task: GuestTask,
}

impl LoadedGuest for Loaded {
    fn instantiate(self: Box<Self>, launch: &GuestLaunch) -> Result<Box<dyn ReadyGuest>, RuntimeError> {
        let perms = if self.task.readonly_root {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        let mut b = WasiCtxBuilder::new();
        b.args(&launch.args)
            .envs(&launch.env)
            .inherit_stdio()
            .allow_blocking_current_thread(true);
        b.preopened_dir(&launch.rootfs, "/", perms)
            .map_err(RunnerError::wasmtime(format!(
                "preopen {} as /",
                launch.rootfs.display()
            )))?;
        let cap = MemoryCap(self.task.memory_limit.map(|l| l as usize));
        let mut store = Store::new(
            &self.engine,
            Host {
                wasi: b.build_p1(),
                cap,
            },
        );
        store.limiter(|h| &mut h.cap);
        store.set_epoch_deadline(1);
        store.epoch_deadline_trap();
        store.call_hook(|_, t| signals::hook(t));
        let instance = self.pre.instantiate(&mut store).map_err(RunnerError::wasmtime(format!(
            "instantiate {}",
            self.task.module_in_rootfs
        )))?;
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(|_| RunnerError::NoStart {
                module: self.task.module_in_rootfs.clone(),
            })?;
        Ok(Box::new(Ready {
            engine: self.engine,
            store,
            start,
            module: self.task.module_in_rootfs,
        }))
    }
}

struct Ready {
    engine: Engine,
    store: Store<Host>,
    start: TypedFunc<(), ()>,
    module: String,
}

impl ReadyGuest for Ready {
    fn run(self: Box<Self>, entered: &dyn Fn()) -> i32 {
        let Ready {
            engine,
            mut store,
            start,
            module,
        } = *self;
        if let Err(e) = signals::arm(&engine) {
            eprintln!("zygote: {module}: cannot install signal handlers: {e}");
            return 1;
        }
        let tokio = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(t) => t,
            Err(e) => {
                eprintln!("zygote: {module}: cannot start the WASI runtime: {e}");
                return 1;
            }
        };
        let _enter = tokio.enter();
        entered();
        let result = start.call(&mut store, ());
        let _ = std::io::stdout().flush();
        let status = match result {
            Ok(()) => 0,
            Err(e) => {
                if let Some(exit) = e.downcast_ref::<I32Exit>() {
                    exit.0
                } else if let Some(signal) = signals::pending() {
                    128 + signal
                } else if e.downcast_ref::<Trap>().is_some() || e.downcast_ref::<MemoryLimitReached>().is_some() {
                    eprintln!("zygote: wasm trap in {module}: {e:?}");
                    TRAP_STATUS
                } else {
                    eprintln!("zygote: {module} failed: {e:?}");
                    1
                }
            }
        };
        let _ = std::io::stderr().flush();
        // Dropping the runtime would wait for a worker blocked on stdin.
        std::mem::forget(tokio);
        status
    }
}

//! Shared helpers for the zygote integration tests.
//!
//! The tests drive a REAL private containerd through `ctr` (as a subprocess)
//! and run every scenario under runc (`io.containerd.runc.v2`) and zygote
//! (`io.containerd.zygote.v1`), comparing what is observed.  They are meant
//! to be run by `hack/test.sh`, which starts the containerd, imports the
//! busybox image and exports:
//!
//! | variable                     | meaning                                          |
//! |------------------------------|--------------------------------------------------|
//! | `ZYGOTE_TEST_CONTAINERD_DIR` | the private containerd's directory               |
//! | `ZYGOTE_TEST_ADDRESS`        | its grpc socket                                  |
//! | `ZYGOTE_TEST_IMAGE`          | image reference (`docker.io/zygote/busybox:latest`) |
//! | `ZYGOTE_TEST_ROOTFS`         | unpacked copy of the image's rootfs (for `--config` runs) |
//! | `ZYGOTE_TEST_NAMESPACE`      | containerd namespace holding the image (test.sh: `zygote-test-<random>`; default `zygote-test`) |
//! | `ZYGOTE_STATE_DIR`           | zygote daemon state root                          |
//! | `ZYGOTE_HACK_DIR`            | `<repo>/hack` (for `containerd.sh restart`)       |
//! | `ZYGOTE_TEST_RUNTIMES`       | `runc,zygote` (default), `runc` or `zygote`       |
//! | `ZYGOTE_TEST_PATH`           | `warm` (pools filled) or `cold` (pools disabled): the path the zygote daemon's config makes tasks take |
//! | `ZYGOTE_TEST_WASM_IMAGE`     | the Wasm test image (`docker.io/zygote/wasm:latest`) |
//! | `ZYGOTE_TEST_WASM_MODULES`   | the compiled test modules (`tests/wasm/*.wat` as `.wasm`) |
//! | `ZYGOTE_WASM_CACHE_DIR`      | the daemon's artifact cache                       |
//!
//! A missing variable is a test FAILURE (panic), never a silent skip.
//!
//! Modules (everything public is re-exported here, so tests just
//! `use zygote_integration_tests::*;`):
//!
//! | module      | owns                                                              |
//! |-------------|-------------------------------------------------------------------|
//! | `env`       | the variables above ([`env()`]), `hack/containerd.sh`             |
//! | `runtime`   | [`Runtime`], `ZYGOTE_TEST_RUNTIMES`, unique container ids         |
//! | `compare`   | [`both`] / [`both_expect`]: side-by-side runs, [`exclusive`]      |
//! | `command`   | host commands with timeouts: [`Output`], [`Background`]           |
//! | `pools`     | the zygote daemon's `pools.json` and `timings.jsonl`, the test path |
//! | `ctr`       | the `ctr` runner [`Ctr`], its output parsers, [`Container`]       |
//! | `spec`      | `ctr run --config` bundles: [`ConfigBundle`]                      |
//! | `events`    | `ctr events` in the background: [`Events`]                        |
//! | `private`   | [`PrivateContainerd`]: a containerd of a test's own; [`Tmpfs`]    |
//! | `process`   | `/proc` helpers, [`HostProcess`], zygote daemons                  |
//! | `diagnose`  | [`diagnose_task`]: what a hung task's processes and logs show; [`recent_logs`] |
//! | `wasm`      | the Wasm image, `ctr run` with it, the artifact cache            |
//! | `zygotectl` | the `zygotectl` binary, [`ControlledNode`] (a containerd whose config the test owns) |
//! | `leftovers` | leak detectors: [`leftovers`], [`assert_no_leftovers`], counts     |

mod command;
mod compare;
mod ctr;
mod diagnose;
mod env;
mod events;
mod leftovers;
mod pools;
mod private;
mod process;
mod runtime;
mod spec;
mod wasm;
mod zygotectl;

pub use command::*;
pub use compare::*;
pub use ctr::*;
pub use diagnose::*;
pub use env::*;
pub use events::*;
pub use leftovers::*;
pub use pools::*;
pub use private::*;
pub use process::*;
pub use runtime::*;
pub use spec::*;
pub use wasm::*;
pub use zygotectl::*;

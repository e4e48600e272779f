//! Helpers of the CRI tests: pods through containerd's CRI plugin, handler
//! `runc` and handler `zygote` side by side with the same assertions.
//!
//! Run them with `hack/test.sh -p zygote-cri-tests`. hack/test.sh builds
//! the busybox image and exports `ZYGOTE_TEST_IMAGE`,
//! `ZYGOTE_TEST_IMAGE_TAR`, `ZYGOTE_TEST_IMAGE_BASE_NAME` and
//! `ZYGOTE_HACK_DIR` (plus the variables of the integration harness); each
//! test binary then starts a containerd of its own with CRI enabled
//! (`ZYGOTE_CRI=1 hack/containerd.sh`, profiles of `config/cri.toml`) and
//! stops it when it exits. `ZYGOTE_TEST_RUNTIMES` selects the handlers
//! (runc, zygote) as for the integration tests.
//!
//! | module   | owns                                                         |
//! |----------|--------------------------------------------------------------|
//! | `node`   | the CRI containerd of this binary ([`node()`]), zygote state |
//! | `client` | the blocking CRI v1 client [`Cri`] (k8s-cri over the socket)  |
//! | `pod`    | handlers, 64-hex names, configs, [`Pod`] and its leak check  |
//! | `config_edit` | security contexts of configs, `sh` through ExecSync     |
//! | `exit`   | work at process exit (stopping the node)                     |
//! | `stream` | exec/attach/port-forward over WebSocket ([`Stream`])          |

mod client;
mod config_edit;
mod exit;
mod node;
mod pod;
mod stream;

pub use client::*;
pub use config_edit::*;
pub use node::*;
pub use pod::*;
pub use stream::*;

use zygote_integration_tests::{require_runtime, Runtime};

/// Runs `f` once per selected handler (runc, then zygote), each with a
/// fresh client: the side-by-side part of every test.
pub fn for_each_handler(test: &str, mut f: impl FnMut(&Cri, Handler)) {
    let n = node();
    for rt in Runtime::ALL {
        if !require_runtime(rt, test) {
            continue;
        }
        let cri = Cri::connect(&n.address);
        f(&cri, Handler::of(rt));
    }
}

//! zygote-installer: puts zygote on a Kubernetes node and takes it off
//! again (the node half of the Helm chart's DaemonSet).
//!
//! | module              | owns                                                        |
//! |---------------------|-------------------------------------------------------------|
//! | `containerd_config` | config version/plugin detection, handler tables, `imports`  |
//! | `handlers`          | profile -> handler name and options file                    |
//! | `host`              | paths under the host root, edit mode, the installer's state |
//! | `journal`           | atomic writes remembered for a byte-exact rollback          |
//! | `install`           | `install` / `uninstall`: plan, apply, restart, probe, undo  |
//! | `restart`           | restarting containerd (systemd via nsenter, signal, none)   |
//! | `probe`             | the CRI socket wait and the RunPodSandbox probe             |
//! | `status`            | `status`: what is installed                                 |
//! | `node`              | `--label` syntax; labelling the node via the Kubernetes API |

pub mod containerd_config;
pub mod error;
pub mod handlers;
pub mod host;
pub mod install;
pub mod journal;
pub mod node;
pub mod probe;
pub mod restart;
pub mod status;

pub use error::{Error, Result};

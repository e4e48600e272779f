//! containerd's log for one task: the `log` FIFO in the task's bundle.
//!
//! containerd opens `<bundle>/log` when it starts a shim and copies what is
//! written there into its own log (`journalctl -u containerd` on a node).
//! zygote's daemon and monitors log to files in the state dir; failures
//! that make those files unwritable (a full state dir) are reported here
//! too, where an operator looks first.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes one line to containerd's log of the task whose bundle is
/// `bundle`. Never blocks: when containerd is not reading (or the FIFO is
/// full or gone), the line is dropped.
pub fn write(bundle: &Path, line: &str) {
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(bundle.join("log"));
    if let Ok(mut f) = opened {
        let _ = f.write_all(format!("{}\n", line.trim_end()).as_bytes());
    }
}

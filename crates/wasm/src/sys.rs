//! The crate's unsafe code: opening a file beneath a root with `openat2`,
//! installing signal handlers, and mapping a compiled artifact.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use wasmtime::{Engine, Module};

/// Open `path` read-only as if `root` were `/`: `..`, absolute symlinks
/// and absolute paths all stay beneath it (`RESOLVE_IN_ROOT`), magic links
/// are refused.
pub fn open_in_root(root: &File, path: &Path) -> std::io::Result<File> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = nix::fcntl::openat2(root.as_raw_fd(), path, how)?;
    // SAFETY: openat2 just returned this descriptor and nothing else owns it.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Install `handler` for `signal`, without `SA_RESTART` (a blocked host
/// call returns `EINTR` and the guest sees the interruption sooner).
pub fn on_signal(signal: Signal, handler: extern "C" fn(libc::c_int)) -> nix::Result<()> {
    let action = SigAction::new(SigHandler::Handler(handler), SaFlags::empty(), SigSet::empty());
    // SAFETY: the handlers installed through here (crate::signals) only
    // touch atomics, the engine's epoch counter (an atomic add) and
    // `_exit`, all async-signal-safe.
    unsafe { sigaction(signal, &action) }.map(drop)
}

/// Map a compiled artifact from the node's cache.
///
/// wasmtime trusts the code in an artifact. Artifacts are only written by
/// this node's daemon (crate::cache: a root-only directory, written to a
/// temporary file and renamed into place, never modified in place), and the
/// daemon checked the file against the digest it recorded when it wrote it
/// (or re-checked it after any change to the file's inode, size, mtime or
/// ctime) before naming it in a task. wasmtime itself rejects an artifact
/// built by another engine configuration.
pub fn load_artifact(engine: &Engine, path: &Path) -> wasmtime::Result<Module> {
    // SAFETY: the artifact was written and verified by this node's daemon
    // (see the function's docs); wasmtime checks its engine compatibility.
    unsafe { Module::deserialize_file(engine, path) }
}

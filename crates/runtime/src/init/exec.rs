//! Resolving `args[0]` like runc (Go's `exec.LookPath`, run inside the
//! container after the credentials are switched) and the exec barrier
//! shared by every path: report ready, wait for go, late seccomp; then
//! `execve`.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::{execve, faccessat, AccessFlags};

use super::plan::{InitPlan, ProcessPlan};
use super::process::Prepared;
use super::sync::{Message, SyncChannel};
use crate::error::RuntimeError;
use crate::sys;

/// Go-style (lowercase) text of an errno, as in `stat /x: no such file or directory`.
fn errno_text(errno: Errno) -> String {
    let desc = errno.desc();
    let mut c = desc.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Why `args[0]` cannot be executed; the texts are runc's (Go's).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// `stat` of the candidate failed.
    #[error("stat {}: {}", path.display(), errno_text(*errno))]
    Stat { path: PathBuf, errno: Errno },
    /// The candidate is a directory.
    #[error("{}", errno_text(Errno::EISDIR))]
    IsDirectory,
    /// The caller may not execute the candidate.
    #[error("{}", errno_text(*.0))]
    NotExecutable(Errno),
    /// No directory of `PATH` holds an executable of that name.
    #[error("executable file not found in $PATH")]
    NotFoundInPath,
    /// The path cannot be passed to `execve`.
    #[error("contains a NUL byte")]
    NulByte,
}

/// Go's `findExecutable`: a non-directory the caller may execute.
fn check_executable(path: &Path) -> Result<(), ExecError> {
    let meta = std::fs::metadata(path).map_err(|e| ExecError::Stat {
        path: path.to_path_buf(),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
    })?;
    if meta.is_dir() {
        return Err(ExecError::IsDirectory);
    }
    faccessat(None, path, AccessFlags::X_OK, nix::fcntl::AtFlags::AT_EACCESS).map_err(ExecError::NotExecutable)
}

/// Resolve `args[0]`: used as is when it contains a `/`, otherwise searched
/// in the `PATH` of `process.env` (or the default PATH when it has none).
/// Errors read like runc's: `exec: "foo": executable file not found in $PATH`.
pub fn lookup(p: &ProcessPlan) -> Result<CString, RuntimeError> {
    let name = &p.arg0;
    let to_c = |path: &Path| {
        CString::new(path.as_os_str().as_bytes()).map_err(|_| RuntimeError::Exec {
            name: name.clone(),
            reason: ExecError::NulByte,
        })
    };
    if name.contains('/') {
        check_executable(Path::new(name)).map_err(|reason| RuntimeError::Exec {
            name: name.clone(),
            reason,
        })?;
        return to_c(Path::new(name));
    }
    for dir in p.search_path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = PathBuf::from(dir).join(name);
        if check_executable(&candidate).is_ok() {
            return to_c(&candidate);
        }
    }
    Err(RuntimeError::Exec {
        name: name.clone(),
        reason: ExecError::NotFoundInPath,
    })
}

/// The exec barrier that every process of a container (init, exec, warm
/// zygote task, guest) passes last before running the user's code: report
/// `Ready`, wait for the parent's `Go`, then install a seccomp filter that
/// waited for it (no_new_privs set: the filter goes in last, after the
/// credential switch, so it need not allow the setup syscalls; without
/// no_new_privs it was installed before the credential switch, see
/// [`super::process::setup`]). The order of the security steps is in the
/// module docs of [`super`].
pub(super) fn barrier(plan: &InitPlan, chan: &SyncChannel) -> Result<(), RuntimeError> {
    chan.ensure_placed()?;
    chan.send(&Message::Ready)?;
    chan.wait_for(&Message::Go)?;
    if let (Some(filter), true) = (&plan.seccomp, plan.process.no_new_privileges) {
        let started = std::time::Instant::now();
        filter.apply()?;
        let _ = chan.send(&Message::SecurityTime(started.elapsed().as_micros() as u64));
    }
    Ok(())
}

/// [`barrier`], then `execve`. Only returns on failure.
pub fn barrier_and_exec(plan: &InitPlan, prepared: &Prepared, chan: &SyncChannel) -> Result<Infallible, RuntimeError> {
    barrier(plan, chan)?;
    // Nothing but 0-2 may leak into the container process; the sync socket
    // is already close-on-exec, so EOF tells the parent exec happened.
    sys::mark_cloexec_from(3).map_err(|errno| RuntimeError::Sys {
        context: "mark descriptors close-on-exec".into(),
        errno,
    })?;
    let errno = match execve(&prepared.path, &plan.process.args, &plan.process.env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    Err(RuntimeError::Sys {
        context: format!("exec {}", prepared.path.to_string_lossy()),
        errno,
    })
}

//! Path resolution confined to the container rootfs.
//!
//! Mount destinations, device paths and the cwd come from the image and the
//! spec, so a symlink in the rootfs (`/etc -> /host/etc`, `../../..`) must not
//! make us mount or create anything outside it. Every lookup goes through
//! `openat2(RESOLVE_IN_ROOT)` relative to an `O_PATH` descriptor of the
//! rootfs: absolute symlinks and `..` are resolved as if the rootfs were `/`.
//! Operations then act on the resolved descriptor (mount targets are given
//! as `/proc/self/fd/N`), not on a path that could be swapped in between.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};

use crate::error::{Context, RuntimeError};

/// Take ownership of a descriptor a syscall just returned (for the nix
/// calls that still return a `RawFd`).
///
/// # Safety
///
/// `fd` must be an open descriptor that nothing else owns or will close:
/// in practice one an open-like syscall returned a moment ago. The returned
/// `OwnedFd` closes it on drop.
pub(crate) unsafe fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: the caller guarantees `fd` is open and owned by no one else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `open(2)` returning an owned descriptor (nix 0.29 returns a `RawFd`).
pub(crate) fn open_owned<P: ?Sized + nix::NixPath>(path: &P, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::open(path, flags, mode)?;
    // SAFETY: `open` just returned this descriptor; nothing else has it.
    Ok(unsafe { own(fd) })
}

/// The magic-link path naming `fd` (usable as a mount source or target).
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `path` without its leading `/`, for display relative to the rootfs.
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect()
}

/// An open rootfs that paths are resolved in.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Open `path` (a directory) as the resolution root.
    pub fn open(path: &Path) -> Result<Root, RuntimeError> {
        let fd = open_owned(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("open rootfs {}", path.display()))?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Host path that `path` would have if no symlinks were involved (for
    /// messages only).
    pub fn display(&self, path: &Path) -> String {
        self.path.join(relative(path)).display().to_string()
    }

    /// Open `path` inside the root with `flags` (plus `O_CLOEXEC`).
    pub fn open_in(&self, path: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
        let rel = relative(path);
        let rel = if rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            rel
        };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .mode(mode)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        loop {
            match openat2(self.fd.as_raw_fd(), &rel, how) {
                // EAGAIN: a concurrent rename raced the lookup; retry.
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
                // SAFETY: openat2 just returned this descriptor; nothing else has it.
                r => return r.map(|fd| unsafe { own(fd) }),
            }
        }
    }

    /// `O_PATH` descriptor of an existing `path` inside the root.
    pub fn resolve(&self, path: &Path) -> Result<OwnedFd, RuntimeError> {
        self.open_in(path, OFlag::O_PATH, Mode::empty())
            .ctx(|| format!("resolve {} in rootfs", self.display(path)))
    }

    /// Create the directory `path` and its missing parents inside the root
    /// (`mkdir -p`, each component resolved in the root) and return an
    /// `O_PATH` descriptor of it.
    pub fn mkdir_all(&self, path: &Path, mode: Mode) -> Result<OwnedFd, RuntimeError> {
        let mut prefix = PathBuf::from("/");
        let mut current = self
            .open_in(&prefix, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
            .ctx(|| format!("open rootfs {}", self.path.display()))?;
        for comp in path.components() {
            let name = match comp {
                Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
                Component::ParentDir => std::ffi::OsStr::new(".."),
                Component::Normal(n) => n,
            };
            prefix.push(name);
            let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
            current = match self.open_in(&prefix, flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    match mkdirat(Some(current.as_raw_fd()), name, mode) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(errno) => {
                            return Err(RuntimeError::Sys {
                                context: format!("mkdir {}", self.display(&prefix)),
                                errno,
                            })
                        }
                    }
                    self.open_in(&prefix, flags, Mode::empty())
                        .ctx(|| format!("open {} after mkdir", self.display(&prefix)))?
                }
                Err(errno) => {
                    return Err(RuntimeError::Sys {
                        context: format!("open directory {}", self.display(&prefix)),
                        errno,
                    })
                }
            };
        }
        Ok(current)
    }

    /// Create `path` as an empty regular file if it does not exist (parents
    /// included) and return an `O_PATH` descriptor of whatever is there.
    pub fn create_file(&self, path: &Path, mode: Mode) -> Result<OwnedFd, RuntimeError> {
        if let Some(parent) = path.parent() {
            self.mkdir_all(parent, Mode::from_bits_truncate(0o755))?;
        }
        match self.open_in(path, OFlag::O_PATH, Mode::empty()) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(errno) => {
                return Err(RuntimeError::Sys {
                    context: format!("open {}", self.display(path)),
                    errno,
                })
            }
        }
        drop(
            self.open_in(path, OFlag::O_CREAT | OFlag::O_RDONLY, mode)
                .ctx(|| format!("create {}", self.display(path)))?,
        );
        self.resolve(path)
    }
}

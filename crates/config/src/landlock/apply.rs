//! Enforcing a [`PreparedLandlock`] on the calling thread: create the
//! ruleset, add one rule per path and port, `landlock_restrict_self`. Runs
//! in the container's init child right before `execve`, so it logs nothing
//! and returns its warnings instead.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;

use super::{PreparedLandlock, FILE_RIGHTS};
use crate::error::LandlockError;
use crate::landlock_sys as sys;

impl PreparedLandlock {
    /// Enforce the ruleset on the calling thread and its future children.
    ///
    /// Call it after `pivot_root` (paths resolve inside the container root)
    /// and while still privileged, or after `PR_SET_NO_NEW_PRIVS` (the
    /// caller's job: this function does not set it). Each path is opened
    /// `O_PATH|O_CLOEXEC`; a missing path is skipped with a warning, any
    /// other error fails. A rule on a non-directory keeps only the file
    /// rights (execute, write_file, read_file, truncate, ioctl_dev).
    /// A ruleset that restricts nothing (ABI 0, or nothing left after best
    /// effort) is a no-op with a warning. Returns the warnings.
    pub fn apply(&self) -> Result<Vec<String>, LandlockError> {
        let mut warnings = Vec::new();
        if self.is_noop() {
            let why = if self.abi == 0 {
                "landlock is not supported by this kernel (ABI 0)"
            } else {
                "the policy restricts nothing on this ABI"
            };
            warnings.push(format!("landlock not applied: {why}"));
            warnings.extend(self.dropped.iter().map(|d| format!("landlock dropped: {d}")));
            return Ok(warnings);
        }
        let attr = sys::RulesetAttr {
            handled_access_fs: self.handled_fs,
            handled_access_net: self.handled_net,
            scoped: self.scoped,
        };
        let ruleset = sys::create_ruleset(&attr, sys::ruleset_attr_size(self.abi))
            .map_err(|errno| LandlockError::CreateRuleset { abi: self.abi, errno })?;

        for (path, access) in &self.fs_rules {
            let file = match open_path(path) {
                Ok(file) => file,
                Err(Errno::ENOENT) => {
                    warnings.push(format!("landlock: {} does not exist, rule skipped", path.display()));
                    continue;
                }
                Err(errno) => {
                    return Err(LandlockError::Open {
                        path: path.clone(),
                        errno,
                    })
                }
            };
            let is_dir = file.metadata().map_err(|e| LandlockError::Open {
                path: path.clone(),
                errno: io_errno(&e),
            })?;
            let is_dir = is_dir.is_dir();
            let allowed = if is_dir { *access } else { access & FILE_RIGHTS };
            if allowed == 0 {
                warnings.push(format!(
                    "landlock: {} is not a directory and the rule allows only directory \
                     rights, rule skipped",
                    path.display()
                ));
                continue;
            }
            let attr = sys::PathBeneathAttr {
                allowed_access: allowed,
                parent_fd: file.as_raw_fd(),
            };
            sys::add_path_beneath(ruleset.as_fd(), &attr).map_err(|errno| LandlockError::AddRule {
                what: format!("{} access={allowed:#x}", path.display()),
                errno,
            })?;
        }

        for (port, access) in &self.net_rules {
            let attr = sys::NetPortAttr {
                allowed_access: *access,
                port: u64::from(*port),
            };
            sys::add_net_port(ruleset.as_fd(), &attr).map_err(|errno| LandlockError::AddRule {
                what: format!("tcp port {port} access={access:#x}"),
                errno,
            })?;
        }

        sys::restrict_self(ruleset.as_fd()).map_err(|errno| LandlockError::RestrictSelf { errno })?;
        warnings.extend(self.dropped.iter().map(|d| format!("landlock dropped: {d}")));
        Ok(warnings)
    }
}

/// `open(path, O_PATH|O_CLOEXEC)` (std adds O_CLOEXEC; the access mode is
/// ignored by the kernel with O_PATH). Follows symlinks, like the kernel
/// would when the container process opens the path.
fn open_path(path: &Path) -> Result<File, Errno> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(path)
        .map_err(|e| io_errno(&e))
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

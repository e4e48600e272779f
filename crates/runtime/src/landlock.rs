//! Landlock in the container init: the kernel's ABI version
//! ([`abi_version`]) and the enforcement of a [`PreparedLandlock`]
//! ([`apply`]) with the `landlock` crate. The policy itself (rules, access
//! names, ABI negotiation) is data in `zygote_config::landlock`.
//!
//! The negotiation already happened when the ruleset was prepared (best
//! effort drops, `required` fails), so [`apply`] asks the crate for exactly
//! the prepared bits ([`CompatLevel::HardRequirement`]): a kernel that
//! refuses one of them is an error, never a silently weaker sandbox.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use landlock::{
    AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetError, Scope,
};
use nix::errno::Errno;
use zygote_config::landlock::FILE_RIGHTS;
use zygote_config::PreparedLandlock;

/// Enforcing a prepared Landlock ruleset failed.
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    /// The prepared ruleset has a bit the `landlock` crate does not know.
    #[error("landlock: unknown {what} bits {bits:#x}")]
    UnknownBits { what: &'static str, bits: u64 },

    /// Creating the ruleset (ABI `abi`) failed.
    #[error("landlock: create the ruleset (ABI {abi})")]
    CreateRuleset {
        abi: u32,
        #[source]
        source: RulesetError,
    },

    /// A rule's path could not be opened.
    #[error("landlock: open {path} (O_PATH): {errno}", path = path.display())]
    Open { path: PathBuf, errno: Errno },

    /// The kernel refused a rule.
    #[error("landlock: add rule {what}")]
    AddRule {
        what: String,
        #[source]
        source: RulesetError,
    },

    /// `landlock_restrict_self` failed.
    #[error("landlock: restrict self (the caller needs no_new_privs or CAP_SYS_ADMIN)")]
    RestrictSelf {
        #[source]
        source: RulesetError,
    },
}

/// The running kernel's Landlock ABI version, 0 if Landlock is unsupported
/// or disabled. Queried once per process.
pub fn abi_version() -> u32 {
    static ABI: OnceLock<u32> = OnceLock::new();
    *ABI.get_or_init(|| match crate::sys::landlock_abi_version() {
        Ok(v) => v,
        Err(errno) => {
            tracing::debug!(%errno, "landlock is not available");
            0
        }
    })
}

fn unknown(what: &'static str, bits: u64) -> LandlockError {
    LandlockError::UnknownBits { what, bits }
}

/// Enforce `prepared` on the calling thread and its future children.
///
/// Call it after `pivot_root` (paths resolve inside the container root)
/// and while still privileged, or after `PR_SET_NO_NEW_PRIVS` (the
/// caller's job: this function does not set it). Each path is opened
/// `O_PATH|O_CLOEXEC`; a missing path is skipped with a warning, any
/// other error fails. A rule on a non-directory keeps only the file
/// rights (execute, write_file, read_file, truncate, ioctl_dev).
/// A ruleset that restricts nothing (ABI 0, or nothing left after best
/// effort) is a no-op with a warning. Runs in the container's init child
/// right before `execve`, so it logs nothing and returns its warnings.
pub fn apply(prepared: &PreparedLandlock) -> Result<Vec<String>, LandlockError> {
    let mut warnings = Vec::new();
    let dropped = |warnings: &mut Vec<String>| {
        warnings.extend(prepared.dropped.iter().map(|d| format!("landlock dropped: {d}")));
    };
    if prepared.is_noop() {
        let why = if prepared.abi == 0 {
            "landlock is not supported by this kernel (ABI 0)"
        } else {
            "the policy restricts nothing on this ABI"
        };
        warnings.push(format!("landlock not applied: {why}"));
        dropped(&mut warnings);
        return Ok(warnings);
    }
    let abi = prepared.abi;
    let create = |source| LandlockError::CreateRuleset { abi, source };
    let handled_fs =
        BitFlags::<AccessFs>::from_bits(prepared.handled_fs).map_err(|_| unknown("filesystem", prepared.handled_fs))?;
    let handled_net =
        BitFlags::<AccessNet>::from_bits(prepared.handled_net).map_err(|_| unknown("network", prepared.handled_net))?;
    let scoped = BitFlags::<Scope>::from_bits(prepared.scoped).map_err(|_| unknown("scope", prepared.scoped))?;

    let mut ruleset = Ruleset::default().set_compatibility(CompatLevel::HardRequirement);
    if !handled_fs.is_empty() {
        ruleset = ruleset.handle_access(handled_fs).map_err(create)?;
    }
    if !handled_net.is_empty() {
        ruleset = ruleset.handle_access(handled_net).map_err(create)?;
    }
    if !scoped.is_empty() {
        ruleset = ruleset.scope(scoped).map_err(create)?;
    }
    let mut ruleset = ruleset.create().map_err(create)?.no_new_privs(false);

    for (path, access) in &prepared.fs_rules {
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
        let is_dir = file
            .metadata()
            .map_err(|e| LandlockError::Open {
                path: path.clone(),
                errno: io_errno(&e),
            })?
            .is_dir();
        let allowed = if is_dir { *access } else { access & FILE_RIGHTS };
        if allowed == 0 {
            warnings.push(format!(
                "landlock: {} is not a directory and the rule allows only directory rights, rule skipped",
                path.display()
            ));
            continue;
        }
        let rights = BitFlags::<AccessFs>::from_bits(allowed).map_err(|_| unknown("filesystem", allowed))?;
        ruleset = ruleset
            .add_rule(PathBeneath::new(file, rights))
            .map_err(|source| LandlockError::AddRule {
                what: format!("{} access={allowed:#x}", path.display()),
                source,
            })?;
    }

    for (port, access) in &prepared.net_rules {
        let rights = BitFlags::<AccessNet>::from_bits(*access).map_err(|_| unknown("network", *access))?;
        ruleset = ruleset
            .add_rule(NetPort::new(*port, rights))
            .map_err(|source| LandlockError::AddRule {
                what: format!("tcp port {port} access={access:#x}"),
                source,
            })?;
    }

    ruleset
        .restrict_self()
        .map_err(|source| LandlockError::RestrictSelf { source })?;
    dropped(&mut warnings);
    Ok(warnings)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_version_is_cached_and_matches_the_kernel() {
        let abi = abi_version();
        assert_eq!(abi, crate::sys::landlock_abi_version().unwrap());
        assert!(abi >= 1, "this machine has Landlock enabled");
        assert_eq!(abi_version(), abi);
    }

    /// A policy with `compatibility = "required"` that uses every feature
    /// loads against the running kernel's ABI (ABI >= 6 on the machines
    /// zygote is tested on).
    #[test]
    fn required_policy_with_every_feature_loads_on_this_kernel() {
        let all = "[profiles.x.landlock]\ncompatibility = \"required\"\n\
                   fs = [{ path = \"/\", access = [\"all\", \"refer\", \"ioctl_dev\"] }]\n\
                   net_bind = []\nnet_connect = [443]\nscope = [\"signal\", \"abstract_unix_socket\"]\n";
        zygote_config::Config::from_toml(all, None, abi_version()).unwrap();
        let example = include_str!("../../config/config.example.toml");
        let config = zygote_config::Config::from_toml(example, None, abi_version()).unwrap();
        for profile in config.profiles.values() {
            if let Some(policy) = &profile.landlock {
                policy.prepare(abi_version()).unwrap();
            }
        }
    }
}

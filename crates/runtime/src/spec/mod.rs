//! Loading and validating the bundle's `config.json`.
//!
//! This module owns everything between "here is a bundle directory" and "here
//! is a spec the rest of the runtime may trust": reading `config.json`,
//! deserialising it with `oci-spec`, and checking the semantic rules the
//! runtime relies on later (a process to run, a root, consistent namespaces,
//! absolute paths where the OCI runtime spec demands them, namespaced
//! sysctls, ...). It does not touch the system: every check is pure and is
//! done before anything is created, so a bad spec fails `create` early with an
//! error naming the offending field.

mod validate;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

pub use validate::validate;

/// Name of the runtime configuration file inside a bundle.
pub const CONFIG_FILE: &str = "config.json";

/// Errors from loading or validating a bundle's `config.json`.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// `config.json` could not be opened or read.
    #[error("read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is not valid JSON or does not match the OCI schema; the
    /// serde message carries the line and column.
    #[error("parse {path}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A field the runtime needs is absent.
    #[error("config.json: {field} is required")]
    Missing { field: String },
    /// A field is present but its value breaks a rule.
    #[error("config.json: {field} {reason}")]
    Invalid { field: String, reason: String },
}

impl SpecError {
    pub(crate) fn missing(field: impl Into<String>) -> Self {
        SpecError::Missing { field: field.into() }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Reads `<bundle>/config.json`, deserialises it and runs [`validate`].
pub fn load(bundle: &Path) -> Result<Spec, SpecError> {
    let path = bundle.join(CONFIG_FILE);
    let file = File::open(&path).map_err(|source| SpecError::Read {
        path: path.clone(),
        source,
    })?;
    let spec: Spec = serde_json::from_reader(BufReader::new(file)).map_err(|source| {
        // serde_json reports I/O failures through the same error type.
        if source.is_io() {
            SpecError::Read {
                path: path.clone(),
                source: source.into(),
            }
        } else {
            SpecError::Parse {
                path: path.clone(),
                source,
            }
        }
    })?;
    validate(&spec)?;
    tracing::debug!(bundle = %bundle.display(), "loaded and validated config.json");
    Ok(spec)
}

/// True when the container gets a new pid namespace of its own (not the
/// host's, not one joined by path): killing its init then kills all of it.
pub fn private_pid_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid && n.path().is_none())
        })
}

/// Returns the container's root filesystem directory: `root.path` taken
/// relative to the bundle unless it is absolute.
///
/// A spec without `root` (rejected by [`validate`]) resolves to
/// `<bundle>/rootfs`, the conventional location containerd uses.
pub fn resolve_rootfs(bundle: &Path, spec: &Spec) -> PathBuf {
    match spec.root() {
        Some(root) if root.path().is_absolute() => root.path().clone(),
        Some(root) => bundle.join(root.path()),
        None => bundle.join("rootfs"),
    }
}

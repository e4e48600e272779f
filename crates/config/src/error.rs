//! Error types of the config crate: [`PolicyError`] for loading the config,
//! picking a profile and decoding runtime options ([`OptionsProblem`]).

use std::path::PathBuf;

use crate::field::{At, BadProfileName, Field, Invalid, Location};
pub use crate::options::DecodeError;

/// Loading or validating the config, selecting a profile, or decoding the
/// runtime options of a Create request. Every message names where the
/// problem is (file, profile, field, annotation or options origin).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A config path given explicitly or through `$ZYGOTE_CONFIG` does not exist.
    #[error("{path}: config file not found (given by {origin})", path = path.display())]
    NotFound { path: PathBuf, origin: &'static str },

    /// A config file or runtime-options file could not be read.
    #[error("{path}: cannot read", path = path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A config or runtime-options path that is not a regular file.
    #[error("{path}: is {kind}; a regular file is required", path = path.display())]
    NotRegularFile { path: PathBuf, kind: &'static str },

    /// A config or runtime-options file larger than zygote reads.
    #[error("{path}: {size} bytes, more than the {limit} bytes zygote reads", path = path.display())]
    TooLarge { path: PathBuf, size: u64, limit: u64 },

    /// TOML syntax or structure error (unknown field, wrong type, ...),
    /// at `location` (e.g. `line 4, column 1: profile "fast": pool.mni`).
    #[error("{file}: {}: {message}", At(location))]
    Parse {
        file: String,
        location: Option<Location>,
        message: String,
    },

    /// A profile's value failed validation; `invalid.field()` says which.
    #[error("{file}: profile \"{profile}\": {invalid}")]
    InvalidProfile {
        file: String,
        profile: String,
        invalid: Invalid,
    },

    /// A top-level value failed validation (e.g. `default_profile`).
    #[error("{file}: {invalid}")]
    InvalidConfig { file: String, invalid: Invalid },

    /// The `zygote.dev/profile` annotation does not hold a valid profile name.
    #[error("annotation zygote.dev/profile={}: {reason}", crate::quote(value))]
    BadAnnotation { value: String, reason: BadProfileName },

    /// The task asks for a profile the config does not define.
    #[error(
        "{source_of_choice} selects profile {}, which is not configured (known profiles: {})",
        crate::quote(name),
        known.join(", ")
    )]
    UnknownProfile {
        name: String,
        /// `"annotation zygote.dev/profile"` or `"runtime options"`.
        source_of_choice: &'static str,
        known: Vec<String>,
    },

    /// The runtime options of a Create request are malformed.
    /// `origin` says which part: the protobuf message, `config_body`, or
    /// `config_path <path>`.
    #[error("runtime options ({origin}): {problem}")]
    Options { origin: String, problem: OptionsProblem },
}

impl PolicyError {
    /// The profile and field a config error is about, when it is one.
    pub fn field(&self) -> Option<(Option<&str>, Field)> {
        match self {
            PolicyError::InvalidProfile { profile, invalid, .. } => Some((Some(profile), invalid.field())),
            PolicyError::InvalidConfig { invalid, .. } => Some((None, invalid.field())),
            _ => None,
        }
    }
}

/// What is wrong with a Create request's runtime options.
#[derive(Debug, thiserror::Error)]
pub enum OptionsProblem {
    /// The protobuf message is malformed.
    #[error("{0}")]
    Decode(DecodeError),
    #[error("not valid UTF-8")]
    NotUtf8,
    /// The TOML it carries is malformed.
    #[error("{}: {message}", At(location))]
    Toml {
        location: Option<Location>,
        message: String,
    },
    #[error("profile: {} is {BadProfileName}", crate::quote(.0))]
    ProfileName(String),
}

//! zygote-policy: what a task is allowed and how it is served, decided before
//! the container exists.
//!
//! This crate owns the config file and its profiles (`config`), the profile
//! named by a Create request's runtime options (`options`), and Landlock
//! (`landlock`: policy, ABI negotiation and enforcement; its system calls,
//! the crate's only `unsafe` code, live in `landlock_sys`). It forks
//! nothing; `PreparedLandlock::apply` is meant to run in the container's
//! init child.

pub mod config;
pub mod error;
pub mod landlock;
mod landlock_sys;
pub mod options;

pub use config::{
    Config, Mode, NsKind, Placement, PoolBounds, Profile, ResourceDefaults, SeccompMode, SeccompPolicy, WasmNode,
    BUILTIN_PROFILE, CONFIG_ENV, DEFAULT_CONFIG_PATH, PROFILE_ANNOTATION,
};
pub use error::{LandlockError, PolicyError};
pub use landlock::{abi_version, Compatibility, FsRule, LandlockPolicy, PreparedLandlock};
pub use options::profile_from_options;

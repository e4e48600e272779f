//! zygote-config: what a task is allowed and how it is served, decided before
//! the container exists.
//!
//! This crate owns the config file and its profiles (`config`; errors name
//! the file, profile and [`Field`]), the profile named by a Create request's
//! runtime options (`options`), and the Landlock policy as data (`landlock`:
//! rules and ABI negotiation). It makes no Landlock system call: the kernel's
//! ABI is an argument, and the enforcement lives with the rest of the
//! container-init security in `zygote_runtime::landlock`.

pub mod config;
pub mod error;
pub mod field;
pub mod landlock;
pub mod options;
pub mod read;

pub use config::{
    BadNamespace, Config, MetricsNode, Mode, NsKind, Placement, PoolBounds, PoolHealth, PoolPolicy, PoolPressure,
    Profile, ResourceDefaults, SeccompMode, SeccompPolicy, WasmNode, BUILTIN_PROFILE, CONFIG_ENV, DEFAULT_CONFIG_PATH,
    PROFILE_ANNOTATION,
};
pub use error::{OptionsProblem, PolicyError};
pub use field::{BadProfileName, Field, Invalid, Location};
pub use landlock::{Compatibility, FsRule, LandlockPolicy, PreparedLandlock};
pub use options::profile_from_options;

/// How much of an outside value an error message quotes.
pub const QUOTE_LIMIT: usize = 64;

/// `value` quoted for an error message: whole when short, else its first
/// [`QUOTE_LIMIT`] bytes and its length, so a 64 KiB annotation never makes
/// a 64 KiB error (or log line).
pub fn quote(value: &str) -> String {
    if value.len() <= QUOTE_LIMIT {
        return format!("{value:?}");
    }
    let mut end = QUOTE_LIMIT;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} bytes)", &value[..end], value.len())
}

#[cfg(test)]
mod quote_tests {
    #[test]
    fn long_values_are_cut() {
        assert_eq!(super::quote("fast"), "\"fast\"");
        let long = "é".repeat(40_000);
        let q = super::quote(&long);
        assert!(q.len() < 200, "{q}");
        assert!(q.ends_with("... (80000 bytes)"), "{q}");
    }
}

//! Semantic checks of a parsed profile (ranges, cross-field rules, landlock
//! and seccomp sections) and of profile names.
//! Each error message starts with the field it is about.

use std::collections::BTreeSet;

use super::types::{PoolBounds, Profile};
use crate::landlock::Compatibility;

/// `[a-z0-9][a-z0-9_-]{0,62}`.
/// Checks a profile name; the error says what is wrong without repeating
/// the name (callers quote it, cut: see [`crate::quote`]).
pub(crate) fn profile_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !name.starts_with(['_', '-']);
    if ok {
        Ok(())
    } else {
        Err("not a valid profile name (it must match [a-z0-9][a-z0-9_-]{0,62})".to_string())
    }
}

/// Validate a profile; `abi` is the running kernel's Landlock ABI.
pub(crate) fn profile(p: &Profile, abi: u32) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for ns in &p.namespaces {
        if !seen.insert(*ns) {
            return Err(format!("namespaces: \"{}\" is listed twice", ns.name()));
        }
    }
    pool(&p.pool)?;

    let r = &p.resources;
    if let Some(v) = r.memory_limit_bytes.filter(|v| *v <= 0) {
        return Err(format!("resources.memory_limit_bytes ({v}) must be > 0"));
    }
    if let Some(v) = r.pids_limit.filter(|v| *v <= 0) {
        return Err(format!("resources.pids_limit ({v}) must be > 0"));
    }
    if let Some(v) = r.cpu_shares.filter(|v| !(2..=262_144).contains(v)) {
        return Err(format!("resources.cpu_shares ({v}) must be in 2..=262144"));
    }

    if let Some(landlock) = &p.landlock {
        landlock.validate().map_err(|m| format!("landlock.{m}"))?;
        if landlock.compatibility == Compatibility::Required {
            landlock
                .prepare(abi)
                .map_err(|m| format!("landlock.compatibility: \"required\", but {m}"))?;
        }
    }

    if let Some(seccomp) = &p.seccomp {
        for (i, sc) in seccomp.filter.syscalls().iter().flatten().enumerate() {
            if sc.names().is_empty() {
                return Err(format!("seccomp.filter.syscalls[{i}].names: empty"));
            }
            if let Some(j) = sc.names().iter().position(|n| n.trim().is_empty()) {
                return Err(format!("seccomp.filter.syscalls[{i}].names[{j}]: empty name"));
            }
        }
    }
    Ok(())
}

fn pool(b: &PoolBounds) -> Result<(), String> {
    if b.max > PoolBounds::LIMIT {
        return Err(format!("pool.max ({}) is larger than {}", b.max, PoolBounds::LIMIT));
    }
    if b.initial > b.max {
        return Err(format!(
            "pool.initial ({}) is larger than pool.max ({})",
            b.initial, b.max
        ));
    }
    if b.min > b.initial {
        return Err(format!(
            "pool.min ({}) is larger than pool.initial ({})",
            b.min, b.initial
        ));
    }
    if b.max_age.is_zero() {
        return Err("pool.max_age_secs (0) must be > 0".to_string());
    }
    Ok(())
}

/// The `[wasm]` table.
pub(crate) fn wasm(w: &super::types::WasmNode) -> Result<(), String> {
    if !w.cache_dir.is_absolute() {
        return Err(format!("wasm.cache_dir: {:?} is not an absolute path", w.cache_dir));
    }
    if w.cache_max_mb == 0 {
        return Err("wasm.cache_max_mb: must be at least 1".into());
    }
    Ok(())
}

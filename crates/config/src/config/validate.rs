//! Semantic checks of a parsed profile (ranges, cross-field rules, landlock
//! and seccomp sections), of the top-level `[wasm]` table and of profile
//! names. Each failure is an [`Invalid`] naming its [`crate::Field`].

use std::collections::BTreeSet;

use super::types::{MetricsNode, PoolBounds, Profile, WasmNode};
use crate::field::{BadProfileName, Field, Invalid};
use crate::landlock::Compatibility;

/// Checks a profile name against `[a-z0-9][a-z0-9_-]{0,62}`; the error
/// does not repeat the name (callers quote it, cut: see [`crate::quote`]).
pub(crate) fn profile_name(name: &str) -> Result<(), BadProfileName> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !name.starts_with(['_', '-']);
    if ok {
        Ok(())
    } else {
        Err(BadProfileName)
    }
}

/// Validate a profile; `abi` is the running kernel's Landlock ABI.
pub(crate) fn profile(p: &Profile, abi: u32) -> Result<(), Invalid> {
    let mut seen = BTreeSet::new();
    for ns in &p.namespaces {
        if !seen.insert(*ns) {
            return Err(Invalid::DuplicateNamespace(*ns));
        }
    }
    pool(&p.pool)?;

    let r = &p.resources;
    for (field, value) in [
        (Field::ResourcesMemoryLimitBytes, r.memory_limit_bytes),
        (Field::ResourcesPidsLimit, r.pids_limit),
    ] {
        if let Some(value) = value.filter(|v| *v <= 0) {
            return Err(Invalid::NotPositive { field, value });
        }
    }
    if let Some(v) = r.cpu_shares.filter(|v| !(2..=262_144).contains(v)) {
        return Err(Invalid::CpuSharesRange(v));
    }

    if let Some(landlock) = &p.landlock {
        landlock.validate().map_err(Invalid::Landlock)?;
        if landlock.compatibility == Compatibility::Required {
            landlock.prepare(abi).map_err(Invalid::LandlockRequired)?;
        }
    }

    if let Some(seccomp) = &p.seccomp {
        for (rule, sc) in seccomp.filter.syscalls().iter().flatten().enumerate() {
            if sc.names().is_empty() {
                return Err(Invalid::SeccompNoNames { rule });
            }
            if let Some(name) = sc.names().iter().position(|n| n.trim().is_empty()) {
                return Err(Invalid::SeccompEmptyName { rule, name });
            }
        }
    }
    Ok(())
}

fn pool(b: &PoolBounds) -> Result<(), Invalid> {
    if b.max > PoolBounds::LIMIT {
        return Err(Invalid::PoolMaxOverLimit(b.max));
    }
    if b.initial > b.max {
        return Err(Invalid::PoolInitialOverMax {
            initial: b.initial,
            max: b.max,
        });
    }
    if b.min > b.initial {
        return Err(Invalid::PoolMinOverInitial {
            min: b.min,
            initial: b.initial,
        });
    }
    if b.max_age.is_zero() {
        return Err(Invalid::PoolMaxAgeZero);
    }
    let check = |key: &'static str, v: f64, ok: bool, want: &'static str| {
        if v.is_finite() && ok {
            Ok(())
        } else {
            Err(Invalid::PoolSizing {
                key,
                value: v.to_string(),
                want,
            })
        }
    };
    let h = b.horizon_secs;
    check("pool.horizon_secs", h, h > 0.0 && h <= 3600.0, "in (0, 3600]")?;
    check("pool.scale_up_at", b.scale_up_at, b.scale_up_at > 0.0, "> 0")?;
    check("pool.scale_up_to", b.scale_up_to, b.scale_up_to >= 1.0, ">= 1")?;
    let down = b.scale_down_at;
    check(
        "pool.scale_down_at",
        down,
        down > 0.0 && down < b.scale_up_at,
        "> 0 and below pool.scale_up_at",
    )?;
    check("pool.scale_down_to", b.scale_down_to, b.scale_down_to >= 1.0, ">= 1")?;
    let cpu = b.cpu_pressure_threshold;
    check(
        "pool.cpu_pressure_threshold",
        cpu,
        cpu > 0.0 && cpu <= 100.0,
        "a percentage in (0, 100]",
    )?;
    if b.max_births_per_sec == 0 {
        return Err(Invalid::PoolBirthsPerSecZero);
    }
    b.pressure.validate()?;
    b.health.validate()?;
    b.placement.validate()?;
    super::placement::validate_prefetch(&b.prefetch)
}

/// The `[wasm]` table.
/// `[metrics] listen`: an `ip:port` with a non-zero port (whether enabled
/// or not: a disabled section must still be right when switched on).
pub(crate) fn metrics(m: &MetricsNode) -> Result<(), Invalid> {
    match m.listen.parse::<std::net::SocketAddr>() {
        Ok(a) if a.port() != 0 => Ok(()),
        Ok(_) => Err(Invalid::MetricsPortZero(m.listen.clone())),
        Err(_) => Err(Invalid::MetricsListen(m.listen.clone())),
    }
}

pub(crate) fn wasm(w: &WasmNode) -> Result<(), Invalid> {
    if !w.cache_dir.is_absolute() {
        return Err(Invalid::WasmCacheDirRelative(w.cache_dir.clone()));
    }
    if w.cache_max_mb == 0 {
        return Err(Invalid::WasmCacheMaxMbZero);
    }
    Ok(())
}

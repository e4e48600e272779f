//! The human form of the daemon's answers: short header lines and
//! column-aligned tables. (Written here, not with a table crate: a few
//! left-aligned ASCII columns, no borders, no wrapping.) `--json` prints
//! the answers as they are instead (`main.rs`).

use std::fmt::Write as _;

use zygote_contract::ctl::{DaemonStatus, LoadedProfiles, ProfileInfo, ReloadReport};

/// `rows` under `headers`, each column as wide as its widest cell, two
/// spaces apart, no trailing blanks.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let _ = write!(line, "{cell:<w$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

/// `zygotectl status`.
pub(crate) fn status(s: &DaemonStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "daemon   pid {}, version {}, up {}",
        s.pid,
        s.version,
        duration(s.uptime_secs)
    );
    let config = s
        .config
        .as_ref()
        .map_or("built-in default profile".into(), |p| p.display().to_string());
    let _ = writeln!(out, "config   {config}");
    if let Some(e) = &s.config_error {
        let _ = writeln!(out, "         UNUSABLE (every Create fails): {e}");
    }
    let _ = writeln!(out, "tasks    {} ({} running)", s.tasks, s.tasks_running);
    let _ = writeln!(out, "metrics  {}", s.metrics_url.as_deref().unwrap_or("- (not served)"));
    let wasm = match &s.wasm_cache {
        None => "- (not opened yet)".to_string(),
        Some(c) => {
            let n = |k: &str| c[k].as_u64().unwrap_or(0);
            format!(
                "hits {}, compiles {}, recompiled {}, evictions {}, entries {}, {} of {}",
                n("hits"),
                n("compiles"),
                n("recompiled"),
                n("evictions"),
                n("entries"),
                mib(n("bytes")),
                mib(n("max_bytes"))
            )
        }
    };
    let _ = writeln!(out, "wasm     {wasm}");
    out.push('\n');
    let rows: Vec<Vec<String>> = s
        .pools
        .iter()
        .map(|(name, p)| {
            let fallbacks: Vec<String> = p.fallbacks.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![
                name.clone(),
                p.idle.to_string(),
                p.target.to_string(),
                p.spawning.to_string(),
                p.claims.to_string(),
                list(&fallbacks),
                p.pressure.map_or("-".into(), |x| format!("{x:.2}")),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "PROFILE",
            "IDLE",
            "TARGET",
            "SPAWNING",
            "CLAIMS",
            "FALLBACKS",
            "PRESSURE",
        ],
        &rows,
    ));
    if s.pools.values().any(|p| p.pressure.is_none()) {
        out.push_str("(PRESSURE: pools do not read node pressure (PSI) yet)\n");
    }
    out
}

fn profile_rows(profiles: &[ProfileInfo], default: Option<&str>) -> Vec<Vec<String>> {
    profiles
        .iter()
        .map(|p| {
            let mut security = Vec::new();
            if p.landlock {
                security.push("landlock".to_string());
            }
            if p.seccomp {
                security.push("seccomp".to_string());
            }
            let name = if Some(p.name.as_str()) == default {
                format!("{} (default)", p.name)
            } else {
                p.name.clone()
            };
            vec![
                name,
                p.mode.clone(),
                format!("{}/{}/{}", p.pool_min, p.pool_initial, p.pool_max),
                format!("{}s", p.max_age_secs),
                p.namespaces.join(","),
                list(&security),
            ]
        })
        .collect()
}

/// `zygotectl profiles` (and the profiles of a checked file).
pub(crate) fn profiles(l: &LoadedProfiles) -> String {
    let mut out = String::new();
    let config = l.config.as_ref().map_or("built-in".into(), |p| p.display().to_string());
    let _ = writeln!(out, "config {config}");
    if let Some(e) = &l.error {
        let _ = writeln!(out, "UNUSABLE (every Create fails): {e}");
        return out;
    }
    out.push('\n');
    out.push_str(&table(
        &[
            "PROFILE",
            "MODE",
            "POOL MIN/INITIAL/MAX",
            "MAX AGE",
            "NAMESPACES",
            "SECURITY",
        ],
        &profile_rows(&l.profiles, l.default_profile.as_deref()),
    ));
    out
}

/// `zygotectl reload`.
pub(crate) fn reload(r: &ReloadReport) -> String {
    let config = r.config.as_ref().map_or("built-in".into(), |p| p.display().to_string());
    let mut out = format!(
        "reloaded {config}\n  added:     {}\n  removed:   {}\n  changed:   {}\n  unchanged: {}\n  idle zygotes let go: {}\n",
        list(&r.added),
        list(&r.removed),
        list(&r.changed),
        list(&r.unchanged),
        r.zygotes_drained
    );
    for n in &r.not_applied {
        let _ = writeln!(out, "  not applied: {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let t = table(
            &["A", "LONGER"],
            &[vec!["wide cell".into(), "x".into()], vec!["b".into(), "".into()]],
        );
        assert_eq!(t, "A          LONGER\nwide cell  x\nb\n");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(5), "5s");
        assert_eq!(duration(125), "2m05s");
        assert_eq!(duration(7322), "2h02m");
        assert_eq!(duration(90000), "1d01h");
    }
}

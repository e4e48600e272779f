//! Reading the config file's text into a validated [`Config`]: the file's
//! top-level layout, and error messages that carry the file, line, column,
//! profile and field of a TOML error.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::types::{MetricsNode, Mode, NsKind, PoolBounds, Profile, ResourceDefaults, SeccompPolicy, WasmNode};
use super::{validate, Config, BUILTIN_PROFILE};
use crate::error::PolicyError;
use crate::field::{Invalid, Location};
use crate::landlock::LandlockPolicy;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDoc {
    #[serde(default)]
    default_profile: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, RawProfile>,
    #[serde(default)]
    wasm: WasmNode,
    #[serde(default)]
    metrics: MetricsNode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    mode: Mode,
    #[serde(default = "Profile::default_namespaces")]
    namespaces: Vec<NsKind>,
    #[serde(default)]
    pool: PoolBounds,
    #[serde(default)]
    resources: ResourceDefaults,
    #[serde(default)]
    landlock: Option<LandlockPolicy>,
    #[serde(default)]
    seccomp: Option<SeccompPolicy>,
}

/// How a file is named in errors.
pub(crate) fn file_name(source: Option<&Path>) -> String {
    source.map_or_else(|| "<config>".to_string(), |p| p.display().to_string())
}

/// Parse and validate `text`; `abi` is the Landlock ABI that `required`
/// landlock policies are checked against.
pub(crate) fn parse(text: &str, source: Option<&Path>, abi: u32) -> Result<Config, PolicyError> {
    let file = file_name(source);
    let doc: RawDoc = toml::from_str(text).map_err(|e| toml_error(&file, text, &e))?;
    let mut profiles = BTreeMap::new();
    for (name, raw) in doc.profiles {
        let invalid = |invalid: Invalid| PolicyError::InvalidProfile {
            file: file.clone(),
            profile: name.clone(),
            invalid,
        };
        validate::profile_name(&name).map_err(|_| invalid(Invalid::ProfileName(name.clone())))?;
        let profile = Profile {
            name: name.clone(),
            mode: raw.mode,
            namespaces: raw.namespaces,
            pool: raw.pool,
            resources: raw.resources,
            landlock: raw.landlock,
            seccomp: raw.seccomp,
        };
        validate::profile(&profile, abi).map_err(invalid)?;
        profiles.insert(name, profile);
    }
    if !profiles.contains_key(BUILTIN_PROFILE) {
        let builtin = Profile::builtin();
        profiles.insert(builtin.name.clone(), builtin);
    }
    let default_profile = doc.default_profile.unwrap_or_else(|| BUILTIN_PROFILE.to_string());
    if !profiles.contains_key(&default_profile) {
        return Err(PolicyError::InvalidConfig {
            file,
            invalid: Invalid::DefaultProfileUndefined {
                name: default_profile,
                known: profiles.keys().cloned().collect(),
            },
        });
    }
    validate::wasm(&doc.wasm).map_err(|invalid| PolicyError::InvalidConfig {
        file: file.clone(),
        invalid,
    })?;
    validate::metrics(&doc.metrics).map_err(|invalid| PolicyError::InvalidConfig {
        file: file.clone(),
        invalid,
    })?;
    Ok(Config {
        source: source.map(Path::to_path_buf),
        default_profile,
        profiles,
        wasm: doc.wasm,
        metrics: doc.metrics,
    })
}

/// A TOML error with its line and column and, when the position lies inside
/// a profile, that profile and the dotted field path.
pub(crate) fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> PolicyError {
    PolicyError::Parse {
        file: file.to_string(),
        location: toml_location(text, e),
        message: e.message().trim().to_string(),
    }
}

/// Where a TOML error is; `None` when the parser gives no position.
pub(crate) fn toml_location(text: &str, e: &toml::de::Error) -> Option<Location> {
    let span = e.span()?;
    let mut offset = span.start.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    let mut location = Location {
        line,
        column,
        ..Location::default()
    };
    let path = key_path(text, line_start);
    if path.first().map(String::as_str) == Some("profiles") && path.len() >= 2 {
        location.profile = Some(path[1].clone());
        if path.len() > 2 {
            location.key = Some(path[2..].join("."));
        }
    } else if !path.is_empty() {
        location.key = Some(path.join("."));
    }
    Some(location)
}

/// Best-effort key path of the line starting at `line_start`: the last
/// table header at or above it, plus the line's own `key =` if it has one.
fn key_path(text: &str, line_start: usize) -> Vec<String> {
    let line_end = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i);
    let this_line = text[line_start..line_end].trim();
    let header = text[..line_end]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['));
    let mut path = header
        .and_then(|h| {
            let h = h.trim_start_matches('[');
            h.find(']').map(|end| split_keys(&h[..end]))
        })
        .flatten()
        .unwrap_or_default();
    if !this_line.starts_with('[') {
        if let Some(keys) = this_line.split_once('=').and_then(|(k, _)| split_keys(k)) {
            path.extend(keys);
        }
    }
    path
}

/// Split a dotted TOML key (`a."b c".d`); `None` if it does not look like one.
fn split_keys(key: &str) -> Option<Vec<String>> {
    let mut keys = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for c in key.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '.') => keys.push(std::mem::take(&mut cur).trim().to_string()),
            (None, c) if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ' ' => cur.push(c),
            (None, _) => return None,
        }
    }
    keys.push(cur.trim().to_string());
    if quote.is_some() || keys.iter().any(String::is_empty) {
        return None;
    }
    Some(keys)
}

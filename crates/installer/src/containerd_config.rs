//! containerd's config as the installer edits it: the layout
//! ([`Layout::detect`]: config `version` 2 = containerd 1.6/1.7, CRI plugin
//! `io.containerd.grpc.v1.cri`; `version` 3 = containerd 2.x, CRI runtime
//! plugin `io.containerd.cri.v1.runtime`), the handler tables, the marked
//! block the installer appends, and the `imports` entry of the drop-in.
//!
//! Why two strategies: containerd 2.x merges an imported file's plugin
//! tables into the main config, so its handlers go into a drop-in
//! (`conf.d/zygote.toml`, relative to the main file) named in `imports`.
//! containerd 1.6/1.7 replace a plugin's whole table with the imported
//! one (checked with `containerd config dump` of 1.6.20 and 1.7.24: the
//! main file's `runc` runtime disappears), so a drop-in would silently
//! drop the node's CRI settings; there the tables are appended to the main
//! file between two marker comments, which `uninstall` cuts out again
//! exactly. Everything is parsed with `toml_edit` (comments and layout of
//! the rest of the file are never rewritten); the only key of the main
//! file the installer edits in place is the `imports` array (2.x).

use std::path::Path;

use toml_edit::{DocumentMut, Item, Value};

use crate::error::{Error, Result};
use crate::handlers::Handler;

pub const RUNTIME_TYPE: &str = "io.containerd.zygote.v1";
pub const POD_ANNOTATIONS: &str = "zygote.dev/*";
/// The drop-in's `imports` entry, relative to the main config's directory
/// (containerd resolves it there; the same entry works under any host root).
pub const DROPIN_IMPORT: &str = "conf.d/zygote.toml";
pub const BEGIN: &str =
    "# >>> zygote-installer: zygote's runtime handlers (removed by `zygote-installer uninstall`; do not edit)\n";
pub const END: &str = "# <<< zygote-installer\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Layout {
    /// `version = 2`: containerd 1.6 / 1.7.
    V2,
    /// `version = 3`: containerd 2.x.
    V3,
}

impl Layout {
    /// Reads `version` of a config (`path` names it in errors).
    pub fn detect(path: &Path, text: &str) -> Result<Layout> {
        let doc = parse(path, text)?;
        match doc.get("version").and_then(Item::as_integer) {
            Some(2) => Ok(Layout::V2),
            Some(3) => Ok(Layout::V3),
            Some(v) => Err(Error::Config {
                path: path.into(),
                key: "version".into(),
                problem: format!("config version {v} is not supported (2: containerd 1.6/1.7, 3: containerd 2.x)"),
            }),
            None if doc.get("version").is_some() => Err(Error::Config {
                path: path.into(),
                key: "version".into(),
                problem: "not an integer".into(),
            }),
            None => Err(Error::Config {
                path: path.into(),
                key: "version".into(),
                problem: "missing: a version 1 config (containerd 1.4 layout) is not supported; \
                          convert it with `containerd config migrate` first"
                    .into(),
            }),
        }
    }

    /// The plugin holding `containerd.runtimes`.
    pub fn plugin(self) -> &'static str {
        match self {
            Layout::V2 => "io.containerd.grpc.v1.cri",
            Layout::V3 => "io.containerd.cri.v1.runtime",
        }
    }

    pub fn number(self) -> i64 {
        match self {
            Layout::V2 => 2,
            Layout::V3 => 3,
        }
    }
}

pub(crate) fn parse(path: &Path, text: &str) -> Result<DocumentMut> {
    text.parse::<DocumentMut>().map_err(|e| Error::Toml {
        path: path.into(),
        message: e.to_string().trim().to_string(),
    })
}

/// The runtime tables of `handlers` under `layout`'s plugin.
pub fn runtime_tables(layout: Layout, handlers: &[Handler]) -> String {
    let mut s = String::new();
    for h in handlers {
        let t = format!("plugins.\"{}\".containerd.runtimes.{}", layout.plugin(), h.name);
        s.push_str(&format!(
            "[{t}]\n  runtime_type = \"{RUNTIME_TYPE}\"\n  runtime_path = \"{}\"\n  pod_annotations = [\"{POD_ANNOTATIONS}\"]\n",
            h.runtime_path
        ));
        if let Some(p) = &h.options_path {
            s.push_str(&format!("[{t}.options]\n  ConfigPath = \"{p}\"\n"));
        }
    }
    s
}

/// The drop-in file of containerd 2.x.
pub fn dropin(handlers: &[Handler]) -> String {
    format!(
        "# Written by zygote-installer: zygote's runtime handlers, imported by the main config.\n\
         # Removed by `zygote-installer uninstall`; do not edit.\nversion = 3\n\n{}",
        runtime_tables(Layout::V3, handlers)
    )
}

/// `text` with the marked block of `tables` appended.
pub fn append_block(text: &str, tables: &str) -> String {
    format!("{text}\n{BEGIN}{tables}{END}")
}

/// `text` without the installer's marked block (exact inverse of
/// [`append_block`]); `None` if it has none.
pub fn strip_block(text: &str) -> Option<String> {
    let start = text.find(&format!("\n{BEGIN}"))?;
    let end = start + text[start..].find(END)? + END.len();
    Some(format!("{}{}", &text[..start], &text[end..]))
}

/// The installer's marked block in `text` (valid TOML on its own).
pub fn block(text: &str) -> Option<&str> {
    let start = text.find(BEGIN)?;
    let end = start + text[start..].find(END)? + END.len();
    Some(&text[start..end])
}

/// Refuses `handlers` whose table the config already has (someone else's:
/// the installer never overwrites a runtime it did not write).
pub fn check_free(path: &Path, text: &str, layout: Layout, handlers: &[Handler]) -> Result<()> {
    let doc = parse(path, text)?;
    let runtimes = doc
        .get("plugins")
        .and_then(|p| p.get(layout.plugin()))
        .and_then(|p| p.get("containerd"))
        .and_then(|c| c.get("runtimes"));
    for h in handlers {
        if runtimes.and_then(|r| r.get(&h.name)).is_some() {
            return Err(Error::Config {
                path: path.into(),
                key: format!("plugins.\"{}\".containerd.runtimes.{}", layout.plugin(), h.name),
                problem: "already defined by someone else; the installer does not overwrite it".into(),
            });
        }
    }
    Ok(())
}

/// `text` with `entry` in its `imports` array (unchanged if there).
pub fn add_import(path: &Path, text: &str, entry: &str) -> Result<String> {
    let mut doc = parse(path, text)?;
    match doc.get_mut("imports") {
        None => {
            let mut a = toml_edit::Array::new();
            a.push(entry);
            doc.insert("imports", Item::Value(Value::Array(a)));
        }
        Some(item) => {
            let a = item.as_array_mut().ok_or_else(|| Error::Config {
                path: path.into(),
                key: "imports".into(),
                problem: "not an array".into(),
            })?;
            if a.iter().any(|v| v.as_str() == Some(entry)) {
                return Ok(text.to_string());
            }
            push_keeping_layout(a, entry);
        }
    }
    Ok(doc.to_string())
}

/// Pushes `entry` on a multi-line array as a line of its own, after the
/// last element's trailing comment (toml_edit keeps that comment in the
/// array's trailing decor, which would otherwise end up after `entry`).
fn push_keeping_layout(a: &mut toml_edit::Array, entry: &str) {
    let trailing = a.trailing().as_str().unwrap_or("").to_string();
    let indent = a
        .get(0)
        .and_then(|v| v.decor().prefix())
        .and_then(|p| p.as_str())
        .and_then(|p| p.rsplit_once('\n').map(|(_, i)| i.to_string()));
    match indent {
        Some(indent) if trailing.contains('\n') => {
            let (before_nl, _) = trailing.rsplit_once('\n').unwrap_or((&trailing, ""));
            let mut v = Value::from(entry);
            v.decor_mut().set_prefix(format!("{before_nl}\n{indent}"));
            a.push_formatted(v);
            a.set_trailing("\n");
            a.set_trailing_comma(true);
        }
        _ => a.push(entry),
    }
}

/// `text` without `entry` in `imports` (unchanged if absent).
pub fn remove_import(path: &Path, text: &str, entry: &str) -> Result<String> {
    let mut doc = parse(path, text)?;
    let Some(a) = doc.get_mut("imports").and_then(Item::as_array_mut) else {
        return Ok(text.to_string());
    };
    let Some(i) = a.iter().position(|v| v.as_str() == Some(entry)) else {
        return Ok(text.to_string());
    };
    // The inverse of `push_keeping_layout`: the last element's line prefix
    // holds the comment of the line before it; give it back to the array.
    let prefix = a
        .get(i)
        .and_then(|v| v.decor().prefix())
        .and_then(|p| p.as_str())
        .map(str::to_string);
    a.remove(i);
    if let Some((comment, _)) = prefix.as_deref().and_then(|p| p.rsplit_once('\n')) {
        if i == a.len() && i > 0 {
            a.set_trailing(format!("{comment}\n"));
        }
    }
    a.retain(|v| v.as_str() != Some(entry));
    Ok(doc.to_string())
}

/// Whether `imports` names `entry`.
pub fn has_import(path: &Path, text: &str, entry: &str) -> Result<bool> {
    let doc = parse(path, text)?;
    Ok(doc
        .get("imports")
        .and_then(Item::as_array)
        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(entry))))
}

/// The names of the runtimes registered in `text` with zygote's runtime type.
pub fn zygote_runtimes(path: &Path, text: &str, layout: Layout) -> Result<Vec<String>> {
    let doc = parse(path, text)?;
    let Some(runtimes) = doc
        .get("plugins")
        .and_then(|p| p.get(layout.plugin()))
        .and_then(|p| p.get("containerd"))
        .and_then(|c| c.get("runtimes"))
        .and_then(Item::as_table_like)
    else {
        return Ok(Vec::new());
    };
    Ok(runtimes
        .iter()
        .filter(|(_, v)| v.get("runtime_type").and_then(Item::as_str) == Some(RUNTIME_TYPE))
        .map(|(k, _)| k.to_string())
        .collect())
}

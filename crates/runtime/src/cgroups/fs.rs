//! cgroupfs file helpers: every error names the file (and the value for
//! writes).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::Path;

use super::CgroupError;

/// Writes `value` to an existing cgroup control file in a single write(2),
/// like `echo value > file`. The file is not created if missing.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    let err = |source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let mut f = OpenOptions::new().write(true).truncate(true).open(path).map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)?;
    tracing::trace!(file = %path.display(), value, "cgroup write");
    Ok(())
}

pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Like [`read`], but a missing file is `Ok(None)`.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn parse_err(path: &Path, reason: impl Into<String>) -> CgroupError {
    CgroupError::Parse {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Parses a single unsigned number (surrounding whitespace ignored).
pub(crate) fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    let t = text.trim();
    t.parse()
        .map_err(|_| parse_err(path, format!("{t:?} is not an unsigned integer")))
}

/// Parses a number or `max` (returned as `None`).
pub(crate) fn parse_u64_or_max(path: &Path, text: &str) -> Result<Option<u64>, CgroupError> {
    match text.trim() {
        "max" => Ok(None),
        _ => parse_u64(path, text).map(Some),
    }
}

pub(crate) fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    parse_u64(path, &read(path)?)
}

/// Reads a number that may be missing (controller absent): `Ok(None)`.
pub(crate) fn read_u64_opt(path: &Path) -> Result<Option<u64>, CgroupError> {
    read_opt(path)?.map(|t| parse_u64(path, &t)).transpose()
}

/// Parses "key value" lines (`memory.stat`, `cpu.stat`, `memory.events`,
/// `memory.oom_control`). Lines whose value is not a number are skipped.
pub(crate) fn parse_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// Reads one field of a keyed file; a missing field is a parse error.
pub(crate) fn read_keyed_field(path: &Path, key: &str) -> Result<u64, CgroupError> {
    parse_keyed(&read(path)?)
        .get(key)
        .copied()
        .ok_or_else(|| parse_err(path, format!("field {key} is missing")))
}

/// Parses `cgroup.procs`: one pid per line.
pub(crate) fn parse_pids(path: &Path, text: &str) -> Result<Vec<i32>, CgroupError> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.parse().map_err(|_| parse_err(path, format!("{l:?} is not a pid"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_and_numbers() {
        let m = parse_keyed("cache 10\nrss 20\nbogus\nname notanumber\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m["rss"], 20);
        let p = Path::new("/x");
        assert_eq!(parse_u64(p, " 42\n").unwrap(), 42);
        assert!(parse_u64(p, "-1").is_err());
        assert_eq!(parse_u64_or_max(p, "max\n").unwrap(), None);
        assert_eq!(parse_pids(p, "1\n22\n\n").unwrap(), vec![1, 22]);
        let e = parse_pids(p, "1\nx\n").unwrap_err().to_string();
        assert_eq!(e, "parse /x: \"x\" is not a pid");
    }

    #[test]
    fn write_does_not_create_and_names_file_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("memory.max");
        let err = crate::error::chain(&write(&f, "100").unwrap_err());
        assert!(err.starts_with(&format!("write \"100\" to {}: ", f.display())), "{err}");
        assert!(!f.exists());
        std::fs::write(&f, "old-longer-value").unwrap();
        write(&f, "100").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "100");
        assert_eq!(
            read_keyed_field(&f, "x").unwrap_err().to_string(),
            format!("parse {}: field x is missing", f.display())
        );
    }
}

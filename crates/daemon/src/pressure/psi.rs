//! One PSI file (`/proc/pressure/<resource>` or a cgroup v2
//! `<resource>.pressure`) parsed: its `some` and `full` lines. The format
//! (Documentation/accounting/psi.rst):
//!
//! ```text
//! some avg10=0.00 avg60=0.00 avg300=0.00 total=0
//! full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//! ```
//!
//! Hand-written: it is two lines of `key=value`, no crate is worth it.

use std::path::{Path, PathBuf};

/// Reading or parsing a PSI file went wrong; each names the file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PsiError {
    #[error("{}: cannot read", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: line {line}: {what}", .path.display())]
    Parse { path: PathBuf, line: usize, what: String },
    #[error("{}: no \"some\" line", .path.display())]
    NoSome { path: PathBuf },
}

/// One line: averages in percent, `total` in microseconds stalled.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Line {
    pub(crate) avg10: f64,
    pub(crate) avg60: f64,
    pub(crate) avg300: f64,
    pub(crate) total_us: u64,
}

/// A whole file. `full` is absent from the node's `cpu` file on old
/// kernels (and all zeros on newer ones).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Psi {
    pub(crate) some: Line,
    pub(crate) full: Option<Line>,
}

/// Reads and parses `path`.
pub(crate) fn read(path: &Path) -> Result<Psi, PsiError> {
    let text = std::fs::read_to_string(path).map_err(|source| PsiError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses the text of the file `path`.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Psi, PsiError> {
    let mut some = None;
    let mut full = None;
    for (n, raw) in text.lines().enumerate() {
        let bad = |what: String| PsiError::Parse {
            path: path.to_path_buf(),
            line: n + 1,
            what,
        };
        let mut words = raw.split_whitespace();
        let slot = match words.next() {
            None => continue,
            Some("some") => &mut some,
            Some("full") => &mut full,
            Some(other) => return Err(bad(format!("unknown kind {other:?} (some, full)"))),
        };
        let mut line = Line::default();
        let mut seen = 0;
        for word in words {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| bad(format!("{word:?} is not key=value")))?;
            let avg = |v: &str| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| bad(format!("{key}={v:?} is not a percentage")))
            };
            match key {
                "avg10" => line.avg10 = avg(value)?,
                "avg60" => line.avg60 = avg(value)?,
                "avg300" => line.avg300 = avg(value)?,
                "total" => {
                    line.total_us = value
                        .parse()
                        .map_err(|_| bad(format!("total={value:?} is not a count of microseconds")))?
                }
                // Newer kernels may add fields: ignore them.
                _ => continue,
            }
            seen += 1;
        }
        if seen < 4 {
            return Err(bad("needs avg10, avg60, avg300 and total".to_string()));
        }
        *slot = Some(line);
    }
    let some = some.ok_or_else(|| PsiError::NoSome {
        path: path.to_path_buf(),
    })?;
    Ok(Psi { some, full })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU: &str = "some avg10=7.82 avg60=7.19 avg300=27.79 total=16691739835\n\
                       full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";

    #[test]
    fn parses_some_and_full() {
        let p = parse(Path::new("/proc/pressure/cpu"), CPU).unwrap();
        assert_eq!(p.some.avg10, 7.82);
        assert_eq!(p.some.avg300, 27.79);
        assert_eq!(p.some.total_us, 16_691_739_835);
        assert_eq!(p.full.unwrap().total_us, 0);
        let old = parse(Path::new("cpu"), "some avg10=1.00 avg60=2.00 avg300=3.00 total=4\n").unwrap();
        assert_eq!((old.some.avg60, old.full), (2.0, None));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let path = Path::new("/x/memory.pressure");
        let e = parse(
            path,
            "some avg10=1.00 avg60=2.00 avg300=3.00 total=4\nfull avg10=zz avg60=0 avg300=0 total=0\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/x/memory.pressure: line 2: avg10=\"zz\" is not a percentage"
        );
        let e = parse(path, "half avg10=1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/x/memory.pressure: line 1: unknown kind \"half\" (some, full)"
        );
        let e = parse(path, "some avg10=1.00\n").unwrap_err();
        assert!(
            e.to_string().ends_with("line 1: needs avg10, avg60, avg300 and total"),
            "{e}"
        );
        let e = parse(path, "full avg10=1.00 avg60=2.00 avg300=3.00 total=4\n").unwrap_err();
        assert_eq!(e.to_string(), "/x/memory.pressure: no \"some\" line");
        let e = read(Path::new("/nonexistent/io.pressure")).unwrap_err();
        assert_eq!(e.to_string(), "/nonexistent/io.pressure: cannot read");
    }

    #[test]
    fn reads_the_real_node_files_where_there_are_some() {
        // Every Linux kernel this project supports has PSI compiled in, but
        // it may be off (psi=0); then the files are absent or refuse reads.
        for r in ["cpu", "memory", "io"] {
            let path = Path::new("/proc/pressure").join(r);
            match read(&path) {
                Ok(p) => assert!(p.some.avg10 <= 100.0, "{p:?}"),
                Err(PsiError::Read { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
    }
}

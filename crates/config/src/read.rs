//! Reading the small text files a task or the daemon's config names:
//! bounded in size and never blocking.
//!
//! A path in a Create request (`--runtime-config-path`) is outside input:
//! a FIFO would block the Create forever (and, when written later, let an
//! abandoned Create carry on silently), a device or a huge file would make
//! it slow. Only regular files are read, opened with `O_NONBLOCK` (an open
//! never waits for a FIFO writer), and only up to a limit.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::PolicyError;

/// Largest config or options file read (1 MiB: a config of hundreds of
/// profiles is a few hundred KiB).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads `path` as UTF-8 text: a regular file of at most `limit` bytes.
pub fn small_text_file(path: &Path, limit: u64) -> Result<String, PolicyError> {
    let read_err = |source| PolicyError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let kind = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(PolicyError::NotRegularFile {
            path: path.to_path_buf(),
            kind,
        });
    }
    if meta.len() > limit {
        return Err(PolicyError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit,
        });
    }
    let mut text = String::new();
    // The file may grow between fstat and read: never read past the limit.
    let n = file.take(limit + 1).read_to_string(&mut text).map_err(read_err)?;
    if n as u64 > limit {
        return Err(PolicyError::TooLarge {
            path: path.to_path_buf(),
            size: n as u64,
            limit,
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_fifos_dirs_and_large_files_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let started = std::time::Instant::now();
        let e = small_text_file(&fifo, MAX_FILE_BYTES).unwrap_err().to_string();
        assert!(e.contains("is a FIFO"), "{e}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "must not block on a FIFO"
        );
        let e = small_text_file(dir.path(), MAX_FILE_BYTES).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 2048]).unwrap();
        let e = small_text_file(&big, 1024).unwrap_err().to_string();
        assert!(e.contains("2048 bytes") && e.contains("1024"), "{e}");
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "profile = \"x\"\n").unwrap();
        assert_eq!(small_text_file(&ok, 1024).unwrap(), "profile = \"x\"\n");
        let e = small_text_file(&dir.path().join("missing"), 1024).unwrap_err();
        assert!(matches!(e, PolicyError::Read { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound));
    }
}

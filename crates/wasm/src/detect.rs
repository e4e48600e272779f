//! Is a task's entrypoint a WebAssembly module?
//!
//! `args[0]` is resolved in the rootfs like runc resolves it (as given when
//! it contains a `/`, relative to `process.cwd` when relative; otherwise
//! searched in `PATH` from `process.env`, or the default PATH), but through
//! `openat2(RESOLVE_IN_ROOT)` so no symlink in the image reaches the host.
//! The file's first bytes decide: `\0asm` version 1 is a core module,
//! `\0asm` with the component layer is a component (refused: only WASI
//! preview 1 modules are supported), anything else (ELF, `#!`) stays a
//! normal container. The `.wasm` extension plays no part.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::WasmError;
use crate::sys;

/// PATH used when `process.env` has none (the same as the runtime's).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the first bytes of a file say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A core WebAssembly module (WASI preview 1 programs).
    Module,
    /// A WebAssembly component (WASI preview 2).
    Component,
    /// Anything else: a Linux executable or script.
    Native,
}

/// Classify a file by its header.
pub fn kind_of(header: &[u8]) -> Kind {
    match header {
        [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => Kind::Module,
        [0, b'a', b's', b'm', _, _, 1, 0, ..] => Kind::Component,
        _ => Kind::Native,
    }
}

/// A WebAssembly entrypoint found in a rootfs.
#[derive(Debug)]
pub struct Entrypoint {
    /// The module open for reading.
    pub file: File,
    /// Its path inside the rootfs.
    pub in_rootfs: PathBuf,
}

/// Resolve `args[0]` in `rootfs` and return it when it is a core module;
/// `None` for a native entrypoint or one that does not resolve (the normal
/// path then reports it as runc would).
pub fn entrypoint(rootfs: &Path, arg0: &str, cwd: &str, env: &[String]) -> Result<Option<Entrypoint>, WasmError> {
    let root = File::open(rootfs).map_err(WasmError::io(format!("open rootfs {}", rootfs.display())))?;
    let candidates: Vec<PathBuf> = if arg0.contains('/') {
        vec![Path::new(cwd).join(arg0)]
    } else {
        let path = env
            .iter()
            .find_map(|kv| kv.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        path.split(':')
            .map(|d| Path::new(if d.is_empty() { cwd } else { d }).join(arg0))
            .collect()
    };
    for candidate in candidates {
        let Ok(mut file) = sys::open_in_root(&root, &candidate) else {
            continue;
        };
        let meta = file
            .metadata()
            .map_err(WasmError::io(format!("stat {}", candidate.display())))?;
        if !meta.is_file() {
            continue;
        }
        let mut header = [0u8; 8];
        let n = read_up_to(&mut file, &mut header).map_err(WasmError::io(format!("read {}", candidate.display())))?;
        match kind_of(&header[..n]) {
            Kind::Module => {
                return Ok(Some(Entrypoint {
                    file,
                    in_rootfs: candidate,
                }))
            }
            Kind::Component => {
                return Err(WasmError::Component {
                    path: candidate.display().to_string(),
                })
            }
            // Like a PATH search: a non-executable file is skipped.
            Kind::Native if meta.permissions().mode() & 0o111 == 0 => continue,
            Kind::Native => return Ok(None),
        }
    }
    Ok(None)
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("bin")).unwrap();
        std::fs::write(d.path().join("app.wasm"), b"\0asm\x01\0\0\0rest").unwrap();
        std::fs::write(d.path().join("bin/noext"), b"\0asm\x01\0\0\0").unwrap();
        std::fs::write(d.path().join("bin/comp.wasm"), b"\0asm\x0d\0\x01\0").unwrap();
        std::fs::write(d.path().join("bin/sh"), b"\x7fELF\x02\x01\x01\0").unwrap();
        std::fs::set_permissions(d.path().join("bin/sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(d.path().join("fake.wasm"), b"#!/bin/sh\necho hi\n").unwrap();
        std::os::unix::fs::symlink("/../../../etc/hostname", d.path().join("escape.wasm")).unwrap();
        d
    }

    #[test]
    fn header_decides_not_extension() {
        assert_eq!(kind_of(b"\0asm\x01\0\0\0"), Kind::Module);
        assert_eq!(kind_of(b"\0asm\x0d\0\x01\0"), Kind::Component);
        assert_eq!(kind_of(b"\x7fELF"), Kind::Native);
        assert_eq!(kind_of(b"#!/bin/sh"), Kind::Native);
        assert_eq!(kind_of(b"\0as"), Kind::Native);
        let d = rootfs();
        let found = entrypoint(d.path(), "/app.wasm", "/", &[]).unwrap().unwrap();
        assert_eq!(found.in_rootfs, Path::new("/app.wasm"));
        let found = entrypoint(d.path(), "noext", "/", &["PATH=/bin".into()])
            .unwrap()
            .unwrap();
        assert_eq!(found.in_rootfs, Path::new("/bin/noext"));
        assert!(entrypoint(d.path(), "/fake.wasm", "/", &[]).unwrap().is_none());
        assert!(entrypoint(d.path(), "sh", "/", &[]).unwrap().is_none());
        assert!(entrypoint(d.path(), "missing", "/", &[]).unwrap().is_none());
        let e = entrypoint(d.path(), "/bin/comp.wasm", "/", &[]).unwrap_err();
        assert!(e.to_string().contains("component"), "{e}");
    }

    #[test]
    fn relative_args_use_cwd_and_symlinks_stay_inside() {
        let d = rootfs();
        let found = entrypoint(d.path(), "./noext", "/bin", &[]).unwrap().unwrap();
        assert_eq!(found.in_rootfs, Path::new("/bin/noext"));
        // The symlink resolves to <rootfs>/etc/hostname, which does not exist.
        assert!(entrypoint(d.path(), "/escape.wasm", "/", &[]).unwrap().is_none());
    }

    #[test]
    fn io_errors_print_their_cause_once() {
        let e = entrypoint(Path::new("/nonexistent/rootfs"), "/app.wasm", "/", &[]).unwrap_err();
        assert_eq!(
            zygote_runtime::error::chain(&e),
            "open rootfs /nonexistent/rootfs: No such file or directory (os error 2)"
        );
    }
}

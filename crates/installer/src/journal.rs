//! Every change the installer makes to the host, made atomically and
//! remembered so that a failed install can be undone byte for byte.
//!
//! A file is written as a temp file in its own directory, fsynced, then
//! renamed over the old one (a running shim keeps executing its old
//! inode; a reader never sees half a file). A file whose content is
//! already the wanted one is not touched (install twice = once, same
//! inodes). [`Journal::rollback`] restores what each path held before
//! (content and mode) or removes it, and removes the directories it made.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{io, Result};

/// What a path held before the journal first changed it.
#[derive(Debug)]
struct Before {
    path: PathBuf,
    content: Option<(Vec<u8>, u32)>,
}

#[derive(Debug, Default)]
pub struct Journal {
    before: Vec<Before>,
    made_dirs: Vec<PathBuf>,
    links: Vec<PathBuf>,
}

/// Writes `bytes` to `path` atomically (temp file + fsync + rename + fsync
/// of the directory) with permission bits `mode`.
pub fn atomic_write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.zygote-installer.tmp"));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io(&tmp))?;
    let written = f
        .write_all(bytes)
        .and_then(|_| f.set_permissions(fs::Permissions::from_mode(mode)))
        .and_then(|_| f.sync_all());
    drop(f);
    if let Err(e) = written.and_then(|_| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(io(path)(e));
    }
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// The content and mode of `path`, `None` if it does not exist.
pub fn read_opt(path: &Path) -> Result<Option<(Vec<u8>, u32)>> {
    match fs::read(path) {
        Ok(b) => {
            let mode = fs::metadata(path).map_err(io(path))?.permissions().mode() & 0o7777;
            Ok(Some((b, mode)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

impl Journal {
    /// Makes `dir` and its missing parents, remembering the ones it made.
    pub fn mkdirs(&mut self, dir: &Path) -> Result<()> {
        let mut missing = Vec::new();
        let mut d = Some(dir);
        while let Some(p) = d {
            if p.exists() {
                break;
            }
            missing.push(p.to_path_buf());
            d = p.parent();
        }
        for p in missing.into_iter().rev() {
            fs::create_dir(&p).map_err(io(&p))?;
            self.made_dirs.push(p);
        }
        Ok(())
    }

    /// Files this journal created (they did not exist before).
    pub fn made_files(&self) -> Vec<PathBuf> {
        self.before
            .iter()
            .filter(|b| b.content.is_none() && b.path.exists())
            .map(|b| b.path.clone())
            .chain(self.links.iter().cloned())
            .collect()
    }

    /// Directories this journal made, outermost first.
    pub fn made_dirs(&self) -> &[PathBuf] {
        &self.made_dirs
    }

    fn remember(&mut self, path: &Path) -> Result<Option<(Vec<u8>, u32)>> {
        let old = read_opt(path)?;
        if !self.before.iter().any(|b| b.path == path) {
            self.before.push(Before {
                path: path.to_path_buf(),
                content: old.clone(),
            });
        }
        Ok(old)
    }

    /// Writes `bytes` to `path` unless it already holds exactly that.
    /// Returns whether it wrote.
    pub fn write(&mut self, path: &Path, bytes: &[u8], mode: u32) -> Result<bool> {
        if let Some(parent) = path.parent() {
            self.mkdirs(parent)?;
        }
        let old = self.remember(path)?;
        if old.as_ref().is_some_and(|(b, m)| b == bytes && *m == mode) {
            return Ok(false);
        }
        tracing::info!(path = %path.display(), bytes = bytes.len(), "writing");
        atomic_write(path, bytes, mode)?;
        Ok(true)
    }

    /// Makes `path` a symlink to `target` unless something is there:
    /// another file of that name is never replaced. Returns whether the
    /// link is (now) ours.
    pub fn symlink(&mut self, path: &Path, target: &Path) -> Result<bool> {
        if let Ok(t) = fs::read_link(path) {
            return Ok(t == target);
        }
        if fs::symlink_metadata(path).is_ok() {
            tracing::warn!(path = %path.display(), "exists and is not our symlink; left alone");
            return Ok(false);
        }
        if let Some(parent) = path.parent() {
            self.mkdirs(parent)?;
        }
        std::os::unix::fs::symlink(target, path).map_err(io(path))?;
        tracing::info!(path = %path.display(), target = %target.display(), "symlink made");
        self.links.push(path.to_path_buf());
        Ok(true)
    }

    /// Removes `path` if it exists.
    pub fn remove(&mut self, path: &Path) -> Result<bool> {
        if self.remember(path)?.is_none() {
            return Ok(false);
        }
        tracing::info!(path = %path.display(), "removing");
        fs::remove_file(path).map_err(io(path))?;
        Ok(true)
    }

    /// Puts every path back as it was and removes the directories made.
    pub fn rollback(self) -> Result<()> {
        for l in &self.links {
            let _ = fs::remove_file(l);
        }
        for b in self.before.into_iter().rev() {
            match b.content {
                Some((bytes, mode)) => {
                    if read_opt(&b.path)?.is_none_or(|(now, m)| now != bytes || m != mode) {
                        atomic_write(&b.path, &bytes, mode)?;
                    }
                }
                None => {
                    if b.path.exists() {
                        fs::remove_file(&b.path).map_err(io(&b.path))?;
                    }
                }
            }
            tracing::info!(path = %b.path.display(), "restored");
        }
        for d in self.made_dirs.iter().rev() {
            let _ = fs::remove_dir(d);
        }
        Ok(())
    }
}

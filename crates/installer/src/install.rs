//! `install` and `uninstall`: the plan of file changes (computed and
//! checked before anything is written), applied through a [`Journal`],
//! then containerd restarted, its socket awaited and every handler probed;
//! any failure after the first write rolls every file back byte for byte
//! and restarts containerd on its old config.

use std::path::{Path, PathBuf};
use std::time::Duration;

use zygote_config::Config;

use crate::containerd_config::{self as cc, Layout};
use crate::error::{io, Error, Result};
use crate::handlers::{handlers, Handler};
use crate::host::{host_path, Host, Mode, State, K3S_BASE, SHIM, ZYGOTECTL};
use crate::journal::{read_opt, Journal};
use crate::probe::{probe, wait_for_cri};
use crate::restart::{restart, Restart};

/// How containerd is restarted and reached.
#[derive(Debug, Clone)]
pub struct Containerd {
    pub restart: Restart,
    pub unit: String,
    pub pid: Option<i32>,
    /// The CRI socket, as the installer reaches it.
    pub socket: PathBuf,
    pub wait: Duration,
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(io(path))
}

/// The containerd config file's planned changes: (path, new content,
/// the original to keep as backup).
struct Plan {
    writes: Vec<(PathBuf, String)>,
    backup: Option<(PathBuf, String)>,
}

fn plan(host: &Host, hs: &[Handler]) -> Result<(Mode, Plan)> {
    let main_path = &host.containerd_config;
    let main = read_text(main_path)?;
    let mode = host.mode(&main)?;
    let plan = match mode {
        Mode::Block => {
            let orig = cc::strip_block(&main).unwrap_or_else(|| main.clone());
            cc::check_free(main_path, &orig, Layout::V2, hs)?;
            let new = cc::append_block(&orig, &cc::runtime_tables(Layout::V2, hs));
            cc::parse(main_path, &new)?;
            Plan {
                writes: vec![(main_path.clone(), new)],
                backup: Some((host.backup(), orig)),
            }
        }
        Mode::DropIn => {
            cc::check_free(main_path, &main, Layout::V3, hs)?;
            let orig = cc::remove_import(main_path, &main, cc::DROPIN_IMPORT)?;
            let new = cc::add_import(main_path, &main, cc::DROPIN_IMPORT)?;
            Plan {
                writes: vec![(host.dropin(), cc::dropin(hs)), (main_path.clone(), new)],
                backup: Some((host.backup(), orig)),
            }
        }
        Mode::Template(layout) => {
            let generated = cc::strip_block(&main).unwrap_or(main);
            cc::check_free(main_path, &generated, layout, hs)?;
            let tmpl_path = host.template();
            let tmpl = match read_opt(&tmpl_path)? {
                Some((b, _)) => {
                    String::from_utf8(b).map_err(|_| Error::Other(format!("{}: not UTF-8", tmpl_path.display())))?
                }
                None => K3S_BASE.to_string(),
            };
            let orig = cc::strip_block(&tmpl).unwrap_or(tmpl);
            let new = cc::append_block(&orig, &cc::runtime_tables(layout, hs));
            Plan {
                writes: vec![(tmpl_path, new)],
                backup: None,
            }
        }
    };
    Ok((mode, plan))
}

fn mode_of(path: &Path) -> Result<u32> {
    Ok(read_opt(path)?.map_or(0o644, |(_, m)| m))
}

/// Installs zygote on `host`: the binaries from `source_dir`, the zygote
/// config `zygote_config`, one handler per profile. Returns the handlers.
pub fn install(host: &Host, source_dir: &Path, zygote_config: &Path, ctrd: &Containerd) -> Result<Vec<Handler>> {
    let ztext = read_text(zygote_config)?;
    // Landlock "required" policies are checked by the shim on the node's
    // kernel when it loads the config; here every ABI is accepted.
    let config = Config::from_toml(&ztext, Some(zygote_config), u32::MAX).map_err(|source| Error::Zygote {
        path: zygote_config.into(),
        source: Box::new(source),
    })?;
    let shim = host.install_dir_on_host.join(SHIM).display().to_string();
    let hs = handlers(&config, zygote_config, &host.handler_dir(), &shim)?;
    let (mode, plan) = plan(host, &hs)?;
    tracing::info!(?mode, handlers = ?hs.iter().map(|h| &h.name).collect::<Vec<_>>(), "installing");
    let mut bins = Vec::new();
    for b in [SHIM, ZYGOTECTL] {
        let src = source_dir.join(b);
        bins.push((host.install_dir.join(b), std::fs::read(&src).map_err(io(&src))?));
    }

    let mut state = State::load(host)?;
    let mut j = Journal::default();
    let applied = (|| -> Result<()> {
        for (dst, bytes) in &bins {
            j.write(dst, bytes, 0o755)?;
        }
        if let Some((link, target)) = host.shim_link() {
            j.symlink(&link, &target)?;
        }
        j.write(&host.zygote_config(), ztext.as_bytes(), 0o644)?;
        let wanted: Vec<String> = hs.iter().filter_map(|h| h.options_path.clone()).collect();
        for h in &hs {
            if let Some(p) = &h.options_path {
                j.write(&host.path(p), h.options_body().as_bytes(), 0o644)?;
            }
        }
        for stale in state.made_files.clone() {
            if stale.starts_with(&host.handler_dir()) && !wanted.contains(&stale) {
                j.remove(&host.path(&stale))?;
                state.made_files.retain(|f| *f != stale);
            }
        }
        if let Some((path, orig)) = &plan.backup {
            if !path.exists() {
                j.write(path, orig.as_bytes(), mode_of(&host.containerd_config)?)?;
            }
        }
        for (path, text) in &plan.writes {
            j.write(path, text.as_bytes(), mode_of(path)?)?;
        }
        let state_path = host.state_file();
        let mut made: Vec<PathBuf> = j.made_files();
        if !state_path.exists() {
            made.push(state_path.clone());
        }
        for f in made.iter().map(|p| host_path(&host.root, p)) {
            if !state.made_files.contains(&f) {
                state.made_files.push(f);
            }
        }
        for d in j.made_dirs().iter().map(|p| host_path(&host.root, p)) {
            if !state.made_dirs.contains(&d) {
                state.made_dirs.push(d);
            }
        }
        state.handlers = hs.iter().map(|h| h.name.clone()).collect();
        j.write(&state_path, &state.to_bytes(), 0o644)?;
        Ok(())
    })();
    let mut parent = None;
    let checked = applied.and_then(|_| restart_and_probe(ctrd, &hs, &mut parent));
    if let Err(e) = checked {
        tracing::error!(error = %e, "install failed, restoring every file");
        j.rollback()?;
        restart_again(ctrd, parent)?;
        return Err(e);
    }
    Ok(hs)
}

/// Restarts containerd on the restored config; for `signal`, the
/// containerd to stop is the one the supervisor `parent` started again.
fn restart_again(ctrd: &Containerd, parent: Option<i32>) -> Result<()> {
    if ctrd.restart == Restart::None {
        return Ok(());
    }
    let pid = match parent {
        Some(p) => Some(crate::restart::containerd_child_of(p)?),
        None => ctrd.pid,
    };
    restart(ctrd.restart, &ctrd.unit, pid)?;
    wait_for_cri(&ctrd.socket, ctrd.wait).map(drop)
}

fn restart_and_probe(ctrd: &Containerd, hs: &[Handler], parent: &mut Option<i32>) -> Result<()> {
    if ctrd.restart == Restart::None {
        tracing::info!("--restart none: containerd not restarted, handlers not probed");
        return Ok(());
    }
    *parent = restart(ctrd.restart, &ctrd.unit, ctrd.pid)?;
    let version = wait_for_cri(&ctrd.socket, ctrd.wait)?;
    tracing::info!(%version, "containerd is back");
    for h in hs {
        probe(&ctrd.socket, &h.name)?;
        tracing::info!(handler = %h.name, "probe passed");
    }
    Ok(())
}

/// Whether `p` exists (a dangling symlink does).
fn fs_exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// What `uninstall` left behind.
#[derive(Debug, Default, serde::Serialize)]
pub struct Uninstalled {
    /// Zygote tasks still running (binaries and zygote config kept for them).
    pub blocked_by: Vec<String>,
}

/// Removes the handlers (the containerd config restored byte for byte),
/// then the binaries and zygote's files unless zygote tasks still run.
pub fn uninstall(host: &Host, ctrd: &Containerd) -> Result<Uninstalled> {
    let main_path = &host.containerd_config;
    let main = read_text(main_path)?;
    let mode = host.mode(&main)?;
    let state = State::load(host)?;
    let backup = read_opt(&host.backup())?.and_then(|(b, _)| String::from_utf8(b).ok());
    let mut j = Journal::default();
    let applied = (|| -> Result<()> {
        match mode {
            Mode::Block => {
                if let Some(orig) = cc::strip_block(&main) {
                    j.write(main_path, orig.as_bytes(), mode_of(main_path)?)?;
                }
            }
            Mode::DropIn => {
                j.remove(&host.dropin())?;
                if cc::has_import(main_path, &main, cc::DROPIN_IMPORT)? {
                    let orig = match &backup {
                        Some(b) if cc::add_import(main_path, b, cc::DROPIN_IMPORT)? == main => b.clone(),
                        _ => cc::remove_import(main_path, &main, cc::DROPIN_IMPORT)?,
                    };
                    j.write(main_path, orig.as_bytes(), mode_of(main_path)?)?;
                }
            }
            Mode::Template(_) => {
                let t = host.template();
                if let Some(orig) = read_opt(&t)?.and_then(|(b, _)| cc::strip_block(&String::from_utf8_lossy(&b))) {
                    if orig == K3S_BASE && state.made_files.contains(&host_path(&host.root, &t)) {
                        j.remove(&t)?;
                    } else {
                        j.write(&t, orig.as_bytes(), mode_of(&t)?)?;
                    }
                }
            }
        }
        j.remove(&host.backup())?;
        Ok(())
    })();
    let mut parent = None;
    let checked = applied.and_then(|_| {
        if ctrd.restart == Restart::None {
            return Ok(());
        }
        parent = restart(ctrd.restart, &ctrd.unit, ctrd.pid)?;
        wait_for_cri(&ctrd.socket, ctrd.wait).map(drop)
    });
    if let Err(e) = checked {
        j.rollback()?;
        restart_again(ctrd, parent)?;
        return Err(e);
    }

    let blocked_by = host.running_tasks();
    if !blocked_by.is_empty() {
        tracing::warn!(tasks = ?blocked_by, "zygote tasks still run: the shim, zygotectl and zygote's config stay");
        return Ok(Uninstalled { blocked_by });
    }
    let mut files: Vec<PathBuf> = vec![host.install_dir.join(SHIM), host.install_dir.join(ZYGOTECTL)];
    files.push(host.zygote_config());
    files.extend(state.made_files.iter().map(|f| host.path(f)));
    for f in files {
        if fs_exists(&f) {
            std::fs::remove_file(&f).map_err(io(&f))?;
            tracing::info!(path = %f.display(), "removed");
        }
    }
    for d in state.made_dirs.iter().rev() {
        let _ = std::fs::remove_dir(host.path(d));
    }
    Ok(Uninstalled { blocked_by })
}

//! `status`: what is installed on the node, read from the files alone.

use std::path::PathBuf;

use crate::containerd_config::{self as cc, Layout};
use crate::error::Result;
use crate::host::{Host, Mode, SHIM, ZYGOTECTL};

#[derive(Debug, serde::Serialize)]
pub struct Binary {
    pub path: PathBuf,
    pub bytes: Option<u64>,
}

#[derive(Debug, serde::Serialize)]
pub struct Status {
    pub containerd_config: PathBuf,
    pub config_version: i64,
    pub mode: Mode,
    /// The file holding zygote's handlers (drop-in, main file or template).
    pub handlers_file: PathBuf,
    pub handlers: Vec<String>,
    pub binaries: Vec<Binary>,
    pub zygote_config: Option<PathBuf>,
    pub running_tasks: Vec<String>,
}

pub fn status(host: &Host) -> Result<Status> {
    let main_path = &host.containerd_config;
    let main = std::fs::read_to_string(main_path).map_err(crate::error::io(main_path))?;
    let mode = host.mode(&main)?;
    let layout = match mode {
        Mode::DropIn => Layout::V3,
        Mode::Block => Layout::V2,
        Mode::Template(l) => l,
    };
    let handlers_file = match mode {
        Mode::DropIn => host.dropin(),
        Mode::Block => main_path.clone(),
        Mode::Template(_) => host.template(),
    };
    let text = std::fs::read_to_string(&handlers_file).unwrap_or_default();
    let registered = match mode {
        Mode::DropIn if cc::has_import(main_path, &main, cc::DROPIN_IMPORT)? => text.as_str(),
        Mode::DropIn => "",
        _ => cc::block(&text).unwrap_or(""),
    };
    let handlers = cc::zygote_runtimes(&handlers_file, registered, layout)?;
    let binaries = [SHIM, ZYGOTECTL]
        .iter()
        .map(|b| {
            let path = host.install_dir.join(b);
            let bytes = std::fs::metadata(&path).ok().map(|m| m.len());
            Binary { path, bytes }
        })
        .collect();
    let zc = host.zygote_config();
    Ok(Status {
        containerd_config: main_path.clone(),
        config_version: layout.number(),
        mode,
        handlers_file,
        handlers,
        binaries,
        zygote_config: zc.exists().then_some(zc),
        running_tasks: host.running_tasks(),
    })
}

//! The runtime handlers the installer registers: one per profile of the
//! zygote config. The default profile's handler is `zygote` (no options:
//! the shim falls back to `default_profile`); every other profile `p` gets
//! `zygote-p`, whose runtime options name `<zygote dir>/handlers/p.toml` (`/etc/zygote/handlers/p.toml`)
//! (a file holding `profile = "p"`, read by the shim as
//! `runtimeoptions.v1.Options.config_path`).

use std::path::Path;

use zygote_config::Config;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    /// The CRI runtime handler (and RuntimeClass `handler`) name.
    pub name: String,
    pub profile: String,
    /// Host path of the options file, `None` for the default profile.
    pub options_path: Option<String>,
    /// Host path of the shim (`runtime_path`: the install dir is not on
    /// containerd's `PATH`).
    pub runtime_path: String,
}

impl Handler {
    /// The options file's content (`profile = "p"`).
    pub fn options_body(&self) -> String {
        format!("profile = \"{}\"\n", self.profile)
    }
}

/// The handlers of `config` (read from `path`), default profile first.
/// `handler_dir` and `runtime_path` are host paths (as containerd sees them).
pub fn handlers(config: &Config, path: &Path, handler_dir: &str, runtime_path: &str) -> Result<Vec<Handler>> {
    let mut out = vec![Handler {
        name: "zygote".into(),
        profile: config.default_profile.clone(),
        options_path: None,
        runtime_path: runtime_path.into(),
    }];
    for name in config.profiles.keys().filter(|p| **p != config.default_profile) {
        // A RuntimeClass handler is a DNS label: no `_`.
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(Error::Config {
                path: path.into(),
                key: format!("profiles.{name}"),
                problem: "a profile exposed as a runtime handler must be a DNS label (a-z, 0-9, '-')".into(),
            });
        }
        let handler = format!("zygote-{name}");
        if handler.len() > 63 {
            return Err(Error::Config {
                path: path.into(),
                key: format!("profiles.{name}"),
                problem: format!("handler name {handler} is longer than 63 bytes"),
            });
        }
        out.push(Handler {
            name: handler,
            profile: name.clone(),
            options_path: Some(format!("{handler_dir}/{name}.toml")),
            runtime_path: runtime_path.into(),
        });
    }
    Ok(out)
}

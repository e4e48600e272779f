//! Live reload of the config file (SIGHUP, or `zygotectl reload` through
//! the control socket): the file is read and validated exactly as at start
//! ([`crate::profiles::load_config`]); an invalid one is refused with that
//! load message and the config in force stays. A valid one replaces the
//! profiles whole (Creates from then on resolve against it) and the pools
//! follow ([`crate::pool::PoolSet::reconfigure`]). Running tasks and their
//! monitors are not touched: a task keeps what it was created with.
//!
//! The node-level `[wasm]` settings (cache dir and size) and `[metrics]` are
//! read once, when the daemon starts; a reload reports a change of them as
//! not applied.

use tokio::sync::Mutex;
use tracing::{info, warn};
use zygote_config::Config;
use zygote_contract::ctl::ReloadReport;

use crate::daemon::Daemon;
use crate::profiles::{load_config, Profiles};

/// One reload at a time.
static RELOADING: Mutex<()> = Mutex::const_new(());

impl Daemon {
    /// Re-reads the config file; `trigger` says who asked (for the log).
    /// `Err` is the load error (the old config stays in force).
    pub(crate) async fn reload(&self, trigger: &str) -> Result<ReloadReport, String> {
        let _one = RELOADING.lock().await;
        info!(trigger, "reloading the configuration");
        let new = match tokio::task::spawn_blocking(load_config).await {
            Ok(r) => r,
            Err(e) => Err(format!("config reload: {e}")),
        };
        let new = match new {
            Ok(c) => c,
            Err(message) => {
                warn!(trigger, error = %message, "configuration refused; the one in force stays");
                return Err(message);
            }
        };
        let old = self.profiles();
        let mut report = diff(old.config().ok(), &new);
        let profiles = Profiles::from_config(Ok(new));
        let specs = profiles.pool_specs();
        self.set_profiles(profiles);
        report.zygotes_drained = self.pools.reconfigure(specs).await;
        info!(
            trigger,
            config = ?report.config,
            added = ?report.added,
            removed = ?report.removed,
            changed = ?report.changed,
            zygotes_drained = report.zygotes_drained,
            not_applied = ?report.not_applied,
            "configuration reloaded"
        );
        Ok(report)
    }
}

/// What differs between the config in force (`None`: it was unusable) and
/// `new`.
fn diff(old: Option<&Config>, new: &Config) -> ReloadReport {
    let mut r = ReloadReport {
        config: new.source.clone(),
        ..Default::default()
    };
    let empty = Default::default();
    let old_profiles = old.map_or(&empty, |c| &c.profiles);
    for (name, p) in &new.profiles {
        match old_profiles.get(name) {
            None => r.added.push(name.clone()),
            Some(o) if o != p => r.changed.push(name.clone()),
            Some(_) => r.unchanged.push(name.clone()),
        }
    }
    r.removed = old_profiles
        .keys()
        .filter(|n| !new.profiles.contains_key(*n))
        .cloned()
        .collect();
    if old.is_some_and(|o| o.wasm != new.wasm) {
        r.not_applied
            .push("[wasm] (cache_dir, cache_max_mb): read when the daemon starts; restart it to apply".into());
    }
    if old.is_some_and(|o| o.metrics != new.metrics) {
        r.not_applied
            .push("[metrics] (enabled, listen): read when the daemon starts; restart it to apply".into());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::from_toml(text, Some(std::path::Path::new("/t.toml")), 0).unwrap()
    }

    #[test]
    fn diff_names_added_removed_and_changed_profiles() {
        let old = config(
            "[profiles.default]\n[profiles.a]\n[profiles.b.pool]\nmax = 2\n[profiles.c]\n[wasm]\ncache_max_mb = 5\n",
        );
        let new = config(
            "[profiles.default]\n[profiles.b.pool]\nmax = 3\n[profiles.c]\n[profiles.d]\n[metrics]\nenabled = false\n",
        );
        let r = diff(Some(&old), &new);
        assert_eq!(r.added, ["d"]);
        assert_eq!(r.removed, ["a"]);
        assert_eq!(r.changed, ["b"]);
        assert_eq!(r.unchanged, ["c", "default"]);
        assert_eq!(r.not_applied.len(), 2, "{r:?}");
        assert!(r.not_applied[0].contains("[wasm]"));
        assert!(r.not_applied[1].contains("[metrics]"));
        // From an unusable config, everything is new.
        let r = diff(None, &new);
        assert_eq!(r.added, ["b", "c", "d", "default"]);
        assert!(r.removed.is_empty() && r.not_applied.is_empty());
    }
}

//! The monitor's memory on disk: the snapshot of every process and
//! `state.json`, written before any exit is reported, and what happens when
//! the state dir is full.

use zygote_contract::proto;
use zygote_contract::state::{self, Snapshot};

use tracing::{info, warn};

use super::Monitor;

impl Monitor {
    pub(super) fn snapshot(&self) -> Snapshot {
        Snapshot {
            init: self.init.state.clone(),
            execs: self.execs.iter().map(|(k, v)| (k.clone(), v.state.clone())).collect(),
        }
    }

    /// Writes state.json; an exit status is on disk before it is reported.
    ///
    /// When the state dir is full, the task's reserve file (made at create)
    /// is given up so this write fits; if it still fails, the state stays
    /// in memory (the daemon gets every exit over the control socket, and
    /// Destroy returns the final snapshot) and the write is retried on every
    /// wake-up. A full state dir is reported once in containerd's log
    /// (whether or not the reserve saved the write), since our own log is
    /// likely on the same full filesystem.
    pub(super) fn persist(&mut self) {
        let path = self.dir.state();
        let snap = self.snapshot();
        let mut r = state::write_atomic(&path, &snap);
        let full = r
            .as_ref()
            .err()
            .filter(|e| e.is_no_space())
            .map(|e| proto::error_chain(e));
        if full.is_some() && state::release_reserve(&self.dir) {
            r = state::write_atomic(&path, &snap);
        }
        if let Some(cause) = &full {
            if !self.reported_full {
                self.reported_full = true;
                let outcome = if r.is_ok() {
                    "saved it in the space the task reserved at create"
                } else {
                    "cannot save its state; exit statuses are kept in memory and still reported"
                };
                let text = format!(
                    "zygote: task {}: the state dir is full ({cause}); {outcome}",
                    self.cfg.id
                );
                warn!("{text}");
                crate::shim_log::write(&self.cfg.bundle, &text);
            }
        }
        match r {
            Ok(()) => {
                if self.unsaved {
                    self.unsaved = false;
                    info!(id = %self.cfg.id, "state saved again");
                    state::make_reserve(&self.dir);
                }
            }
            Err(e) => {
                if !self.unsaved && full.is_none() {
                    let text = format!(
                        "zygote: task {}: cannot save its state ({}); exit statuses are kept in memory and still reported",
                        self.cfg.id,
                        proto::error_chain(&e)
                    );
                    warn!("{text}");
                    crate::shim_log::write(&self.cfg.bundle, &text);
                }
                self.unsaved = true;
            }
        }
    }
}

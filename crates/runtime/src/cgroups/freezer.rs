//! Freezing, thawing and signalling every process of a [`Cgroup`]
//! (v1 `freezer.state`, v2 `cgroup.freeze` / `cgroup.kill`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{fs, Cgroup, CgroupError, CgroupVersion, Layout, Result};

/// How long freeze/thaw wait for the state to settle.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

impl Cgroup {
    /// The freezer control file with its "frozen" and "thawed" values.
    fn freezer_file(&self) -> Result<(PathBuf, &'static str, &'static str)> {
        Ok(match self.layout {
            Layout::V1(_) => (
                self.controller_dir("freezer")?.join("freezer.state"),
                "FROZEN",
                "THAWED",
            ),
            Layout::V2(_) => (self.unified_dir().join("cgroup.freeze"), "1", "0"),
        })
    }

    /// Freezes every process and waits until the kernel reports the cgroup
    /// frozen. On timeout the cgroup is thawed again and an error returned.
    pub fn freeze(&self) -> Result<()> {
        let (file, frozen, thawed) = self.freezer_file()?;
        fs::write(&file, frozen)?;
        let start = Instant::now();
        let mut attempt = 0u32;
        let mut since_write = 0u32;
        loop {
            let state = self.freezer_state()?;
            if state == FreezerState::Frozen {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                let _ = fs::write(&file, thawed);
                return Err(CgroupError::FreezeTimeout {
                    path: file,
                    want: frozen.to_string(),
                    state: format!("{state:?}"),
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            attempt += 1;
            since_write += 1;
            // v1: a cgroup can get stuck in FREEZING when a task is in an
            // uninterruptible sleep; writing FROZEN again retries.
            if self.version() == CgroupVersion::V1 && since_write == 10 {
                since_write = 0;
                fs::write(&file, frozen)?;
            }
            std::thread::sleep(Duration::from_millis(u64::from(attempt.min(10))));
        }
    }

    /// Thaws the cgroup and waits until it is running again.
    pub fn thaw(&self) -> Result<()> {
        let (file, _, thawed) = self.freezer_file()?;
        fs::write(&file, thawed)?;
        let start = Instant::now();
        loop {
            let state = self.freezer_state()?;
            if state == FreezerState::Thawed {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                return Err(CgroupError::FreezeTimeout {
                    path: file,
                    want: thawed.to_string(),
                    state: format!("{state:?}"),
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// True if the cgroup is completely frozen.
    pub fn is_frozen(&self) -> Result<bool> {
        Ok(self.freezer_state()? == FreezerState::Frozen)
    }

    fn freezer_state(&self) -> Result<FreezerState> {
        match self.layout {
            Layout::V1(_) => {
                let file = self.controller_dir("freezer")?.join("freezer.state");
                Ok(match fs::read(&file)?.trim() {
                    "FROZEN" => FreezerState::Frozen,
                    "FREEZING" => FreezerState::Freezing,
                    "THAWED" => FreezerState::Thawed,
                    other => {
                        return Err(CgroupError::Parse {
                            path: file,
                            reason: format!("unknown freezer state {other:?}"),
                        })
                    }
                })
            }
            Layout::V2(_) => {
                let dir = self.unified_dir();
                let want = fs::read_u64(&dir.join("cgroup.freeze"))?;
                let frozen = fs::read_keyed_field(&dir.join("cgroup.events"), "frozen")?;
                Ok(match (want, frozen) {
                    (_, 1) => FreezerState::Frozen,
                    (1, _) => FreezerState::Freezing,
                    _ => FreezerState::Thawed,
                })
            }
        }
    }

    /// Sends `signal` to every process in the cgroup. SIGKILL uses
    /// `cgroup.kill` on v2 when the kernel has it (5.14+); otherwise, for
    /// SIGKILL, the cgroup is frozen around the signalling (when a freezer
    /// is available) so no process can fork a new one that escapes it.
    /// Processes that exit meanwhile are ignored.
    pub fn kill_all(&self, signal: Signal) -> Result<()> {
        if signal == Signal::SIGKILL {
            if let Layout::V2(_) = self.layout {
                let file = self.unified_dir().join("cgroup.kill");
                if file.exists() {
                    return fs::write(&file, "1");
                }
            }
        }
        let freeze = signal == Signal::SIGKILL && self.freezer_file().is_ok();
        let frozen = freeze && self.freeze().is_ok();
        let res = self.signal_procs(signal);
        if frozen {
            self.thaw()?;
        }
        res
    }

    fn signal_procs(&self, signal: Signal) -> Result<()> {
        let pids = match self.procs() {
            Ok(p) => p,
            Err(CgroupError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        for pid in pids {
            match kill(Pid::from_raw(pid), signal) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(errno) => return Err(CgroupError::Signal { pid, signal, errno }),
            }
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq)]
enum FreezerState {
    Thawed,
    Freezing,
    Frozen,
}

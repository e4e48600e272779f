//! Reaping: every exited child is reaped, a tracked process's exit is
//! written down and then reported (once its output is read), OOM kills are
//! noticed, and Destroy kills and reaps what is left of the task.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tracing::{debug, info, warn};
use zygote_contract::proto::{self, Event, Message};
use zygote_contract::state::{self, Status};

use super::Monitor;

/// The longest an exit is held back while its output is being read.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// How long unread output may sit while no reader has its FIFO open before
/// the exit is reported anyway (a `ctr run -d` that is gone).
const DRAIN_STALL: Duration = Duration::from_secs(1);

/// An exit waiting for its output to be read (see `report_exits`).
pub(super) struct Unreported {
    event: Event,
    since: Instant,
    /// Bytes still unread at the last look, and when that last went down.
    unread: usize,
    progress: Instant,
}

impl Monitor {
    /// Reaps every exited child and reports the ones we track.
    pub(super) fn reap(&mut self) {
        loop {
            let st = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(st) => st,
            };
            let (pid, code) = match st {
                WaitStatus::Exited(pid, c) => (pid, c),
                WaitStatus::Signaled(pid, sig, _) => (pid, 128 + sig as i32),
                _ => continue,
            };
            self.record_exit(pid.as_raw(), code);
        }
    }

    fn record_exit(&mut self, pid: i32, code: i32) {
        let now = state::wall_ns();
        let key = if self.init.state.pid == pid && self.init.state.status != Status::Stopped {
            None
        } else if let Some((k, _)) = self
            .execs
            .iter()
            .find(|(_, p)| p.state.pid == pid && p.state.status != Status::Stopped)
        {
            Some(k.clone())
        } else {
            self.log_binaries.retain(|p| p.as_raw() != pid);
            return;
        };
        if key.is_none() {
            self.check_oom_v2();
            if !self.private_pidns {
                let _ = self.cgroup.kill_all(Signal::SIGKILL);
            }
        }
        let p = self.proc_mut(&key).expect("tracked process");
        p.state.status = Status::Stopped;
        p.state.exit_status = Some(code);
        p.state.exited_at_ns = Some(now);
        p.pending = None;
        p.pidfd = None;
        info!(id = %self.cfg.id, exec = ?key, pid, code, "process exited");
        self.persist();
        let event = Event::Exited {
            exec_id: key,
            pid,
            status: code,
            exited_at_ns: now,
        };
        self.unreported.push(Unreported {
            event,
            since: Instant::now(),
            unread: usize::MAX,
            progress: Instant::now(),
        });
        self.report_exits();
    }

    /// Reports exits whose output has been read. A client learns of an exit
    /// and may stop reading at once (ctr 1.6 cancels an output FIFO open it
    /// has not yet taken note of, even after the kernel completed it): so
    /// an exit is held back while the process's output still sits unread in
    /// its FIFOs and a reader is taking it, at most [`DRAIN_LIMIT`], and
    /// for [`DRAIN_STALL`] when nobody reads (a `ctr run -d` that is gone).
    pub(super) fn report_exits(&mut self) {
        let mut i = 0;
        while i < self.unreported.len() {
            let key = match &self.unreported[i].event {
                Event::Exited { exec_id, .. } => exec_id.clone(),
                Event::Oom => None,
            };
            let unread = self.proc_mut(&key).map(|p| p.io.unread_output()).unwrap_or(0);
            let u = &mut self.unreported[i];
            if unread < u.unread {
                u.progress = Instant::now();
            }
            u.unread = unread;
            let (expired, stalled) = (u.since.elapsed() >= DRAIN_LIMIT, u.progress.elapsed() >= DRAIN_STALL);
            // A reader that has the FIFO open but has not read yet is a
            // client starved of CPU (ctr 2.x on a loaded node cancels a FIFO
            // open it has not taken note of once it learns of the exit):
            // it gets the whole DRAIN_LIMIT. Probed only once stalled.
            let give_up =
                expired || (stalled && unread > 0 && !self.proc_mut(&key).is_ok_and(|p| p.io.reader_waiting()));
            if unread == 0 || give_up {
                if unread > 0 {
                    warn!(id = %self.cfg.id, exec = ?key, unread, "output not read; reporting the exit anyway");
                }
                let u = self.unreported.remove(i);
                self.send(&Message::Event { event: u.event }, &[]);
            } else {
                i += 1;
            }
        }
    }

    /// cgroup v2 has no OOM eventfd: compare the oom_kill counter.
    pub(super) fn check_oom_v2(&mut self) {
        if self.oom_fd.is_some() {
            return;
        }
        if let Ok(n) = self.cgroup.oom_kill_count() {
            if n > self.oom_kills {
                self.oom_kills = n;
                self.send(&Message::Event { event: Event::Oom }, &[]);
            }
        }
    }

    /// Reaps until `done` holds or `limit` passes (never blocks in waitpid).
    fn reap_until(&mut self, limit: Duration, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) && Instant::now() < deadline {
            self.reap();
            if !done(self) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Delete: nothing of the task may survive, and nothing that is not the
    /// task's is touched. With its own pid namespace, the task is exactly
    /// that namespace: killing its init makes the kernel kill the rest, and
    /// whatever else is in the cgroup belongs to someone else (a container
    /// given the same `cgroupsPath`), so it is left running and the cgroup
    /// stays for it, as with runc-v2. Sharing a pid namespace, the task's
    /// processes are told apart by their cgroup only, and all of them are
    /// killed, as runc-v2 does.
    pub(super) fn destroy(&mut self) {
        // A frozen process cannot die: thaw first (a paused task can be deleted).
        let _ = self.cgroup.thaw();
        let init = Pid::from_raw(self.init.state.pid);
        if self.init.state.status != Status::Stopped {
            if !self.private_pidns {
                let _ = self.cgroup.kill_all(Signal::SIGKILL);
            }
            let _ = kill(init, Signal::SIGKILL);
            self.reap_until(Duration::from_secs(10), |m| m.init.state.status == Status::Stopped);
        }
        let running: Vec<Pid> = self
            .execs
            .values()
            .filter(|p| p.state.status != Status::Stopped)
            .map(|p| Pid::from_raw(p.state.pid))
            .collect();
        for pid in running {
            let _ = kill(pid, Signal::SIGKILL);
        }
        self.reap_until(Duration::from_secs(5), |m| {
            m.execs.values().all(|p| p.state.status == Status::Stopped)
        });
        // Loggers get what is left of the output, then SIGTERM, then SIGKILL
        // (runc-v2 does the same).
        self.reap_until(Duration::from_millis(200), |m| m.log_binaries.is_empty());
        for pid in &self.log_binaries {
            let _ = kill(*pid, Signal::SIGTERM);
        }
        self.reap_until(Duration::from_secs(2), |m| m.log_binaries.is_empty());
        for pid in &self.log_binaries {
            let _ = kill(*pid, Signal::SIGKILL);
        }
        self.reap_until(Duration::from_secs(1), |m| m.log_binaries.is_empty());
        self.remove_cgroup();
    }

    /// Removes the task's cgroup once its processes are gone; a cgroup that
    /// still holds others' processes is left to them.
    fn remove_cgroup(&mut self) {
        if self.private_pidns {
            match self.cgroup.procs() {
                Ok(pids) if !pids.is_empty() => {
                    info!(id = %self.cfg.id, cgroup = %self.cgroup.path().display(), others = pids.len(),
                        "the cgroup holds processes of another container; left in place");
                    return;
                }
                _ => {}
            }
        }
        for _ in 0..50 {
            match self.cgroup.remove() {
                Ok(()) => break,
                Err(e) => {
                    debug!(error = %proto::error_chain(&e), "cgroup not removable yet");
                    if !self.private_pidns {
                        let _ = self.cgroup.kill_all(Signal::SIGKILL);
                    }
                    self.reap();
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        let _ = std::fs::remove_file(self.dir.monitor_socket());
    }
}

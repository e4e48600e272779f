//! The poll loop: the control socket, the listener a restarted daemon
//! connects to, the OOM eventfd, every process's pidfd and stdio pumps; and
//! losing and restarting the daemon.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use tracing::{info, warn};
use zygote_contract::proto::{self, Event, Message, Request};
use zygote_contract::state::Status;

use super::Monitor;
use crate::sys;

#[derive(Clone)]
enum Token {
    Control,
    Listener,
    Oom,
    Child,
    Pump(Option<String>, usize),
}

impl Monitor {
    pub(super) fn send(&mut self, msg: &Message, fds: &[RawFd]) {
        let Some(c) = &self.control else { return };
        if proto::send(c.as_fd(), msg, fds).is_err() {
            self.lose_daemon();
        }
    }

    pub(super) fn lose_daemon(&mut self) {
        if self.control.take().is_some() {
            info!(id = %self.cfg.id, "daemon connection lost");
            self.daemon_lost = Some((Instant::now() + Duration::from_millis(50), Duration::from_millis(500)));
        }
    }

    pub(super) fn run_loop(&mut self) {
        loop {
            let (mut fds, tokens) = self.poll_set();
            let timeout = if !self.unreported.is_empty() {
                2
            } else if self.daemon_lost.is_some() || self.unsaved {
                100
            } else {
                1000
            };
            let n = zygote_runtime::sys::poll(&mut fds, timeout);
            if n > 0 {
                for (pfd, tok) in fds.iter().zip(tokens) {
                    if pfd.revents != 0 && self.handle(tok) {
                        return;
                    }
                }
            }
            self.reap();
            self.report_exits();
            if self.unsaved {
                self.persist();
            }
            self.check_oom_v2();
            self.maybe_restart_daemon();
        }
    }

    fn poll_set(&self) -> (Vec<libc::pollfd>, Vec<Token>) {
        let mut fds = Vec::new();
        let mut tokens = Vec::new();
        let mut add = |fd: RawFd, ev: i16, t: Token| {
            fds.push(libc::pollfd {
                fd,
                events: ev,
                revents: 0,
            });
            tokens.push(t);
        };
        if let Some(c) = &self.control {
            add(c.as_raw_fd(), libc::POLLIN, Token::Control);
        }
        add(self.listener.as_raw_fd(), libc::POLLIN, Token::Listener);
        if let Some(o) = &self.oom_fd {
            add(o.as_raw_fd(), libc::POLLIN, Token::Oom);
        }
        let procs = std::iter::once((None, &self.init)).chain(self.execs.iter().map(|(k, v)| (Some(k.clone()), v)));
        for (key, p) in procs {
            if let (Some(fd), Status::Created | Status::Running) = (&p.pidfd, p.state.status) {
                add(fd.as_raw_fd(), libc::POLLIN, Token::Child);
            }
            let pumps = p.io.stdin.iter().chain(p.io.output.iter());
            for (i, pump) in pumps.enumerate() {
                if let Some((fd, ev)) = pump.interest() {
                    add(fd, ev.bits(), Token::Pump(key.clone(), i));
                }
            }
        }
        (fds, tokens)
    }

    /// Returns true when the monitor should exit.
    fn handle(&mut self, tok: Token) -> bool {
        match tok {
            Token::Control => {
                let Some(c) = &self.control else { return false };
                match proto::recv::<Request>(c.as_fd()) {
                    Ok((req, fds)) => return self.request(req, fds),
                    Err(proto::WireError::Io(nix::Error::EAGAIN)) => {}
                    Err(_) => self.lose_daemon(),
                }
            }
            Token::Listener => {
                if let Ok(fd) = sys::accept(self.listener.as_fd()) {
                    if self.control.is_some() {
                        return self.serve_oneshot(fd);
                    }
                    self.control = Some(fd);
                    self.daemon_lost = None;
                    info!(id = %self.cfg.id, "daemon connected");
                }
            }
            Token::Child => self.reap(),
            Token::Oom => {
                let mut b = [0u8; 8];
                if let Some(o) = &self.oom_fd {
                    let _ = nix::unistd::read(o.as_raw_fd(), &mut b);
                }
                self.send(&Message::Event { event: Event::Oom }, &[]);
            }
            Token::Pump(key, i) => {
                let p = match &key {
                    None => Some(&mut self.init),
                    Some(k) => self.execs.get_mut(k),
                };
                if let Some(p) = p {
                    if let Some(pump) = p.io.pumps_mut().nth(i) {
                        pump.step();
                    }
                    if p.io.output.as_ref().is_some_and(|o| o.done()) {
                        p.io.output = None;
                    }
                    if p.io.stdin.as_ref().is_some_and(|o| o.done()) {
                        p.io.stdin = None;
                    }
                }
            }
        }
        false
    }

    /// A second client while the daemon is attached (containerd's `shim
    /// delete`): answer its one request on its own connection, keeping the
    /// daemon's. Returns true when the monitor should exit.
    fn serve_oneshot(&mut self, fd: OwnedFd) -> bool {
        use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
        let _ = setsockopt(&fd, ReceiveTimeout, &nix::sys::time::TimeVal::new(2, 0));
        let Ok((req, fds)) = proto::recv::<Request>(fd.as_fd()) else {
            return false;
        };
        info!(id = %self.cfg.id, ?req, "request from a second client");
        let daemon = self.control.replace(fd);
        let exit = self.request(req, fds);
        if daemon.is_some() {
            self.control = daemon;
            self.daemon_lost = None;
        }
        exit
    }

    fn maybe_restart_daemon(&mut self) {
        let Some((when, backoff)) = self.daemon_lost else {
            return;
        };
        if Instant::now() < when {
            return;
        }
        info!(id = %self.cfg.id, "restarting the zygote daemon");
        let r = zygote_contract::daemon::spawn(&self.cfg.exe, &self.cfg.daemon_dir);
        if let Err(e) = r {
            warn!(error = %e, "cannot restart the daemon");
        }
        self.daemon_lost = Some((Instant::now() + backoff, (backoff * 2).min(Duration::from_secs(30))));
    }
}

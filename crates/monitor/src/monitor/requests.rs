//! The daemon's requests: Start, Kill, Exec, CloseStdin, Resize,
//! DeleteExec, Destroy, Hello, AdoptConnection; each answered with one
//! reply, a failure carrying its kind and cause chain.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::{debug, warn};
use zygote_contract::proto::{self, Failure, FailureKind, Message, Reply, Request};
use zygote_contract::state::{self, Status};
use zygote_runtime::container;

use super::{Monitor, Proc};
use crate::stdio;

impl Monitor {
    pub(super) fn proc_mut(&mut self, exec_id: &Option<String>) -> Result<&mut Proc, Reply> {
        match exec_id {
            None => Ok(&mut self.init),
            Some(id) => self.execs.get_mut(id).ok_or_else(|| Reply::Error {
                failure: Failure::new(FailureKind::NoSuchProcess, format!("process {id} not found")),
            }),
        }
    }

    pub(super) fn request(&mut self, req: Request, fds: Vec<OwnedFd>) -> bool {
        debug!(?req, "request");
        let mut out_fds = Vec::new();
        let mut exit = false;
        let reply = match req {
            Request::Hello => {
                out_fds = self.conns.iter().map(|(_, f)| f.as_raw_fd()).collect();
                Reply::Snapshot {
                    snapshot: self.snapshot(),
                }
            }
            Request::AdoptConnection => {
                for fd in fds {
                    let ino = nix::sys::stat::fstat(fd.as_raw_fd()).map(|s| s.st_ino).unwrap_or(0);
                    if !self.conns.iter().any(|(i, _)| *i == ino) {
                        self.conns.push((ino, fd));
                    }
                }
                Reply::Ok
            }
            Request::Start { exec_id } => self.start(&exec_id),
            Request::Kill { exec_id, signal, all } => self.kill(&exec_id, signal, all),
            Request::Exec {
                exec_id,
                process,
                stdio,
            } => self.exec(exec_id, &process, &stdio),
            Request::CloseStdin { exec_id } => match self.proc_mut(&exec_id) {
                Ok(p) => {
                    p.io.close_stdin();
                    Reply::Ok
                }
                Err(r) => r,
            },
            Request::Resize { exec_id, width, height } => match self.proc_mut(&exec_id) {
                Ok(p) => match p.io.resize(width, height) {
                    Ok(()) => Reply::Ok,
                    Err(e) => Reply::Error {
                        failure: Failure::context(FailureKind::Internal, "resize pty", &e),
                    },
                },
                Err(r) => r,
            },
            Request::DeleteExec { exec_id } => match self.execs.get(&exec_id) {
                None => Reply::Error {
                    failure: Failure::new(FailureKind::NoSuchProcess, format!("process {exec_id} not found")),
                },
                Some(p) if p.state.status == Status::Running => Reply::Error {
                    failure: Failure::new(
                        FailureKind::ProcessRunning,
                        format!("cannot delete running process {exec_id}"),
                    ),
                },
                Some(_) => {
                    self.execs.remove(&exec_id);
                    self.persist();
                    Reply::Ok
                }
            },
            Request::Destroy => {
                self.destroy();
                exit = true;
                // The final state, also when it could not be saved.
                Reply::Snapshot {
                    snapshot: self.snapshot(),
                }
            }
            Request::Claim { .. } | Request::Ping => Reply::Error {
                failure: Failure::new(FailureKind::WrongPeer, "this monitor already serves a task"),
            },
        };
        self.send(&Message::Reply { reply }, &out_fds);
        exit
    }

    fn start(&mut self, exec_id: &Option<String>) -> Reply {
        if exec_id.is_some() && self.init.state.status == Status::Stopped {
            return Reply::Error {
                failure: Failure::new(FailureKind::NotRunning, "container is not running"),
            };
        }
        let p = match self.proc_mut(exec_id) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let Some(pending) = p.pending.take() else {
            return Reply::Error {
                failure: Failure::new(FailureKind::AlreadyStarted, "process already started"),
            };
        };
        let pid = p.state.pid;
        // Nothing the process writes may be lost: containerd's readers first.
        let missing = p.io.await_readers();
        if !missing.is_empty() {
            warn!(exec = ?exec_id, fifos = ?missing, "no reader on output FIFOs; starting anyway (output is held for a late reader)");
        }
        match pending.start() {
            Ok(()) => {
                if p.state.status == Status::Created {
                    p.state.status = Status::Running;
                }
                self.persist();
                Reply::Pid {
                    pid,
                    at_ns: state::monotonic_ns(),
                }
            }
            Err(e) => Reply::Error {
                failure: Failure::of(FailureKind::Container, &e),
            },
        }
    }

    fn kill(&mut self, exec_id: &Option<String>, signal: i32, all: bool) -> Reply {
        let sig = match Signal::try_from(signal) {
            Ok(s) => s,
            Err(_) => {
                return Reply::Error {
                    failure: Failure::new(FailureKind::InvalidSignal, format!("invalid signal {signal}")),
                }
            }
        };
        let p = match self.proc_mut(exec_id) {
            Ok(p) => p,
            Err(r) => return r,
        };
        if p.state.status == Status::Stopped {
            return Reply::Error {
                failure: Failure::new(FailureKind::ProcessExited, "process already finished"),
            };
        }
        let pid = Pid::from_raw(p.state.pid);
        if all && exec_id.is_none() {
            if let Err(e) = self.cgroup.kill_all(sig) {
                warn!(error = %proto::error_chain(&e), "kill all through the cgroup failed; signalling init only");
            }
        }
        match kill(pid, sig) {
            Ok(()) => Reply::Ok,
            Err(nix::Error::ESRCH) if all => Reply::Ok,
            Err(nix::Error::ESRCH) => Reply::Error {
                failure: Failure::new(FailureKind::ProcessExited, "process already finished"),
            },
            Err(e) => Reply::Error {
                failure: Failure::context(FailureKind::Internal, format!("kill {pid}"), &e),
            },
        }
    }

    fn exec(&mut self, exec_id: String, process: &oci_spec::runtime::Process, paths: &state::StdioPaths) -> Reply {
        if self.execs.contains_key(&exec_id) {
            return Reply::Error {
                failure: Failure::new(FailureKind::ExecExists, format!("process {exec_id} already exists")),
            };
        }
        if self.init.state.status != Status::Running {
            return Reply::Error {
                failure: Failure::new(FailureKind::NotRunning, "container is not running"),
            };
        }
        if self.cfg.guest.is_some() {
            // A guest has no root filesystem of its own to exec a binary in.
            let message = "exec is not supported in a WebAssembly task".to_string();
            return Reply::Error {
                failure: Failure::new(FailureKind::Unsupported, message),
            };
        }
        let owner = stdio::Owner {
            id: &self.cfg.id,
            namespace: &self.cfg.namespace,
            bundle: &self.cfg.bundle,
        };
        let (stdio, mut io) = match stdio::prepare(paths, &owner) {
            Ok(x) => x,
            Err(e) => {
                return Reply::Error {
                    failure: Failure::of(FailureKind::Stdio, &e),
                }
            }
        };
        self.log_binaries.extend(io.log_binary);
        match container::exec_process(&self.container, self.init.state.pid, &self.cgroup, process, stdio) {
            Ok(mut pending) => {
                if let Some(master) = pending.pty_master.take() {
                    if let Err(e) = io.attach_master(master) {
                        return Reply::Error {
                            failure: Failure::context(FailureKind::Internal, "pty", &e),
                        };
                    }
                }
                let pid = pending.pid;
                self.execs.insert(exec_id, Proc::new(pid, pending, io));
                self.persist();
                Reply::Pid {
                    pid,
                    at_ns: state::monotonic_ns(),
                }
            }
            Err(e) => Reply::Error {
                failure: Failure::of(FailureKind::Container, &e),
            },
        }
    }
}

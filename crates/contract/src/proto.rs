//! The daemon ↔ monitor wire protocol.
//!
//! One message per datagram over an `AF_UNIX`/`SOCK_SEQPACKET` socket, in the
//! one codec of every zygote channel (`zygote_runtime::wire`): message
//! boundaries come for free and file descriptors (containerd connections)
//! ride along as `SCM_RIGHTS`. The daemon sends [`Request`]s
//! one at a time; the monitor answers each with exactly one
//! [`Message::Reply`] and may interleave [`Message::Event`]s at any time.
//! The very first message a freshly spawned monitor sends is the reply to
//! the implicit "create" (a [`Reply::Created`] or a [`Reply::Error`]). A
//! warm zygote's first message is a [`Reply::Pid`] (its child is waiting);
//! the reply to its [`Request::Claim`] is then the create reply.

use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

use crate::state::{Snapshot, StdioPaths};
use crate::zygote::{ChildState, Generation};

/// The descriptor a monitor or zygote finds its control socket on.
pub const CONTROL_FD: RawFd = 3;

/// Daemon → monitor.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Report the full state; the reply carries every containerd connection
    /// the monitor holds, for a restarted daemon to serve again.
    Hello,
    /// Release the exec barrier of the init (`exec_id: None`) or an exec.
    Start { exec_id: Option<String> },
    /// Signal a process; `all` signals every process in the container.
    Kill {
        exec_id: Option<String>,
        signal: i32,
        all: bool,
    },
    /// Create an exec'd process, stopped at its barrier.
    Exec {
        exec_id: String,
        process: Box<oci_spec::runtime::Process>,
        stdio: StdioPaths,
    },
    /// Close the write side of a process's stdin (containerd's CloseIO).
    CloseStdin { exec_id: Option<String> },
    /// Resize a process's terminal.
    Resize {
        exec_id: Option<String>,
        width: u32,
        height: u32,
    },
    /// Forget a stopped exec.
    DeleteExec { exec_id: String },
    /// Keep the attached descriptor (a containerd connection) open.
    AdoptConnection,
    /// The task is deleted: kill what is left, remove the cgroup, exit.
    Destroy,
    /// To a warm zygote: become the monitor of the task in `dir` (its
    /// `task.json` is written); the reply is the create reply.
    Claim { dir: std::path::PathBuf },
    /// To a waiting zygote: the pool's health probe. The reply is a
    /// [`Reply::Pong`], sent from the zygote's own wait loop.
    Ping,
}

/// Monitor → daemon.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    Reply { reply: Reply },
    Event { event: Event },
}

/// The answer to one [`Request`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Ok,
    /// A process was created or started; `at_ns` is CLOCK_MONOTONIC when
    /// that happened (for the daemon's latency figures).
    Pid {
        pid: i32,
        at_ns: i64,
    },
    Snapshot {
        snapshot: Snapshot,
    },
    /// The container of a Create is at its exec barrier.
    Created {
        pid: i32,
        at_ns: i64,
        detail: CreateDetail,
    },
    Error {
        failure: Failure,
    },
    /// A waiting zygote's answer to [`Request::Ping`]: its child's state and
    /// the generation it was born with.
    Pong {
        child: ChildState,
        generation: Generation,
    },
}

/// How a container was created (for the daemon's figures and counters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateDetail {
    /// Served by a warm zygote (false: cloned on the spot).
    pub warm: bool,
    /// The zygote's pre-placed cgroup was renamed into the task's (no
    /// migration on the critical path).
    pub cgroup_renamed: bool,
    /// Microseconds the child spent installing Landlock and seccomp.
    pub security_us: u64,
    /// CLOCK_MONOTONIC when the zygote was born (warm only), for its age.
    pub zygote_born_ns: i64,
    /// Warm, but the zygote's child could not serve the spec (the reason,
    /// from `zygote_misfit`): the zygote's process cloned the init itself.
    #[serde(default)]
    pub cloned_at_claim: Option<String>,
    /// The init was cloned straight into its cgroup (`CLONE_INTO_CGROUP`,
    /// cgroup v2): no migration (cold, or warm with the init cloned at
    /// claim joining the zygote child's namespaces).
    #[serde(default)]
    pub cloned_into_cgroup: bool,
    /// Microseconds the task's cgroup took to make (create or rename, limits
    /// and device rules).
    #[serde(default)]
    pub cgroup_us: u64,
    /// Of `cgroup_us`: the BPF device program (build, load, attach; v2).
    #[serde(default)]
    pub devices_us: u64,
    /// Microseconds the init's move into its cgroup took (0 without one).
    #[serde(default)]
    pub place_us: u64,
    /// Warm: the generation of the zygote that served the task (set by the
    /// daemon from its pool's record of the zygote).
    #[serde(default)]
    pub zygote_generation: Option<Generation>,
}

/// A request that failed: what failed ([`FailureKind`], decided where the
/// typed error was) and the messages of its cause chain, outermost first.
/// The daemon turns the kind into a ttrpc status code, once, at its edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub chain: Vec<String>,
}

impl Failure {
    /// A failure with one message and no cause.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            chain: vec![message.into()],
        }
    }

    /// A failure from a typed error: its message and those of its sources.
    pub fn of(kind: FailureKind, error: &dyn std::error::Error) -> Failure {
        let mut chain = vec![error.to_string()];
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push(cause.to_string());
            source = cause.source();
        }
        Failure { kind, chain }
    }

    /// A failure whose cause is `error`: `what`, then `error`'s chain.
    pub fn context(kind: FailureKind, what: impl Into<String>, error: &dyn std::error::Error) -> Failure {
        let mut f = Failure::of(kind, error);
        f.chain.insert(0, what.into());
        f
    }
}

/// The chain joined the way containerd shows errors (`outer: inner`).
impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.chain.join(": "))
    }
}

/// What failed, as the side that failed knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The bundle's spec (or the task's resources or security) is not valid.
    InvalidSpec,
    /// The task's cgroup could not be made as the spec asks.
    Cgroup,
    /// A signal number that does not exist.
    InvalidSignal,
    /// A process's stdio could not be opened as asked.
    Stdio,
    /// No process of that exec id.
    NoSuchProcess,
    /// The process already exited.
    ProcessExited,
    /// The container's init is not running.
    NotRunning,
    /// The process was started before.
    AlreadyStarted,
    /// An exec of that id exists.
    ExecExists,
    /// The process is running and cannot be deleted.
    ProcessRunning,
    /// The task cannot do this (an exec in a WebAssembly task).
    Unsupported,
    /// The container could not be created, started or exec'd into.
    Container,
    /// The request does not fit the other end (a claim to a monitor, or a
    /// waiting zygote asked anything else).
    WrongPeer,
    /// Something broke in the monitor or zygote itself.
    Internal,
}

/// Things that happen on their own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Exited {
        exec_id: Option<String>,
        pid: i32,
        status: i32,
        exited_at_ns: i64,
    },
    Oom,
}

pub use zygote_runtime::error::chain as error_chain;
pub use zygote_runtime::wire::{pair, send, WireError};

/// Receives one message and its descriptors; the end of the stream is
/// [`WireError::Closed`] (a control socket never ends normally).
pub fn recv<T: serde::de::DeserializeOwned>(fd: BorrowedFd<'_>) -> Result<(T, Vec<OwnedFd>), WireError> {
    zygote_runtime::wire::recv(fd)?.ok_or(WireError::Closed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, AsRawFd};

    #[derive(Debug, thiserror::Error)]
    #[error("open stdout")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn round_trip_with_fds() {
        let (a, b) = pair().unwrap();
        let (x, _y) = pair().unwrap();
        let req = Request::Kill {
            exec_id: Some("e1".into()),
            signal: 15,
            all: false,
        };
        send(a.as_fd(), &req, &[x.as_raw_fd()]).unwrap();
        let (got, fds): (Request, _) = recv(b.as_fd()).unwrap();
        assert!(matches!(
            got,
            Request::Kill {
                signal: 15,
                all: false,
                ..
            }
        ));
        assert_eq!(fds.len(), 1);
        let f = Failure::of(FailureKind::Stdio, &Outer(std::io::Error::other("inner")));
        let reply = Message::Reply {
            reply: Reply::Error { failure: f.clone() },
        };
        send(a.as_fd(), &reply, &[]).unwrap();
        let (got, _): (Message, _) = recv(b.as_fd()).unwrap();
        match got {
            Message::Reply {
                reply: Reply::Error { failure },
            } => {
                assert_eq!(failure, f);
                assert_eq!(failure.chain, ["open stdout", "inner"]);
                assert_eq!(failure.to_string(), "open stdout: inner");
            }
            other => panic!("{other:?}"),
        }
        drop(a);
        assert!(matches!(recv::<Request>(b.as_fd()), Err(WireError::Closed)));
    }
}

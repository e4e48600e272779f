//! containerd's stdio for one process: FIFOs, `file://`, `binary://`, TTY.
//!
//! What runc-v2 does, and what we do:
//! * stdout/stderr FIFO: the process itself gets a write-only descriptor of
//!   the FIFO (no copy; output keeps flowing if the monitor is busy). No
//!   output is ever lost, by construction rather than by retrying: the
//!   monitor holds a read end of its own (the *keeper*, so opening the write
//!   end never blocks and the process never gets `SIGPIPE` once containerd's
//!   reader is gone, like runc-v2's shim), and the process is released from
//!   its exec barrier only once containerd's reader has the FIFO open
//!   ([`ProcessIo::await_readers`]). runc-v2 gets the same guarantee by
//!   blocking Create until its write-side open meets that reader. Without
//!   it, a task that writes and exits at once could finish before
//!   containerd's reader had opened the FIFO, and a client that cancels its
//!   pending open when the task exits (ctr's `Delete` does) would never read
//!   the data.
//! * stdin FIFO: copied by the monitor into a pipe. Like runc-v2, the monitor
//!   also holds a *write* end of the FIFO, so the process sees EOF only after
//!   CloseIO (which drops that end) and containerd's own writer has closed.
//! * `file:///path`: the file (created, appended to) is the process's output.
//! * `binary:///path?k=v`: the logging binary is started with the read ends
//!   of the stdout/stderr pipes as fds 3 and 4 and a readiness pipe as fd 5,
//!   with `CONTAINER_ID`/`CONTAINER_NAMESPACE` set; we wait until it closes
//!   fd 5 before the process is created (runc-v2's contract).
//! * terminal: the container allocates its pty; the monitor copies the
//!   stdin FIFO into the master and the master into the stdout FIFO.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use zygote_runtime::container::Stdio;

use crate::pump::Pump;
use zygote_contract::state::StdioPaths;

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("open {what} {path}")]
    Open {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("pipe for {0}")]
    Pipe(&'static str, #[source] nix::Error),
    #[error("invalid stdio uri {0:?}")]
    BadUri(String),
    #[error("start logging binary {path}")]
    Binary {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("logging binary {0} failed to signal readiness")]
    BinaryNotReady(PathBuf),
}

/// Where one output stream goes.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    None,
    Fifo(PathBuf),
    File(PathBuf),
    Binary { path: PathBuf, args: Vec<String> },
}

fn parse(uri: &str) -> Result<Target, StdioError> {
    if uri.is_empty() {
        return Ok(Target::None);
    }
    if let Some(rest) = uri.strip_prefix("binary://") {
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if !path.starts_with('/') {
            return Err(StdioError::BadUri(uri.into()));
        }
        let mut args = Vec::new();
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            args.push(percent_decode(k));
            if !v.is_empty() {
                args.push(percent_decode(v));
            }
        }
        return Ok(Target::Binary {
            path: PathBuf::from(percent_decode(path)),
            args,
        });
    }
    if let Some(rest) = uri.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(StdioError::BadUri(uri.into()));
        }
        return Ok(Target::File(PathBuf::from(percent_decode(rest))));
    }
    let path = uri.strip_prefix("fifo://").unwrap_or(uri);
    if !path.starts_with('/') {
        return Err(StdioError::BadUri(uri.into()));
    }
    Ok(Target::Fifo(PathBuf::from(path)))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn open_path(what: &'static str, path: &Path, flags: OFlag) -> Result<OwnedFd, StdioError> {
    if flags.contains(OFlag::O_CREAT) {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
    }
    open(path, flags | OFlag::O_CLOEXEC, Mode::from_bits_truncate(0o644))
        .map(|raw| {
            // SAFETY: `open` returned a fresh descriptor that nothing else owns.
            unsafe { crate::sys::own(raw) }
        })
        .map_err(|source| StdioError::Open {
            what,
            path: path.into(),
            source,
        })
}

fn unsafe_own(raw: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: only called on a descriptor `open` just returned.
    unsafe { crate::sys::own(raw) }
}

fn pipe(what: &'static str) -> Result<(OwnedFd, OwnedFd), StdioError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| StdioError::Pipe(what, e))
}

/// How long Start waits for containerd's reader of an output FIFO before it
/// releases the process anyway (the keeper then holds the output for a
/// late reader, up to the pipe's capacity).
const READER_TIMEOUT: Duration = Duration::from_secs(2);

/// The monitor's side of one process's stdio.
#[derive(Default)]
pub struct ProcessIo {
    /// stdin FIFO → process (pipe or pty master).
    pub stdin: Option<Pump>,
    /// pty master → stdout FIFO.
    pub output: Option<Pump>,
    /// pty master, kept for resizes.
    pub master: Option<OwnedFd>,
    /// Our write end of the stdin FIFO, dropped on CloseIO.
    stdin_writer: Option<OwnedFd>,
    /// Descriptors waiting for the pty master (terminal mode).
    tty_stdin: Option<OwnedFd>,
    tty_stdout: Option<OwnedFd>,
    /// The logging binary, reaped by the monitor's sweep.
    pub log_binary: Option<Pid>,
    /// The output FIFOs the process writes to, see [`OutputFifo`].
    outputs: Vec<OutputFifo>,
}

/// An output FIFO and the monitor's own read end of it (the keeper).
///
/// A FIFO's buffer lives as long as any descriptor of it is open, and a
/// writer without any reader gets `SIGPIPE`. The keeper is a reader that
/// never reads: the process's write-only descriptor opens without
/// blocking, and the process can keep writing (until the pipe is full, as
/// under runc-v2) after containerd's reader went away. Being a reader, not
/// a writer, it never holds back the end of file containerd's reader sees
/// when the process exits.
struct OutputFifo {
    path: PathBuf,
    keeper: Option<OwnedFd>,
}

impl OutputFifo {
    /// Opens the keeper, then the write-only descriptor the process gets.
    fn open(what: &'static str, path: PathBuf) -> Result<(Self, OwnedFd), StdioError> {
        let keeper = open_path(what, &path, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
        let writer = open_path(what, &path, OFlag::O_WRONLY)?;
        Ok((
            OutputFifo {
                path,
                keeper: Some(keeper),
            },
            writer,
        ))
    }

    /// Whether a reader other than our keeper has the FIFO open; `None`
    /// when the FIFO cannot be opened at all (gone). The keeper is closed
    /// for the probe and reopened after.
    fn has_other_reader(&mut self) -> Option<bool> {
        self.keeper = None;
        let found = match open(
            &self.path,
            OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(raw) => {
                drop(unsafe_own(raw));
                Some(true)
            }
            Err(nix::Error::ENXIO) => Some(false),
            Err(_) => None,
        };
        self.keeper = open(
            &self.path,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map(unsafe_own)
        .ok();
        found
    }
}

impl ProcessIo {
    /// Wires the container's pty master to the FIFOs (terminal mode).
    pub fn attach_master(&mut self, master: OwnedFd) -> nix::Result<()> {
        if let Some(stdin) = self.tty_stdin.take() {
            self.stdin = Some(Pump::new(stdin, master.try_clone().map_err(|_| nix::Error::EBADF)?)?);
        }
        if let Some(out) = self.tty_stdout.take() {
            self.output = Some(Pump::new(master.try_clone().map_err(|_| nix::Error::EBADF)?, out)?);
        }
        self.master = Some(master);
        Ok(())
    }

    /// Sets the terminal size (ResizePty).
    pub fn resize(&self, width: u32, height: u32) -> nix::Result<()> {
        let Some(m) = &self.master else { return Ok(()) };
        crate::sys::set_winsize(m.as_fd(), width, height)
    }

    /// CloseIO: drop our writer; the process sees EOF once containerd's
    /// writer is closed too and buffered input drained.
    pub fn close_stdin(&mut self) {
        self.stdin_writer = None;
    }

    /// Called before the process leaves its exec barrier: waits (bounded by
    /// [`READER_TIMEOUT`]) until containerd's reader has every output FIFO
    /// open. Returns the FIFOs that had no reader by then.
    pub fn await_readers(&mut self) -> Vec<PathBuf> {
        let deadline = Instant::now() + READER_TIMEOUT;
        let mut pause = Duration::from_micros(100);
        let mut waiting: Vec<&mut OutputFifo> = self.outputs.iter_mut().collect();
        loop {
            // A FIFO that is gone has nobody to wait for.
            waiting.retain_mut(|o| o.has_other_reader() == Some(false));
            if waiting.is_empty() || Instant::now() >= deadline {
                return waiting.iter().map(|o| o.path.clone()).collect();
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }

    /// True when an output FIFO still holds unread bytes and a reader other
    /// than our keeper has it open: its client has not read yet, but will.
    /// Closing the keeper for the probe loses nothing then; without another
    /// reader the exit is about to be reported anyway.
    pub fn reader_waiting(&mut self) -> bool {
        self.outputs.iter_mut().any(|o| {
            let queued = o.keeper.as_ref().map_or(0, |k| crate::sys::unread_bytes(k.as_fd()));
            queued > 0 && o.has_other_reader() == Some(true)
        })
    }

    /// Bytes in the output FIFOs that no reader has taken yet (one more
    /// while a terminal's output is still being copied).
    pub fn unread_output(&self) -> usize {
        let queued: usize = self
            .outputs
            .iter()
            .filter_map(|o| o.keeper.as_ref())
            .map(|k| crate::sys::unread_bytes(k.as_fd()))
            .sum();
        queued + usize::from(self.output.is_some())
    }

    pub fn pumps_mut(&mut self) -> impl Iterator<Item = &mut Pump> {
        self.stdin.iter_mut().chain(self.output.iter_mut())
    }
}

/// Who the stdio belongs to (for `binary://` loggers).
pub struct Owner<'a> {
    pub id: &'a str,
    pub namespace: &'a str,
    pub bundle: &'a Path,
}

/// Opens everything for one process. Returns what the process gets and
/// what the monitor keeps.
pub fn prepare(paths: &StdioPaths, owner: &Owner<'_>) -> Result<(Stdio, ProcessIo), StdioError> {
    let mut io = ProcessIo::default();
    let stdin_fifo = match parse(&paths.stdin)? {
        Target::Fifo(p) => {
            let r = open_path("stdin fifo", &p, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
            io.stdin_writer = Some(open_path("stdin fifo", &p, OFlag::O_WRONLY | OFlag::O_NONBLOCK)?);
            Some(r)
        }
        Target::None => None,
        _ => return Err(StdioError::BadUri(paths.stdin.clone())),
    };
    if paths.terminal {
        io.tty_stdin = stdin_fifo;
        io.tty_stdout = match parse(&paths.stdout)? {
            Target::Fifo(p) => {
                let (fifo, fd) = OutputFifo::open("stdout fifo", p)?;
                io.outputs.push(fifo);
                Some(fd)
            }
            Target::File(p) => Some(open_path(
                "stdout file",
                &p,
                OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT,
            )?),
            Target::None => None,
            Target::Binary { .. } => return Err(StdioError::BadUri(paths.stdout.clone())),
        };
        return Ok((Stdio::Terminal, io));
    }
    let stdin = match stdin_fifo {
        Some(fifo) => {
            let (r, w) = pipe("stdin")?;
            io.stdin = Some(Pump::new(fifo, w).map_err(|e| StdioError::Pipe("stdin", e))?);
            Some(r)
        }
        None => None,
    };
    let (stdout, stderr) = match (parse(&paths.stdout)?, parse(&paths.stderr)?) {
        (Target::Binary { path, args }, _) | (_, Target::Binary { path, args }) => {
            let (out, err, pid) = start_log_binary(&path, &args, owner)?;
            io.log_binary = Some(pid);
            (Some(out), Some(err))
        }
        (o, e) => (open_output("stdout", o, &mut io)?, open_output("stderr", e, &mut io)?),
    };
    Ok((Stdio::Fds { stdin, stdout, stderr }, io))
}

fn open_output(what: &'static str, t: Target, io: &mut ProcessIo) -> Result<Option<OwnedFd>, StdioError> {
    Ok(match t {
        Target::None => None,
        Target::Fifo(p) => {
            let (fifo, fd) = OutputFifo::open(what, p)?;
            io.outputs.push(fifo);
            Some(fd)
        }
        Target::File(p) => Some(open_path(what, &p, OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT)?),
        Target::Binary { .. } => unreachable!("handled by the caller"),
    })
}

/// Starts a `binary://` logger. Called only from the single-threaded
/// monitor, so `pre_exec` may do more than async-signal-safe work; it only
/// calls `dup2` anyway.
fn start_log_binary(path: &Path, args: &[String], owner: &Owner<'_>) -> Result<(OwnedFd, OwnedFd, Pid), StdioError> {
    let (out_r, out_w) = pipe("log stdout")?;
    let (err_r, err_w) = pipe("log stderr")?;
    let (ready_r, ready_w) = pipe("log readiness")?;
    let fds = [out_r.as_raw_fd(), err_r.as_raw_fd(), ready_w.as_raw_fd()];
    let mut cmd = std::process::Command::new(path);
    // runc-v2's environment for loggers: exactly these two variables; cwd
    // is the bundle.
    cmd.args(args)
        .env_clear()
        .env("CONTAINER_ID", owner.id)
        .env("CONTAINER_NAMESPACE", owner.namespace)
        .current_dir(owner.bundle)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let pairs = [(fds[0], 3), (fds[1], 4), (fds[2], 5)];
    // SAFETY: the hook runs in the forked child before exec and only calls
    // dup2 (async-signal-safe); the fds it names stay open in the parent
    // until `spawn` returns.
    unsafe {
        cmd.pre_exec(move || zygote_runtime::sys::dup2_all(&pairs));
    }
    let child = cmd.spawn().map_err(|source| StdioError::Binary {
        path: path.into(),
        source,
    })?;
    drop((out_r, err_r, ready_w));
    // Ready = it wrote to or closed fd 5. Bounded, so a broken logger cannot
    // hang the monitor.
    let mut pfd = [libc::pollfd {
        fd: ready_r.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    if zygote_runtime::sys::poll(&mut pfd, 10_000) == 0 {
        let _ = nix::sys::signal::kill(Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL);
        return Err(StdioError::BinaryNotReady(path.into()));
    }
    Ok((out_w, err_w, Pid::from_raw(child.id() as i32)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    #[test]
    fn parses_containerd_uris() {
        assert_eq!(parse("").unwrap(), Target::None);
        assert_eq!(parse("/run/x/stdout").unwrap(), Target::Fifo("/run/x/stdout".into()));
        assert_eq!(parse("fifo:///a/b").unwrap(), Target::Fifo("/a/b".into()));
        assert_eq!(
            parse("file:///var/log/c%20d.log").unwrap(),
            Target::File("/var/log/c d.log".into())
        );
        assert_eq!(
            parse("binary:///usr/bin/logger?id=abc&debug").unwrap(),
            Target::Binary {
                path: "/usr/bin/logger".into(),
                args: vec!["id".into(), "abc".into(), "debug".into()]
            }
        );
        assert!(parse("relative/path").is_err());
        assert!(parse("file://relative").is_err());
    }

    fn fifo(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o600)).unwrap();
        p
    }

    fn stdout_of(stdio: Stdio) -> OwnedFd {
        let Stdio::Fds { stdout: Some(fd), .. } = stdio else {
            panic!("no stdout")
        };
        fd
    }

    /// A task whose stdout is a FIFO `out` in `dir`: the FIFO, the task's
    /// end and the monitor's side.
    fn stdout_fifo(dir: &Path) -> (PathBuf, OwnedFd, ProcessIo) {
        let out = fifo(dir, "out");
        let paths = StdioPaths {
            stdout: out.to_string_lossy().into_owned(),
            ..Default::default()
        };
        let owner = Owner {
            id: "id",
            namespace: "ns",
            bundle: dir,
        };
        let (stdio, io) = prepare(&paths, &owner).unwrap();
        (out, stdout_of(stdio), io)
    }

    /// A process that writes and exits at once loses nothing: it is released
    /// only once the reader has the FIFO open, and the reader then reads to
    /// the end although the writer is long gone.
    #[test]
    fn output_waits_for_its_reader_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (out, writer, mut io) = stdout_fifo(dir.path());
        let late = out.clone();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            std::fs::read_to_string(late).unwrap()
        });
        assert!(io.await_readers().is_empty(), "the reader was not seen");
        nix::unistd::write(&writer, b"line\n").unwrap();
        drop(writer);
        // The monitor still holds its keeper, which must not hold back EOF.
        assert_eq!(reader.join().unwrap(), "line\n");
        drop(io);
    }

    /// Without a reader, Start goes ahead after the bound, and the output
    /// waits in the FIFO for a reader that comes late.
    #[test]
    fn output_without_a_reader_is_kept_for_a_late_one() {
        let dir = tempfile::tempdir().unwrap();
        let (out, writer, mut io) = stdout_fifo(dir.path());
        assert_eq!(io.await_readers(), vec![out.clone()]);
        nix::unistd::write(&writer, b"early\n").unwrap();
        drop(writer);
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&out)
            .unwrap();
        let mut got = String::new();
        std::io::Read::read_to_string(&mut f, &mut got).unwrap();
        assert_eq!(got, "early\n");
        drop(io);
    }

    #[test]
    fn file_output_is_appended() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/out.log");
        let paths = StdioPaths {
            stdout: format!("file://{}", p.display()),
            ..Default::default()
        };
        let owner = Owner {
            id: "id",
            namespace: "ns",
            bundle: dir.path(),
        };
        let (stdio, _io) = prepare(&paths, &owner).unwrap();
        let Stdio::Fds {
            stdout: Some(fd),
            stdin: None,
            stderr: None,
        } = stdio
        else {
            panic!("unexpected")
        };
        nix::unistd::write(&fd, b"x").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"x");
    }
}

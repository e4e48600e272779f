//! Running host commands with a timeout and captured output: [`Output`] (what
//! a command did), [`Background`] (a child in its own process group whose
//! stdout/stderr are collected by reader threads), [`run_cmd`] and
//! [`run_cmd_stdin`], and shell-style quoting for readable command lines.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What a finished (or killed) command did.
#[derive(Debug, Clone)]
pub struct Output {
    pub cmdline: String,
    /// Exit code; `None` when killed by a signal (see `signal`).
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// The exit code; panics (with the whole output) when there is none.
    pub fn code(&self) -> i32 {
        match self.code {
            Some(c) if !self.timed_out => c,
            _ => panic!("command has no exit code:\n{}", self.describe()),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "$ {}\n  exit code: {:?}  signal: {:?}  timed out: {}  took: {:?}\n  stdout: {:?}\n  stderr: {:?}",
            self.cmdline, self.code, self.signal, self.timed_out, self.duration, self.stdout, self.stderr
        )
    }

    pub fn assert_success(&self) -> &Self {
        if !self.success() {
            panic!("command failed:\n{}", self.describe());
        }
        self
    }

    pub fn assert_failure(&self) -> &Self {
        if self.timed_out || self.code == Some(0) {
            panic!("command was expected to fail:\n{}", self.describe());
        }
        self
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub fn cmdline_of(program: &str, args: &[String]) -> String {
    std::iter::once(program.to_string())
        .chain(args.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A running child process with its output collected in the background.
pub struct Background {
    pub cmdline: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    done_rx: mpsc::Receiver<()>,
    started: Instant,
}

fn spawn_reader<R: Read + Send + 'static>(mut r: R, buf: Arc<Mutex<Vec<u8>>>, done: mpsc::Sender<()>) {
    thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = done.send(());
    });
}

fn lossy(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

impl Background {
    /// Spawn `cmd` in its own process group with piped stdout/stderr; stdin is
    /// piped when `pipe_stdin`, else /dev/null.
    pub fn spawn(mut cmd: Command, pipe_stdin: bool) -> Background {
        let cmdline = {
            let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
            cmdline_of(&cmd.get_program().to_string_lossy(), &args)
        };
        cmd.stdin(if pipe_stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn `{cmdline}`: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, done_rx) = mpsc::channel();
        spawn_reader(child.stdout.take().expect("stdout"), stdout.clone(), tx.clone());
        spawn_reader(child.stderr.take().expect("stderr"), stderr.clone(), tx);
        let stdin = child.stdin.take();
        Background {
            cmdline,
            child: Some(child),
            stdin,
            stdout,
            stderr,
            done_rx,
            started: Instant::now(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn stdout_so_far(&self) -> String {
        lossy(&self.stdout)
    }

    pub fn stderr_so_far(&self) -> String {
        lossy(&self.stderr)
    }

    /// Wait until stdout contains `needle`; false on timeout or early exit.
    pub fn wait_for_stdout(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stdout_so_far().contains(needle) {
                return true;
            }
            if Instant::now() > deadline || !self.running() {
                return self.stdout_so_far().contains(needle);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn write_stdin(&mut self, data: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin was not piped or is closed");
        stdin.write_all(data).expect("write to child stdin");
        stdin.flush().expect("flush child stdin");
    }

    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    fn kill_group(&mut self, sig: i32) {
        if let Some(c) = self.child.as_ref() {
            let pid = c.id() as libc::pid_t;
            // SAFETY: plain kill(2) on the process group we created for this child.
            unsafe {
                libc::kill(-pid, sig);
            }
        }
    }

    /// Send `sig` to the child process only.
    pub fn signal(&mut self, sig: i32) {
        if let Some(c) = self.child.as_ref() {
            // SAFETY: plain kill(2) on our own child's pid (not yet reaped).
            unsafe {
                libc::kill(c.id() as libc::pid_t, sig);
            }
        }
    }

    /// Waits up to `timeout` for the process to exit, without killing it;
    /// true if it has exited (then [`Background::wait`] returns at once).
    pub fn exited_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.as_mut().expect("child").try_wait() {
                Ok(Some(_)) => return true,
                Ok(None) => {}
                Err(e) => panic!("wait for `{}`: {e}", self.cmdline),
            }
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Wait for the process to exit; after `timeout` it (and its process group)
    /// is SIGKILLed and the output is marked timed out.  Note `ctr run` proxies
    /// SIGTERM to the container, so only SIGKILL reliably stops it.
    pub fn wait(mut self, timeout: Duration) -> Output {
        self.stdin.take();
        let deadline = self.started + timeout;
        let mut timed_out = false;
        let status = loop {
            let child = self.child.as_mut().expect("child");
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) => {}
                Err(e) => panic!("wait for `{}`: {e}", self.cmdline),
            }
            if Instant::now() > deadline {
                timed_out = true;
                self.kill_group(libc::SIGKILL);
                break self.child.as_mut().expect("child").wait().expect("wait after kill");
            }
            thread::sleep(Duration::from_millis(5));
        };
        // Collect the rest of the output; don't hang on a grandchild holding the pipes.
        let collect_deadline = Instant::now() + Duration::from_secs(5);
        for _ in 0..2 {
            let left = collect_deadline.saturating_duration_since(Instant::now());
            if self.done_rx.recv_timeout(left).is_err() {
                break;
            }
        }
        self.child.take();
        let duration = self.started.elapsed();
        let out = Output {
            cmdline: self.cmdline.clone(),
            code: status.code(),
            signal: status.signal(),
            timed_out,
            stdout: lossy(&self.stdout),
            stderr: lossy(&self.stderr),
            duration,
        };
        if timed_out {
            eprintln!("TIMEOUT after {timeout:?}:\n{}", out.describe());
        }
        out
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if matches!(c.try_wait(), Ok(None)) {
                let pid = c.id() as libc::pid_t;
                // SAFETY: plain kill(2) on the process group we created for this child.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
            let _ = c.wait();
        }
    }
}

/// Run a command to completion with a timeout.
pub fn run_cmd(cmd: Command, timeout: Duration) -> Output {
    Background::spawn(cmd, false).wait(timeout)
}

/// Run a command with `input` on stdin (closed after writing).
pub fn run_cmd_stdin(cmd: Command, input: &[u8], timeout: Duration) -> Output {
    let mut bg = Background::spawn(cmd, true);
    bg.write_stdin(input);
    bg.close_stdin();
    bg.wait(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("abc"), "abc");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}

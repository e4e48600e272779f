//! The `ctr` runner: [`Ctr`] (`ctr --address <test containerd> -n <ns> ...`
//! with a timeout, plain, in the background or under a pty), the arguments
//! of `ctr run` ([`run_args`]), parsers for what ctr 1.6 prints
//! (`task ls`, the non-zero exit warning, pty output), and [`Container`],
//! which deletes its task and container record when dropped.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::command::{cmdline_of, run_cmd, Background, Output};
use crate::env::env;
use crate::runtime::{unique_id, Runtime};

/// Default timeout of one `ctr` invocation.
pub const CTR_TIMEOUT: Duration = Duration::from_secs(60);

/// One line of `ctr task ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub id: String,
    pub pid: u32,
    pub status: String,
}

/// `ctr --address $ZYGOTE_TEST_ADDRESS -n <namespace> ...` with a timeout.
#[derive(Debug, Clone)]
pub struct Ctr {
    pub namespace: String,
    pub timeout: Duration,
    /// containerd's socket; `None` is the test containerd.
    pub address: Option<String>,
}

impl Default for Ctr {
    fn default() -> Self {
        Self::new()
    }
}

impl Ctr {
    pub fn new() -> Ctr {
        Ctr {
            namespace: env().namespace.clone(),
            timeout: CTR_TIMEOUT,
            address: None,
        }
    }

    /// The same namespace on another containerd (see `PrivateContainerd`).
    pub fn at(address: &str) -> Ctr {
        Ctr {
            address: Some(address.to_string()),
            ..Ctr::new()
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Ctr {
        self.timeout = timeout;
        self
    }

    pub fn full_args<S: AsRef<str>>(&self, args: &[S]) -> Vec<String> {
        let mut v = vec![
            "--address".to_string(),
            self.address.clone().unwrap_or_else(|| env().address.clone()),
            "-n".to_string(),
            self.namespace.clone(),
        ];
        v.extend(args.iter().map(|a| a.as_ref().to_string()));
        v
    }

    pub fn command<S: AsRef<str>>(&self, args: &[S]) -> Command {
        let mut c = Command::new("ctr");
        c.args(self.full_args(args));
        c
    }

    pub fn run<S: AsRef<str>>(&self, args: &[S]) -> Output {
        run_cmd(self.command(args), self.timeout)
    }

    pub fn spawn<S: AsRef<str>>(&self, args: &[S]) -> Background {
        Background::spawn(self.command(args), false)
    }

    pub fn spawn_with_stdin<S: AsRef<str>>(&self, args: &[S]) -> Background {
        Background::spawn(self.command(args), true)
    }

    /// Run ctr under a pseudo terminal (`script -qec '<ctr ...>' /dev/null`),
    /// for `ctr run -t`.  `script -e` exits with ctr's exit code.  The output
    /// has CRLF line ends (see [`normalize_tty`]).
    pub fn run_tty<S: AsRef<str>>(&self, args: &[S]) -> Output {
        run_cmd(self.tty_command("", args), self.timeout)
    }

    /// The `script` command line of [`Ctr::run_tty`]: `setup` (shell commands,
    /// e.g. `stty rows 33 cols 77`), when not empty, runs on the pty first and
    /// must succeed; then the shell `exec`s ctr, which so stays the pty's
    /// foreground process (it gets `SIGWINCH` when the pty is resized).
    pub fn tty_command<S: AsRef<str>>(&self, setup: &str, args: &[S]) -> Command {
        let ctr = cmdline_of("ctr", &self.full_args(args));
        let line = if setup.is_empty() {
            ctr
        } else {
            format!("{setup} && exec {ctr}")
        };
        let mut c = Command::new("script");
        c.args(["-q", "-e", "-c", &line, "/dev/null"]);
        c
    }

    /// `ctr run --rm --runtime <rt> <image> <id> <cmd...>` plus `extra` flags.
    pub fn run_rm(&self, rt: Runtime, id: &str, extra: &[&str], cmd: &[&str]) -> Output {
        self.run(&run_args(rt, id, true, extra, cmd))
    }

    /// `ctr run --rm --runtime <rt> --config <bundle's config.json> <id>`:
    /// the task runs the bundle's spec as written.
    pub fn run_config(&self, rt: Runtime, bundle: &crate::ConfigBundle, id: &str) -> Output {
        self.run(&[
            "run",
            "--rm",
            "--runtime",
            rt.name(),
            "--config",
            &bundle.config_str(),
            id,
        ])
    }

    /// `ctr run -d ...`: starts a detached task and asserts success.
    pub fn run_detached(&self, rt: Runtime, id: &str, extra: &[&str], cmd: &[&str]) -> Output {
        let out = self.run(&run_args(rt, id, false, &[&["-d"], extra].concat(), cmd));
        out.assert_success();
        out
    }

    pub fn tasks(&self) -> Vec<TaskInfo> {
        let out = self.run(&["task", "ls"]);
        out.assert_success();
        parse_task_ls(&out.stdout)
    }

    pub fn task(&self, id: &str) -> Option<TaskInfo> {
        self.tasks().into_iter().find(|t| t.id == id)
    }

    /// Poll `ctr task ls` until the task has `status`; panics after `timeout`.
    pub fn wait_status(&self, id: &str, status: &str, timeout: Duration) -> TaskInfo {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            let out = self.run(&["task", "ls"]);
            if out.success() {
                last = parse_task_ls(&out.stdout).into_iter().find(|t| t.id == id);
                if let Some(t) = &last {
                    if t.status == status {
                        return t.clone();
                    }
                }
            }
            if Instant::now() > deadline {
                panic!("task {id} did not reach status {status} within {timeout:?}; last seen: {last:?}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn task_pid(&self, id: &str) -> u32 {
        self.task(id)
            .unwrap_or_else(|| panic!("task {id} not found in `ctr task ls`"))
            .pid
    }

    /// `ctr task delete <id>` and the exit status it reports.  ctr 1.6 prints
    /// nothing for status 0 and a warning `task <id> exit with non-zero exit
    /// code N` on stderr otherwise (ctr itself still exits 0).
    pub fn delete_task_exit_status(&self, id: &str) -> Result<i32, String> {
        let out = self.run(&["task", "delete", id]);
        if !out.success() {
            return Err(out.describe());
        }
        Ok(parse_exit_warning(&out.stderr).unwrap_or(0))
    }

    /// Best effort: resume, kill (all processes), delete task and container.
    pub fn cleanup(&self, id: &str) {
        let quick = self.clone().with_timeout(Duration::from_secs(20));
        if quick.task(id).is_some() {
            let _ = quick.run(&["task", "resume", id]);
            let _ = quick.run(&["task", "kill", "-a", "-s", "SIGKILL", id]);
            for _ in 0..50 {
                let out = quick.run(&["task", "delete", "-f", id]);
                if out.success() || quick.task(id).is_none() {
                    break;
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
        let out = quick.run(&["container", "ls", "-q"]);
        if out.stdout.lines().any(|l| l.trim() == id) {
            let _ = quick.run(&["container", "delete", id]);
        }
    }
}

/// Arguments of `ctr run` for the test image.
pub fn run_args(rt: Runtime, id: &str, rm: bool, extra: &[&str], cmd: &[&str]) -> Vec<String> {
    let mut v = vec!["run".to_string()];
    if rm {
        v.push("--rm".into());
    }
    v.push("--runtime".into());
    v.push(rt.name().into());
    v.extend(extra.iter().map(|s| s.to_string()));
    v.push(env().image.clone());
    v.push(id.to_string());
    v.extend(cmd.iter().map(|s| s.to_string()));
    v
}

pub fn parse_task_ls(stdout: &str) -> Vec<TaskInfo> {
    stdout
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 3 {
                return None;
            }
            Some(TaskInfo {
                id: f[0].to_string(),
                pid: f[1].parse().unwrap_or(0),
                status: f[2].to_string(),
            })
        })
        .collect()
}

/// Parses ctr 1.6's "task X exit with non-zero exit code N" warning.
pub fn parse_exit_warning(stderr: &str) -> Option<i32> {
    let idx = stderr.find("exit with non-zero exit code ")?;
    let rest = &stderr[idx + "exit with non-zero exit code ".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Strip what the pty adds: `\r`, NULs, and the echoed `^@`/`^D` that
/// `script` produces when its own stdin is at EOF (/dev/null).
pub fn normalize_tty(s: &str) -> String {
    s.replace(['\r', '\0'], "").replace("^@", "").replace("^D", "")
}

/// Removes the container (task and record) when dropped, whatever happened.
pub struct Container {
    pub id: String,
    pub runtime: Runtime,
    ctr: Ctr,
}

impl Container {
    pub fn new(test: &str, rt: Runtime) -> Container {
        Container {
            id: unique_id(test, rt),
            runtime: rt,
            ctr: Ctr::new(),
        }
    }

    /// One with the given id (removed on drop like the others).
    pub fn with_id(id: String, rt: Runtime) -> Container {
        Container {
            id,
            runtime: rt,
            ctr: Ctr::new(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.ctr.cleanup(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_task_ls() {
        let t = parse_task_ls("TASK      PID     STATUS    \nholder    7667    RUNNING\nd1        0       STOPPED\n");
        assert_eq!(t.len(), 2);
        assert_eq!(
            t[0],
            TaskInfo {
                id: "holder".into(),
                pid: 7667,
                status: "RUNNING".into()
            }
        );
        assert_eq!(t[1].status, "STOPPED");
    }

    #[test]
    fn parses_exit_warning() {
        let s = "time=\"2026-11-24T21:51:36Z\" level=warning msg=\"task d1 exit with non-zero exit code 7\"\n";
        assert_eq!(parse_exit_warning(s), Some(7));
        assert_eq!(parse_exit_warning(""), None);
    }

    #[test]
    fn normalizes_tty_output() {
        assert_eq!(normalize_tty("\0/dev/pts/0\r\n"), "/dev/pts/0\n");
        assert_eq!(normalize_tty("^@/dev/pts/0\r\n"), "/dev/pts/0\n");
    }
}

//! Shared helpers for the zygote integration tests.
//!
//! The tests drive a REAL private containerd through `ctr` (as a subprocess)
//! and run every scenario under runc (`io.containerd.runc.v2`) and zygote
//! (`io.containerd.zygote.v1`), comparing what is observed.  They are meant
//! to be run by `hack/test.sh`, which starts the containerd, imports the
//! busybox image and exports:
//!
//! | variable                     | meaning                                          |
//! |------------------------------|--------------------------------------------------|
//! | `ZYGOTE_TEST_CONTAINERD_DIR` | the private containerd's directory               |
//! | `ZYGOTE_TEST_ADDRESS`        | its grpc socket                                  |
//! | `ZYGOTE_TEST_IMAGE`          | image reference (`docker.io/zygote/busybox:latest`) |
//! | `ZYGOTE_TEST_ROOTFS`         | unpacked copy of the image's rootfs (for `--config` runs) |
//! | `ZYGOTE_TEST_NAMESPACE`      | containerd namespace holding the image (test.sh: `zygote-test-<random>`; default `zygote-test`) |
//! | `ZYGOTE_STATE_DIR`           | zygote daemon state root                          |
//! | `ZYGOTE_HACK_DIR`            | `<repo>/hack` (for `containerd.sh restart`)       |
//! | `ZYGOTE_TEST_RUNTIMES`       | `runc,zygote` (default), `runc` or `zygote`       |
//!
//! A missing variable is a test FAILURE (panic), never a silent skip.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Default timeout of one `ctr` invocation.
pub const CTR_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------

/// What `hack/test.sh` exported.
#[derive(Debug, Clone)]
pub struct TestEnv {
    pub containerd_dir: PathBuf,
    pub address: String,
    pub image: String,
    pub rootfs: PathBuf,
    pub namespace: String,
    pub state_dir: PathBuf,
    pub hack_dir: PathBuf,
}

const HOW_TO_RUN: &str =
    "the integration tests need the private containerd started by hack/test.sh; \
run e.g. `hack/test.sh` or `hack/test.sh -p zygote-integration-tests --test basic` \
(ZYGOTE_TEST_RUNTIMES=runc to exercise runc only)";

/// The test environment; panics (test failure) when a variable is missing.
pub fn env() -> &'static TestEnv {
    static ENV: OnceLock<TestEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut missing = Vec::new();
        let mut get = |name: &str| match std::env::var(name) {
            Ok(v) if !v.is_empty() => v,
            _ => {
                missing.push(name.to_string());
                String::new()
            }
        };
        let containerd_dir = get("ZYGOTE_TEST_CONTAINERD_DIR");
        let address = get("ZYGOTE_TEST_ADDRESS");
        let image = get("ZYGOTE_TEST_IMAGE");
        let rootfs = get("ZYGOTE_TEST_ROOTFS");
        let state_dir = get("ZYGOTE_STATE_DIR");
        let hack_dir = get("ZYGOTE_HACK_DIR");
        if !missing.is_empty() {
            panic!("missing environment variable(s) {missing:?}: {HOW_TO_RUN}");
        }
        let namespace = std::env::var("ZYGOTE_TEST_NAMESPACE")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "zygote-test".to_string());
        let env = TestEnv {
            containerd_dir: PathBuf::from(containerd_dir),
            address,
            image,
            rootfs: PathBuf::from(rootfs),
            namespace,
            state_dir: PathBuf::from(state_dir),
            hack_dir: PathBuf::from(hack_dir),
        };
        if !Path::new(&env.address).exists() {
            panic!(
                "ZYGOTE_TEST_ADDRESS={} does not exist (is the private containerd running?): {HOW_TO_RUN}",
                env.address
            );
        }
        if !env.rootfs.join("bin/busybox").exists() {
            panic!("ZYGOTE_TEST_ROOTFS={} has no bin/busybox: {HOW_TO_RUN}", env.rootfs.display());
        }
        env
    })
}

// ---------------------------------------------------------------------------
// Runtimes
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Runtime {
    Runc,
    Zygote,
}

impl Runtime {
    pub const ALL: [Runtime; 2] = [Runtime::Runc, Runtime::Zygote];

    /// containerd runtime type, as given to `ctr run --runtime`.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Runc => "io.containerd.runc.v2",
            Runtime::Zygote => "io.containerd.zygote.v1",
        }
    }

    /// Short name used in ids and `ZYGOTE_TEST_RUNTIMES`.
    pub fn short(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Zygote => "zygote",
        }
    }
}

/// Runtimes selected by `ZYGOTE_TEST_RUNTIMES` (comma separated, default both).
pub fn selected_runtimes() -> Vec<Runtime> {
    let raw = std::env::var("ZYGOTE_TEST_RUNTIMES").unwrap_or_default();
    if raw.trim().is_empty() {
        return Runtime::ALL.to_vec();
    }
    let mut out = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let rt = match part {
            "runc" | "io.containerd.runc.v2" => Runtime::Runc,
            "zygote" | "io.containerd.zygote.v1" => Runtime::Zygote,
            other => panic!("ZYGOTE_TEST_RUNTIMES: unknown runtime {other:?} (use runc, zygote)"),
        };
        if !out.contains(&rt) {
            out.push(rt);
        }
    }
    out.sort();
    out
}

pub fn runtime_selected(rt: Runtime) -> bool {
    selected_runtimes().contains(&rt)
}

/// For tests that only make sense for one runtime: returns false (and says so
/// loudly) when `ZYGOTE_TEST_RUNTIMES` explicitly excludes it.
pub fn require_runtime(rt: Runtime, test: &str) -> bool {
    if runtime_selected(rt) {
        true
    } else {
        eprintln!(
            "NOTICE: {test}: not run: it needs runtime {} which ZYGOTE_TEST_RUNTIMES={:?} excludes",
            rt.short(),
            std::env::var("ZYGOTE_TEST_RUNTIMES").unwrap_or_default()
        );
        false
    }
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = e.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic>".to_string()
    }
}

/// Run `f` under each selected runtime (runc first), catching failures so the
/// report shows every runtime's outcome.
pub fn run_each<T, F>(scenario: &str, f: F) -> Vec<(Runtime, Result<T, String>)>
where
    T: Debug,
    F: Fn(Runtime) -> T,
{
    let mut results = Vec::new();
    for rt in selected_runtimes() {
        eprintln!(
            "--- {scenario}: running under {} ({})",
            rt.short(),
            rt.name()
        );
        let r = catch_unwind(AssertUnwindSafe(|| f(rt))).map_err(|e| panic_message(e.as_ref()));
        match &r {
            Ok(v) => eprintln!("--- {scenario}: {} observed {v:?}", rt.short()),
            Err(m) => eprintln!("--- {scenario}: {} FAILED: {m}", rt.short()),
        }
        results.push((rt, r));
    }
    results
}

fn report<T: Debug>(results: &[(Runtime, Result<T, String>)]) -> String {
    results
        .iter()
        .map(|(rt, r)| match r {
            Ok(v) => format!("  {:>6}: {v:?}", rt.short()),
            Err(m) => format!("  {:>6}: FAILED: {m}", rt.short()),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn check_results<T: PartialEq + Debug + Clone>(
    scenario: &str,
    expected: Option<&T>,
    results: Vec<(Runtime, Result<T, String>)>,
) -> T {
    let summary = report(&results);
    if results.iter().any(|(_, r)| r.is_err()) {
        panic!("{scenario}: a runtime failed:\n{summary}");
    }
    let values: Vec<T> = results.into_iter().map(|(_, r)| r.unwrap()).collect();
    if let Some(e) = expected {
        if values.iter().any(|v| v != e) {
            panic!("{scenario}: result differs from expected {e:?}:\n{summary}");
        }
    }
    if values.windows(2).any(|w| w[0] != w[1]) {
        panic!("{scenario}: runtimes disagree:\n{summary}");
    }
    values.into_iter().next().expect("no runtime selected")
}

/// Run the scenario under each runtime and assert all observed results are equal.
pub fn both<T, F>(scenario: &str, f: F) -> T
where
    T: PartialEq + Debug + Clone,
    F: Fn(Runtime) -> T,
{
    check_results(scenario, None, run_each(scenario, f))
}

/// Like [`both`], and the (common) result must also equal `expected`.
pub fn both_expect<T, F>(scenario: &str, expected: T, f: F) -> T
where
    T: PartialEq + Debug + Clone,
    F: Fn(Runtime) -> T,
{
    check_results(scenario, Some(&expected), run_each(scenario, f))
}

/// Serialises tests of one test binary that must not overlap (containerd
/// restarts, global measurements).  Poison-tolerant.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------
// Ids
// ---------------------------------------------------------------------------

/// A container id unique in this test run: `zt-<test>-<runtime>-<pid>-<n>`.
/// The fixed-width counter makes sure no id is a substring of another.
pub fn unique_id(test: &str, rt: Runtime) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let mut t: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while t.contains("--") {
        t = t.replace("--", "-");
    }
    let t = t.trim_matches('-');
    let t = if t.len() > 24 { &t[..24] } else { t };
    let t = t.trim_end_matches('-');
    format!("zt-{t}-{}-{:x}-{n:05}", rt.short(), std::process::id())
}

// ---------------------------------------------------------------------------
// Running processes
// ---------------------------------------------------------------------------

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
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
    {
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

fn spawn_reader<R: Read + Send + 'static>(
    mut r: R,
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Sender<()>,
) {
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
            let args: Vec<String> = cmd
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            cmdline_of(&cmd.get_program().to_string_lossy(), &args)
        };
        cmd.stdin(if pipe_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn `{cmdline}`: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, done_rx) = mpsc::channel();
        spawn_reader(
            child.stdout.take().expect("stdout"),
            stdout.clone(),
            tx.clone(),
        );
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
        let stdin = self
            .stdin
            .as_mut()
            .expect("stdin was not piped or is closed");
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
                break self
                    .child
                    .as_mut()
                    .expect("child")
                    .wait()
                    .expect("wait after kill");
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

// ---------------------------------------------------------------------------
// ctr
// ---------------------------------------------------------------------------

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
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Ctr {
        self.timeout = timeout;
        self
    }

    pub fn full_args<S: AsRef<str>>(&self, args: &[S]) -> Vec<String> {
        let mut v = vec![
            "--address".to_string(),
            env().address.clone(),
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
        let line = cmdline_of("ctr", &self.full_args(args));
        let mut c = Command::new("script");
        c.args(["-q", "-e", "-c", &line, "/dev/null"]);
        run_cmd(c, self.timeout)
    }

    /// `ctr run --rm --runtime <rt> <image> <id> <cmd...>` plus `extra` flags.
    pub fn run_rm(&self, rt: Runtime, id: &str, extra: &[&str], cmd: &[&str]) -> Output {
        self.run(&run_args(rt, id, true, extra, cmd))
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
    /// nothing for status 0 and a warning "task <id> exit with non-zero exit
    /// code N" on stderr otherwise (ctr itself still exits 0).
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
    s.replace(['\r', '\0'], "")
        .replace("^@", "")
        .replace("^D", "")
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

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.ctr.cleanup(&self.id);
    }
}

// ---------------------------------------------------------------------------
// Custom OCI specs (`ctr run --config`)
// ---------------------------------------------------------------------------

/// `ctr oci spec` (the default spec ctr would use), parsed.
pub fn default_spec() -> serde_json::Value {
    static SPEC: OnceLock<serde_json::Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let out = Ctr::new().run(&["oci", "spec"]);
        out.assert_success();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("ctr oci spec: bad JSON: {e}\n{}", out.describe()))
    })
    .clone()
}

/// A config.json plus a private copy of the busybox rootfs, for
/// `ctr run --config <path> <id>`; removed on drop.
pub struct ConfigBundle {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub rootfs: PathBuf,
    pub spec: serde_json::Value,
}

impl ConfigBundle {
    /// A spec for `id` running `args` as root in a writable copy of the
    /// image's rootfs, with the cgroup ctr would use (`/<ns>/<id>`); `edit`
    /// may change anything afterwards.
    pub fn new(id: &str, args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> ConfigBundle {
        let e = env();
        let dir = e.containerd_dir.join("test-bundles").join(id);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create bundle dir");
        let rootfs = dir.join("rootfs");
        let out = run_cmd(
            {
                let mut c = Command::new("cp");
                c.arg("-a").arg(&e.rootfs).arg(&rootfs);
                c
            },
            Duration::from_secs(60),
        );
        out.assert_success();
        let mut spec = default_spec();
        spec["root"] = serde_json::json!({ "path": rootfs.to_string_lossy(), "readonly": false });
        spec["process"]["args"] = serde_json::json!(args);
        spec["process"]["env"] = serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ]);
        spec["process"]["cwd"] = serde_json::json!("/");
        spec["process"]["terminal"] = serde_json::json!(false);
        spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{}/{}", e.namespace, id));
        edit(&mut spec);
        let config = dir.join("config.json");
        fs::write(
            &config,
            serde_json::to_vec_pretty(&spec).expect("serialize spec"),
        )
        .expect("write config.json");
        ConfigBundle {
            dir,
            config,
            rootfs,
            spec,
        }
    }

    pub fn config_str(&self) -> String {
        self.config.to_string_lossy().into_owned()
    }
}

impl Drop for ConfigBundle {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------
// containerd events
// ---------------------------------------------------------------------------

/// One line of `ctr events`: `<date> <time> <tz> <tz> <namespace> <topic> <json>`.
#[derive(Debug, Clone)]
pub struct Event {
    pub namespace: String,
    pub topic: String,
    pub payload: serde_json::Value,
}

pub fn parse_event_line(line: &str) -> Option<Event> {
    let f: Vec<&str> = line.splitn(7, ' ').collect();
    if f.len() < 6 || !f[5].starts_with('/') {
        return None;
    }
    let payload = f
        .get(6)
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or(serde_json::Value::Null);
    Some(Event {
        namespace: f[4].to_string(),
        topic: f[5].to_string(),
        payload,
    })
}

/// `ctr events` running in the background for the duration of a test.
pub struct Events {
    bg: Background,
}

impl Events {
    /// Subscribes and waits a moment so that following actions are seen.
    pub fn start() -> Events {
        let mut bg = Ctr::new().spawn(&["events"]);
        thread::sleep(Duration::from_millis(500));
        if !bg.running() {
            panic!("`ctr events` exited early: stderr {:?}", bg.stderr_so_far());
        }
        Events { bg }
    }

    pub fn all(&self) -> Vec<Event> {
        self.bg
            .stdout_so_far()
            .lines()
            .filter_map(parse_event_line)
            .collect()
    }

    /// Events of the test namespace concerning container `id`.
    pub fn for_container(&self, id: &str) -> Vec<Event> {
        let ns = &env().namespace;
        self.all()
            .into_iter()
            .filter(|e| {
                &e.namespace == ns
                    && (e.payload.get("container_id").and_then(|v| v.as_str()) == Some(id)
                        || e.payload.get("id").and_then(|v| v.as_str()) == Some(id))
            })
            .collect()
    }

    pub fn wait_for(&self, id: &str, topic: &str, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self
                .for_container(id)
                .into_iter()
                .find(|e| e.topic == topic)
            {
                return Some(e);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `exit_status` of the init process' `/tasks/exit` event (absent in
    /// the JSON means 0).
    pub fn exit_status(&self, id: &str, timeout: Duration) -> Option<i64> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.for_container(id).into_iter().find(|e| {
                e.topic == "/tasks/exit" && e.payload.get("id").and_then(|v| v.as_str()) == Some(id)
            });
            if let Some(e) = found {
                return Some(
                    e.payload
                        .get("exit_status")
                        .and_then(|v| v.as_i64())
                        .unwrap_or(0),
                );
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

// ---------------------------------------------------------------------------
// Host processes and /proc
// ---------------------------------------------------------------------------

/// True if the process exists and is not a zombie (pid 1 of this VM reaps
/// orphans lazily, so `kill -0` is not enough).
pub fn proc_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // The state follows the last ')' (comm may contain spaces/parens).
            let state = s
                .rfind(')')
                .and_then(|i| s[i + 1..].split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

pub fn wait_proc_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while proc_alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    true
}

pub fn send_signal(pid: u32, sig: i32) -> bool {
    // SAFETY: plain kill(2); pid is a positive process id.
    unsafe { libc::kill(pid as libc::pid_t, sig) == 0 }
}

/// A `sleep` on the host whose namespaces a container can join
/// (`--with-ns network:/proc/<pid>/ns/net`); killed on drop.
pub struct HostProcess {
    child: Child,
}

impl HostProcess {
    pub fn sleeper() -> HostProcess {
        let child = Command::new("sleep")
            .arg("600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        HostProcess { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn ns_path(&self, ns: &str) -> String {
        format!("/proc/{}/ns/{ns}", self.pid())
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `readlink /proc/<pid>/ns/<ns>` e.g. `net:[4026531833]`.
pub fn ns_link(pid: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{ns}: {e}"))
}

/// Interface names from a `/proc/net/dev` text.
pub fn net_dev_interfaces(text: &str) -> BTreeSet<String> {
    text.lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|s| s.trim().to_string())
        .collect()
}

/// Threads, open fds and RSS of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStats {
    pub threads: u64,
    pub fds: u64,
    pub rss_kib: u64,
}

pub fn proc_stats(pid: u32) -> Option<ProcStats> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l[name.len()..].split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    let threads = field("Threads:")?;
    let rss_kib = field("VmRSS:").unwrap_or(0);
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(ProcStats {
        threads,
        fds,
        rss_kib,
    })
}

/// Live zygote daemons: (pid file, pid) from `$ZYGOTE_STATE_DIR/*/daemon.pid`.
pub fn zygote_daemons() -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(&env().state_dir) else {
        return out;
    };
    for entry in rd.flatten() {
        let pid_file = entry.path().join("daemon.pid");
        if let Ok(s) = fs::read_to_string(&pid_file) {
            if let Ok(pid) = s.trim().parse::<u32>() {
                if proc_alive(pid) {
                    out.push((pid_file, pid));
                }
            }
        }
    }
    out
}

/// All processes (not zombies, not this test process) whose command line
/// contains `needle`: "pid: cmdline".
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for entry in rd.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if raw.is_empty() {
            continue;
        }
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmd.contains(needle) && proc_alive(pid) {
            out.push(format!("{pid}: {}", cmd.trim_end()));
        }
    }
    out
}

/// Count processes whose executable name starts with `prefix` and whose
/// command line mentions `needle`.
pub fn count_processes(exe_prefix: &str, needle: &str) -> usize {
    let Ok(rd) = fs::read_dir("/proc") else {
        return 0;
    };
    rd.flatten()
        .filter(|e| {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                return false;
            };
            let exe = fs::read_link(format!("/proc/{pid}/exe")).ok();
            let name = exe
                .as_ref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned());
            let cmd = fs::read(format!("/proc/{pid}/cmdline"))
                .map(|r| String::from_utf8_lossy(&r).replace('\0', " "))
                .unwrap_or_default();
            name.is_some_and(|n| n.starts_with(exe_prefix))
                && cmd.contains(needle)
                && proc_alive(pid)
        })
        .count()
}

// ---------------------------------------------------------------------------
// Leftovers
// ---------------------------------------------------------------------------

fn mountinfo_sources() -> Vec<(String, String)> {
    // Our own mount namespace plus those of the zygote daemon(s), if different.
    let mut sources = vec![("self".to_string(), "/proc/self/mountinfo".to_string())];
    let my_ns = fs::read_link("/proc/self/ns/mnt").ok();
    for (_, pid) in zygote_daemons() {
        let ns = fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
        if ns.is_some() && ns != my_ns {
            sources.push((
                format!("zygote daemon {pid}"),
                format!("/proc/{pid}/mountinfo"),
            ));
        }
    }
    sources
}

/// Mounts (mountinfo lines) mentioning `id`.
pub fn mounts_mentioning(id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (who, path) in mountinfo_sources() {
        if let Ok(text) = fs::read_to_string(&path) {
            out.extend(
                text.lines()
                    .filter(|l| l.contains(id))
                    .map(|l| format!("[{who}] {l}")),
            );
        }
    }
    out
}

/// Number of mounts that belong to the test setup: in our mount namespace
/// those under the private containerd's dir, the zygote state dir or
/// /run/containerd (other containerds on a dev machine are not counted), plus
/// all mounts of zygote daemons living in another mount namespace.
pub fn mount_count() -> usize {
    let e = env();
    let needles = [
        e.containerd_dir.to_string_lossy().into_owned(),
        e.state_dir.to_string_lossy().into_owned(),
        "/run/containerd".to_string(),
    ];
    let mut n = 0;
    for (who, path) in mountinfo_sources() {
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        n += if who == "self" {
            text.lines()
                .filter(|l| needles.iter().any(|x| l.contains(x.as_str())))
                .count()
        } else {
            text.lines().count()
        };
    }
    n
}

/// Number of FIFOs in ctr's fifo dir (`/run/containerd/fifo/*/`) named after
/// test containers (`zt-...`).
pub fn test_fifo_count() -> usize {
    let mut out = Vec::new();
    special_files(Path::new("/run/containerd/fifo"), "zt-", 3, &mut out);
    out.len()
}

fn walk_dirs(dir: &Path, depth: usize, f: &mut dyn FnMut(&Path)) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for entry in rd.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() && !ft.is_symlink() {
            let p = entry.path();
            f(&p);
            if depth > 1 {
                walk_dirs(&p, depth - 1, f);
            }
        }
    }
}

/// Roots of the cgroup hierarchies (v1 controllers and/or the v2 tree).
pub fn cgroup_roots() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.controllers").exists() {
        return vec![base.to_path_buf()];
    }
    let mut v: Vec<PathBuf> = fs::read_dir(base)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir() && !p.is_symlink())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// cgroup directories (up to depth 6 below each hierarchy root) whose name contains `id`.
pub fn cgroups_named(id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for root in cgroup_roots() {
        walk_dirs(&root, 6, &mut |p| {
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(id))
            {
                out.push(p.to_string_lossy().into_owned());
            }
        });
    }
    out
}

/// Number of cgroup directories below `/<namespace>` in every hierarchy
/// (containers started by ctr live in `/<namespace>/<id>`).
pub fn cgroup_count() -> usize {
    let ns = &env().namespace;
    let mut n = 0;
    for root in cgroup_roots() {
        let d = root.join(ns);
        if d.is_dir() {
            n += 1;
            walk_dirs(&d, 8, &mut |_| n += 1);
        }
    }
    n
}

/// FIFOs and sockets whose name contains `needle` under `dir` (up to `depth`).
fn special_files(dir: &Path, needle: &str, depth: usize, out: &mut Vec<String>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for entry in rd.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        let p = entry.path();
        let name_hit = entry.file_name().to_string_lossy().contains(needle);
        if name_hit && (ft.is_fifo() || ft.is_socket()) {
            out.push(format!(
                "{} ({})",
                p.display(),
                if ft.is_fifo() { "fifo" } else { "socket" }
            ));
        } else if ft.is_dir() && !ft.is_symlink() && depth > 1 {
            special_files(&p, needle, depth - 1, out);
        }
    }
}

/// FIFOs / sockets named after `id` in ctr's fifo dir, containerd's state dir
/// and the zygote state dir.
pub fn fifos_named(id: &str) -> Vec<String> {
    let e = env();
    let mut out = Vec::new();
    special_files(Path::new("/run/containerd/fifo"), id, 3, &mut out);
    special_files(&e.containerd_dir.join("state"), id, 8, &mut out);
    special_files(&e.state_dir, id, 6, &mut out);
    out
}

/// Per-task directories the runtimes keep: zygote's `$ZYGOTE_STATE_DIR/*/tasks/<id>`,
/// containerd's bundle and runc's state dir.
pub fn state_dirs_for(id: &str) -> Vec<String> {
    let e = env();
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(&e.state_dir) {
        for entry in rd.flatten() {
            let p = entry.path().join("tasks").join(id);
            if p.exists() {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    for p in [
        e.containerd_dir
            .join("state/io.containerd.runtime.v2.task")
            .join(&e.namespace)
            .join(id),
        PathBuf::from("/run/containerd/runc")
            .join(&e.namespace)
            .join(id),
    ] {
        if p.exists() {
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out
}

/// Everything left on the node for a container id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Leftovers {
    pub mounts: Vec<String>,
    pub cgroups: Vec<String>,
    pub processes: Vec<String>,
    pub fifos_and_sockets: Vec<String>,
    pub state_dirs: Vec<String>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
            && self.cgroups.is_empty()
            && self.processes.is_empty()
            && self.fifos_and_sockets.is_empty()
            && self.state_dirs.is_empty()
    }
}

pub fn leftovers(id: &str) -> Leftovers {
    Leftovers {
        mounts: mounts_mentioning(id),
        cgroups: cgroups_named(id),
        processes: processes_mentioning(id),
        fifos_and_sockets: fifos_named(id),
        state_dirs: state_dirs_for(id),
    }
}

/// Polls for up to 10 s (teardown is partly asynchronous), then panics with
/// whatever is left for `id`.
pub fn assert_no_leftovers(id: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let l = leftovers(id);
        if l.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("leftovers for {id}: {l:#?}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------
// hack/containerd.sh
// ---------------------------------------------------------------------------

/// `hack/containerd.sh <action> <dir>` for the test containerd (e.g. "restart").
pub fn containerd_sh(action: &str) -> Output {
    let e = env();
    let mut c = Command::new("bash");
    c.arg(e.hack_dir.join("containerd.sh"))
        .arg(action)
        .arg(&e.containerd_dir);
    c.env("ZYGOTE_STATE_DIR", &e.state_dir);
    run_cmd(c, Duration::from_secs(90))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_task_ls() {
        let t = parse_task_ls(
            "TASK      PID     STATUS    \nholder    7667    RUNNING\nd1        0       STOPPED\n",
        );
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
    fn parses_events() {
        let l = r#"2026-11-24 21:51:43.193682814 +0000 UTC zt /tasks/oom {"container_id":"oom1"}"#;
        let e = parse_event_line(l).unwrap();
        assert_eq!(e.namespace, "zt");
        assert_eq!(e.topic, "/tasks/oom");
        assert_eq!(e.payload["container_id"], "oom1");
        let l = r#"2026-11-24 21:51:35.293460754 +0000 UTC zt /tasks/exit {"container_id":"d1","id":"d1","pid":7974,"exit_status":7}"#;
        assert_eq!(parse_event_line(l).unwrap().payload["exit_status"], 7);
    }

    #[test]
    fn ids_are_unique_and_valid() {
        let a = unique_id("Some_test name!!", Runtime::Runc);
        let b = unique_id("Some_test name!!", Runtime::Runc);
        assert_ne!(a, b);
        assert!(!a.contains(&b) && !b.contains(&a));
        assert!(a.starts_with("zt-some-test-name-runc-"), "{a}");
        assert!(a.len() <= 76);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("abc"), "abc");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(normalize_tty("\0/dev/pts/0\r\n"), "/dev/pts/0\n");
        assert_eq!(normalize_tty("^@/dev/pts/0\r\n"), "/dev/pts/0\n");
    }

    #[test]
    fn net_dev() {
        let t = "Inter-|   Receive\n face |bytes\n    lo:    3193 29\n  eth0: 1 2\n";
        let s = net_dev_interfaces(t);
        assert_eq!(
            s.into_iter().collect::<Vec<_>>(),
            vec!["eth0".to_string(), "lo".to_string()]
        );
    }
}

//! Test harness for the container-init integration tests.
//!
//! `create_container` must run in a single-threaded process, but the Rust
//! test harness is multi-threaded. Each test therefore re-executes the test
//! binary with only itself selected (`support/rerun.rs`, the harness shared
//! by every test of this crate); in that fresh process the test body forks once more (the fork has exactly
//! one thread), becomes a child subreaper and plays the monitor. The result
//! travels back as one JSON line on stdout. The outer test then checks that
//! no mount is left under its temporary directory.
//!
//! The tests need root; without it they fail (never skip).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, pipe2, ForkResult, Pid};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use zygote_runtime::cgroups::Cgroup;
use zygote_runtime::container::{create_container, ContainerConfig, Pending, Stdio};

#[path = "../support/rerun.rs"]
pub mod rerun;

const MARKER: &str = "ZYGOTE-OUTCOME:";

/// What a scenario observed, sent from the monitor process to the test.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Outcome {
    /// Exit code, or 128 + signal number.
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    /// `create_container` / `exec_process` error text.
    pub create_error: Option<String>,
    /// `Pending::start` error text.
    pub start_error: Option<String>,
    /// Scenario-specific observations.
    pub notes: BTreeMap<String, String>,
    /// Processes still in the container's cgroup after everything was reaped.
    pub leftover_procs: Vec<i32>,
}

/// Run `body` as the single-threaded monitor of a fresh process and return
/// its outcome (see the module docs). `name` must be the test's name.
pub fn isolated(name: &str, body: fn(&Path) -> Outcome) -> Outcome {
    if rerun::is_child(name) {
        run_as_monitor(body)
    }
    rerun::require_root("the container-init tests create namespaces, mounts and cgroups");
    assert!(
        Path::new("/bin/busybox").exists(),
        "/bin/busybox is missing: apt-get install -y busybox-static"
    );
    let tmp = tempfile::Builder::new()
        .prefix("zygote-rt-")
        .tempdir()
        .expect("create temp dir");
    let out = rerun::rerun(name, name, tmp.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let outcome = stdout
        .lines()
        .find_map(|l| l.find(MARKER).map(|i| &l[i + MARKER.len()..]))
        .map(|json| serde_json::from_str::<Outcome>(json).expect("decode outcome"))
        .unwrap_or_else(|| {
            panic!(
                "child test process gave no outcome ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
                out.status
            )
        });
    assert!(
        out.status.success(),
        "child test process failed: {}\n{stderr}",
        out.status
    );
    assert_no_mounts_under(tmp.path());
    outcome
}

/// Fail if any mount point lies under `dir` in our mount namespace.
pub fn assert_no_mounts_under(dir: &Path) {
    let dir = std::fs::canonicalize(dir).unwrap();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let leaked: Vec<&str> = info
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|mp| Path::new(mp).starts_with(&dir)))
        .collect();
    assert!(leaked.is_empty(), "mounts left under {}: {leaked:#?}", dir.display());
}

fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn write_all_fd1(bytes: &[u8]) {
    let stdout = std::io::stdout();
    let fd = stdout.as_fd();
    let mut off = 0;
    while off < bytes.len() {
        match nix::unistd::write(fd, &bytes[off..]) {
            Ok(n) => off += n,
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

fn run_as_monitor(body: fn(&Path) -> Outcome) -> ! {
    let tmp = rerun::child_tmp();
    // SAFETY: the only other thread of this fresh process is libtest's main
    // thread blocked joining us; it holds no locks the child could need.
    match unsafe { fork() }.expect("fork monitor") {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(|| {
                assert_eq!(thread_count(), 1, "monitor must be single-threaded");
                nix::sys::prctl::set_child_subreaper(true).expect("subreaper");
                body(&tmp)
            });
            let (line, code) = match code {
                Ok(outcome) => (format!("\n{MARKER}{}\n", serde_json::to_string(&outcome).unwrap()), 0),
                Err(_) => (String::from("scenario panicked\n"), 1),
            };
            write_all_fd1(line.as_bytes());
            // SAFETY: _exit never returns; in a forked child the parent's
            // atexit handlers must not run.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            let status = waitpid(child, None).expect("wait monitor");
            let ok = matches!(status, WaitStatus::Exited(_, 0));
            std::process::exit(if ok { 0 } else { 1 })
        }
    }
}

/// Build `<tmp>/rootfs` with a static busybox and the applets the tests use.
pub fn busybox_rootfs(tmp: &Path) -> PathBuf {
    let rootfs = tmp.join("rootfs");
    if rootfs.join("bin/busybox").exists() {
        return rootfs;
    }
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "cat", "echo", "id", "hostname", "ls", "sleep", "true", "false", "tty", "test", "touch", "readlink",
        "pwd", "env", "wc", "mkdir", "ulimit", "grep",
    ] {
        symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    rootfs
}

/// `lchown -R uid:gid path`.
pub fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

/// A spec like `ctr run`'s default, running `args`.
pub fn default_spec(rootfs: &Path, id: &str, args: &[&str]) -> Spec {
    let caps = serde_json::json!([
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE"
    ]);
    let v = serde_json::json!({
        "ociVersion": "1.1.0",
        "root": {"path": rootfs, "readonly": false},
        "hostname": "zygote-test",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
        ],
        "linux": {
            "cgroupsPath": format!("/zygote-rt-test-{id}"),
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    serde_json::from_value(v).expect("valid spec")
}

/// A container under test: bundle in `tmp`, busybox rootfs, its cgroup.
pub struct TestContainer {
    pub cfg: ContainerConfig,
    pub cgroup: Cgroup,
}

impl TestContainer {
    pub fn new(tmp: &Path, id: &str, args: &[&str], customize: impl FnOnce(&mut Spec)) -> Self {
        let rootfs = busybox_rootfs(tmp);
        let id = format!("{id}-{}", std::process::id());
        let mut spec = default_spec(&rootfs, &id, args);
        customize(&mut spec);
        zygote_runtime::spec::validate(&spec).expect("spec passes validation");
        let cgroup = Cgroup::from_spec(&spec, &id).expect("cgroup handle");
        cgroup.create(None).expect("create cgroup");
        TestContainer {
            cfg: ContainerConfig {
                id,
                bundle: tmp.to_path_buf(),
                rootfs,
                security: zygote_runtime::security::Security::from_spec(&spec).expect("compile seccomp"),
                spec,
                guest: None,
            },
            cgroup,
        }
    }

    /// Create, start, collect stdout/stderr and the exit status.
    pub fn run(&self) -> Outcome {
        let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let stdio = Stdio::Fds {
            stdin: None,
            stdout: Some(out_w),
            stderr: Some(err_w),
        };
        let mut outcome = Outcome::default();
        let t0 = std::time::Instant::now();
        let created = create_container(&self.cfg, &self.cgroup, stdio);
        outcome
            .notes
            .insert("create_us".into(), t0.elapsed().as_micros().to_string());
        match created {
            Err(e) => {
                outcome.create_error = Some(e.to_string());
                outcome.status = -1;
            }
            Ok(pending) => {
                let pid = pending.pid;
                let t1 = std::time::Instant::now();
                if let Err(e) = pending.start() {
                    outcome.start_error = Some(e.to_string());
                }
                outcome
                    .notes
                    .insert("start_us".into(), t1.elapsed().as_micros().to_string());
                let (o, e) = read_two(out_r, err_r);
                outcome.stdout = o;
                outcome.stderr = e;
                outcome.status = wait_status(pid);
            }
        }
        self.finish(&mut outcome);
        outcome
    }

    /// Like [`TestContainer::run`], served by a warm zygote born with the
    /// `pre` namespaces before the task was known (the spec is written to
    /// the bundle first: the zygote child loads it from there).
    pub fn run_warm(&self, pre: nix::sched::CloneFlags) -> Outcome {
        self.cfg
            .spec
            .save(self.cfg.bundle.join("config.json"))
            .expect("write config.json");
        let mut outcome = Outcome::default();
        let zygote = match zygote_runtime::zygote::Zygote::spawn(pre, None) {
            Ok(z) => z,
            Err(e) => {
                outcome.create_error = Some(format!("spawn zygote: {e}"));
                self.finish(&mut outcome);
                return outcome;
            }
        };
        // The zygote exists before the task: give it time to reach its wait.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let stdio = Stdio::Fds {
            stdin: None,
            stdout: Some(out_w),
            stderr: Some(err_w),
        };
        let task = zygote_runtime::zygote::ZygoteTask {
            id: self.cfg.id.clone(),
            bundle: self.cfg.bundle.clone(),
            rootfs: self.cfg.rootfs.clone(),
            terminal: false,
            security: self.cfg.security.clone(),
            guest: None,
        };
        let t0 = std::time::Instant::now();
        let served = zygote.serve(&task, stdio, |pid| self.cgroup.add_task(pid).map_err(Into::into));
        outcome
            .notes
            .insert("create_us".into(), t0.elapsed().as_micros().to_string());
        match served {
            Err(e) => {
                outcome.create_error = Some(e.to_string());
                outcome.status = -1;
            }
            Ok(pending) => {
                outcome
                    .notes
                    .insert("security_us".into(), pending.security_us.to_string());
                let pid = pending.pid;
                if let Err(e) = pending.start() {
                    outcome.start_error = Some(e.to_string());
                }
                let (o, e) = read_two(out_r, err_r);
                outcome.stdout = o;
                outcome.stderr = e;
                outcome.status = wait_status(pid);
            }
        }
        self.finish(&mut outcome);
        outcome
    }

    /// Reap stragglers, record leftover cgroup members, remove the cgroup.
    pub fn finish(&self, outcome: &mut Outcome) {
        reap_exited();
        outcome.leftover_procs = self.cgroup.procs().unwrap_or_default();
        self.cgroup.remove().expect("remove cgroup");
    }
}

impl Drop for TestContainer {
    /// Best effort when a scenario panicked before `finish`.
    fn drop(&mut self) {
        let _ = self.cgroup.kill_all(nix::sys::signal::Signal::SIGKILL);
        reap_exited();
        let _ = self.cgroup.remove();
    }
}

/// Exit code of `pid` (128 + signal when killed).
pub fn wait_status(pid: i32) -> i32 {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(e) => panic!("waitpid {pid}: {e}"),
        }
    }
}

/// Reap every child that has already exited (we are a subreaper), without
/// waiting for live ones (another container of the test may still run).
pub fn reap_exited() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) | Ok(WaitStatus::StillAlive) => return,
            Err(Errno::EINTR) | Ok(_) => {}
            Err(e) => panic!("waitpid(-1): {e}"),
        }
    }
}

/// Read two pipes to EOF concurrently (poll), returning their text.
pub fn read_two(a: OwnedFd, b: OwnedFd) -> (String, String) {
    let mut bufs = [Vec::new(), Vec::new()];
    let mut open = [Some(std::fs::File::from(a)), Some(std::fs::File::from(b))];
    while open.iter().any(Option::is_some) {
        let mut fds = Vec::new();
        let mut idx = Vec::new();
        for (i, f) in open.iter().enumerate() {
            if let Some(f) = f {
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                idx.push(i);
            }
        }
        let n = poll(&mut fds, PollTimeout::from(10_000u16)).expect("poll");
        assert!(n > 0, "timed out reading container output");
        let ready: Vec<usize> = fds
            .iter()
            .zip(&idx)
            .filter(|(p, _)| p.revents().is_some_and(|r| !r.is_empty()))
            .map(|(_, i)| *i)
            .collect();
        drop(fds);
        for i in ready {
            let mut chunk = [0u8; 4096];
            let f = open[i].as_mut().unwrap();
            match f.read(&mut chunk) {
                Ok(0) | Err(_) => open[i] = None,
                Ok(n) => bufs[i].extend_from_slice(&chunk[..n]),
            }
        }
    }
    let [a, b] = bufs;
    (
        String::from_utf8_lossy(&a).into_owned(),
        String::from_utf8_lossy(&b).into_owned(),
    )
}

/// Read a pty master until the slave side is gone (EIO).
pub fn read_pty(master: OwnedFd) -> String {
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut pfd = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut pfd, PollTimeout::from(10_000u16)).expect("poll pty");
        assert!(n > 0, "timed out reading the pty");
        match f.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read pty: {e}"),
        }
    }
    let _ = f.as_raw_fd();
    String::from_utf8_lossy(&out).into_owned()
}

/// Keep the type in use for scenarios that start by hand.
pub fn start(pending: Pending) -> Option<String> {
    pending.start().err().map(|e| e.to_string())
}

//! Tests against the real kernel. They need root and fail (not skip)
//! without it. They create `/zygote-test-<pid>-<n>` cgroups and remove them.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use oci_spec::runtime::LinuxResources;
use serde_json::json;

use super::*;

fn require_root() {
    crate::test_rerun::require_root("this test creates real cgroups");
}

fn unique_parent() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "/zygote-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn resources(v: serde_json::Value) -> LinuxResources {
    serde_json::from_value(v).unwrap()
}

fn sleeper() -> Child {
    Command::new("sleep").arg("300").spawn().expect("spawn sleep")
}

/// Removes the cgroup and its test parent even if an assertion fails.
struct Guard<'a>(&'a Cgroup, Vec<std::path::PathBuf>);
impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill_all(Signal::SIGKILL);
        let _ = self.0.remove();
        for p in &self.1 {
            let _ = std::fs::remove_dir(p);
        }
    }
}

fn parents(cg: &Cgroup) -> Vec<std::path::PathBuf> {
    cg.dirs()
        .iter()
        .filter_map(|d| d.parent().map(Path::to_path_buf))
        .collect()
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "child did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_for_exec(pid: i32, comm: &str) {
    let start = Instant::now();
    while std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        != comm
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "pid {pid} never became {comm}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn host_v1() -> Cgroup {
    let parent = unique_parent();
    let cg = Cgroup::new(Layout::detect().unwrap(), &format!("{parent}/ctr"), "ctr").unwrap();
    assert_eq!(
        cg.version(),
        CgroupVersion::V1,
        "these tests target the v1 host hierarchies"
    );
    cg
}

#[test]
fn v1_lifecycle_with_real_processes() {
    require_root();
    let cg = host_v1();
    let _g = Guard(&cg, parents(&cg));
    let res = resources(json!({
        "memory": {"limit": 67108864, "swap": 67108864, "swappiness": 0},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 32}
    }));
    cg.create(Some(&res)).unwrap();
    let mem = cg.controller_dir("memory").unwrap();
    assert_eq!(fs::read_u64(&mem.join("memory.limit_in_bytes")).unwrap(), 67108864);
    assert_eq!(
        fs::read(&cg.controller_dir("pids").unwrap().join("pids.max"))
            .unwrap()
            .trim(),
        "32"
    );
    assert_eq!(
        fs::read(&cg.controller_dir("cpuset").unwrap().join("cpuset.cpus"))
            .unwrap()
            .trim(),
        "0"
    );
    assert_eq!(
        fs::read(&cg.controller_dir("cpu").unwrap().join("cpu.cfs_quota_us"))
            .unwrap()
            .trim(),
        "50000"
    );

    // Growing memory and memory+swap needs memsw written first; shrinking
    // needs the opposite order. Both must be accepted by the kernel.
    cg.update(&resources(json!({"memory": {"limit": 134217728, "swap": 268435456}})))
        .unwrap();
    assert_eq!(
        fs::read_u64(&mem.join("memory.memsw.limit_in_bytes")).unwrap(),
        268435456
    );
    cg.update(&resources(json!({"memory": {"limit": 33554432, "swap": 33554432}})))
        .unwrap();
    assert_eq!(fs::read_u64(&mem.join("memory.limit_in_bytes")).unwrap(), 33554432);

    // Joins first, then execs, so its memory is charged to the new cgroup
    // (v1 does not move existing charges).
    let mut child = Command::new("sh")
        .args(["-c", "read x; exec sleep 300"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    cg.add_task(pid).unwrap();
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(cg.procs().unwrap(), vec![pid]);
    wait_for_exec(pid, "sleep");
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(own.contains(&format!("memory:{}", cg.path().display())), "{own}");

    let stats = cg.stats().unwrap();
    assert_eq!(stats.pids.current, 1);
    assert_eq!(stats.pids.limit, Some(32));
    assert!(stats.memory.usage > 0);
    assert_eq!(stats.memory.limit, Some(33554432));
    assert!(!stats.cpu.per_cpu_usage_ns.is_empty());
    assert!(stats.memory.stat.contains_key("total_rss"));

    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());

    cg.kill_all(Signal::SIGKILL).unwrap();
    assert_eq!(wait_exit(&mut child).signal(), Some(libc::SIGKILL));
    assert!(cg.procs().unwrap().is_empty());
    assert_eq!(cg.oom_kill_count().unwrap(), 0);

    cg.remove().unwrap();
    for dir in cg.dirs() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    for p in parents(&cg) {
        assert!(!p.exists(), "intermediate {} left behind", p.display());
    }
    cg.remove().unwrap();
}

#[test]
fn v1_rejected_value_names_file_and_value() {
    require_root();
    let cg = host_v1();
    let _g = Guard(&cg, parents(&cg));
    let err = cg
        .create(Some(&resources(json!({"cpu": {"cpus": "999"}}))))
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("write \"999\" to "), "{msg}");
    assert!(msg.contains("cpuset.cpus"), "{msg}");
    // Failed creation cleaned up after itself.
    for dir in cg.dirs() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn v1_remove_keeps_shared_parent_and_removes_nested_children() {
    require_root();
    let parent = unique_parent();
    let layout = Layout::detect().unwrap();
    let a = Cgroup::new(layout.clone(), &format!("{parent}/a"), "a").unwrap();
    let b = Cgroup::new(layout, &format!("{parent}/b"), "b").unwrap();
    let _ga = Guard(&a, vec![]);
    let _gb = Guard(&b, parents(&b));
    a.create(None).unwrap();
    b.create(None).unwrap();
    // A child cgroup made "inside the container" with a process in it.
    let nested = a.controller_dir("pids").unwrap().join("inner");
    std::fs::create_dir(&nested).unwrap();
    let mut child = sleeper();
    fs::write(&nested.join("cgroup.procs"), &child.id().to_string()).unwrap();
    assert_eq!(a.procs().unwrap(), vec![child.id() as i32]);
    a.kill_all(Signal::SIGKILL).unwrap();
    wait_exit(&mut child);
    a.remove().unwrap();
    assert!(!nested.exists());
    // `a` created the parent, but `b` still lives there: it must stay.
    for p in parents(&a) {
        assert!(p.exists(), "shared parent {} was removed", p.display());
    }
    b.remove().unwrap();
}

#[test]
fn v1_oom_kill_is_counted_and_signalled() {
    require_root();
    let cg = host_v1();
    let _g = Guard(&cg, parents(&cg));
    cg.create(Some(&resources(
        json!({"memory": {"limit": 16777216, "swap": 16777216}}),
    )))
    .unwrap();
    let efd = cg.oom_event_fd().unwrap().expect("v1 gives an eventfd");
    // The shell waits for a line on stdin, so it is in the cgroup before it
    // allocates.
    let mut child = Command::new("sh")
        .args(["-c", "read x; exec dd if=/dev/zero of=/dev/null bs=128M count=1"])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    cg.add_task(child.id() as i32).unwrap();
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let status = wait_exit(&mut child);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    let mut fds = [PollFd::new(efd.as_fd(), PollFlags::POLLIN)];
    let n = poll(&mut fds, PollTimeout::from(5000u16)).unwrap();
    assert_eq!(n, 1, "oom eventfd not signalled");
    assert!(cg.oom_kill_count().unwrap() >= 1);
    let stats = cg.stats().unwrap();
    // With memory+swap equal to memory, the memsw counter trips first, so
    // memory.failcnt may stay 0; the peak shows the limit was reached.
    assert!(stats.memory.max_usage >= 16_000_000, "{stats:?}");
}

#[test]
fn v2_lifecycle_on_the_unified_mount() {
    require_root();
    // The hybrid host's cgroup2 mount has no controllers, but the core
    // interface (procs, freeze, kill, cpu.stat) is fully there.
    let root = Path::new("/sys/fs/cgroup/unified");
    assert!(
        root.join("cgroup.controllers").exists(),
        "no cgroup2 mount at {}",
        root.display()
    );
    let parent = unique_parent();
    let cg = Cgroup::with_root(root, &format!("{parent}/ctr"), "ctr").unwrap();
    assert_eq!(cg.version(), CgroupVersion::V2);
    let _g = Guard(&cg, parents(&cg));
    cg.create(None).unwrap();
    let mut child = sleeper();
    let pid = child.id() as i32;
    cg.add_task(pid).unwrap();
    assert_eq!(cg.procs().unwrap(), vec![pid]);

    cg.freeze().unwrap();
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());

    let stats = cg.stats().unwrap();
    assert_eq!(stats.pids.current, 0, "no pids controller on this mount");

    // Requesting a limit for a controller the mount lacks is reported.
    let err = cg
        .update(&resources(json!({"pids": {"limit": 5}})))
        .unwrap_err()
        .to_string();
    assert_eq!(err, format!("controller pids is not available for cgroup {parent}/ctr"));
    assert!(cg.oom_event_fd().unwrap().is_none());

    cg.kill_all(Signal::SIGKILL).unwrap(); // via cgroup.kill
    assert_eq!(wait_exit(&mut child).signal(), Some(libc::SIGKILL));
    cg.remove().unwrap();
    assert!(!root.join(parent.trim_start_matches('/')).exists());
}

#[test]
fn v2_kill_with_sigterm_signals_every_process() {
    require_root();
    let root = Path::new("/sys/fs/cgroup/unified");
    let cg = Cgroup::with_root(root, &format!("{}/ctr", unique_parent()), "ctr").unwrap();
    let _g = Guard(&cg, parents(&cg));
    cg.create(None).unwrap();
    let mut a = sleeper();
    let mut b = sleeper();
    cg.add_task(a.id() as i32).unwrap();
    cg.add_task(b.id() as i32).unwrap();
    cg.kill_all(Signal::SIGTERM).unwrap();
    assert_eq!(wait_exit(&mut a).signal(), Some(libc::SIGTERM));
    assert_eq!(wait_exit(&mut b).signal(), Some(libc::SIGTERM));
    cg.remove().unwrap();
}

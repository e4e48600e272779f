//! Mount propagation of the container's root (`linux.rootfsPropagation`),
//! zygote side by side with runc, on the rootfs containerd mounts itself
//! (an overlay at `<bundle>/rootfs`, which is what made `pivot_root` fail).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use zygote_integration_tests::*;

/// A host directory that is a shared mount of its own (bind onto itself,
/// `--make-shared`), so mounts made below it in a container with a
/// bidirectional (`rshared`) bind come back to the host; unmounted
/// (recursively) and removed on drop.
struct SharedDir {
    dir: PathBuf,
}

impl SharedDir {
    fn new(id: &str) -> SharedDir {
        let dir = env().containerd_dir.join("test-shared").join(id);
        std::fs::create_dir_all(dir.join("sub")).expect("create shared dir");
        let d = dir.to_string_lossy().into_owned();
        sh(&["mount", "--bind", &d, &d]).assert_success();
        sh(&["mount", "--make-shared", &d]).assert_success();
        SharedDir { dir }
    }
}

impl Drop for SharedDir {
    fn drop(&mut self) {
        let _ = sh(&["umount", "-R", "-l", &self.dir.to_string_lossy()]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sh(args: &[&str]) -> Output {
    let mut c = Command::new(args[0]);
    c.args(&args[1..]);
    run_cmd(c, Duration::from_secs(30))
}

/// The propagation of the topmost mount at `mount_point` in a mountinfo
/// text: its optional fields without the peer group numbers ("shared",
/// "master", both joined by `+`, or "private").
fn propagation_of(mountinfo: &str, mount_point: &str) -> String {
    let Some(line) = mountinfo
        .lines()
        .rev()
        .find(|l| l.split_whitespace().nth(4) == Some(mount_point))
    else {
        return format!("<no mount at {mount_point}>");
    };
    let kinds: Vec<&str> = line
        .split_whitespace()
        .skip(6)
        .take_while(|f| *f != "-")
        .filter_map(|f| f.split(':').next())
        .collect();
    if kinds.is_empty() {
        "private".to_string()
    } else {
        kinds.join("+")
    }
}

fn host_has_mount(mount_point: &Path, source: &str) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    mountinfo.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let src = f.iter().skip_while(|x| **x != "-").nth(2);
        f.get(4) == Some(&&*mount_point.to_string_lossy()) && src == Some(&source)
    })
}

/// The propagation runc gives `/` under `rootfsPropagation = "rshared"`:
/// runc 1.2 applies it again after `pivot_root` ("shared"), runc 1.1
/// (Debian 12's 1.1.5) leaves the new root private. zygote does what runc
/// 1.2 does.
fn runc_root_under_rshared() -> &'static str {
    let out = sh(&["runc", "--version"]);
    out.assert_success();
    let version = out.stdout.split_whitespace().nth(2).unwrap_or_default().to_string();
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) >= (1, 2) {
        "shared"
    } else {
        "private"
    }
}

/// Regression (issue 11: `pivot_root into <bundle>/rootfs: EINVAL` with
/// `rootfsPropagation = "rshared"`, what containerd's CRI asks for a pod
/// with a Bidirectional mount): the task runs, a tmpfs the container mounts
/// below an `rshared` bind of a shared host directory shows up on the host,
/// as under runc; `/` in the container is shared (runc 1.2's behaviour; the
/// installed runc's is checked for runc).
#[test]
fn rootfs_propagation_rshared() {
    #[derive(Debug, Clone, PartialEq)]
    struct Obs {
        code: i32,
        bind: String,
        seen_on_host: bool,
    }
    let results = run_each("--rootfs-propagation rshared", |rt| {
        let c = Container::new("rshared", rt);
        let host = SharedDir::new(c.id());
        let source = format!("made-in-{}", c.id());
        let bind = format!("type=bind,src={},dst=/shared,options=rbind:rshared", host.dir.display());
        let script = format!("mount -t tmpfs -o size=1m {source} /shared/sub && cat /proc/self/mountinfo");
        let out = Ctr::new().run_rm(
            rt,
            c.id(),
            &[
                "--rootfs-propagation",
                "rshared",
                "--cap-add",
                "CAP_SYS_ADMIN",
                "--mount",
                &bind,
            ],
            &["sh", "-c", &script],
        );
        eprintln!("{}", out.describe());
        let obs = Obs {
            code: out.code(),
            bind: propagation_of(&out.stdout, "/shared"),
            seen_on_host: host_has_mount(&host.dir.join("sub"), &source),
        };
        (obs, propagation_of(&out.stdout, "/"))
    });
    let expected = Obs {
        code: 0,
        bind: "shared".into(),
        seen_on_host: true,
    };
    for (rt, r) in &results {
        let (obs, root) = r.as_ref().unwrap_or_else(|e| panic!("{}: {e}", rt.short()));
        assert_eq!(obs, &expected, "{}", rt.short());
        let want = if *rt == Runtime::Runc {
            runc_root_under_rshared()
        } else {
            "shared"
        };
        assert_eq!(root, want, "{}: propagation of / under rshared", rt.short());
    }
}

/// The default (`rootfsPropagation` unset, runc's `rslave`) and `rprivate`
/// give `/` the same propagation under both runtimes.
#[test]
fn rootfs_propagation_default_and_rprivate() {
    let root_of = |rt: Runtime, name: &str, extra: &[&str]| {
        let c = Container::new(name, rt);
        let out = Ctr::new().run_rm(rt, c.id(), extra, &["cat", "/proc/self/mountinfo"]);
        (out.code(), propagation_of(&out.stdout, "/"))
    };
    both("rootfs propagation default / rprivate / rslave", |rt| {
        (
            root_of(rt, "propdefault", &[]),
            root_of(rt, "proprprivate", &["--rootfs-propagation", "rprivate"]),
            root_of(rt, "proprslave", &["--rootfs-propagation", "rslave"]),
        )
    });
}

//! The device program on the real kernel: a hybrid host's cgroup2 mount
//! (`/sys/fs/cgroup/unified`, no controllers) takes `BPF_CGROUP_DEVICE`
//! programs like a pure v2 host, enforced on top of the v1 devices
//! controller (which allows everything for these test cgroups); on a pure
//! v2 host (the VM) the tests use `/sys/fs/cgroup`. A `sh`
//! helper is moved into the cgroup and then opens device nodes. Needs root;
//! fails (not skips) without it. Cgroups are `/zygote-test-dev-<pid>-<n>`.

use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use oci_spec::runtime::LinuxResources;
use serde_json::json;

use super::program::Rule;
use super::{attach_rules, attached};
use crate::cgroups::{Cgroup, CgroupVersion};

/// The hybrid host's cgroup2 mount, or the root of a pure v2 host.
fn unified_root() -> &'static Path {
    let hybrid = Path::new("/sys/fs/cgroup/unified");
    if hybrid.join("cgroup.controllers").exists() {
        hybrid
    } else {
        Path::new("/sys/fs/cgroup")
    }
}

fn unified_cgroup() -> (Cgroup, PathBuf) {
    crate::test_rerun::require_root("this test attaches BPF programs to real cgroups");
    static N: AtomicU32 = AtomicU32::new(0);
    let parent = format!(
        "/zygote-test-dev-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let root = unified_root();
    let cg = Cgroup::with_root(root, &format!("{parent}/ctr"), "ctr").unwrap();
    assert_eq!(
        cg.version(),
        CgroupVersion::V2,
        "{} is not a cgroup2 mount",
        root.display()
    );
    (cg, root.join(parent.trim_start_matches('/')))
}

/// Removes the cgroup (its program goes with it) and the test parent.
struct Guard<'a>(&'a Cgroup, PathBuf);
impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill_all(nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.remove();
        let _ = std::fs::remove_dir(&self.1);
    }
}

/// Device nodes made outside the cgroup: `kmsg` (c 1:11) and `mem` (c 1:1).
fn nodes() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, minor) in [("kmsg", 11), ("mem", 1)] {
        let p = dir.path().join(name);
        mknod(&p, SFlag::S_IFCHR, Mode::from_bits_truncate(0o600), makedev(1, minor)).unwrap();
        assert!(std::fs::metadata(&p).unwrap().file_type().is_char_device());
    }
    dir
}

/// Runs a shell inside `cg` that opens each `r:<path>` for reading,
/// `w:<path>` for writing (nothing is read or written) and `m:<path>`
/// makes a char device 1:1 there; returns one `<case> ok` or
/// `<case> <error>` line per case.
fn probe(cg: &Cgroup, cases: &[String]) -> Vec<String> {
    const SCRIPT: &str = r#"read go
for c in "$@"; do
  m=${c%%:*}; p=${c#*:}
  case $m in
    r) err=$(true 2>&1 <"$p") ;;
    w) err=$(true 2>&1 >>"$p") ;;
    m) err=$(mknod "$p" c 1 1 2>&1) ;;
  esac && echo "$c ok" || echo "$c $err"
done"#;
    let mut child = Command::new("sh")
        .args(["-c", SCRIPT, "sh"])
        .args(cases)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    // Moved in before it opens anything: it waits for the line below.
    cg.add_task(child.id() as i32).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn case(mode: &str, path: &Path) -> String {
    format!("{mode}:{}", path.display())
}

const EPERM: &str = "Operation not permitted";

fn assert_result(lines: &[String], case: &str, ok: bool) {
    let line = lines.iter().find(|l| l.starts_with(&format!("{case} "))).expect(case);
    if ok {
        assert_eq!(line, &format!("{case} ok"), "{lines:#?}");
    } else {
        assert!(line.ends_with(EPERM), "{case} should be denied: {lines:#?}");
    }
}

#[test]
fn v2_create_and_update_enforce_device_rules() {
    let (cg, parent) = unified_cgroup();
    let _g = Guard(&cg, parent);
    let tmp = nodes();
    let (kmsg, mem) = (tmp.path().join("kmsg"), tmp.path().join("mem"));
    let res: LinuxResources = serde_json::from_value(json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "r"}
    ]}))
    .unwrap();
    cg.create(Some(&res)).unwrap();
    let dir = cg.dirs().remove(0);
    assert_eq!(attached(&dir).unwrap().len(), 1);

    let mut cases: Vec<String> = [
        "r:/dev/null",
        "w:/dev/null",
        "r:/dev/zero",
        "w:/dev/full",
        "r:/dev/urandom",
    ]
    .map(String::from)
    .to_vec();
    cases.extend([case("r", &kmsg), case("w", &kmsg), case("r", &mem)]);
    cases.push(case("m", &tmp.path().join("new")));
    let lines = probe(&cg, &cases);
    for c in &cases[..5] {
        assert_result(&lines, c, true);
    }
    assert_result(&lines, &case("r", &kmsg), true);
    assert_result(&lines, &case("w", &kmsg), false);
    assert_result(&lines, &case("r", &mem), false);
    assert_result(&lines, &case("m", &tmp.path().join("new")), true); // c *:* m

    // Update replaces the program: kmsg is now write-only.
    let update: LinuxResources = serde_json::from_value(json!({"devices": [
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "w"}
    ]}))
    .unwrap();
    let before = attached(&dir).unwrap();
    cg.update(&update).unwrap();
    let after = attached(&dir).unwrap();
    assert_eq!(after.len(), 1, "the old program is detached");
    assert_ne!(after, before);
    let lines = probe(&cg, &[case("r", &kmsg), case("w", &kmsg), "r:/dev/null".into()]);
    assert_result(&lines, &case("r", &kmsg), false);
    assert_result(&lines, &case("w", &kmsg), true);
    assert_result(&lines, "r:/dev/null", true);

    // An update without device rules leaves the program alone.
    cg.update(&LinuxResources::default()).unwrap();
    assert_eq!(attached(&dir).unwrap(), after);
}

#[test]
fn v2_rule_without_defaults_denies_dev_null() {
    let (cg, parent) = unified_cgroup();
    let _g = Guard(&cg, parent);
    cg.create(None).unwrap();
    let dir = cg.dirs().remove(0);
    // create(None) already attached the defaults-only program.
    assert_eq!(attached(&dir).unwrap().len(), 1);
    let rules = [
        Rule::parse_allow("a *:* rwm").unwrap(),
        Rule {
            allow: false,
            ..Rule::parse_allow("c 1:3 rw").unwrap()
        },
    ];
    attach_rules(&dir, &rules).unwrap();
    assert_eq!(attached(&dir).unwrap().len(), 1);
    let lines = probe(&cg, &["r:/dev/null".into(), "w:/dev/null".into(), "r:/dev/zero".into()]);
    assert_result(&lines, "r:/dev/null", false);
    assert_result(&lines, "w:/dev/null", false);
    assert_result(&lines, "r:/dev/zero", true);
}

//! The monitor on fixture files: recent shares from `total`, cgroup
//! files, the periodic path (no triggers), refused triggers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{arm, Sampler, Sources};
use crate::pressure::Pressure;

fn write(dir: &Path, name: &str, some_avg10: f64, some_total: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let text = format!(
        "some avg10={some_avg10:.2} avg60=0.00 avg300=0.00 total={some_total}\n\
         full avg10=1.50 avg60=0.00 avg300=0.00 total=7\n"
    );
    std::fs::write(dir.join(name), text).unwrap();
}

fn fixture(node_some: [(f64, u64); 3]) -> (tempfile::TempDir, Sources) {
    let tmp = tempfile::tempdir().unwrap();
    for (r, (avg, total)) in ["cpu", "memory", "io"].into_iter().zip(node_some) {
        write(&tmp.path().join("proc"), r, avg, total);
    }
    let sources = Sources {
        node: tmp.path().join("proc"),
        cgroup2: Some(tmp.path().join("cg")),
        triggers: false,
    };
    (tmp, sources)
}

#[test]
fn recent_share_comes_from_the_total_counter() {
    let (tmp, sources) = fixture([(5.0, 1_000_000), (0.0, 0), (0.0, 0)]);
    let mut s = Sampler::new(sources);
    let t0 = Instant::now();
    let first = s.sample(&BTreeSet::new(), t0);
    assert!(first.available);
    assert_eq!(first.node.cpu.some_avg10, 5.0);
    assert_eq!(first.node.cpu.some_recent, 0.0, "no previous read yet");
    assert_eq!(first.node.memory.full_avg10, 1.5);
    // 400 ms stalled in the next second: 40% now, while avg10 lags at 5.
    write(&tmp.path().join("proc"), "cpu", 5.0, 1_400_000);
    let next = s.sample(&BTreeSet::new(), t0 + Duration::from_secs(1));
    assert!((next.node.cpu.some_recent - 40.0).abs() < 1e-9, "{next:?}");
    assert!((next.node.cpu.some_gate() - 40.0).abs() < 1e-9);
    assert_eq!(next.node.io.some_recent, 0.0);
    assert_eq!(next.cpu_some_avg10(), 5.0);
}

#[test]
fn watched_cgroups_are_read_and_the_worse_one_counts() {
    let (tmp, sources) = fixture([(5.0, 0), (1.0, 0), (0.0, 0)]);
    let cg = tmp.path().join("cg/kubepods");
    write(&cg, "cpu.pressure", 2.0, 0);
    write(&cg, "memory.pressure", 30.0, 0);
    write(&cg, "io.pressure", 0.0, 0);
    let mut s = Sampler::new(sources);
    let watched: BTreeSet<PathBuf> = [PathBuf::from("/kubepods"), PathBuf::from("/gone")].into();
    let snap = s.sample(&watched, Instant::now());
    assert_eq!(snap.cgroups.len(), 1, "{snap:?}");
    let r = snap.for_parent(Some(Path::new("/kubepods")));
    assert_eq!((r.cpu.some_avg10, r.memory.some_avg10), (5.0, 30.0));
    let node_only = snap.for_parent(Some(Path::new("/gone")));
    assert_eq!(node_only.memory.some_avg10, 1.0);
}

#[test]
fn missing_node_files_mean_unavailable_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Sampler::new(Sources {
        node: tmp.path().join("none"),
        cgroup2: None,
        triggers: true,
    });
    let snap = s.sample(&BTreeSet::new(), Instant::now());
    assert!(!snap.available);
    // Triggers cannot be written there either: periodic reads only.
    assert!(arm(&tmp.path().join("none")).is_empty());
}

#[tokio::test]
async fn the_periodic_monitor_follows_the_files() {
    let (tmp, sources) = fixture([(3.0, 0), (0.0, 0), (0.0, 0)]);
    let cg = tmp.path().join("cg/pods");
    for r in ["cpu", "memory", "io"] {
        write(&cg, &format!("{r}.pressure"), 0.0, 0);
    }
    let p = Pressure::start(sources);
    p.watch_cgroup(Path::new("/pods"));
    let wait_for = |what: &str, f: &dyn Fn(&super::PressureSnapshot) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f(&p.now()) {
            assert!(Instant::now() < deadline, "{what}: {:?}", p.now());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("first read", &|s| s.available && s.cpu_some_avg10() == 3.0);
    write(&tmp.path().join("proc"), "memory", 25.0, 0);
    write(&cg, "io.pressure", 70.0, 0);
    wait_for("the change", &|s| {
        s.memory_some_avg10() == 25.0
            && s.cgroups
                .get(Path::new("/pods"))
                .is_some_and(|c| c.io.some_avg10 == 70.0)
    });
}

//! The health probe with zygotes that answer pings from a thread of their
//! own (the far end of a socketpair, as `tests.rs`' fake), one of which can
//! be muted; and the claim-time checks with a real stopped process.

use std::collections::HashSet;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::mpsc;
use zygote_contract::proto::{self, Message, Reply, Request};
use zygote_contract::zygote::{ChildState, Generation, ZygoteConfig};
use zygote_contract::DaemonDir;

use super::set::health::judge;
use super::sizing::{Bounds, Rule};
use super::spawner::{SpawnError, Spawner};
use super::tests::step;
use super::{PoolSet, PoolSpec, Warm};
use crate::monitor_client::MonitorClient;

/// Zygotes whose far end answers `Ping` with a `Pong` of the generation
/// they were made with, unless muted; `closed` has those hung up on.
#[derive(Default)]
struct Answering {
    next: AtomicI32,
    muted: Arc<Mutex<HashSet<i32>>>,
    closed: Arc<Mutex<HashSet<i32>>>,
}

#[async_trait]
impl Spawner for Answering {
    async fn spawn(&self, cfg: &ZygoteConfig) -> Result<Warm, SpawnError> {
        let (ours, theirs) = proto::pair().map_err(SpawnError::Socketpair)?;
        let (tx, events) = mpsc::unbounded_channel();
        let client = MonitorClient::new(ours, tx).map_err(SpawnError::Socket)?;
        let pid = 2000 + self.next.fetch_add(1, Ordering::SeqCst);
        let (muted, closed, generation) = (self.muted.clone(), self.closed.clone(), cfg.generation);
        std::thread::spawn(move || loop {
            match proto::recv::<Request>(theirs.as_fd()) {
                Ok((Request::Ping, _)) if !muted.lock().unwrap().contains(&pid) => {
                    let reply = Reply::Pong {
                        child: ChildState::Waiting,
                        generation,
                    };
                    let _ = proto::send(theirs.as_fd(), &Message::Reply { reply }, &[]);
                }
                Ok(_) => {}
                Err(_) => {
                    closed.lock().unwrap().insert(pid);
                    return;
                }
            }
        });
        Ok(Warm::new(client, events, pid, Instant::now(), None))
    }
}

const G1: Generation = Generation { config: 1, security: 1 };
const G2: Generation = Generation { config: 1, security: 2 };

fn spec(generation: Generation) -> PoolSpec {
    PoolSpec {
        profile: "p".into(),
        clone_flags: 0,
        bounds: Bounds {
            min: 0,
            initial: 3,
            max: 4,
            rule: Rule::RecentClaims,
        },
        max_age: Duration::from_secs(3600),
        wasm: false,
        pressure: Default::default(),
        max_births_per_sec: 10,
        generation,
        health: zygote_config::PoolHealth {
            probe_interval_ms: 1000,
            ping_timeout_ms: 200,
        },
        placement: Default::default(),
        prefetch: Vec::new(),
    }
}

fn pools() -> (Arc<PoolSet>, Arc<Answering>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let spawner = Arc::new(Answering::default());
    let set = PoolSet::new(
        spawner.clone(),
        &DaemonDir::at(tmp.path()),
        false,
        vec![spec(G1)],
        crate::pressure::Pressure::manual().1,
    );
    (set, spawner, tmp)
}

/// Refill rounds until the pool is full (births are capped per round).
async fn fill(set: &PoolSet) {
    for _ in 0..4 {
        step(set, Instant::now()).await;
    }
}

fn idle(set: &PoolSet) -> Vec<(i32, Generation)> {
    set.lock()["p"].idle.iter().map(|w| (w.pid, w.generation)).collect()
}

/// Waits (up to 5 s) until the far end of zygote `pid` saw its hang-up.
fn wait_closed(a: &Answering, pid: i32) -> bool {
    (0..250).any(|_| {
        let done = a.closed.lock().unwrap().contains(&pid);
        if !done {
            std::thread::sleep(Duration::from_millis(20));
        }
        done
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresponsive_zygote_is_replaced_counted_and_never_claimed() {
    let (set, a, _tmp) = pools();
    fill(&set).await;
    let before = idle(&set);
    assert_eq!(before.len(), 3);
    // Every answering zygote passes.
    set.probe_round(Instant::now()).await;
    assert_eq!(idle(&set), before);
    let s = &set.stats().profiles["p"];
    assert_eq!((s.probes, s.unhealthy.len()), (3, 0), "{s:?}");

    let mute = before[1].0;
    a.muted.lock().unwrap().insert(mute);
    set.probe_round(Instant::now() + Duration::from_secs(1)).await;
    let after: Vec<i32> = idle(&set).iter().map(|(p, _)| *p).collect();
    assert_eq!(after, [before[0].0, before[2].0], "only the muted one goes");
    let s = &set.stats().profiles["p"];
    assert_eq!(s.unhealthy["unresponsive"], 1, "{s:?}");
    assert_eq!(s.died, 0);
    assert!(wait_closed(&a, mute), "the unresponsive zygote was not hung up on");
    // The refill replaces it; no claim gets it.
    fill(&set).await;
    assert_eq!(idle(&set).len(), 3);
    for _ in 0..3 {
        assert_ne!(set.claim("p").expect("a healthy zygote").pid, mute);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_generation_retires_idle_zygotes_before_any_claim() {
    let (set, _a, _tmp) = pools();
    fill(&set).await;
    assert!(idle(&set).iter().all(|(_, g)| *g == G1));
    // A zygote that started before the reload reports after it.
    let late = set.plan_spawns_at(Instant::now());
    assert!(late.is_empty(), "full");
    set.claim("p").unwrap();
    let late = set.plan_spawns_at(Instant::now());
    assert_eq!(late.len(), 1);

    // The reload: security changed.
    assert_eq!(set.reconfigure(vec![spec(G2)]).await, 2);
    let s = &set.stats().profiles["p"];
    assert_eq!((s.unhealthy["stale_generation"], s.generation), (2, G2), "{s:?}");
    let r = set.spawner.spawn(&late[0]).await.map(|w| w.made_from(&late[0]));
    set.spawned("p", r, Instant::now());
    assert!(idle(&set).is_empty(), "the late G1 zygote joined the pool");
    assert_eq!(set.stats().profiles["p"].unhealthy["stale_generation"], 3);
    // Replacements are of the new generation, and pass the probe.
    fill(&set).await;
    assert_eq!(idle(&set).len(), 3);
    assert!(idle(&set).iter().all(|(_, g)| *g == G2));
    set.probe_round(Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(idle(&set).len(), 3);

    // One of another generation slipped in: a claim skips and retires it.
    let mut old = set.spawner.spawn(&late[0]).await.unwrap().made_from(&late[0]);
    old.pid = 99;
    set.lock().get_mut("p").unwrap().idle.push_front(old);
    assert_ne!(set.claim("p").unwrap().pid, 99);
    assert_eq!(set.stats().profiles["p"].unhealthy["stale_generation"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_zygote_is_not_claimed_but_killed() {
    let (set, _a, _tmp) = pools();
    fill(&set).await;
    // A stand-in zygote process, stopped: its pidfd is the Warm's.
    let mut child = std::process::Command::new("sleep").arg("600").spawn().unwrap();
    let pid = child.id() as i32;
    let pidfd = zygote_runtime::sys::pidfd_open(pid).unwrap();
    let (ours, _theirs) = proto::pair().unwrap();
    let (tx, events) = mpsc::unbounded_channel();
    let mut w = Warm::new(
        MonitorClient::new(ours, tx).unwrap(),
        events,
        77,
        Instant::now(),
        Some(pidfd),
    );
    w.zygote_pid = pid;
    w.generation = G1;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGSTOP).unwrap();
    let stopped = (0..250).any(|_| {
        let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let t = s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('T'));
        if !t {
            std::thread::sleep(Duration::from_millis(20));
        }
        t
    });
    assert!(stopped, "sleep {pid} did not stop");
    set.lock().get_mut("p").unwrap().idle.push_front(w);

    assert_ne!(set.claim("p").unwrap().pid, 77);
    assert_eq!(set.stats().profiles["p"].unhealthy["unresponsive"], 1);
    // Killed through its pidfd, though stopped.
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
}

#[test]
fn answers_are_judged_by_child_state_and_generation() {
    use super::set::Unhealthy::*;
    let pong = |child, generation| Some(Ok(Reply::Pong { child, generation }));
    assert_eq!(judge(pong(ChildState::Waiting, G1), G1), None);
    assert_eq!(judge(pong(ChildState::Waiting, G1), G2), Some(StaleGeneration));
    assert_eq!(judge(pong(ChildState::Stopped, G1), G1), Some(Unresponsive));
    assert_eq!(judge(pong(ChildState::Gone, G1), G1), Some(Dead));
    assert_eq!(judge(None, G1), Some(Unresponsive));
    assert_eq!(judge(Some(Err(proto::WireError::Closed)), G1), Some(Dead));
    let old_build = Reply::Error {
        failure: proto::Failure::new(proto::FailureKind::WrongPeer, "a waiting zygote only accepts a claim"),
    };
    assert_eq!(judge(Some(Ok(old_build)), G1), Some(StaleGeneration));
    assert_eq!(Unresponsive.as_str(), "unresponsive");
    assert_eq!(StaleGeneration.as_str(), "stale_generation");
    assert_eq!(Dead.as_str(), "dead");
}

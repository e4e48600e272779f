//! The pools with a fake [`Spawner`]: a "zygote" is the far end of a
//! socketpair, so sizing, claims, deaths and recycling run without root.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::mpsc;
use zygote_contract::proto;
use zygote_contract::zygote::ZygoteConfig;
use zygote_contract::DaemonDir;

use super::sizing::{Bounds, Rule, WINDOW};
use super::spawner::{SpawnError, Spawner};
use super::{Fallback, PoolSet, PoolSpec, Warm};
use crate::monitor_client::MonitorClient;

/// Hands out zygotes that are just sockets; keeps their far ends by pid.
#[derive(Default)]
pub(super) struct Fake {
    next_pid: AtomicI32,
    ends: Mutex<HashMap<i32, OwnedFd>>,
}

#[async_trait]
impl Spawner for Fake {
    async fn spawn(&self, _cfg: &ZygoteConfig) -> Result<Warm, SpawnError> {
        let (ours, theirs) = proto::pair().map_err(SpawnError::Socketpair)?;
        let (tx, events) = mpsc::unbounded_channel();
        let client = MonitorClient::new(ours, tx).map_err(SpawnError::Socket)?;
        let pid = 1000 + self.next_pid.fetch_add(1, Ordering::SeqCst);
        self.ends.lock().unwrap().insert(pid, theirs);
        Ok(Warm::new(client, events, pid, Instant::now(), None))
    }
}

impl Fake {
    /// The zygote dies: its end of the socket closes.
    fn kill(&self, pid: i32) {
        assert!(self.ends.lock().unwrap().remove(&pid).is_some(), "no zygote {pid}");
    }

    /// The pool hung up on zygote `pid` (what makes a real one exit).
    pub(super) fn hung_up(&self, pid: i32) -> bool {
        let ends = self.ends.lock().unwrap();
        let mut fds = [libc::pollfd {
            fd: ends[&pid].as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        zygote_runtime::sys::poll(&mut fds, 0);
        fds[0].revents & (libc::POLLHUP | libc::POLLIN) != 0
    }
}

fn pools(bounds: Bounds, max_age: Duration) -> (Arc<PoolSet>, Arc<Fake>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let fake = Arc::new(Fake::default());
    let spec = PoolSpec {
        profile: "p".into(),
        clone_flags: 0,
        bounds,
        max_age,
        wasm: false,
        pressure: Default::default(),
        max_births_per_sec: 10,
        generation: Default::default(),
        health: Default::default(),
        placement: Default::default(),
        prefetch: Vec::new(),
    };
    let set = PoolSet::new(
        fake.clone(),
        &DaemonDir::at(tmp.path()),
        false,
        vec![spec],
        crate::pressure::Pressure::manual().1,
    );
    (set, fake, tmp)
}

/// One round of the refill loop as of `now`, spawns awaited.
pub(super) async fn step(set: &PoolSet, now: Instant) {
    for cfg in set.plan_spawns_at(now) {
        let r = set.spawner.spawn(&cfg).await.map(|w| w.made_from(&cfg));
        set.spawned(&cfg.profile, r, Instant::now());
    }
}

/// Rounds until the pool stops growing (spawns are capped per round).
async fn fill(set: &PoolSet, now: Instant) -> usize {
    for _ in 0..10 {
        step(set, now).await;
    }
    set.stats().profiles["p"].idle
}

const BOUNDS: Bounds = Bounds {
    min: 1,
    initial: 3,
    max: 4,
    rule: Rule::RecentClaims,
};
const LONG: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn claims_drain_and_refill() {
    let (set, _fake, _tmp) = pools(BOUNDS, LONG);
    let now = Instant::now();
    assert_eq!(fill(&set, now).await, 3);
    let mut claimed = HashSet::new();
    for _ in 0..3 {
        let w = set.claim("p").expect("a warm zygote");
        assert!(claimed.insert(w.pid), "handed out twice: {}", w.pid);
    }
    assert_eq!(set.claim("p").err(), Some(Fallback::PoolEmpty));
    let s = &set.stats().profiles["p"];
    assert_eq!((s.claimed, s.idle), (3, 0));
    // Four claims in the window: the target follows demand up to max.
    assert_eq!(fill(&set, now).await, 4);
    let w = set.claim("p").unwrap();
    assert!(!claimed.contains(&w.pid));
    assert_eq!(set.stats().profiles["p"].created, 7);
}

#[tokio::test]
async fn a_dead_zygote_is_never_handed_out() {
    let (set, fake, _tmp) = pools(BOUNDS, LONG);
    assert_eq!(fill(&set, Instant::now()).await, 3);
    let dead = set.lock()["p"].idle[0].pid;
    fake.kill(dead);
    // The client's reader task sees the socket close.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut got = Vec::new();
    while let Ok(w) = set.claim("p") {
        got.push(w.pid);
    }
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(!got.contains(&dead), "{got:?}");
    assert_eq!(set.stats().profiles["p"].died, 1);
}

#[tokio::test]
async fn a_zygote_dying_while_idle_is_swept_and_replaced() {
    let (set, fake, _tmp) = pools(BOUNDS, LONG);
    let now = Instant::now();
    assert_eq!(fill(&set, now).await, 3);
    let dead = set.lock()["p"].idle[1].pid;
    fake.kill(dead);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(fill(&set, now).await, 3);
    assert!(set.lock()["p"].idle.iter().all(|w| w.pid != dead));
    assert_eq!(set.stats().profiles["p"].died, 1);
}

#[tokio::test]
async fn max_age_recycling_drops_and_hangs_up() {
    let (set, fake, _tmp) = pools(BOUNDS, Duration::from_secs(60));
    let now = Instant::now();
    assert_eq!(fill(&set, now).await, 3);
    let old: Vec<i32> = set.lock()["p"].idle.iter().map(|w| w.pid).collect();
    assert!(old.iter().all(|p| !fake.hung_up(*p)));
    let later = now + Duration::from_secs(61);
    let replacements = set.plan_spawns_at(later).len();
    assert_eq!(set.stats().profiles["p"].recycled, 3);
    assert_eq!(set.stats().profiles["p"].idle, 0);
    assert!(replacements > 0);
    for pid in &old {
        assert!(fake.hung_up(*pid), "zygote {pid} was not told to go");
    }
}

#[tokio::test]
async fn the_target_falls_after_a_burst_and_the_extras_are_dropped() {
    let bounds = Bounds {
        min: 1,
        initial: 1,
        max: 4,
        rule: Rule::RecentClaims,
    };
    let (set, fake, _tmp) = pools(bounds, LONG);
    let now = Instant::now();
    assert_eq!(fill(&set, now).await, 1);
    // A burst of four Creates (one served, three fell back).
    for _ in 0..4 {
        let _ = set.claim("p");
    }
    assert_eq!(fill(&set, now).await, 4);
    assert_eq!(set.stats().profiles["p"].target, 4);
    let idle: Vec<i32> = set.lock()["p"].idle.iter().map(|w| w.pid).collect();
    // Quiet for longer than the demand window: back to `initial`.
    step(&set, now + WINDOW + Duration::from_secs(1)).await;
    let s = &set.stats().profiles["p"];
    assert_eq!((s.target, s.idle), (1, 1));
    let kept = set.lock()["p"].idle[0].pid;
    for pid in idle.iter().filter(|p| **p != kept) {
        assert!(fake.hung_up(*pid), "extra zygote {pid} still held");
    }
    assert!(!fake.hung_up(kept));
}

#[tokio::test]
async fn a_disabled_pool_says_so_and_fallbacks_are_counted_by_reason() {
    let bounds = Bounds {
        min: 0,
        initial: 0,
        max: 0,
        rule: Rule::RecentClaims,
    };
    let (set, _fake, _tmp) = pools(bounds, LONG);
    assert_eq!(fill(&set, Instant::now()).await, 0);
    assert_eq!(set.claim("p").err(), Some(Fallback::PoolDisabled));
    assert_eq!(set.claim("nope").err(), Some(Fallback::PoolDisabled));
    set.fallback("p", Fallback::PoolDisabled);
    set.fallback("p", Fallback::PoolEmpty);
    set.fallback("p", Fallback::PoolEmpty);
    set.cloned_at_claim("p", "join_pid_namespace");
    let stats = set.stats();
    let f = &stats.profiles["p"].fallbacks;
    assert_eq!(f["pool_disabled"], 1);
    assert_eq!(f["pool_empty"], 2);
    assert_eq!(stats.profiles["p"].cloned_at_claim["join_pid_namespace"], 1);
    assert!(!f.contains_key("join_pid_namespace"), "{f:?}");
}

fn spec(profile: &str, initial: usize) -> PoolSpec {
    PoolSpec {
        profile: profile.into(),
        clone_flags: 0,
        bounds: Bounds {
            min: 0,
            initial,
            max: 4,
            rule: Rule::RecentClaims,
        },
        max_age: Duration::from_secs(600),
        wasm: false,
        pressure: Default::default(),
        max_births_per_sec: 10,
        generation: Default::default(),
        health: Default::default(),
        placement: Default::default(),
        prefetch: Vec::new(),
    }
}

#[tokio::test]
async fn reconfigure_drains_removed_pools_and_fills_new_ones() {
    let b = Bounds {
        min: 0,
        initial: 2,
        max: 4,
        rule: Rule::RecentClaims,
    };
    let (set, fake, _tmp) = pools(b, Duration::from_secs(600));
    step(&set, Instant::now()).await;
    let old: Vec<i32> = set.lock()["p"].idle.iter().map(|w| w.pid).collect();
    assert_eq!(old.len(), 2);

    // "p" removed, "q" added: p's zygotes are hung up, q fills.
    assert_eq!(set.reconfigure(vec![spec("q", 1)]).await, 2);
    assert!(old.iter().all(|pid| fake.hung_up(*pid)));
    step(&set, Instant::now()).await;
    let stats = set.stats();
    assert!(!stats.profiles.contains_key("p"), "{stats:?}");
    assert_eq!(stats.profiles["q"].idle, 1);
    assert_eq!(set.claim("p").err(), Some(Fallback::PoolDisabled));

    // New bounds apply at the next round; the zygotes stay.
    assert_eq!(set.reconfigure(vec![spec("q", 3)]).await, 0);
    step(&set, Instant::now()).await;
    assert_eq!(set.stats().profiles["q"].idle, 3);

    // Other namespaces (a new generation): the idle zygotes were made for
    // the old ones.
    let mut other = spec("q", 3);
    other.clone_flags = libc::CLONE_NEWUTS;
    other.generation.config = 1;
    let before: Vec<i32> = set.lock()["q"].idle.iter().map(|w| w.pid).collect();
    assert_eq!(set.reconfigure(vec![other]).await, 3);
    assert!(before.iter().all(|pid| fake.hung_up(*pid)));
    assert_eq!(set.stats().profiles["q"].idle, 0);
    assert_eq!(set.stats().profiles["q"].unhealthy["stale_generation"], 3);
}

#[tokio::test]
async fn a_zygote_whose_process_exited_is_never_handed_out_though_its_socket_stays_open() {
    let (set, _fake, _tmp) = pools(BOUNDS, LONG);
    let now = Instant::now();
    assert_eq!(fill(&set, now).await, 3);
    // A "zygote" that is a real process: its pidfd tells when it exits,
    // while the far end of its socket stays open (held by us).
    let mut child = std::process::Command::new("sleep").arg("600").spawn().unwrap();
    let pidfd = zygote_runtime::sys::pidfd_open(child.id() as i32).unwrap();
    let (ours, _theirs) = proto::pair().unwrap();
    let (tx, events) = mpsc::unbounded_channel();
    let client = MonitorClient::new(ours, tx).unwrap();
    let mut w = Warm::new(client, events, child.id() as i32, now, Some(pidfd));
    assert!(w.alive());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!w.alive(), "exited, yet alive");
    set.lock().get_mut("p").unwrap().idle.push_front(w);
    let first = set.claim("p").expect("a live zygote behind the dead one");
    assert_ne!(first.pid, child.id() as i32);
    assert_eq!(set.stats().profiles["p"].died, 1);
}

//! The refill loop's gates with the fake spawner of [`super::tests`]:
//! pressure holds births back and releases idle zygotes under memory
//! pressure, births are paced per profile and per node, and a failing
//! birth backs off exponentially (capped, reset by a success) instead of
//! spinning.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use zygote_config::PoolPressure;
use zygote_contract::zygote::ZygoteConfig;
use zygote_contract::DaemonDir;

use super::sizing::{Bounds, Rule};
use super::spawner::{SpawnError, Spawner};
use super::tests::{step, Fake};
use super::{PoolSet, PoolSpec, Warm};
use crate::pressure::{Feed, Pressure, PressureSnapshot, Readings, Stall};

const THRESHOLDS: PoolPressure = PoolPressure {
    cpu_some: 40.0,
    memory_some: 20.0,
    io_some: 100.0,
};

fn spec(profile: &str, min: usize, initial: usize, per_sec: usize) -> PoolSpec {
    PoolSpec {
        profile: profile.into(),
        clone_flags: 0,
        bounds: Bounds {
            min,
            initial,
            max: 8,
            rule: Rule::RecentClaims,
        },
        max_age: Duration::from_secs(3600),
        wasm: false,
        pressure: THRESHOLDS,
        max_births_per_sec: per_sec,
        generation: Default::default(),
        health: Default::default(),
        placement: Default::default(),
        prefetch: Vec::new(),
    }
}

fn set_of(spawner: Arc<dyn Spawner>, specs: Vec<PoolSpec>) -> (Arc<PoolSet>, Feed, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let (feed, pressure) = Pressure::manual();
    let set = PoolSet::new(spawner, &DaemonDir::at(tmp.path()), false, specs, pressure);
    (set, feed, tmp)
}

fn node(cpu: f64, memory: f64) -> PressureSnapshot {
    let stall = |some_avg10| Stall {
        some_avg10,
        ..Stall::default()
    };
    PressureSnapshot {
        node: Readings {
            cpu: stall(cpu),
            memory: stall(memory),
            io: stall(99.0),
        },
        available: true,
        ..PressureSnapshot::default()
    }
}

/// Rounds a second apart (pacing never limits), from `t`.
async fn rounds(set: &PoolSet, t: Instant, n: u32) -> Instant {
    let mut t = t;
    for _ in 0..n {
        t += Duration::from_secs(1);
        step(set, t).await;
    }
    t
}

#[tokio::test]
async fn pressure_holds_births_and_memory_pressure_releases_the_oldest_beyond_min() {
    let fake = Arc::new(Fake::default());
    let (set, feed, _tmp) = set_of(fake.clone(), vec![spec("p", 1, 3, 10)]);
    feed.publish(node(55.0, 0.0));
    let t = rounds(&set, Instant::now(), 4).await;
    let s = &set.stats().profiles["p"];
    assert_eq!((s.idle, s.created), (0, 0), "{s:?}");
    assert_eq!(s.pressure_gate, ["cpu"]);
    assert_eq!(s.births_deferred_by_pressure["cpu"], 4, "{s:?}");

    feed.publish(node(40.0, 0.0));
    let t = rounds(&set, t, 3).await;
    let s = &set.stats().profiles["p"];
    assert_eq!((s.idle, s.created), (3, 3), "{s:?}");
    assert!(s.pressure_gate.is_empty());
    let idle: Vec<i32> = set.lock()["p"].idle.iter().map(|w| w.pid).collect();

    feed.publish(node(0.0, 25.0));
    let t = rounds(&set, t, 2).await;
    let s = &set.stats().profiles["p"];
    assert_eq!((s.idle, s.released_for_memory_pressure), (1, 2), "{s:?}");
    assert_eq!(s.births_deferred_by_pressure["memory"], 2, "{s:?}");
    assert!(fake.hung_up(idle[0]) && fake.hung_up(idle[1]), "the oldest go first");
    assert!(!fake.hung_up(idle[2]));

    feed.publish(node(0.0, 0.0));
    rounds(&set, t, 2).await;
    assert_eq!(set.stats().profiles["p"].idle, 3);
}

#[tokio::test]
async fn births_are_paced_per_profile_and_per_node() {
    let fake = Arc::new(Fake::default());
    let (set, _feed, _tmp) = set_of(fake, vec![spec("p", 0, 8, 1), spec("q", 0, 8, 10)]);
    let t = Instant::now();
    // Rounds within one second: p gets 1 birth, q the rest of the spawn
    // budget (2 at once) each round.
    for _ in 0..3 {
        step(&set, t).await;
    }
    let stats = set.stats();
    let (p, q) = (&stats.profiles["p"], &stats.profiles["q"]);
    assert_eq!(p.created, 1, "{p:?}");
    assert!(p.births_deferred_by_pacing >= 2, "{p:?}");
    assert!(q.created >= 3, "{q:?}");
}

#[tokio::test]
async fn the_node_bound_paces_births_over_all_profiles() {
    let (mut set, _feed, _tmp) = set_of(
        Arc::new(Fake::default()),
        vec![spec("a", 0, 8, 10), spec("b", 0, 8, 10)],
    );
    Arc::get_mut(&mut set).expect("not shared yet").node_max_births = 3;
    let t = Instant::now();
    for _ in 0..5 {
        step(&set, t).await;
    }
    let created = |set: &PoolSet| set.stats().profiles.values().map(|p| p.created).sum::<u64>();
    assert_eq!(created(&set), 3, "{:?}", set.stats());
    step(&set, t + Duration::from_secs(1)).await;
    assert_eq!(created(&set), 5, "{:?}", set.stats());
}

/// Fails its first `fail` spawns, then makes fake zygotes; counts calls.
struct Failing {
    fail: AtomicUsize,
    calls: AtomicUsize,
    fake: Fake,
}

#[async_trait]
impl Spawner for Failing {
    async fn spawn(&self, cfg: &ZygoteConfig) -> Result<Warm, SpawnError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(SpawnError::Timeout(Duration::from_secs(10)));
        }
        self.fake.spawn(cfg).await
    }
}

#[tokio::test]
async fn a_failing_birth_backs_off_exponentially_capped_and_resets_on_success() {
    let spawner = Arc::new(Failing {
        fail: AtomicUsize::new(12),
        calls: AtomicUsize::new(0),
        fake: Fake::default(),
    });
    let (set, _feed, _tmp) = set_of(spawner.clone(), vec![spec("p", 0, 1, 10)]);
    let t = Instant::now();
    step(&set, t).await;
    assert_eq!(spawner.calls.load(Ordering::SeqCst), 1);
    // Many rounds at the same moment: no retry before the back-off ends.
    for _ in 0..50 {
        step(&set, t).await;
    }
    assert_eq!(
        spawner.calls.load(Ordering::SeqCst),
        1,
        "a failing birth was retried at once"
    );
    let mut backoffs = Vec::new();
    let mut at = t;
    while spawner.calls.load(Ordering::SeqCst) < 12 {
        at += Duration::from_secs(40);
        step(&set, at).await;
        backoffs.push(set.lock()["p"].retry_at.expect("backing off").1);
    }
    let ms: Vec<u128> = backoffs.iter().map(Duration::as_millis).collect();
    assert_eq!(&ms[..7], [1000, 2000, 4000, 8000, 16000, 30000, 30000], "{ms:?}");
    assert_eq!(set.stats().profiles["p"].spawn_failures, 12);
    // The next birth works: back-off reset, the pool fills.
    step(&set, at + Duration::from_secs(40)).await;
    assert!(set.lock()["p"].retry_at.is_none());
    assert_eq!(set.stats().profiles["p"].idle, 1);
}

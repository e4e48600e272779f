//! Health of idle zygotes: what makes one unhealthy ([`Unhealthy`]), the
//! periodic probe ([`PoolSet::health_loop`]), the cheap checks at claim
//! ([`at_claim`]) and how an unhealthy zygote is retired ([`PoolSet::retire`]).
//!
//! Every `pool.health.probe_interval_ms` each pool's idle zygotes are
//! checked: alive (their pidfd does not poll readable, their socket is
//! open), of the pool's current [`Generation`], and answering a
//! [`Request::Ping`](zygote_contract::proto::Request::Ping) from their own
//! wait loop within `pool.health.ping_timeout_ms` with a waiting (not
//! stopped) child and the generation they were made with. The pings run
//! concurrently, outside the pool lock; a zygote claimed meanwhile is the
//! task's, and its result is ignored. A claim checks liveness, generation
//! and whether the zygote process is stopped (one `/proc/<pid>/stat` read),
//! so a zygote that went bad between probes is not handed out either.
//!
//! An unhealthy zygote leaves the pool at once, counted by reason in
//! `pools.json` (`unhealthy`) and `zygote_pool_unhealthy_total`; the refill
//! loop replaces it at its usual pace. A dead or stale one is hung up (a
//! live zygote then kills its child, removes its pool cgroup and exits); an
//! unresponsive one cannot act on a hang-up, so it is also killed through
//! its pidfd (its child dies with it: `PDEATHSIG`) and its pool cgroup is
//! removed here once both are gone.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tracing::{info, warn};
use zygote_contract::proto::Reply;
use zygote_contract::zygote::{ChildState, Generation};

use super::{Pool, PoolSet, Warm};
use crate::monitor_client::MonitorClient;
use zygote_contract::daemon::process_alive as running;

/// The longest the health loop sleeps (it also notices new pools then).
const MAX_NAP: Duration = Duration::from_secs(1);

/// Why an idle zygote was replaced; its text is the key of
/// `ProfileStats::unhealthy` and the `reason` label of the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unhealthy {
    /// Its process or its child exited, or its control socket closed.
    Dead,
    /// No answer to a ping in time, or stopped (it, or its child).
    Unresponsive,
    /// Made for a definition of its profile that is no longer loaded.
    StaleGeneration,
}

impl Unhealthy {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Unhealthy::Dead => "dead",
            Unhealthy::Unresponsive => "unresponsive",
            Unhealthy::StaleGeneration => "stale_generation",
        }
    }
}

/// The checks of a claim, cheapest first.
pub(super) fn at_claim(w: &mut Warm, current: Generation) -> Option<Unhealthy> {
    if !w.alive() {
        Some(Unhealthy::Dead)
    } else if w.generation != current {
        Some(Unhealthy::StaleGeneration)
    } else if stopped(w.zygote_pid) {
        Some(Unhealthy::Unresponsive)
    } else {
        None
    }
}

/// `pid` is in a stopped state (`T`, or `t` under a tracer).
fn stopped(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // "pid (comm) state ...": comm may hold spaces and parentheses.
    matches!(
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next()),
        Some('T' | 't')
    )
}

/// One ping to send.
struct Due {
    profile: String,
    serial: u64,
    client: MonitorClient,
    timeout: Duration,
    expected: Generation,
}

/// What a ping's answer (or its absence) says.
pub(in crate::pool) fn judge(
    answer: Option<Result<Reply, zygote_contract::proto::WireError>>,
    expected: Generation,
) -> Option<Unhealthy> {
    match answer {
        None => Some(Unhealthy::Unresponsive),
        Some(Err(_)) => Some(Unhealthy::Dead),
        Some(Ok(Reply::Pong { child, generation })) => match child {
            ChildState::Gone => Some(Unhealthy::Dead),
            ChildState::Stopped => Some(Unhealthy::Unresponsive),
            ChildState::Waiting if generation != expected => Some(Unhealthy::StaleGeneration),
            ChildState::Waiting => None,
        },
        // A zygote that does not know pings is of another build.
        Some(Ok(_)) => Some(Unhealthy::StaleGeneration),
    }
}

impl PoolSet {
    /// Probes the pools' idle zygotes, each pool at its own interval,
    /// until the pools stop.
    pub(super) async fn health_loop(self: Arc<Self>) {
        while !self.stopping.load(Ordering::SeqCst) {
            self.probe_round(Instant::now()).await;
            tokio::time::sleep(self.next_probe_in(Instant::now())).await;
        }
    }

    /// Probes the idle zygotes of every pool whose probe is due at `now`;
    /// returns when every ping was answered or timed out.
    pub(in crate::pool) async fn probe_round(&self, now: Instant) {
        let due = self.due_probes(now);
        if due.is_empty() {
            return;
        }
        let mut pings = JoinSet::new();
        for d in due {
            pings.spawn(async move {
                let answer = tokio::time::timeout(d.timeout, d.client.ping()).await.ok();
                (d.profile, d.serial, judge(answer, d.expected))
            });
        }
        let mut verdicts = Vec::new();
        while let Some(r) = pings.join_next().await {
            if let Ok(v) = r {
                verdicts.push(v);
            }
        }
        self.apply_probes(verdicts);
    }

    /// Sweeps what needs no ping (dead, stale) from the pools whose probe
    /// is due, and lists pings for the rest.
    fn due_probes(&self, now: Instant) -> Vec<Due> {
        let mut pools = self.lock();
        let mut out = Vec::new();
        for (name, pool) in pools.iter_mut() {
            if pool.next_probe.is_some_and(|t| now < t) {
                continue;
            }
            pool.next_probe = Some(now + pool.spec.health.interval());
            let expected = pool.spec.generation;
            self.sweep(name, pool, |w| {
                if !w.alive() {
                    Some(Unhealthy::Dead)
                } else {
                    (w.generation != expected).then_some(Unhealthy::StaleGeneration)
                }
            });
            for w in &pool.idle {
                if let Some((client, _)) = &w.parts {
                    out.push(Due {
                        profile: name.clone(),
                        serial: w.serial,
                        client: client.clone(),
                        timeout: pool.spec.health.timeout(),
                        expected,
                    });
                }
            }
            pool.stats.probes += pool.idle.len() as u64;
        }
        out
    }

    /// Retires the zygotes the pings found unhealthy, if still idle.
    fn apply_probes(&self, verdicts: Vec<(String, u64, Option<Unhealthy>)>) {
        let mut pools = self.lock();
        for (profile, serial, verdict) in verdicts {
            let Some(why) = verdict else { continue };
            let Some(pool) = pools.get_mut(&profile) else { continue };
            if let Some(at) = pool.idle.iter().position(|w| w.serial == serial) {
                let w = pool.idle.remove(at).expect("found at this index");
                self.retire(&profile, pool, w, why);
            }
        }
        for pool in pools.values_mut() {
            pool.stats.idle = pool.idle.len();
        }
        // `pools.json` shows each round's probe count, not only the next
        // claim's or birth's.
        self.stats_wake.notify_one();
    }

    /// How long until some pool's probe is due (at most [`MAX_NAP`]).
    fn next_probe_in(&self, now: Instant) -> Duration {
        let pools = self.lock();
        pools
            .values()
            .map(|p| {
                p.next_probe
                    .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
            })
            .min()
            .unwrap_or(MAX_NAP)
            .clamp(Duration::from_millis(10), MAX_NAP)
    }

    /// Keeps the idle zygotes `check` finds nothing wrong with; retires
    /// the others.
    pub(super) fn sweep(&self, profile: &str, pool: &mut Pool, mut check: impl FnMut(&mut Warm) -> Option<Unhealthy>) {
        let mut kept = std::collections::VecDeque::with_capacity(pool.idle.len());
        while let Some(mut w) = pool.idle.pop_front() {
            match check(&mut w) {
                None => kept.push_back(w),
                Some(why) => self.retire(profile, pool, w, why),
            }
        }
        pool.idle = kept;
        pool.stats.idle = pool.idle.len();
    }

    /// Takes an unhealthy zygote out of service: counted, hung up, and an
    /// unresponsive one killed; the refill loop is woken to replace it.
    pub(super) fn retire(&self, profile: &str, pool: &mut Pool, mut w: Warm, why: Unhealthy) {
        *pool.stats.unhealthy.entry(why.as_str().to_string()).or_default() += 1;
        if why == Unhealthy::Dead {
            pool.stats.died += 1;
        } else {
            info!(
                profile,
                pid = w.pid,
                zygote = w.zygote_pid,
                reason = why.as_str(),
                "idle zygote unhealthy: replacing it"
            );
        }
        self.wake.notify_one();
        self.stats_wake.notify_one();
        if why != Unhealthy::Unresponsive {
            return;
        }
        let monitor = w.monitor.take();
        let (child, parent) = (w.pid, w.cgroup_parent.clone());
        drop(w);
        if let Some(fd) = &monitor {
            use std::os::fd::AsFd;
            if let Err(e) = zygote_runtime::sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL) {
                warn!(profile, pid = child, error = %e, "cannot kill an unresponsive zygote");
            }
        }
        let (Some(parent), Ok(rt)) = (parent, tokio::runtime::Handle::try_current()) else {
            return;
        };
        let name = zygote_contract::zygote::pool_cgroup_name(&self.dir, child);
        rt.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(3);
            let gone = |m: &Option<std::os::fd::OwnedFd>| m.as_ref().is_none_or(super::exited) && !running(child);
            while !gone(&monitor) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::task::spawn_blocking(move || remove_pool_cgroup(parent, &name))
                .await
                .ok();
        });
    }
}

/// Removes `<parent>/<name>` in every hierarchy (a killed zygote could not).
fn remove_pool_cgroup(parent: PathBuf, name: &str) {
    let Ok(layout) = zygote_runtime::cgroups::Layout::detect() else {
        return;
    };
    for root in layout.roots() {
        let dir = root.join(parent.strip_prefix("/").unwrap_or(&parent)).join(name);
        // An exiting child may hold it a moment longer.
        for _ in 0..50 {
            match std::fs::remove_dir(&dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => std::thread::sleep(Duration::from_millis(20)),
                _ => break,
            }
        }
    }
}

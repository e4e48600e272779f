//! Resource usage statistics for containerd's metrics.

use std::collections::BTreeMap;
use std::path::Path;

use super::{fs, Cgroup, Layout, Result};

/// v1 memory limits at or above this read back as "no limit"
/// (PAGE_COUNTER_MAX rounded to pages).
const V1_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

/// Statistics of one cgroup. Fields a hierarchy does not provide (missing
/// controller, older kernel) are 0 / `None` / empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Total CPU time consumed (v1 `cpuacct.usage`, v2 `cpu.stat usage_usec`).
    pub usage_total_ns: u64,
    /// User time (v1 `cpuacct.usage_user`, or `cpuacct.stat` ticks).
    pub usage_user_ns: u64,
    /// System time (v1 `cpuacct.usage_sys`, or `cpuacct.stat` ticks).
    pub usage_kernel_ns: u64,
    /// Per-CPU totals, v1 only (`cpuacct.usage_percpu`); empty on v2.
    pub per_cpu_usage_ns: Vec<u64>,
    pub throttling: ThrottlingStats,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThrottlingStats {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time_ns: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// v1 `memory.usage_in_bytes`, v2 `memory.current`.
    pub usage: u64,
    /// `None` when unlimited.
    pub limit: Option<u64>,
    /// Peak usage: v1 `memory.max_usage_in_bytes`, v2 `memory.peak`
    /// (kernel 5.19+, else 0).
    pub max_usage: u64,
    /// Times the limit was hit: v1 `memory.failcnt`, v2 `memory.events max`.
    pub failcnt: u64,
    /// Page cache: v1 `total_cache`, v2 `file` from memory.stat.
    pub cache: u64,
    /// Anonymous memory: v1 `total_rss`, v2 `anon` from memory.stat.
    pub rss: u64,
    /// Swap in use: v1 `memsw.usage - usage`, v2 `memory.swap.current`.
    pub swap_usage: u64,
    /// Swap limit, v2 only (`memory.swap.max`; `None` = unlimited or v1).
    pub swap_limit: Option<u64>,
    /// v1 only: memory+swap usage and limit (`memory.memsw.*`), which is
    /// what containerd's v1 metrics report as "swap".
    pub memsw_usage: Option<u64>,
    pub memsw_limit: Option<u64>,
    /// The raw `memory.stat`.
    pub stat: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PidsStats {
    pub current: u64,
    /// `None` when unlimited.
    pub limit: Option<u64>,
}

pub(super) fn collect(cg: &Cgroup) -> Result<CgroupStats> {
    match cg.layout {
        Layout::V1(_) => collect_v1(cg),
        Layout::V2(_) => collect_v2(&cg.unified_dir()),
    }
}

fn v1_limit(v: u64) -> Option<u64> {
    (v < V1_UNLIMITED).then_some(v)
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).ok().filter(|&t| t > 0).unwrap_or(100)
}

fn collect_v1(cg: &Cgroup) -> Result<CgroupStats> {
    let mut s = CgroupStats::default();
    if let Ok(dir) = cg.controller_dir("cpuacct") {
        s.cpu.usage_total_ns = fs::read_u64(&dir.join("cpuacct.usage"))?;
        match (
            fs::read_u64_opt(&dir.join("cpuacct.usage_user"))?,
            fs::read_u64_opt(&dir.join("cpuacct.usage_sys"))?,
        ) {
            (Some(u), Some(k)) => (s.cpu.usage_user_ns, s.cpu.usage_kernel_ns) = (u, k),
            _ => {
                let stat = fs::parse_keyed(&fs::read(&dir.join("cpuacct.stat"))?);
                let ns_per_tick = 1_000_000_000 / clock_ticks();
                s.cpu.usage_user_ns = stat.get("user").copied().unwrap_or(0) * ns_per_tick;
                s.cpu.usage_kernel_ns = stat.get("system").copied().unwrap_or(0) * ns_per_tick;
            }
        }
        let percpu = dir.join("cpuacct.usage_percpu");
        s.cpu.per_cpu_usage_ns = fs::read(&percpu)?
            .split_whitespace()
            .map(|v| fs::parse_u64(&percpu, v))
            .collect::<Result<_>>()?;
    }
    if let Ok(dir) = cg.controller_dir("cpu") {
        if let Some(text) = fs::read_opt(&dir.join("cpu.stat"))? {
            let st = fs::parse_keyed(&text);
            s.cpu.throttling = ThrottlingStats {
                periods: st.get("nr_periods").copied().unwrap_or(0),
                throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
                throttled_time_ns: st.get("throttled_time").copied().unwrap_or(0),
            };
        }
    }
    if let Ok(dir) = cg.controller_dir("memory") {
        let m = &mut s.memory;
        m.usage = fs::read_u64(&dir.join("memory.usage_in_bytes"))?;
        m.limit = v1_limit(fs::read_u64(&dir.join("memory.limit_in_bytes"))?);
        m.max_usage = fs::read_u64(&dir.join("memory.max_usage_in_bytes"))?;
        m.failcnt = fs::read_u64(&dir.join("memory.failcnt"))?;
        m.stat = fs::parse_keyed(&fs::read(&dir.join("memory.stat"))?);
        let pick = |a: &str, b: &str| m.stat.get(a).or_else(|| m.stat.get(b)).copied().unwrap_or(0);
        m.cache = pick("total_cache", "cache");
        m.rss = pick("total_rss", "rss");
        m.memsw_usage = fs::read_u64_opt(&dir.join("memory.memsw.usage_in_bytes"))?;
        m.memsw_limit = fs::read_u64_opt(&dir.join("memory.memsw.limit_in_bytes"))?.and_then(v1_limit);
        m.swap_usage = m.memsw_usage.map_or(0, |sw| sw.saturating_sub(m.usage));
    }
    if let Ok(dir) = cg.controller_dir("pids") {
        s.pids = read_pids(&dir)?;
    }
    Ok(s)
}

fn read_pids(dir: &Path) -> Result<PidsStats> {
    let current = fs::read_u64_opt(&dir.join("pids.current"))?.unwrap_or(0);
    let max = dir.join("pids.max");
    let limit = match fs::read_opt(&max)? {
        Some(t) => fs::parse_u64_or_max(&max, &t)?,
        None => None,
    };
    Ok(PidsStats { current, limit })
}

fn collect_v2(dir: &Path) -> Result<CgroupStats> {
    let mut s = CgroupStats::default();
    if let Some(text) = fs::read_opt(&dir.join("cpu.stat"))? {
        let st = fs::parse_keyed(&text);
        let us = |k: &str| st.get(k).copied().unwrap_or(0) * 1000;
        s.cpu.usage_total_ns = us("usage_usec");
        s.cpu.usage_user_ns = us("user_usec");
        s.cpu.usage_kernel_ns = us("system_usec");
        s.cpu.throttling = ThrottlingStats {
            periods: st.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
            throttled_time_ns: us("throttled_usec"),
        };
    }
    let m = &mut s.memory;
    m.usage = fs::read_u64_opt(&dir.join("memory.current"))?.unwrap_or(0);
    let max_file = dir.join("memory.max");
    m.limit = match fs::read_opt(&max_file)? {
        Some(t) => fs::parse_u64_or_max(&max_file, &t)?,
        None => None,
    };
    m.max_usage = fs::read_u64_opt(&dir.join("memory.peak"))?.unwrap_or(0);
    if let Some(ev) = fs::read_opt(&dir.join("memory.events"))? {
        m.failcnt = fs::parse_keyed(&ev).get("max").copied().unwrap_or(0);
    }
    if let Some(text) = fs::read_opt(&dir.join("memory.stat"))? {
        m.stat = fs::parse_keyed(&text);
        m.cache = m.stat.get("file").copied().unwrap_or(0);
        m.rss = m.stat.get("anon").copied().unwrap_or(0);
    }
    m.swap_usage = fs::read_u64_opt(&dir.join("memory.swap.current"))?.unwrap_or(0);
    let swap_max = dir.join("memory.swap.max");
    m.swap_limit = match fs::read_opt(&swap_max)? {
        Some(t) => fs::parse_u64_or_max(&swap_max, &t)?,
        None => None,
    };
    s.pids = read_pids(dir)?;
    Ok(s)
}

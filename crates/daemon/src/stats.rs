//! Stats: the task's cgroup counters as containerd's `io.containerd.cgroups.v1.Metrics`.
//!
//! The v1 message is used on cgroup v2 hosts too (containerd-shim-protos 0.10
//! ships no v2 metrics type); `ctr task metrics` and CRI both decode it.
//! Fields the host does not have stay zero.

use containerd_shim_protos::cgroups::metrics::{
    CPUStat, CPUUsage, MemoryEntry, MemoryStat, Metrics, PidsStat, Throttle,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message as _;
use zygote_runtime::cgroups::CgroupStats;

use crate::daemon::Daemon;
use crate::error::DaemonError;

pub(crate) const METRICS_TYPE_URL: &str = "io.containerd.cgroups.v1.Metrics";

/// Converts our cgroup counters into containerd's metrics message.
pub(crate) fn to_metrics(s: &CgroupStats) -> Metrics {
    let stat = |k: &str| s.memory.stat.get(k).copied().unwrap_or(0);
    let usage = CPUUsage {
        total: s.cpu.usage_total_ns,
        kernel: s.cpu.usage_kernel_ns,
        user: s.cpu.usage_user_ns,
        per_cpu: s.cpu.per_cpu_usage_ns.clone(),
        ..Default::default()
    };
    let throttling = Throttle {
        periods: s.cpu.throttling.periods,
        throttled_periods: s.cpu.throttling.throttled_periods,
        throttled_time: s.cpu.throttling.throttled_time_ns,
        ..Default::default()
    };
    let memory = MemoryStat {
        cache: s.memory.cache,
        rss: s.memory.rss,
        rss_huge: stat("rss_huge"),
        mapped_file: stat("mapped_file"),
        dirty: stat("dirty"),
        writeback: stat("writeback"),
        pg_pg_in: stat("pgpgin"),
        pg_pg_out: stat("pgpgout"),
        pg_fault: stat("pgfault"),
        pg_maj_fault: stat("pgmajfault"),
        inactive_anon: stat("inactive_anon"),
        active_anon: stat("active_anon"),
        inactive_file: stat("inactive_file"),
        active_file: stat("active_file"),
        unevictable: stat("unevictable"),
        hierarchical_memory_limit: stat("hierarchical_memory_limit"),
        hierarchical_swap_limit: stat("hierarchical_memsw_limit"),
        total_cache: stat("total_cache"),
        total_rss: stat("total_rss"),
        total_inactive_file: stat("total_inactive_file"),
        total_active_file: stat("total_active_file"),
        total_inactive_anon: stat("total_inactive_anon"),
        total_active_anon: stat("total_active_anon"),
        usage: Some(MemoryEntry {
            limit: s.memory.limit.unwrap_or(u64::MAX),
            usage: s.memory.usage,
            max: s.memory.max_usage,
            failcnt: s.memory.failcnt,
            ..Default::default()
        })
        .into(),
        swap: Some(MemoryEntry {
            limit: s.memory.memsw_limit.or(s.memory.swap_limit).unwrap_or(u64::MAX),
            usage: s.memory.memsw_usage.unwrap_or(s.memory.swap_usage),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    };
    Metrics {
        cpu: Some(CPUStat {
            usage: Some(usage).into(),
            throttling: Some(throttling).into(),
            ..Default::default()
        })
        .into(),
        memory: Some(memory).into(),
        pids: Some(PidsStat {
            current: s.pids.current,
            limit: s.pids.limit.unwrap_or(0),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}

impl Daemon {
    pub(crate) async fn stats(&self, id: &str) -> Result<Any, DaemonError> {
        let task = self.get(id)?;
        let cg = task.cgroup_handle();
        let s = tokio::task::spawn_blocking(move || cg.stats())
            .await
            .map_err(|e| DaemonError::io("stats")(std::io::Error::other(e)))??;
        let value = to_metrics(&s)
            .write_to_bytes()
            .map_err(|e| DaemonError::io("encode metrics")(std::io::Error::other(e)))?;
        Ok(Any {
            type_url: METRICS_TYPE_URL.into(),
            value,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_pids_are_carried_over() {
        let mut s = CgroupStats::default();
        s.memory.usage = 4096;
        s.memory.limit = Some(1 << 20);
        s.pids.current = 3;
        s.cpu.usage_total_ns = 77;
        let m = to_metrics(&s);
        assert_eq!(m.memory.usage.usage, 4096);
        assert_eq!(m.memory.usage.limit, 1 << 20);
        assert_eq!(m.pids.current, 3);
        assert_eq!(m.cpu.usage.total, 77);
    }
}

//! `linux.resources` written to cgroup v1 and v2 control files.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory, LinuxResources, LinuxThrottleDevice,
};

use super::{fs, Cgroup, CgroupError, Layout, Result};

pub(super) fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    match cg.layout {
        Layout::V1(_) => apply_v1(cg, r),
        Layout::V2(_) => apply_v2(cg, r),
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> CgroupError {
    CgroupError::InvalidResource {
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn warn_ignored(r: &LinuxResources, mem: Option<&LinuxMemory>, cpu: Option<&LinuxCpu>) {
    if let Some(m) = mem {
        if m.kernel().is_some() || m.kernel_tcp().is_some() {
            tracing::warn!("linux.resources.memory.kernel/kernelTCP are not supported and ignored");
        }
    }
    if let Some(c) = cpu {
        if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
            tracing::warn!("linux.resources.cpu realtime settings are not supported and ignored");
        }
    }
    if r.network().is_some() {
        tracing::warn!("linux.resources.network is not supported and ignored");
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        tracing::warn!("linux.resources.rdma is not supported and ignored");
    }
}

fn apply_v1(cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    warn_ignored(r, r.memory().as_ref(), r.cpu().as_ref());
    if let Some(mem) = r.memory() {
        let dir = cg.controller_dir("memory")?;
        v1_memory(&dir, mem)?;
    }
    if let Some(cpu) = r.cpu() {
        v1_cpu(cg, cpu)?;
    }
    if let Some(pids) = r.pids() {
        let dir = cg.controller_dir("pids")?;
        fs::write(&dir.join("pids.max"), &pids_value(pids.limit()))?;
    }
    if let Some(bio) = r.block_io() {
        v1_blkio(&cg.controller_dir("blkio")?, bio)?;
    }
    if let Some(pages) = r.hugepage_limits() {
        for h in pages {
            let dir = cg.controller_dir("hugetlb")?;
            let file = dir.join(format!("hugetlb.{}.limit_in_bytes", h.page_size()));
            fs::write(&file, &h.limit().to_string())?;
        }
    }
    if let Some(devices) = r.devices() {
        if !devices.is_empty() {
            v1_devices(&cg.controller_dir("devices")?, devices)?;
        }
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(invalid(
            "linux.resources.unified",
            "requires cgroup v2 but the host uses cgroup v1",
        ));
    }
    Ok(())
}

fn limit_str(v: i64) -> String {
    if v < 0 {
        "-1".to_string()
    } else {
        v.to_string()
    }
}

fn v1_memory(dir: &Path, mem: &LinuxMemory) -> Result<()> {
    let limit_file = dir.join("memory.limit_in_bytes");
    let memsw_file = dir.join("memory.memsw.limit_in_bytes");
    let has_memsw = memsw_file.exists();
    let limit = mem.limit().filter(|&v| v != 0);
    let mut swap = mem.swap().filter(|&v| v != 0);
    // Unlimited memory with swap unset means unlimited memory+swap too (runc).
    if limit == Some(-1) && swap.is_none() && has_memsw {
        swap = Some(-1);
    }
    if swap.is_some() && !has_memsw {
        tracing::warn!(file = %memsw_file.display(), "swap accounting is disabled; linux.resources.memory.swap ignored");
        swap = None;
    }
    match (limit, swap) {
        (Some(l), Some(s)) => {
            // The kernel requires memsw >= memory at every step: raise memsw
            // first when growing, lower memory first when shrinking.
            let current = fs::read_u64(&limit_file)?;
            if s == -1 || current < s as u64 {
                fs::write(&memsw_file, &limit_str(s))?;
                fs::write(&limit_file, &limit_str(l))?;
            } else {
                fs::write(&limit_file, &limit_str(l))?;
                fs::write(&memsw_file, &limit_str(s))?;
            }
        }
        (Some(l), None) => fs::write(&limit_file, &limit_str(l))?,
        (None, Some(s)) => fs::write(&memsw_file, &limit_str(s))?,
        (None, None) => {}
    }
    if let Some(res) = mem.reservation().filter(|&v| v != 0) {
        fs::write(&dir.join("memory.soft_limit_in_bytes"), &limit_str(res))?;
    }
    if let Some(sw) = mem.swappiness() {
        if sw > 100 {
            return Err(invalid(
                "linux.resources.memory.swappiness",
                format!("must be between 0 and 100, got {sw}"),
            ));
        }
        fs::write(&dir.join("memory.swappiness"), &sw.to_string())?;
    }
    if mem.disable_oom_killer() == Some(true) {
        fs::write(&dir.join("memory.oom_control"), "1")?;
    }
    Ok(())
}

fn v1_cpu(cg: &Cgroup, cpu: &LinuxCpu) -> Result<()> {
    let needs_cpu = cpu.shares().is_some()
        || cpu.quota().is_some()
        || cpu.period().is_some()
        || cpu.burst().is_some()
        || cpu.idle().is_some();
    if needs_cpu {
        let dir = cg.controller_dir("cpu")?;
        if let Some(shares) = cpu.shares().filter(|&s| s != 0) {
            fs::write(&dir.join("cpu.shares"), &shares.to_string())?;
        }
        let period_file = dir.join("cpu.cfs_period_us");
        let quota_file = dir.join("cpu.cfs_quota_us");
        let period = cpu.period().filter(|&p| p != 0).map(|p| p.to_string());
        let quota = cpu.quota().filter(|&q| q != 0).map(limit_str);
        match (period, quota) {
            (Some(p), Some(q)) => {
                // Either order can be rejected against the old pair; try both.
                if fs::write(&period_file, &p).is_err() {
                    fs::write(&quota_file, &q)?;
                    fs::write(&period_file, &p)?;
                } else {
                    fs::write(&quota_file, &q)?;
                }
            }
            (Some(p), None) => fs::write(&period_file, &p)?,
            (None, Some(q)) => fs::write(&quota_file, &q)?,
            (None, None) => {}
        }
        if let Some(burst) = cpu.burst() {
            fs::write(&dir.join("cpu.cfs_burst_us"), &burst.to_string())?;
        }
        if let Some(idle) = cpu.idle() {
            fs::write(&dir.join("cpu.idle"), &idle.to_string())?;
        }
    }
    write_cpuset(cg, cpu)
}

fn write_cpuset(cg: &Cgroup, cpu: &LinuxCpu) -> Result<()> {
    let cpus = cpu.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = cpu.mems().as_deref().filter(|s| !s.is_empty());
    if cpus.is_none() && mems.is_none() {
        return Ok(());
    }
    let dir = cg.controller_dir("cpuset")?;
    if let Some(c) = cpus {
        write_v2_aware(cg, &dir, "cpuset", "cpuset.cpus", c)?;
    }
    if let Some(m) = mems {
        write_v2_aware(cg, &dir, "cpuset", "cpuset.mems", m)?;
    }
    Ok(())
}

fn pids_value(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    }
}

fn v1_blkio(dir: &Path, bio: &LinuxBlockIo) -> Result<()> {
    if let Some(w) = bio.weight() {
        let candidates = [dir.join("blkio.weight"), dir.join("blkio.bfq.weight")];
        match candidates.iter().find(|f| f.exists()) {
            Some(f) => fs::write(f, &w.to_string())?,
            None => {
                tracing::warn!(dir = %dir.display(), "no blkio weight file (CFQ/BFQ not in use); linux.resources.blockIO.weight ignored")
            }
        }
    }
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        ("blkio.throttle.read_bps_device", bio.throttle_read_bps_device()),
        ("blkio.throttle.write_bps_device", bio.throttle_write_bps_device()),
        ("blkio.throttle.read_iops_device", bio.throttle_read_iops_device()),
        ("blkio.throttle.write_iops_device", bio.throttle_write_iops_device()),
    ];
    for (file, devs) in throttles {
        for d in devs.iter().flatten() {
            fs::write(&dir.join(file), &format!("{}:{} {}", d.major(), d.minor(), d.rate()))?;
        }
    }
    Ok(())
}

/// Devices every container may use whatever its spec says, appended after
/// the spec's rules exactly like runc's `AllowedDevices`: mknod of any
/// device (the node is useless without rw), the standard character devices,
/// the pty devices and tun.
pub(super) const DEFAULT_ALLOWED: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:8 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:5 rwm",
    "c 1:9 rwm",
    "c 5:1 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
];

/// At creation on v1: deny all (runc builds its target state from an
/// allow-list whatever the rules say; a new v1 cgroup would otherwise
/// inherit its parent's allow-all), then the spec's rules, then
/// [`DEFAULT_ALLOWED`] — what the v2 device program enforces too.
pub(super) fn v1_create_devices(cg: &Cgroup, r: Option<&LinuxResources>) -> Result<()> {
    let Ok(dir) = cg.controller_dir("devices") else {
        return Ok(());
    };
    let rules = r.and_then(|r| r.devices().as_deref()).unwrap_or_default();
    fs::write(&dir.join("devices.deny"), "a *:* rwm")?;
    v1_devices(&dir, rules)?;
    for line in DEFAULT_ALLOWED {
        fs::write(&dir.join("devices.allow"), line)?;
    }
    Ok(())
}

/// Writes device rules in order to `devices.allow` / `devices.deny`.
fn v1_devices(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    for rule in rules {
        let typ = match rule.typ() {
            None | Some(LinuxDeviceType::A) => 'a',
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
            Some(LinuxDeviceType::B) => 'b',
            Some(LinuxDeviceType::P) => continue, // FIFOs are not device-controlled
        };
        let num = |n: Option<i64>| n.filter(|&v| v >= 0).map_or("*".to_string(), |v| v.to_string());
        let access = rule.access().as_deref().filter(|a| !a.is_empty()).unwrap_or("rwm");
        let line = if typ == 'a' {
            format!("a *:* {access}")
        } else {
            format!("{typ} {}:{} {access}", num(rule.major()), num(rule.minor()))
        };
        let file = if rule.allow() { "devices.allow" } else { "devices.deny" };
        fs::write(&dir.join(file), &line)?;
    }
    Ok(())
}

/// v2 writes check first that the controller's file exists, so a missing
/// controller is reported as such rather than as ENOENT.
fn write_v2_aware(cg: &Cgroup, dir: &Path, controller: &str, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    if matches!(cg.layout, Layout::V2(_)) && !path.exists() {
        return Err(CgroupError::ControllerUnavailable {
            controller: controller.to_string(),
            cgroup: cg.path.clone(),
        });
    }
    fs::write(&path, value)
}

/// runc's conversion of cpu.shares (2..262144) to cpu.weight (1..10000).
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// runc's conversion of blkio.weight (10..1000) to io.weight (1..10000).
pub(crate) fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).clamp(10, 1000) - 10) * 9999 / 990
}

/// OCI `swap` is memory+swap; v2 `memory.swap.max` is swap alone.
/// Returns `None` when nothing is to be written.
pub(crate) fn v2_swap_value(limit: Option<i64>, swap: Option<i64>) -> Result<Option<String>> {
    let limit = limit.unwrap_or(0);
    let swap = swap.unwrap_or(0);
    const FIELD: &str = "linux.resources.memory.swap";
    Ok(match (limit, swap) {
        (-1, 0) => Some("max".to_string()),
        (_, -1) => Some("max".to_string()),
        (_, 0) => None,
        (0 | -1, s) => return Err(invalid(FIELD, format!("({s}) cannot be set without memory.limit"))),
        (l, s) if s < l => {
            return Err(invalid(
                FIELD,
                format!("({s}) must not be lower than memory.limit ({l})"),
            ))
        }
        (l, s) => Some((s - l).to_string()),
    })
}

fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

fn apply_v2(cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    warn_ignored(r, r.memory().as_ref(), r.cpu().as_ref());
    let dir: PathBuf = cg.unified_dir();
    let w = |controller: &str, file: &str, value: &str| write_v2_aware(cg, &dir, controller, file, value);
    if let Some(mem) = r.memory() {
        if let Some(swap) = v2_swap_value(mem.limit(), mem.swap())? {
            let swap_file = dir.join("memory.swap.max");
            if swap_file.exists() {
                fs::write(&swap_file, &swap)?;
            } else if dir.join("memory.max").exists() && swap != "max" && swap != "0" {
                // Like runc: without swap accounting only "no limit" and
                // "no swap" can be honoured (both are no-ops then).
                return Err(invalid(
                    "linux.resources.memory.swap",
                    format!(
                        "cannot be applied: swap accounting is off ({} does not exist)",
                        swap_file.display()
                    ),
                ));
            }
        }
        if let Some(l) = mem.limit().filter(|&v| v != 0) {
            w("memory", "memory.max", &max_or(l))?;
        }
        if let Some(res) = mem.reservation().filter(|&v| v != 0) {
            w("memory", "memory.low", &max_or(res))?;
        }
        if mem.swappiness().is_some() {
            tracing::warn!("linux.resources.memory.swappiness has no cgroup v2 equivalent and is ignored");
        }
        if mem.disable_oom_killer() == Some(true) {
            tracing::warn!("linux.resources.memory.disableOOMKiller has no cgroup v2 equivalent and is ignored");
        }
    }
    if let Some(cpu) = r.cpu() {
        if let Some(shares) = cpu.shares().filter(|&s| s != 0) {
            w("cpu", "cpu.weight", &shares_to_weight(shares).to_string())?;
        }
        let quota = cpu.quota().filter(|&q| q != 0);
        let period = cpu.period().filter(|&p| p != 0);
        if quota.is_some() || period.is_some() {
            let mut value = quota.filter(|&q| q > 0).map_or("max".to_string(), |q| q.to_string());
            if let Some(p) = period {
                value.push_str(&format!(" {p}"));
            }
            w("cpu", "cpu.max", &value)?;
        }
        if let Some(burst) = cpu.burst() {
            w("cpu", "cpu.max.burst", &burst.to_string())?;
        }
        if let Some(idle) = cpu.idle() {
            w("cpu", "cpu.idle", &idle.to_string())?;
        }
        write_cpuset(cg, cpu)?;
    }
    if let Some(pids) = r.pids() {
        w("pids", "pids.max", &pids_value(pids.limit()))?;
    }
    if let Some(bio) = r.block_io() {
        if let Some(weight) = bio.weight().filter(|&v| v != 0) {
            if dir.join("io.bfq.weight").exists() {
                w("io", "io.bfq.weight", &weight.to_string())?;
            } else {
                w("io", "io.weight", &blkio_to_io_weight(weight).to_string())?;
            }
        }
        // Per-device weights as runc 1.1 (`bfqDeviceWeightSupported`): only
        // where io.bfq.weight reads more than a bare number (BFQ in use,
        // kernel 5.4+); otherwise there is nowhere to write them.
        let bfq = dir.join("io.bfq.weight");
        let devices = bio.weight_device().iter().flatten();
        if std::fs::read_to_string(&bfq).is_ok_and(|s| s.trim().parse::<u64>().is_err()) {
            for d in devices {
                let weight = d.weight().unwrap_or(0);
                fs::write(&bfq, &format!("{}:{} {weight}\n", d.major(), d.minor()))?;
            }
        }
        let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
            ("rbps", bio.throttle_read_bps_device()),
            ("wbps", bio.throttle_write_bps_device()),
            ("riops", bio.throttle_read_iops_device()),
            ("wiops", bio.throttle_write_iops_device()),
        ];
        for (key, devs) in throttles {
            for d in devs.iter().flatten() {
                w(
                    "io",
                    "io.max",
                    &format!("{}:{} {key}={}", d.major(), d.minor(), d.rate()),
                )?;
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        w("hugetlb", &format!("hugetlb.{}.max", h.page_size()), &max_or(h.limit()))?;
    }
    // Device rules: a BPF program, installed by Cgroup::configure/update.
    if let Some(unified) = r.unified() {
        for (key, value) in unified {
            if key.is_empty() || key.contains('/') || key.starts_with('.') {
                return Err(invalid(
                    &format!("linux.resources.unified[{key:?}]"),
                    "is not a cgroup file name",
                ));
            }
            let controller = key.split('.').next().unwrap_or(key);
            w(controller, key, value)?;
        }
    }
    Ok(())
}

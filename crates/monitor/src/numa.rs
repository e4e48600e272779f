//! A zygote's NUMA placement (the daemon's choice in
//! [`ZygoteConfig::numa`](zygote_contract::zygote::ZygoteConfig)): before
//! the zygote clones its child, [`place`] narrows this process's CPU
//! affinity to the node's CPUs and sets `MPOL_PREFERRED` on the node, so
//! the child (and what it warms: the Wasm engine, its stack, its page
//! tables) starts there. At claim, [`widen`] gives the zygote and its child
//! their CPU affinity back, as the task would have it under runc (where the
//! init inherits containerd-shim's mask, then its cgroup's cpuset applies);
//! the memory preference stays: it is soft (the kernel falls back to other
//! nodes when the node is short), and the task's first allocations then
//! land next to the memory the zygote already touched.
//!
//! Placement is best effort: a failure is logged and the zygote serves
//! anyway (a birth never fails for it).

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use tracing::{debug, warn};
use zygote_contract::zygote::NumaPlacement;

/// `MPOL_PREFERRED` (`<linux/mempolicy.h>`).
const MPOL_PREFERRED: libc::c_int = 1;

/// Narrows this (single-threaded) process to `numa`'s node. Returns the
/// CPU mask it had before, for [`widen`], when the affinity was narrowed.
pub(crate) fn place(numa: &NumaPlacement) -> Option<CpuSet> {
    let original = match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => Some(set),
        Err(e) => {
            warn!(node = numa.node, error = %e, "sched_getaffinity: the zygote is not placed on its NUMA node");
            None
        }
    };
    let narrowed = original.and_then(|original| {
        let mut set = CpuSet::new();
        for cpu in &numa.cpus {
            if set.set(*cpu as usize).is_err() {
                warn!(node = numa.node, cpu, "CPU beyond the affinity mask's size: the zygote's CPUs are not narrowed");
                return None;
            }
        }
        match sched_setaffinity(Pid::from_raw(0), &set) {
            Ok(()) => Some(original),
            Err(e) => {
                warn!(node = numa.node, cpus = ?numa.cpus, error = %e, "sched_setaffinity: the zygote's CPUs are not narrowed");
                None
            }
        }
    });
    if let Err(e) = prefer_node(numa.node) {
        warn!(node = numa.node, error = %e, "set_mempolicy(MPOL_PREFERRED): the zygote's memory has no preferred node");
    }
    debug!(node = numa.node, narrowed = narrowed.is_some(), "zygote placed");
    narrowed
}

/// Gives this process and its child `child` the CPU mask they had before
/// [`place`] (called at claim, before the task's init exists or runs).
pub(crate) fn widen(original: &CpuSet, child: i32) {
    for pid in [0, child] {
        if let Err(e) = sched_setaffinity(Pid::from_raw(pid), original) {
            warn!(pid, error = %e, "cannot restore the CPU affinity at claim: the task keeps its zygote's node");
        }
    }
}

/// `set_mempolicy(MPOL_PREFERRED, {node})` for the calling thread.
fn prefer_node(node: u32) -> nix::Result<()> {
    const BITS: usize = libc::c_ulong::BITS as usize;
    let mut mask = vec![0 as libc::c_ulong; node as usize / BITS + 1];
    mask[node as usize / BITS] |= 1 << (node as usize % BITS);
    // The kernel reads `maxnode - 1` bits (an off-by-one kept for ABI).
    let maxnode = (mask.len() * BITS + 1) as libc::c_ulong;
    // SAFETY: set_mempolicy reads `maxnode - 1` bits, i.e. exactly
    // `mask.len()` longs, from `mask`, which lives across the call; it
    // writes nothing and changes only this thread's memory policy.
    let rc = unsafe { libc::syscall(libc::SYS_set_mempolicy, MPOL_PREFERRED, mask.as_ptr(), maxnode) };
    nix::errno::Errno::result(rc).map(drop)
}

#[cfg(test)]
mod tests {
    use nix::sched::{sched_getaffinity, CpuSet};
    use nix::unistd::Pid;

    fn cpus(set: &CpuSet) -> Vec<usize> {
        (0..CpuSet::count()).filter(|c| set.is_set(*c).unwrap()).collect()
    }

    /// On a thread of its own (affinity and memory policy are per thread):
    /// narrowed to CPU 0 on node 0, then widened back to the mask it had.
    #[test]
    fn narrowed_then_widened() {
        std::thread::spawn(|| {
            let before = cpus(&sched_getaffinity(Pid::from_raw(0)).unwrap());
            let numa = zygote_contract::zygote::NumaPlacement { node: 0, cpus: vec![0] };
            let original = super::place(&numa).expect("narrowed");
            assert_eq!(cpus(&original), before);
            assert_eq!(cpus(&sched_getaffinity(Pid::from_raw(0)).unwrap()), [0]);
            // Node 0 exists on every machine: the preference is accepted.
            super::prefer_node(0).unwrap();
            super::widen(&original, 0);
            assert_eq!(cpus(&sched_getaffinity(Pid::from_raw(0)).unwrap()), before);
            // A node the machine lacks is refused (and `place` only logs it).
            assert!(super::prefer_node(1000).is_err());
        })
        .join()
        .unwrap();
    }
}

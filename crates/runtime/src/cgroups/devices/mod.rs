//! Device rules on cgroup v2: a `BPF_CGROUP_DEVICE` program built from
//! `linux.resources.devices` and attached to the container's cgroup.
//!
//! cgroup v2 has no devices controller; the kernel asks the eBPF programs
//! attached to the cgroup (and its ancestors) instead. [`install`] builds
//! the program from the spec's rules followed by the same default allow
//! list the v1 path writes (runc's `AllowedDevices`), loads it, attaches it
//! with `BPF_F_ALLOW_MULTI` and then detaches whatever device programs were
//! attached there before — runc's order for Update, so the cgroup is never
//! without a filter (for a moment both apply, and both must allow). The
//! program needs no helper functions, so its license string does not have
//! to be GPL-compatible; it is the project's. The cgroup holds the only
//! reference once our descriptor is closed: the program goes away with the
//! cgroup.
//!
//! The instructions are generated here ([`program`]) rather than with a
//! crate: the filter needs eight opcodes, and the maintained options are a
//! poor fit — `aya` compiles programs for a bpf target, `rbpf` (youki's
//! choice) is an interpreter/JIT whose assembler we would use a sliver of,
//! and `libbpf-sys` builds libbpf in C. The encodings are checked against
//! the kernel's verifier by the kernel tests and, semantically, by a small
//! interpreter in the unit tests.
//!
//! Used only on a pure cgroup v2 host. On a hybrid host the v1 devices
//! controller enforces the same rules; a program on the container's
//! unified directory would check everything a second time and put a
//! verifier run on the warm path's critical path for nothing.
//!
//! Kernels before 5.11 charge BPF programs to `RLIMIT_MEMLOCK`; the limit
//! is not raised here (the daemon's limits are inherited by containers), so
//! a loading failure there names the errno.

mod bpf;
pub(crate) mod program;

#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
mod tests;

use std::ffi::CStr;
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use oci_spec::runtime::LinuxDeviceCgroup;

use super::resources::DEFAULT_ALLOWED;
use super::{CgroupError, Result};
use program::Rule;

const LICENSE: &CStr = c"Apache-2.0";

/// The rules the program enforces: the spec's, then [`DEFAULT_ALLOWED`].
pub(crate) fn rules(spec: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    let mut rules = Vec::with_capacity(spec.len() + DEFAULT_ALLOWED.len());
    for r in spec {
        rules.extend(Rule::from_oci(r)?);
    }
    for line in DEFAULT_ALLOWED {
        rules.push(Rule::parse_allow(line)?);
    }
    Ok(rules)
}

/// Puts the program for `spec` rules (+ defaults) on the cgroup2 directory
/// `dir`, replacing the device programs attached there before.
/// A directory that is not on cgroup2 (a fixture tree standing in for
/// one, see [`Layout::from_root`](super::Layout::from_root)) cannot take a
/// program: the rules are checked, a warning logged, nothing attached.
pub(crate) fn install(dir: &Path, spec: &[LinuxDeviceCgroup]) -> Result<()> {
    let rules = rules(spec)?;
    let on_cgroup2 =
        nix::sys::statfs::statfs(dir).is_ok_and(|st| st.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
    if !on_cgroup2 {
        tracing::warn!(cgroup = %dir.display(), "not a cgroup2 directory: device rules not enforced");
        return Ok(());
    }
    attach_rules(dir, &rules)
}

/// Attaches the program for exactly `rules` to `dir`, then detaches the
/// device programs that were there before.
pub(crate) fn attach_rules(dir: &Path, rules: &[Rule]) -> Result<()> {
    let fail = |op: &'static str, errno: Errno, detail: String| CgroupError::DeviceFilter {
        path: dir.to_path_buf(),
        op,
        errno,
        detail,
    };
    let cgroup = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map_err(|e| fail("open", Errno::from_raw(e.raw_os_error().unwrap_or(0)), String::new()))?;
    let old = bpf::prog_query(cgroup.as_fd()).map_err(|e| fail("BPF_PROG_QUERY", e, String::new()))?;
    let insns = program::build(rules);
    let prog = match bpf::prog_load(&insns, LICENSE, &mut []) {
        Ok(fd) => fd,
        Err(Errno::EACCES | Errno::EINVAL) => {
            // Load again with the verifier's log to say why.
            let mut log = vec![0u8; 64 * 1024];
            let err = bpf::prog_load(&insns, LICENSE, &mut log).err().unwrap_or(Errno::EINVAL);
            let text = CStr::from_bytes_until_nul(&log)
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Err(fail("BPF_PROG_LOAD", err, format!(" (verifier: {})", text.trim())));
        }
        Err(e) => return Err(fail("BPF_PROG_LOAD", e, String::new())),
    };
    bpf::prog_attach(cgroup.as_fd(), prog.as_fd(), bpf::BPF_F_ALLOW_MULTI)
        .map_err(|e| fail("BPF_PROG_ATTACH", e, String::new()))?;
    for id in old {
        let old_prog = match bpf::prog_get_fd_by_id(id) {
            Ok(fd) => fd,
            // Detached (or the cgroup removed) since the query.
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(fail("BPF_PROG_GET_FD_BY_ID", e, format!(" (program {id})"))),
        };
        match bpf::prog_detach(cgroup.as_fd(), old_prog.as_fd()) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(fail("BPF_PROG_DETACH", e, format!(" (program {id})"))),
        }
    }
    tracing::debug!(cgroup = %dir.display(), rules = rules.len(), insns = insns.len(), "device filter attached");
    Ok(())
}

/// Ids of the device programs attached to `dir` (for tests).
#[cfg(test)]
pub(crate) fn attached(dir: &Path) -> Result<Vec<u32>> {
    let cgroup = File::open(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    bpf::prog_query(cgroup.as_fd()).map_err(|errno| CgroupError::DeviceFilter {
        path: dir.to_path_buf(),
        op: "BPF_PROG_QUERY",
        errno,
        detail: String::new(),
    })
}

//! [`CompiledSeccomp`]: BPF programs ready to install, their wire form
//! (compiled once in the daemon, carried in `task.json`) and their
//! installation with seccomp(2).

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use super::SeccompError;

/// BPF programs ready for installation, in install order.
#[derive(Clone)]
pub struct CompiledSeccomp {
    pub(super) programs: Vec<Vec<libc::sock_filter>>,
    pub(super) flags: libc::c_ulong,
}

impl std::fmt::Debug for CompiledSeccomp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSeccomp")
            .field("program_lengths", &self.program_lengths())
            .field("flags", &self.flags)
            .finish()
    }
}

/// Wire form of [`CompiledSeccomp`]: each instruction packed into a `u64`
/// (`code << 48 | jt << 40 | jf << 32 | k`), so a filter compiled once in the
/// daemon travels to the monitor and the container child in `task.json`.
#[derive(Serialize, Deserialize)]
struct WireSeccomp {
    programs: Vec<Vec<u64>>,
    flags: u64,
}

impl Serialize for CompiledSeccomp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let programs = self
            .programs
            .iter()
            .map(|p| {
                p.iter()
                    .map(|i| {
                        (u64::from(i.code) << 48) | (u64::from(i.jt) << 40) | (u64::from(i.jf) << 32) | u64::from(i.k)
                    })
                    .collect()
            })
            .collect();
        WireSeccomp {
            programs,
            flags: self.flags,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for CompiledSeccomp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = WireSeccomp::deserialize(d)?;
        if w.programs.iter().any(|p| p.is_empty() || p.len() > 4096) {
            return Err(serde::de::Error::custom(
                "seccomp program of 0 or more than 4096 instructions",
            ));
        }
        let programs = w
            .programs
            .iter()
            .map(|p| {
                p.iter()
                    .map(|&v| libc::sock_filter {
                        code: (v >> 48) as u16,
                        jt: (v >> 40) as u8,
                        jf: (v >> 32) as u8,
                        k: v as u32,
                    })
                    .collect()
            })
            .collect();
        Ok(CompiledSeccomp {
            programs,
            flags: w.flags as libc::c_ulong,
        })
    }
}

impl CompiledSeccomp {
    /// `self`'s programs followed by `other`'s: installing both stacks the
    /// filters, so a syscall gets the most restrictive of their verdicts
    /// (a profile's additions can only tighten the spec's filter).
    pub fn stacked(mut self, other: &CompiledSeccomp) -> CompiledSeccomp {
        self.programs.extend(other.programs.iter().cloned());
        self.flags |= other.flags;
        self
    }

    /// Number of instructions of each program, in install order.
    pub fn program_lengths(&self) -> Vec<usize> {
        self.programs.iter().map(Vec::len).collect()
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits passed to seccomp(2).
    pub fn flags(&self) -> libc::c_ulong {
        self.flags
    }

    /// True if the profile allows everything and nothing will be installed.
    pub fn is_empty(&self) -> bool {
        self.programs.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn programs(&self) -> &[Vec<libc::sock_filter>] {
        &self.programs
    }

    /// Installs the programs on the calling thread (every thread with TSYNC).
    ///
    /// The caller must have set `PR_SET_NO_NEW_PRIVS` or hold
    /// `CAP_SYS_ADMIN`. Meant for a forked, single-threaded child right
    /// before execve: it performs no allocation and makes no syscall other
    /// than seccomp(2) on the success path.
    pub fn apply(&self) -> Result<(), SeccompError> {
        let count = self.programs.len();
        for (index, prog) in self.programs.iter().enumerate() {
            let fprog = libc::sock_fprog {
                // compile() guarantees len <= 4096.
                len: prog.len() as libc::c_ushort,
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            // SAFETY: `fprog` points at `prog`, a live, correctly sized array
            // of sock_filter that outlives the call; the kernel copies it.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    self.flags,
                    &fprog as *const libc::sock_fprog,
                )
            };
            if rc > 0 {
                return Err(SeccompError::Tsync { index, count, tid: rc });
            }
            if rc < 0 {
                return Err(SeccompError::Install {
                    index,
                    count,
                    errno: Errno::last(),
                });
            }
        }
        Ok(())
    }
}

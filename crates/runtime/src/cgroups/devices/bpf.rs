//! The bpf(2) calls the device filter needs: load a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program, attach it to / detach it from a
//! cgroup2 directory, list the programs attached there and open one by id.
//!
//! Each call fills its own member of `union bpf_attr` (`<linux/bpf.h>`),
//! declared here with the fields used and zeroed padding behind them: the
//! kernel accepts a short or a longer-but-zero-tailed attr, and
//! `BPF_PROG_QUERY` writes results (`revision`) past the fields older
//! kernels had, so the padding keeps those writes inside our memory. No
//! implicit padding exists between fields (every gap is a named, zeroed
//! field), so no uninitialised byte reaches the kernel.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use super::program::Insn;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Several programs on one cgroup, all of which must allow.
pub(super) const BPF_F_ALLOW_MULTI: u32 = 2;

/// Zeroed room behind every attr (bpf_attr is ~150 bytes today).
type Tail = [u64; 24];

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    tail: Tail,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    /// `relative_fd` on kernels ≥ 6.6; must be 0 here.
    relative_fd: u32,
    tail: Tail,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
    tail: Tail,
}

#[repr(C)]
#[derive(Default)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
    pad: u32,
    tail: Tail,
}

/// bpf(2) with `attr`; returns the non-negative result.
///
/// # Safety
///
/// `attr` must be the attr type the kernel expects for `cmd`, and every
/// pointer stored in it must be valid for the kernel's reads and writes for
/// the duration of the call.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> Result<i32, Errno> {
    // SAFETY: `attr` is a live, exclusively borrowed value of
    // `size_of::<T>()` bytes; the caller guarantees its contents match `cmd`.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret as i32)
    }
}

/// Takes ownership of a descriptor bpf(2) just returned.
fn owned(fd: i32) -> OwnedFd {
    // SAFETY: `fd` is a new descriptor returned by the kernel to this call
    // and not owned by anything else yet.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Loads `insns` as a cgroup device program. On failure `log` receives the
/// verifier's explanation (NUL-terminated) when the kernel gave one.
pub(super) fn prog_load(insns: &[Insn], license: &CStr, log: &mut [u8]) -> Result<OwnedFd, Errno> {
    let mut name = [0u8; 16];
    name[..10].copy_from_slice(b"zygote_dev");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        log_size: log.len() as u32,
        log_buf: if log.is_empty() { 0 } else { log.as_mut_ptr() as u64 },
        prog_name: name,
        ..Default::default()
    };
    // SAFETY: ProgLoadAttr is bpf_attr's BPF_PROG_LOAD member; `insns`
    // (repr(C) bpf_insn, `insn_cnt` of them), the NUL-terminated `license`
    // and `log` (`log_size` writable bytes) outlive the call.
    unsafe { bpf(BPF_PROG_LOAD, &mut attr) }.map(owned)
}

/// Attaches `prog` to the cgroup directory `cgroup` as a device program.
pub(super) fn prog_attach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>, flags: u32) -> Result<(), Errno> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        ..Default::default()
    };
    // SAFETY: AttachAttr is bpf_attr's BPF_PROG_ATTACH member; it holds
    // descriptors, no pointers.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(drop)
}

/// Detaches the device program `prog` from the cgroup directory `cgroup`.
pub(super) fn prog_detach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> Result<(), Errno> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: BPF_PROG_DETACH takes the BPF_PROG_ATTACH member; it holds
    // descriptors, no pointers.
    unsafe { bpf(BPF_PROG_DETACH, &mut attr) }.map(drop)
}

/// Ids of the device programs attached directly to `cgroup`.
pub(super) fn prog_query(cgroup: BorrowedFd<'_>) -> Result<Vec<u32>, Errno> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = QueryAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        // SAFETY: QueryAttr is bpf_attr's BPF_PROG_QUERY member (with room
        // for the fields newer kernels write back); `prog_ids` points to
        // `prog_cnt` writable u32s that outlive the call.
        match unsafe { bpf(BPF_PROG_QUERY, &mut attr) } {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            // More programs than room: prog_cnt now says how many.
            Err(Errno::ENOSPC) if attr.prog_cnt as usize > ids.len() => ids.resize(attr.prog_cnt as usize, 0),
            Err(e) => return Err(e),
        }
    }
}

/// A descriptor for the loaded program with id `id`.
pub(super) fn prog_get_fd_by_id(id: u32) -> Result<OwnedFd, Errno> {
    let mut attr = GetFdByIdAttr {
        prog_id: id,
        ..Default::default()
    };
    // SAFETY: GetFdByIdAttr is bpf_attr's BPF_*_GET_FD_BY_ID member; it
    // holds no pointers.
    unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) }.map(owned)
}

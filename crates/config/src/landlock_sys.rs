//! The Landlock system calls and their kernel ABI (`<linux/landlock.h>`):
//! constants, struct layouts and the only `unsafe` code of this crate.
//! Everything above this module works with safe wrappers.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// `landlock_create_ruleset` flag: return the highest supported ABI version.
const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1 << 0;
/// `landlock_add_rule` rule types.
const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;
const LANDLOCK_RULE_NET_PORT: libc::c_int = 2;

// Filesystem access rights (`LANDLOCK_ACCESS_FS_*`).
pub const ACCESS_FS_EXECUTE: u64 = 1 << 0;
pub const ACCESS_FS_WRITE_FILE: u64 = 1 << 1;
pub const ACCESS_FS_READ_FILE: u64 = 1 << 2;
pub const ACCESS_FS_READ_DIR: u64 = 1 << 3;
pub const ACCESS_FS_REMOVE_DIR: u64 = 1 << 4;
pub const ACCESS_FS_REMOVE_FILE: u64 = 1 << 5;
pub const ACCESS_FS_MAKE_CHAR: u64 = 1 << 6;
pub const ACCESS_FS_MAKE_DIR: u64 = 1 << 7;
pub const ACCESS_FS_MAKE_REG: u64 = 1 << 8;
pub const ACCESS_FS_MAKE_SOCK: u64 = 1 << 9;
pub const ACCESS_FS_MAKE_FIFO: u64 = 1 << 10;
pub const ACCESS_FS_MAKE_BLOCK: u64 = 1 << 11;
pub const ACCESS_FS_MAKE_SYM: u64 = 1 << 12;
/// ABI 2.
pub const ACCESS_FS_REFER: u64 = 1 << 13;
/// ABI 3.
pub const ACCESS_FS_TRUNCATE: u64 = 1 << 14;
/// ABI 5.
pub const ACCESS_FS_IOCTL_DEV: u64 = 1 << 15;

// Network access rights (`LANDLOCK_ACCESS_NET_*`, ABI 4).
pub const ACCESS_NET_BIND_TCP: u64 = 1 << 0;
pub const ACCESS_NET_CONNECT_TCP: u64 = 1 << 1;

// Scopes (`LANDLOCK_SCOPE_*`, ABI 6).
pub const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
pub const SCOPE_SIGNAL: u64 = 1 << 1;

/// `struct landlock_ruleset_attr`. Older kernels know only a prefix of it:
/// see [`ruleset_attr_size`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct RulesetAttr {
    pub handled_access_fs: u64,
    pub handled_access_net: u64,
    pub scoped: u64,
}

/// `struct landlock_path_beneath_attr` (packed in the UAPI header).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy)]
pub struct PathBeneathAttr {
    pub allowed_access: u64,
    pub parent_fd: i32,
}

/// `struct landlock_net_port_attr`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct NetPortAttr {
    pub allowed_access: u64,
    pub port: u64,
}

/// The `size` argument of `landlock_create_ruleset` for an ABI: the kernel
/// rejects (E2BIG) a struct larger than it knows unless the tail is zero,
/// so pass exactly the fields the ABI has.
pub fn ruleset_attr_size(abi: u32) -> usize {
    match abi {
        0..=3 => 8,
        4..=5 => 16,
        _ => std::mem::size_of::<RulesetAttr>(),
    }
}

fn check(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// The highest Landlock ABI the kernel supports (`Err` if Landlock is not
/// built in or disabled at boot: `ENOSYS` / `EOPNOTSUPP`).
pub fn abi_version() -> Result<u32, Errno> {
    // SAFETY: with a NULL attr and size 0 the kernel reads no memory; the
    // VERSION flag only returns a number.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    check(ret).map(|v| v as u32)
}

/// `landlock_create_ruleset(attr, size, 0)`.
pub fn create_ruleset(attr: &RulesetAttr, size: usize) -> Result<OwnedFd, Errno> {
    assert!(size <= std::mem::size_of::<RulesetAttr>());
    // SAFETY: `attr` is a valid RulesetAttr and `size` does not exceed it, so
    // the kernel reads only memory we own.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            attr as *const RulesetAttr,
            size,
            0 as libc::c_uint,
        )
    };
    let fd = check(ret)? as RawFd;
    // SAFETY: the kernel just returned this new descriptor (O_CLOEXEC) and
    // nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `landlock_add_rule(ruleset, LANDLOCK_RULE_PATH_BENEATH, attr, 0)`.
pub fn add_path_beneath(ruleset: BorrowedFd<'_>, attr: &PathBeneathAttr) -> Result<(), Errno> {
    // SAFETY: `attr` points to a valid packed landlock_path_beneath_attr that
    // outlives the call; the kernel only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            LANDLOCK_RULE_PATH_BENEATH,
            attr as *const PathBeneathAttr,
            0 as libc::c_uint,
        )
    };
    check(ret).map(drop)
}

/// `landlock_add_rule(ruleset, LANDLOCK_RULE_NET_PORT, attr, 0)`.
pub fn add_net_port(ruleset: BorrowedFd<'_>, attr: &NetPortAttr) -> Result<(), Errno> {
    // SAFETY: `attr` points to a valid landlock_net_port_attr that outlives
    // the call; the kernel only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            LANDLOCK_RULE_NET_PORT,
            attr as *const NetPortAttr,
            0 as libc::c_uint,
        )
    };
    check(ret).map(drop)
}

/// `landlock_restrict_self(ruleset, 0)`: enforce the ruleset on the calling
/// thread (and its future children).
pub fn restrict_self(ruleset: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: plain integer arguments; no memory is passed.
    let ret = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0 as libc::c_uint) };
    check(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_layouts_match_the_uapi() {
        assert_eq!(std::mem::size_of::<RulesetAttr>(), 24);
        assert_eq!(std::mem::size_of::<PathBeneathAttr>(), 12);
        assert_eq!(std::mem::size_of::<NetPortAttr>(), 16);
        assert_eq!(ruleset_attr_size(1), 8);
        assert_eq!(ruleset_attr_size(3), 8);
        assert_eq!(ruleset_attr_size(4), 16);
        assert_eq!(ruleset_attr_size(5), 16);
        assert_eq!(ruleset_attr_size(6), 24);
        assert_eq!(ruleset_attr_size(7), 24);
    }

    #[test]
    fn empty_ruleset_is_rejected_by_the_kernel() {
        // A ruleset that handles nothing is ENOMSG: proves the syscall and
        // the attr size reach the kernel as intended.
        let abi = abi_version().expect("landlock must be enabled on this machine");
        let attr = RulesetAttr::default();
        let err = create_ruleset(&attr, ruleset_attr_size(abi)).unwrap_err();
        assert_eq!(err, Errno::ENOMSG);
        let attr = RulesetAttr {
            handled_access_fs: ACCESS_FS_EXECUTE,
            ..Default::default()
        };
        create_ruleset(&attr, ruleset_attr_size(abi)).expect("create a real ruleset");
    }
}

//! Raw system calls that nix does not wrap (or does not wrap the way the
//! init sequence needs them).
//!
//! Every function here is a small, named wrapper around exactly one kernel
//! interface; every `unsafe` block carries a `// SAFETY:` comment listing the
//! invariants it relies on. Everything else in the crate uses nix.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{self, SigSet, SigmaskHow};
use nix::unistd::{ForkResult, Pid};

/// `struct clone_args` from `<linux/sched.h>` (version 2, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` from `<linux/sched.h>` (Linux 5.7): the child starts
/// in the cgroup2 directory `clone_args.cgroup` names. A 64-bit flag, which
/// only `clone3` takes (libc declares it as a 32-bit `c_int`).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Fork the calling process with `clone3(2)`, creating the namespaces in
/// `flags` (only `CLONE_NEW*` flags make sense here) for the child. The child
/// gets `SIGCHLD` as exit signal, a copy of the address space and continues
/// on the same stack, exactly like `fork(2)`. Falls back to `clone(2)` with a
/// NULL stack on kernels without `clone3`.
///
/// # Safety
///
/// Same contract as [`nix::unistd::fork`]: the calling process must be
/// single-threaded. Additionally glibc's fork handlers do not run, so the
/// child must not rely on state they would reset (the cached TID in the
/// thread descriptor is stale: no `raise`/`pthread_kill`/`abort` in the child;
/// the init code exits with `_exit` and never panics across this boundary).
pub unsafe fn clone3_fork(flags: CloneFlags) -> nix::Result<ForkResult> {
    // SAFETY: the caller upholds clone3_fork_into's contract (the same).
    unsafe { clone3_fork_into(flags, None) }
}

/// [`clone3_fork`], with `cgroup` (a cgroup2 directory) the child starts in
/// that cgroup (`CLONE_INTO_CGROUP`): it is never migrated, so no writer of
/// the kernel's `cgroup_threadgroup_rwsem` waits for an RCU grace period.
/// With a cgroup there is no `clone(2)` fallback: the error (ENOSYS before
/// Linux 5.3, E2BIG/EINVAL before 5.7, EBUSY for a cgroup with controllers
/// enabled for its children, ...) is returned and the caller clones without.
///
/// # Safety
///
/// As [`clone3_fork`].
pub unsafe fn clone3_fork_into(flags: CloneFlags, cgroup: Option<BorrowedFd<'_>>) -> nix::Result<ForkResult> {
    let mut args = CloneArgs {
        flags: flags.bits() as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // Stack 0 gives fork semantics (the child runs on a copy of our stack);
    // no pointers (pidfd, tids, set_tid) are given, so the kernel writes
    // nothing into our memory. The cgroup descriptor is borrowed, so it is
    // open for the duration of the call.
    // SAFETY: `args` is a fully initialised clone_args of the size passed, and
    // the caller guarantees we are single-threaded (fork-like clone is sound).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    let ret = if ret == -1 && Errno::last() == Errno::ENOSYS && cgroup.is_none() {
        // Argument order is the x86_64/generic one (flags, stack, parent_tid,
        // child_tid, tls); all pointers are NULL.
        // SAFETY: clone(2) with a NULL stack and no CLONE_VM/SETTLS/*TID flags
        // behaves like fork(2); the caller guarantees we are single-threaded.
        unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags.bits() as libc::c_long) | libc::SIGCHLD as libc::c_long,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        }
    } else {
        ret
    };
    match Errno::result(ret)? {
        0 => Ok(ForkResult::Child),
        pid => Ok(ForkResult::Parent {
            child: Pid::from_raw(pid as libc::pid_t),
        }),
    }
}

/// Make `fd` (a terminal) the controlling terminal of the calling process,
/// which must be a session leader without one (`ioctl(TIOCSCTTY, 0)`).
pub(crate) fn set_controlling_terminal(fd: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0 = do not steal) and
    // touches no memory of ours; `fd` is a valid open descriptor for the
    // duration of the call because it is borrowed.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0 as libc::c_int) };
    Errno::result(ret).map(drop)
}

/// Open the slave side of the pseudo-terminal whose master is `master`
/// without a path lookup (`ioctl(TIOCGPTPEER)`, Linux ≥ 4.13). The returned
/// descriptor is `O_RDWR | O_NOCTTY | O_CLOEXEC`.
pub(crate) fn open_pty_peer(master: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags as integer argument and returns
    // a new file descriptor; `master` is valid for the duration of the call.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    let fd = Errno::result(ret)?;
    // SAFETY: on success the ioctl returned a fresh descriptor that nothing
    // else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Set the window size of terminal `fd` (`ioctl(TIOCSWINSZ)`).
pub(crate) fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a `struct winsize` through the pointer, which
    // points to a live, initialised local; `fd` is valid while borrowed.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws as *const libc::winsize) };
    Errno::result(ret).map(drop)
}

/// Set `FD_CLOEXEC` on every descriptor `>= first` (`close_range(2)` with
/// `CLOSE_RANGE_CLOEXEC`, Linux ≥ 5.11), so nothing but stdio leaks into the
/// container process while the descriptors stay usable until `execve`.
pub(crate) fn mark_cloexec_from(first: u32) -> nix::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes descriptor
    // flags, it closes nothing and touches no memory.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        )
    };
    Errno::result(ret).map(drop)
}

/// Set the effective, permitted and inheritable capability sets of the
/// calling thread in one `capset(2)` call (bit `n` = capability `n`).
pub(crate) fn capset(effective: u64, permitted: u64, inheritable: u64) -> nix::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (e0, e1) = split(effective);
    let (p0, p1) = split(permitted);
    let (i0, i1) = split(inheritable);
    let data = [
        Data {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        Data {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: version 3 capset reads one header and an array of two data
    // structs, both live and initialised locals with the kernel's layout.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    Errno::result(ret).map(drop)
}

/// Reset every signal disposition to `SIG_DFL` and unblock all signals.
///
/// The monitor may block signals (signalfd), install handlers or ignore
/// `SIGPIPE` (the Rust runtime does); ignored dispositions and the signal
/// mask survive `execve`, so the container process must not inherit them.
pub(crate) fn reset_signals() -> nix::Result<()> {
    /// The kernel's `struct sigaction` for rt_sigaction(2) (x86_64/aarch64
    /// layout: handler, flags, restorer, mask).
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // Every signal, real-time ones included: an ignored disposition survives
    // execve, our own process ignores SIGPIPE (Rust's runtime) and may
    // inherit other ignored signals, including 32/33 that the C library's
    // wrappers refuse to touch; hence the raw system call.
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // Installing SIG_DFL never runs user code, and this freshly cloned
        // child is single-threaded, so no handler can race with the change.
        // SAFETY: rt_sigaction only reads `dfl`, a valid kernel sigaction alive
        // across the call; the old-action pointer is NULL, so nothing is written.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null::<u8>(),
                8usize,
            )
        };
        Errno::result(rc)?;
    }
    signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

/// Set the NIS domain name of the calling process's UTS namespace
/// (`setdomainname(2)`; nix only wraps `sethostname`).
pub(crate) fn set_domainname(name: &str) -> nix::Result<()> {
    let bytes = name.as_bytes();
    // SAFETY: the pointer and length describe the live `bytes` slice, which
    // the kernel only reads; no NUL terminator is needed.
    let ret = unsafe { libc::setdomainname(bytes.as_ptr().cast(), bytes.len()) };
    Errno::result(ret).map(drop)
}

/// Bring the loopback interface of the calling process's network namespace
/// up (`SIOCGIFFLAGS` + `SIOCSIFFLAGS` with `IFF_UP`), as runc does for every
/// new network namespace: a fresh one has `lo` down, so nothing could
/// listen on or reach 127.0.0.1.
pub(crate) fn loopback_up() -> nix::Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the NUL-terminated name and writes the flags
    // into `req`, a valid ifreq that lives across the call.
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req as *mut libc::ifreq) })?;
    // SAFETY: the kernel just filled the `ifru_flags` member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS only reads `req` (name and flags), valid across the call.
    Errno::result(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req as *const libc::ifreq) }).map(drop)
}

/// Ask the kernel to SIGKILL the calling process when its parent (the
/// monitor that cloned it) dies: a container never outlives its monitor
/// untracked. Cleared by the kernel on exec of a set-id or file-capability
/// binary; the daemon's own kill on a lost monitor covers that case.
pub(crate) fn die_with_parent() -> nix::Result<()> {
    nix::sys::prctl::set_pdeathsig(signal::Signal::SIGKILL)
}

/// `pidfd_open(2)`: a descriptor that polls readable when `pid` exits.
pub fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags by value and returns a new
    // descriptor or -1; no memory is shared with the kernel.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    nix::errno::Errno::result(fd)?;
    // SAFETY: the kernel just returned this descriptor to us and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as std::os::fd::RawFd) })
}

/// `pidfd_send_signal(2)`: signals exactly the process `pidfd` refers to,
/// even if its pid has been reused since.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> nix::Result<()> {
    // SAFETY: the descriptor is open for the call; siginfo is NULL and flags
    // are 0, so the kernel reads no memory of ours.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    nix::errno::Errno::result(rc).map(drop)
}

/// `poll(2)` over `fds` with a timeout in milliseconds; returns how many
/// entries have events (0 on timeout or EINTR).
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> usize {
    // SAFETY: `fds` is a valid, initialised, exclusively borrowed array of
    // pollfd for its whole length; the kernel writes only `revents`. The
    // caller keeps every descriptor in it open for the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    n.max(0) as usize
}

/// A `pre_exec` hook body: `dup2(src, dst)` for each pair. Only dup2 is
/// called, which is async-signal-safe, so it may run between fork and exec
/// even in a multi-threaded parent.
pub fn dup2_all(pairs: &[(std::os::fd::RawFd, std::os::fd::RawFd)]) -> std::io::Result<()> {
    for &(src, dst) in pairs {
        // SAFETY: dup2 only manipulates the descriptor table; both values are
        // plain integers and a bad one is reported as an error.
        if unsafe { libc::dup2(src, dst) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Terminate the calling process immediately with `code`, without running
/// atexit handlers or flushing stdio buffers inherited from the parent.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) has no preconditions; it never returns and skips
    // atexit handlers and stdio flushing on purpose (the buffers belong to
    // the parent we were forked from).
    unsafe { libc::_exit(code) }
}

/// The highest Landlock ABI the kernel supports:
/// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`.
/// `Err` when Landlock is not built in or disabled at boot (`ENOSYS`,
/// `EOPNOTSUPP`). The `landlock` crate keeps this query private on purpose
/// (it wants programs to ask for rights, not versions), but zygote's config
/// must refuse a `required` policy the kernel cannot honour at load.
pub(crate) fn landlock_abi_version() -> nix::Result<u32> {
    /// `LANDLOCK_CREATE_RULESET_VERSION` from `<linux/landlock.h>`.
    const VERSION: libc::c_uint = 1 << 0;
    // SAFETY: with a NULL attr and size 0 the kernel reads no memory; the
    // VERSION flag only returns a number.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            VERSION,
        )
    };
    Errno::result(ret).map(|v| v as u32)
}

//! [`Phase::Process`](super::Phase::Process): turning the process into the
//! one described by `process` — session and stdio/tty, rlimits,
//! no_new_privs, credentials and capabilities, umask, cwd — and resolving
//! the executable. Order follows runc's `finalizeNamespace`: the bounding set
//! is dropped while still privileged, ids are switched with `PR_SET_KEEPCAPS`
//! so the permitted set survives, then the final sets are installed.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::prctl;
use nix::sys::resource::{getrlimit, setrlimit};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, dup2, setgroups, setresgid, setresuid, setsid, Gid, Uid};

use super::exec::lookup;
use super::fs::own;
use super::plan::{CapsPlan, InitPlan, ProcessPlan, StdioPlan};
use super::sync::{Message, SyncChannel};
use crate::error::{Context, RuntimeError};
use crate::sys;

/// Result of the process phase: what the barrier step will exec.
#[derive(Debug)]
pub struct Prepared {
    /// Resolved path of `args[0]`.
    pub path: CString,
}

/// Run the process phase. Preconditions: the process sees the container's
/// root as `/` (after `pivot_root`, or after joining its mount namespace).
pub fn prepare(plan: &InitPlan, chan: &SyncChannel) -> Result<Prepared, RuntimeError> {
    setup(plan, chan)?;
    Ok(Prepared {
        path: lookup(&plan.process)?,
    })
}

/// The process phase without the executable lookup (shared with guest
/// tasks, which have nothing to exec).
pub fn setup(plan: &InitPlan, chan: &SyncChannel) -> Result<(), RuntimeError> {
    let p = &plan.process;
    // A session of its own (like runc's nsexec), required for a controlling tty.
    setsid().ctx(|| "setsid".into())?;
    setup_stdio(&plan.stdio, p, chan)?;
    set_rlimits(p, chan)?;
    let started = std::time::Instant::now();
    if let Some(landlock) = &plan.landlock {
        // After every mount (paths resolve in the container's root), before
        // seccomp (whose filter may not allow the landlock syscalls) and
        // while still privileged (restrict_self needs CAP_SYS_ADMIN or
        // no_new_privs).
        for w in crate::landlock::apply(landlock)? {
            chan.warn(format!("landlock: {w}"));
        }
    }
    if p.no_new_privileges {
        prctl::set_no_new_privs().ctx(|| "prctl(PR_SET_NO_NEW_PRIVS)".into())?;
    }
    if let (Some(filter), false) = (&plan.seccomp, p.no_new_privileges) {
        // Without no_new_privs installing a filter needs CAP_SYS_ADMIN, which
        // the process may lose below: install it now (runc does the same).
        filter.apply()?;
    }
    if plan.landlock.is_some() || plan.seccomp.is_some() {
        let _ = chan.send(&Message::SecurityTime(started.elapsed().as_micros() as u64));
    }
    set_credentials(p)?;
    umask(Mode::from_bits_truncate(p.umask));
    chdir(&p.cwd).ctx(|| format!("chdir to cwd ({:?}) set in config.json failed", p.cwd))
}

/// Put the planned descriptors (or a fresh pty) on 0, 1, 2.
fn setup_stdio(stdio: &StdioPlan, p: &ProcessPlan, chan: &SyncChannel) -> Result<(), RuntimeError> {
    match stdio {
        StdioPlan::Fds { stdin, stdout, stderr } => install_stdio([stdin, stdout, stderr]),
        StdioPlan::Terminal => setup_terminal(p, chan),
    }
}

/// dup2 `fds` onto 0, 1, 2. Every source is first duplicated above 2 so a
/// source that already is 0..2 cannot be clobbered (and `dup2(fd, fd)`,
/// which would keep `FD_CLOEXEC`, never happens).
fn install_stdio(fds: [&OwnedFd; 3]) -> Result<(), RuntimeError> {
    let mut high = Vec::with_capacity(3);
    for fd in fds {
        let dup = fcntl(fd.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(3))
            .ctx(|| format!("duplicate stdio fd {}", fd.as_raw_fd()))?;
        // SAFETY: F_DUPFD_CLOEXEC just returned this new descriptor.
        high.push(unsafe { own(dup) });
    }
    for (target, fd) in high.iter().enumerate() {
        dup2(fd.as_raw_fd(), target as i32).ctx(|| format!("dup2 onto fd {target}"))?;
    }
    Ok(())
}

/// Allocate a pty from the container's devpts (`/dev/ptmx -> pts/ptmx`),
/// make the slave the controlling terminal and fds 0-2, and pass the master
/// to the parent.
fn setup_terminal(p: &ProcessPlan, chan: &SyncChannel) -> Result<(), RuntimeError> {
    let master =
        nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).ctx(|| "open /dev/ptmx".into())?;
    nix::pty::unlockpt(&master).ctx(|| "unlockpt".into())?;
    if let Some((rows, cols)) = p.console_size {
        sys::set_window_size(master.as_fd(), rows, cols).ctx(|| format!("set console size {cols}x{rows}"))?;
    }
    let slave = sys::open_pty_peer(master.as_fd()).ctx(|| "open pty slave".into())?;
    sys::set_controlling_terminal(slave.as_fd()).ctx(|| "make pty the controlling terminal".into())?;
    install_stdio([&slave, &slave, &slave])?;
    chan.send_with_fd(&Message::PtyMaster, Some(master.as_fd()))
}

fn set_rlimits(p: &ProcessPlan, chan: &SyncChannel) -> Result<(), RuntimeError> {
    for r in &p.rlimits {
        match setrlimit(r.resource, r.soft, r.hard) {
            Ok(()) => {}
            Err(Errno::EPERM) => {
                // Raising a hard limit needs CAP_SYS_RESOURCE: clamp, warn.
                let (_, cur_hard) = getrlimit(r.resource).ctx(|| format!("getrlimit {}", r.name))?;
                let hard = r.hard.min(cur_hard);
                let soft = r.soft.min(hard);
                setrlimit(r.resource, soft, hard).ctx(|| format!("setrlimit {} soft={soft} hard={hard}", r.name))?;
                chan.warn(format!(
                    "{}: hard limit {} clamped to {hard} (no CAP_SYS_RESOURCE)",
                    r.name, r.hard
                ));
            }
            Err(errno) => {
                return Err(RuntimeError::Sys {
                    context: format!("setrlimit {} soft={} hard={}", r.name, r.soft, r.hard),
                    errno,
                })
            }
        }
    }
    Ok(())
}

fn set_credentials(p: &ProcessPlan) -> Result<(), RuntimeError> {
    drop_bounding_set(&p.caps)?;
    prctl::set_keepcaps(true).ctx(|| "prctl(PR_SET_KEEPCAPS)".into())?;
    let gids: Vec<Gid> = p.additional_gids.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&gids).ctx(|| format!("setgroups {:?}", p.additional_gids))?;
    let gid = Gid::from_raw(p.gid);
    setresgid(gid, gid, gid).ctx(|| format!("setresgid {}", p.gid))?;
    let uid = Uid::from_raw(p.uid);
    setresuid(uid, uid, uid).ctx(|| format!("setresuid {}", p.uid))?;
    prctl::set_keepcaps(false).ctx(|| "prctl(PR_SET_KEEPCAPS, 0)".into())?;
    let c = &p.caps;
    sys::capset(c.effective, c.permitted, c.inheritable).ctx(|| {
        format!(
            "capset effective={:#x} permitted={:#x} inheritable={:#x}",
            c.effective, c.permitted, c.inheritable
        )
    })?;
    set_ambient(c)
}

fn drop_bounding_set(c: &CapsPlan) -> Result<(), RuntimeError> {
    for cap in caps::runtime::thread_all_supported() {
        if c.bounding & cap.bitmask() != 0 {
            continue;
        }
        caps::drop(None, caps::CapSet::Bounding, cap)
            .map_err(|e| RuntimeError::Setup(format!("drop {cap} from the bounding set: {e}")))?;
    }
    Ok(())
}

fn set_ambient(c: &CapsPlan) -> Result<(), RuntimeError> {
    if c.ambient == 0 {
        return Ok(());
    }
    for cap in caps::runtime::thread_all_supported() {
        if c.ambient & cap.bitmask() != 0 {
            caps::raise(None, caps::CapSet::Ambient, cap)
                .map_err(|e| RuntimeError::Setup(format!("raise ambient {cap}: {e}")))?;
        }
    }
    Ok(())
}

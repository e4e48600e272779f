//! The container-init sequence: what the cloned child does between `clone3`
//! and `execve`, as explicit ordered [`Phase`]s over a precomputed
//! [`InitPlan`].
//!
//! The parent ([`crate::container`]) builds the plan with [`build`], clones
//! the child with the plan's namespace flags, writes id maps and sends
//! `Continue`; the child then calls [`run`] from [`Phase::Namespaces`] while
//! the parent places it in its cgroup (`Placed`, awaited by the child before
//! anything cgroup-dependent). Every phase only relies on the
//! documented preconditions, so a process that reached them another way can
//! enter halfway: a warm zygote ([`crate::zygote`]), already cloned into
//! fresh pid/uts/ipc/net namespaces (never mount or cgroup) and placed in
//! its cgroup (its channel's `Placed` already consumed), receives a task,
//! builds the task's `InitPlan` (whose `namespaces` then list only what is
//! left: the mount namespace to unshare, joins by path such as a network
//! namespace) and calls `run(&plan, Phase::Namespaces, &chan)`. The sync
//! protocol from `Ready` onwards is identical.
//!
//! Security steps, in this order on every path (container init, exec into
//! a container, warm zygote task, guest), as runc's `standard_init_linux.go`:
//! 1. Landlock (`process::setup`), after every mount so its paths resolve in
//!    the container's root, while still privileged;
//! 2. `PR_SET_NO_NEW_PRIVS` when `process.noNewPrivileges` is set;
//! 3. seccomp *now* only when no_new_privs is not set: installing a filter
//!    then needs `CAP_SYS_ADMIN`, which the credential switch may drop;
//! 4. the credential switch (bounding set, ids, capabilities);
//! 5. the exec barrier (`exec::barrier`, the one copy): `Ready`, `Go`, and
//!    seccomp when no_new_privs is set (last, so the filter need not allow
//!    the setup syscalls);
//! 6. `execve` (or, for a guest, run the module).
//!
//! All of this runs in a single-threaded process that was forked from the
//! (single-threaded) monitor; allocation is fine, threads are not.

pub mod build;
mod cgroupfs;
mod devices;
mod exec;
pub(crate) mod fs;
pub(crate) mod guest;
pub(crate) mod namespaces;
pub(crate) mod plan;
mod process;
mod rootfs;
pub(crate) mod rootfs_plan;
mod spec_mounts;
pub(crate) mod sync;

use std::convert::Infallible;

pub use exec::ExecError;
pub(crate) use plan::{InitPlan, StdioPlan};
pub(crate) use sync::{Message, SyncChannel};

use crate::error::RuntimeError;

/// The ordered phases of the child side. Entering at a phase means all
/// earlier phases' effects are already in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Become root in a new user namespace (ids mapped by the parent), join
    /// namespaces given by path (user first), unshare the cgroup namespace,
    /// set host and domain name. Pre: in the namespaces `clone3` created,
    /// already in the container's cgroup.
    Namespaces,
    /// Mount propagation, rootfs bind, spec mounts, devices, `pivot_root`,
    /// sysctls, read-only/masked paths, read-only root. Pre: in the target
    /// mount namespace (skipped when the plan has no rootfs: exec).
    Rootfs,
    /// Session and stdio/tty, rlimits, no_new_privs, early seccomp,
    /// credentials and capabilities, umask, cwd, executable lookup. Pre: `/`
    /// is the container's root.
    Process,
}

/// Run the init sequence from phase `from` to the exec barrier, then wait
/// for the parent's `Go` and `execve`. Returns only on failure; the caller
/// reports the error on `chan` and `_exit`s.
///
/// Must only be called in a single-threaded process that will never return
/// to other work (the cloned child, a zygote).
pub fn run(plan: &InitPlan, from: Phase, chan: &SyncChannel) -> Result<Infallible, RuntimeError> {
    if from <= Phase::Namespaces {
        if plan.namespaces.unshare_cgroup {
            chan.ensure_placed()?;
        }
        namespaces::enter(&plan.namespaces)?;
    }
    if from <= Phase::Rootfs {
        if let Some(rootfs) = &plan.rootfs {
            rootfs::setup(rootfs, &|| chan.ensure_placed())?;
        }
    }
    if let Some(guest) = &plan.guest {
        return guest::run(plan, guest, chan);
    }
    let prepared = process::prepare(plan, chan)?;
    exec::barrier_and_exec(plan, &prepared, chan)
}

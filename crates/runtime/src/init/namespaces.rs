//! [`Phase::Namespaces`](super::Phase::Namespaces): joining namespaces by
//! path, unsharing the cgroup namespace, UTS names — plus the pre-clone joins
//! done by an intermediate process.

use std::os::fd::AsFd;

use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::{sethostname, setresgid, setresuid, Gid, Uid};

use super::plan::{NamespacePlan, NsJoin};
use crate::error::{Context, RuntimeError};
use crate::sys;

/// Human name of a `CLONE_NEW*` flag.
pub fn ns_name(kind: CloneFlags) -> &'static str {
    match kind {
        CloneFlags::CLONE_NEWUSER => "user",
        CloneFlags::CLONE_NEWPID => "pid",
        CloneFlags::CLONE_NEWNS => "mnt",
        CloneFlags::CLONE_NEWNET => "net",
        CloneFlags::CLONE_NEWIPC => "ipc",
        CloneFlags::CLONE_NEWUTS => "uts",
        CloneFlags::CLONE_NEWCGROUP => "cgroup",
        _ if kind.bits() == libc::CLONE_NEWTIME => "time",
        _ => "unknown",
    }
}

fn join(j: &NsJoin) -> Result<(), RuntimeError> {
    setns(j.fd.as_fd(), j.kind).ctx(|| format!("join {} namespace {}", ns_name(j.kind), j.path.display()))
}

/// Join the namespaces that must be entered before cloning (run by the
/// intermediate process; the list is ordered user first).
pub fn join_before_clone(plan: &NamespacePlan) -> Result<(), RuntimeError> {
    plan.join_before_clone.iter().try_for_each(join)
}

/// The child's namespace phase. Preconditions: the process is in the
/// namespaces `clone3` created, the parent has written the id maps of a new
/// user namespace and placed the process in its cgroup.
pub fn enter(plan: &NamespacePlan) -> Result<(), RuntimeError> {
    if plan.become_root {
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .ctx(|| "setresgid(0) in the new user namespace (is gid 0 mapped?)".into())?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .ctx(|| "setresuid(0) in the new user namespace (is uid 0 mapped?)".into())?;
    }
    // The list is ordered: user first, mnt last.
    plan.join_in_child.iter().try_for_each(join)?;
    if !plan.unshare_in_child.is_empty() {
        unshare(plan.unshare_in_child).ctx(|| format!("unshare {:?}", plan.unshare_in_child))?;
    }
    if plan.unshare_cgroup {
        unshare(CloneFlags::CLONE_NEWCGROUP).ctx(|| "unshare cgroup namespace".into())?;
    }
    if plan.loopback_up {
        sys::loopback_up().ctx(|| "bring up lo in the new network namespace".into())?;
    }
    if let Some(h) = &plan.hostname {
        sethostname(h).ctx(|| format!("sethostname {h:?}"))?;
    }
    if let Some(d) = &plan.domainname {
        sys::set_domainname(d).ctx(|| format!("setdomainname {d:?}"))?;
    }
    Ok(())
}

//! The child side of a guest task ([`crate::guest`]): how a container plan
//! becomes a guest plan, and the guest's order of setup.
//!
//! A guest stays in the mount namespace it was born in and never calls
//! `pivot_root`: the rootfs is reached only through the descriptor the
//! runner preopens as `/`, and Landlock (replacing the profile's
//! path-based policy, whose paths name a container root the guest does not
//! have) allows reading and writing beneath the rootfs and nothing else; no
//! file anywhere may be executed. Pid, uts, ipc, net and cgroup namespaces,
//! seccomp, credentials, capabilities and rlimits are applied exactly as for
//! a container. Order: load the artifact (it lives outside the rootfs),
//! the process phase (stdio, Landlock, seccomp, credentials), instantiate,
//! the exec barrier shared with containers (`Ready`, `Go`, a deferred
//! seccomp filter: `exec::barrier`), hang up the sync socket (the parent
//! reads that as "exec happened"), run, `_exit` with its status.

use std::convert::Infallible;
use std::path::Path;

use nix::sched::CloneFlags;
use zygote_config::landlock::{Compatibility, FsRule, LandlockPolicy};

use super::plan::InitPlan;
use super::process;
use super::sync::SyncChannel;
use crate::error::RuntimeError;
use crate::guest::{GuestLaunch, GuestRunner, GuestTask};
use crate::sys;

/// The guest part of an [`InitPlan`].
#[derive(Debug)]
pub struct GuestPlan {
    /// What the daemon decided (module, artifact, memory cap).
    pub task: GuestTask,
    /// Provides load, instantiate and run.
    pub runner: &'static dyn GuestRunner,
    /// args, env and rootfs in host terms.
    pub launch: GuestLaunch,
}

/// Rewrite a container (or zygote) plan for a guest task: no mount
/// namespace and no rootfs phase, the rootfs as working directory, the
/// guest Landlock wall instead of the profile's.
pub fn into_guest_plan(
    mut plan: InitPlan,
    task: GuestTask,
    runner: &'static dyn GuestRunner,
    rootfs: &Path,
) -> Result<InitPlan, RuntimeError> {
    let ns = &mut plan.namespaces;
    ns.clone_flags.remove(CloneFlags::CLONE_NEWNS);
    ns.unshare_in_child.remove(CloneFlags::CLONE_NEWNS);
    ns.join_in_child.retain(|j| j.kind != CloneFlags::CLONE_NEWNS);
    ns.join_before_clone.retain(|j| j.kind != CloneFlags::CLONE_NEWNS);
    plan.rootfs = None;
    plan.process.cwd = rootfs.to_path_buf();
    plan.landlock = Some(wall(rootfs, task.readonly_root)?);
    let text = |c: &std::ffi::CString| c.to_string_lossy().into_owned();
    let launch = GuestLaunch {
        args: plan.process.args.iter().map(text).collect(),
        env: plan
            .process
            .env
            .iter()
            .map(|kv| {
                let kv = text(kv);
                match kv.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (kv, String::new()),
                }
            })
            .collect(),
        rootfs: rootfs.to_path_buf(),
    };
    plan.guest = Some(GuestPlan { task, runner, launch });
    Ok(plan)
}

/// Landlock for a guest: read (and write unless the root is read-only)
/// beneath the rootfs, no execute anywhere, no TCP bind or connect, no
/// signals or abstract sockets outside the domain. Best effort on older
/// ABIs.
fn wall(rootfs: &Path, readonly: bool) -> Result<zygote_config::PreparedLandlock, RuntimeError> {
    let mut access = vec!["read".to_string()];
    if !readonly {
        access.push("write".to_string());
    }
    let policy = LandlockPolicy {
        compatibility: Compatibility::BestEffort,
        fs: vec![FsRule {
            path: rootfs.to_path_buf(),
            access,
        }],
        net_bind: Some(Vec::new()),
        net_connect: Some(Vec::new()),
        scope: vec!["abstract_unix_socket".into(), "signal".into()],
    };
    policy
        .prepare(crate::landlock::abi_version())
        .map_err(|e| RuntimeError::Setup(format!("guest landlock: {e}")))
}

/// Run a guest task from the process phase on. Only returns on failure
/// before `Go`; afterwards the process exits with the guest's status.
pub fn run(plan: &InitPlan, guest: &GuestPlan, chan: &SyncChannel) -> Result<Infallible, RuntimeError> {
    let loaded = guest.runner.load(&guest.task)?;
    process::setup(plan, chan)?;
    let ready = loaded.instantiate(&guest.launch)?;
    super::exec::barrier(plan, chan)?;
    let status = ready.run(&|| chan.hang_up());
    sys::exit_now(status)
}

//! Building an [`InitPlan`] from a spec, in the parent, before cloning.
//!
//! Namespace files are opened here, the seccomp filter is compiled here,
//! capability sets and rlimits are clamped here (with a `tracing` warning)
//! to what this process can grant — root on this host lacks
//! `CAP_SYS_RESOURCE`, and we never fail for that, like containerd's
//! `restrict_oom_score_adj`.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::resource::{getrlimit, Resource};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Capabilities, LinuxNamespaceType, PosixRlimitType, Process, Spec};

use super::devices::default_devices;
use super::plan::{CapsPlan, InitPlan, NamespacePlan, NsJoin, ProcessPlan, RlimitPlan, StdioPlan};
use super::rootfs_plan::build_rootfs_plan;
use crate::error::{Context, RuntimeError};
use crate::security::Security;

/// PATH used to resolve `args[0]` when `process.env` has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Plan for a container's init process (`create_container`).
pub fn container_plan(
    spec: &Spec,
    bundle: &Path,
    rootfs: &Path,
    stdio: StdioPlan,
    security: &Security,
) -> Result<InitPlan, RuntimeError> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidSpec("process is required".into()))?;
    let namespaces = container_namespaces(spec)?;
    let has_mount_ns = namespaces.clone_flags.contains(CloneFlags::CLONE_NEWNS)
        || namespaces
            .join_in_child
            .iter()
            .chain(&namespaces.join_before_clone)
            .any(|j| j.kind == CloneFlags::CLONE_NEWNS);
    if !has_mount_ns {
        return Err(RuntimeError::InvalidSpec(
            "linux.namespaces: a mount namespace is required".into(),
        ));
    }
    let user_ns = namespaces.new_user_ns()
        || namespaces
            .join_before_clone
            .iter()
            .any(|j| j.kind == CloneFlags::CLONE_NEWUSER);
    let cgroup_ns = namespaces.unshare_cgroup
        || namespaces
            .join_in_child
            .iter()
            .chain(&namespaces.join_before_clone)
            .any(|j| j.kind == CloneFlags::CLONE_NEWCGROUP);
    let rootfs_plan = build_rootfs_plan(
        spec,
        bundle,
        rootfs,
        process.cwd(),
        user_ns,
        cgroup_ns,
        default_devices(),
    )?;
    Ok(InitPlan {
        namespaces,
        rootfs: Some(rootfs_plan),
        process: process_plan(process, rootfs)?,
        stdio,
        seccomp: security.seccomp.clone(),
        landlock: security.landlock.clone(),
        guest: None,
    })
}

/// Plan for a process exec'd into the running container whose init is
/// `init_pid`: every namespace of `init_pid` that differs from ours is joined
/// before forking (pid requires it), nothing is created, no rootfs setup.
pub fn exec_plan(
    init_pid: i32,
    process: &Process,
    stdio: StdioPlan,
    security: &Security,
) -> Result<InitPlan, RuntimeError> {
    // user first (joining it grants the capabilities needed for the rest),
    // mnt last (after it, /proc paths would resolve in the container).
    const ORDER: &[(&str, CloneFlags)] = &[
        ("user", CloneFlags::CLONE_NEWUSER),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ];
    let mut namespaces = NamespacePlan::default();
    for (name, kind) in ORDER {
        let target = PathBuf::from(format!("/proc/{init_pid}/ns/{name}"));
        let ours = PathBuf::from(format!("/proc/self/ns/{name}"));
        let t = std::fs::metadata(&target).ctx(|| format!("stat {}", target.display()))?;
        let o = std::fs::metadata(&ours).ctx(|| format!("stat {}", ours.display()))?;
        if (t.dev(), t.ino()) == (o.dev(), o.ino()) {
            continue;
        }
        namespaces.join_before_clone.push(NsJoin {
            kind: *kind,
            fd: open_ns(&target)?,
            path: target,
        });
    }
    Ok(InitPlan {
        namespaces,
        rootfs: None,
        process: process_plan(process, &Path::new("/proc").join(init_pid.to_string()).join("root"))?,
        stdio,
        seccomp: security.seccomp.clone(),
        landlock: security.landlock.clone(),
        guest: None,
    })
}

/// Why a spec cannot be served by a zygote child whose namespaces `pre`
/// already exist (the claimed zygote's process then drops that child and
/// clones the init itself, as a cold monitor does). `None` when it can.
pub fn zygote_misfit(spec: &Spec, pre: CloneFlags) -> Option<&'static str> {
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let find = |t: LinuxNamespaceType| list.iter().find(|n| n.typ() == t);
    if find(LinuxNamespaceType::User).is_some() {
        return Some("user_namespace");
    }
    match find(LinuxNamespaceType::Pid) {
        Some(n) if n.path().is_some() => return Some("join_pid_namespace"),
        Some(_) if !pre.contains(CloneFlags::CLONE_NEWPID) => return Some("zygote_without_pid_namespace"),
        None if pre.contains(CloneFlags::CLONE_NEWPID) => return Some("host_pid_namespace"),
        _ => {}
    }
    None
}

/// Plan for a warm zygote, already cloned into the namespaces `pre`, to
/// serve a container: the cold plan with its namespace part rewritten.
/// Namespaces the spec wants new but the zygote lacks are unshared in the
/// child; namespaces the zygote has but the spec does not want are left by
/// joining `host_ns` (the zygote parent's own, opened before cloning);
/// joins by path stay joins. Fails if [`zygote_misfit`] says so.
pub fn zygote_plan(
    spec: &Spec,
    bundle: &Path,
    rootfs: &Path,
    stdio: StdioPlan,
    security: &Security,
    pre: CloneFlags,
    host_ns: &[(CloneFlags, OwnedFd)],
) -> Result<InitPlan, RuntimeError> {
    if let Some(reason) = zygote_misfit(spec, pre) {
        return Err(RuntimeError::Setup(format!(
            "a zygote cannot serve this spec: {reason}"
        )));
    }
    let mut plan = container_plan(spec, bundle, rootfs, stdio, security)?;
    let ns = &mut plan.namespaces;
    let joined = |kind: CloneFlags, ns: &NamespacePlan| ns.join_in_child.iter().any(|j| j.kind == kind);
    let mut leave = Vec::new();
    for (kind, fd) in host_ns {
        if pre.contains(*kind) && !ns.clone_flags.contains(*kind) && !joined(*kind, ns) {
            leave.push(NsJoin {
                kind: *kind,
                fd: fd.try_clone().ctx(|| "duplicate a namespace descriptor".into())?,
                path: PathBuf::from(format!(
                    "<the zygote parent's {} namespace>",
                    super::namespaces::ns_name(*kind)
                )),
            });
        }
    }
    leave.append(&mut ns.join_in_child);
    ns.join_in_child = leave;
    ns.unshare_in_child = ns.clone_flags.difference(pre);
    ns.clone_flags = pre;
    Ok(plan)
}

fn open_ns(path: &Path) -> Result<OwnedFd, RuntimeError> {
    nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map(|fd| {
            // SAFETY: `open` just returned this descriptor; nothing else owns it.
            unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
        })
        .ctx(|| format!("open namespace {}", path.display()))
}

fn container_namespaces(spec: &Spec) -> Result<NamespacePlan, RuntimeError> {
    let linux = spec.linux().as_ref();
    let list = linux.and_then(|l| l.namespaces().as_ref()).cloned().unwrap_or_default();
    let mut plan = NamespacePlan::default();
    let mut paths = Vec::new();
    let mut has_uts = false;
    for ns in &list {
        let kind = CloneFlags::from_bits_retain(ns.typ() as i32);
        has_uts |= ns.typ() == LinuxNamespaceType::Uts;
        match ns.path() {
            None => match ns.typ() {
                LinuxNamespaceType::Cgroup => plan.unshare_cgroup = true,
                _ => plan.clone_flags |= kind,
            },
            Some(path) => paths.push((ns.typ(), kind, path.clone())),
        }
    }
    let new_user = plan.new_user_ns();
    plan.loopback_up = plan.clone_flags.contains(CloneFlags::CLONE_NEWNET);
    // user first, mnt last, in both lists.
    paths.sort_by_key(|(t, _, _)| match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 2,
        _ => 1,
    });
    for (typ, kind, path) in paths {
        let join = NsJoin {
            kind,
            fd: open_ns(&path)?,
            path,
        };
        let before = matches!(typ, LinuxNamespaceType::User | LinuxNamespaceType::Pid) || new_user;
        if before {
            plan.join_before_clone.push(join);
        } else {
            plan.join_in_child.push(join);
        }
    }
    if new_user {
        plan.become_root = true;
        plan.uid_mappings = linux.and_then(|l| l.uid_mappings().clone()).unwrap_or_default();
        plan.gid_mappings = linux.and_then(|l| l.gid_mappings().clone()).unwrap_or_default();
        if plan.uid_mappings.is_empty() || plan.gid_mappings.is_empty() {
            return Err(RuntimeError::InvalidSpec(
                "linux.uidMappings and linux.gidMappings are required for a new user namespace".into(),
            ));
        }
    }
    if has_uts {
        plan.hostname = spec.hostname().clone().filter(|h| !h.is_empty());
        plan.domainname = spec.domainname().clone().filter(|h| !h.is_empty());
    }
    Ok(plan)
}

/// Credentials, caps, rlimits, argv/env of `process`, clamped to what this
/// process can grant.
///
/// Like runc, `HOME` is added when `process.env` lacks it: the home of the
/// process's uid in the container's `/etc/passwd`, or `/`.
pub fn process_plan(process: &Process, rootfs: &Path) -> Result<ProcessPlan, RuntimeError> {
    let args = process.args().clone().unwrap_or_default();
    let arg0 = args
        .first()
        .cloned()
        .ok_or_else(|| RuntimeError::InvalidSpec("process.args must not be empty".into()))?;
    let cstr = |field: &str, s: &str| {
        CString::new(s.as_bytes()).map_err(|_| RuntimeError::InvalidSpec(format!("{field} contains a NUL byte")))
    };
    let args = args
        .iter()
        .map(|a| cstr("process.args", a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut env_list = process.env().clone().unwrap_or_default();
    if !env_list.iter().any(|e| e.starts_with("HOME=")) {
        env_list.push(format!("HOME={}", home_dir(rootfs, process.user().uid())));
    }
    let env = env_list
        .iter()
        .map(|e| cstr("process.env", e))
        .collect::<Result<Vec<_>, _>>()?;
    let search_path = env_list
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    let user = process.user();
    let console_size = match (process.terminal(), process.console_size()) {
        (Some(true), Some(b)) if b.height() > 0 && b.width() > 0 => Some((
            b.height().min(u16::MAX as u64) as u16,
            b.width().min(u16::MAX as u64) as u16,
        )),
        _ => None,
    };
    Ok(ProcessPlan {
        arg0,
        args,
        env,
        search_path,
        cwd: process.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask().unwrap_or(0o022),
        caps: caps_plan(process)?,
        rlimits: rlimits_plan(process)?,
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        console_size,
    })
}

fn caps_plan(process: &Process) -> Result<CapsPlan, RuntimeError> {
    let Some(c) = process.capabilities() else {
        // Like runc: no capabilities object means an empty set everywhere.
        return Ok(CapsPlan::default());
    };
    // What we can grant: our own bounding set (inherited by the child).
    let available = caps::read(None, caps::CapSet::Bounding)
        .map_err(|e| RuntimeError::Setup(format!("read bounding capability set: {e}")))?
        .iter()
        .fold(0u64, |m, c| m | c.bitmask());
    let mask = |field: &str, set: &Option<Capabilities>| -> Result<u64, RuntimeError> {
        let mut bits = 0u64;
        let mut dropped = Vec::new();
        for cap in set.iter().flatten() {
            let name = format!("CAP_{cap}");
            let parsed = caps::Capability::from_str(&name).map_err(|_| {
                RuntimeError::InvalidSpec(format!("process.capabilities.{field}: unknown capability {name}"))
            })?;
            if available & parsed.bitmask() == 0 {
                dropped.push(name);
            } else {
                bits |= parsed.bitmask();
            }
        }
        if !dropped.is_empty() {
            dropped.sort();
            tracing::warn!(
                set = field,
                capabilities = ?dropped,
                "capabilities not in this runtime's bounding set are not granted"
            );
        }
        Ok(bits)
    };
    Ok(CapsPlan {
        bounding: mask("bounding", c.bounding())?,
        effective: mask("effective", c.effective())?,
        permitted: mask("permitted", c.permitted())?,
        inheritable: mask("inheritable", c.inheritable())?,
        ambient: mask("ambient", c.ambient())?,
    })
}

fn rlimit_resource(t: PosixRlimitType) -> (&'static str, Resource) {
    use PosixRlimitType as T;
    match t {
        T::RlimitCpu => ("RLIMIT_CPU", Resource::RLIMIT_CPU),
        T::RlimitFsize => ("RLIMIT_FSIZE", Resource::RLIMIT_FSIZE),
        T::RlimitData => ("RLIMIT_DATA", Resource::RLIMIT_DATA),
        T::RlimitStack => ("RLIMIT_STACK", Resource::RLIMIT_STACK),
        T::RlimitCore => ("RLIMIT_CORE", Resource::RLIMIT_CORE),
        T::RlimitRss => ("RLIMIT_RSS", Resource::RLIMIT_RSS),
        T::RlimitNproc => ("RLIMIT_NPROC", Resource::RLIMIT_NPROC),
        T::RlimitNofile => ("RLIMIT_NOFILE", Resource::RLIMIT_NOFILE),
        T::RlimitMemlock => ("RLIMIT_MEMLOCK", Resource::RLIMIT_MEMLOCK),
        T::RlimitAs => ("RLIMIT_AS", Resource::RLIMIT_AS),
        T::RlimitLocks => ("RLIMIT_LOCKS", Resource::RLIMIT_LOCKS),
        T::RlimitSigpending => ("RLIMIT_SIGPENDING", Resource::RLIMIT_SIGPENDING),
        T::RlimitMsgqueue => ("RLIMIT_MSGQUEUE", Resource::RLIMIT_MSGQUEUE),
        T::RlimitNice => ("RLIMIT_NICE", Resource::RLIMIT_NICE),
        T::RlimitRtprio => ("RLIMIT_RTPRIO", Resource::RLIMIT_RTPRIO),
        T::RlimitRttime => ("RLIMIT_RTTIME", Resource::RLIMIT_RTTIME),
    }
}

fn rlimits_plan(process: &Process) -> Result<Vec<RlimitPlan>, RuntimeError> {
    let mut out = Vec::new();
    for r in process.rlimits().iter().flatten() {
        let (name, resource) = rlimit_resource(r.typ());
        let (mut soft, mut hard) = (r.soft(), r.hard());
        if soft > hard {
            return Err(RuntimeError::InvalidSpec(format!(
                "process.rlimits {name}: soft limit {soft} exceeds hard limit {hard}"
            )));
        }
        // The child inherits our limits; raising a hard limit needs
        // CAP_SYS_RESOURCE, which we may lack: clamp instead of failing.
        let (_, cur_hard) = getrlimit(resource).ctx(|| format!("getrlimit {name}"))?;
        if hard > cur_hard && !has_sys_resource() {
            tracing::warn!(
                rlimit = name,
                requested_hard = hard,
                current_hard = cur_hard,
                "cannot raise hard rlimit without CAP_SYS_RESOURCE; clamping to the current hard limit"
            );
            hard = cur_hard;
            soft = soft.min(hard);
        }
        out.push(RlimitPlan {
            name,
            resource,
            soft,
            hard,
        });
    }
    Ok(out)
}

fn has_sys_resource() -> bool {
    caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_RESOURCE).unwrap_or(false)
}

/// The home directory of `uid` in `<rootfs>/etc/passwd`, `/` if unknown.
/// The file is opened without following a symlink at `etc` or `passwd`, so
/// a container cannot point the lookup at a host file.
fn home_dir(rootfs: &Path, uid: u32) -> String {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let etc = rootfs.join("etc");
    let is_dir = std::fs::symlink_metadata(&etc).is_ok_and(|m| m.is_dir());
    let mut text = String::new();
    let read = is_dir
        && std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(etc.join("passwd"))
            .and_then(|f| f.take(1 << 20).read_to_string(&mut text))
            .is_ok();
    if read {
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 6 && f[2].parse::<u32>() == Ok(uid) && !f[5].is_empty() {
                return f[5].to_string();
            }
        }
    }
    "/".to_string()
}

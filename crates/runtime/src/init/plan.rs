//! The precomputed plan the init phases execute.
//!
//! Everything that can be decided before cloning is decided here, in the
//! parent: which namespaces to create or join (with their files already
//! open), the mount list with parsed flags, the device list, resolved ids,
//! capability masks, clamped rlimits, the environment as C strings and the
//! compiled seccomp filter. The child only executes the plan, so the code
//! between clone and exec stays small and a zygote can be handed the same
//! plan later (see [`super::run`]). The plan is built by [`super::build`].

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::resource::Resource;
use nix::sys::stat::SFlag;
use oci_spec::runtime::LinuxIdMapping;

use zygote_config::PreparedLandlock;

use crate::seccomp::CompiledSeccomp;

/// Everything the child side of the init sequence needs.
pub struct InitPlan {
    /// Namespaces to create, join or unshare, and the UTS names.
    pub namespaces: NamespacePlan,
    /// Filesystem setup; `None` for exec'd processes, which enter the
    /// container's mount namespace and already see its root.
    pub rootfs: Option<RootfsPlan>,
    /// Credentials, capabilities, limits, cwd, argv and env.
    pub process: ProcessPlan,
    /// What becomes fds 0, 1 and 2.
    pub stdio: StdioPlan,
    /// The container's seccomp filter, compiled before the task's critical
    /// path (see [`crate::security`]).
    pub seccomp: Option<CompiledSeccomp>,
    /// The profile's Landlock policy, applied after all mounts.
    pub landlock: Option<PreparedLandlock>,
    /// A payload run in place of `execve` (see [`super::guest`]).
    pub guest: Option<super::guest::GuestPlan>,
}

/// A namespace to join by path, with its file opened in the parent.
#[derive(Debug)]
pub struct NsJoin {
    /// The `CLONE_NEW*` flag naming the namespace type.
    pub kind: CloneFlags,
    /// The path it was opened from (for error messages).
    pub path: PathBuf,
    /// The open namespace file (close-on-exec).
    pub fd: OwnedFd,
}

/// Namespace handling, split by who does it and when.
#[derive(Debug)]
pub struct NamespacePlan {
    /// `CLONE_NEW*` flags for `clone3` (all requested namespaces without a
    /// path, except cgroup which the child unshares once in its cgroup).
    pub clone_flags: CloneFlags,
    /// Joined before cloning, in an intermediate process: a pid namespace
    /// (only children of the caller enter it), a user namespace (so new
    /// namespaces are owned by it) and, when a new user namespace is created,
    /// every other path (joined while still privileged). User comes first.
    pub join_before_clone: Vec<NsJoin>,
    /// Joined by the child in [`super::Phase::Namespaces`].
    pub join_in_child: Vec<NsJoin>,
    /// Unshared by the child in [`super::Phase::Namespaces`], after the
    /// joins: a warm zygote creates here what it did not create in advance
    /// (always the mount namespace, so it sees the mounts made since it was
    /// born). Empty on the cold path, where `clone3` creates everything.
    pub unshare_in_child: CloneFlags,
    /// `setresuid/setresgid(0)` after the parent wrote the id maps of a new
    /// user namespace.
    pub become_root: bool,
    /// `unshare(CLONE_NEWCGROUP)` in the child after it joined its cgroup.
    pub unshare_cgroup: bool,
    /// The container gets a new network namespace: bring its `lo` up (runc
    /// does; a fresh namespace has it down).
    pub loopback_up: bool,
    /// `sethostname` value (only with a UTS namespace).
    pub hostname: Option<String>,
    /// `setdomainname` value (only with a UTS namespace).
    pub domainname: Option<String>,
    /// uid_map lines written by the parent for a new user namespace.
    pub uid_mappings: Vec<LinuxIdMapping>,
    /// gid_map lines written by the parent for a new user namespace.
    pub gid_mappings: Vec<LinuxIdMapping>,
}

impl Default for NamespacePlan {
    fn default() -> Self {
        NamespacePlan {
            clone_flags: CloneFlags::empty(),
            join_before_clone: Vec::new(),
            join_in_child: Vec::new(),
            unshare_in_child: CloneFlags::empty(),
            become_root: false,
            unshare_cgroup: false,
            loopback_up: false,
            hostname: None,
            domainname: None,
            uid_mappings: Vec::new(),
            gid_mappings: Vec::new(),
        }
    }
}

impl NamespacePlan {
    /// Whether an intermediate process must join namespaces before cloning.
    pub fn needs_intermediate(&self) -> bool {
        !self.join_before_clone.is_empty()
    }

    /// Whether the container gets a new user namespace.
    pub fn new_user_ns(&self) -> bool {
        self.clone_flags.contains(CloneFlags::CLONE_NEWUSER)
    }
}

/// How a spec mount is performed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// `bind` / `rbind`: source is a host path.
    Bind {
        /// `rbind` (`MS_REC`).
        recursive: bool,
    },
    /// `cgroup`: the container's own cgroup directories (v1) or cgroup2.
    Cgroup,
    /// Any other filesystem type (proc, sysfs, tmpfs, devpts, mqueue, ...).
    Filesystem,
}

/// One entry of `mounts`, with its options already parsed.
#[derive(Debug, Clone)]
pub struct MountPlan {
    /// Absolute path inside the container.
    pub destination: PathBuf,
    /// Source; absolute host path for binds (relative ones were joined to
    /// the bundle), a free-form name otherwise.
    pub source: Option<PathBuf>,
    /// Filesystem type passed to mount(2) (`None` for binds).
    pub fstype: Option<String>,
    /// How to perform it.
    pub kind: MountKind,
    /// Mount flags from the options (without propagation flags and without
    /// `MS_BIND`/`MS_REC`, which [`MountKind::Bind`] implies).
    pub flags: MsFlags,
    /// Propagation changes applied after mounting, in order.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific data (`mode=755,size=65536k`).
    pub data: String,
    /// `MOUNT_ATTR_*` bits set recursively after mounting (`rro`, ...).
    pub attr_set: u64,
    /// `MOUNT_ATTR_*` bits cleared recursively after mounting (`rrw`, ...).
    pub attr_clr: u64,
}

/// A device node to create under `/dev`.
#[derive(Debug, Clone)]
pub struct DevicePlan {
    /// Absolute path inside the container (under `/dev`).
    pub path: PathBuf,
    /// `S_IFCHR`, `S_IFBLK` or `S_IFIFO`.
    pub kind: SFlag,
    /// Major number.
    pub major: u64,
    /// Minor number.
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// Filesystem setup of a new container.
#[derive(Debug)]
pub struct RootfsPlan {
    /// Absolute, canonical host path of the (already mounted) rootfs.
    pub rootfs: PathBuf,
    /// Propagation applied to `/` first (default `MS_SLAVE | MS_REC`).
    pub root_propagation: MsFlags,
    /// Propagation applied again to the new `/` after `pivot_root` (runc):
    /// `linux.rootfsPropagation` when the spec sets one that is not private.
    pub root_propagation_after_pivot: Option<MsFlags>,
    /// Spec mounts, in order.
    pub mounts: Vec<MountPlan>,
    /// Create device nodes and `/dev` symlinks (false when `/dev` is a bind).
    pub setup_dev: bool,
    /// Bind device nodes from the host instead of `mknod` (user namespace).
    pub bind_devices: bool,
    /// Default devices plus `linux.devices`.
    pub devices: Vec<DevicePlan>,
    /// Remount `/dev` read-only after creating the nodes (its mount was `ro`).
    pub dev_readonly: bool,
    /// `linux.maskedPaths`.
    pub masked_paths: Vec<PathBuf>,
    /// `linux.readonlyPaths`.
    pub readonly_paths: Vec<PathBuf>,
    /// `root.readonly`.
    pub readonly_root: bool,
    /// `linux.sysctl`, sorted by key.
    pub sysctl: Vec<(String, String)>,
    /// Whether the child is in a cgroup namespace of its own (changes how a
    /// `cgroup` mount is done).
    pub cgroup_ns: bool,
    /// `process.cwd`, created (as root, 0755) if missing, like runc.
    pub cwd: PathBuf,
}

/// Capability sets as bit masks (bit `n` = capability number `n`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapsPlan {
    /// Bounding set; everything else is dropped from it.
    pub bounding: u64,
    /// Effective set.
    pub effective: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Inheritable set.
    pub inheritable: u64,
    /// Ambient set.
    pub ambient: u64,
}

/// One rlimit, already clamped to what the caller may set.
#[derive(Debug, Clone, Copy)]
pub struct RlimitPlan {
    /// Spec name (`RLIMIT_NOFILE`), for messages.
    pub name: &'static str,
    /// The resource.
    pub resource: Resource,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// The process to exec and its credentials.
#[derive(Debug, Clone)]
pub struct ProcessPlan {
    /// `process.args[0]` as written in the spec.
    pub arg0: String,
    /// `process.args` as C strings.
    pub args: Vec<CString>,
    /// `process.env` exactly, as C strings.
    pub env: Vec<CString>,
    /// The `PATH` used to resolve `arg0` (from `process.env`, or the default).
    pub search_path: String,
    /// `process.cwd`.
    pub cwd: PathBuf,
    /// `process.user.uid`.
    pub uid: u32,
    /// `process.user.gid`.
    pub gid: u32,
    /// `process.user.additionalGids`.
    pub additional_gids: Vec<u32>,
    /// `process.user.umask` (default 0022).
    pub umask: u32,
    /// Capability sets, clamped to the caller's bounding set.
    pub caps: CapsPlan,
    /// `process.rlimits`.
    pub rlimits: Vec<RlimitPlan>,
    /// `process.noNewPrivileges`.
    pub no_new_privileges: bool,
    /// `process.consoleSize` (rows, cols) for terminals.
    pub console_size: Option<(u16, u16)>,
}

/// What becomes fds 0, 1 and 2 of the container process.
#[derive(Debug)]
pub enum StdioPlan {
    /// dup2'd onto 0, 1, 2 (missing ones were replaced by the host's
    /// `/dev/null`, opened in the parent).
    Fds {
        /// Becomes fd 0.
        stdin: OwnedFd,
        /// Becomes fd 1.
        stdout: OwnedFd,
        /// Becomes fd 2.
        stderr: OwnedFd,
    },
    /// A pty from the container's devpts; the master goes to the parent.
    Terminal,
}

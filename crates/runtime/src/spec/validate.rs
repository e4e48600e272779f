//! Semantic checks on a deserialised spec (see [`validate`]).

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{
    Hooks, Linux, LinuxIdMapping, LinuxNamespaceType, LinuxSeccomp, LinuxSeccompAction, Mount, Process, Spec,
};

use super::SpecError;

/// IPC-namespaced sysctls outside `fs.mqueue.*` (the list runc accepts).
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

const PROPAGATIONS: &[&str] = &[
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

/// Checks the rules the runtime relies on; the first violation is returned,
/// naming the field by its JSON path (e.g. `process.args`, `mounts[2].destination`).
///
/// Checked: `ociVersion` is 1.x; `root` present with a non-empty path;
/// `process` present with non-empty `args`, an absolute `cwd`, `KEY=value`
/// env entries, unique rlimits with soft <= hard, `oomScoreAdj` in range;
/// mounts have absolute destinations (and a source when bind mounts); hook
/// paths are absolute; under `linux`: namespace types are unique and their
/// paths absolute, uid/gid mappings appear only with a user namespace (and a
/// new user namespace has them), `hostname`/`domainname` need a UTS
/// namespace, sysctls belong to a namespace the container owns, masked and
/// read-only paths are absolute, `rootfsPropagation` is a known mode,
/// `cgroupsPath` parses, `resources.memory.swap >= limit`, seccomp argument
/// indices are at most 5 and `SCMP_ACT_NOTIFY` comes with a listener path.
pub fn validate(spec: &Spec) -> Result<(), SpecError> {
    let version = spec.version();
    if version.is_empty() {
        return Err(SpecError::missing("ociVersion"));
    }
    if !version.starts_with("1.") {
        return Err(SpecError::invalid(
            "ociVersion",
            format!("{version:?} is not supported (want 1.x)"),
        ));
    }

    let root = spec.root().as_ref().ok_or_else(|| SpecError::missing("root"))?;
    if root.path().as_os_str().is_empty() {
        return Err(SpecError::invalid("root.path", "must not be empty"));
    }

    let process = spec.process().as_ref().ok_or_else(|| SpecError::missing("process"))?;
    validate_process(process)?;

    if let Some(mounts) = spec.mounts() {
        for (i, m) in mounts.iter().enumerate() {
            validate_mount(i, m)?;
        }
    }
    if let Some(hooks) = spec.hooks() {
        validate_hooks(hooks)?;
    }

    let linux = spec.linux().as_ref();
    let namespaces = validate_namespaces(linux)?;
    let has_ns = |t: LinuxNamespaceType| namespaces.contains(&ns_name(t));
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has_ns(LinuxNamespaceType::Uts) {
        return Err(SpecError::invalid("hostname", "cannot be set without a uts namespace"));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has_ns(LinuxNamespaceType::Uts) {
        return Err(SpecError::invalid(
            "domainname",
            "cannot be set without a uts namespace",
        ));
    }
    if let Some(linux) = linux {
        validate_linux(linux, &has_ns)?;
    }
    Ok(())
}

fn validate_process(process: &Process) -> Result<(), SpecError> {
    let args = process.args().as_deref().unwrap_or_default();
    if args.is_empty() {
        return Err(SpecError::invalid("process.args", "must not be empty"));
    }
    if args[0].is_empty() {
        return Err(SpecError::invalid("process.args[0]", "must not be empty"));
    }
    require_absolute("process.cwd", process.cwd())?;
    for (i, entry) in process.env().iter().flatten().enumerate() {
        match entry.split_once('=') {
            Some((key, _)) if !key.is_empty() => {}
            _ => {
                return Err(SpecError::invalid(
                    format!("process.env[{i}]"),
                    format!("{entry:?} is not of the form KEY=value"),
                ))
            }
        }
    }
    let mut seen = HashSet::new();
    for (i, rl) in process.rlimits().iter().flatten().enumerate() {
        let name = format!("{:?}", rl.typ());
        if !seen.insert(name.clone()) {
            return Err(SpecError::invalid(
                format!("process.rlimits[{i}].type"),
                format!("duplicates an earlier {name} entry"),
            ));
        }
        if rl.soft() > rl.hard() {
            return Err(SpecError::invalid(
                format!("process.rlimits[{i}]"),
                format!("soft limit {} exceeds hard limit {}", rl.soft(), rl.hard()),
            ));
        }
    }
    if let Some(adj) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(SpecError::invalid(
                "process.oomScoreAdj",
                format!("must be between -1000 and 1000, got {adj}"),
            ));
        }
    }
    Ok(())
}

fn validate_mount(i: usize, m: &Mount) -> Result<(), SpecError> {
    require_absolute(&format!("mounts[{i}].destination"), m.destination())?;
    let is_bind =
        m.typ().as_deref() == Some("bind") || m.options().iter().flatten().any(|o| o == "bind" || o == "rbind");
    let has_source = m.source().as_ref().is_some_and(|s| !s.as_os_str().is_empty());
    if is_bind && !has_source {
        return Err(SpecError::invalid(
            format!("mounts[{i}].source"),
            "is required for bind mounts",
        ));
    }
    Ok(())
}

fn validate_hooks(hooks: &Hooks) -> Result<(), SpecError> {
    let kinds = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (kind, list) in kinds {
        for (i, hook) in list.iter().flatten().enumerate() {
            require_absolute(&format!("hooks.{kind}[{i}].path"), hook.path())?;
        }
    }
    Ok(())
}

/// Checks `linux.namespaces` and returns the set of namespace type names
/// present (new or joined).
fn validate_namespaces(linux: Option<&Linux>) -> Result<HashSet<&'static str>, SpecError> {
    let mut seen = HashSet::new();
    let Some(namespaces) = linux.and_then(|l| l.namespaces().as_ref()) else {
        return Ok(seen);
    };
    for (i, ns) in namespaces.iter().enumerate() {
        let name = ns_name(ns.typ());
        if !seen.insert(name) {
            return Err(SpecError::invalid(
                format!("linux.namespaces[{i}].type"),
                format!("duplicates namespace type {name}"),
            ));
        }
        if let Some(path) = ns.path() {
            require_absolute(&format!("linux.namespaces[{i}].path"), path)?;
        }
    }
    Ok(seen)
}

fn validate_linux(linux: &Linux, has_ns: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<(), SpecError> {
    let user_ns = linux
        .namespaces()
        .iter()
        .flatten()
        .find(|ns| ns.typ() == LinuxNamespaceType::User);
    let uid_maps = linux.uid_mappings().as_deref().unwrap_or_default();
    let gid_maps = linux.gid_mappings().as_deref().unwrap_or_default();
    let has_mappings = !uid_maps.is_empty() || !gid_maps.is_empty();
    match user_ns {
        None if has_mappings => {
            return Err(SpecError::invalid(
                "linux.uidMappings",
                "uid/gid mappings require a user namespace in linux.namespaces",
            ))
        }
        Some(ns) if ns.path().is_some() && has_mappings => {
            return Err(SpecError::invalid(
                "linux.uidMappings",
                "must not be set when joining an existing user namespace by path",
            ))
        }
        Some(ns) if ns.path().is_none() && (uid_maps.is_empty() || gid_maps.is_empty()) => {
            return Err(SpecError::invalid(
                "linux.namespaces",
                "a new user namespace needs both linux.uidMappings and linux.gidMappings",
            ))
        }
        _ => {}
    }
    check_mappings("linux.uidMappings", uid_maps)?;
    check_mappings("linux.gidMappings", gid_maps)?;

    for (key, _) in linux.sysctl().iter().flatten() {
        check_sysctl(key, has_ns)?;
    }
    for (i, p) in linux.masked_paths().iter().flatten().enumerate() {
        require_absolute(&format!("linux.maskedPaths[{i}]"), Path::new(p))?;
    }
    for (i, p) in linux.readonly_paths().iter().flatten().enumerate() {
        require_absolute(&format!("linux.readonlyPaths[{i}]"), Path::new(p))?;
    }
    if let Some(prop) = linux.rootfs_propagation() {
        if !prop.is_empty() && !PROPAGATIONS.contains(&prop.as_str()) {
            return Err(SpecError::invalid(
                "linux.rootfsPropagation",
                format!("{prop:?} is not one of {}", PROPAGATIONS.join(", ")),
            ));
        }
    }
    for (i, dev) in linux.devices().iter().flatten().enumerate() {
        require_absolute(&format!("linux.devices[{i}].path"), dev.path())?;
    }
    if let Some(cg) = linux.cgroups_path() {
        let s = cg.to_string_lossy();
        if !s.is_empty() {
            crate::cgroups::parse_cgroups_path(&s, "validate")
                .map_err(|e| SpecError::invalid("linux.cgroupsPath", format!("is invalid: {e}")))?;
        }
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) && !has_ns(LinuxNamespaceType::Time) {
        return Err(SpecError::invalid(
            "linux.timeOffsets",
            "requires a time namespace in linux.namespaces",
        ));
    }
    if let Some(mem) = linux.resources().as_ref().and_then(|r| r.memory().as_ref()) {
        if let (Some(limit), Some(swap)) = (mem.limit(), mem.swap()) {
            if limit > 0 && swap > 0 && swap < limit {
                return Err(SpecError::invalid(
                    "linux.resources.memory.swap",
                    format!("({swap}) must not be lower than linux.resources.memory.limit ({limit})"),
                ));
            }
        }
    }
    if let Some(seccomp) = linux.seccomp() {
        check_seccomp(seccomp)?;
    }
    Ok(())
}

fn check_mappings(field: &str, maps: &[LinuxIdMapping]) -> Result<(), SpecError> {
    for (i, m) in maps.iter().enumerate() {
        if m.size() == 0 {
            return Err(SpecError::invalid(
                format!("{field}[{i}].size"),
                "must be greater than zero",
            ));
        }
    }
    Ok(())
}

/// Applies runc's rule: a sysctl may only be set if it belongs to a namespace
/// the container has.
fn check_sysctl(key: &str, has_ns: &dyn Fn(LinuxNamespaceType) -> bool) -> Result<(), SpecError> {
    let field = format!("linux.sysctl[{key:?}]");
    let norm = key.replace('/', ".");
    if IPC_SYSCTLS.contains(&norm.as_str()) || norm.starts_with("fs.mqueue.") {
        if has_ns(LinuxNamespaceType::Ipc) {
            return Ok(());
        }
        return Err(SpecError::invalid(field, "requires an ipc namespace"));
    }
    if norm.starts_with("net.") {
        if has_ns(LinuxNamespaceType::Network) {
            return Ok(());
        }
        return Err(SpecError::invalid(field, "requires a network namespace"));
    }
    if has_ns(LinuxNamespaceType::Uts) {
        match norm.as_str() {
            "kernel.domainname" => return Ok(()),
            "kernel.hostname" => return Err(SpecError::invalid(field, "is not allowed; use hostname instead")),
            _ => {}
        }
    }
    Err(SpecError::invalid(
        field,
        "is not namespaced and cannot be set for a container",
    ))
}

fn check_seccomp(seccomp: &LinuxSeccomp) -> Result<(), SpecError> {
    let mut notify = seccomp.default_action() == LinuxSeccompAction::ScmpActNotify;
    for (i, sc) in seccomp.syscalls().iter().flatten().enumerate() {
        if sc.names().is_empty() {
            return Err(SpecError::invalid(
                format!("linux.seccomp.syscalls[{i}].names"),
                "must not be empty",
            ));
        }
        notify |= sc.action() == LinuxSeccompAction::ScmpActNotify;
        for (j, arg) in sc.args().iter().flatten().enumerate() {
            if arg.index() > 5 {
                return Err(SpecError::invalid(
                    format!("linux.seccomp.syscalls[{i}].args[{j}].index"),
                    format!("must be at most 5, got {}", arg.index()),
                ));
            }
        }
    }
    if notify && seccomp.listener_path().is_none() {
        return Err(SpecError::invalid(
            "linux.seccomp.listenerPath",
            "is required when an action is SCMP_ACT_NOTIFY",
        ));
    }
    Ok(())
}

fn require_absolute(field: &str, path: &Path) -> Result<(), SpecError> {
    if path.as_os_str().is_empty() {
        return Err(SpecError::invalid(field, "must not be empty"));
    }
    if !path.is_absolute() {
        return Err(SpecError::invalid(
            field,
            format!("must be an absolute path, got {:?}", path.display().to_string()),
        ));
    }
    Ok(())
}

/// The namespace type as spelled in `config.json`.
pub(crate) fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

//! `linux.cgroupsPath` parsing: the cgroupfs path form and the systemd
//! `slice:prefix:name` form, both turned into a path below the hierarchy root.

use std::path::{Component, Path, PathBuf};

use super::CgroupError;

/// Parent used when the spec leaves `cgroupsPath` empty.
pub const DEFAULT_PARENT: &str = "/zygote";

/// Parses `linux.cgroupsPath` into the cgroup's absolute path inside every
/// hierarchy (e.g. `/default/abc`, the form `/proc/<pid>/cgroup` shows).
///
/// * empty: `/zygote/<id>`.
/// * `/a/b`: used as is; `.` and empty components are dropped, `..` is rejected.
/// * a relative path without `:` (`a/b`): taken relative to the hierarchy
///   root, i.e. the same as `/a/b`. runc instead resolves relative paths under
///   its own cgroup per controller; we do not, because the shim's own cgroup
///   differs per controller on v1 hosts and containerd always sends absolute
///   or systemd-form paths.
/// * `slice:prefix:name` (systemd form, recognised by the `:` and the missing
///   leading `/`): `slice` is expanded like systemd does
///   (`a-b.slice` -> `/a.slice/a-b.slice`, empty -> `system.slice`,
///   `-.slice` -> root) and the unit `prefix-name.scope` (or `name.scope`
///   with an empty prefix, or `name` itself if it ends in `.slice`) is
///   appended. When systemd is PID 1 that is where the transient scope the
///   systemd driver starts lives (see `systemd`); elsewhere (or for a
///   `.slice` name) the same directories are created directly in cgroupfs.
pub fn parse_cgroups_path(path: &str, id: &str) -> Result<PathBuf, CgroupError> {
    let invalid = |reason: &str| CgroupError::InvalidPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    if path.is_empty() {
        if id.is_empty() || id.contains(['/', '\0']) || id == "." || id == ".." {
            return Err(CgroupError::InvalidPath {
                path: format!("{DEFAULT_PARENT}/{id}"),
                reason: "container id is not usable as a cgroup name".to_string(),
            });
        }
        return Ok(Path::new(DEFAULT_PARENT).join(id));
    }
    if !path.starts_with('/') && path.contains(':') {
        return parse_systemd(path).map_err(|reason| invalid(&reason.to_string()));
    }
    let mut out = PathBuf::from("/");
    for comp in Path::new(path).components() {
        match comp {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(invalid("contains a .. component")),
            Component::Normal(c) => out.push(c),
            Component::Prefix(_) => return Err(invalid("has an unsupported prefix")),
        }
    }
    if out == Path::new("/") {
        return Err(invalid("refers to the root cgroup"));
    }
    Ok(out)
}

/// Why a systemd-style cgroups path or slice name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemdPathError {
    #[error("systemd form must be slice:prefix:name")]
    NotThreeParts,
    #[error("systemd unit name must not be empty")]
    EmptyName,
    #[error("systemd prefix and name must not contain /")]
    Slash,
    #[error("systemd unit name {0:?} is not allowed")]
    DotName(String),
    #[error("slice name {0:?} does not end in .slice")]
    NoSliceSuffix(String),
    #[error("slice name {0:?} has an empty stem")]
    EmptyStem(String),
    #[error("slice name {0:?} contains /")]
    SliceSlash(String),
    #[error("slice name {0:?} has an empty component")]
    EmptyComponent(String),
}

fn parse_systemd(path: &str) -> Result<PathBuf, SystemdPathError> {
    let parts: Vec<&str> = path.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(SystemdPathError::NotThreeParts);
    };
    if name.is_empty() {
        return Err(SystemdPathError::EmptyName);
    }
    if name.contains('/') || prefix.contains('/') {
        return Err(SystemdPathError::Slash);
    }
    if name == "." || name == ".." {
        return Err(SystemdPathError::DotName(name.to_string()));
    }
    let slice = if slice.is_empty() { "system.slice" } else { slice };
    let mut out = expand_slice(slice)?;
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    out.push(unit);
    Ok(out)
}

/// Expands a systemd slice name into its cgroup path, e.g.
/// `kubepods-besteffort.slice` -> `/kubepods.slice/kubepods-besteffort.slice`.
pub fn expand_slice(slice: &str) -> Result<PathBuf, SystemdPathError> {
    const SUFFIX: &str = ".slice";
    let Some(stem) = slice.strip_suffix(SUFFIX) else {
        return Err(SystemdPathError::NoSliceSuffix(slice.to_string()));
    };
    if stem.is_empty() {
        return Err(SystemdPathError::EmptyStem(slice.to_string()));
    }
    if slice.contains('/') {
        return Err(SystemdPathError::SliceSlash(slice.to_string()));
    }
    let mut out = PathBuf::from("/");
    if stem == "-" {
        return Ok(out);
    }
    let mut prefix = String::new();
    for component in stem.split('-') {
        if component.is_empty() {
            return Err(SystemdPathError::EmptyComponent(slice.to_string()));
        }
        out.push(format!("{prefix}{component}{SUFFIX}"));
        prefix.push_str(component);
        prefix.push('-');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: &str) -> String {
        parse_cgroups_path(path, "abc")
            .unwrap_or_else(|e| panic!("{path:?}: {e}"))
            .display()
            .to_string()
    }

    fn bad(path: &str) -> String {
        match parse_cgroups_path(path, "abc") {
            Err(CgroupError::InvalidPath { path: p, reason }) => {
                assert_eq!(p, path);
                reason
            }
            other => panic!("{path:?}: expected InvalidPath, got {other:?}"),
        }
    }

    #[test]
    fn path_form() {
        assert_eq!(ok("/default/abc"), "/default/abc");
        assert_eq!(ok("/a"), "/a");
        assert_eq!(ok("//a///b/"), "/a/b");
        assert_eq!(ok("/a/./b"), "/a/b");
        assert_eq!(ok("/a:b"), "/a:b");
        assert_eq!(ok("/a..b/c"), "/a..b/c");
        assert_eq!(ok("/kubepods/burstable/pod1/abc"), "/kubepods/burstable/pod1/abc");
    }

    #[test]
    fn relative_path_is_under_root() {
        assert_eq!(ok("default/abc"), "/default/abc");
        assert_eq!(ok("abc"), "/abc");
        assert_eq!(ok("./x"), "/x");
    }

    #[test]
    fn empty_is_default_parent() {
        assert_eq!(ok(""), "/zygote/abc");
        assert!(parse_cgroups_path("", "").is_err());
        assert!(parse_cgroups_path("", "a/b").is_err());
        assert!(parse_cgroups_path("", "..").is_err());
    }

    #[test]
    fn systemd_form() {
        assert_eq!(ok("system.slice:docker:abc"), "/system.slice/docker-abc.scope");
        assert_eq!(
            ok("kubepods-besteffort-pod123.slice:cri-containerd:abc"),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod123.slice/cri-containerd-abc.scope"
        );
        assert_eq!(ok(":docker:abc"), "/system.slice/docker-abc.scope");
        assert_eq!(ok("-.slice:docker:abc"), "/docker-abc.scope");
        assert_eq!(ok("user.slice::abc"), "/user.slice/abc.scope");
        assert_eq!(ok("a.slice:p:a-b.slice"), "/a.slice/a-b.slice");
        assert_eq!(ok("a-b-c.slice:x:y"), "/a.slice/a-b.slice/a-b-c.slice/x-y.scope");
    }

    #[test]
    fn rejects_traversal_and_nul() {
        assert_eq!(bad("/a/../b"), "contains a .. component");
        assert_eq!(bad("../x"), "contains a .. component");
        assert_eq!(bad("/.."), "contains a .. component");
        assert_eq!(bad("/a\0b"), "contains a NUL byte");
        assert_eq!(bad("/"), "refers to the root cgroup");
        assert_eq!(bad("///./"), "refers to the root cgroup");
    }

    #[test]
    fn rejects_bad_systemd_forms() {
        assert_eq!(bad("a:b"), "systemd form must be slice:prefix:name");
        assert_eq!(bad("a:b:c:d"), "systemd form must be slice:prefix:name");
        assert!(bad("system:docker:abc").contains("does not end in .slice"));
        assert!(bad(".slice:docker:abc").contains("empty stem"));
        assert!(bad("a--b.slice:docker:abc").contains("empty component"));
        assert!(bad("-a.slice:docker:abc").contains("empty component"));
        assert!(bad("a-.slice:docker:abc").contains("empty component"));
        assert_eq!(bad("system.slice:docker:"), "systemd unit name must not be empty");
        assert!(bad("system.slice:docker:a/b").contains("must not contain /"));
        assert!(bad("system.slice:do/cker:ab").contains("must not contain /"));
        assert!(bad("system.slice:docker:..").contains("not allowed"));
    }

    #[test]
    fn expand_slice_cases() {
        assert_eq!(expand_slice("-.slice").unwrap(), Path::new("/"));
        assert_eq!(expand_slice("test.slice").unwrap(), Path::new("/test.slice"));
        assert_eq!(
            expand_slice("test-a.slice").unwrap(),
            Path::new("/test.slice/test-a.slice")
        );
        assert!(expand_slice("a/b.slice").is_err());
        assert!(expand_slice("slice").is_err());
    }
}

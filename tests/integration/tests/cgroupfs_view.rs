//! `/sys/fs/cgroup` and `/proc/self/cgroup` as the container sees them,
//! zygote side by side with runc-v2 (runc 1.1): for a `cgroup` mount `ro`
//! (what CRI gives a container) and `rw` (what CRI gives a privileged one),
//! each with and without a cgroup namespace of the container's own (CRI's
//! default on cgroup v2).
//!
//! Expected, from the host's mounts (so the same file runs on this v1 hybrid
//! host and in the v2 VM, hack/vm/run.sh):
//! - v1/hybrid: a read-write tmpfs (`nosuid,nodev,noexec`, even when the
//!   mount is `ro`) holding one mount per v1 hierarchy (not the hybrid's
//!   `unified` cgroup2), each `ro`/`rw` as the spec says: a bind of the
//!   container's own cgroup directory, or in a cgroup namespace a fresh mount
//!   showing the namespace root (`name=systemd` with source `systemd`).
//! - v2: one fresh `cgroup2` mount, `ro`/`rw` as the spec says, showing the
//!   hierarchy's root (the whole tree without a cgroup namespace).
//! - `/proc/self/cgroup` names the container's cgroup, or `/` (as `0::/` on
//!   v2) in a cgroup namespace.
//! - `mkdir` of a child cgroup fails with EROFS on a `ro` mount and works on
//!   a `rw` one; the v1 tmpfs itself is always writable.

use std::path::Path;

use zygote_integration_tests::*;

const ROOT: &str = "/sys/fs/cgroup";

/// Prints the mountinfo lines under `/sys/fs/cgroup`, `---`, the paths of
/// `/proc/self/cgroup`, `---`, the listing of `/sys/fs/cgroup` (v1 only),
/// `---`, then for each directory in `$PROBES` `<dir> ok` if a child
/// directory can be made there (removed again) or `<dir> <strerror>`.
const SCRIPT: &str = r#"grep " /sys/fs/cgroup" /proc/self/mountinfo
echo ---
cut -d: -f3 /proc/self/cgroup
echo ---
[ "$V2" = 1 ] || ls -1 /sys/fs/cgroup
echo ---
for d in $PROBES; do
  if err=$(mkdir "$d/zt-probe" 2>&1); then rmdir "$d/zt-probe"; echo "$d ok"; else echo "$d ${err##*: }"; fi
done"#;

/// What the container showed (or should show), normalised: the container's
/// own cgroup path reads `<own>`.
#[derive(Debug, Clone, PartialEq)]
struct View {
    /// `<mount point> <fstype> <source> <ro|rw>[,nosuid][,nodev][,noexec] root=<root>`, sorted.
    mounts: Vec<String>,
    /// The distinct paths of `/proc/self/cgroup`.
    cgroup_paths: Vec<String>,
    /// `ls -1 /sys/fs/cgroup` (v1 only), sorted.
    listing: Vec<String>,
    /// `<dir> ok` or `<dir> <error>` per probed directory.
    writes: Vec<String>,
}

struct Mount<'a> {
    root: &'a str,
    point: &'a str,
    options: &'a str,
    fstype: &'a str,
    source: &'a str,
    super_options: &'a str,
}

fn parse_mountinfo(line: &str) -> Option<Mount<'_>> {
    let (left, right) = line.split_once(" - ")?;
    let l: Vec<&str> = left.split(' ').collect();
    let r: Vec<&str> = right.split(' ').collect();
    Some(Mount {
        root: l.get(3)?,
        point: l.get(4)?,
        options: l.get(5)?,
        fstype: r.first()?,
        source: r.get(1)?,
        super_options: r.get(2).copied().unwrap_or(""),
    })
}

fn flags(options: &str) -> String {
    let opts: Vec<&str> = options.split(',').collect();
    ["ro", "rw", "nosuid", "nodev", "noexec"]
        .into_iter()
        .filter(|f| opts.contains(f))
        .collect::<Vec<_>>()
        .join(",")
}

fn norm(path: &str, own: &str) -> String {
    if path == own {
        "<own>".into()
    } else {
        path.into()
    }
}

/// The host's v1 hierarchies under `/sys/fs/cgroup`: (name, source, super options).
fn host_v1_hierarchies() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    let mut out: Vec<_> = text
        .lines()
        .filter_map(parse_mountinfo)
        .filter(|m| m.fstype == "cgroup" && Path::new(m.point).parent() == Some(Path::new(ROOT)))
        .map(|m| {
            let name = m.point.rsplit('/').next().unwrap_or_default().to_string();
            (name, m.source.to_string(), m.super_options.to_string())
        })
        .collect();
    out.sort();
    out
}

/// The probed directories: the tmpfs and every hierarchy on v1, the
/// container's own cgroup (the mount's root in a cgroup namespace) on v2.
fn probes(v2: bool, cgroupns: bool, own: &str) -> Vec<String> {
    if v2 {
        vec![if cgroupns {
            ROOT.to_string()
        } else {
            format!("{ROOT}{own}")
        }]
    } else {
        std::iter::once(ROOT.to_string())
            .chain(host_v1_hierarchies().into_iter().map(|(n, _, _)| format!("{ROOT}/{n}")))
            .collect()
    }
}

fn expected(rw: bool, cgroupns: bool, own: &str) -> View {
    let v2 = cgroup_v2();
    let mode = if rw { "rw" } else { "ro" };
    let (mounts, listing) = if v2 {
        (
            vec![format!("{ROOT} cgroup2 cgroup {mode},nosuid,nodev,noexec root=/")],
            vec![],
        )
    } else {
        let hierarchies = host_v1_hierarchies();
        let mut mounts = vec![format!("{ROOT} tmpfs tmpfs rw,nosuid,nodev,noexec root=/")];
        let mut listing = Vec::new();
        for (name, source, super_options) in &hierarchies {
            let (source, root) = match (cgroupns, super_options.split(',').any(|o| o == "name=systemd")) {
                (true, true) => ("systemd", "/"),
                (true, false) => ("cgroup", "/"),
                (false, _) => (source.as_str(), "<own>"),
            };
            mounts.push(format!(
                "{ROOT}/{name} cgroup {source} {mode},nosuid,nodev,noexec root={root}"
            ));
            listing.push(name.clone());
            if name.contains(',') {
                listing.extend(name.split(',').map(String::from));
            }
        }
        mounts.sort();
        listing.sort();
        listing.dedup();
        (mounts, listing)
    };
    let writes = probes(v2, cgroupns, own)
        .into_iter()
        .map(|d| {
            let writable = rw || (!v2 && d == ROOT);
            format!("{d} {}", if writable { "ok" } else { "Read-only file system" })
        })
        .collect();
    View {
        mounts,
        cgroup_paths: vec![if cgroupns { "/".into() } else { "<own>".into() }],
        listing,
        writes,
    }
}

fn parse_view(stdout: &str, own: &str) -> View {
    let parts: Vec<&str> = stdout.split("---\n").collect();
    assert_eq!(parts.len(), 4, "unexpected output:\n{stdout}");
    let mut mounts: Vec<String> = parts[0]
        .lines()
        .filter_map(parse_mountinfo)
        .filter(|m| Path::new(m.point).starts_with(ROOT))
        .map(|m| {
            format!(
                "{} {} {} {} root={}",
                m.point,
                m.fstype,
                m.source,
                flags(m.options),
                norm(m.root, own)
            )
        })
        .collect();
    mounts.sort();
    let mut cgroup_paths: Vec<String> = parts[1].lines().map(|p| norm(p, own)).collect();
    cgroup_paths.sort();
    cgroup_paths.dedup();
    let mut listing: Vec<String> = parts[2].lines().map(String::from).collect();
    listing.sort();
    View {
        mounts,
        cgroup_paths,
        listing,
        writes: parts[3].lines().map(String::from).collect(),
    }
}

/// Runs the probe in a container whose spec has a `cgroup` mount at
/// `/sys/fs/cgroup` (`rw` or `ro`), a cgroup namespace if asked, and for
/// `privileged` what CRI adds for a privileged container that matters here
/// (CAP_SYS_ADMIN, no masked or read-only paths).
fn check(scenario: &str, rw: bool, cgroupns: bool, privileged: bool) {
    let v2 = cgroup_v2();
    let ns = &env().namespace;
    // The expectation names the container's cgroup only as <own>.
    let expected_view = expected(rw, cgroupns, "/<own>");
    both_expect(scenario, expected_view, |rt| {
        let c = Container::new("cgroupfs", rt);
        let own = format!("/{ns}/{}", c.id());
        let probe_dirs = probes(v2, cgroupns, &own).join(" ");
        let b = ConfigBundle::new(c.id(), &["sh", "-c", SCRIPT], |s| {
            let mode = if rw { "rw" } else { "ro" };
            s["mounts"].as_array_mut().expect("mounts").push(serde_json::json!({
                "destination": ROOT, "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", mode]
            }));
            let env = s["process"]["env"].as_array_mut().expect("env");
            env.push(serde_json::json!(format!("PROBES={probe_dirs}")));
            env.push(serde_json::json!(format!("V2={}", u8::from(v2))));
            if cgroupns {
                s["linux"]["namespaces"]
                    .as_array_mut()
                    .expect("namespaces")
                    .push(serde_json::json!({"type": "cgroup"}));
            }
            if privileged {
                for set in ["bounding", "effective", "permitted"] {
                    s["process"]["capabilities"][set]
                        .as_array_mut()
                        .expect("capabilities")
                        .push(serde_json::json!("CAP_SYS_ADMIN"));
                }
                let linux = s["linux"].as_object_mut().expect("linux");
                linux.remove("maskedPaths");
                linux.remove("readonlyPaths");
            }
        });
        let out = Ctr::new().run_config(rt, &b, c.id());
        assert_eq!(out.code(), 0, "{}", out.describe());
        // The output names the container's cgroup in full (mount roots,
        // /proc/self/cgroup, probe dirs): normalised to /<own>.
        parse_view(&out.stdout.replace(&own, "/<own>"), "/<own>")
    });
}

/// What CRI gives an ordinary container on cgroup v1: `ro`, no cgroup
/// namespace: its own cgroups, read-only (the v1 tmpfs stays writable).
#[test]
fn ro_cgroup_mount_shows_own_cgroups_read_only() {
    check("cgroupfs ro", false, false, false);
}

/// What CRI gives an ordinary container on cgroup v2: `ro` in a cgroup
/// namespace: the namespace root, read-only; `/proc/self/cgroup` says `/`.
#[test]
fn ro_cgroup_mount_in_a_cgroup_namespace_shows_its_root() {
    check("cgroupfs ro cgroupns", false, true, false);
}

/// A privileged container (`rw` cgroup mount): its cgroups are writable.
#[test]
fn privileged_cgroup_mount_is_writable() {
    check("cgroupfs privileged", true, false, true);
}

/// A privileged container in a cgroup namespace: the namespace root is
/// writable.
#[test]
fn privileged_cgroup_mount_in_a_cgroup_namespace_is_writable() {
    check("cgroupfs privileged cgroupns", true, true, true);
}

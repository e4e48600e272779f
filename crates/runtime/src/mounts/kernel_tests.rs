//! Tests that really mount; they need root and fail (not skip) without it.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

fn require_root() {
    crate::test_rerun::require_root("this test mounts filesystems");
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn mounts_below(target: &Path) -> Vec<mountinfo::MountInfo> {
    let target = fs::canonicalize(target).unwrap();
    mountinfo::read_self()
        .unwrap()
        .into_iter()
        .filter(|m| m.mount_point.starts_with(&target))
        .collect()
}

/// Unmounts on drop so a failing assertion does not leak mounts.
struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = unmount_rootfs(&self.0);
    }
}

#[test]
fn tmpfs_mount_and_idempotent_unmount() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("rootfs");
    fs::create_dir(&target).unwrap();
    let _c = Cleanup(target.clone());
    let m = RootfsMount {
        fstype: "tmpfs".into(),
        source: "tmpfs".into(),
        options: s(&["nosuid", "nodev", "size=1m", "mode=700"]),
    };
    mount_rootfs(&[m], &target).unwrap();
    let found = mounts_below(&target);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].fstype, "tmpfs");
    assert!(found[0].mount_options.contains("nosuid"), "{found:?}");
    assert!(found[0].super_options.contains("size=1024k"), "{found:?}");

    unmount_rootfs(&target).unwrap();
    assert!(mounts_below(&target).is_empty());
    unmount_rootfs(&target).unwrap();
    unmount_rootfs(&dir.path().join("does-not-exist")).unwrap();
}

#[test]
fn overlay_mount_reads_lower_and_writes_upper() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["l1", "l2", "upper", "work", "rootfs"] {
        fs::create_dir(d.join(sub)).unwrap();
    }
    fs::write(d.join("l1/top"), "from l1").unwrap();
    fs::write(d.join("l2/bottom"), "from l2").unwrap();
    fs::write(d.join("l2/top"), "shadowed").unwrap();
    let target = d.join("rootfs");
    let _c = Cleanup(target.clone());
    let m = RootfsMount {
        fstype: "overlay".into(),
        source: "overlay".into(),
        options: vec![
            "index=off".into(),
            format!("workdir={}", d.join("work").display()),
            format!("upperdir={}", d.join("upper").display()),
            format!("lowerdir={}:{}", d.join("l1").display(), d.join("l2").display()),
        ],
    };
    mount_rootfs(&[m], &target).unwrap();
    assert_eq!(fs::read_to_string(target.join("top")).unwrap(), "from l1");
    assert_eq!(fs::read_to_string(target.join("bottom")).unwrap(), "from l2");
    fs::write(target.join("new"), "x").unwrap();
    assert!(d.join("upper/new").exists());
    assert!(!d.join("l1/new").exists());
    unmount_rootfs(&target).unwrap();
    assert!(mounts_below(&target).is_empty());
}

#[test]
fn read_only_bind_is_remounted() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let target = dir.path().join("rootfs");
    fs::create_dir(&src).unwrap();
    fs::create_dir(&target).unwrap();
    let _c = Cleanup(target.clone());
    let m = RootfsMount {
        fstype: "bind".into(),
        source: src.display().to_string(),
        options: s(&["rbind", "ro"]),
    };
    mount_rootfs(&[m], &target).unwrap();
    let err = fs::write(target.join("f"), "x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    fs::write(src.join("f"), "x").unwrap();
    assert_eq!(fs::read_to_string(target.join("f")).unwrap(), "x");
    unmount_rootfs(&target).unwrap();
}

#[test]
fn failed_mount_rolls_back_earlier_ones() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("rootfs");
    fs::create_dir(&target).unwrap();
    let _c = Cleanup(target.clone());
    let missing = dir.path().join("missing-lower");
    let mounts = [
        RootfsMount {
            fstype: "tmpfs".into(),
            source: "tmpfs".into(),
            options: s(&["size=1m"]),
        },
        RootfsMount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: vec![format!("lowerdir={}:{}", missing.display(), missing.display())],
        },
    ];
    let err = mount_rootfs(&mounts, &target).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("mount type overlay source overlay on "), "{msg}");
    assert!(msg.contains(&target.display().to_string()), "{msg}");
    assert!(
        matches!(
            err,
            MountError::Mount {
                errno: Errno::ENOENT,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(mounts_below(&target).is_empty(), "rollback left mounts behind");
}

#[test]
fn long_overlay_lowerdirs_are_compacted() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let base = dir
        .path()
        .join("io.containerd.snapshotter.v1.overlayfs.with.a.long.name/snapshots");
    let mut lowers = Vec::new();
    for i in 0..70 {
        let l = base.join(format!("{i:04}/fs"));
        fs::create_dir_all(&l).unwrap();
        fs::write(l.join(format!("layer{i}")), format!("{i}")).unwrap();
        lowers.push(l.display().to_string());
    }
    let upper = dir.path().join("upper");
    let work = dir.path().join("work");
    let target = dir.path().join("rootfs");
    for d in [&upper, &work, &target] {
        fs::create_dir(d).unwrap();
    }
    let _c = Cleanup(target.clone());
    let options = vec![
        "index=off".to_string(),
        format!("workdir={}", work.display()),
        format!("upperdir={}", upper.display()),
        format!("lowerdir={}", lowers.join(":")),
    ];
    assert!(options.join(",").len() > page_size(), "fixture must exceed a page");
    let cwd_before = std::env::current_dir().unwrap();
    mount_rootfs(
        &[RootfsMount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options,
        }],
        &target,
    )
    .unwrap();
    assert_eq!(std::env::current_dir().unwrap(), cwd_before);
    assert_eq!(fs::read_to_string(target.join("layer0")).unwrap(), "0");
    assert_eq!(fs::read_to_string(target.join("layer69")).unwrap(), "69");
    unmount_rootfs(&target).unwrap();
    assert!(mounts_below(&target).is_empty());
}

#[test]
fn overlong_data_without_common_parent_is_a_clear_error() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("rootfs");
    fs::create_dir(&target).unwrap();
    let lowers: Vec<String> = (0..400).map(|i| format!("/nonexistent{i}/fs")).collect();
    let err = mount_rootfs(
        &[RootfsMount {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: vec![format!("lowerdir={}", lowers.join(":"))],
        }],
        &target,
    )
    .unwrap_err();
    assert!(matches!(err, MountError::DataTooLong { .. }), "{err:?}");
    assert!(err.to_string().contains("no common parent"), "{err}");
}

#[test]
fn unmount_removes_nested_and_stacked_mounts() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("rootfs");
    fs::create_dir(&target).unwrap();
    let _c = Cleanup(target.clone());
    let tmpfs = RootfsMount {
        fstype: "tmpfs".into(),
        source: "tmpfs".into(),
        options: s(&["size=1m"]),
    };
    mount_rootfs(&[tmpfs.clone(), tmpfs.clone()], &target).unwrap();
    fs::create_dir(target.join("sub")).unwrap();
    mount_rootfs(&[tmpfs], &target.join("sub")).unwrap();
    // Keep the nested mount busy so the lazy fallback is exercised.
    let _busy = fs::File::open(target.join("sub")).unwrap();
    assert_eq!(mounts_below(&target).len(), 3);
    unmount_rootfs(&target).unwrap();
    assert!(mounts_below(&target).is_empty());
}

#[test]
fn recursive_read_only_via_rro() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let target = dir.path().join("rootfs");
    fs::create_dir_all(src.join("inner")).unwrap();
    fs::create_dir(&target).unwrap();
    let _c = Cleanup(target.clone());
    let _c2 = Cleanup(src.join("inner"));
    // A sub-mount inside the source: plain `ro` would leave it writable.
    mount_rootfs(
        &[RootfsMount {
            fstype: "tmpfs".into(),
            source: "tmpfs".into(),
            options: s(&["size=1m"]),
        }],
        &src.join("inner"),
    )
    .unwrap();
    mount_rootfs(
        &[RootfsMount {
            fstype: "bind".into(),
            source: src.display().to_string(),
            options: s(&["rbind", "rro"]),
        }],
        &target,
    )
    .unwrap();
    let err = fs::write(target.join("inner/f"), "x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    unmount_rootfs(&target).unwrap();
    unmount_rootfs(&src.join("inner")).unwrap();
}

//! Property tests of `linux.cgroupsPath` parsing (outside input: any string
//! a spec may carry).

use std::path::{Component, Path};

use proptest::prelude::*;

use super::path::parse_cgroups_path;

/// A systemd unit or prefix name: no `/`, `:` or NUL.
fn unit_part() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.@-]{1,24}".prop_filter("not a dot name", |s| s != "." && s != "..")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Never panics, and whatever it accepts is an absolute path strictly
    /// below the hierarchy root with only normal components: a spec can
    /// never name the root, or a cgroup outside it.
    #[test]
    fn accepted_paths_stay_below_the_root(path in any::<String>(), id in any::<String>()) {
        if let Ok(p) = parse_cgroups_path(&path, &id) {
            prop_assert!(p.is_absolute(), "{p:?}");
            prop_assert!(p != Path::new("/"), "{path:?} gave the root");
            prop_assert!(
                p.components().skip(1).all(|c| matches!(c, Component::Normal(_))),
                "{path:?} gave {p:?}"
            );
            prop_assert!(!p.to_string_lossy().contains('\0'));
        }
    }

    /// A cgroupfs path without `..` is taken as written, `.` and empty
    /// components dropped, relative or absolute alike.
    #[test]
    fn cgroupfs_paths_are_taken_as_written(parts in prop::collection::vec("[a-z0-9_.-]{1,12}", 1..6), absolute in any::<bool>()) {
        prop_assume!(parts.iter().all(|p| p != ".." && !p.contains(':')));
        let text = format!("{}{}", if absolute { "/" } else { "" }, parts.join("/"));
        let want: Vec<&str> = parts.iter().map(String::as_str).filter(|p| *p != ".").collect();
        prop_assume!(!want.is_empty());
        let got = parse_cgroups_path(&text, "id").unwrap();
        prop_assert_eq!(got, Path::new("/").join(want.join("/")));
    }

    /// Any `..` component is refused, wherever it stands.
    #[test]
    fn parent_components_are_refused(before in "[a-z/]{0,12}", after in "[a-z/]{0,12}") {
        let text = format!("/{before}/../{after}");
        prop_assert!(parse_cgroups_path(&text, "id").is_err());
    }

    /// The systemd form ends in the unit systemd would create, below the
    /// expanded slice.
    #[test]
    fn systemd_form_ends_in_its_scope(prefix in unit_part(), name in unit_part()) {
        prop_assume!(!name.ends_with(".slice"));
        let got = parse_cgroups_path(&format!("kubepods-besteffort.slice:{prefix}:{name}"), "id").unwrap();
        let want = Path::new("/kubepods.slice/kubepods-besteffort.slice").join(format!("{prefix}-{name}.scope"));
        prop_assert_eq!(got, want);
    }

    /// An empty path puts a usable id under the default parent, and never
    /// lets an id climb out of it.
    #[test]
    fn empty_path_uses_the_id(id in any::<String>()) {
        match parse_cgroups_path("", &id) {
            Ok(p) => {
                prop_assert_eq!(p.parent(), Some(Path::new(super::path::DEFAULT_PARENT)));
                prop_assert_eq!(p.file_name().map(|n| n.to_string_lossy().into_owned()), Some(id));
            }
            Err(_) => prop_assert!(id.is_empty() || id.contains(['/', '\0']) || id == "." || id == ".."),
        }
    }
}

//! Property tests of mount-option parsing (outside input: `mounts[].options`
//! of any spec).

use nix::mount::MsFlags;
use proptest::prelude::*;

use super::options::{parse_mount_options, parse_mount_options_ext};

/// Options mount(2) takes as flags, and a few data options.
const KNOWN: &[&str] = &[
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "bind",
    "rbind",
    "private",
    "rprivate",
    "shared",
    "rslave",
    "rro",
    "rnosuid",
    "tmpcopyup",
    "defaults",
    "relatime",
    "noatime",
    "strictatime",
    "rnoatime",
];

fn option() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(KNOWN).prop_map(str::to_string),
        "[a-z]{1,8}=[0-9a-z]{1,8}",
        any::<String>(),
    ]
}

const PROPAGATION: MsFlags = MsFlags::MS_SHARED
    .union(MsFlags::MS_PRIVATE)
    .union(MsFlags::MS_SLAVE)
    .union(MsFlags::MS_UNBINDABLE);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Never panics; propagation never leaks into the mount call's flags;
    /// a flag option never ends up in the data.
    #[test]
    fn flags_propagation_and_data_are_kept_apart(opts in prop::collection::vec(option(), 0..16)) {
        let ext = parse_mount_options_ext(&opts);
        prop_assert!(!ext.flags.intersects(PROPAGATION), "{opts:?} -> {:?}", ext.flags);
        let (flags, propagation, data) = parse_mount_options(&opts);
        prop_assert!(!flags.intersects(PROPAGATION));
        prop_assert!(propagation.difference(PROPAGATION | MsFlags::MS_REC).is_empty());
        // A flag option is never passed on as data.
        for part in ext.data.split(',') {
            prop_assert!(!KNOWN.contains(&part) || opts.iter().any(|o| o.contains(',') && o.split(',').any(|x| x == part)),
                "{part:?} from {opts:?} went to data");
        }
        prop_assert_eq!(data, ext.data);
    }

    /// `ro`/`rw` in any order: the last one wins, as with mount(8) and runc.
    #[test]
    fn the_last_of_ro_and_rw_wins(seq in prop::collection::vec(any::<bool>(), 1..12)) {
        let opts: Vec<String> = seq.iter().map(|ro| if *ro { "ro" } else { "rw" }.to_string()).collect();
        let (flags, _, data) = parse_mount_options(&opts);
        prop_assert_eq!(flags.contains(MsFlags::MS_RDONLY), *seq.last().unwrap());
        prop_assert!(data.is_empty());
    }

    /// Data options pass through verbatim, comma-joined in order.
    #[test]
    fn data_options_pass_through(data in prop::collection::vec("[a-z]{1,8}=[0-9a-z]{1,8}", 0..8)) {
        let (_, _, got) = parse_mount_options(&data);
        prop_assert_eq!(got, data.join(","));
    }
}

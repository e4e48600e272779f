//! A profile's warm-up keys in `[profiles.<name>.pool]`: `placement`, the
//! NUMA node each zygote is born on, and `prefetch`, files the daemon
//! brings into the page cache when the pool refills. This module owns
//! their types and their load-time checks; the daemon's
//! `pool/placement.rs` and `pool/prefetch.rs` act on them.
//!
//! The config is node-independent: a node list is checked for shape here
//! (not empty, no duplicates), never against the machine. A listed node
//! the machine lacks is the daemon's business (logged once at load or
//! reload; the profile then places nothing).

use std::collections::BTreeSet;
use std::path::{Component, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::field::Invalid;

/// Where a profile's zygotes are born (file field `pool.placement`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Placement {
    /// `"none"`: nothing set (the default).
    #[default]
    None,
    /// `"spread"`: over every node, the one with the fewest idle zygotes of
    /// the profile, round-robin among equals.
    Spread,
    /// `"least-pressure"`: the node with the most free memory relative to
    /// its size (the kernel has no per-node PSI), ties by fewest zygotes.
    LeastPressure,
    /// `[0, 2]`: spread over these node ids.
    Nodes(Vec<u32>),
}

impl Placement {
    /// How the value is written in the file.
    pub fn name(&self) -> String {
        match self {
            Placement::None => "none".into(),
            Placement::Spread => "spread".into(),
            Placement::LeastPressure => "least-pressure".into(),
            Placement::Nodes(n) => format!("{n:?}"),
        }
    }

    /// A node list is neither empty nor repeats a node.
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        let Placement::Nodes(nodes) = self else { return Ok(()) };
        if nodes.is_empty() {
            return Err(Invalid::PlacementEmpty);
        }
        let mut seen = BTreeSet::new();
        match nodes.iter().find(|n| !seen.insert(**n)) {
            Some(n) => Err(Invalid::PlacementDuplicate(*n)),
            None => Ok(()),
        }
    }
}

/// A string policy or a list of node ids.
#[derive(Deserialize, Serialize)]
#[serde(untagged)]
enum Raw {
    Policy(String),
    Nodes(Vec<u32>),
}

impl<'de> Deserialize<'de> for Placement {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = Raw::deserialize(d).map_err(|_| {
            D::Error::custom("expected \"none\", \"spread\", \"least-pressure\" or a list of node ids (e.g. [0, 2])")
        })?;
        match raw {
            Raw::Nodes(n) => Ok(Placement::Nodes(n)),
            Raw::Policy(p) => match p.as_str() {
                "none" => Ok(Placement::None),
                "spread" => Ok(Placement::Spread),
                "least-pressure" => Ok(Placement::LeastPressure),
                other => Err(D::Error::custom(format!(
                    "unknown placement {other:?} (allowed: \"none\", \"spread\", \"least-pressure\", a list of node ids)"
                ))),
            },
        }
    }
}

impl Serialize for Placement {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Placement::Nodes(n) => Raw::Nodes(n.clone()).serialize(s),
            other => Raw::Policy(other.name()).serialize(s),
        }
    }
}

/// `pool.prefetch`: every path absolute, without `..`.
pub(crate) fn validate_prefetch(paths: &[PathBuf]) -> Result<(), Invalid> {
    for (index, path) in paths.iter().enumerate() {
        let why = if !path.is_absolute() {
            "is not an absolute path"
        } else if path.components().any(|c| c == Component::ParentDir) {
            "contains \"..\""
        } else {
            continue;
        };
        return Err(Invalid::PrefetchPath {
            index,
            path: path.clone(),
            why,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::test_support::load;
    use super::Placement;
    use crate::Field;

    #[test]
    fn accepted_forms() {
        let c = load(
            "[profiles.a]\n[profiles.b.pool]\nplacement = \"spread\"\n\
             [profiles.c.pool]\nplacement = \"least-pressure\"\nprefetch = [\"/usr/bin/python3\", \"/opt/app/lib.so\"]\n\
             [profiles.d.pool]\nplacement = [0, 2]\n[profiles.e.pool]\nplacement = \"none\"\nprefetch = []\n",
        )
        .unwrap();
        let p = |n: &str| c.profiles[n].pool.placement.clone();
        assert_eq!(p("a"), Placement::None);
        assert_eq!(p("b"), Placement::Spread);
        assert_eq!(p("c"), Placement::LeastPressure);
        assert_eq!(p("d"), Placement::Nodes(vec![0, 2]));
        assert_eq!(p("e"), Placement::None);
        assert!(c.profiles["a"].pool.prefetch.is_empty());
        assert_eq!(
            c.profiles["c"].pool.prefetch,
            [PathBuf::from("/usr/bin/python3"), PathBuf::from("/opt/app/lib.so")]
        );
        // Written back as read (zygotectl shows profiles as JSON).
        assert_eq!(serde_json::to_string(&p("d")).unwrap(), "[0,2]");
        assert_eq!(serde_json::to_string(&p("c")).unwrap(), "\"least-pressure\"");
    }

    #[test]
    fn refusals_name_file_profile_and_field() {
        super::super::test_support::assert_refused(&[
            (
                "[profiles.x.pool]\nplacement = []\n",
                Field::PoolPlacement,
                "/etc/zygote/config.toml: profile \"x\": pool.placement: an empty node list places nothing; \
                 write \"none\" or name nodes",
            ),
            (
                "[profiles.x.pool]\nplacement = [1, 0, 1]\n",
                Field::PoolPlacement,
                "/etc/zygote/config.toml: profile \"x\": pool.placement: node 1 is listed twice",
            ),
            (
                "[profiles.x.pool]\nprefetch = [\"/bin/sh\", \"usr/bin/x\"]\n",
                Field::PoolPrefetch,
                "/etc/zygote/config.toml: profile \"x\": pool.prefetch[1]: \"usr/bin/x\" is not an absolute path",
            ),
            (
                "[profiles.x.pool]\nprefetch = [\"/usr/../etc/shadow\"]\n",
                Field::PoolPrefetch,
                "/etc/zygote/config.toml: profile \"x\": pool.prefetch[0]: \"/usr/../etc/shadow\" contains \"..\"",
            ),
        ]);
    }

    #[test]
    fn malformed_values_are_parse_errors_with_their_place() {
        for (text, says) in [
            (
                "[profiles.x.pool]\nplacement = \"roundrobin\"\n",
                "unknown placement \"roundrobin\"",
            ),
            ("[profiles.x.pool]\nplacement = [-1]\n", "expected \"none\""),
            ("[profiles.x.pool]\nplacement = 3\n", "expected \"none\""),
            ("[profiles.x.pool]\nprefetch = \"/bin/sh\"\n", "invalid type"),
        ] {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains("profile \"x\": pool."), "{e}");
            assert!(e.contains(says), "{e}");
        }
        // The old profile-level keys are not keys of a profile.
        let e = load("[profiles.x]\nplacement = \"spread\"\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `placement`"), "{e}");
    }
}

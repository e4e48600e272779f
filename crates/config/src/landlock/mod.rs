//! Landlock policy of a profile as data: its config form ([`LandlockPolicy`]),
//! its validation, ABI negotiation against a given ABI version
//! ([`LandlockPolicy::prepare`]) and the resulting ruleset
//! ([`PreparedLandlock`]). Nothing here calls the kernel: the ABI query and
//! the enforcement (`zygote_runtime::landlock`) belong to the container init.
//!
//! Semantics:
//! * `fs`: when non-empty, every filesystem right the ABI supports is
//!   *handled* (denied by default) and each rule allows `access` beneath its
//!   path. Access names are the Landlock rights (`execute`, `write_file`,
//!   `read_file`, `read_dir`, `remove_dir`, `remove_file`, `make_char`,
//!   `make_dir`, `make_reg`, `make_sock`, `make_fifo`, `make_block`,
//!   `make_sym`, `refer` (ABI 2), `truncate` (ABI 3), `ioctl_dev` (ABI 5)) and
//!   the groups `read` (read_file + read_dir), `write` (write_file,
//!   remove_dir, remove_file, every make_*, and truncate where the ABI has
//!   it; `refer` stays explicit) and `all` (every right of the ABI). Groups
//!   expand to what the ABI has and never count as missing.
//! * `net_bind` / `net_connect` (ABI 4): absent = not restricted; a list =
//!   only these TCP ports are allowed (`[]` denies all).
//! * `scope` (ABI 6): `abstract_unix_socket`, `signal`.
//! * `compatibility`: `best_effort` drops what the kernel lacks (logged and
//!   listed in [`PreparedLandlock::dropped`]); `required` makes every feature
//!   the policy names mandatory (an error naming the feature, the ABI it needs
//!   and the ABI present).

pub mod bits;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use self::bits as sys;

/// How to treat features the running kernel lacks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compatibility {
    #[default]
    BestEffort,
    Required,
}

/// One filesystem rule: `access` is allowed beneath `path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsRule {
    pub path: PathBuf,
    pub access: Vec<String>,
}

/// A profile's `[landlock]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LandlockPolicy {
    #[serde(default)]
    pub compatibility: Compatibility,
    #[serde(default)]
    pub fs: Vec<FsRule>,
    #[serde(default)]
    pub net_bind: Option<Vec<u16>>,
    #[serde(default)]
    pub net_connect: Option<Vec<u16>>,
    #[serde(default)]
    pub scope: Vec<String>,
}

/// A ruleset negotiated for one ABI, ready to be applied (plain data, so the
/// monitor can compute it once and hand it to the init child).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PreparedLandlock {
    pub abi: u32,
    pub handled_fs: u64,
    pub handled_net: u64,
    pub scoped: u64,
    pub fs_rules: Vec<(PathBuf, u64)>,
    pub net_rules: Vec<(u16, u64)>,
    /// What the policy asked for that the ABI lacks (best effort only).
    pub dropped: Vec<String>,
}

/// Filesystem rights: name, bit, first ABI that has it.
const FS_RIGHTS: [(&str, u64, u32); 16] = [
    ("execute", sys::ACCESS_FS_EXECUTE, 1),
    ("write_file", sys::ACCESS_FS_WRITE_FILE, 1),
    ("read_file", sys::ACCESS_FS_READ_FILE, 1),
    ("read_dir", sys::ACCESS_FS_READ_DIR, 1),
    ("remove_dir", sys::ACCESS_FS_REMOVE_DIR, 1),
    ("remove_file", sys::ACCESS_FS_REMOVE_FILE, 1),
    ("make_char", sys::ACCESS_FS_MAKE_CHAR, 1),
    ("make_dir", sys::ACCESS_FS_MAKE_DIR, 1),
    ("make_reg", sys::ACCESS_FS_MAKE_REG, 1),
    ("make_sock", sys::ACCESS_FS_MAKE_SOCK, 1),
    ("make_fifo", sys::ACCESS_FS_MAKE_FIFO, 1),
    ("make_block", sys::ACCESS_FS_MAKE_BLOCK, 1),
    ("make_sym", sys::ACCESS_FS_MAKE_SYM, 1),
    ("refer", sys::ACCESS_FS_REFER, 2),
    ("truncate", sys::ACCESS_FS_TRUNCATE, 3),
    ("ioctl_dev", sys::ACCESS_FS_IOCTL_DEV, 5),
];

const GROUP_READ: u64 = sys::ACCESS_FS_READ_FILE | sys::ACCESS_FS_READ_DIR;
const GROUP_WRITE: u64 = sys::ACCESS_FS_WRITE_FILE
    | sys::ACCESS_FS_REMOVE_DIR
    | sys::ACCESS_FS_REMOVE_FILE
    | sys::ACCESS_FS_MAKE_CHAR
    | sys::ACCESS_FS_MAKE_DIR
    | sys::ACCESS_FS_MAKE_REG
    | sys::ACCESS_FS_MAKE_SOCK
    | sys::ACCESS_FS_MAKE_FIFO
    | sys::ACCESS_FS_MAKE_BLOCK
    | sys::ACCESS_FS_MAKE_SYM
    | sys::ACCESS_FS_TRUNCATE;

/// Rights that make sense on a non-directory (the kernel rejects the others
/// in a rule whose path is a file).
pub const FILE_RIGHTS: u64 = sys::ACCESS_FS_EXECUTE
    | sys::ACCESS_FS_WRITE_FILE
    | sys::ACCESS_FS_READ_FILE
    | sys::ACCESS_FS_TRUNCATE
    | sys::ACCESS_FS_IOCTL_DEV;

/// First ABI with network rules / scopes.
const NET_ABI: u32 = 4;
const SCOPE_ABI: u32 = 6;

const SCOPES: [(&str, u64); 2] = [
    ("abstract_unix_socket", sys::SCOPE_ABSTRACT_UNIX_SOCKET),
    ("signal", sys::SCOPE_SIGNAL),
];

/// Every filesystem right an ABI supports.
pub fn fs_rights_for_abi(abi: u32) -> u64 {
    FS_RIGHTS
        .iter()
        .filter(|(_, _, need)| *need <= abi)
        .fold(0, |acc, (_, bit, _)| acc | bit)
}

/// An access name: a single right (with the ABI it needs) or a group.
enum Access {
    Right(u64, u32),
    Group(fn(u32) -> u64),
}

fn parse_access(name: &str) -> Option<Access> {
    match name {
        "read" => Some(Access::Group(|abi| GROUP_READ & fs_rights_for_abi(abi))),
        "write" => Some(Access::Group(|abi| GROUP_WRITE & fs_rights_for_abi(abi))),
        "all" => Some(Access::Group(fs_rights_for_abi)),
        _ => FS_RIGHTS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, bit, need)| Access::Right(*bit, *need)),
    }
}

impl LandlockPolicy {
    /// Check the policy's syntax (independent of the kernel). The error
    /// names the sub-field, e.g. `fs[1].access: unknown right "wrte"`.
    pub fn validate(&self) -> Result<(), String> {
        for (i, rule) in self.fs.iter().enumerate() {
            if !rule.path.is_absolute() {
                return Err(format!("fs[{i}].path: {:?} is not an absolute path", rule.path));
            }
            if rule.access.is_empty() {
                return Err(format!("fs[{i}].access: empty (a rule must allow something)"));
            }
            for name in &rule.access {
                if parse_access(name).is_none() {
                    return Err(format!(
                        "fs[{i}].access: unknown right \"{name}\" (known: {}, read, write, all)",
                        FS_RIGHTS.map(|r| r.0).join(", ")
                    ));
                }
            }
        }
        for (field, ports) in [("net_bind", &self.net_bind), ("net_connect", &self.net_connect)] {
            for (i, port) in ports.iter().flatten().enumerate() {
                if *port == 0 {
                    return Err(format!("{field}[{i}]: port 0 is not in 1..=65535"));
                }
            }
        }
        for (i, name) in self.scope.iter().enumerate() {
            if !SCOPES.iter().any(|(n, _)| n == name) {
                return Err(format!(
                    "scope[{i}]: unknown scope \"{name}\" (known: abstract_unix_socket, signal)"
                ));
            }
        }
        Ok(())
    }

    /// Negotiate the policy with Landlock ABI `abi`: with best effort, drop
    /// what the ABI lacks (logged, listed in `dropped`); with `required`,
    /// fail naming the missing feature and the ABI needed vs present.
    pub fn prepare(&self, abi: u32) -> Result<PreparedLandlock, String> {
        self.validate()?;
        let required = self.compatibility == Compatibility::Required;
        let mut out = PreparedLandlock {
            abi,
            ..Default::default()
        };
        // Returns whether the feature is available; records or fails otherwise.
        let need = |what: String, need: u32, dropped: &mut Vec<String>| {
            if need <= abi {
                return Ok(true);
            }
            let msg = format!("{what} needs Landlock ABI {need}, the kernel has ABI {abi}");
            if required {
                return Err(msg);
            }
            tracing::info!("landlock best effort: dropping {msg}");
            dropped.push(msg);
            Ok(false)
        };

        if !self.fs.is_empty() && need("filesystem rules (fs)".into(), 1, &mut out.dropped)? {
            out.handled_fs = fs_rights_for_abi(abi);
            for (i, rule) in self.fs.iter().enumerate() {
                let mut mask = 0;
                for name in &rule.access {
                    match parse_access(name) {
                        Some(Access::Group(expand)) => mask |= expand(abi),
                        Some(Access::Right(bit, min_abi)) => {
                            let what = format!("fs[{i}].access right \"{name}\"");
                            if need(what, min_abi, &mut out.dropped)? {
                                mask |= bit;
                            }
                        }
                        None => unreachable!("validated above"),
                    }
                }
                if mask == 0 {
                    let msg = format!(
                        "fs[{i}] ({}): no right left for this ABI, the path stays denied",
                        rule.path.display()
                    );
                    tracing::info!("landlock best effort: {msg}");
                    out.dropped.push(msg);
                    continue;
                }
                out.fs_rules.push((rule.path.clone(), mask & out.handled_fs));
            }
        }

        let mut ports: BTreeMap<u16, u64> = BTreeMap::new();
        for (field, list, bit) in [
            ("net_bind", &self.net_bind, sys::ACCESS_NET_BIND_TCP),
            ("net_connect", &self.net_connect, sys::ACCESS_NET_CONNECT_TCP),
        ] {
            let Some(list) = list else { continue };
            if need(format!("{field} (TCP port rules)"), NET_ABI, &mut out.dropped)? {
                out.handled_net |= bit;
                for port in list {
                    *ports.entry(*port).or_default() |= bit;
                }
            }
        }
        out.net_rules = ports.into_iter().collect();

        for name in &self.scope {
            if need(format!("scope \"{name}\""), SCOPE_ABI, &mut out.dropped)? {
                let (_, bit) = SCOPES.iter().find(|(n, _)| n == name).expect("validated");
                out.scoped |= bit;
            }
        }
        Ok(out)
    }
}

impl PreparedLandlock {
    /// Whether applying this ruleset restricts anything at all.
    pub fn is_noop(&self) -> bool {
        self.handled_fs == 0 && self.handled_net == 0 && self.scoped == 0
    }
}

//! `containerd-shim-zygote-v1 -info`: the runtime info containerd 2.x asks
//! every shim for (its task manager's `PluginInfo`, used by the CRI plugin
//! before it creates containers).
//!
//! Protocol (containerd's `core/runtime/v2` task manager and `pkg/shim`):
//! the binary is run with the single argument `-info`; stdin carries the
//! protobuf encoding of a `google.protobuf.Any` holding the runtime options
//! (the CRI handler's `options`), or nothing; stdout must carry the protobuf
//! encoding of `containerd.types.RuntimeInfo`: name, version, the options
//! echoed back, `features` as an `Any` whose value is the OCI runtime
//! features JSON (type URL as containerd-shim-runc-v2 writes it), and
//! annotations. Nothing else runs first: no daemon, no logging set-up.
//!
//! The features list what zygote implements, not what runc does: no hooks
//! (ignored, see the README), no `tmpcopyup`, no AppArmor/SELinux, seccomp for the native
//! architecture only, cgroupfs v1 and v2 without the systemd driver.

use std::io::{Read, Write};

use anyhow::{Context, Result};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message as _;
use containerd_shim_protos::types::introspection::{RuntimeInfo, RuntimeVersion};

use crate::shim::RUNTIME_ID;

/// The type URL containerd registers for the OCI features document.
pub(crate) const FEATURES_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

/// Mount options zygote's mount code understands (everything else is
/// passed to the filesystem as data).
pub(crate) const MOUNT_OPTIONS: &[&str] = &[
    "acl",
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noacl",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "unbindable",
];

/// Answer `-info`: options from stdin, RuntimeInfo to stdout.
pub(crate) fn main() -> Result<()> {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("read runtime options from stdin")?;
    let out = runtime_info(&input)?.write_to_bytes().context("encode RuntimeInfo")?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(())
}

/// The RuntimeInfo for the options `input` (an encoded `Any`, or empty).
pub(crate) fn runtime_info(input: &[u8]) -> Result<RuntimeInfo> {
    let mut info = RuntimeInfo {
        name: RUNTIME_ID.to_string(),
        version: Some(RuntimeVersion {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: option_env!("ZYGOTE_GIT_REVISION").unwrap_or_default().to_string(),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    };
    if !input.is_empty() {
        let options = Any::parse_from_bytes(input).context("runtime options on stdin are not a protobuf Any")?;
        info.options = Some(options).into();
    }
    info.features = Some(Any {
        type_url: FEATURES_TYPE_URL.to_string(),
        value: serde_json::to_vec(&features())?,
        ..Default::default()
    })
    .into();
    Ok(info)
}

/// The OCI runtime features document (runtime-spec `features.md`).
pub(crate) fn features() -> serde_json::Value {
    let caps: std::collections::BTreeSet<String> = caps::all().iter().map(|c| c.to_string()).collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": [],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false },
            "seccomp": {
                "enabled": true,
                "actions": [
                    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP",
                ],
                "operators": [
                    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
                ],
                "archs": [native_arch()],
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
        },
        "annotations": { "dev.zygote.version": env!("CARGO_PKG_VERSION") },
    })
}

fn native_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "SCMP_ARCH_AARCH64"
    } else {
        "SCMP_ARCH_X86_64"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_mount_option_is_understood() {
        for opt in MOUNT_OPTIONS {
            let (_, _, data) = zygote_runtime::mounts::parse_mount_options(&[opt.to_string()]);
            assert_eq!(data, "", "{opt} would be passed to the filesystem as data");
        }
        let (_, _, data) = zygote_runtime::mounts::parse_mount_options(&["size=1m".to_string()]);
        assert_eq!(data, "size=1m");
    }

    #[test]
    fn info_without_options() {
        let info = runtime_info(&[]).unwrap();
        let bytes = info.write_to_bytes().unwrap();
        let back = RuntimeInfo::parse_from_bytes(&bytes).unwrap();
        assert_eq!(back.name, "io.containerd.zygote.v1");
        assert_eq!(back.version.version, env!("CARGO_PKG_VERSION"));
        assert!(back.options.is_none());
        assert_eq!(back.features.type_url, FEATURES_TYPE_URL);
        let f: serde_json::Value = serde_json::from_slice(&back.features.value).unwrap();
        assert_eq!(f["ociVersionMin"], "1.0.0");
        assert!(f["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "CAP_SYS_ADMIN"));
        assert!(f["mountOptions"].as_array().unwrap().iter().any(|o| o == "rshared"));
    }

    #[test]
    fn options_are_echoed_and_garbage_is_an_error() {
        let opts = Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value: b"\x1a\x11profile = \"fast\"".to_vec(),
            ..Default::default()
        };
        let info = runtime_info(&opts.write_to_bytes().unwrap()).unwrap();
        assert_eq!(info.options.type_url, "runtimeoptions.v1.Options");
        assert_eq!(info.options.value, opts.value);
        let err = runtime_info(b"\xff\xff\xff").unwrap_err();
        assert!(format!("{err:#}").contains("not a protobuf Any"), "{err:#}");
    }
}

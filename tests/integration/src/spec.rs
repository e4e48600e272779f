//! Custom OCI specs for `ctr run --config`: ctr's default spec
//! ([`default_spec`]) and [`ConfigBundle`], a config.json plus a private
//! writable copy of the image's rootfs, removed on drop.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::command::run_cmd;
use crate::ctr::Ctr;
use crate::env::env;

/// `ctr oci spec` (the default spec ctr would use), parsed.
pub fn default_spec() -> serde_json::Value {
    static SPEC: OnceLock<serde_json::Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let out = Ctr::new().run(&["oci", "spec"]);
        out.assert_success();
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("ctr oci spec: bad JSON: {e}\n{}", out.describe()))
    })
    .clone()
}

/// A config.json plus a private copy of the busybox rootfs, for
/// `ctr run --config <path> <id>`; removed on drop.
pub struct ConfigBundle {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub rootfs: PathBuf,
    pub spec: serde_json::Value,
}

impl ConfigBundle {
    /// A spec for `id` running `args` as root in a writable copy of the
    /// image's rootfs, with the cgroup ctr would use (`/<ns>/<id>`); `edit`
    /// may change anything afterwards.
    pub fn new(id: &str, args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> ConfigBundle {
        let e = env();
        let dir = e.containerd_dir.join("test-bundles").join(id);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create bundle dir");
        let rootfs = dir.join("rootfs");
        let out = run_cmd(
            {
                let mut c = Command::new("cp");
                c.arg("-a").arg(&e.rootfs).arg(&rootfs);
                c
            },
            Duration::from_secs(60),
        );
        out.assert_success();
        let mut spec = default_spec();
        spec["root"] = serde_json::json!({ "path": rootfs.to_string_lossy(), "readonly": false });
        spec["process"]["args"] = serde_json::json!(args);
        spec["process"]["env"] =
            serde_json::json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]);
        spec["process"]["cwd"] = serde_json::json!("/");
        spec["process"]["terminal"] = serde_json::json!(false);
        spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{}/{}", e.namespace, id));
        edit(&mut spec);
        let config = dir.join("config.json");
        fs::write(&config, serde_json::to_vec_pretty(&spec).expect("serialize spec")).expect("write config.json");
        ConfigBundle {
            dir,
            config,
            rootfs,
            spec,
        }
    }

    pub fn config_str(&self) -> String {
        self.config.to_string_lossy().into_owned()
    }
}

impl Drop for ConfigBundle {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

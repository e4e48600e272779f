//! The installer on fake host roots (no containerd, `--restart none`):
//! containerd's stock default configs of 1.6.20, 1.7.24 and 2.1.9
//! (`containerd config default` of the real binaries, in `fixtures/`),
//! hand-written configs with runtimes, imports and comments, and a
//! k3s-style template. Install twice = once (byte-identical trees),
//! uninstall = the original tree byte for byte, broken or foreign configs
//! refused with nothing changed.
//!
//! The stock fixtures were generated once with `containerd config default`
//! of the system containerd (1.6.20) and of `hack/containerd-versions.sh
//! 1.7.24` / `2.1.9`; the configs the installer writes from them were
//! loaded by those binaries (`containerd --config … config dump`).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zygote_installer::containerd_config::Layout;
use zygote_installer::host::{Host, Mode};
use zygote_installer::install::{install, uninstall, Containerd};
use zygote_installer::restart::Restart;
use zygote_installer::Error;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURES).join(name)).expect("fixture")
}

/// A fake node: `<tmp>/root` with `config` as containerd's config, and
/// `<tmp>/src` with two small files standing in for the binaries.
struct Fake {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    src: PathBuf,
    host: Host,
}

fn fake(config: &str) -> Fake {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(root.join("etc/containerd")).expect("mkdir");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(root.join("etc/containerd/config.toml"), config).expect("write config");
    std::fs::write(src.join("containerd-shim-zygote-v1"), b"shim bytes").expect("write");
    std::fs::write(src.join("zygotectl"), b"zygotectl bytes").expect("write");
    let mut host = Host::new(
        &root,
        Path::new("/opt/zygote/bin"),
        Path::new("/etc/containerd/config.toml"),
        Path::new("/run/zygote"),
        Path::new("/etc/zygote"),
    );
    host.link_dir = Some(root.join("usr/local/bin"));
    Fake {
        _tmp: tmp,
        root,
        src,
        host,
    }
}

fn none() -> Containerd {
    Containerd {
        restart: Restart::None,
        unit: "containerd".into(),
        pid: None,
        socket: PathBuf::from("/nonexistent.sock"),
        wait: Duration::from_secs(1),
    }
}

/// Every file (content, mode) and directory under `root`.
fn tree(root: &Path) -> BTreeMap<PathBuf, Option<(Vec<u8>, u32)>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).expect("under root").to_path_buf();
            if let Ok(target) = std::fs::read_link(&p) {
                out.insert(rel, Some((target.into_os_string().into_encoded_bytes(), 0o777)));
            } else if p.is_dir() {
                out.insert(rel, None);
                stack.push(p);
            } else {
                let mode = std::fs::metadata(&p).expect("stat").permissions().mode() & 0o7777;
                out.insert(rel, Some((std::fs::read(&p).expect("read"), mode)));
            }
        }
    }
    out
}

impl Fake {
    fn install(&self) -> Result<Vec<String>, Error> {
        let zc = Path::new(FIXTURES).join("zygote-config.toml");
        install(&self.host, &self.src, &zc, &none()).map(|hs| hs.into_iter().map(|h| h.name).collect())
    }
    fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.root.join(p)).expect("read")
    }
}

/// install, install again, uninstall: the checks every config shares.
/// Returns the installed main config.
fn round_trip(config: &str, mode: Mode) -> Fake {
    let f = fake(config);
    let before = tree(&f.root);
    let hs = f.install().expect("install");
    assert_eq!(hs, ["zygote", "zygote-sandbox"]);
    assert_eq!(f.host.mode(&f.read("etc/containerd/config.toml")).expect("mode"), mode);
    let once = tree(&f.root);
    assert_ne!(once, before);
    f.install().expect("second install");
    assert_eq!(tree(&f.root), once, "install twice != install once");
    assert_eq!(f.read("opt/zygote/bin/zygotectl"), "zygotectl bytes");
    assert_eq!(
        std::fs::read_link(f.root.join("usr/local/bin/containerd-shim-zygote-v1")).expect("shim link"),
        Path::new("/opt/zygote/bin/containerd-shim-zygote-v1")
    );
    assert_eq!(f.read("etc/zygote/handlers/sandbox.toml"), "profile = \"sandbox\"\n");
    let status = zygote_installer::status::status(&f.host).expect("status");
    assert_eq!(status.handlers, ["zygote", "zygote-sandbox"]);
    let u = uninstall(&f.host, &none()).expect("uninstall");
    assert!(u.blocked_by.is_empty());
    assert_eq!(tree(&f.root), before, "uninstall did not restore the tree");
    f.install().expect("install after uninstall");
    assert_eq!(tree(&f.root), once);
    f
}

#[test]
fn stock_configs_detected() {
    for (file, layout) in [
        ("containerd-1.6.20.toml", Layout::V2),
        ("containerd-1.7.24.toml", Layout::V2),
        ("containerd-2.1.9.toml", Layout::V3),
    ] {
        assert_eq!(
            Layout::detect(Path::new(file), &fixture(file)).expect(file),
            layout,
            "{file}"
        );
    }
}

#[test]
fn stock_v2_configs_get_a_block() {
    for file in ["containerd-1.6.20.toml", "containerd-1.7.24.toml"] {
        let orig = fixture(file);
        let f = round_trip(&orig, Mode::Block);
        let main = f.read("etc/containerd/config.toml");
        assert!(main.starts_with(&orig), "{file}: the original text is not kept as is");
        assert!(main.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.zygote-sandbox.options]\n  ConfigPath = \"/etc/zygote/handlers/sandbox.toml\""));
        assert_eq!(f.read("etc/containerd/config.toml.zygote-installer.bak"), orig);
    }
}

#[test]
fn stock_v3_config_gets_a_dropin() {
    let orig = fixture("containerd-2.1.9.toml");
    let f = round_trip(&orig, Mode::DropIn);
    let main = f.read("etc/containerd/config.toml");
    assert_eq!(
        main,
        orig.replacen("imports = []", "imports = [\"conf.d/zygote.toml\"]", 1)
    );
    let dropin = f.read("etc/containerd/conf.d/zygote.toml");
    assert!(dropin.contains("version = 3\n"));
    assert!(dropin.contains("[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.zygote]\n  runtime_type = \"io.containerd.zygote.v1\"\n  runtime_path = \"/opt/zygote/bin/containerd-shim-zygote-v1\"\n  pod_annotations = [\"zygote.dev/*\"]\n"));
}

#[test]
fn custom_configs_keep_comments_and_runtimes() {
    let orig = fixture("custom-v2.toml");
    let f = round_trip(&orig, Mode::Block);
    assert!(f.read("etc/containerd/config.toml").starts_with(&orig));

    let orig = fixture("custom-v3.toml");
    let f = round_trip(&orig, Mode::DropIn);
    let main = f.read("etc/containerd/config.toml");
    assert!(
        main.contains("\"/etc/containerd/site.toml\", # site-wide settings"),
        "{main}"
    );
    assert!(main.contains("# runc, with systemd cgroups\n"));
    assert_eq!(
        main,
        orig.replace("settings\n]", "settings\n  \"conf.d/zygote.toml\",\n]"),
        "only the imports entry changes"
    );
    // An entry removed by hand-edits elsewhere still comes out exactly.
    let edited = main.replace("3.10", "3.11");
    let path = Path::new("config.toml");
    let removed =
        zygote_installer::containerd_config::remove_import(path, &edited, "conf.d/zygote.toml").expect("remove");
    assert_eq!(removed, orig.replace("3.10", "3.11"));
}

#[test]
fn k3s_template_is_extended_or_created() {
    // A template exists: the block is appended to it, config.toml untouched.
    let f = fake(&fixture("k3s-config.toml"));
    let tmpl = fixture("k3s-config.toml.tmpl");
    std::fs::write(f.root.join("etc/containerd/config.toml.tmpl"), &tmpl).expect("write tmpl");
    let before = tree(&f.root);
    f.install().expect("install");
    assert_eq!(f.read("etc/containerd/config.toml"), fixture("k3s-config.toml"));
    let t = f.read("etc/containerd/config.toml.tmpl");
    assert!(t.starts_with(&tmpl));
    assert!(t.contains("[plugins.\"io.containerd.cri.v1.runtime\".containerd.runtimes.zygote]"));
    let once = tree(&f.root);
    f.install().expect("install again");
    assert_eq!(tree(&f.root), once);
    uninstall(&f.host, &none()).expect("uninstall");
    assert_eq!(tree(&f.root), before);

    // No template yet: one is created from k3s's base template.
    round_trip(&fixture("k3s-config.toml"), Mode::Template(Layout::V3));
}

#[test]
fn broken_or_foreign_configs_are_refused_with_nothing_changed() {
    let cases: [(&str, &str); 4] = [
        ("version = 2\n[plugins\n", "not valid TOML"),
        ("root = \"/var/lib/containerd\"\n", "version 1 config"),
        ("version = 4\n", "not supported"),
        (
            "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.zygote]\nruntime_type = 'x'\n",
            "runtimes.zygote`: already defined",
        ),
    ];
    for (config, want) in cases {
        let f = fake(config);
        let before = tree(&f.root);
        let e = f.install().expect_err(config).to_string();
        assert!(e.contains(want), "{config:?}: {e}");
        assert!(e.contains("config.toml"), "the error names the file: {e}");
        assert_eq!(tree(&f.root), before, "{config:?} changed something");
    }
}

#[test]
fn bad_zygote_config_is_refused_with_nothing_changed() {
    let f = fake(&fixture("containerd-2.1.9.toml"));
    let before = tree(&f.root);
    let zc = f.root.join("../zygote.toml");
    std::fs::write(&zc, "[profiles.default]\nno_such_key = 1\n").expect("write");
    let e = install(&f.host, &f.src, &zc, &none())
        .expect_err("bad zygote config")
        .to_string();
    assert!(e.contains("zygote.toml"), "{e}");
    assert_eq!(tree(&f.root), before);
}

#[test]
fn uninstall_keeps_the_shim_while_tasks_run() {
    let f = fake(&fixture("containerd-1.7.24.toml"));
    f.install().expect("install");
    let task = "a".repeat(64);
    std::fs::create_dir_all(f.root.join(format!("run/zygote/0123456789abcdef/tasks/{task}"))).expect("mkdir");
    let u = uninstall(&f.host, &none()).expect("uninstall");
    assert_eq!(u.blocked_by, [task]);
    assert_eq!(f.read("etc/containerd/config.toml"), fixture("containerd-1.7.24.toml"));
    assert_eq!(f.read("opt/zygote/bin/containerd-shim-zygote-v1"), "shim bytes");
}

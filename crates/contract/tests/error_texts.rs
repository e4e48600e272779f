//! The exact text users see for a few config and runtime-options errors,
//! printed as the daemon prints every error: with its cause chain
//! ([`error_chain`]), each cause once.

use std::collections::HashMap;
use std::path::Path;

use zygote_config::{profile_from_options, Config, PROFILE_ANNOTATION};
use zygote_contract::proto::error_chain;

const OPTIONS: &str = "runtimeoptions.v1.Options";

/// The config file `text`, loaded from a temp dir; the error as users see it.
fn load_err(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let e = Config::load(Some(&path), 0).expect_err("config must be refused");
    let shown = error_chain(&e).replace(&dir.path().display().to_string(), "<dir>");
    (dir, shown)
}

/// A length-delimited protobuf field.
fn field(num: u8, bytes: &[u8]) -> Vec<u8> {
    assert!(bytes.len() < 128);
    let mut out = vec![(num << 3) | 2, bytes.len() as u8];
    out.extend_from_slice(bytes);
    out
}

#[test]
fn missing_config_file() {
    let e = Config::load(Some(Path::new("/nonexistent/zygote.toml")), 0).unwrap_err();
    assert_eq!(
        error_chain(&e),
        "/nonexistent/zygote.toml: config file not found (given by an explicit path)"
    );
}

#[test]
fn unreadable_options_file_prints_its_cause_once() {
    let value = field(2, b"/nonexistent/opts.toml");
    let e = profile_from_options(OPTIONS, &value).unwrap_err();
    assert_eq!(
        error_chain(&e),
        "/nonexistent/opts.toml: cannot read: No such file or directory (os error 2)"
    );
}

#[test]
fn bad_field_type() {
    let (_dir, e) = load_err("[profiles.fast.pool]\nmin = \"two\"\n");
    assert_eq!(
        e,
        "<dir>/config.toml: line 2, column 7: profile \"fast\": pool.min: \
         invalid type: string \"two\", expected u32"
    );
}

#[test]
fn refused_keys() {
    let (_dir, e) = load_err("[profiles.fast.pool]\nplacement = [0, 0]\n");
    assert_eq!(
        e,
        "<dir>/config.toml: profile \"fast\": pool.placement: node 0 is listed twice"
    );
    let (_dir, e) = load_err("[profiles.fast]\nnamespaces = [\"pid\", \"cgroup\"]\n");
    assert_eq!(
        e,
        "<dir>/config.toml: line 2, column 14: profile \"fast\": namespaces: \"cgroup\" is not implemented: \
         zygotes do not create a cgroup namespace in advance (each task gets its own at Create); remove it"
    );
}

#[test]
fn invalid_value() {
    let (_dir, e) = load_err("[profiles.fast.pool]\ninitial = 9\nmax = 8\n");
    assert_eq!(
        e,
        "<dir>/config.toml: profile \"fast\": pool.initial (9) is larger than pool.max (8)"
    );
}

#[test]
fn unknown_and_malformed_profile_choices() {
    let c = Config::from_toml("[profiles.fast]\n", None, 0).unwrap();
    let pick = |value: &str| HashMap::from([(PROFILE_ANNOTATION.to_string(), value.to_string())]);
    let e = c.select(&pick("slow"), None).unwrap_err();
    assert_eq!(
        error_chain(&e),
        "annotation zygote.dev/profile selects profile \"slow\", which is not configured \
         (known profiles: default, fast)"
    );
    let e = c.select(&pick("Fast!"), None).unwrap_err();
    assert_eq!(
        error_chain(&e),
        "annotation zygote.dev/profile=\"Fast!\": not a valid profile name (it must match [a-z0-9][a-z0-9_-]{0,62})"
    );
    let e = profile_from_options(OPTIONS, &field(3, b"profile = 1\n")).unwrap_err();
    assert_eq!(
        error_chain(&e),
        "runtime options (config_body): line 1, column 11: profile: invalid type: integer `1`, expected a string"
    );
    let e = profile_from_options(OPTIONS, b"\x1a\x05ab").unwrap_err();
    assert_eq!(
        error_chain(&e),
        "runtime options (runtimeoptions.v1.Options): truncated config_body: 5 bytes declared at byte 2, 2 left"
    );
}

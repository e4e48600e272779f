//! Tests of profile selection and of where the config is loaded from.

use std::collections::HashMap;
use std::path::Path;

use super::parse::parse;
use super::*;

fn load(text: &str) -> Result<Config, PolicyError> {
    parse(text, Some(Path::new("/etc/zygote/config.toml")), 7)
}

fn annotations(value: &str) -> HashMap<String, String> {
    HashMap::from([(PROFILE_ANNOTATION.to_string(), value.to_string())])
}

#[test]
fn select_prefers_annotation_then_options_then_default() {
    let c = load("default_profile = \"b\"\n[profiles.a]\n[profiles.b]\n[profiles.c]\n").unwrap();
    let none = HashMap::new();
    assert_eq!(c.select(&none, None).unwrap().name, "b");
    assert_eq!(c.select(&none, Some("c")).unwrap().name, "c");
    assert_eq!(c.select(&annotations("a"), Some("c")).unwrap().name, "a");
    assert_eq!(c.select(&annotations("default"), None).unwrap().name, "default");
}

#[test]
fn select_errors() {
    let c = load("[profiles.a]\n").unwrap();
    let e = c.select(&annotations("Bad Name"), None).unwrap_err();
    assert!(matches!(e, PolicyError::BadAnnotation { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("annotation zygote.dev/profile=\"Bad Name\": "),
        "{e}"
    );
    let e = c.select(&annotations(""), None).unwrap_err();
    assert!(matches!(e, PolicyError::BadAnnotation { .. }), "{e:?}");

    let e = c.select(&annotations("zz"), Some("a")).unwrap_err();
    match &e {
        PolicyError::UnknownProfile {
            name,
            source_of_choice,
            known,
        } => {
            assert_eq!(name, "zz");
            assert_eq!(*source_of_choice, "annotation zygote.dev/profile");
            assert_eq!(known, &["a", "default"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        e.to_string(),
        "annotation zygote.dev/profile selects profile \"zz\", which is not configured \
         (known profiles: a, default)"
    );
    let e = c.select(&HashMap::new(), Some("yy")).unwrap_err();
    assert!(
        e.to_string().starts_with("runtime options selects profile \"yy\""),
        "{e}"
    );
}

#[test]
fn load_order_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.toml");
    let b = dir.path().join("b.toml");
    let missing = dir.path().join("missing.toml");
    std::fs::write(&a, "default_profile = \"a\"\n[profiles.a]\n").unwrap();
    std::fs::write(&b, "default_profile = \"b\"\n[profiles.b]\n").unwrap();

    let c = Config::load_from(Some(&a), Some(&b), &b, 7).unwrap();
    assert_eq!(
        (c.default_profile.as_str(), c.source.as_deref()),
        ("a", Some(a.as_path()))
    );
    let c = Config::load_from(None, Some(&b), &a, 7).unwrap();
    assert_eq!(c.default_profile, "b");
    let c = Config::load_from(None, None, &a, 7).unwrap();
    assert_eq!(c.default_profile, "a");
    let c = Config::load_from(None, None, &missing, 7).unwrap();
    assert_eq!((c.source, c.profiles), (None, Config::builtin().profiles));

    let e = Config::load_from(Some(&missing), None, &a, 7).unwrap_err();
    assert!(matches!(e, PolicyError::NotFound { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("missing.toml: config file not found (given by an explicit path)"),
        "{e}"
    );
    let e = Config::load_from(None, Some(&missing), &a, 7).unwrap_err();
    assert!(e.to_string().ends_with("(given by $ZYGOTE_CONFIG)"), "{e}");
    // A directory is unreadable as a file: an error, not the built-in config.
    let e = Config::load_from(None, None, dir.path(), 7).unwrap_err();
    assert!(
        matches!(
            e,
            PolicyError::NotRegularFile {
                kind: "a directory",
                ..
            }
        ),
        "{e:?}"
    );
    // Errors of a loaded file name it.
    std::fs::write(&a, "[profiles.q.pool]\ninitial = 99\n").unwrap();
    let e = Config::load(Some(&a), 7).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: profile \"q\": pool.initial (99)", a.display())),
        "{e}"
    );
}

//! Tests of the runtime-options decoder with hand-encoded protobuf bytes.

use super::*;

/// Encode a length-delimited field (tag, varint length, bytes).
fn field(num: u8, bytes: &[u8]) -> Vec<u8> {
    assert!(bytes.len() < 128 * 128);
    let mut out = vec![(num << 3) | 2];
    if bytes.len() < 128 {
        out.push(bytes.len() as u8);
    } else {
        out.push((bytes.len() as u8 & 0x7f) | 0x80);
        out.push((bytes.len() >> 7) as u8);
    }
    out.extend_from_slice(bytes);
    out
}

const TYPE: &str = "runtimeoptions.v1.Options";

#[test]
fn literal_message_with_config_body() {
    // type_url = "x", config_body = "profile = \"fast\""
    let bytes = b"\x0a\x01x\x1a\x10profile = \"fast\"";
    assert_eq!(
        RuntimeOptions::decode(bytes).unwrap(),
        RuntimeOptions {
            type_url: "x".into(),
            config_path: String::new(),
            config_body: b"profile = \"fast\"".to_vec(),
        }
    );
    assert_eq!(profile_from_options(TYPE, bytes).unwrap().as_deref(), Some("fast"));
    let full = format!("type.googleapis.com/{TYPE}");
    assert_eq!(profile_from_options(&full, bytes).unwrap().as_deref(), Some("fast"));
}

#[test]
fn other_types_and_empty_mean_no_profile() {
    let bytes = field(3, b"profile = \"fast\"");
    assert_eq!(profile_from_options("", &bytes).unwrap(), None);
    assert_eq!(
        profile_from_options("containerd.runc.v1.Options", &bytes).unwrap(),
        None
    );
    assert_eq!(
        profile_from_options("type.googleapis.com/containerd.runc.v1.Options", b"\xff").unwrap(),
        None
    );
    assert_eq!(profile_from_options(TYPE, b"").unwrap(), None);
    // Body without a profile key.
    assert_eq!(profile_from_options(TYPE, &field(3, b"# nothing\n")).unwrap(), None);
}

#[test]
fn config_path_is_read_when_body_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opts.toml");
    std::fs::write(&path, "profile = \"locked\"\n").unwrap();
    let mut bytes = field(1, TYPE.as_bytes());
    bytes.extend(field(2, path.to_str().unwrap().as_bytes()));
    bytes.extend(field(3, b""));
    assert_eq!(profile_from_options(TYPE, &bytes).unwrap().as_deref(), Some("locked"));

    // A non-empty body wins over the path.
    let mut with_body = bytes.clone();
    with_body.extend(field(3, b"profile = \"fast\""));
    assert_eq!(profile_from_options(TYPE, &with_body).unwrap().as_deref(), Some("fast"));

    let missing = dir.path().join("missing.toml");
    let e = profile_from_options(TYPE, &field(2, missing.to_str().unwrap().as_bytes())).unwrap_err();
    assert!(matches!(e, PolicyError::Read { .. }), "{e:?}");
    assert!(e.to_string().contains("missing.toml: cannot read"), "{e}");

    std::fs::write(&path, "profil = \"x\"\n").unwrap();
    let e = profile_from_options(TYPE, &bytes).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("runtime options (config_path {})", path.display())),
        "{e}"
    );
    assert!(
        e.contains("line 1, column 1") && e.contains("unknown field `profil`"),
        "{e}"
    );
}

#[test]
fn bad_toml_and_bad_names_are_errors() {
    let e = profile_from_options(TYPE, &field(3, b"profile = 3"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("runtime options (config_body): line 1, column 11: profile: "),
        "{e}"
    );
    let e = profile_from_options(TYPE, &field(3, b"profile = \"Fast\""))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("(config_body): profile: \"Fast\" is not a valid profile name"),
        "{e}"
    );
    let e = profile_from_options(TYPE, &field(3, b"\xff\xfe"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not valid UTF-8"), "{e}");
}

#[test]
fn unknown_fields_of_every_wire_type_are_skipped() {
    let mut bytes = Vec::new();
    bytes.extend([0x20, 0x96, 0x01]); // field 4 varint 150
    bytes.extend([0x29, 1, 2, 3, 4, 5, 6, 7, 8]); // field 5 fixed64
    bytes.extend(field(6, b"ignored"));
    bytes.extend([0x3d, 1, 2, 3, 4]); // field 7 fixed32
    bytes.extend([0x43, 0x08, 0x01, 0x44]); // group 8 { field 1 varint 1 }
    bytes.extend([0x80, 0x01, 0x05]); // field 16 varint (two-byte tag)
    bytes.extend(field(3, b"profile = \"p1\""));
    assert_eq!(profile_from_options(TYPE, &bytes).unwrap().as_deref(), Some("p1"));
}

#[test]
fn malformed_input_is_rejected() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"\x1a\x10profile",
            "truncated config_body: 16 bytes declared at byte 2, 7 left",
        ),
        (b"\x1a", "truncated varint at byte 1"),
        (b"\x1a\x80", "truncated varint at byte 2"),
        (b"\x20", "truncated varint at byte 1"),
        (b"\x29\x01\x02", "truncated fixed64"),
        (b"\x3d\x01", "truncated fixed32"),
        (b"\x32\x05ab", "truncated length-delimited field"),
        (b"\x43\x08\x01", "truncated group 8: no end tag"),
        (b"\x43\x4c", "group 8 closed by end tag 9"),
        (b"\x44", "unexpected end-group tag for field 8"),
        (b"\x4e", "invalid wire type 6 for field 9"),
        (b"\x02\x00", "invalid field number 0 at byte 0"),
        (b"\x18\x01", "field 3 (config_body) has wire type 0"),
        (b"\x12\x01\xff", "config_path is not valid UTF-8"),
        (
            b"\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
            "varint overflows 64 bits",
        ),
    ];
    for (bytes, want) in cases {
        let e = profile_from_options(TYPE, bytes).unwrap_err();
        assert!(matches!(e, PolicyError::Options { .. }), "{bytes:?}: {e:?}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("runtime options (runtimeoptions.v1.Options): "),
            "{msg}"
        );
        assert!(msg.contains(want), "{bytes:?}: want {want:?}, got {msg}");
    }
    // The largest valid varint decodes.
    let mut w = Wire {
        buf: b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
        pos: 0,
    };
    assert_eq!(w.varint().unwrap(), u64::MAX);
}

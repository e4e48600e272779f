//! Property tests of the runtime-options decoder: it never panics on
//! arbitrary bytes, decodes what an encoder wrote (with unknown fields of
//! every wire type in between), and what it accepts survives a round trip.

use proptest::prelude::*;

use super::*;

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn len_field(num: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint((num << 3) | WIRE_LEN, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// The message as protobuf bytes (empty fields left out, as protobuf does).
fn encode(m: &RuntimeOptions) -> Vec<u8> {
    let mut out = Vec::new();
    for (num, bytes) in [
        (1, m.type_url.as_bytes()),
        (2, m.config_path.as_bytes()),
        (3, m.config_body.as_slice()),
    ] {
        if !bytes.is_empty() {
            len_field(num, bytes, &mut out);
        }
    }
    out
}

/// A well-formed field zygote does not know (number 4..=2^29-1).
fn unknown_field() -> impl Strategy<Value = Vec<u8>> {
    let num = 4u64..(1 << 29) - 1;
    (num, 0u8..5, any::<u64>(), proptest::collection::vec(any::<u8>(), 0..20)).prop_map(|(num, kind, v, bytes)| {
        let mut out = Vec::new();
        match kind {
            0 => {
                varint(num << 3 | WIRE_VARINT, &mut out);
                varint(v, &mut out);
            }
            1 => {
                varint(num << 3 | WIRE_I64, &mut out);
                out.extend(v.to_le_bytes());
            }
            2 => len_field(num, &bytes, &mut out),
            3 => {
                varint(num << 3 | WIRE_I32, &mut out);
                out.extend((v as u32).to_le_bytes());
            }
            _ => {
                // A group holding a varint and a length-delimited field.
                varint(num << 3 | WIRE_SGROUP, &mut out);
                varint(1 << 3 | WIRE_VARINT, &mut out);
                varint(v, &mut out);
                len_field(2, &bytes, &mut out);
                varint(num << 3 | WIRE_EGROUP, &mut out);
            }
        }
        out
    })
}

fn message() -> impl Strategy<Value = RuntimeOptions> {
    (".{0,40}", ".{0,40}", proptest::collection::vec(any::<u8>(), 0..200)).prop_map(
        |(type_url, config_path, config_body)| RuntimeOptions {
            type_url,
            config_path,
            config_body,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = RuntimeOptions::decode(&bytes);
    }

    #[test]
    fn body_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = Vec::new();
        len_field(3, &body, &mut bytes);
        let _ = profile_from_options(RUNTIME_OPTIONS_TYPE, &bytes);
    }

    #[test]
    fn encoded_messages_decode_with_unknown_fields_skipped(
        m in message(),
        before in proptest::collection::vec(unknown_field(), 0..4),
        after in proptest::collection::vec(unknown_field(), 0..4),
    ) {
        let mut bytes: Vec<u8> = before.concat();
        bytes.extend(encode(&m));
        bytes.extend(after.concat());
        prop_assert_eq!(RuntimeOptions::decode(&bytes).unwrap(), m);
    }

    #[test]
    fn what_is_accepted_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(m) = RuntimeOptions::decode(&bytes) {
            prop_assert_eq!(RuntimeOptions::decode(&encode(&m)).unwrap(), m);
        }
    }

    #[test]
    fn any_profile_name_in_the_body_is_taken_or_refused(name in ".{0,80}") {
        let mut bytes = Vec::new();
        let body = format!("profile = {}", toml::Value::String(name.clone()));
        len_field(3, body.as_bytes(), &mut bytes);
        match profile_from_options(RUNTIME_OPTIONS_TYPE, &bytes) {
            Ok(got) => {
                prop_assert!(profile_name(&name).is_ok());
                prop_assert_eq!(got, Some(name));
            }
            Err(e) => {
                prop_assert!(profile_name(&name).is_err(), "{}", e);
                let refused_name = matches!(e, PolicyError::Options { problem: OptionsProblem::ProfileName(_), .. });
                prop_assert!(refused_name, "{:?}", e);
                // The name is quoted, cut: the message stays short.
                prop_assert!(e.to_string().len() < 400);
            }
        }
    }
}

/// Groups nested a million deep: an error, not a stack overflow.
#[test]
fn deeply_nested_groups_are_refused() {
    let depth = 1_000_000;
    let mut bytes = vec![4 << 3 | WIRE_SGROUP as u8; depth];
    bytes.extend(std::iter::repeat_n(4 << 3 | WIRE_EGROUP as u8, depth));
    let e = RuntimeOptions::decode(&bytes).unwrap_err();
    assert_eq!(
        e,
        DecodeError::TooDeep {
            field: 4,
            limit: MAX_GROUP_DEPTH
        }
    );
    // Nesting up to the limit is fine.
    let n = MAX_GROUP_DEPTH;
    let mut ok = vec![4 << 3 | WIRE_SGROUP as u8; n];
    ok.extend(std::iter::repeat_n(4 << 3 | WIRE_EGROUP as u8, n));
    assert_eq!(RuntimeOptions::decode(&ok).unwrap(), RuntimeOptions::default());
}

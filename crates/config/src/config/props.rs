//! Property tests of the config parser and of profile selection: arbitrary
//! text never panics (also text shaped like the file, to reach the error
//! locations), generated valid configs load with the values written, and
//! any annotation value is either a configured profile or an error.

use std::collections::HashMap;
use std::fmt::Write;

use proptest::prelude::*;

use super::parse::parse;
use super::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,300}") {
        let _ = parse(&text, None, 7);
    }

    #[test]
    fn file_shaped_text_never_panics(
        lines in proptest::collection::vec(
            "(\\[profiles\\.[a-zA-Z\"' .]{0,6}(\\.(pool|resources|landlock|seccomp|x))?\\]|\\[wasm\\]|\
              [a-z_\"'.]{0,14} ?= ?(-?[0-9]{1,4}|\"[a-z/é]{0,5}\"|\\[\\]|\\[\"(pid|mount|user|x)\"\\]|\\{ ?\\}|'x)|.{0,10})",
            0..10,
        )
    ) {
        let text = lines.join("\n");
        if let Err(e) = parse(&text, None, 7) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn valid_generated_configs_load(profiles in proptest::collection::btree_map(
        "[a-z0-9][a-z0-9_-]{0,10}",
        (0u32..=256, 0u32..=256, 0u32..=256, 1u64..100_000, proptest::sample::subsequence(
            vec!["pid", "uts", "ipc", "net"], 0..=4), proptest::option::of(1i64..i64::MAX),
            proptest::option::of(2u64..=262_144), any::<bool>()),
        0..5,
    )) {
        let mut text = String::new();
        let mut want = Vec::new();
        for (name, (a, b, c, age, ns, mem, shares, wasm)) in &profiles {
            let mut v = [*a, *b, *c];
            v.sort();
            let [min, initial, max] = v;
            writeln!(text, "[profiles.{name}]").unwrap();
            writeln!(text, "mode = \"{}\"", if *wasm { "wasm" } else { "namespace" }).unwrap();
            writeln!(text, "namespaces = {ns:?}").unwrap();
            writeln!(text, "[profiles.{name}.pool]\nmin = {min}\ninitial = {initial}\nmax = {max}\nmax_age_secs = {age}").unwrap();
            writeln!(text, "[profiles.{name}.resources]").unwrap();
            if let Some(m) = mem {
                writeln!(text, "memory_limit_bytes = {m}").unwrap();
            }
            if let Some(s) = shares {
                writeln!(text, "cpu_shares = {s}").unwrap();
            }
            want.push((name.clone(), (min, initial, max, *age), ns.len(), *mem, *shares, *wasm));
        }
        let c = parse(&text, None, 7).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        for (name, (min, initial, max, age), ns, mem, shares, wasm) in want {
            let p = &c.profiles[&name];
            prop_assert_eq!((p.pool.min, p.pool.initial, p.pool.max, p.pool.max_age.as_secs()), (min, initial, max, age));
            prop_assert_eq!(p.namespaces.len(), ns);
            prop_assert_eq!((p.resources.memory_limit_bytes, p.resources.cpu_shares), (mem, shares));
            prop_assert_eq!(p.mode == Mode::Wasm, wasm);
        }
        prop_assert!(c.profiles.contains_key(BUILTIN_PROFILE));
    }

    #[test]
    fn any_annotation_selects_a_configured_profile_or_fails(value in ".{0,100}|[a-c]{1,2}") {
        let c = parse("[profiles.a]\n[profiles.b]\n", None, 7).unwrap();
        let annotations = HashMap::from([(PROFILE_ANNOTATION.to_string(), value.clone())]);
        match c.select(&annotations, None) {
            Ok(p) => prop_assert_eq!(&p.name, &value),
            Err(e) => {
                let known = c.profiles.contains_key(&value);
                prop_assert!(!known, "{}", e);
                let bad_name = validate::profile_name(&value).is_err();
                prop_assert_eq!(matches!(e, PolicyError::BadAnnotation { .. }), bad_name);
                // Quoted, cut: the message never carries the whole value.
                prop_assert!(e.to_string().len() < 300);
            }
        }
    }
}

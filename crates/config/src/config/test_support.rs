//! What the tests of the config's sections share: loading a text as
//! `/etc/zygote/config.toml`, and checking that a bad value is refused with
//! the exact message and the field of profile `x`.

use crate::{Config, Field, PolicyError};

/// `text` loaded as if from `/etc/zygote/config.toml`.
pub(super) fn load(text: &str) -> Result<Config, PolicyError> {
    Config::from_toml(text, Some(std::path::Path::new("/etc/zygote/config.toml")), 0)
}

/// Each `(text, field, message)`: `text` is refused with `message`, naming
/// profile `x` and `field`.
pub(super) fn assert_refused(cases: &[(&str, Field, &str)]) {
    for (text, field, message) in cases {
        let e = load(text).unwrap_err();
        assert_eq!(e.to_string(), *message);
        match e {
            PolicyError::InvalidProfile { profile, invalid, .. } => {
                assert_eq!((profile.as_str(), invalid.field()), ("x", *field))
            }
            other => panic!("{other:?}"),
        }
    }
}

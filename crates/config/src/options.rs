//! The runtime options of a Create request: the protobuf `Any` containerd
//! puts in `CreateTaskRequest.options`, and the profile it names.
//!
//! For runtimes other than runc, ctr (`--runtime-config-path`) and the CRI
//! plugin (the RuntimeClass handler's options) send
//! `runtimeoptions.v1.Options { type_url = 1, config_path = 2,
//! config_body = 3 }`. zygote reads `config_body`, or else the file at
//! `config_path`, as TOML holding one optional key: `profile = "name"`.
//! The message is decoded by a small protobuf wire decoder (no generated
//! code): unknown fields of every wire type are skipped (groups nested at
//! most [`MAX_GROUP_DEPTH`] deep), truncated input is an error.
//!
//! Why hand-written and not `prost`: a `#[derive(prost::Message)]` on this
//! three-field struct would fit (no build.rs, no protoc), but (1) prost's
//! errors say what broke, not where (`buffer underflow`, `invalid wire
//! type`), while these name the field and the byte offset, which the tests
//! and users of `ctr --runtime-config-path` rely on; (2) the workspace has
//! prost only as a build-time dependency (0.8, through ttrpc-compiler), so
//! it would add a runtime dependency for ~150 lines that the property tests
//! (`options_props.rs`: no panic on arbitrary bytes, round trips, unknown
//! fields of every wire type) already cover. Revisit if more messages
//! need decoding.

use std::path::Path;

use serde::Deserialize;

use crate::config::parse::toml_location;
use crate::config::validate::profile_name;
use crate::error::{OptionsProblem, PolicyError};

/// The message type zygote understands.
pub const RUNTIME_OPTIONS_TYPE: &str = "runtimeoptions.v1.Options";
const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// The profile named by a Create request's options, if any. Options of any
/// other type (e.g. `containerd.runc.v1.Options`) or an empty type_url mean
/// "no profile".
pub fn profile_from_options(type_url: &str, value: &[u8]) -> Result<Option<String>, PolicyError> {
    let name = type_url.strip_prefix(TYPE_URL_PREFIX).unwrap_or(type_url);
    if name != RUNTIME_OPTIONS_TYPE {
        if !type_url.is_empty() {
            tracing::debug!(type_url, "runtime options of another type, no profile");
        }
        return Ok(None);
    }
    let msg = RuntimeOptions::decode(value).map_err(|e| PolicyError::Options {
        origin: RUNTIME_OPTIONS_TYPE.to_string(),
        problem: OptionsProblem::Decode(e),
    })?;
    let (origin, text) = if !msg.config_body.is_empty() {
        let text = String::from_utf8(msg.config_body).map_err(|_| PolicyError::Options {
            origin: "config_body".into(),
            problem: OptionsProblem::NotUtf8,
        })?;
        ("config_body".to_string(), text)
    } else if !msg.config_path.is_empty() {
        let path = Path::new(&msg.config_path);
        let text = crate::read::small_text_file(path, crate::read::MAX_FILE_BYTES)?;
        (format!("config_path {}", path.display()), text)
    } else {
        return Ok(None);
    };
    let opts: OptionsFile = toml::from_str(&text).map_err(|e| PolicyError::Options {
        origin: origin.clone(),
        problem: OptionsProblem::Toml {
            location: toml_location(&text, &e),
            message: e.message().trim().to_string(),
        },
    })?;
    if let Some(name) = &opts.profile {
        profile_name(name).map_err(|_| PolicyError::Options {
            origin: origin.clone(),
            problem: OptionsProblem::ProfileName(name.clone()),
        })?;
    }
    tracing::debug!(%origin, profile = ?opts.profile, "runtime options read");
    Ok(opts.profile)
}

/// The TOML carried by the options.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionsFile {
    #[serde(default)]
    profile: Option<String>,
}

/// `runtimeoptions.v1.Options`.
#[derive(Debug, Default, PartialEq)]
struct RuntimeOptions {
    type_url: String,
    config_path: String,
    config_body: Vec<u8>,
}

const WIRE_VARINT: u64 = 0;
const WIRE_I64: u64 = 1;
const WIRE_LEN: u64 = 2;
const WIRE_SGROUP: u64 = 3;
const WIRE_EGROUP: u64 = 4;
const WIRE_I32: u64 = 5;

/// Malformed protobuf bytes; `at` is a byte offset into the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated varint at byte {at}")]
    TruncatedVarint { at: usize },
    #[error("varint overflows 64 bits at byte {at}")]
    VarintOverflow { at: usize },
    #[error("truncated {what}: {declared} bytes declared at byte {at}, {left} left")]
    Truncated {
        what: &'static str,
        declared: u64,
        at: usize,
        left: usize,
    },
    #[error("invalid field number {field} at byte {at}")]
    FieldNumber { field: u64, at: usize },
    #[error("truncated group {field}: no end tag")]
    UnterminatedGroup { field: u64 },
    #[error("group {field} closed by end tag {end}")]
    GroupMismatch { field: u64, end: u64 },
    #[error("unexpected end-group tag for field {field}")]
    StrayEndGroup { field: u64 },
    #[error("invalid wire type {wire} for field {field}")]
    WireType { wire: u64, field: u64 },
    #[error("field {field} ({name}) has wire type {wire}, expected 2 (length-delimited)")]
    NotLengthDelimited { field: u64, name: &'static str, wire: u64 },
    #[error("{name} is not valid UTF-8")]
    NotUtf8 { name: &'static str },
    #[error("group {field} nested more than {limit} deep")]
    TooDeep { field: u64, limit: usize },
}

/// How deep unknown groups may nest (protobuf's own default recursion
/// limit). Skipping recurses; without a bound a few MiB of start-group
/// tags would overflow the stack.
const MAX_GROUP_DEPTH: usize = 100;

/// A cursor over protobuf wire-format bytes.
struct Wire<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Wire<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(DecodeError::TruncatedVarint { at: self.pos });
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(DecodeError::VarintOverflow { at: self.pos - 1 });
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        // The tenth byte is at most 1, so it ended the loop above.
        Err(DecodeError::VarintOverflow { at: self.pos - 1 })
    }

    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let left = self.buf.len() - self.pos;
        if n > left as u64 {
            return Err(DecodeError::Truncated {
                what,
                declared: n,
                at: self.pos,
                left,
            });
        }
        let bytes = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(bytes)
    }

    /// Returns (field number, wire type).
    fn tag(&mut self) -> Result<(u64, u64), DecodeError> {
        let at = self.pos;
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(DecodeError::FieldNumber { field, at });
        }
        Ok((field, key & 7))
    }

    /// Skip a field's value. A group is skipped up to its matching end tag;
    /// `depth` is the number of groups around it.
    fn skip(&mut self, field: u64, wire: u64, depth: usize) -> Result<(), DecodeError> {
        match wire {
            WIRE_VARINT => self.varint().map(drop),
            WIRE_I64 => self.take(8, "fixed64").map(drop),
            WIRE_LEN => {
                let n = self.varint()?;
                self.take(n, "length-delimited field").map(drop)
            }
            WIRE_I32 => self.take(4, "fixed32").map(drop),
            WIRE_SGROUP if depth >= MAX_GROUP_DEPTH => Err(DecodeError::TooDeep {
                field,
                limit: MAX_GROUP_DEPTH,
            }),
            WIRE_SGROUP => loop {
                if self.pos >= self.buf.len() {
                    return Err(DecodeError::UnterminatedGroup { field });
                }
                let (f, w) = self.tag()?;
                if w == WIRE_EGROUP {
                    if f != field {
                        return Err(DecodeError::GroupMismatch { field, end: f });
                    }
                    return Ok(());
                }
                self.skip(f, w, depth + 1)?;
            },
            WIRE_EGROUP => Err(DecodeError::StrayEndGroup { field }),
            other => Err(DecodeError::WireType { wire: other, field }),
        }
    }
}

impl RuntimeOptions {
    fn decode(buf: &[u8]) -> Result<RuntimeOptions, DecodeError> {
        let mut w = Wire { buf, pos: 0 };
        let mut out = RuntimeOptions::default();
        while w.pos < buf.len() {
            let (field, wire) = w.tag()?;
            let name = match field {
                1 => "type_url",
                2 => "config_path",
                3 => "config_body",
                _ => {
                    w.skip(field, wire, 0)?;
                    continue;
                }
            };
            if wire != WIRE_LEN {
                return Err(DecodeError::NotLengthDelimited { field, name, wire });
            }
            let n = w.varint()?;
            let bytes = w.take(n, name)?;
            let text = || String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::NotUtf8 { name });
            match field {
                1 => out.type_url = text()?,
                2 => out.config_path = text()?,
                _ => out.config_body = bytes.to_vec(),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "options_props.rs"]
mod props;

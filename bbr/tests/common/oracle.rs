//! serde_json as the reference for extraction: what it says about a body's top-level `model`.
//!
//! Shared by the property tests and the fuzz target (`bbr/fuzz`), which includes this file by
//! path. serde_json's own choices, and how they are reconciled with ours:
//! - `Value` rejects lone surrogates, invalid UTF-8, control characters, BOMs and nesting past
//!   127 containers: the extractor under test is built with a limit of 127 to match.
//! - `Value` keeps the last of duplicate keys; a derived struct reports `duplicate field`.
//!   Both are asked, and a duplicated top-level `model` counts as a rejection.
//! - `Value` rejects numbers whose magnitude overflows `f64` (`1e400`), which RFC 8259 allows:
//!   such bodies are [`Verdict::Skip`]ped.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use switchyard_bbr::extract::{Extractor, JsonKind, Model};

/// Nesting limit at which the extractor and serde_json's `Value` agree exactly.
pub const SERDE_MAX_DEPTH: usize = 127;

/// serde_json's reading of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not one valid JSON object with at most one top-level `model`.
    Reject,
    /// Valid object without `model`.
    Missing,
    /// The decoded top-level `model` string.
    String(String),
    /// `model` holds another kind of value.
    NotString(JsonKind),
    /// serde_json and RFC 8259 legitimately differ on this body.
    Skip,
}

#[derive(Deserialize)]
struct DuplicateProbe<'a> {
    #[serde(borrow)]
    #[allow(dead_code)]
    model: Option<&'a RawValue>,
}

fn kind_of(value: &Value) -> JsonKind {
    match value {
        Value::Null => JsonKind::Null,
        Value::Bool(_) => JsonKind::Bool,
        Value::Number(_) => JsonKind::Number,
        Value::String(_) => JsonKind::String,
        Value::Array(_) => JsonKind::Array,
        Value::Object(_) => JsonKind::Object,
    }
}

/// What serde_json says about `body`.
pub fn serde_verdict(body: &[u8]) -> Verdict {
    let value = match serde_json::from_slice::<Value>(body) {
        Ok(value) => value,
        Err(e) if e.to_string().starts_with("number out of range") => return Verdict::Skip,
        Err(_) => return Verdict::Reject,
    };
    let Value::Object(map) = value else {
        return Verdict::Reject;
    };
    if let Err(e) = serde_json::from_slice::<DuplicateProbe<'_>>(body)
        && e.to_string().starts_with("duplicate field")
    {
        return Verdict::Reject;
    }
    match map.get("model") {
        None => Verdict::Missing,
        Some(Value::String(s)) => Verdict::String(s.clone()),
        Some(other) => Verdict::NotString(kind_of(other)),
    }
}

/// What the extractor under test says, in the same terms.
pub fn our_verdict(body: &[u8]) -> Verdict {
    let extractor = match Extractor::with_max_depth(SERDE_MAX_DEPTH) {
        Ok(extractor) => extractor,
        Err(e) => panic!("{e}"),
    };
    match extractor.extract(body) {
        Err(_) => Verdict::Reject,
        Ok(Model::Missing) => Verdict::Missing,
        Ok(Model::String(s)) => Verdict::String(s.into_owned()),
        Ok(Model::NotString(kind)) => Verdict::NotString(kind),
    }
}

/// Panics with both readings when they differ (and serde_json has no excuse to differ).
pub fn assert_agrees(body: &[u8]) {
    let theirs = serde_verdict(body);
    let ours = our_verdict(body);
    if theirs != Verdict::Skip && theirs != ours {
        panic!(
            "extractor and serde_json disagree\n  body:  {:?}\n  ours:  {ours:?}\n  serde: {theirs:?}\n  error: {:?}",
            String::from_utf8_lossy(body),
            Extractor::with_max_depth(SERDE_MAX_DEPTH)
                .map(|e| e.extract(body).err().map(|e| e.to_string())),
        );
    }
}

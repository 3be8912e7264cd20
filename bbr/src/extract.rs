//! Extraction of the top-level `"model"` string from a JSON request body.
//!
//! This is the pure core of BBR: no I/O, no allocation except the decoded result, no
//! recursion. [`Extractor::extract`] makes one pass over the body with a hand-written byte
//! scanner that validates the *whole* body against RFC 8259 (structure, strings, escapes,
//! numbers, literals, whitespace, UTF-8) and records the value of the top-level `model` key —
//! never a `model` key nested in `messages`, `tools` or anywhere else, and never the text
//! `"model"` inside a string.
//!
//! # Why validate everything
//!
//! BBR routes on what it reads, the model server acts on what *it* reads. Whenever two
//! parsers disagree about a body (a truncated document, a duplicated key, a lone surrogate), a
//! client can make the gateway route on one model while the backend serves another. So a body
//! is accepted only when it is a single, strictly valid JSON object, and the routing field is
//! unambiguous.
//!
//! # Decisions
//!
//! - **Keys are compared after unescaping**: `"mod\u0065l"` *is* `model` (RFC 8259 §8.3
//!   compares names by code units); Python's `json`, Go's `encoding/json` and serde all agree.
//! - **Values are decoded**: escapes, including surrogate pairs, are decoded into the result;
//!   a lone surrogate (`"\ud800"`) is rejected, as serde_json does. Go would substitute U+FFFD
//!   and Python would keep it, so accepting it would let two parsers see different names.
//! - **Duplicate top-level `model` → rejected.** Parsers disagree on which copy wins (serde's
//!   `Value` and Go keep the last, some streaming parsers the first), which is exactly a
//!   routing-smuggling vector. Other duplicated keys are the backend's business.
//! - **Byte order mark → rejected.** RFC 8259 §8.1 says senders MUST NOT add one and parsers
//!   MAY ignore it; serde_json and Go's `encoding/json` reject it, so accepting it here would
//!   route a body the upstream BBR (and most backends) refuse. The error tells the client to
//!   remove it.
//! - **Top level must be an object** (`[…]`, `"…"`, numbers, literals → rejected): an
//!   OpenAI-style request is always an object.
//! - **Nesting limit**: at most [`DEFAULT_MAX_DEPTH`] (128) nested objects/arrays, the
//!   top-level object included; configurable up to [`MAX_DEPTH_LIMIT`]. serde_json's `Value`
//!   accepts 127, so an `Extractor` built with 127 agrees with it exactly.
//! - **Numbers** follow the grammar only (`-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`); their
//!   magnitude is not checked (`1e400` is valid JSON; serde's `Value` alone rejects it).
//!
//! # Result borrowing
//!
//! A model name without escapes is returned as [`Cow::Borrowed`] from the body; only a name
//! containing escapes is decoded into a fresh `String`.

mod error;
mod scan;
mod strings;

use std::borrow::Cow;

pub use error::{ExtractError, ExtractErrorKind};

/// Default nesting limit: nested objects and arrays, the top-level object included.
pub const DEFAULT_MAX_DEPTH: usize = 128;

/// Highest nesting limit an [`Extractor`] supports (its depth stack is a fixed 1024-bit array,
/// so that scanning never allocates).
pub const MAX_DEPTH_LIMIT: usize = 1024;

/// The kind of a JSON value, used to describe what was found where a string was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// `{…}`
    Object,
    /// `[…]`
    Array,
    /// `"…"`
    String,
    /// `-1.5e3` and friends
    Number,
    /// `true` or `false`
    Bool,
    /// `null`
    Null,
}

impl JsonKind {
    /// The kind as a noun for messages, with its article ("an object", "a number").
    pub fn with_article(self) -> &'static str {
        match self {
            JsonKind::Object => "an object",
            JsonKind::Array => "an array",
            JsonKind::String => "a string",
            JsonKind::Number => "a number",
            JsonKind::Bool => "a boolean",
            JsonKind::Null => "null",
        }
    }
}

/// What a valid body holds under its top-level `model` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Model<'a> {
    /// The object has no top-level `model` key.
    Missing,
    /// The decoded string (possibly empty: the caller decides what an empty name means).
    String(Cow<'a, str>),
    /// `model` holds something other than a string.
    NotString(JsonKind),
}

/// Finds the top-level `model` of JSON bodies; cheap to copy and share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extractor {
    max_depth: usize,
}

impl Default for Extractor {
    fn default() -> Self {
        Extractor {
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// Returned by [`Extractor::with_max_depth`] for a limit outside `1..=MAX_DEPTH_LIMIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthOutOfRange(pub usize);

impl std::fmt::Display for DepthOutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "JSON nesting limit {} is out of range: use a value from 1 to {MAX_DEPTH_LIMIT}",
            self.0
        )
    }
}

impl std::error::Error for DepthOutOfRange {}

impl Extractor {
    /// An extractor that rejects bodies nested deeper than `max_depth` objects/arrays.
    pub fn with_max_depth(max_depth: usize) -> Result<Self, DepthOutOfRange> {
        if (1..=MAX_DEPTH_LIMIT).contains(&max_depth) {
            Ok(Extractor { max_depth })
        } else {
            Err(DepthOutOfRange(max_depth))
        }
    }

    /// The configured nesting limit.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Validates `body` as one JSON object and returns its top-level `model`.
    ///
    /// Errors carry the byte offset of the problem and a message saying what to fix.
    pub fn extract<'a>(&self, body: &'a [u8]) -> Result<Model<'a>, ExtractError> {
        scan::Scanner::new(body, self.max_depth).top_level_model()
    }
}

#[cfg(test)]
mod tests;

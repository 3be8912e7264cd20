//! Why a body was rejected, with the byte offset and a message that says what to fix.

use std::fmt;

use super::JsonKind;

/// A body that is not a single valid JSON object with an unambiguous top-level `model`.
///
/// This is a verdict on the client's input (it becomes a 400), not a fault of the server, so it
/// is kept apart from the crate's [`Error`](crate::Error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractError {
    kind: ExtractErrorKind,
    offset: usize,
}

/// The class of an [`ExtractError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractErrorKind {
    /// Nothing but (possibly) whitespace.
    Empty,
    /// The body starts with a UTF-8 byte order mark.
    ByteOrderMark,
    /// A valid JSON document whose top level is not an object.
    NotAnObject(JsonKind),
    /// A byte that the grammar does not allow here.
    UnexpectedByte {
        /// What the grammar allows at this point, as a phrase ("':' after an object key").
        expected: &'static str,
        /// The byte found instead.
        found: u8,
    },
    /// The body ends inside a value.
    UnexpectedEnd {
        /// What the grammar needed next.
        expected: &'static str,
    },
    /// A string holds bytes that are not UTF-8.
    InvalidUtf8,
    /// A string holds a raw control character (U+0000–U+001F), which must be escaped.
    ControlCharacter(u8),
    /// `\` followed by something other than `" \ / b f n r t u`.
    InvalidEscape,
    /// `\u` not followed by four hex digits.
    InvalidUnicodeEscape,
    /// A `\u` escape of a UTF-16 surrogate without its partner.
    LoneSurrogate,
    /// More nested objects/arrays than the limit.
    TooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// Something other than whitespace after the top-level object.
    TrailingCharacters,
    /// The top-level `model` key appears more than once.
    DuplicateModel,
}

impl ExtractError {
    pub(crate) fn new(kind: ExtractErrorKind, offset: usize) -> Self {
        ExtractError { kind, offset }
    }

    /// The class of the problem.
    pub fn kind(&self) -> ExtractErrorKind {
        self.kind
    }

    /// Byte offset in the body where the problem was found.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// A stable short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self.kind {
            ExtractErrorKind::Empty => "empty",
            ExtractErrorKind::ByteOrderMark => "byte_order_mark",
            ExtractErrorKind::NotAnObject(_) => "not_an_object",
            ExtractErrorKind::UnexpectedByte { .. } | ExtractErrorKind::UnexpectedEnd { .. } => {
                "syntax"
            }
            ExtractErrorKind::InvalidUtf8 => "invalid_utf8",
            ExtractErrorKind::ControlCharacter(_)
            | ExtractErrorKind::InvalidEscape
            | ExtractErrorKind::InvalidUnicodeEscape
            | ExtractErrorKind::LoneSurrogate => "invalid_string",
            ExtractErrorKind::TooDeep { .. } => "too_deep",
            ExtractErrorKind::TrailingCharacters => "trailing_characters",
            ExtractErrorKind::DuplicateModel => "duplicate_model",
        }
    }
}

/// Shows a byte the way a person can find it in their payload.
struct ShowByte(u8);

impl fmt::Display for ShowByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            b @ 0x21..=0x7e => write!(f, "'{}'", char::from(b)),
            b' ' => f.write_str("a space"),
            b => write!(f, "byte 0x{b:02x}"),
        }
    }
}

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match self.kind {
            ExtractErrorKind::Empty => f.write_str(
                "request body is empty: send a JSON object such as {\"model\":\"<name>\",…}",
            ),
            ExtractErrorKind::ByteOrderMark => f.write_str(
                "request body starts with a UTF-8 byte order mark: remove it \
                 (RFC 8259 §8.1: JSON senders must not add one)",
            ),
            ExtractErrorKind::NotAnObject(kind) => write!(
                f,
                "request body is {}, not a JSON object: send an object such as \
                 {{\"model\":\"<name>\",…}}",
                match kind {
                    JsonKind::Null => "JSON null",
                    other => other.with_article(),
                }
            ),
            ExtractErrorKind::UnexpectedByte { expected, found } => write!(
                f,
                "request body is not valid JSON: expected {expected} at byte {at}, found {}",
                ShowByte(found)
            ),
            ExtractErrorKind::UnexpectedEnd { expected } => write!(
                f,
                "request body is not valid JSON: it ends at byte {at} where {expected} was \
                 expected (truncated body?)"
            ),
            ExtractErrorKind::InvalidUtf8 => write!(
                f,
                "request body is not valid UTF-8 at byte {at}: encode the JSON text as UTF-8"
            ),
            ExtractErrorKind::ControlCharacter(b) => write!(
                f,
                "request body is not valid JSON: raw control character 0x{b:02x} inside a \
                 string at byte {at}; escape it (for example \\n or \\u{b:04x})"
            ),
            ExtractErrorKind::InvalidEscape => write!(
                f,
                "request body is not valid JSON: invalid escape at byte {at}; only \\\" \\\\ \\/ \
                 \\b \\f \\n \\r \\t and \\uXXXX are allowed"
            ),
            ExtractErrorKind::InvalidUnicodeEscape => write!(
                f,
                "request body is not valid JSON: \\u at byte {at} must be followed by four hex \
                 digits"
            ),
            ExtractErrorKind::LoneSurrogate => write!(
                f,
                "request body is not valid JSON: the \\u escape at byte {at} is half of a UTF-16 \
                 surrogate pair without its other half"
            ),
            ExtractErrorKind::TooDeep { limit } => write!(
                f,
                "request body nests objects/arrays more than {limit} deep (at byte {at}); \
                 flatten it"
            ),
            ExtractErrorKind::TrailingCharacters => write!(
                f,
                "request body is not valid JSON: unexpected data after the top-level object at \
                 byte {at}; send exactly one JSON object"
            ),
            ExtractErrorKind::DuplicateModel => write!(
                f,
                "request body has more than one top-level \"model\" field (again at byte {at}); \
                 send it exactly once"
            ),
        }
    }
}

impl std::error::Error for ExtractError {}

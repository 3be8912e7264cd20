//! The single-pass scanner: JSON structure with an explicit depth stack, no recursion.
//!
//! Containers are tracked in a fixed bit-stack (one bit per level: array or object), so a
//! hostile body nested a million levels deep costs neither stack frames nor heap; it is
//! rejected when it passes the configured limit.

use std::borrow::Cow;

use super::error::{ExtractError, ExtractErrorKind};
use super::strings::{StrSpan, Window, scan_string, unescape};
use super::{JsonKind, MAX_DEPTH_LIMIT, Model};

const BOM: &[u8] = b"\xEF\xBB\xBF";
const MODEL_KEY: &[u8] = b"model";

/// A cursor over one body.
pub(super) struct Scanner<'a> {
    body: &'a [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
    /// Bit `i` is set when the container at depth `i + 1` is an array.
    kinds: [u64; MAX_DEPTH_LIMIT / 64],
    /// The string scanner's classified window.
    window: Window,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl<'a> Scanner<'a> {
    pub(super) fn new(body: &'a [u8], max_depth: usize) -> Self {
        Scanner {
            body,
            pos: 0,
            depth: 0,
            max_depth: max_depth.min(MAX_DEPTH_LIMIT),
            kinds: [0; MAX_DEPTH_LIMIT / 64],
            window: Window::new(),
        }
    }

    // === errors ===

    fn unexpected(&self, expected: &'static str) -> ExtractError {
        match self.body.get(self.pos) {
            Some(&found) => ExtractError::new(
                ExtractErrorKind::UnexpectedByte { expected, found },
                self.pos,
            ),
            None => ExtractError::new(ExtractErrorKind::UnexpectedEnd { expected }, self.pos),
        }
    }

    // === primitives ===

    fn peek(&self) -> Option<u8> {
        self.body.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(&b) = self.body.get(self.pos) {
            if !is_ws(b) {
                break;
            }
            self.pos += 1;
        }
    }

    /// Consumes `byte` (after optional whitespace) or fails with `expected`.
    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), ExtractError> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn push(&mut self, is_array: bool) -> Result<(), ExtractError> {
        if self.depth >= self.max_depth {
            return Err(ExtractError::new(
                ExtractErrorKind::TooDeep {
                    limit: self.max_depth,
                },
                self.pos,
            ));
        }
        let (word, bit) = (self.depth / 64, self.depth % 64);
        if let Some(w) = self.kinds.get_mut(word) {
            if is_array {
                *w |= 1 << bit;
            } else {
                *w &= !(1 << bit);
            }
        }
        self.depth += 1;
        Ok(())
    }

    fn top_is_array(&self) -> bool {
        let level = self.depth.saturating_sub(1);
        self.kinds
            .get(level / 64)
            .is_some_and(|w| w & (1 << (level % 64)) != 0)
    }

    fn string(&mut self) -> Result<StrSpan, ExtractError> {
        let (span, next) = scan_string(&mut self.window, self.body, self.pos)?;
        self.pos = next;
        Ok(span)
    }

    fn literal(&mut self, text: &'static [u8], expected: &'static str) -> Result<(), ExtractError> {
        for &want in text {
            if self.peek() != Some(want) {
                return Err(self.unexpected(expected));
            }
            self.pos += 1;
        }
        Ok(())
    }

    fn digits(&mut self) -> Result<(), ExtractError> {
        if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return Err(self.unexpected("a digit"));
        }
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        Ok(())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; the caller checks what follows.
    fn number(&mut self) -> Result<(), ExtractError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits()?,
            _ => return Err(self.unexpected("a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.digits()?;
        }
        Ok(())
    }

    /// Does the key in `span` spell `model` once unescaped?
    fn is_model_key(&self, span: StrSpan) -> Result<bool, ExtractError> {
        let raw = self.body.get(span.start..span.end).unwrap_or_default();
        if !span.has_escapes {
            return Ok(raw == MODEL_KEY);
        }
        let mut matched = 0usize;
        let mut equal = true;
        unescape(raw, span.start, |piece| {
            let end = matched + piece.len();
            equal = equal && MODEL_KEY.get(matched..end) == Some(piece);
            matched = end;
        })?;
        Ok(equal && matched == MODEL_KEY.len())
    }

    /// The text of a string value: borrowed without escapes, decoded otherwise.
    fn text(&self, span: StrSpan) -> Result<Cow<'a, str>, ExtractError> {
        let raw = self.body.get(span.start..span.end).unwrap_or_default();
        let invalid = |e: std::str::Utf8Error| {
            ExtractError::new(ExtractErrorKind::InvalidUtf8, span.start + e.valid_up_to())
        };
        if !span.has_escapes {
            return std::str::from_utf8(raw).map(Cow::Borrowed).map_err(invalid);
        }
        let mut decoded = Vec::with_capacity(raw.len());
        unescape(raw, span.start, |piece| decoded.extend_from_slice(piece))?;
        String::from_utf8(decoded)
            .map(Cow::Owned)
            .map_err(|e| invalid(e.utf8_error()))
    }

    // === values ===

    /// Skips one complete value starting at the next non-whitespace byte, validating it.
    /// Nested containers are walked with the depth stack, never with recursion.
    fn skip_value(&mut self) -> Result<JsonKind, ExtractError> {
        let base = self.depth;
        let mut first_kind = None;
        'value: loop {
            self.skip_ws();
            let kind = match self.peek() {
                Some(b'{') => {
                    self.push(false)?;
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        self.depth -= 1;
                    } else {
                        self.object_key()?;
                        first_kind.get_or_insert(JsonKind::Object);
                        continue 'value;
                    }
                    JsonKind::Object
                }
                Some(b'[') => {
                    self.push(true)?;
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        self.depth -= 1;
                    } else {
                        first_kind.get_or_insert(JsonKind::Array);
                        continue 'value;
                    }
                    JsonKind::Array
                }
                Some(b'"') => {
                    self.string()?;
                    JsonKind::String
                }
                Some(b't') => {
                    self.literal(b"true", "the literal true")?;
                    JsonKind::Bool
                }
                Some(b'f') => {
                    self.literal(b"false", "the literal false")?;
                    JsonKind::Bool
                }
                Some(b'n') => {
                    self.literal(b"null", "the literal null")?;
                    JsonKind::Null
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                    JsonKind::Number
                }
                _ => return Err(self.unexpected("a JSON value")),
            };
            let first_kind = *first_kind.get_or_insert(kind);
            // After a value: close containers or move on to the next element.
            loop {
                if self.depth == base {
                    return Ok(first_kind);
                }
                self.skip_ws();
                let in_array = self.top_is_array();
                match (self.peek(), in_array) {
                    (Some(b','), false) => {
                        self.pos += 1;
                        self.skip_ws();
                        self.object_key()?;
                        continue 'value;
                    }
                    (Some(b','), true) => {
                        self.pos += 1;
                        continue 'value;
                    }
                    (Some(b'}'), false) | (Some(b']'), true) => {
                        self.pos += 1;
                        self.depth -= 1;
                    }
                    (_, false) => return Err(self.unexpected("',' or '}' in an object")),
                    (_, true) => return Err(self.unexpected("',' or ']' in an array")),
                }
            }
        }
    }

    /// A key and its colon inside a nested object (the key's text is irrelevant there).
    fn object_key(&mut self) -> Result<StrSpan, ExtractError> {
        if self.peek() != Some(b'"') {
            return Err(self.unexpected("a '\"'-quoted object key"));
        }
        let span = self.string()?;
        self.expect(b':', "':' after an object key")?;
        Ok(span)
    }

    // === the document ===

    /// Validates the whole body as one JSON object and returns its top-level `model`.
    pub(super) fn top_level_model(mut self) -> Result<Model<'a>, ExtractError> {
        if self.body.starts_with(BOM) {
            return Err(ExtractError::new(ExtractErrorKind::ByteOrderMark, 0));
        }
        self.skip_ws();
        match self.peek() {
            None => return Err(ExtractError::new(ExtractErrorKind::Empty, 0)),
            Some(b'{') => {}
            Some(_) => {
                // Validate first so that a malformed body gets the precise syntax error.
                let kind = self.skip_value()?;
                self.skip_ws();
                return Err(match self.peek() {
                    None => ExtractError::new(ExtractErrorKind::NotAnObject(kind), 0),
                    Some(_) => ExtractError::new(ExtractErrorKind::TrailingCharacters, self.pos),
                });
            }
        }
        self.push(false)?;
        self.pos += 1;
        self.skip_ws();
        let mut model = None;
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                let key_at = self.pos;
                let key = self.object_key()?;
                self.skip_ws();
                if self.is_model_key(key)? {
                    if model.is_some() {
                        return Err(ExtractError::new(ExtractErrorKind::DuplicateModel, key_at));
                    }
                    model = Some(if self.peek() == Some(b'"') {
                        let span = self.string()?;
                        Model::String(self.text(span)?)
                    } else {
                        Model::NotString(self.skip_value()?)
                    });
                } else {
                    self.skip_value()?;
                }
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_ws();
                    }
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.unexpected("',' or '}' in an object")),
                }
            }
        }
        self.skip_ws();
        if self.pos < self.body.len() {
            return Err(ExtractError::new(
                ExtractErrorKind::TrailingCharacters,
                self.pos,
            ));
        }
        Ok(model.unwrap_or(Model::Missing))
    }
}

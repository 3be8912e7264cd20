//! JSON strings: the fast scan to the closing quote, escape validation, and unescaping.
//!
//! The scan is the hot loop of extraction (chat bodies are almost all string content). It
//! looks at 32 bytes at a time for the only bytes that end a plain run — `"`, `\` and control
//! characters — with a branch-free fold that LLVM vectorises (SSE2 on x86-64, NEON on
//! aarch64) without `unsafe`. Non-ASCII bytes do not stop the run: they are OR-ed into an
//! accumulator, and only a string that saw one is UTF-8-validated (by `std`) at its end.
//! That is sound because an ASCII byte never occurs inside a UTF-8 multi-byte sequence, so
//! validating the raw bytes between the quotes validates the string's text.

use super::error::{ExtractError, ExtractErrorKind};

/// Bytes per fast-path step; 32 lets the fold use two 16-byte vectors per step.
const LANES: usize = 32;

/// Where a scanned string's contents lie in the body (quotes excluded).
#[derive(Debug, Clone, Copy)]
pub(super) struct StrSpan {
    pub start: usize,
    pub end: usize,
    pub has_escapes: bool,
}

#[inline(always)]
fn is_special(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// Returns the index of the first `"`, `\` or control byte in `bytes` (or `bytes.len()`),
/// and the OR of all bytes before it.
#[inline]
fn find_special(bytes: &[u8]) -> (usize, u8) {
    let mut seen = 0u8;
    let mut offset = 0;
    let mut chunks = bytes.chunks_exact(LANES);
    for chunk in &mut chunks {
        let mut special = 0u8;
        let mut or = 0u8;
        for &b in chunk {
            special |= u8::from(b == b'"') | u8::from(b == b'\\') | u8::from(b < 0x20);
            or |= b;
        }
        if special != 0 {
            break;
        }
        seen |= or;
        offset += LANES;
    }
    // At most LANES - 1 bytes: the rest of the chunk that stopped the loop, or the tail.
    let rest = bytes.get(offset..).unwrap_or_default();
    for (i, &b) in rest.iter().enumerate() {
        if is_special(b) {
            return (offset + i, seen);
        }
        seen |= b;
    }
    (bytes.len(), seen)
}

/// Scans the string whose opening quote is at `quote`; returns its span and the position just
/// after the closing quote. Validates escapes, surrogate pairing, control characters and UTF-8.
pub(super) fn scan_string(body: &[u8], quote: usize) -> Result<(StrSpan, usize), ExtractError> {
    let start = quote + 1;
    let mut pos = start;
    let mut seen = 0u8;
    let mut has_escapes = false;
    loop {
        let rest = body.get(pos..).unwrap_or_default();
        let (skip, or) = find_special(rest);
        seen |= or;
        pos += skip;
        match body.get(pos) {
            None => {
                return Err(ExtractError::new(
                    ExtractErrorKind::UnexpectedEnd {
                        expected: "the closing '\"' of a string",
                    },
                    pos,
                ));
            }
            Some(b'"') => break,
            Some(b'\\') => {
                has_escapes = true;
                pos = scan_escape(body, pos)?;
            }
            Some(&b) => {
                return Err(ExtractError::new(
                    ExtractErrorKind::ControlCharacter(b),
                    pos,
                ));
            }
        }
    }
    if seen >= 0x80 {
        let raw = body.get(start..pos).unwrap_or_default();
        if let Err(e) = std::str::from_utf8(raw) {
            return Err(ExtractError::new(
                ExtractErrorKind::InvalidUtf8,
                start + e.valid_up_to(),
            ));
        }
    }
    let span = StrSpan {
        start,
        end: pos,
        has_escapes,
    };
    Ok((span, pos + 1))
}

/// Reads the four hex digits after a `\u` at `at` (the backslash).
fn hex4(body: &[u8], at: usize) -> Result<u16, ExtractError> {
    let digits = body.get(at + 2..at + 6).ok_or(ExtractError::new(
        ExtractErrorKind::UnexpectedEnd {
            expected: "four hex digits after \\u",
        },
        body.len(),
    ))?;
    let mut value = 0u16;
    for &d in digits {
        let nibble = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => {
                return Err(ExtractError::new(
                    ExtractErrorKind::InvalidUnicodeEscape,
                    at,
                ));
            }
        };
        value = (value << 4) | u16::from(nibble);
    }
    Ok(value)
}

fn is_high_surrogate(u: u16) -> bool {
    (0xD800..0xDC00).contains(&u)
}

fn is_low_surrogate(u: u16) -> bool {
    (0xDC00..0xE000).contains(&u)
}

/// Validates the escape whose backslash is at `at`; returns the position after it.
fn scan_escape(body: &[u8], at: usize) -> Result<usize, ExtractError> {
    match body.get(at + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 2),
        Some(b'u') => {
            let unit = hex4(body, at)?;
            if is_high_surrogate(unit) {
                let paired = body.get(at + 6) == Some(&b'\\')
                    && body.get(at + 7) == Some(&b'u')
                    && is_low_surrogate(hex4(body, at + 6)?);
                if paired {
                    Ok(at + 12)
                } else {
                    Err(ExtractError::new(ExtractErrorKind::LoneSurrogate, at))
                }
            } else if is_low_surrogate(unit) {
                Err(ExtractError::new(ExtractErrorKind::LoneSurrogate, at))
            } else {
                Ok(at + 6)
            }
        }
        Some(_) => Err(ExtractError::new(ExtractErrorKind::InvalidEscape, at)),
        None => Err(ExtractError::new(
            ExtractErrorKind::UnexpectedEnd {
                expected: "an escape character after '\\'",
            },
            at + 1,
        )),
    }
}

/// Decodes the contents of a string that [`scan_string`] accepted, handing the UTF-8 text to
/// `emit` piece by piece (plain runs borrowed, each escape decoded into a small buffer).
///
/// `offset` is the span's start in the body, for error positions. Every error here is
/// unreachable for input `scan_string` accepted; they exist so that a bug cannot panic.
pub(super) fn unescape(
    raw: &[u8],
    offset: usize,
    mut emit: impl FnMut(&[u8]),
) -> Result<(), ExtractError> {
    let mut pos = 0;
    while pos < raw.len() {
        let run_end = raw
            .get(pos..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\\'))
            .map_or(raw.len(), |i| pos + i);
        emit(raw.get(pos..run_end).unwrap_or_default());
        if run_end == raw.len() {
            break;
        }
        let esc = run_end;
        let simple = match raw.get(esc + 1) {
            Some(b'"') => Some(b'"'),
            Some(b'\\') => Some(b'\\'),
            Some(b'/') => Some(b'/'),
            Some(b'b') => Some(0x08),
            Some(b'f') => Some(0x0c),
            Some(b'n') => Some(b'\n'),
            Some(b'r') => Some(b'\r'),
            Some(b't') => Some(b'\t'),
            _ => None,
        };
        if let Some(byte) = simple {
            emit(&[byte]);
            pos = esc + 2;
            continue;
        }
        let bad = || ExtractError::new(ExtractErrorKind::InvalidEscape, offset + esc);
        let unit = hex4(raw, esc).map_err(|_| bad())?;
        let (code, next) = if is_high_surrogate(unit) {
            let low = hex4(raw, esc + 6).map_err(|_| bad())?;
            let code = 0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
            (code, esc + 12)
        } else {
            (u32::from(unit), esc + 6)
        };
        let ch = char::from_u32(code).ok_or_else(bad)?;
        let mut buf = [0u8; 4];
        emit(ch.encode_utf8(&mut buf).as_bytes());
        pos = next;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_special_stops_at_first_special_in_every_lane_position() {
        for len in 0..100 {
            for at in 0..len {
                for special in [b'"', b'\\', 0x00, 0x1f] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    if at + 1 < len {
                        bytes[at + 1] = b'"';
                    }
                    assert_eq!(find_special(&bytes).0, at, "len {len} at {at}");
                }
            }
            assert_eq!(find_special(&vec![b'a'; len]).0, len);
        }
    }

    #[test]
    fn find_special_reports_high_bytes_only_before_the_stop() {
        let mut bytes = vec![b'a'; 70];
        bytes[65] = 0xc3;
        assert_eq!(find_special(&bytes), (70, b'a' | 0xc3));
        bytes[40] = b'"';
        assert_eq!(find_special(&bytes), (40, b'a'));
    }

    #[test]
    fn unescape_decodes_every_escape_and_pairs() {
        let raw = br#"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00z"#;
        let mut out = Vec::new();
        unescape(raw, 0, |piece| out.extend_from_slice(piece)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{1F600}z"
        );
    }
}

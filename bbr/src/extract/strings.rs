//! JSON strings: the fast scan to the closing quote, escape and UTF-8 validation, unescaping.
//!
//! The scan is the hot loop of extraction: chat bodies are almost all string content. Only four
//! kinds of byte interrupt a plain run: `"`, `\`, control characters and non-ASCII bytes.
//! [`window`] classifies 64 bytes at a time into a bitmask of them, and the window is kept
//! between calls, so the next key or value in the same window is found without classifying
//! again.
//!
//! Inside a window the scan walks the mask itself rather than a position: a simple escape
//! (`\n`, `\"`, …, an escape every ~80 bytes in prose) clears its two bits and moves on to the
//! next set bit, without recomputing a position or re-checking the window. Only the closing
//! quote and the rare cases (`\u`, non-ASCII, errors) leave that loop.
//!
//! Non-ASCII bytes are validated where they occur: short runs (accents, punctuation) by hand,
//! one code point at a time, long runs such as CJK text by `std::str::from_utf8`. Checking
//! runs separately is sound because an ASCII byte never occurs inside a UTF-8 multi-byte
//! sequence: the body is valid UTF-8 exactly when every such run is.

mod window;

use super::error::{ExtractError, ExtractErrorKind};
use window::WINDOW;
pub(super) use window::Window;

/// Where a scanned string's contents lie in the body (quotes excluded).
#[derive(Debug, Clone, Copy)]
pub(super) struct StrSpan {
    pub start: usize,
    pub end: usize,
    pub has_escapes: bool,
}

/// Scans the string whose opening quote is at `quote`; returns its span and the position just
/// after the closing quote. Validates escapes, surrogate pairing, control characters and UTF-8.
///
/// The window is worked on in locals (its start and mask) and written back once at the end,
/// so that the loop keeps them in registers.
#[inline]
pub(super) fn scan_string(
    window: &mut Window,
    body: &[u8],
    quote: usize,
) -> Result<(StrSpan, usize), ExtractError> {
    let start = quote + 1;
    let lane = window.cover(body, start);
    let (mut base, mut mask) = (window.start, window.mask);
    let mut ahead = mask & (!0u64 << lane);
    let mut has_escapes = false;
    let end = loop {
        while ahead != 0 {
            let lowest = ahead & ahead.wrapping_neg();
            let at = base + lowest.trailing_zeros() as usize;
            let byte = body.get(at).copied();
            let resume = if byte == Some(b'\\')
                && SIMPLE_ESCAPE[usize::from(body.get(at + 1).copied().unwrap_or(0))]
            {
                has_escapes = true;
                // The backslash and the byte it escapes, which may be special itself
                // (`\"`, `\\`); off the top when the backslash is the window's last byte.
                ahead &= !(lowest | (lowest << 1));
                if at + 2 <= base + WINDOW {
                    continue;
                }
                at + 2
            } else if byte == Some(b'"') {
                break;
            } else {
                scan_rare(body, at, &mut has_escapes)?
            };
            if resume < base + WINDOW {
                ahead = mask & (!0u64 << (resume - base));
            } else {
                (base, mask) = (resume, window::classify_at(body, resume));
                ahead = mask;
            }
        }
        if ahead != 0 {
            // Left the inner loop at the closing quote.
            break base + ahead.trailing_zeros() as usize;
        }
        let next = base + WINDOW;
        if next >= body.len() {
            return Err(ExtractError::new(
                ExtractErrorKind::UnexpectedEnd {
                    expected: "the closing '\"' of a string",
                },
                body.len(),
            ));
        }
        (base, mask) = (next, window::classify_at(body, next));
        ahead = mask;
    };
    window.keep(base, mask);
    let span = StrSpan {
        start,
        end,
        has_escapes,
    };
    Ok((span, end + 1))
}

/// A special byte inside a string other than a closing quote or a simple escape: a `\u`
/// escape, a non-ASCII run, or an error. Returns the position after it.
#[cold]
fn scan_rare(body: &[u8], at: usize, has_escapes: &mut bool) -> Result<usize, ExtractError> {
    match body.get(at) {
        Some(b'\\') => {
            *has_escapes = true;
            scan_escape(body, at)
        }
        Some(&b) if b >= 0x80 => scan_non_ascii(body, at),
        Some(&b) => Err(ExtractError::new(ExtractErrorKind::ControlCharacter(b), at)),
        None => Err(ExtractError::new(
            ExtractErrorKind::UnexpectedEnd {
                expected: "the closing '\"' of a string",
            },
            at,
        )),
    }
}

/// The length of the UTF-8 sequence at `at` if it is one valid code point (RFC 3629's
/// table: no overlongs, no surrogates, nothing past U+10FFFF).
#[inline]
fn utf8_char_len(body: &[u8], at: usize) -> Option<usize> {
    let byte = |i: usize| body.get(at + i).copied().unwrap_or(0);
    let cont = |i: usize| (0x80..=0xBF).contains(&byte(i));
    let ok = match byte(0) {
        0xC2..=0xDF => return cont(1).then_some(2),
        0xE0 => (0xA0..=0xBF).contains(&byte(1)),
        0xE1..=0xEC | 0xEE..=0xEF => cont(1),
        0xED => (0x80..=0x9F).contains(&byte(1)),
        0xF0 => return ((0x90..=0xBF).contains(&byte(1)) && cont(2) && cont(3)).then_some(4),
        0xF1..=0xF3 => return (cont(1) && cont(2) && cont(3)).then_some(4),
        0xF4 => return ((0x80..=0x8F).contains(&byte(1)) && cont(2) && cont(3)).then_some(4),
        _ => false,
    };
    (ok && cont(2)).then_some(3)
}

/// Code points validated by hand before a run is handed to `std::str::from_utf8`.
const SHORT_RUN_CHARS: usize = 8;

/// Validates the run of non-ASCII bytes starting at `at`; returns the position after it.
fn scan_non_ascii(body: &[u8], at: usize) -> Result<usize, ExtractError> {
    let invalid = |pos| ExtractError::new(ExtractErrorKind::InvalidUtf8, pos);
    let mut pos = at;
    // Accents and punctuation in prose come one or two characters at a time.
    for _ in 0..SHORT_RUN_CHARS {
        if body.get(pos).is_none_or(|&b| b < 0x80) {
            return Ok(pos);
        }
        pos += utf8_char_len(body, pos).ok_or_else(|| invalid(pos))?;
    }
    let rest = body.get(pos..).unwrap_or_default();
    let len = rest.iter().position(|&b| b < 0x80).unwrap_or(rest.len());
    let run = rest.get(..len).unwrap_or_default();
    match std::str::from_utf8(run) {
        Ok(_) => Ok(pos + len),
        Err(e) => Err(invalid(pos + e.valid_up_to())),
    }
}

/// The characters that may follow `\` on their own (`\u` needs four hex digits more).
static SIMPLE_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let allowed = *b"\"\\/bfnrt";
    let mut i = 0;
    while i < allowed.len() {
        table[allowed[i] as usize] = true;
        i += 1;
    }
    table
};

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
mod tests;

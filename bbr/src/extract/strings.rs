//! JSON strings: the fast scan to the closing quote, escape and UTF-8 validation, unescaping.
//!
//! The scan is the hot loop of extraction: chat bodies are almost all string content. Only four
//! kinds of byte interrupt a plain run: `"`, `\`, control characters and non-ASCII bytes. The
//! scan classifies a 64-byte window at a time into a bitmask (bit `i` set when byte `i` is
//! special), so the first special byte is one `trailing_zeros` away, and the window is kept
//! between calls: the next search after an escape or a short string masks off the lanes already
//! passed instead of classifying again.
//!
//! The workspace forbids `unsafe`, and `std::arch` intrinsics are unsafe to call outside a
//! `#[target_feature]` function even when the feature is on for the whole target. On x86-64
//! the classification uses SSE2 (part of the x86-64 baseline) through `safe_arch`, which
//! exposes intrinsics as safe functions gated by `cfg(target_feature)`: four compares and a
//! `pmovmskb` per 16 bytes. Elsewhere an element-wise map that LLVM vectorises produces one
//! `0x00`/`0x01` lane per byte, and a multiply gathers each eight lanes into eight bits.
//!
//! Non-ASCII bytes are validated where they occur: a run of bytes ≥ 0x80 is handed to
//! `std::str::from_utf8`, which is exact (overlongs, surrogates, range) and fast on long runs
//! such as CJK text. Checking runs separately is sound because an ASCII byte never occurs
//! inside a UTF-8 multi-byte sequence: the body is valid UTF-8 exactly when every such run is.

use super::error::{ExtractError, ExtractErrorKind};

/// Bytes classified at once: eight words, one vectorised map.
const WINDOW: usize = 64;

/// Where a scanned string's contents lie in the body (quotes excluded).
#[derive(Debug, Clone, Copy)]
pub(super) struct StrSpan {
    pub start: usize,
    pub end: usize,
    pub has_escapes: bool,
}

/// `1` for a byte that interrupts a plain run, `0` otherwise. Branch-free so that the map
/// over a window vectorises: `b - 0x20 >= 0x60` (wrapping) is "control or non-ASCII".
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn special_lane(b: u8) -> u8 {
    u8::from(b == b'"') | u8::from(b == b'\\') | u8::from(b.wrapping_sub(0x20) >= 0x60)
}

/// Gathers the low bit of each byte of `w` into an 8-bit mask (byte `i` → bit `i`).
///
/// With bytes `b_i ∈ {0, 1}`, the product's term `b_i · 2^(8i) · 2^(7j+7)` lands on bit
/// `56 + i` exactly when `i + j = 7`; every other term lands below bit 56 or beyond bit 63,
/// and no two terms share a bit, so there are no carries into the top byte.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn gather_lanes(w: u64) -> u64 {
    w.wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// Classifies 64 bytes into a bitmask: bit `i` set when byte `i` is special.
///
/// x86-64 always has SSE2; `safe_arch` exposes its intrinsics as safe functions gated by
/// `cfg(target_feature)`, so this is four compares-and-`pmovmskb` with no `unsafe` here.
#[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
#[inline(always)]
fn classify(window: &[u8; WINDOW]) -> u64 {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, cmp_lt_mask_i8_m128i, load_unaligned_m128i,
        move_mask_i8_m128i, set_splat_i8_m128i,
    };
    let quote = set_splat_i8_m128i(b'"' as i8);
    let backslash = set_splat_i8_m128i(b'\\' as i8);
    // A signed compare: control bytes (0x00–0x1F) and non-ASCII bytes (0x80–0xFF, negative
    // as i8) are both below 0x20.
    let space = set_splat_i8_m128i(0x20);
    let mut mask = 0u64;
    for (i, chunk) in window.chunks_exact(16).enumerate() {
        let bytes = load_unaligned_m128i(chunk.try_into().unwrap_or(&[b' '; 16]));
        let special = bitor_m128i(
            bitor_m128i(
                cmp_eq_mask_i8_m128i(bytes, quote),
                cmp_eq_mask_i8_m128i(bytes, backslash),
            ),
            cmp_lt_mask_i8_m128i(bytes, space),
        );
        // `pmovmskb` sets only the low 16 bits.
        let bits = u64::from(move_mask_i8_m128i(special) as u16);
        mask |= bits << (16 * i);
    }
    mask
}

/// Classifies 64 bytes into a bitmask: bit `i` set when byte `i` is special.
///
/// The same with AVX2 (two 32-byte halves), when the build targets it (for example
/// `RUSTFLAGS="-C target-cpu=x86-64-v3"`); `safe_arch` only offers it then, since calling an
/// AVX2 function from code built without it needs `unsafe`.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
fn classify(window: &[u8; WINDOW]) -> u64 {
    use safe_arch::{
        bitor_m256i, cmp_eq_mask_i8_m256i, cmp_gt_mask_i8_m256i, m256i, move_mask_i8_m256i,
        set_splat_i8_m256i,
    };
    let quote = set_splat_i8_m256i(b'"' as i8);
    let backslash = set_splat_i8_m256i(b'\\' as i8);
    let space = set_splat_i8_m256i(0x20);
    let mut mask = 0u64;
    for (i, chunk) in window.chunks_exact(32).enumerate() {
        let bytes = m256i::from(<[u8; 32]>::try_from(chunk).unwrap_or([b' '; 32]));
        let special = bitor_m256i(
            bitor_m256i(
                cmp_eq_mask_i8_m256i(bytes, quote),
                cmp_eq_mask_i8_m256i(bytes, backslash),
            ),
            // Signed, as in the SSE2 version: `0x20 > b` holds for controls and non-ASCII.
            cmp_gt_mask_i8_m256i(space, bytes),
        );
        let bits = u64::from(move_mask_i8_m256i(special) as u32);
        mask |= bits << (32 * i);
    }
    mask
}

/// Classifies 64 bytes into a bitmask: bit `i` set when byte `i` is special.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn classify(window: &[u8; WINDOW]) -> u64 {
    classify_portable(window)
}

/// The classification in portable code (the only one off x86-64; tested against SSE2 on it).
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn classify_portable(window: &[u8; WINDOW]) -> u64 {
    let mut lanes = [0u8; WINDOW];
    for (lane, &b) in lanes.iter_mut().zip(window) {
        *lane = special_lane(b);
    }
    let mut mask = 0u64;
    for (i, bytes) in lanes.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(bytes.try_into().unwrap_or_default());
        mask |= gather_lanes(word) << (8 * i);
    }
    mask
}

/// Finds special bytes, keeping the last classified window so that nearby searches are cheap.
/// One lives in each scanner; it never allocates.
#[derive(Debug, Clone)]
pub(super) struct Specials {
    /// Body offset of the window's first byte; the window covers `start..start + WINDOW`.
    start: usize,
    /// Whether `mask` describes the window at `start`.
    valid: bool,
    /// Bit `i`: byte `start + i` is special.
    mask: u64,
}

impl Specials {
    pub(super) fn new() -> Self {
        Specials {
            start: 0,
            valid: false,
            mask: 0,
        }
    }

    /// Classifies the window that starts at `start`; past the end of the body it is padded
    /// with spaces, which are never special.
    #[inline(always)]
    fn load(&mut self, body: &[u8], start: usize) {
        self.start = start;
        self.valid = true;
        self.mask = match body.get(start..start + WINDOW) {
            Some(full) => classify(full.try_into().unwrap_or(&[b' '; WINDOW])),
            None => Self::classify_tail(body, start),
        };
    }

    /// A window reaching past the end of the body, padded with spaces (only near the end).
    #[cold]
    #[inline(never)]
    fn classify_tail(body: &[u8], start: usize) -> u64 {
        let mut padded = [b' '; WINDOW];
        let rest = body.get(start..).unwrap_or_default();
        if let Some(head) = padded.get_mut(..rest.len()) {
            head.copy_from_slice(rest);
        }
        classify(&padded)
    }

    /// The position of the first special byte at or after `pos`, or `body.len()`.
    #[inline]
    pub(super) fn next(&mut self, body: &[u8], pos: usize) -> usize {
        if !self.valid || pos < self.start || pos >= self.start + WINDOW {
            self.load(body, pos);
        }
        loop {
            // 0 after moving to the following window; below 64 always, so the shift is in range.
            let offset = pos.saturating_sub(self.start);
            let ahead = self.mask & (!0u64 << offset);
            if ahead != 0 {
                return (self.start + ahead.trailing_zeros() as usize).min(body.len());
            }
            let next = self.start + WINDOW;
            if next >= body.len() {
                return body.len();
            }
            self.load(body, next);
        }
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

/// Validates the run of non-ASCII bytes starting at `at`; returns the position after it.
fn scan_non_ascii(body: &[u8], at: usize) -> Result<usize, ExtractError> {
    let rest = body.get(at..).unwrap_or_default();
    let len = rest.iter().position(|&b| b < 0x80).unwrap_or(rest.len());
    let run = rest.get(..len).unwrap_or_default();
    match std::str::from_utf8(run) {
        Ok(_) => Ok(at + len),
        Err(e) => Err(ExtractError::new(
            ExtractErrorKind::InvalidUtf8,
            at + e.valid_up_to(),
        )),
    }
}

/// Scans the string whose opening quote is at `quote`; returns its span and the position just
/// after the closing quote. Validates escapes, surrogate pairing, control characters and UTF-8.
#[inline]
pub(super) fn scan_string(
    specials: &mut Specials,
    body: &[u8],
    quote: usize,
) -> Result<(StrSpan, usize), ExtractError> {
    let start = quote + 1;
    let mut pos = start;
    let mut has_escapes = false;
    loop {
        pos = specials.next(body, pos);
        match body.get(pos) {
            Some(b'"') => break,
            Some(b'\\') => {
                has_escapes = true;
                // One table lookup for the common escapes; `\u` and errors take the slow path.
                let next = body.get(pos + 1).copied().unwrap_or(0);
                pos = if SIMPLE_ESCAPE[usize::from(next)] {
                    pos + 2
                } else {
                    scan_escape(body, pos)?
                };
            }
            Some(&b) if b >= 0x80 => pos = scan_non_ascii(body, pos)?,
            Some(&b) => {
                return Err(ExtractError::new(
                    ExtractErrorKind::ControlCharacter(b),
                    pos,
                ));
            }
            None => {
                return Err(ExtractError::new(
                    ExtractErrorKind::UnexpectedEnd {
                        expected: "the closing '\"' of a string",
                    },
                    pos,
                ));
            }
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

    fn first_special(bytes: &[u8], from: usize) -> usize {
        Specials::new().next(bytes, from)
    }

    #[test]
    fn finds_the_first_special_in_every_position() {
        let lens = (0..80).chain([127, 128, 129, 150, 255, 256, 257, 300]);
        for len in lens {
            for at in 0..len {
                for special in [b'"', b'\\', 0x00, 0x1f, 0x80, 0xff] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    if at + 1 < len {
                        bytes[at + 1] = b'"';
                    }
                    assert_eq!(first_special(&bytes, 0), at, "len {len} at {at}");
                    // Searching from just after it finds the next one (or the end).
                    let after = if at + 1 < len { at + 1 } else { len };
                    assert_eq!(first_special(&bytes, at + 1), after);
                }
            }
            assert_eq!(first_special(&vec![b'a'; len], 0), len);
            assert_eq!(first_special(&vec![0x7f; len], 0), len);
        }
    }

    #[test]
    fn both_classifiers_agree_on_every_byte_in_every_lane() {
        for byte in 0..=255u8 {
            for lane in 0..WINDOW {
                let mut window = [b'a'; WINDOW];
                window[lane] = byte;
                let expected = if special_lane(byte) == 1 {
                    1 << lane
                } else {
                    0
                };
                assert_eq!(
                    classify_portable(&window),
                    expected,
                    "byte {byte:#x} lane {lane}"
                );
                assert_eq!(classify(&window), expected, "byte {byte:#x} lane {lane}");
            }
        }
    }

    #[test]
    fn a_kept_window_answers_later_searches_exactly() {
        // Specials every 5 bytes over several windows, searched in order with one finder.
        let mut bytes = vec![b'x'; 500];
        let expected: Vec<usize> = (3..500).step_by(5).collect();
        for &i in &expected {
            bytes[i] = b'\\';
        }
        let mut finder = Specials::new();
        let mut pos = 0;
        let mut found = Vec::new();
        loop {
            pos = finder.next(&bytes, pos);
            if pos == bytes.len() {
                break;
            }
            found.push(pos);
            pos += 1;
        }
        assert_eq!(found, expected);
        // Going backwards reloads the window instead of returning a stale answer.
        assert_eq!(finder.next(&bytes, 0), 3);
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

//! Classification of 64-byte windows into bitmasks, and the window a scanner keeps between
//! string searches.
//!
//! The workspace forbids `unsafe`, and `std::arch` intrinsics are unsafe to call outside a
//! `#[target_feature]` function even when the feature is on for the whole target. On x86-64
//! the classification uses SSE2 (part of the x86-64 baseline) through `safe_arch`, which
//! exposes intrinsics as safe functions gated by `cfg(target_feature)`; an x86-64-v3 build
//! gets AVX2 the same way. Elsewhere an element-wise map that LLVM vectorises produces one
//! `0x00`/`0x01` lane per byte, and a multiply gathers each eight lanes into eight bits.

/// Bytes classified at once.
pub(super) const WINDOW: usize = 64;

/// `1` for a byte that interrupts a plain run, `0` otherwise. Branch-free so that the map
/// over a window vectorises: `b - 0x20 >= 0x60` (wrapping) is "control or non-ASCII".
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
pub(super) fn special_lane(b: u8) -> u8 {
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

/// Classifies 64 bytes into a bitmask: bit `i` set when byte `i` is special (`"`, `\`, a
/// control character or a non-ASCII byte). SSE2: per 16 bytes three compares, one `pmovmskb`.
#[cfg(all(target_arch = "x86_64", not(target_feature = "avx2")))]
#[inline(always)]
pub(super) fn classify(window: &[u8; WINDOW]) -> u64 {
    use safe_arch::{
        bitor_m128i, bitxor_m128i, cmp_eq_mask_i8_m128i, cmp_lt_mask_i8_m128i,
        load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };
    // `"` (0x22) becomes 0x20 after `^ 0x02`, control bytes stay below 0x20 and non-ASCII bytes
    // stay negative as i8, while every other byte lands at 0x21 or above: so one signed
    // compare below 0x21 finds all three, and a second compare finds `\`. (SSE2's compares
    // overwrite an operand, so each one saved is also a register copy saved.)
    let flip = set_splat_i8_m128i(0x02);
    let bound = set_splat_i8_m128i(0x21);
    let backslash = set_splat_i8_m128i(b'\\' as i8);
    let mut mask = 0u64;
    for (i, chunk) in window.chunks_exact(16).enumerate() {
        let bytes = load_unaligned_m128i(chunk.try_into().unwrap_or(&[b' '; 16]));
        let special = bitor_m128i(
            cmp_lt_mask_i8_m128i(bitxor_m128i(bytes, flip), bound),
            cmp_eq_mask_i8_m128i(bytes, backslash),
        );
        // `pmovmskb` sets only the low 16 bits.
        mask |= u64::from(move_mask_i8_m128i(special) as u16) << (16 * i);
    }
    mask
}

/// Classifies 64 bytes with AVX2 (two 32-byte halves), when the build targets it (for example
/// `RUSTFLAGS="-C target-cpu=x86-64-v3"`); `safe_arch` only offers it then, since calling an
/// AVX2 function from code built without it needs `unsafe`.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[inline(always)]
pub(super) fn classify(window: &[u8; WINDOW]) -> u64 {
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
        mask |= u64::from(move_mask_i8_m256i(special) as u32) << (32 * i);
    }
    mask
}

/// Classifies 64 bytes (the portable version, the only one off x86-64).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(super) fn classify(window: &[u8; WINDOW]) -> u64 {
    classify_portable(window)
}

/// The classification in portable code (tested against the SIMD one on x86-64).
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
pub(super) fn classify_portable(window: &[u8; WINDOW]) -> u64 {
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

/// The last classified window of a body, kept so that nearby searches (the next key, the
/// rest of a string after an escape) do not classify again. One lives in each scanner; it
/// never allocates.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    /// Body offset of the window's first byte; the window covers `start..start + WINDOW`.
    pub(super) start: usize,
    /// Whether `mask` describes the window at `start`.
    valid: bool,
    /// Bit `i`: byte `start + i` is special.
    pub(super) mask: u64,
}

impl Window {
    pub(crate) fn new() -> Self {
        Window {
            start: 0,
            valid: false,
            mask: 0,
        }
    }

    /// The body offset just past the window.
    #[inline(always)]
    pub(super) fn end(&self) -> usize {
        self.start + WINDOW
    }

    /// Makes the window cover `pos`, classifying the 64 bytes from `pos` unless it already
    /// does; returns `pos`'s lane.
    #[inline(always)]
    pub(super) fn cover(&mut self, body: &[u8], pos: usize) -> u32 {
        if !self.valid || pos < self.start || pos >= self.end() {
            self.load(body, pos);
        }
        (pos - self.start) as u32
    }

    /// Classifies the window that starts at `start`.
    #[inline(always)]
    pub(super) fn load(&mut self, body: &[u8], start: usize) {
        self.keep(start, classify_at(body, start));
    }

    /// Records a window classified elsewhere.
    #[inline(always)]
    pub(super) fn keep(&mut self, start: usize, mask: u64) {
        self.start = start;
        self.valid = true;
        self.mask = mask;
    }

    /// The position of the first special byte at or after `pos`, or `body.len()`, moving the
    /// window forward as needed (the tests' view of the classification).
    #[cfg(test)]
    pub(super) fn next_special(&mut self, body: &[u8], pos: usize) -> usize {
        let lane = self.cover(body, pos);
        let mut ahead = self.mask & (!0u64 << lane);
        loop {
            if ahead != 0 {
                return (self.start + ahead.trailing_zeros() as usize).min(body.len());
            }
            let next = self.end();
            if next >= body.len() {
                return body.len();
            }
            self.load(body, next);
            ahead = self.mask;
        }
    }
}

/// The mask of the 64 bytes from `start`; past the end of the body they are padded with
/// spaces, which are never special.
#[inline(always)]
pub(super) fn classify_at(body: &[u8], start: usize) -> u64 {
    match body.get(start..start + WINDOW) {
        Some(full) => classify(full.try_into().unwrap_or(&[b' '; WINDOW])),
        None => classify_tail(body, start),
    }
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

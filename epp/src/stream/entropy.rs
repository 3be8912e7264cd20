//! The stream machine's only source of randomness, injected through [`Env`](super::Env).
//!
//! Two decisions are random: the endpoint of a request with no body (no model to schedule
//! on, so upstream picks any ready endpoint) and the `x-request-id` generated for a request
//! that carries none. Taking both from an [`Entropy`] keeps the machine a pure function of its
//! events and environment, so tests pin the choices with a fixed source.

use std::fmt;

use rand::RngExt;

/// Where the machine's random choices come from.
pub trait Entropy: fmt::Debug {
    /// A uniformly chosen index in `0..len`; callers never pass 0.
    fn index_below(&self, len: usize) -> usize;

    /// Sixteen random bytes, the raw material of a generated request id.
    fn uuid_bytes(&self) -> [u8; 16];
}

/// The production source: the thread-local generator of `rand`, which needs no lock.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadEntropy;

impl Entropy for ThreadEntropy {
    fn index_below(&self, len: usize) -> usize {
        rand::rng().random_range(0..len.max(1))
    }

    fn uuid_bytes(&self) -> [u8; 16] {
        rand::rng().random()
    }
}

/// `bytes` as a version-4 UUID (`8-4-4-4-12` lowercase hex), with the version and variant
/// bits set as RFC 9562 requires.
pub fn format_uuid(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut out = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(hex_digit(byte >> 4));
        out.push(hex_digit(byte & 0x0f));
    }
    out
}

fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16).unwrap_or('0')
}

//! What BBR reads from the request headers and the protocol config: which of its own
//! headers a client tried to set, the body length it declared, and the body mode.

use envoy_types::pb::envoy::extensions::filters::http::ext_proc::v3::processing_mode::BodySendMode;
use envoy_types::pb::envoy::service::ext_proc::v3::HttpHeaders;

use crate::config::BodyMode;

/// The body length the client declared in `content-length`; a number too large for `usize`
/// reads as `usize::MAX` (it is past any limit), anything unparsable as undeclared.
pub(super) fn declared_length(headers: &HttpHeaders) -> Option<usize> {
    let map = headers.headers.as_ref()?;
    let header = map
        .headers
        .iter()
        .find(|h| h.key.eq_ignore_ascii_case("content-length"))?;
    let raw: &[u8] = if header.raw_value.is_empty() {
        header.value.as_bytes()
    } else {
        &header.raw_value
    };
    let digits = std::str::from_utf8(raw).ok()?.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(usize::MAX))
}

/// Which of `owned` the headers contain (case-insensitively), as a bit set.
pub(super) fn spoofed_mask(owned: &[&str], headers: &HttpHeaders) -> u32 {
    let Some(map) = &headers.headers else {
        return 0;
    };
    let mut mask = 0;
    for header in &map.headers {
        for (i, name) in owned.iter().enumerate().take(32) {
            if header.key.eq_ignore_ascii_case(name) {
                mask |= 1 << i;
            }
        }
    }
    mask
}

/// The request body mode Envoy announces, or the proto name of one BBR cannot route with
/// (`NONE` would never deliver a body; `STREAMED`, `BUFFERED_PARTIAL` and `GRPC` cannot hold
/// the headers answer until the model is known).
pub(super) fn body_mode(raw: i32) -> std::result::Result<BodyMode, &'static str> {
    match BodySendMode::try_from(raw) {
        Ok(BodySendMode::Buffered) => Ok(BodyMode::Buffered),
        Ok(BodySendMode::FullDuplexStreamed) => Ok(BodyMode::FullDuplexStreamed),
        Ok(BodySendMode::None) => Err("NONE"),
        Ok(BodySendMode::Streamed) => Err("STREAMED"),
        Ok(BodySendMode::BufferedPartial) => Err("BUFFERED_PARTIAL"),
        Ok(_) | Err(_) => Err("GRPC or an unknown mode"),
    }
}

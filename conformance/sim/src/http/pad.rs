//! The `response_pad_bytes` fault: a model server that answers with a huge JSON body.
//!
//! Gateways and pickers that buffer responses must survive a backend returning far more
//! than any sane completion (a runaway `n`, a big embeddings batch, a broken server). The
//! padding keeps the body valid JSON — an extra `"padding"` string member before the
//! closing brace — so only its size is hostile.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;

/// Middleware on the inference routes: pads successful `application/json` responses.
pub(super) async fn pad_response(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let pad_to = state.faults.load().faults.response_pad_bytes;
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if pad_to == 0 || response.status() != StatusCode::OK || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // The unpadded body is a small completion; the limit only guards against a surprise.
    let Ok(bytes) = to_bytes(body, 64 << 20).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let padded = padded(&bytes, pad_to);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(padded))
}

/// `body` (a JSON object) with a `"padding"` member making it at least `pad_to` bytes.
fn padded(body: &[u8], pad_to: usize) -> Vec<u8> {
    let Some(close) = body.iter().rposition(|b| *b == b'}') else {
        return body.to_vec();
    };
    let head = &body[..close];
    let empty_object = head.iter().all(|b| b.is_ascii_whitespace() || *b == b'{');
    let prefix: &[u8] = if empty_object {
        b"\"padding\":\""
    } else {
        b",\"padding\":\""
    };
    let fill = pad_to.saturating_sub(head.len() + prefix.len() + 2);
    let mut out = Vec::with_capacity(head.len() + prefix.len() + fill + 2);
    out.extend_from_slice(head);
    out.extend_from_slice(prefix);
    out.resize(out.len() + fill, b'x');
    out.extend_from_slice(b"\"}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_padded_body_is_valid_json_of_at_least_the_size_asked() {
        let body = br#"{"id":"cmpl-1","choices":[{"text":"hi"}]}"#;
        let out = padded(body, 10_000);
        assert!(out.len() >= 10_000 && out.len() < 10_010, "{}", out.len());
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["choices"][0]["text"], "hi");
        assert!(value["padding"].as_str().unwrap().len() > 9_000);
    }

    #[test]
    fn an_empty_object_and_a_body_already_large_enough_stay_valid() {
        let out = padded(b"{}", 100);
        assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());
        let big = br#"{"a":"bbbbbbbbbbbbbbbbbbbb"}"#;
        let out = padded(big, 4);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (
                value["a"].as_str().unwrap().len(),
                value["padding"].as_str()
            ),
            (20, Some(""))
        );
    }
}

//! What reached the model server: the `x-` request headers each replica has seen.
//!
//! The hardening tests send spoofed steering headers through the gateway and must prove,
//! on the model server's side, that none arrived (or arrived only with the value the
//! gateway itself set). A replica keeps a small bounded record — header names, a few
//! distinct values each, truncated — readable at `GET /admin/headers` and cleared by
//! `DELETE /admin/headers`. The record is bounded however hostile the traffic, so the
//! simulator itself never becomes the thing that runs out of memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

use super::AppState;

/// Most header names kept; later new names only count in `dropped_names`.
const MAX_NAMES: usize = 128;
/// Most distinct values kept per name.
const MAX_VALUES: usize = 8;
/// Values are cut to this many bytes (at a character boundary).
const MAX_VALUE_BYTES: usize = 256;

/// One header name's record.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SeenHeader {
    /// Requests that carried it.
    pub requests: u64,
    /// Up to [`MAX_VALUES`] distinct values, each cut to [`MAX_VALUE_BYTES`].
    pub values: Vec<String>,
}

/// The whole record, as `GET /admin/headers` returns it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SeenHeaders {
    /// By lowercase header name.
    pub headers: BTreeMap<String, SeenHeader>,
    /// Requests with an `x-` header whose name did not fit.
    pub dropped_names: u64,
}

impl SeenHeaders {
    /// Adds one request's `x-` headers.
    pub fn record(&mut self, headers: &HeaderMap) {
        let mut dropped = false;
        for name in headers.keys() {
            let key = name.as_str();
            if !key.starts_with("x-") {
                continue;
            }
            if !self.headers.contains_key(key) && self.headers.len() >= MAX_NAMES {
                dropped = true;
                continue;
            }
            let entry = self.headers.entry(key.to_owned()).or_default();
            entry.requests += 1;
            for value in headers.get_all(name) {
                let text = String::from_utf8_lossy(value.as_bytes());
                let cut = cut_at_char(&text, MAX_VALUE_BYTES);
                if entry.values.len() < MAX_VALUES && !entry.values.iter().any(|v| v == cut) {
                    entry.values.push(cut.to_owned());
                }
            }
        }
        self.dropped_names += u64::from(dropped);
    }
}

fn cut_at_char(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Middleware on the inference routes: records the request's headers, then serves it.
pub(super) async fn record(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Ok(mut seen) = state.seen.lock() {
        seen.record(request.headers());
    }
    next.run(request).await
}

/// `GET /admin/headers`.
pub(super) async fn report(State(state): State<AppState>) -> Json<SeenHeaders> {
    Json(state.seen.lock().map(|s| s.clone()).unwrap_or_default())
}

/// `DELETE /admin/headers`.
pub(super) async fn clear(State(state): State<AppState>) -> Json<SeenHeaders> {
    let mut seen = state
        .seen
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Json(std::mem::take(&mut *seen))
}

/// The lock type `Shared` holds (a plain mutex: this is test tooling, and a request
/// holds it only to copy a handful of short strings).
pub(crate) type SeenLock = Mutex<SeenHeaders>;

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn only_x_headers_are_recorded_with_distinct_values_counted_per_request() {
        let mut seen = SeenHeaders::default();
        seen.record(&headers(&[("x-a", "1"), ("content-type", "json")]));
        seen.record(&headers(&[("x-a", "1"), ("x-a", "2")]));
        assert_eq!(seen.headers.len(), 1);
        let a = &seen.headers["x-a"];
        assert_eq!(a.requests, 2);
        assert_eq!(a.values, vec!["1", "2"]);
    }

    #[test]
    fn the_record_stays_bounded_under_hostile_names_and_values() {
        let mut seen = SeenHeaders::default();
        let long = "v".repeat(4096);
        for i in 0..1_000 {
            let name: &'static str = Box::leak(format!("x-h{i}").into_boxed_str());
            seen.record(&headers(&[
                (name, &long),
                ("x-same", &format!("{i}{long}")),
            ]));
        }
        assert_eq!(seen.headers.len(), MAX_NAMES);
        assert_eq!(seen.dropped_names, 1_000 - (MAX_NAMES as u64 - 1));
        let same = &seen.headers["x-same"];
        assert_eq!((same.requests, same.values.len()), (1_000, MAX_VALUES));
        assert!(same.values.iter().all(|v| v.len() == MAX_VALUE_BYTES));
    }
}

//! What the admin API's action handlers read from request headers (`Idempotency-Key`,
//! `If-Match`) and the `202 Accepted` answers they write.

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kube::ResourceExt;
use serde_json::json;
use switchyard_api::InferenceRollout;
use switchyard_api::rollout::Intent;

use crate::admin::AdminError;
use crate::admin::view::{snapshot, with_etag};

/// The answer to a late retry of an action that a newer one has replaced.
pub(super) fn already_handled(rollout: &InferenceRollout, key: Option<&str>) -> Response {
    let body = json!({
        "accepted": true,
        "recorded": false,
        "message": format!(
            "the action with Idempotency-Key {:?} was recorded earlier and newer actions followed it; nothing was done",
            key.unwrap_or_default()
        ),
        "resourceVersion": rollout.resource_version(),
        "rollout": snapshot(rollout, None),
    });
    with_etag(rollout, (StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The answer to a recorded (or repeated) action.
pub(super) fn accepted(rollout: &InferenceRollout, intent: &Intent, recorded: bool) -> Response {
    let body = json!({
        "accepted": true,
        "recorded": recorded,
        "intent": intent,
        "resourceVersion": rollout.resource_version(),
        "rollout": snapshot(rollout, None),
    });
    with_etag(rollout, (StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The `Idempotency-Key` header: 1 to 128 visible ASCII characters, when sent.
pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, AdminError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if (1..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(key.to_owned()))
        }
        _ => Err(AdminError::BadRequest(
            "Idempotency-Key must be 1 to 128 visible ASCII characters".into(),
        )),
    }
}

/// The resourceVersion in `If-Match` (quotes and a weak prefix dropped), when sent.
pub(super) fn if_match(headers: &HeaderMap) -> Result<Option<String>, AdminError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| AdminError::BadRequest("If-Match must be ASCII".into()))?;
    Ok(Some(
        text.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_owned(),
    ))
}

/// A nonce for an action sent without `Idempotency-Key`: unique per process and call.
pub(super) fn generated_nonce(user: &str, now: k8s_openapi::jiff::Timestamp) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = format!("{user}/{}/{count}", now.as_nanosecond());
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(seed.as_bytes()))
}

//! The admin API's handlers.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_api::InferenceRollout;
use switchyard_api::rollout::{FULL_WEIGHT, Intent, IntentAction, Phase, PromoteMode};
use tracing::info;

use super::auth::Access;
use super::record::{Admission, admit, with_intent};
use super::view::{fetch, fetch_all, route_weights, snapshot, with_etag};
use super::{ADMIN_FIELD_MANAGER, AdminError, AdminState, Store};
use crate::plan::{intent_allowed, max_manual_weight};

mod reply;
use reply::{accepted, already_handled, generated_nonce, idempotency_key, if_match};

type Answer = Result<Response, AdminError>;

/// `GET /metrics`.
pub async fn metrics(State(state): State<AdminState>) -> Response {
    switchyard_runtime::metrics::response(Ok(state.metrics.encode()))
}

/// Any other path.
pub async fn not_found() -> AdminError {
    AdminError::NotFound("no such endpoint; see GET /api/v1/inferencerollouts".into())
}

/// `GET /api/v1/inferencerollouts`.
pub async fn list(State(state): State<AdminState>, headers: HeaderMap) -> Answer {
    let access = Access {
        verb: "list",
        namespace: None,
        name: None,
        subresource: None,
    };
    state
        .auth
        .authorize(state.store.client(), &headers, access)
        .await?;
    let items: Vec<Value> = fetch_all(&state)
        .await?
        .iter()
        .map(|r| snapshot(r, None))
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

/// `GET R`: the rollout and the weights its route carries now.
pub async fn get_one(
    State(state): State<AdminState>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let access = Access {
        verb: "get",
        namespace: Some(&namespace),
        name: Some(&name),
        subresource: None,
    };
    state
        .auth
        .authorize(state.store.client(), &headers, access)
        .await?;
    let rollout = fetch(&state, &namespace, &name).await?;
    let route = route_weights(&state, &rollout).await;
    Ok(with_etag(
        &rollout,
        Json(snapshot(&rollout, Some(route))).into_response(),
    ))
}

/// `GET R/analysis`: the metrics, the source and the last verdicts.
pub async fn analysis(
    State(state): State<AdminState>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let access = Access {
        verb: "get",
        namespace: Some(&namespace),
        name: Some(&name),
        subresource: None,
    };
    state
        .auth
        .authorize(state.store.client(), &headers, access)
        .await?;
    let rollout = fetch(&state, &namespace, &name).await?;
    let status = rollout.status.clone().unwrap_or_default();
    let body = json!({
        "source": rollout.spec.analysis.source,
        "minRequestsPerWindow": rollout.spec.analysis.min_requests_per_window,
        "noData": rollout.spec.analysis.no_data,
        "metrics": rollout.spec.analysis.metrics,
        "status": status.analysis,
    });
    Ok(with_etag(&rollout, Json(body).into_response()))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    #[serde(default)]
    reason: String,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteBody {
    #[serde(default)]
    mode: Option<PromoteMode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightBody {
    canary: f64,
    #[serde(default)]
    unit: WeightUnit,
}

#[derive(Clone, Copy, Default, Deserialize)]
enum WeightUnit {
    #[default]
    #[serde(rename = "bp")]
    BasisPoints,
    #[serde(rename = "percent")]
    Percent,
}

/// The longest `reason` kept: it is stored in the rollout's status and its
/// events, and the whole object must stay far below etcd's size limit.
pub const MAX_REASON_CHARS: usize = 1024;

/// The fields of an intent besides action, nonce, user and time.
#[derive(Default)]
struct Details {
    mode: Option<PromoteMode>,
    canary_weight: Option<i32>,
    reason: String,
}

/// `POST R/pause {reason}`.
pub async fn pause(
    state: State<AdminState>,
    path: Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    audited(state, path, headers, IntentAction::Pause, move || {
        let body: ReasonBody = parse(&body)?;
        Ok(Details {
            reason: bounded_reason(body.reason)?,
            ..Details::default()
        })
    })
    .await
}

/// `POST R/resume`.
pub async fn resume(
    state: State<AdminState>,
    path: Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    audited(state, path, headers, IntentAction::Resume, move || {
        let _: ReasonBody = parse(&body)?;
        Ok(Details::default())
    })
    .await
}

/// `POST R/promote {mode: step|full}` (step by default).
pub async fn promote(
    state: State<AdminState>,
    path: Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    audited(state, path, headers, IntentAction::Promote, move || {
        let body: PromoteBody = parse(&body)?;
        Ok(Details {
            mode: Some(body.mode.unwrap_or(PromoteMode::Step)),
            ..Details::default()
        })
    })
    .await
}

/// `POST R/abort {reason}`.
pub async fn abort(
    state: State<AdminState>,
    path: Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    audited(state, path, headers, IntentAction::Abort, move || {
        let body: ReasonBody = parse(&body)?;
        Ok(Details {
            reason: bounded_reason(body.reason)?,
            ..Details::default()
        })
    })
    .await
}

/// `POST R/retry`.
pub async fn retry(
    state: State<AdminState>,
    path: Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    audited(state, path, headers, IntentAction::Retry, move || {
        let _: ReasonBody = parse(&body)?;
        Ok(Details::default())
    })
    .await
}

/// `PUT R/weight {canary, unit: bp|percent}`.
pub async fn set_weight(
    state: State<AdminState>,
    path: Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    audited(state, path, headers, IntentAction::SetWeight, move || {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(AdminError::BadRequest(
                "the body must be {\"canary\": <weight>, \"unit\": \"bp\" or \"percent\"}".into(),
            ));
        }
        let body: WeightBody = serde_json::from_slice(&body)
            .map_err(|err| AdminError::BadRequest(format!("invalid JSON body: {err}")))?;
        let basis_points = match body.unit {
            WeightUnit::BasisPoints => body.canary,
            WeightUnit::Percent => body.canary * 100.0,
        };
        if !basis_points.is_finite() || basis_points.fract() != 0.0 {
            return Err(AdminError::BadRequest(format!(
                "canary {} is not a whole number of basis points",
                body.canary
            )));
        }
        if !(0.0..=f64::from(FULL_WEIGHT)).contains(&basis_points) {
            return Err(AdminError::Unprocessable(format!(
                "canary weight {basis_points} bp is outside 0 to 10000"
            )));
        }
        Ok(Details {
            canary_weight: Some(basis_points as i32),
            ..Details::default()
        })
    })
    .await
}

/// The reason, when it fits in [`MAX_REASON_CHARS`].
fn bounded_reason(reason: String) -> Result<String, AdminError> {
    let chars = reason.chars().count();
    if chars > MAX_REASON_CHARS {
        return Err(AdminError::Unprocessable(format!(
            "reason is {chars} characters; keep it to {MAX_REASON_CHARS} (it is stored in the rollout's status)"
        )));
    }
    Ok(reason)
}

fn parse<T: Default + for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, AdminError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|err| AdminError::BadRequest(format!("invalid JSON body: {err}")))
}

/// Runs an action and writes its audit line and metric, whatever the outcome.
async fn audited(
    State(state): State<AdminState>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    action: IntentAction,
    details: impl FnOnce() -> Result<Details, AdminError>,
) -> Response {
    let label = action_label(action);
    let mut user = String::from("-");
    let mut recorded = Details::default();
    let result = act(
        &state,
        &namespace,
        &name,
        &headers,
        action,
        details,
        (&mut user, &mut recorded),
    )
    .await;
    let response = match result {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    let code = response.status().as_u16();
    // Everything the action carried, so the line alone says what was asked.
    info!(
        target: "audit",
        user = %user,
        action = label,
        namespace = %namespace,
        name = %name,
        code,
        reason = %recorded.reason,
        canary_weight = recorded.canary_weight,
        mode = ?recorded.mode,
        forwarded_for = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect::<String>()),
        "admin action"
    );
    state.metrics.admin_request(label, code);
    response
}

fn action_label(action: IntentAction) -> &'static str {
    match action {
        IntentAction::Pause => "pause",
        IntentAction::Resume => "resume",
        IntentAction::Promote => "promote",
        IntentAction::Abort => "abort",
        IntentAction::Retry => "retry",
        IntentAction::SetWeight => "setWeight",
    }
}

async fn act(
    state: &AdminState,
    namespace: &str,
    name: &str,
    headers: &HeaderMap,
    action: IntentAction,
    details: impl FnOnce() -> Result<Details, AdminError>,
    (user_out, details_out): (&mut String, &mut Details),
) -> Answer {
    let access = Access {
        verb: "patch",
        namespace: Some(namespace),
        name: Some(name),
        subresource: Some("status"),
    };
    let user = state
        .auth
        .authorize(state.store.client(), headers, access)
        .await?;
    user_out.clone_from(&user);
    let details = details()?;
    *details_out = Details {
        mode: details.mode,
        canary_weight: details.canary_weight,
        reason: details.reason.clone(),
    };
    let key = idempotency_key(headers)?;
    // Local mode: the check and the write below happen under the status
    // files' lock, so the reconcile loop cannot interleave.
    let _local_guard = match &state.store {
        Store::Local(store) => Some(std::sync::Arc::clone(&store.lock).lock_owned().await),
        Store::Kubernetes(_) => None,
    };
    let rollout = fetch(state, namespace, name).await?;
    let version = rollout.resource_version().unwrap_or_default();
    let if_match = if_match(headers)?;
    if let Some(wanted) = &if_match
        && *wanted != version
    {
        return Err(AdminError::PreconditionFailed(format!(
            "If-Match {wanted:?} does not match resourceVersion {version:?}; read the rollout again"
        )));
    }
    let status = rollout.status.clone().unwrap_or_default();
    match admit(&status, key.as_deref(), action)? {
        Admission::Repeat(pending) => return Ok(accepted(&rollout, pending, false)),
        Admission::AlreadyHandled => return Ok(already_handled(&rollout, key.as_deref())),
        Admission::Record => {}
    }
    let phase = status.phase.unwrap_or(Phase::Pending);
    intent_allowed(phase, status.pause.as_ref().map(|p| p.reason), action)
        .map_err(AdminError::Conflict)?;
    if let Some(weight) = details.canary_weight {
        let limit = max_manual_weight(&rollout.spec);
        if weight > limit {
            return Err(AdminError::Unprocessable(format!(
                "canary weight {weight} bp is above {limit} bp (maxWeight {}, and stable keeps traffic until promotion); use promote with mode full to finish",
                rollout.spec.strategy.max_weight
            )));
        }
    }
    let now = (state.clock)();
    let intent = Intent {
        action,
        nonce: key.unwrap_or_else(|| generated_nonce(&user, now)),
        by: user,
        at: Time(now),
        mode: details.mode,
        canary_weight: details.canary_weight,
        reason: details.reason,
    };
    let client = match &state.store {
        Store::Kubernetes(client) => client,
        Store::Local(store) => {
            let updated = store
                .record_intent(rollout, intent.clone())
                .map_err(|err| AdminError::Upstream(err.to_string()))?;
            return Ok(accepted(&updated, &intent, true));
        }
    };
    let mut written = status;
    with_intent(&mut written, intent.clone());
    let mut fields = json!({"intent": intent});
    if !written.recent_intent_nonces.is_empty() {
        fields["recentIntentNonces"] = json!(written.recent_intent_nonces);
    }
    // Compare-and-swap: the write carries the resourceVersion the checks
    // above were made on, so of two admins racing, the apiserver lets one
    // through and answers 409 to the other instead of letting it overwrite
    // an accepted action (an abort, say) that the controller never saw.
    let body = json!({
        "apiVersion": InferenceRollout::api_version(&()),
        "kind": InferenceRollout::kind(&()),
        "metadata": {"resourceVersion": version},
        "status": fields,
    });
    let api: Api<InferenceRollout> = Api::namespaced(client.clone(), namespace);
    let updated = api
        .patch_status(
            name,
            &PatchParams::apply(ADMIN_FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await
        .map_err(|err| {
            AdminError::from_kube(
                &format!("record intent on InferenceRollout {namespace}/{name}"),
                err,
            )
        })?;
    Ok(accepted(&updated, &intent, true))
}

//! Reading rollouts for answers: fetching one, the weights on its route, the
//! JSON snapshot and the `ETag`.

use axum::http::{HeaderValue, header};
use axum::response::Response;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use switchyard_api::rollout::{Phase, RouteTarget};
use switchyard_api::{HttpRoute, InferenceRollout};

use super::{AdminError, AdminState};
use crate::route::locate;

pub(super) async fn fetch(
    state: &AdminState,
    namespace: &str,
    name: &str,
) -> Result<InferenceRollout, AdminError> {
    let api: Api<InferenceRollout> = Api::namespaced(state.client.clone(), namespace);
    api.get_opt(name)
        .await
        .map_err(|err| {
            AdminError::from_kube(&format!("get InferenceRollout {namespace}/{name}"), err)
        })?
        .ok_or_else(|| {
            AdminError::NotFound(format!("InferenceRollout {namespace}/{name} not found"))
        })
}

/// The weights on the route now, or why they cannot be read.
pub(super) async fn route_weights(
    state: &AdminState,
    namespace: &str,
    rollout: &InferenceRollout,
) -> Value {
    let target = &rollout.spec.target;
    let (Some(RouteTarget { name, .. }), Some(stable), Some(canary)) =
        (&target.route, &target.stable, &target.canary)
    else {
        return json!({"error": "the rollout has no route target"});
    };
    let api: Api<HttpRoute> = Api::namespaced(state.client.clone(), namespace);
    let route = match api.get_opt(name).await {
        Ok(Some(route)) => route,
        Ok(None) => return json!({"error": format!("HTTPRoute {namespace}/{name} not found")}),
        Err(err) => {
            return json!({"error": format!("cannot read HTTPRoute {namespace}/{name}: {err}")});
        }
    };
    let Some(rule) = target.route.as_ref() else {
        return Value::Null;
    };
    match locate(&route, rule, stable, canary) {
        Ok(view) => {
            let (stable, canary) = view.effective();
            json!({"stable": stable, "canary": canary, "generation": view.generation, "parentsAccepted": view.parents_accepted})
        }
        Err(err) => json!({"error": err.to_string()}),
    }
}

pub(super) fn snapshot(rollout: &InferenceRollout, route: Option<Value>) -> Value {
    let status = rollout.status.clone().unwrap_or_default();
    let mut body = json!({
        "namespace": rollout.namespace(),
        "name": rollout.name_any(),
        "resourceVersion": rollout.resource_version(),
        "phase": status.phase.unwrap_or(Phase::Pending),
        "currentStep": status.current_step.unwrap_or(0),
        "steps": rollout.spec.strategy.steps.iter().map(|s| s.weight).collect::<Vec<_>>(),
        "weights": status.weights,
        "pause": status.pause,
        "abort": status.abort,
        "intent": status.intent,
        "observedIntentNonce": status.observed_intent_nonce,
        "conditions": status.conditions,
        "verdicts": status.analysis.map(|a| a.last).unwrap_or_default(),
    });
    if let Some(route) = route {
        body["route"] = route;
    }
    body
}

pub(super) fn with_etag(rollout: &InferenceRollout, mut response: Response) -> Response {
    if let Some(version) = rollout.resource_version()
        && let Ok(value) = HeaderValue::from_str(&format!("\"{version}\""))
    {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

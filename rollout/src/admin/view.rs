//! Reading rollouts for answers: fetching one, the weights on its route, the
//! JSON snapshot and the `ETag`.

use axum::http::{HeaderValue, header};
use axum::response::Response;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use switchyard_api::rollout::{Phase, RouteTarget};
use switchyard_api::{HttpRoute, InferenceRollout};

use super::{AdminError, AdminState, Store};
use crate::local::store::LocalStore;
use crate::route::locate;

pub(super) async fn fetch(
    state: &AdminState,
    namespace: &str,
    name: &str,
) -> Result<InferenceRollout, AdminError> {
    let found = match &state.store {
        Store::Kubernetes(client) => {
            let api: Api<InferenceRollout> = Api::namespaced(client.clone(), namespace);
            api.get_opt(name).await.map_err(|err| {
                AdminError::from_kube(&format!("get InferenceRollout {namespace}/{name}"), err)
            })?
        }
        Store::Local(store) => store
            .get(namespace, name)
            .map_err(|err| AdminError::Upstream(err.to_string()))?,
    };
    found.ok_or_else(|| {
        AdminError::NotFound(format!("InferenceRollout {namespace}/{name} not found"))
    })
}

/// Every rollout.
pub(super) async fn fetch_all(state: &AdminState) -> Result<Vec<InferenceRollout>, AdminError> {
    match &state.store {
        Store::Kubernetes(client) => {
            let api: Api<InferenceRollout> = Api::all(client.clone());
            let list = api
                .list(&kube::api::ListParams::default())
                .await
                .map_err(|err| AdminError::from_kube("list InferenceRollouts", err))?;
            Ok(list.items)
        }
        Store::Local(store) => store
            .list()
            .map_err(|err| AdminError::Upstream(err.to_string())),
    }
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
    let client = match &state.store {
        Store::Kubernetes(client) => client,
        Store::Local(store) => return local_route_weights(store, rollout),
    };
    let api: Api<HttpRoute> = Api::namespaced(client.clone(), namespace);
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

fn local_route_weights(store: &LocalStore, rollout: &InferenceRollout) -> Value {
    let target = &rollout.spec.target;
    let (Some(route), Some(stable), Some(canary)) = (&target.route, &target.stable, &target.canary)
    else {
        return json!({"error": "the rollout has no route target"});
    };
    let read = crate::local::route_path(store.manifest_dir(), &route.name)
        .and_then(|path| crate::local::read_route(&path, route, stable, canary));
    match read {
        Ok(view) => {
            let (stable, canary) = view.effective();
            json!({"stable": stable, "canary": canary})
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

//! Reading rollouts for answers: fetching one, the weights on its route, the
//! JSON snapshot and the `ETag`.

use axum::http::{HeaderValue, header};
use axum::response::Response;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use switchyard_api::InferenceRollout;
use switchyard_api::rollout::Phase;

use super::{AdminError, AdminState, Store};
use crate::local::store::LocalStore;

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

/// The weights on the route: the file's in local mode, the controller's
/// record on a cluster; or why there are none.
pub(super) async fn route_weights(state: &AdminState, rollout: &InferenceRollout) -> Value {
    let target = &rollout.spec.target;
    if target.route.is_none() || target.stable.is_none() || target.canary.is_none() {
        return json!({"error": "the rollout has no route target"});
    }
    if let Store::Local(store) = &state.store {
        return local_route_weights(store, rollout);
    }
    // On a cluster the caller was only checked for `get inferencerollouts`:
    // reading the HTTPRoute with the controller's own rights would show them
    // an object they may not be allowed to read. The controller's record of
    // what the route carries (status.weights.applied) is theirs to see.
    match rollout
        .status
        .as_ref()
        .and_then(|s| s.weights.as_ref())
        .and_then(|w| w.applied.as_ref())
    {
        Some(applied) => json!({
            "stable": applied.stable,
            "canary": applied.canary,
            "generation": applied.route_generation,
            "parentsAccepted": applied.verified_at.is_some(),
            "source": "status",
        }),
        None => json!({"error": "the controller has not recorded the route's weights yet"}),
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

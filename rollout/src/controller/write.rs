//! Writes for one reconcile: route weights, status, events.

use json_patch::Patch as JsonPatch;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;
use switchyard_api::rollout::{InferenceRolloutStatus, Weights};
use switchyard_api::{HttpRoute, InferenceRollout, InferenceRolloutSpec};

use super::FIELD_MANAGER;
use crate::error::{Error, Result};
use crate::plan::PlannedEvent;
use crate::route::{RouteView, weight_patch};

/// Patches the two weights. A failed `test` (422) or a conflict (409) is
/// [`Error::Conflict`]: someone changed the route since we read it.
pub async fn route_weights(
    client: &Client,
    namespace: &str,
    spec: &InferenceRolloutSpec,
    (route, view): &(HttpRoute, RouteView),
    weights: Weights,
) -> Result<()> {
    let rule_name = spec
        .target
        .route
        .as_ref()
        .map(|r| r.rule_name.as_str())
        .unwrap_or_default();
    let patch: JsonPatch = weight_patch(route, view, rule_name, weights)?;
    let name = route.name_any();
    let api: Api<HttpRoute> = Api::namespaced(client.clone(), namespace);
    match guarded_patch(&api, &name, patch).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::Conflict { route: name }),
        Err(source) => Err(Error::Kube {
            action: format!("patch HTTPRoute {namespace}/{name} weights"),
            source,
        }),
    }
}

/// Sends a JSON Patch whose `test` operations guard what we read. `Ok(false)`
/// when the guard failed (422) or the object changed under us (409): someone
/// else wrote it since, which the caller reports as drift, not as an error.
pub(super) async fn guarded_patch<K>(
    api: &Api<K>,
    name: &str,
    patch: JsonPatch,
) -> std::result::Result<bool, kube::Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    match api.patch(name, &params, &Patch::<()>::Json(patch)).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 || status.code == 422 => Ok(false),
        Err(source) => Err(source),
    }
}

/// The status without the admin API's fields (the intent and the nonces of
/// earlier intents), which the controller never writes.
pub fn strip_intent(status: &InferenceRolloutStatus) -> InferenceRolloutStatus {
    InferenceRolloutStatus {
        intent: None,
        recent_intent_nonces: Vec::new(),
        ..status.clone()
    }
}

/// Server-side applies the status under [`FIELD_MANAGER`].
pub async fn status(
    client: &Client,
    rollout: &InferenceRollout,
    status: &InferenceRolloutStatus,
) -> Result<()> {
    let namespace = rollout.namespace().unwrap_or_default();
    let name = rollout.name_any();
    let api: Api<InferenceRollout> = Api::namespaced(client.clone(), &namespace);
    let body = json!({
        "apiVersion": InferenceRollout::api_version(&()),
        "kind": InferenceRollout::kind(&()),
        "status": strip_intent(status),
    });
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await
    .map_err(|source| Error::Kube {
        action: format!("apply status of InferenceRollout {namespace}/{name}"),
        source,
    })?;
    Ok(())
}

/// Publishes one planned event on the rollout.
pub async fn event(
    recorder: &Recorder,
    rollout: &InferenceRollout,
    event: &PlannedEvent,
) -> Result<(), kube::Error> {
    let note: String = event.message.chars().take(1000).collect();
    recorder
        .publish(
            &Event {
                type_: if event.warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: event.reason.into(),
                note: Some(note),
                action: event.reason.into(),
                secondary: None,
            },
            &rollout.object_ref(&()),
        )
        .await
}

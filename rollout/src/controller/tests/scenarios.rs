//! Reconcile scenarios: first write, conflict, restart mid-step, drift, an
//! admin intent, a missing route, an apiserver error.

use std::time::Duration;

use kube::runtime::controller::Action;
use serde_json::{Value, json};
use switchyard_api::rollout::{IntentAction, Phase};

use super::fixtures::{
    Expect, ROUTE_PATH, ROUTE_QUERY, STATUS_PATH, STATUS_QUERY, context, now, reads, rollout,
    route, serve,
};
use crate::controller::reconcile;
use crate::plan::{Observations, RouteObservation, plan};
use crate::route::locate;

/// What the apiserver answers to a status apply: the whole object.
fn rollout_reply() -> Value {
    serde_json::to_value(rollout(Value::Null).as_ref()).unwrap()
}

fn status_apply(check: impl FnOnce(&Value) + Send + 'static) -> Expect {
    Expect::patch(STATUS_PATH, STATUS_QUERY, move |body| {
        assert_eq!(body["apiVersion"], "rollout.switchyard.dev/v1alpha1");
        assert_eq!(body["kind"], "InferenceRollout");
        assert!(
            body["status"].get("intent").is_none(),
            "the controller never writes intent: {body:#}"
        );
        check(&body["status"]);
    })
    .answering(200, rollout_reply())
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap()
}

/// The status a previous controller process left: it wrote the first step's
/// weight and saw it verified, 30 s ago.
fn status_left_by_previous_process() -> Value {
    let object = rollout(Value::Null);
    let spec = &object.spec;
    let target = spec.target.route.as_ref().unwrap();
    let (stable, canary) = (
        spec.target.stable.as_ref().unwrap(),
        spec.target.canary.as_ref().unwrap(),
    );
    let earlier = k8s_openapi::jiff::Timestamp::from_second(now().as_second() - 30).unwrap();
    let mut status = Default::default();
    for weights in [(1, 0), (9000, 1000)] {
        let value = route(weights.0, weights.1);
        let view = locate(
            &serde_json::from_value(value).unwrap(),
            target,
            stable,
            canary,
        )
        .unwrap();
        let observations = Observations {
            now: earlier,
            generation: Some(2),
            route: RouteObservation::Found(view),
            canary_ready: 2,
            stable_ready: 3,
            analysis: None,
            conflict_with: None,
        };
        status = plan(spec, &status, &observations).status;
    }
    serde_json::to_value(status).unwrap()
}

#[tokio::test]
async fn first_reconcile_applies_status_then_sends_the_guarded_json_patch() {
    let (ctx, handle) = context();
    let mut calls = reads(route(1, 0), 2, 3);
    calls.push(status_apply(|status| {
        assert_eq!(status["phase"], "Progressing");
        assert_eq!(status["currentStep"], 0);
        assert_eq!(status["observedGeneration"], 2);
        assert_eq!(
            status["weights"]["desired"],
            json!({"stable": 9000, "canary": 1000})
        );
        assert!(status["weights"].get("applied").is_none());
        assert_eq!(condition(status, "RouteApplied")["reason"], "WeightPending");
        assert_eq!(condition(status, "Ready")["observedGeneration"], 2);
    }));
    calls.push(
        Expect::patch(ROUTE_PATH, ROUTE_QUERY, |body| {
            assert_eq!(
                body,
                json!([
                    {"op": "test", "path": "/spec/rules/1/name", "value": "chat"},
                    {"op": "test", "path": "/spec/rules/1/backendRefs/0/name", "value": "qwen"},
                    {"op": "test", "path": "/spec/rules/1/backendRefs/0/weight", "value": 1},
                    {"op": "test", "path": "/spec/rules/1/backendRefs/1/name", "value": "qwen-next"},
                    {"op": "test", "path": "/spec/rules/1/backendRefs/1/weight", "value": 0},
                    {"op": "replace", "path": "/spec/rules/1/backendRefs/0/weight", "value": 9000},
                    {"op": "replace", "path": "/spec/rules/1/backendRefs/1/weight", "value": 1000},
                ])
            );
        })
        .answering(200, route(9000, 1000)),
    );
    calls.push(Expect::event("Started"));
    let server = serve(handle, calls);
    let action = reconcile(rollout(Value::Null), ctx.clone()).await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(5)));
    server.await.unwrap();
    assert!(
        ctx.metrics
            .encode()
            .contains("switchyard_rollout_weight_writes_total{outcome=\"ok\"} 1")
    );
}

#[tokio::test]
async fn a_rejected_patch_becomes_an_event_and_the_status_is_still_written() {
    let (ctx, handle) = context();
    let mut calls = reads(route(1, 0), 2, 3);
    let invalid = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Invalid", "code": 422,
        "message": "the server rejected our request due to an error in our request"});
    calls.push(status_apply(|status| {
        assert_eq!(status["phase"], "Progressing")
    }));
    calls.push(Expect::patch(ROUTE_PATH, ROUTE_QUERY, |_| {}).answering(422, invalid));
    calls.push(Expect::event("Started"));
    calls.push(Expect::event("WeightWriteConflict"));
    let server = serve(handle, calls);
    reconcile(rollout(Value::Null), ctx.clone()).await.unwrap();
    server.await.unwrap();
    assert!(ctx.metrics.encode().contains("outcome=\"conflict\"} 1"));
}

#[tokio::test]
async fn restart_in_the_middle_of_a_step_only_reads() {
    let previous = status_left_by_previous_process();
    assert_eq!(previous["weights"]["applied"]["canary"], 1000);
    assert!(previous["weights"]["applied"]["verifiedAt"].is_string());
    let (ctx, handle) = context();
    let server = serve(handle, reads(route(9000, 1000), 2, 3));
    let action = reconcile(rollout(previous), ctx).await.unwrap();
    server.await.unwrap();
    // The first window is due 60 s after verification, which was 30 s ago.
    assert_eq!(action, Action::requeue(Duration::from_secs(30)));
}

#[tokio::test]
async fn someone_elses_weights_pause_the_rollout_without_touching_the_route() {
    let (ctx, handle) = context();
    let mut calls = reads(route(7000, 3000), 2, 3);
    calls.push(status_apply(|status| {
        assert_eq!(status["phase"], "Paused");
        assert_eq!(status["pause"]["reason"], "RouteDrift");
        assert_eq!(condition(status, "Ready")["reason"], "Paused");
    }));
    calls.push(Expect::event("RouteDrift"));
    let server = serve(handle, calls);
    reconcile(rollout(status_left_by_previous_process()), ctx)
        .await
        .unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn an_admin_promote_is_acknowledged_and_applied() {
    let mut previous = status_left_by_previous_process();
    previous["intent"] = json!({"action": "promote", "nonce": "k-1", "by": "alice", "at": "2027-01-15T07:59:59Z", "mode": "step"});
    let (ctx, handle) = context();
    let mut calls = reads(route(9000, 1000), 2, 3);
    calls.push(status_apply(|status| {
        assert_eq!(status["observedIntentNonce"], "k-1");
        assert_eq!(status["currentStep"], 1);
    }));
    calls.push(
        Expect::patch(ROUTE_PATH, ROUTE_QUERY, |body| {
            assert_eq!(body[5], json!({"op": "replace", "path": "/spec/rules/1/backendRefs/0/weight", "value": 5000}));
            assert_eq!(body[6], json!({"op": "replace", "path": "/spec/rules/1/backendRefs/1/weight", "value": 5000}));
        })
        .answering(200, route(5000, 5000)),
    );
    calls.push(Expect::event("AdminAction"));
    let server = serve(handle, calls);
    let object = rollout(previous);
    assert_eq!(
        object
            .status
            .as_ref()
            .unwrap()
            .intent
            .as_ref()
            .unwrap()
            .action,
        IntentAction::Promote
    );
    reconcile(object, ctx).await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn a_missing_route_is_reported_in_status() {
    let (ctx, handle) = context();
    let not_found = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
        "message": "httproutes.gateway.networking.k8s.io \"llm-route\" not found"});
    let mut calls = reads(Value::Null, 2, 3);
    calls[0] = Expect::get(ROUTE_PATH, Value::Null).answering(404, not_found);
    calls.push(status_apply(|status| {
        let ready = condition(status, "Ready");
        assert_eq!(ready["reason"], "RouteNotFound");
        assert_eq!(ready["message"], "HTTPRoute llm/llm-route not found");
        assert_eq!(
            status["phase"],
            serde_json::to_value(Phase::Progressing).unwrap()
        );
    }));
    calls.push(Expect::event("Started"));
    let server = serve(handle, calls);
    reconcile(rollout(Value::Null), ctx).await.unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn an_apiserver_failure_is_an_error_naming_the_call() {
    let (ctx, handle) = context();
    let failure = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "InternalError", "code": 500, "message": "etcd timeout"});
    let server = serve(
        handle,
        vec![Expect::get(ROUTE_PATH, Value::Null).answering(500, failure)],
    );
    let err = reconcile(rollout(Value::Null), ctx).await.unwrap_err();
    server.await.unwrap();
    assert_eq!(
        err.to_string(),
        "Kubernetes API: get HTTPRoute llm/llm-route"
    );
    assert_eq!(err.kind(), "kube");
}

//! `reconcile` with the EPP source: the pickers are found through the pools'
//! `endpointPickerRef` Services, and what stops the scrape reaches the status.

use serde_json::{Value, json};
use switchyard_api::InferenceRollout;

use super::fixtures::{Expect, STATUS_PATH, STATUS_QUERY, context, now, pool, reads, route, serve};
use crate::controller::reconcile;
use crate::plan::{Observations, RouteObservation, plan};
use crate::route::locate;

/// The fixture rollout judging server errors on the EPP source.
fn rollout_with_metrics(status: Value) -> InferenceRollout {
    let mut value = serde_json::to_value(super::fixtures::rollout(Value::Null).as_ref()).unwrap();
    value["spec"]["analysis"] = json!({
        "source": {"epp": {"scrapeInterval": "5s"}},
        "metrics": [{"name": "server-errors", "type": "ErrorRate", "statusClasses": ["5xx"], "max": 0.01}]
    });
    if !status.is_null() {
        value["status"] = status;
    }
    serde_json::from_value(value).unwrap()
}

/// The status after the first step's weights were written and verified 90 s
/// ago: a window is due now.
fn verified_90_seconds_ago() -> Value {
    let object = rollout_with_metrics(Value::Null);
    let spec = &object.spec;
    let target = spec.target.route.as_ref().unwrap();
    let (stable, canary) = (
        spec.target.stable.as_ref().unwrap(),
        spec.target.canary.as_ref().unwrap(),
    );
    let earlier = k8s_openapi::jiff::Timestamp::from_second(now().as_second() - 90).unwrap();
    let mut status = Default::default();
    for weights in [(1, 0), (9000, 1000)] {
        let view = locate(
            &serde_json::from_value(route(weights.0, weights.1)).unwrap(),
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

fn service(name: &'static str, ports: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": "llm"},
           "spec": {"ports": ports}})
}

#[tokio::test]
async fn what_keeps_the_pickers_from_being_scraped_is_reported_in_the_status() {
    let status = verified_90_seconds_ago();
    assert!(
        status["weights"]["applied"]["verifiedAt"].is_string(),
        "{status:#}"
    );
    let (ctx, handle) = context();
    let mut calls = reads(route(9000, 1000), 2, 3);
    calls.extend([
        Expect::get(
            "/apis/inference.networking.k8s.io/v1/namespaces/llm/inferencepools/qwen-next",
            pool("qwen-next"),
        ),
        Expect::get(
            "/api/v1/namespaces/llm/services/qwen-next-epp",
            service(
                "qwen-next-epp",
                json!([{"name": "grpc-ext-proc", "port": 9002}]),
            ),
        ),
        Expect::get(
            "/apis/inference.networking.k8s.io/v1/namespaces/llm/inferencepools/qwen",
            pool("qwen"),
        ),
        Expect::get("/api/v1/namespaces/llm/services/qwen-epp", Value::Null).answering(
            404,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "services \"qwen-epp\" not found", "reason": "NotFound", "code": 404}),
        ),
        Expect::patch(STATUS_PATH, STATUS_QUERY, |body| {
            let last = &body["status"]["analysis"]["last"][0];
            assert_eq!(last["name"], "server-errors", "{body:#}");
            assert_eq!(last["verdict"], "NoData", "{body:#}");
            let message = last["message"].as_str().unwrap();
            assert!(
                message.contains(
                    "Service llm/qwen-next-epp has no port named http-metrics or metrics"
                ),
                "{message}"
            );
            // Both arms' problems at once.
            assert!(
                message.contains("; Service llm/qwen-epp (the endpointPickerRef of InferencePool llm/qwen) not found"),
                "{message}"
            );
        })
        .answering(
            200,
            serde_json::to_value(rollout_with_metrics(Value::Null)).unwrap(),
        ),
        Expect::event("NoData"),
    ]);
    let server = serve(handle, calls);
    reconcile(rollout_with_metrics(status).into(), ctx)
        .await
        .unwrap();
    server.await.unwrap();
}

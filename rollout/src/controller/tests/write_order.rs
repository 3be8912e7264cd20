//! M4: the status (with the weights about to be written) is persisted before
//! the route, so the controller never reads its own write as drift.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::fixtures::{
    Expect, ROUTE_PATH, ROUTE_QUERY, STATUS_PATH, STATUS_QUERY, context, reads, rollout, route,
    serve,
};
use crate::controller::reconcile;

fn rollout_reply() -> Value {
    serde_json::to_value(rollout(Value::Null).as_ref()).unwrap()
}

#[tokio::test]
async fn m4_a_failed_status_write_leaves_the_route_untouched() {
    let (ctx, handle) = context();
    let failure = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "InternalError",
        "code": 500, "message": "etcd timeout"});
    let mut calls = reads(route(1, 0), 2, 3);
    calls.push(Expect::patch(STATUS_PATH, STATUS_QUERY, |_| {}).answering(500, failure));
    // No route patch may follow: `serve` fails on any further call.
    let server = serve(handle, calls);
    let err = reconcile(rollout(Value::Null), ctx).await.unwrap_err();
    server.await.unwrap();
    assert!(err.to_string().contains("apply status"), "{err}");
}

#[tokio::test]
async fn m4_the_next_reconcile_reads_the_landed_write_as_ours_not_as_drift() {
    // First reconcile: the status (desired 9000/1000) is saved, then the route
    // is patched; the process dies before anything else.
    let saved = Arc::new(Mutex::new(Value::Null));
    let (ctx, handle) = context();
    let mut calls = reads(route(1, 0), 2, 3);
    let slot = saved.clone();
    calls.push(
        Expect::patch(STATUS_PATH, STATUS_QUERY, move |body| {
            *slot.lock().unwrap() = body["status"].clone();
        })
        .answering(200, rollout_reply()),
    );
    calls.push(Expect::patch(ROUTE_PATH, ROUTE_QUERY, |_| {}).answering(200, route(9000, 1000)));
    calls.push(Expect::event("Started"));
    let server = serve(handle, calls);
    reconcile(rollout(Value::Null), ctx).await.unwrap();
    server.await.unwrap();
    let persisted = saved.lock().unwrap().clone();
    assert_eq!(
        persisted["weights"]["desired"],
        json!({"stable": 9000, "canary": 1000})
    );

    // A fresh process: the route carries the weights it wrote.
    let (ctx, handle) = context();
    let mut calls = reads(route(9000, 1000), 2, 3);
    calls.push(
        Expect::patch(STATUS_PATH, STATUS_QUERY, |body| {
            let status = &body["status"];
            assert_eq!(status["phase"], "Progressing", "{status:#}");
            assert!(status.get("pause").is_none(), "{status:#}");
            assert_eq!(status["weights"]["applied"]["canary"], 1000);
        })
        .answering(200, rollout_reply()),
    );
    calls.push(Expect::event("WeightChanged"));
    let server = serve(handle, calls);
    reconcile(rollout(persisted), ctx).await.unwrap();
    server.await.unwrap();
}

//! Lease decisions (table) and the elector against the tower-test apiserver.

use std::time::Duration;

use http::Method;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::{LeaderElector, LeaseStep, held_by, next_step};
use crate::controller::tests::fixtures::{Expect, context, now, serve};

const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/llm/leases/switchyard-rollout";

fn lease(holder: &str, renewed_secs_ago: i64) -> Value {
    let renewed = Timestamp::from_second(now().as_second() - renewed_secs_ago).unwrap();
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "switchyard-rollout", "namespace": "llm", "resourceVersion": "12"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                 "acquireTime": "2027-01-15T07:00:00.000000Z",
                 "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_string(),
                 "leaseTransitions": 3}
    })
}

fn parsed(value: Value) -> Lease {
    serde_json::from_value(value).unwrap()
}

#[test]
fn decisions_table() {
    let me = "pod-a";
    assert_eq!(next_step(None, me, now()), LeaseStep::Create);
    assert_eq!(
        next_step(Some(&parsed(lease("pod-a", 100))), me, now()),
        LeaseStep::Renew
    );
    assert_eq!(
        next_step(Some(&parsed(lease("", 0))), me, now()),
        LeaseStep::TakeOver
    );
    assert_eq!(
        next_step(Some(&parsed(lease("pod-b", 15))), me, now()),
        LeaseStep::TakeOver
    );
    assert_eq!(
        next_step(Some(&parsed(lease("pod-b", 5))), me, now()),
        LeaseStep::Follow {
            holder: "pod-b".into(),
            retry_after: Duration::from_secs(10)
        }
    );
    let mut no_times = parsed(lease("pod-b", 0));
    no_times.spec.as_mut().unwrap().renew_time = None;
    no_times.spec.as_mut().unwrap().acquire_time = None;
    assert_eq!(next_step(Some(&no_times), me, now()), LeaseStep::TakeOver);
}

#[test]
fn renewal_keeps_the_acquire_time_and_takeover_counts_a_transition() {
    let previous = parsed(lease("pod-a", 3)).spec.unwrap();
    let renewed = held_by(
        "pod-a",
        now(),
        Duration::from_secs(15),
        Some(&previous),
        &LeaseStep::Renew,
    );
    assert_eq!(renewed.acquire_time, previous.acquire_time);
    assert_eq!(renewed.lease_transitions, Some(3));
    assert_eq!(renewed.renew_time.unwrap().0, now());
    let taken = held_by(
        "pod-c",
        now(),
        Duration::from_secs(15),
        Some(&previous),
        &LeaseStep::TakeOver,
    );
    assert_eq!(taken.holder_identity.as_deref(), Some("pod-c"));
    assert_eq!(taken.lease_transitions, Some(4));
    assert_eq!(taken.acquire_time.unwrap().0, now());
}

fn elector(client: kube::Client) -> LeaderElector {
    LeaderElector::new(
        client,
        "llm",
        "switchyard-rollout",
        "pod-a",
        Duration::from_secs(15),
    )
}

#[tokio::test]
async fn creates_a_missing_lease() {
    let (ctx, handle) = context();
    let not_found = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"});
    let server = serve(
        handle,
        vec![
            Expect::get(PATH, Value::Null).answering(404, not_found),
            Expect {
                method: Method::POST,
                path: "/apis/coordination.k8s.io/v1/namespaces/llm/leases",
                query: &[],
                body: Box::new(|body| {
                    assert_eq!(body["metadata"]["name"], "switchyard-rollout");
                    assert_eq!(body["spec"]["holderIdentity"], "pod-a");
                    assert_eq!(body["spec"]["leaseDurationSeconds"], 15);
                    assert_eq!(body["spec"]["leaseTransitions"], 0);
                }),
                status: 201,
                reply: Value::Null,
            },
        ],
    );
    assert!(
        elector(ctx.client.clone())
            .try_acquire_or_renew(now())
            .await
            .unwrap()
    );
    server.await.unwrap();
}

#[tokio::test]
async fn follows_a_fresh_lease_held_by_another_replica_without_writing() {
    let (ctx, handle) = context();
    let server = serve(handle, vec![Expect::get(PATH, lease("pod-b", 2))]);
    assert!(
        !elector(ctx.client.clone())
            .try_acquire_or_renew(now())
            .await
            .unwrap()
    );
    server.await.unwrap();
}

#[tokio::test]
async fn takes_over_an_expired_lease_with_its_resource_version() {
    let (ctx, handle) = context();
    let server = serve(
        handle,
        vec![
            Expect::get(PATH, lease("pod-b", 60)),
            Expect {
                method: Method::PUT,
                path: PATH,
                query: &[],
                body: Box::new(|body| {
                    assert_eq!(body["metadata"]["resourceVersion"], "12");
                    assert_eq!(body["spec"]["holderIdentity"], "pod-a");
                    assert_eq!(body["spec"]["leaseTransitions"], 4);
                }),
                status: 200,
                reply: Value::Null,
            },
        ],
    );
    assert!(
        elector(ctx.client.clone())
            .try_acquire_or_renew(now())
            .await
            .unwrap()
    );
    server.await.unwrap();
}

#[tokio::test]
async fn losing_the_race_is_not_an_error() {
    let (ctx, handle) = context();
    let conflict = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "the object has been modified"});
    let server = serve(
        handle,
        vec![
            Expect::get(PATH, lease("pod-b", 60)),
            Expect {
                method: Method::PUT,
                path: PATH,
                query: &[],
                body: Box::new(|_| {}),
                status: 409,
                reply: conflict,
            },
        ],
    );
    assert!(
        !elector(ctx.client.clone())
            .try_acquire_or_renew(now())
            .await
            .unwrap()
    );
    server.await.unwrap();
}

#[tokio::test]
async fn an_apiserver_failure_is_an_error() {
    let (ctx, handle) = context();
    let failure = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "InternalError", "code": 500, "message": "boom"});
    let server = serve(
        handle,
        vec![Expect::get(PATH, Value::Null).answering(500, failure)],
    );
    let err = elector(ctx.client.clone())
        .try_acquire_or_renew(now())
        .await
        .unwrap_err();
    server.await.unwrap();
    assert_eq!(
        err.to_string(),
        "Kubernetes API: get Lease llm/switchyard-rollout"
    );
}

//! The controller's elector against the tower-test apiserver: the rules
//! themselves are tested with the runtime's election
//! (`switchyard_runtime::lease`), clock skew included.

use std::time::Duration;

use http::{Method, Response};
use k8s_openapi::jiff::Timestamp;
use kube::client::Body;
use serde_json::{Value, json};
use switchyard_runtime::lease::Candidate;

use super::LeaderElector;
use crate::controller::tests::fixtures::{Expect, Handle, context, now, serve};

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

fn elector(client: kube::Client) -> LeaderElector {
    LeaderElector::new(
        client,
        "llm",
        "switchyard-rollout",
        "pod-a",
        Duration::from_secs(15),
    )
}

/// Answers the next request, which must be `method` on the Lease, with `reply`.
async fn answer(handle: &mut Handle, method: Method, reply: Value) {
    let (request, send) = handle.next_request().await.unwrap();
    assert_eq!((request.method(), request.uri().path()), (&method, PATH));
    send.send_response(Response::new(Body::from(
        serde_json::to_vec(&reply).unwrap(),
    )));
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
            .try_acquire_or_renew(&mut Candidate::default())
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
            .try_acquire_or_renew(&mut Candidate::default())
            .await
            .unwrap()
    );
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn takes_over_a_lease_unchanged_for_its_duration_with_its_resource_version() {
    let (ctx, mut handle) = context();
    let elector = elector(ctx.client.clone());
    let mut candidate = Candidate::default();
    // Its renewTime is a minute old by our wall clock, but it was only just seen:
    // expiry is measured on our own clock from now.
    let (first, ()) = tokio::join!(
        elector.try_acquire_or_renew(&mut candidate),
        answer(&mut handle, Method::GET, lease("pod-b", 60)),
    );
    assert!(!first.unwrap());
    tokio::time::advance(Duration::from_secs(16)).await;
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
    assert!(elector.try_acquire_or_renew(&mut candidate).await.unwrap());
    server.await.unwrap();
}

#[tokio::test]
async fn losing_the_race_is_not_an_error() {
    let (ctx, handle) = context();
    let conflict = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "the object has been modified"});
    let server = serve(
        handle,
        vec![
            // Released by its last holder: free to take at once.
            Expect::get(PATH, lease("", 60)),
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
            .try_acquire_or_renew(&mut Candidate::default())
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
        .try_acquire_or_renew(&mut Candidate::default())
        .await
        .unwrap_err();
    server.await.unwrap();
    assert_eq!(
        err.to_string(),
        "Kubernetes API: get Lease llm/switchyard-rollout"
    );
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_loses_the_lease_reports_lost_leadership() {
    let (ctx, mut handle) = context();
    let elector = elector(ctx.client.clone());
    let renewing = async {
        answer(&mut handle, Method::GET, lease("pod-a", 3)).await;
        answer(&mut handle, Method::PUT, lease("pod-a", 0)).await;
    };
    let (candidate, ()) = tokio::join!(elector.acquire(), renewing);
    let (lost, ()) = tokio::join!(
        elector.hold(candidate),
        answer(&mut handle, Method::GET, lease("pod-b", 0)),
    );
    assert_eq!(
        lost.to_string(),
        "lost leadership: lost Lease llm/switchyard-rollout: another replica holds it"
    );
}

/// M5: a leader whose renewal hangs (the apiserver never answers) steps down
/// before its Lease can expire for the others, so two controllers never
/// reconcile at once.
#[tokio::test(start_paused = true)]
async fn m5_a_hung_renewal_makes_the_leader_step_down_before_its_lease_expires() {
    let (ctx, mut handle) = context();
    let elector = elector(ctx.client.clone());
    let mut candidate = Candidate::default();
    let not_found = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "reason": "NotFound", "code": 404, "message": "not found"});
    let create = async {
        let (request, send) = handle.next_request().await.unwrap();
        assert_eq!(request.method(), Method::GET);
        send.send_response(
            Response::builder()
                .status(404)
                .body(Body::from(serde_json::to_vec(&not_found).unwrap()))
                .unwrap(),
        );
        let (request, send) = handle.next_request().await.unwrap();
        assert_eq!(request.method(), Method::POST);
        send.send_response(
            Response::builder()
                .status(201)
                .body(Body::from(serde_json::to_vec(&lease("pod-a", 0)).unwrap()))
                .unwrap(),
        );
    };
    let (led, ()) = tokio::join!(elector.try_acquire_or_renew(&mut candidate), create);
    assert!(led.unwrap());
    let started = tokio::time::Instant::now();
    // Every renewal request is taken and never answered.
    let hang = tokio::spawn(async move {
        let mut pending = Vec::new();
        while let Some(call) = handle.next_request().await {
            pending.push(call);
        }
    });
    let lost = elector.hold(candidate).await;
    let held_for = started.elapsed();
    assert_eq!(lost.kind(), "lost_leadership", "{lost}");
    assert!(
        held_for < Duration::from_secs(15),
        "stepped down after {held_for:?}, past the 15 s lease others wait out"
    );
    hang.abort();
}

/// M5: a holder whose clock runs an hour ahead wrote a renewTime in our
/// future; the Lease still expires once it has been seen unchanged for its
/// duration on our own clock.
#[tokio::test(start_paused = true)]
async fn m5_a_renew_time_from_a_skewed_clock_does_not_keep_a_dead_leader() {
    let (ctx, mut handle) = context();
    let elector = elector(ctx.client.clone());
    let mut candidate = Candidate::default();
    let (first, ()) = tokio::join!(
        elector.try_acquire_or_renew(&mut candidate),
        answer(&mut handle, Method::GET, lease("pod-b", -3600)),
    );
    assert!(!first.unwrap());
    tokio::time::advance(Duration::from_secs(16)).await;
    let (second, ()) = tokio::join!(elector.try_acquire_or_renew(&mut candidate), async {
        answer(&mut handle, Method::GET, lease("pod-b", -3600)).await;
        answer(&mut handle, Method::PUT, lease("pod-a", 0)).await;
    },);
    assert!(second.unwrap());
}

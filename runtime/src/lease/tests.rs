//! The election rules, and the election against kube-rs's mock API server
//! (tower-test) on Tokio's paused clock: the EPP's cases, clock skew, the round
//! deadline and the renew-deadline step-down.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

use super::decision::lease_duration;
use super::*;

const NAMESPACE: &str = "inference";
const LEASE: &str = "epp-inference-llama.gateway-api-inference-extension.sigs.k8s.io";
const SECOND: Duration = Duration::from_secs(1);

fn spec(holder: Option<&str>, duration: Option<i32>, transitions: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: holder.map(str::to_owned),
        lease_duration_seconds: duration,
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

#[test]
fn identities_are_unique_per_incarnation() {
    let (first, second) = (default_identity("epp"), default_identity("epp"));
    assert_ne!(first, second);
    assert!(first.contains('_'), "{first}");
}

#[test]
fn decisions_cover_absent_free_own_live_and_expired_leases() {
    let default = 15 * SECOND;
    assert_eq!(decide(None, "a", Duration::ZERO, default), Decision::Create);
    assert_eq!(
        decide(Some(&spec(None, Some(15), 0)), "a", Duration::ZERO, default),
        Decision::Acquire
    );
    assert_eq!(
        decide(
            Some(&spec(Some(""), Some(15), 0)),
            "a",
            Duration::ZERO,
            default
        ),
        Decision::Acquire
    );
    assert_eq!(
        decide(
            Some(&spec(Some("a"), Some(15), 0)),
            "a",
            100 * SECOND,
            default
        ),
        Decision::Renew
    );
    let held = spec(Some("b"), Some(15), 0);
    assert_eq!(
        decide(Some(&held), "a", 15 * SECOND, default),
        Decision::Follow { holder: "b".into() },
        "a lease is live for its whole duration"
    );
    assert_eq!(
        decide(Some(&held), "a", 16 * SECOND, default),
        Decision::Acquire
    );
    // Without a (valid) duration the default applies.
    let unbounded = spec(Some("b"), Some(-3), 0);
    assert_eq!(
        decide(Some(&unbounded), "a", 10 * SECOND, default),
        Decision::Follow { holder: "b".into() }
    );
    assert_eq!(
        decide(Some(&unbounded), "a", 16 * SECOND, default),
        Decision::Acquire
    );
    assert_eq!(lease_duration(&spec(None, None, 0), default), default);
    assert_eq!(lease_duration(&spec(None, Some(4), 0), default), 4 * SECOND);
}

#[test]
fn written_specs_count_transitions_and_keep_acquire_time_on_renewal() {
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    let later = Timestamp::from_second(1_800_000_002).unwrap();
    let created = next_spec(&Decision::Create, None, "a", now, 15 * SECOND);
    assert_eq!(created.holder_identity.as_deref(), Some("a"));
    assert_eq!(created.lease_duration_seconds, Some(15));
    assert_eq!(created.lease_transitions, Some(0));
    assert_eq!(created.acquire_time, Some(MicroTime(now)));

    let renewed = next_spec(&Decision::Renew, Some(&created), "a", later, 15 * SECOND);
    assert_eq!(renewed.acquire_time, Some(MicroTime(now)));
    assert_eq!(renewed.renew_time, Some(MicroTime(later)));
    assert_eq!(renewed.lease_transitions, Some(0));

    let taken = next_spec(
        &Decision::Acquire,
        Some(&spec(Some("b"), Some(15), 4)),
        "a",
        later,
        15 * SECOND,
    );
    assert_eq!(taken.holder_identity.as_deref(), Some("a"));
    assert_eq!(taken.lease_transitions, Some(5));
    let freed = released_spec(&taken, later);
    assert_eq!(freed.holder_identity, None);
    assert_eq!(freed.lease_duration_seconds, Some(1));
    let retaken = next_spec(&Decision::Acquire, Some(&freed), "a", later, 15 * SECOND);
    assert_eq!(
        retaken.lease_transitions,
        Some(5),
        "a free lease changes no hands"
    );
}

type ApiHandle = Handle<Request<Body>, Response<Body>>;

/// The next request, which must be `method` on `path`, with its JSON body.
async fn expect(
    handle: &mut ApiHandle,
    method: Method,
    path: &str,
) -> (Value, SendResponse<Response<Body>>) {
    let (request, respond) = handle
        .next_request()
        .await
        .expect("the election made a request");
    assert_eq!(
        (request.method(), request.uri().path()),
        (&method, path),
        "{}",
        request.uri()
    );
    let bytes = request.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (body, respond)
}

fn lease_path() -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{LEASE}")
}

fn lease_json(holder: &str, renew: &str, version: &str, transitions: i32) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": LEASE, "namespace": NAMESPACE, "resourceVersion": version},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 3,
            "acquireTime": "2026-01-01T00:00:00.000000Z",
            "renewTime": renew,
            "leaseTransitions": transitions,
        },
    })
}

fn reply(code: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string().into_bytes()));
    *response.status_mut() = code;
    response
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": reason, "code": code, "message": reason})
}

/// The running election: its handle on the mock API, leadership, the stop
/// trigger and the task.
type Started = (
    ApiHandle,
    watch::Receiver<bool>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

/// An election on the mock API: a 3 s lease, 2 s renew deadline, a round a second.
fn election() -> (LeaderElection, ApiHandle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, NAMESPACE);
    let mut election = LeaderElection::new(client, NAMESPACE, LEASE, "epp-a");
    election.lease_duration = 3 * SECOND;
    election.renew_deadline = 2 * SECOND;
    election.retry_period = SECOND;
    (election, handle)
}

fn start() -> Started {
    let (election, handle) = election();
    let (leader_tx, leader) = watch::channel(false);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(election.run(leader_tx, async move {
        let _ = stopped.await;
    }));
    (handle, leader, stop, task)
}

async fn until(leader: &mut watch::Receiver<bool>, wanted: bool) {
    let reached = tokio::time::timeout(30 * SECOND, leader.wait_for(|l| *l == wanted)).await;
    assert!(reached.is_ok(), "leadership never became {wanted}");
}

#[tokio::test(start_paused = true)]
async fn creates_the_absent_lease_renews_it_and_releases_it_on_shutdown() {
    let (mut api, mut leader, stop, task) = start();
    let (_, respond) = expect(&mut api, Method::GET, &lease_path()).await;
    respond.send_response(reply(StatusCode::NOT_FOUND, &status(404, "NotFound")));
    let (created, respond) = expect(
        &mut api,
        Method::POST,
        &format!("/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"),
    )
    .await;
    assert_eq!(created["metadata"]["name"], LEASE);
    assert_eq!(created["spec"]["holderIdentity"], "epp-a");
    assert_eq!(created["spec"]["leaseDurationSeconds"], 3);
    assert_eq!(created["spec"]["leaseTransitions"], 0);
    let mut stored = created.clone();
    stored["metadata"]["resourceVersion"] = json!("1");
    respond.send_response(reply(StatusCode::CREATED, &stored));
    until(&mut leader, true).await;

    let (_, respond) = expect(&mut api, Method::GET, &lease_path()).await;
    let old_renewal = "2026-01-01T00:00:00.000000Z";
    respond.send_response(reply(
        StatusCode::OK,
        &lease_json("epp-a", old_renewal, "7", 0),
    ));
    let (renewed, respond) = expect(&mut api, Method::PUT, &lease_path()).await;
    assert_eq!(
        renewed["metadata"]["resourceVersion"], "7",
        "the replace is conditional"
    );
    assert_eq!(renewed["spec"]["holderIdentity"], "epp-a");
    assert_ne!(renewed["spec"]["renewTime"], old_renewal);
    respond.send_response(reply(StatusCode::OK, &renewed));
    assert!(*leader.borrow());

    stop.send(()).unwrap();
    let (_, respond) = expect(&mut api, Method::GET, &lease_path()).await;
    respond.send_response(reply(
        StatusCode::OK,
        &lease_json("epp-a", old_renewal, "8", 0),
    ));
    let (released, respond) = expect(&mut api, Method::PUT, &lease_path()).await;
    assert_eq!(released["metadata"]["resourceVersion"], "8");
    assert!(
        released["spec"].get("holderIdentity").is_none(),
        "{released}"
    );
    assert_eq!(released["spec"]["leaseDurationSeconds"], 1);
    respond.send_response(reply(StatusCode::OK, &released));
    task.await.unwrap();
    assert!(!*leader.borrow());
}

#[tokio::test(start_paused = true)]
async fn takes_over_an_expired_lease_and_follows_when_beaten_to_it() {
    let (mut api, leader, stop, task) = start();
    let held = lease_json("epp-b", "2026-01-01T00:00:00.000000Z", "3", 2);
    let mut reads = 0;
    let attempt = loop {
        let (request, respond) = api.next_request().await.unwrap();
        if request.method() == Method::GET {
            reads += 1;
            respond.send_response(reply(StatusCode::OK, &held));
            continue;
        }
        assert_eq!(
            (request.method(), request.uri().path()),
            (&Method::PUT, lease_path().as_str())
        );
        let bytes = request.into_body().collect().await.unwrap().to_bytes();
        break (serde_json::from_slice::<Value>(&bytes).unwrap(), respond);
    };
    // Unchanged for more than the 3 s lease, at one read a second.
    assert!(reads >= 4, "took over after {reads} reads");
    let (body, respond) = attempt;
    assert_eq!(body["metadata"]["resourceVersion"], "3");
    assert_eq!(body["spec"]["holderIdentity"], "epp-a");
    assert_eq!(body["spec"]["leaseTransitions"], 3);
    // Another standby won the race.
    respond.send_response(reply(StatusCode::CONFLICT, &status(409, "Conflict")));

    let (_, respond) = expect(&mut api, Method::GET, &lease_path()).await;
    respond.send_response(reply(
        StatusCode::OK,
        &lease_json("epp-c", "2026-01-01T00:00:05.000000Z", "4", 3),
    ));
    let (_, respond) = expect(&mut api, Method::GET, &lease_path()).await;
    respond.send_response(reply(
        StatusCode::OK,
        &lease_json("epp-c", "2026-01-01T00:00:06.000000Z", "5", 3),
    ));
    assert!(
        !leader.has_changed().unwrap() && !*leader.borrow(),
        "never led"
    );

    stop.send(()).unwrap();
    let finished = tokio::time::timeout(10 * SECOND, task).await;
    finished.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_cannot_renew_steps_down_before_the_lease_expires() {
    let (mut api, mut leader, stop, task) = start();
    let (_, respond) = expect(&mut api, Method::GET, &lease_path()).await;
    respond.send_response(reply(StatusCode::NOT_FOUND, &status(404, "NotFound")));
    let (created, respond) = expect(
        &mut api,
        Method::POST,
        &format!("/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"),
    )
    .await;
    respond.send_response(reply(StatusCode::CREATED, &created));
    until(&mut leader, true).await;
    let led_at = Instant::now();

    let failing = Arc::new(status(500, "InternalError"));
    let serve_errors = tokio::spawn(async move {
        while let Some((_, respond)) = api.next_request().await {
            respond.send_response(reply(StatusCode::INTERNAL_SERVER_ERROR, &failing));
        }
    });
    until(&mut leader, false).await;
    let led_for = led_at.elapsed();
    assert!(
        led_for >= 2 * SECOND && led_for < 3 * SECOND,
        "stepped down after {led_for:?}"
    );

    stop.send(()).unwrap();
    tokio::time::timeout(10 * SECOND, task)
        .await
        .unwrap()
        .unwrap();
    serve_errors.abort();
}

#[tokio::test(start_paused = true)]
async fn a_leader_whose_renewal_conflicts_steps_down_at_once() {
    let (mut api, mut leader, stop, task) = start();
    let (_, respond) = expect(&mut api, Method::GET, &lease_path()).await;
    respond.send_response(reply(StatusCode::NOT_FOUND, &status(404, "NotFound")));
    let (created, respond) = expect(
        &mut api,
        Method::POST,
        &format!("/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"),
    )
    .await;
    respond.send_response(reply(StatusCode::CREATED, &created));
    until(&mut leader, true).await;

    // Someone rewrote the lease between our read and our write.
    let (_, respond) = expect(&mut api, Method::GET, &lease_path()).await;
    respond.send_response(reply(
        StatusCode::OK,
        &lease_json("epp-a", "2026-01-01T00:00:00.000000Z", "7", 0),
    ));
    let (_, respond) = expect(&mut api, Method::PUT, &lease_path()).await;
    respond.send_response(reply(StatusCode::CONFLICT, &status(409, "Conflict")));
    until(&mut leader, false).await;

    stop.send(()).unwrap();
    tokio::time::timeout(10 * SECOND, task)
        .await
        .unwrap()
        .unwrap();
}

mod deadlines;
mod skew;

//! The source's I/O shell against kube-rs's mock API server (tower-test):
//! the requests it makes and the [`PoolState`]s it publishes.

use std::sync::Mutex;

use http::{Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower_test::mock::{Handle, SendResponse};

use super::tests::{legacy_pool_json, objective_json, pod_json, pool_json, rewrite_json};
use super::*;
use std::collections::HashMap;

const X_K8S: &str = "inference.networking.x-k8s.io/v1alpha2";
const LLM_D: &str = "llm-d.ai/v1alpha2";
const NOT_FOUND: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","code":404}"#;

type Respond = SendResponse<Response<Body>>;

fn json_response(value: &Value) -> Response<Body> {
    Response::new(Body::from(value.to_string().into_bytes()))
}

fn status(code: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(body.as_bytes().to_vec()));
    *response.status_mut() = code;
    response
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "10"}, "items": items})
}

fn events(events: &[(&str, Value)]) -> Response<Body> {
    let body: String = events
        .iter()
        .map(|(kind, object)| format!("{}\n", json!({"type": kind, "object": object})))
        .collect();
    Response::new(Body::from(body.into_bytes()))
}

/// What the fake API server does with one request.
enum Reply {
    Now(Response<Body>),
    /// Keep the watch open with no events.
    Hold,
    /// Answer the watch with the next batch the test sends.
    Script,
}

/// Serves requests with `route(path, is_watch, uri)`, recording every URI.
/// Scripted watches of one path are answered in order from `script`.
async fn serve(
    mut handle: Handle<Request<Body>, Response<Body>>,
    seen: Arc<Mutex<Vec<String>>>,
    mut script: mpsc::UnboundedReceiver<Response<Body>>,
    route: impl Fn(&str, bool, &str) -> Reply,
) {
    let mut held: Vec<Respond> = Vec::new();
    let mut waiting: Option<Respond> = None;
    loop {
        tokio::select! {
            request = handle.next_request() => {
                let Some((request, respond)) = request else { return };
                let uri = request.uri().to_string();
                seen.lock().unwrap().push(uri.clone());
                let path = request.uri().path().to_owned();
                match route(&path, uri.contains("watch=true"), &uri) {
                    Reply::Now(response) => respond.send_response(response),
                    Reply::Hold => held.push(respond),
                    Reply::Script => waiting = Some(respond),
                }
            }
            Some(response) = script.recv(), if waiting.is_some() => {
                if let Some(respond) = waiting.take() {
                    respond.send_response(response);
                }
            }
        }
    }
}

async fn wait_for(
    states: &mut watch::Receiver<Arc<PoolState>>,
    what: &str,
    done: impl Fn(&PoolState) -> bool,
) -> Arc<PoolState> {
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let current = Arc::clone(&states.borrow_and_update());
            if done(&current) {
                return current;
            }
            states.changed().await.unwrap();
        }
    })
    .await;
    match found {
        Ok(state) => state,
        Err(_) => panic!(
            "timed out waiting for {what}; last state: {:?}",
            states.borrow()
        ),
    }
}

/// The running source: its states, the recorded URIs, the script of pool
/// watch answers, the shutdown trigger and the task.
type Started = (
    watch::Receiver<Arc<PoolState>>,
    Arc<Mutex<Vec<String>>>,
    mpsc::UnboundedSender<Response<Body>>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<()>>,
);

fn start(route: impl Fn(&str, bool, &str) -> Reply + Send + 'static) -> Started {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (script_tx, script_rx) = mpsc::unbounded_channel();
    tokio::spawn(serve(handle, Arc::clone(&seen), script_rx, route));
    let client = Client::new(service, "inference");
    let (updates, states) = watch::channel(Arc::new(PoolState::default()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let source =
        KubernetesSource::new(client, "inference", "llama").with_debounce(Duration::from_millis(5));
    assert_eq!(source.kind(), "kubernetes");
    let task = tokio::spawn(source.run(updates, async move {
        let _ = stopped.await;
    }));
    (states, seen, script_tx, stop, task)
}

#[tokio::test]
async fn publishes_the_pool_its_pods_objectives_and_rewrites() {
    let pods_listed = Arc::new(Mutex::new(0));
    let pods_counter = Arc::clone(&pods_listed);
    let (mut states, seen, _script, stop, task) = start(move |path, watch, _uri| {
        let ns = "/namespaces/inference/";
        match (path, watch) {
            (p, false)
                if p == format!("/apis/inference.networking.k8s.io/v1{ns}inferencepools") =>
            {
                Reply::Now(json_response(&list(
                    "InferencePool",
                    vec![pool_json("llama", 8000, "llama")],
                )))
            }
            (p, false) if p == format!("/api/v1{ns}pods") => {
                let mut count = pods_counter.lock().unwrap();
                *count += 1;
                if *count == 1 {
                    // A transient failure: retried with backoff.
                    return Reply::Now(status(StatusCode::INTERNAL_SERVER_ERROR, "etcd timeout"));
                }
                Reply::Now(json_response(&list(
                    "Pod",
                    vec![
                        pod_json("llama-0", "10.0.0.1", "llama", true),
                        pod_json("llama-1", "10.0.0.2", "llama", false),
                    ],
                )))
            }
            (p, true) if p == format!("/api/v1{ns}pods") => {
                // The second pod becomes ready, once; later watches stay open.
                if *pods_counter.lock().unwrap() == 2 {
                    *pods_counter.lock().unwrap() += 1;
                    return Reply::Now(events(&[("MODIFIED", {
                        let mut pod = pod_json("llama-1", "10.0.0.2", "llama", true);
                        pod["metadata"]["resourceVersion"] = json!("11");
                        pod
                    })]));
                }
                Reply::Hold
            }
            (p, false)
                if p == format!(
                    "/apis/inference.networking.x-k8s.io/v1alpha2{ns}inferenceobjectives"
                ) =>
            {
                Reply::Now(json_response(&list(
                    "InferenceObjective",
                    vec![without_type(objective_json(X_K8S, "chat", "llama", 5)), {
                        // A priority that is not a number: skipped, the rest kept.
                        let mut broken = without_type(objective_json(X_K8S, "broken", "llama", 1));
                        broken["spec"]["priority"] = json!("high");
                        broken
                    }],
                )))
            }
            (p, false) if p == format!("/apis/llm-d.ai/v1alpha2{ns}inferencemodelrewrites") => {
                Reply::Now(json_response(&list(
                    "InferenceModelRewrite",
                    vec![without_type(rewrite_json(
                        LLM_D,
                        "canary",
                        "2026-01-01T00:00:00Z",
                        "llama-v2",
                    ))],
                )))
            }
            (p, false)
                if p.ends_with("/inferencemodelrewrites") || p.ends_with("/inferencemodels") =>
            {
                Reply::Now(json_response(&list("X", vec![])))
            }
            // The legacy pool and llm-d objective CRDs are not installed; a
            // real API server says so in plain text for an unserved group.
            (p, false) if p.contains("/llm-d.ai/") => {
                Reply::Now(status(StatusCode::NOT_FOUND, "404 page not found"))
            }
            (_, false) => Reply::Now(status(StatusCode::NOT_FOUND, NOT_FOUND)),
            (_, true) => Reply::Hold,
        }
    });

    let state = wait_for(&mut states, "both pods ready", |s| {
        s.pods.len() == 2 && s.pods.iter().all(|p| p.ready)
    })
    .await;
    assert_eq!(state.pool_name, "llama");
    assert_eq!(state.target_ports, [8000]);
    assert_eq!(state.objectives, HashMap::from([("chat".to_owned(), 5)]));
    assert_eq!(state.rewrites.len(), 1);
    assert_eq!(
        state.rewrites[0].rules[0].targets[0].model_rewrite,
        "llama-v2"
    );

    let seen = seen.lock().unwrap().clone();
    let pool_list = seen
        .iter()
        .find(|u| u.contains("/v1/namespaces/inference/inferencepools?"))
        .unwrap();
    assert!(
        pool_list.contains("fieldSelector=metadata.name%3Dllama"),
        "{pool_list}"
    );
    let pod_requests: Vec<&String> = seen.iter().filter(|u| u.contains("/pods?")).collect();
    assert!(
        pod_requests.len() >= 3,
        "failed list, list, watch: {pod_requests:?}"
    );
    for uri in &pod_requests {
        assert!(uri.contains("labelSelector=app%3Dllama"), "{uri}");
    }
    // A 404 disables the kind: its list is not retried.
    let llm_d_objective_lists = seen
        .iter()
        .filter(|u| u.contains("llm-d.ai/v1alpha2/namespaces/inference/inferenceobjectives?"))
        .count();
    assert_eq!(llm_d_objective_lists, 1, "{seen:?}");
    let legacy_lists = seen
        .iter()
        .filter(|u| u.contains("x-k8s.io/v1alpha2/namespaces/inference/inferencepools?"))
        .count();
    assert_eq!(legacy_lists, 1, "{seen:?}");

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn follows_the_pool_through_creation_selector_change_and_deletion() {
    let (mut states, seen, script, stop, task) = start(move |path, watch, uri| {
        let ns = "/namespaces/inference/";
        match (path, watch) {
            (p, false)
                if p == format!("/apis/inference.networking.k8s.io/v1{ns}inferencepools") =>
            {
                Reply::Now(json_response(&list("InferencePool", vec![])))
            }
            (p, true) if p == format!("/apis/inference.networking.k8s.io/v1{ns}inferencepools") => {
                Reply::Script
            }
            (p, false) if p == format!("/api/v1{ns}pods") => {
                let app = if uri.contains("app%3Dnew") {
                    "new"
                } else {
                    "llama"
                };
                Reply::Now(json_response(&list(
                    "Pod",
                    vec![pod_json(&format!("{app}-0"), "10.0.0.1", app, true)],
                )))
            }
            (p, false)
                if p == format!(
                    "/apis/inference.networking.x-k8s.io/v1alpha2{ns}inferencepools"
                ) =>
            {
                Reply::Now(json_response(&list(
                    "InferencePool",
                    vec![legacy_pool_json("other", 8000, "x")],
                )))
            }
            (_, false) => Reply::Now(json_response(&list("X", vec![]))),
            (_, true) => Reply::Hold,
        }
    });

    // No pool: an empty state naming the pool.
    let empty = wait_for(&mut states, "the empty state", |s| s.pool_name == "llama").await;
    assert!(empty.pods.is_empty() && empty.target_ports.is_empty());

    let mut pool = pool_json("llama", 8000, "llama");
    pool["metadata"]["resourceVersion"] = json!("11");
    script.send(events(&[("ADDED", pool.clone())])).unwrap();
    let state = wait_for(&mut states, "the created pool's pod", |s| s.pods.len() == 1).await;
    assert_eq!(state.pods[0].name, "llama-0");

    pool["spec"]["selector"]["matchLabels"]["app"] = json!("new");
    pool["spec"]["targetPorts"] = json!([{"number": 8000}, {"number": 8001}]);
    pool["metadata"]["resourceVersion"] = json!("12");
    script.send(events(&[("MODIFIED", pool.clone())])).unwrap();
    let state = wait_for(&mut states, "the new selector's pod", |s| {
        s.pods.first().is_some_and(|p| p.name == "new-0")
    })
    .await;
    assert_eq!(state.target_ports, [8000, 8001]);
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|u| u.contains("/pods?") && u.contains("labelSelector=app%3Dnew"))
    );

    pool["metadata"]["resourceVersion"] = json!("13");
    script.send(events(&[("DELETED", pool)])).unwrap();
    let state = wait_for(&mut states, "the deleted pool's empty state", |s| {
        s.target_ports.is_empty()
    })
    .await;
    assert!(state.pods.is_empty());

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn stops_when_the_receiver_is_dropped() {
    let (states, _seen, _script, _stop, task) = start(|_, watch, _| {
        if watch {
            Reply::Hold
        } else {
            Reply::Now(json_response(&list("X", vec![])))
        }
    });
    drop(states);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// List items come without `apiVersion`/`kind` from a real API server.
fn without_type(mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
    object
}

#[tokio::test]
async fn without_any_crd_it_publishes_an_empty_pool_and_stops_asking() {
    let (mut states, seen, _script, stop, task) = start(|_, watch, _| {
        if watch {
            Reply::Hold
        } else {
            Reply::Now(status(StatusCode::NOT_FOUND, NOT_FOUND))
        }
    });
    let state = wait_for(&mut states, "the empty state", |s| s.pool_name == "llama").await;
    assert!(state.pods.is_empty() && state.target_ports.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = seen.lock().unwrap().clone();
    // One list per kind: 2 pools, 2 objectives, 2 rewrites, legacy models; no pods.
    assert_eq!(requests.len(), 7, "{requests:?}");
    assert!(!requests.iter().any(|u| u.contains("/pods")));
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_forbidden_optional_kind_does_not_hold_the_pool_back() {
    let (mut states, seen, _script, stop, task) = start(|path, watch, _| {
        let ns = "/namespaces/inference/";
        match (path, watch) {
            (_, true) => Reply::Hold,
            (p, _) if p == format!("/apis/inference.networking.k8s.io/v1{ns}inferencepools") => {
                Reply::Now(json_response(&list(
                    "InferencePool",
                    vec![pool_json("llama", 8000, "llama")],
                )))
            }
            (p, _) if p == format!("/api/v1{ns}pods") => Reply::Now(json_response(&list(
                "Pod",
                vec![pod_json("llama-0", "10.0.0.1", "llama", true)],
            ))),
            // The Role grants nothing on the llm-d.ai group.
            (p, _) if p.contains("/llm-d.ai/") => Reply::Now(status(
                StatusCode::FORBIDDEN,
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","reason":"Forbidden","code":403,"message":"forbidden"}"#,
            )),
            _ => Reply::Now(json_response(&list("X", vec![]))),
        }
    });
    let state = wait_for(&mut states, "the pool despite the 403s", |s| {
        s.pods.len() == 1
    })
    .await;
    assert_eq!(state.target_ports, [8000]);
    // The forbidden kinds are still retried, with backoff.
    let retried = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let lists = seen
                .lock()
                .unwrap()
                .iter()
                .filter(|u| {
                    u.contains("llm-d.ai/v1alpha2/namespaces/inference/inferenceobjectives?")
                })
                .count();
            if lists >= 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(retried.is_ok(), "the forbidden list was not retried");
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

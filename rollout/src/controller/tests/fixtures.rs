//! The mock apiserver: a scenario of expected calls, and object builders.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::client::Body;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector;
use serde_json::{Value, json};
use switchyard_api::InferenceRollout;

use crate::controller::Context;
use crate::metrics::Metrics;

pub type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// The fixed clock of every test: 2027-01-15T08:00:00Z.
pub fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

/// A context whose client talks to the returned mock handle.
pub fn context() -> (Arc<Context>, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let (store, _writer) = reflector::store();
    let reporter = Reporter {
        controller: "inference-rollout-controller".into(),
        instance: None,
    };
    let ctx = Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        rollouts: store,
        clock: Arc::new(now),
        metrics: Metrics::new(),
        epp: Default::default(),
        prometheus_allowed: crate::prometheus::AllowedAddresses::any(),
    };
    (Arc::new(ctx), handle)
}

/// One call the apiserver expects, and its answer.
pub struct Expect {
    pub method: Method,
    /// Path plus the query parameters as a set (order does not matter).
    pub path: &'static str,
    pub query: &'static [(&'static str, &'static str)],
    /// Checks the request body (parsed as JSON; `Null` when empty).
    pub body: Box<dyn FnOnce(Value) + Send>,
    pub status: u16,
    pub reply: Value,
}

impl Expect {
    pub fn get(path: &'static str, reply: Value) -> Self {
        Self {
            method: Method::GET,
            path,
            query: &[],
            body: Box::new(|_| {}),
            status: 200,
            reply,
        }
    }

    pub fn list(
        path: &'static str,
        query: &'static [(&'static str, &'static str)],
        reply: Value,
    ) -> Self {
        Self {
            query,
            ..Self::get(path, reply)
        }
    }

    pub fn patch(
        path: &'static str,
        query: &'static [(&'static str, &'static str)],
        body: impl FnOnce(Value) + Send + 'static,
    ) -> Self {
        Self {
            method: Method::PATCH,
            path,
            query,
            body: Box::new(body),
            status: 200,
            reply: Value::Null,
        }
    }

    pub fn event(reason: &'static str) -> Self {
        Self {
            method: Method::POST,
            path: "/apis/events.k8s.io/v1/namespaces/llm/events",
            query: &[],
            body: Box::new(move |body| assert_eq!(body["reason"], reason, "event {body:#}")),
            status: 201,
            reply: Value::Null,
        }
    }

    pub fn answering(mut self, status: u16, reply: Value) -> Self {
        self.status = status;
        self.reply = reply;
        self
    }
}

/// Serves `calls` in order, then checks that nothing else is asked.
pub fn serve(mut handle: Handle, calls: Vec<Expect>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for (i, expect) in calls.into_iter().enumerate() {
            let (request, send) =
                tokio::time::timeout(Duration::from_secs(1), handle.next_request())
                    .await
                    .unwrap_or_else(|_| {
                        panic!("call {i} never came: {} {}", expect.method, expect.path)
                    })
                    .unwrap_or_else(|| {
                        panic!(
                            "client dropped before call {i}: {} {}",
                            expect.method, expect.path
                        )
                    });
            let uri = request.uri().clone();
            assert_eq!(request.method(), expect.method, "call {i}: {uri}");
            assert_eq!(uri.path(), expect.path, "call {i}");
            let query: BTreeMap<String, String> = uri
                .query()
                .unwrap_or_default()
                .split('&')
                .filter(|p| !p.is_empty())
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.replace("%3D", "=").replace("%2C", ",")))
                .collect();
            let wanted: BTreeMap<String, String> = expect
                .query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            assert_eq!(query, wanted, "call {i}: {uri}");
            let content_type = request
                .headers()
                .get(http::header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_owned());
            let bytes = request.into_body().collect().await.unwrap().to_bytes();
            let body: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap()
            };
            if expect.method == Method::PATCH {
                let expected = if expect.path.ends_with("/status") {
                    "application/apply-patch+yaml"
                } else {
                    "application/json-patch+json"
                };
                assert_eq!(content_type.as_deref(), Some(expected), "call {i}");
            }
            let reply = if expect.reply.is_null() {
                body.clone()
            } else {
                expect.reply
            };
            (expect.body)(body);
            let response = Response::builder()
                .status(expect.status)
                .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                .unwrap();
            send.send_response(response);
        }
        let extra = tokio::time::timeout(Duration::from_millis(100), handle.next_request()).await;
        if let Ok(Some((request, _))) = extra {
            panic!("unexpected call: {} {}", request.method(), request.uri());
        }
    })
}

/// A rollout `qwen` in `llm`: stable pool `qwen`, canary `qwen-next`, rule
/// `chat` of route `llm-route`, steps 1,000 and 5,000 bp, no metrics.
pub fn rollout(status: Value) -> Arc<InferenceRollout> {
    let mut value = json!({
        "apiVersion": "rollout.switchyard.dev/v1alpha1",
        "kind": "InferenceRollout",
        "metadata": {"name": "qwen", "namespace": "llm", "generation": 2, "uid": "u-1"},
        "spec": {
            "target": {"mode": "PoolSplit", "route": {"name": "llm-route", "ruleName": "chat"},
                       "stable": {"name": "qwen"}, "canary": {"name": "qwen-next"}},
            "strategy": {"steps": [{"weight": 1000}, {"weight": 5000}], "settleTime": "0s",
                         "successfulChecksPerStep": 2}
        }
    });
    if !status.is_null() {
        value["status"] = status;
    }
    Arc::new(serde_json::from_value(value).unwrap())
}

/// The route with the two pools at these weights, accepted at generation 3.
pub fn route(stable: i32, canary: i32) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "llm-route", "namespace": "llm", "generation": 3, "resourceVersion": "41"},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": [
                {"name": "other", "backendRefs": [{"name": "svc", "port": 80}]},
                {"name": "chat",
                 "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-a", "value": "1"}]}}],
                 "backendRefs": [
                    {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "qwen", "weight": stable},
                    {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "qwen-next", "weight": canary}
                 ]}
            ]
        },
        "status": {"parents": [{"parentRef": {"name": "gw"}, "controllerName": "example.com/gw",
            "conditions": [
                {"type": "Accepted", "status": "True", "observedGeneration": 3, "reason": "Accepted", "message": "", "lastTransitionTime": "2027-01-01T00:00:00Z"},
                {"type": "ResolvedRefs", "status": "True", "observedGeneration": 3, "reason": "ResolvedRefs", "message": "", "lastTransitionTime": "2027-01-01T00:00:00Z"}
            ]}]}
    })
}

/// An InferencePool selecting `app=<name>` on one port.
pub fn pool(name: &str) -> Value {
    json!({
        "apiVersion": "inference.networking.k8s.io/v1",
        "kind": "InferencePool",
        "metadata": {"name": name, "namespace": "llm"},
        "spec": {"selector": {"matchLabels": {"app": name}}, "targetPorts": [{"number": 8000}],
                 "endpointPickerRef": {"name": format!("{name}-epp"), "port": {"number": 9002}}}
    })
}

/// A pod list with `ready` ready pods and one that is not ready.
pub fn pods(ready: usize) -> Value {
    let pod = |i: usize, is_ready: bool| {
        json!({
            "metadata": {"name": format!("p{i}"), "namespace": "llm"},
            "status": {"podIP": format!("10.0.0.{i}"),
                       "conditions": [{"type": "Ready", "status": if is_ready { "True" } else { "False" }}]}
        })
    };
    let mut items: Vec<Value> = (0..ready).map(|i| pod(i, true)).collect();
    items.push(pod(99, false));
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": items})
}

/// The reads every reconcile makes, in order: route, then canary and stable readiness.
pub fn reads(route: Value, canary_ready: usize, stable_ready: usize) -> Vec<Expect> {
    vec![
        Expect::get(
            "/apis/gateway.networking.k8s.io/v1/namespaces/llm/httproutes/llm-route",
            route,
        ),
        Expect::get(
            "/apis/inference.networking.k8s.io/v1/namespaces/llm/inferencepools/qwen-next",
            pool("qwen-next"),
        ),
        Expect::list(
            "/api/v1/namespaces/llm/pods",
            &[("labelSelector", "app=qwen-next")],
            pods(canary_ready),
        ),
        Expect::get(
            "/apis/inference.networking.k8s.io/v1/namespaces/llm/inferencepools/qwen",
            pool("qwen"),
        ),
        Expect::list(
            "/api/v1/namespaces/llm/pods",
            &[("labelSelector", "app=qwen")],
            pods(stable_ready),
        ),
    ]
}

pub const ROUTE_PATH: &str =
    "/apis/gateway.networking.k8s.io/v1/namespaces/llm/httproutes/llm-route";
pub const STATUS_PATH: &str =
    "/apis/rollout.switchyard.dev/v1alpha1/namespaces/llm/inferencerollouts/qwen/status";
pub const ROUTE_QUERY: &[(&str, &str)] = &[("fieldManager", "inference-rollout-controller")];
pub const STATUS_QUERY: &[(&str, &str)] = &[
    ("fieldManager", "inference-rollout-controller"),
    ("force", "true"),
];

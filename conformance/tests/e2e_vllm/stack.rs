//! The gateway the real-vLLM suite runs against, started as `cargo xtask up` starts it: two
//! real `vllm serve` pods (`engine: vllm-real`) behind the real BBR, one endpoint picker and
//! the real Envoy, on free loopback ports. The pool serves `tiny`, the adapters `lora-a` and
//! `lora-rt`, and the alias `alias`, which an InferenceModelRewrite sends to `tiny`.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_conformance::client::{HttpClient, HttpResponse};
use switchyard_conformance::vllm::{Slots, VllmServer};
use switchyard_conformance::{envoy, ports};
use switchyard_local::plan::PlanOptions;
use switchyard_local::running::{RunningStack, StackOptions};
use switchyard_local::stack::LocalStack;

/// Where `cargo xtask test` says the binaries are.
const BIN_DIR_ENV: &str = "SWITCHYARD_BIN_DIR";
/// The alias the rewrite maps to `tiny`.
pub const ALIAS: &str = "alias";

const MANIFESTS: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: envoy
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: tiny}
spec:
  targetPorts: [{number: 8000}]
  selector: {matchLabels: {app: tiny}}
  endpointPickerRef: {name: tiny-epp, port: {number: 9002}, failureMode: FailClose}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: route}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches:
    - headers: [{type: Exact, name: X-Gateway-Base-Model-Name, value: tiny}]
    backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: tiny}]
  - matches:
    - headers: [{type: Exact, name: X-Gateway-Model-Name, value: alias}]
    backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: tiny}]
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModelRewrite
metadata: {name: alias}
spec:
  poolRef: {group: inference.networking.k8s.io, kind: InferencePool, name: tiny}
  rules:
  - matches: [{model: {type: Exact, value: alias}}]
    targets: [{modelRewrite: tiny, weight: 1}]
";

const ENDPOINTS: &str = "apiVersion: local.switchyard.dev/v1alpha1
kind: LocalEndpoints
pools:
- name: tiny
  replicas: 2
  engine: vllm-real
  model: tiny
  adapters: [lora-a, lora-rt]
";

/// The running gateway and its two servers.
pub struct Gateway {
    pub running: RunningStack,
    pub client: HttpClient,
    _slots: Slots,
    _dir: tempfile::TempDir,
}

impl Gateway {
    pub async fn start() -> Self {
        let install = VllmServer::install().unwrap();
        // Both of the machine's real-vLLM slots: no other suite starts a server meanwhile.
        let slots = Slots::acquire(&install, 2).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("manifests.yaml"), MANIFESTS).unwrap();
        std::fs::write(dir.path().join("local-endpoints.yaml"), ENDPOINTS).unwrap();
        let plan_options = PlanOptions {
            listener_port: ports::free_port().unwrap(),
            admin_port: ports::free_port().unwrap(),
            first_port: 0,
            ..PlanOptions::default()
        };
        let stack = LocalStack::load(dir.path(), &plan_options).unwrap();
        let options = StackOptions {
            binaries: binaries_dir(),
            envoy: envoy::locate().unwrap(),
            run_dir: dir.path().join("run"),
            start_timeout: Duration::from_secs(30),
        };
        let running = RunningStack::start(stack, &options, |process, took| {
            eprintln!("{} ready after {took:?}", process.spec.name);
        })
        .await
        .unwrap();
        Self {
            running,
            client: HttpClient::new(),
            _slots: slots,
            _dir: dir,
        }
    }

    /// The two servers' addresses.
    pub fn servers(&self) -> Vec<SocketAddr> {
        self.running.stack.plan.pools[0]
            .simulators
            .iter()
            .map(|s| s.endpoints[0])
            .collect()
    }

    /// The picker's Prometheus page.
    pub async fn picker_metrics(&self) -> String {
        let addr = self.running.stack.plan.pools[0].picker.metrics;
        self.get(&format!("http://{addr}/metrics")).await.text()
    }

    /// `POST path` through the gateway.
    pub async fn post(&self, path: &str, body: &Value) -> HttpResponse {
        self.client
            .post(
                &self.running.url(path),
                &[("content-type", "application/json")],
                body.to_string(),
            )
            .await
            .unwrap()
    }

    /// `POST url` straight to a server.
    pub async fn post_to(&self, url: &str, body: &Value) -> HttpResponse {
        self.client
            .post(
                url,
                &[("content-type", "application/json")],
                body.to_string(),
            )
            .await
            .unwrap()
    }

    pub async fn get(&self, url: &str) -> HttpResponse {
        self.client.get(url, &[]).await.unwrap()
    }
}

/// A chat request for `model`.
pub fn chat(model: &str, prompt: &str, max_tokens: u32) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
    })
}

/// The directory holding `switchyard-bbr` and `switchyard-epp`.
fn binaries_dir() -> std::path::PathBuf {
    match std::env::var_os(BIN_DIR_ENV).filter(|d| !d.is_empty()) {
        Some(dir) => dir.into(),
        None => std::env::current_exe()
            .unwrap()
            .parent()
            .and_then(|deps| deps.parent())
            .unwrap()
            .to_path_buf(),
    }
}

//! The stack every test runs: BBR's stand-in, pools (picker stand-in plus loopback
//! backends), and Envoy on the translated files, plus manifest builders.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use http::StatusCode;
use serde_json::json;
use switchyard_conformance::backend::{BACKEND_HEADER, TestBackend};
use switchyard_conformance::client::{HttpClient, HttpResponse};
use switchyard_conformance::extproc::{Rule, TestExtProc};
use switchyard_conformance::ports;
use switchyard_local::gateway::GatewayEnvoy;
use switchyard_local::translate::{
    ConfigDir, GatewayConfig, GatewayWiring, Manifests, PickerHealth, PoolKey, PoolWiring,
    translate,
};

use crate::picker::TestPicker;

/// The header BBR's stand-in sets and the routes match.
const MODEL_HEADER: &str = "x-gateway-model-name";

/// The header pool `pool`'s picker stand-in copies into the destination header.
pub fn pick_header(pool: &str) -> String {
    format!("x-test-pick-{pool}")
}

pub fn pool_yaml(name: &str, failure_mode: &str) -> String {
    format!(
        "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata:\n  name: {name}\n\
         spec:\n  targetPorts: [{{number: 8000}}]\n  selector:\n    matchLabels: {{app: {name}}}\n\
         \x20 endpointPickerRef:\n    name: {name}-epp\n    port: {{number: 9002}}\n    failureMode: {failure_mode}\n---\n"
    )
}

/// One HTTPRoute; `rules` maps a model to its `(pool, weight)` backends.
pub fn route_yaml(rules: &[(&str, &[(&str, u32)])]) -> String {
    let mut yaml = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  \
                    name: llm-route\nspec:\n  parentRefs: [{name: inference-gateway}]\n  rules:\n"
        .to_owned();
    for (model, backends) in rules {
        yaml.push_str(&format!(
            "  - matches:\n    - headers: [{{name: X-Gateway-Model-Name, value: {model}}}]\n    backendRefs:\n"
        ));
        for (pool, weight) in *backends {
            yaml.push_str(&format!(
                "    - {{group: inference.networking.k8s.io, kind: InferencePool, name: {pool}, weight: {weight}}}\n"
            ));
        }
    }
    yaml
}

/// A pool's picker stand-in and model servers.
pub struct TestPool {
    pub picker: Option<TestPicker>,
    picker_addr: SocketAddr,
    pub backends: Vec<TestBackend>,
}

impl TestPool {
    /// A live picker and `replicas` backends named `<name>-<i>`.
    pub async fn start(name: &str, replicas: usize) -> Self {
        let picker = TestPicker::start(pick_header(name)).await;
        let mut pool = Self::without_picker(name, replicas).await;
        pool.picker_addr = picker.addr();
        pool.picker = Some(picker);
        pool
    }

    /// A picker address nothing listens on.
    pub async fn without_picker(name: &str, replicas: usize) -> Self {
        let mut backends = Vec::new();
        for i in 0..replicas {
            backends.push(TestBackend::start(format!("{name}-{i}")).await.unwrap());
        }
        Self {
            picker: None,
            picker_addr: ports::free_addr().unwrap(),
            backends,
        }
    }

    pub fn picker_streams(&self) -> u64 {
        self.picker.as_ref().map_or(0, TestPicker::streams)
    }
}

/// BBR's stand-in, the pools, Envoy, and the files it watches.
pub struct Stack {
    _bbr: TestExtProc,
    pools: BTreeMap<String, TestPool>,
    manifests_prefix: String,
    wiring: GatewayWiring,
    dir: ConfigDir,
    pub envoy: GatewayEnvoy,
    pub client: HttpClient,
    _temp: tempfile::TempDir,
}

impl Stack {
    /// Starts Envoy on the translation of `pools` (YAML for each) plus `route`.
    pub async fn start(pools: Vec<(&str, TestPool)>, pool_yaml: String, route: &str) -> Self {
        let bbr = TestExtProc::start(Rule::body_field("model").set_header(MODEL_HEADER))
            .await
            .unwrap();
        let mut wiring = GatewayWiring {
            listener: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            bbr: Some(bbr.addr()),
            ..GatewayWiring::default()
        };
        for (name, pool) in &pools {
            wiring.pools.insert(
                PoolKey::new("default", *name),
                PoolWiring {
                    picker: pool.picker_addr,
                    picker_health: PickerHealth::Tcp,
                    endpoints: pool.backends.iter().map(TestBackend::addr).collect(),
                },
            );
        }
        let temp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::create(&temp.path().join("envoy")).unwrap();
        let config = translate_with(&pool_yaml, route, &wiring);
        dir.write(&config).unwrap();
        let envoy = GatewayEnvoy::start(
            &switchyard_conformance::envoy::locate().unwrap(),
            &dir,
            &temp.path().join("envoy.log"),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        Self {
            _bbr: bbr,
            pools: pools
                .into_iter()
                .map(|(name, pool)| (name.to_owned(), pool))
                .collect(),
            manifests_prefix: pool_yaml,
            wiring,
            dir,
            envoy,
            client: HttpClient::new(),
            _temp: temp,
        }
    }

    /// Replaces the pools and the route of the running Envoy.
    pub fn update(&mut self, pool_yaml: String, route: &str) -> GatewayConfig {
        self.manifests_prefix = pool_yaml;
        self.update_route(route)
    }

    /// Rewrites the routes of the running Envoy.
    pub fn update_route(&self, route: &str) -> GatewayConfig {
        let config = translate_with(&self.manifests_prefix, route, &self.wiring);
        self.dir.write(&config).unwrap();
        config
    }

    /// A chat request for `model`, with every live pool's picker told to pick that pool's
    /// first backend.
    pub async fn chat(&self, model: &str) -> HttpResponse {
        let picks: Vec<(String, String)> = self
            .pools
            .iter()
            .filter_map(|(name, pool)| {
                let first = pool.backends.first()?;
                Some((pick_header(name), first.addr().to_string()))
            })
            .collect();
        let headers: Vec<(&str, &str)> = picks
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        self.client
            .post(
                &self.envoy.url("/v1/chat/completions"),
                &headers,
                body.to_string(),
            )
            .await
            .unwrap()
    }

    /// The value of Envoy counter `name`.
    pub async fn stat(&self, name: &str) -> Option<u64> {
        let url = format!("http://{}/stats?filter=^{name}$", self.envoy.admin_addr());
        let stats = self.client.get(&url, &[]).await.unwrap().text();
        stats
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
            .and_then(|value| value.trim().parse().ok())
    }

    pub fn pool(&self, name: &str) -> &TestPool {
        &self.pools[name]
    }

    pub fn kill_picker(&mut self, name: &str) {
        if let Some(picker) = self.pools.get_mut(name).and_then(|p| p.picker.as_mut()) {
            picker.kill();
        }
    }
}

fn translate_with(pool_yaml: &str, route: &str, wiring: &GatewayWiring) -> GatewayConfig {
    let manifests = Manifests::parse("test.yaml", &format!("{pool_yaml}{route}")).unwrap();
    translate(&manifests, wiring).unwrap()
}

pub fn backend_of(response: &HttpResponse) -> &str {
    response.header(BACKEND_HEADER).unwrap_or("<none>")
}

/// How many of `n` chat requests each backend answered; any failure panics. Requests go
/// 50 at a time: one at a time, a 1,000-request split would take most of a minute.
pub async fn split(stack: &Stack, model: &str, n: usize) -> BTreeMap<String, usize> {
    let responses: Vec<HttpResponse> = futures::stream::iter(0..n)
        .map(|_| stack.chat(model))
        .buffer_unordered(50)
        .collect()
        .await;
    let mut counts = BTreeMap::new();
    for response in responses {
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        *counts.entry(backend_of(&response).to_owned()).or_default() += 1;
    }
    counts
}

//! The local stack for the end-to-end tests: the quickstart (simulators, BBR,
//! one picker per pool, a real Envoy) run from a copy of its directory, the
//! rollout controller's local reconcile driven against it, and a load
//! generator sending streamed Qwen chats through Envoy.

#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use switchyard_api::InferenceRollout;
use switchyard_api::rollout::{EppSource, MetricCheck, MetricType, OnFail, StatusClass, Step};
use switchyard_local::client::HttpClient;
use switchyard_local::envoy;
use switchyard_local::plan::PlanOptions;
use switchyard_local::ports;
use switchyard_local::running::{RunningStack, StackOptions};
use switchyard_local::stack::LocalStack;
use switchyard_local::translate::{Manifests, translate};
use switchyard_rollout::local::analysis::LocalAnalysis;
use switchyard_rollout::local::load_rollouts;
use switchyard_rollout::local::reconcile::reconcile_once;
use switchyard_rollout::plan::Decision;
use tokio::task::JoinHandle;

pub const QWEN: &str = "Qwen/Qwen3-32B";
pub const STABLE: &str = "vllm-qwen3-32b";
pub const CANARY: &str = "vllm-qwen3-32b-canary";

fn binaries_dir() -> PathBuf {
    match std::env::var_os("SWITCHYARD_BIN_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        // target/<profile>/deps/e2e_local-<hash> → target/<profile>
        None => std::env::current_exe()
            .unwrap()
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .to_path_buf(),
    }
}

fn quickstart_copy() -> tempfile::TempDir {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/examples/quickstart");
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(source).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// The running quickstart and the controller's local state.
pub struct Stack {
    pub dir: tempfile::TempDir,
    run: tempfile::TempDir,
    pub running: RunningStack,
    pub pool_of_replica: BTreeMap<String, String>,
    pub client: HttpClient,
    pub analysis: LocalAnalysis,
    pub state: PathBuf,
    /// Shared with a local admin API, as `serve --local` shares it.
    pub status_lock: Arc<tokio::sync::Mutex<()>>,
    last_route: String,
}

impl Stack {
    /// Starts the quickstart on free ports.
    pub async fn start() -> Self {
        let Ok(envoy) = envoy::locate() else {
            panic!("Envoy not found: set SWITCHYARD_ENVOY or run `cargo xtask tools`");
        };
        let dir = quickstart_copy();
        let run = tempfile::tempdir().unwrap();
        let plan_options = PlanOptions {
            listener_port: ports::free_port().unwrap(),
            admin_port: ports::free_port().unwrap(),
            first_port: 0,
            ..PlanOptions::default()
        };
        let stack = LocalStack::load(dir.path(), &plan_options).unwrap();
        let mut pool_of_replica = BTreeMap::new();
        for pool in &stack.plan.pools {
            for sim in &pool.simulators {
                for rank in 0..sim.endpoints.len() {
                    pool_of_replica.insert(format!("{}-{rank}", sim.name), pool.pool.name.clone());
                }
            }
        }
        let analysis = LocalAnalysis::from_plan(&stack.plan);
        let options = StackOptions {
            binaries: binaries_dir(),
            envoy,
            run_dir: run.path().join("run"),
            start_timeout: Duration::from_secs(30),
        };
        let running = RunningStack::start(stack, &options, |_, _| {})
            .await
            .unwrap();
        let last_route = std::fs::read_to_string(dir.path().join("httproute.yaml")).unwrap();
        let state = run.path().join("state");
        Self {
            dir,
            run,
            running,
            pool_of_replica,
            client: HttpClient::new(),
            analysis,
            state,
            status_lock: Arc::default(),
            last_route,
        }
    }

    /// The simulator replicas of `pool`.
    pub fn replicas(&self, pool: &str) -> Vec<SocketAddr> {
        self.running
            .stack
            .plan
            .pools
            .iter()
            .filter(|p| p.pool.name == pool)
            .flat_map(|p| p.simulators.iter().flat_map(|s| s.endpoints.clone()))
            .collect()
    }

    /// Sets the faults of every replica of `pool` (`POST /admin/faults`).
    pub async fn set_faults(&self, pool: &str, faults: serde_json::Value) {
        for replica in self.replicas(pool) {
            let response = self
                .client
                .post(
                    &format!("http://{replica}/admin/faults"),
                    &[("content-type", "application/json")],
                    faults.to_string(),
                )
                .await
                .unwrap();
            assert!(response.status.is_success(), "{}", response.text());
        }
    }

    /// The quickstart's qwen-canary, with short steps and intervals so a
    /// test takes seconds: canary weights `steps`, 2 s windows after 1 s of
    /// settling, two passes per step, two failures roll back, the pickers
    /// scraped every second.
    pub fn rollout(&self, steps: &[i32]) -> InferenceRollout {
        let mut rollout = load_rollouts(self.dir.path()).unwrap().remove(0).rollout;
        let spec = &mut rollout.spec;
        spec.strategy.steps = steps
            .iter()
            .map(|&weight| Step {
                weight,
                min_duration: Some("1s".into()),
                pause: None,
            })
            .collect();
        spec.strategy.analysis_interval = "2s".into();
        spec.strategy.settle_time = "1s".into();
        spec.strategy.successful_checks_per_step = 2;
        spec.strategy.failure_threshold = 2;
        spec.analysis.source.epp = Some(EppSource {
            scrape_interval: "1s".into(),
        });
        spec.analysis.min_requests_per_window = 20;
        let mut server_errors = MetricCheck::new("server-errors", MetricType::ErrorRate);
        server_errors.status_classes = vec![StatusClass::Server];
        server_errors.max = Some(0.005);
        let mut shedding = MetricCheck::new("shedding", MetricType::ShedRate);
        shedding.max = Some(0.05);
        shedding.on_fail = Some(OnFail::Pause);
        // One canary replica takes as much traffic as two stable ones at 50 %:
        // its TTFT may be higher, not several times higher.
        let mut ttft = MetricCheck::new("ttft-p95", MetricType::Ttft);
        ttft.quantile = Some(0.95);
        ttft.max_ratio_vs_stable = Some(4.0);
        let mut itl = MetricCheck::new("itl-p95", MetricType::InterTokenLatency);
        itl.max = Some(1.0);
        spec.analysis.metrics = vec![server_errors, shedding, ttft, itl];
        rollout
    }

    /// One reconcile at the current time; when the route file changed, the
    /// manifests are translated again onto the running Envoy's routes (what
    /// `serve --local --local-envoy-dir` does after a write).
    pub async fn reconcile(&mut self, rollout: &InferenceRollout) -> Decision {
        let guard = self.status_lock.lock().await;
        let now = k8s_openapi::jiff::Timestamp::now();
        let decision = reconcile_once(
            self.dir.path(),
            &self.state,
            rollout,
            now,
            &mut self.analysis,
        )
        .await
        .unwrap();
        drop(guard);
        let route = std::fs::read_to_string(self.dir.path().join("httproute.yaml")).unwrap();
        if route != self.last_route {
            let manifests = Manifests::load(self.dir.path()).unwrap();
            let config = translate(&manifests, &self.running.stack.plan.gateway).unwrap();
            self.running.files.envoy.write_routes(&config).unwrap();
            self.last_route = route;
        }
        decision
    }

    /// The qwen rule's (stable, canary) weights in the route file.
    pub fn route_weights(&self) -> (i64, i64) {
        let text = std::fs::read_to_string(self.dir.path().join("httproute.yaml")).unwrap();
        let weights: Vec<i64> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("weight:"))
            .map(|w| w.trim().parse().unwrap())
            .collect();
        (weights[0], weights[1])
    }

    /// Which pool answered each of `count` Qwen requests (all must be 200).
    pub async fn answered_by(&self, count: usize) -> BTreeMap<String, usize> {
        let mut pools = BTreeMap::new();
        for i in 0..count {
            let response = chat(&self.client, &self.running.url("/v1/chat/completions"), i).await;
            assert_eq!(response.status, StatusCode::OK, "{}", response.text());
            let replica = response.header("x-inference-pod").unwrap().to_owned();
            let pool = self
                .pool_of_replica
                .get(&replica)
                .unwrap_or_else(|| panic!("unknown replica {replica}"));
            *pools.entry(pool.clone()).or_default() += 1;
        }
        pools
    }

    /// Sends streamed Qwen chats through Envoy from `concurrency` tasks
    /// until stopped.
    pub fn load(&self, concurrency: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let url = self.running.url("/v1/chat/completions");
        let tasks = (0..concurrency)
            .map(|task| {
                let stop = Arc::clone(&stop);
                let url = url.clone();
                tokio::spawn(async move {
                    let client = HttpClient::new();
                    let mut statuses = BTreeMap::new();
                    let mut i = task * 1_000_000;
                    while !stop.load(Ordering::Relaxed) {
                        let response = chat(&client, &url, i).await;
                        *statuses.entry(response.status.as_u16()).or_default() += 1;
                        i += 1;
                    }
                    statuses
                })
            })
            .collect();
        Load { stop, tasks }
    }
}

async fn chat(client: &HttpClient, url: &str, i: usize) -> switchyard_local::client::HttpResponse {
    let body = json!({
        "model": QWEN,
        "messages": [{"role": "user", "content": format!("request {i}")}],
        "max_tokens": 4,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    client
        .post(
            url,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
        .unwrap()
}

/// A running load generator.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<BTreeMap<u16, usize>>>,
}

impl Load {
    /// Stops it; the count of each status code answered.
    pub async fn stop(self) -> BTreeMap<u16, usize> {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = BTreeMap::new();
        for task in self.tasks {
            for (status, n) in task.await.unwrap() {
                *total.entry(status).or_default() += n;
            }
        }
        total
    }
}

//! Local mode end to end: the quickstart stack (simulators, BBR, one picker per
//! pool, a real Envoy) runs from a copy of the quickstart directory while
//! `reconcile_once` walks the Qwen canary through every step. After each
//! weight write the manifests are translated again and Envoy's route file
//! rewritten (the running stack does not watch its manifest directory), and
//! the traffic through Envoy shows where the weights stand.
//!
//! Needs Envoy (`SWITCHYARD_ENVOY` or `cargo xtask tools`) and the simulator,
//! BBR and picker binaries next to the test binary (or `SWITCHYARD_BIN_DIR`).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;
use switchyard_api::rollout::Phase;
use switchyard_conformance::client::HttpClient;
use switchyard_conformance::envoy;
use switchyard_conformance::local::plan::PlanOptions;
use switchyard_conformance::local::stack::LocalStack;
use switchyard_conformance::ports;
use switchyard_conformance::stack::{RunningStack, StackOptions};
use switchyard_conformance::translate::{Manifests, translate};
use switchyard_rollout::local::reconcile::reconcile_once;
use switchyard_rollout::local::{StatusFile, load_rollouts};

const QWEN: &str = "Qwen/Qwen3-32B";

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

/// Which pool answered each of `count` Qwen requests.
async fn answered_by(
    client: &HttpClient,
    running: &RunningStack,
    pool_of_replica: &BTreeMap<String, String>,
    count: usize,
) -> BTreeMap<String, usize> {
    let mut pools = BTreeMap::new();
    for i in 0..count {
        let body = json!({
            "model": QWEN,
            "messages": [{"role": "user", "content": format!("request {i}")}],
            "max_tokens": 2,
        });
        let response = client
            .post(
                &running.url("/v1/chat/completions"),
                &[("content-type", "application/json")],
                body.to_string(),
            )
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        let replica = response.header("x-inference-pod").unwrap().to_owned();
        let pool = pool_of_replica
            .get(&replica)
            .unwrap_or_else(|| panic!("unknown replica {replica}"));
        *pools.entry(pool.clone()).or_default() += 1;
    }
    pools
}

#[tokio::test]
async fn a_healthy_canary_reaches_all_traffic_through_envoy() {
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
    let options = StackOptions {
        binaries: binaries_dir(),
        envoy,
        run_dir: run.path().join("run"),
        start_timeout: Duration::from_secs(30),
    };
    let running = RunningStack::start(stack, &options, |_, _| {})
        .await
        .unwrap();
    let client = HttpClient::new();

    let before = answered_by(&client, &running, &pool_of_replica, 10).await;
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        ["vllm-qwen3-32b"],
        "{before:?}"
    );

    // Short steps: judged on time and verified weights (no metric source runs here).
    let mut rollout = load_rollouts(dir.path()).unwrap().remove(0).rollout;
    rollout.spec.analysis.metrics.clear();
    for step in &mut rollout.spec.strategy.steps {
        step.min_duration = Some("1s".into());
    }
    rollout.spec.strategy.analysis_interval = "1s".into();
    rollout.spec.strategy.settle_time = "0s".into();
    rollout.spec.strategy.successful_checks_per_step = 1;

    let route_file = dir.path().join("httproute.yaml");
    let state = run.path().join("state");
    let mut last_route = std::fs::read_to_string(&route_file).unwrap();
    let mut mixed_at_half = None;
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "the rollout did not finish in 25 s"
        );
        let now = k8s_openapi::jiff::Timestamp::now();
        let decision = reconcile_once(dir.path(), &state, &rollout, now)
            .await
            .unwrap();
        let route = std::fs::read_to_string(&route_file).unwrap();
        if route != last_route {
            // What the translator makes of the edited file, onto the running Envoy.
            let manifests = Manifests::load(dir.path()).unwrap();
            let config = translate(&manifests, &running.stack.plan.gateway).unwrap();
            running.files.envoy.write_routes(&config).unwrap();
            last_route = route;
            if last_route.contains("weight: 5000") && mixed_at_half.is_none() {
                // Give Envoy's file watcher a moment, then look at the split.
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                mixed_at_half = Some(answered_by(&client, &running, &pool_of_replica, 30).await);
            }
        }
        if decision.status.phase == Some(Phase::Succeeded) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let status = StatusFile::new(&state, "qwen-canary").load().unwrap();
    let applied = status.weights.unwrap().applied.unwrap();
    assert_eq!((applied.stable, applied.canary), (0, 10_000));
    let half = mixed_at_half.unwrap();
    assert_eq!(half.len(), 2, "at 50/50 both pools answer: {half:?}");

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let after = answered_by(&client, &running, &pool_of_replica, 10).await;
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        ["vllm-qwen3-32b-canary"],
        "{after:?}"
    );
}

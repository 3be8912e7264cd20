//! Local mode end to end: the quickstart stack (simulators, BBR, one picker per
//! pool, a real Envoy) runs from a copy of the quickstart directory while the
//! controller's local reconcile drives the Qwen canary, judging every window
//! on the two pickers' own metrics (the EPP source) under streamed traffic.
//! After each weight write the manifests are translated again onto Envoy's
//! routes, as `serve --local --local-envoy-dir` does.
//!
//! Needs Envoy (`SWITCHYARD_ENVOY` or `cargo xtask tools`) and the simulator,
//! BBR and picker binaries next to the test binary (or `SWITCHYARD_BIN_DIR`).

#![allow(clippy::unwrap_used)]

mod local;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_api::rollout::{AnalysisStatus, MetricVerdict, PauseReason, Phase, Verdict};
use switchyard_rollout::local::StatusFile;

use local::{CANARY, STABLE, Stack};

/// Reconciles every 200 ms until `done` holds for the decision's status or
/// `limit` passes. Returns the weights the route file went through.
async fn drive(
    stack: &mut Stack,
    rollout: &switchyard_api::InferenceRollout,
    limit: Duration,
    mut done: impl FnMut(&switchyard_api::InferenceRolloutStatus) -> bool,
) -> Vec<(i64, i64)> {
    let started = Instant::now();
    let mut seen = vec![stack.route_weights()];
    loop {
        let decision = stack.reconcile(rollout).await;
        let weights = stack.route_weights();
        if seen.last() != Some(&weights) {
            seen.push(weights);
        }
        if done(&decision.status) {
            return seen;
        }
        assert!(
            started.elapsed() < limit,
            "not done within {limit:?}; weights {seen:?}, status {:#?}",
            decision.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts the stack with `faults` on the canary's replicas and runs a
/// one-step (50 %) rollout under load until it fails; checks it went back to
/// stable and returns the weights seen, the load's status codes and the
/// analysis the status file holds.
async fn rolled_back_with(
    faults: serde_json::Value,
) -> (Stack, Vec<(i64, i64)>, BTreeMap<u16, usize>, AnalysisStatus) {
    let mut stack = Stack::start().await;
    stack.set_faults(CANARY, faults).await;
    let rollout = stack.rollout(&[5000]);
    let load = stack.load(12);
    let seen = drive(&mut stack, &rollout, Duration::from_secs(40), |status| {
        status.phase == Some(Phase::Failed)
    })
    .await;
    let statuses = load.stop().await;

    assert_eq!(
        seen,
        [(100, 0), (5000, 5000), (10_000, 0)],
        "rolled back to stable"
    );
    let status = StatusFile::new(&stack.state, "default", "qwen-canary")
        .load()
        .unwrap();
    let analysis = status.analysis.unwrap();
    (stack, seen, statuses, analysis)
}

/// The last window's verdict on the metric called `name`.
fn last_verdict<'a>(analysis: &'a AnalysisStatus, name: &str) -> &'a MetricVerdict {
    analysis.last.iter().find(|v| v.name == name).unwrap()
}

#[tokio::test]
async fn a_healthy_canary_reaches_all_traffic_through_every_step() {
    let mut stack = Stack::start().await;
    let before = stack.answered_by(10).await;
    assert_eq!(before.keys().collect::<Vec<_>>(), [STABLE], "{before:?}");

    let rollout = stack.rollout(&[2000, 5000]);
    let load = stack.load(12);
    let mut passed_windows = 0;
    let seen = drive(&mut stack, &rollout, Duration::from_secs(60), |status| {
        if let Some(analysis) = &status.analysis
            && !analysis.last.is_empty()
            && analysis.last.iter().all(|v| v.verdict == Verdict::Pass)
        {
            passed_windows += 1;
        }
        status.phase == Some(Phase::Succeeded)
    })
    .await;
    let statuses = load.stop().await;

    assert_eq!(
        seen,
        [(100, 0), (8000, 2000), (5000, 5000), (0, 10_000)],
        "every step, then promotion"
    );
    let status = StatusFile::new(&stack.state, "default", "qwen-canary")
        .load()
        .unwrap();
    let analysis = status.analysis.unwrap();
    eprintln!(
        "weights {seen:?}\nlast window {:?}\nresponses {statuses:?}",
        analysis.last
    );
    // The last window's verdicts stand on measured values from both pickers.
    for verdict in &analysis.last {
        assert_eq!(verdict.verdict, Verdict::Pass, "{verdict:?}");
        assert!(verdict.samples.unwrap() >= 20, "{verdict:?}");
        assert!(verdict.canary.is_some(), "{verdict:?}");
    }
    let ttft = last_verdict(&analysis, "ttft-p95");
    assert!(
        ttft.stable.unwrap() > 0.0 && ttft.canary.unwrap() > 0.0,
        "{ttft:?}"
    );
    assert!(passed_windows >= 4, "two passing windows per step");
    assert_eq!(statuses.keys().collect::<Vec<_>>(), [&200], "{statuses:?}");

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let after = stack.answered_by(10).await;
    assert_eq!(after.keys().collect::<Vec<_>>(), [CANARY], "{after:?}");
}

#[tokio::test]
async fn a_canary_returning_five_percent_5xx_is_rolled_back_within_two_windows() {
    let (stack, seen, statuses, analysis) = rolled_back_with(json!({
        "failure_injection_rate": 5.0,
        "failure_status": [500]
    }))
    .await;
    eprintln!(
        "weights {seen:?}\nlast window {:?}\nresponses {statuses:?}",
        analysis.last
    );
    assert_eq!(
        (
            analysis.successful_checks,
            analysis.failed_checks,
            analysis.no_data_windows
        ),
        (0, 2, 0),
        "rolled back at the second window: {analysis:?}"
    );
    let errors = last_verdict(&analysis, "server-errors");
    assert_eq!(errors.verdict, Verdict::Fail, "{errors:?}");
    assert!(errors.canary.unwrap() > 0.005, "{errors:?}");
    assert_eq!(errors.stable, Some(0.0), "{errors:?}");
    assert!(statuses.get(&500).copied().unwrap_or(0) > 0, "{statuses:?}");

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let after = stack.answered_by(10).await;
    assert_eq!(after.keys().collect::<Vec<_>>(), [STABLE], "{after:?}");
}

#[tokio::test]
async fn a_canary_with_slow_prefill_is_rolled_back_on_its_ttft_ratio_to_stable() {
    // Prefill (the first token) 15× slower on the canary, decode unchanged.
    let (_stack, seen, statuses, analysis) =
        rolled_back_with(json!({"prefill_multiplier": 15.0})).await;
    eprintln!("weights {seen:?}\nlast window {:?}", analysis.last);
    let ttft = last_verdict(&analysis, "ttft-p95");
    assert_eq!(ttft.verdict, Verdict::Fail, "{ttft:?}");
    assert!(
        ttft.canary.unwrap() > 4.0 * ttft.stable.unwrap(),
        "{ttft:?}"
    );
    let errors = last_verdict(&analysis, "server-errors");
    assert_eq!(
        errors.verdict,
        Verdict::Pass,
        "slow is not failing: {errors:?}"
    );
    assert_eq!(statuses.keys().collect::<Vec<_>>(), [&200], "{statuses:?}");
}

#[tokio::test]
async fn a_shedding_canary_pauses_and_is_not_rolled_back() {
    let mut stack = Stack::start().await;
    // The canary's replicas refuse a fifth of their requests with 429: load
    // shed, not errors.
    stack
        .set_faults(
            CANARY,
            json!({"failure_injection_rate": 20.0, "failure_status": [429]}),
        )
        .await;
    let rollout = stack.rollout(&[5000]);
    let load = stack.load(12);
    let seen = drive(&mut stack, &rollout, Duration::from_secs(40), |status| {
        status.phase == Some(Phase::Paused)
    })
    .await;
    // A few more passes: still paused, weights held, nothing rolled back.
    let held = drive(&mut stack, &rollout, Duration::from_secs(10), {
        let mut passes = 0;
        move |status| {
            assert_eq!(status.phase, Some(Phase::Paused));
            passes += 1;
            passes == 15
        }
    })
    .await;
    load.stop().await;

    assert_eq!(seen, [(100, 0), (5000, 5000)], "{seen:?}");
    assert_eq!(held, [(5000, 5000)], "weights held while paused");
    let status = StatusFile::new(&stack.state, "default", "qwen-canary")
        .load()
        .unwrap();
    assert_eq!(status.pause.unwrap().reason, PauseReason::ShedRate);
    let analysis = status.analysis.unwrap();
    eprintln!("weights {seen:?}\nlast window {:?}", analysis.last);
    assert_eq!(
        analysis.failed_checks, 0,
        "shedding is no failure: {analysis:?}"
    );
    let shed = last_verdict(&analysis, "shedding");
    assert_eq!(shed.verdict, Verdict::Fail, "{shed:?}");
    assert!(shed.canary.unwrap() > 0.05, "{shed:?}");
    let errors = last_verdict(&analysis, "server-errors");
    assert_eq!(
        errors.verdict,
        Verdict::Pass,
        "429 is not a server error: {errors:?}"
    );
}

#[tokio::test]
async fn the_local_admin_api_needs_a_valid_token_and_its_actions_drive_the_rollout() {
    use std::sync::Arc;

    use switchyard_rollout::admin::{AdminState, Authenticator, Store, TokenFile, router};
    use switchyard_rollout::local::store::LocalStore;

    const TOKEN: &str = "local-admin-token-0123456789";
    let mut stack = Stack::start().await;
    let store = LocalStore::new(
        stack.dir.path().to_path_buf(),
        stack.state.clone(),
        Arc::clone(&stack.status_lock),
    );
    let state = AdminState {
        store: Store::Local(Arc::new(store)),
        auth: Arc::new(Authenticator::TokenFile(
            TokenFile::parse(&format!("{TOKEN} alice\n")).unwrap(),
        )),
        metrics: switchyard_rollout::metrics::Metrics::new(),
        clock: Arc::new(k8s_openapi::jiff::Timestamp::now),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    let r = format!("{admin}/api/v1/namespaces/default/inferencerollouts/qwen-canary");

    let rollout = stack.rollout(&[2000, 5000]);
    let load = stack.load(8);
    // Started: the first step's weight is on the route.
    drive(&mut stack, &rollout, Duration::from_secs(20), |status| {
        status
            .weights
            .as_ref()
            .and_then(|w| w.applied.as_ref())
            .map(|a| a.canary)
            == Some(2000)
    })
    .await;

    let client = &switchyard_local::client::HttpClient::new();
    let bearer = |token: &str| format!("Bearer {token}");
    let pause_body = json!({"reason": "looking at a dashboard"}).to_string();
    let no_token = client
        .post(
            &format!("{r}/pause"),
            &[("content-type", "application/json")],
            pause_body.clone(),
        )
        .await
        .unwrap();
    assert_eq!(no_token.status.as_u16(), 401, "{}", no_token.text());
    let wrong = bearer("not-the-token-0123456789");
    let wrong_token = client
        .post(
            &format!("{r}/pause"),
            &[("authorization", &wrong)],
            pause_body.clone(),
        )
        .await
        .unwrap();
    assert_eq!(wrong_token.status.as_u16(), 401, "{}", wrong_token.text());
    let read = client.get(&r, &[]).await.unwrap();
    assert_eq!(read.status.as_u16(), 401, "reads need a token too");

    let good = bearer(TOKEN);
    let paused = client
        .post(
            &format!("{r}/pause"),
            &[("authorization", &good), ("idempotency-key", "pause-1")],
            pause_body.clone(),
        )
        .await
        .unwrap();
    assert_eq!(paused.status.as_u16(), 202, "{}", paused.text());
    // The same key again is a no-op, not a second action.
    let again = client
        .post(
            &format!("{r}/pause"),
            &[("authorization", &good), ("idempotency-key", "pause-1")],
            pause_body.clone(),
        )
        .await
        .unwrap();
    assert_eq!(again.status.as_u16(), 202, "{}", again.text());
    let held = drive(&mut stack, &rollout, Duration::from_secs(10), |status| {
        status.phase == Some(Phase::Paused)
    })
    .await;
    assert_eq!(held.last(), Some(&(8000, 2000)));
    let status = StatusFile::new(&stack.state, "default", "qwen-canary")
        .load()
        .unwrap();
    assert_eq!(status.pause.unwrap().reason, PauseReason::Admin);
    assert_eq!(status.intent.as_ref().unwrap().by, "alice");
    // A second pause is refused by the state, a weight above the last step by safety.
    let twice = client
        .post(
            &format!("{r}/pause"),
            &[("authorization", &good)],
            pause_body,
        )
        .await
        .unwrap();
    assert_eq!(twice.status.as_u16(), 409, "{}", twice.text());
    let too_much = client
        .request(
            http::Method::PUT,
            &format!("{r}/weight"),
            &[
                ("authorization", &good),
                ("content-type", "application/json"),
            ],
            json!({"canary": 10000}).to_string().into(),
        )
        .await
        .unwrap();
    assert_eq!(too_much.status.as_u16(), 422, "{}", too_much.text());
    let got = client.get(&r, &[("authorization", &good)]).await.unwrap();
    assert_eq!(got.status.as_u16(), 200, "{}", got.text());
    let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body["phase"], "Paused", "{body}");
    assert_eq!(body["route"]["canary"], 2000, "{body}");

    // Promote all the way: the rollout finishes with the canary at 100 %.
    let promoted = client
        .post(
            &format!("{r}/promote"),
            &[("authorization", &good)],
            json!({"mode": "full"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(promoted.status.as_u16(), 202, "{}", promoted.text());
    let seen = drive(&mut stack, &rollout, Duration::from_secs(20), |status| {
        status.phase == Some(Phase::Succeeded)
    })
    .await;
    load.stop().await;
    assert_eq!(seen.last(), Some(&(0, 10_000)), "{seen:?}");
}

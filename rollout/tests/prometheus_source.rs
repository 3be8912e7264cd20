//! The Prometheus source against a real Prometheus (Debian package
//! `prometheus`, or `$SWITCHYARD_PROMETHEUS`) scraping two simulator replicas:
//! a stable one and a canary whose prefill is 10× slower.
//!
//! Skipped, with a message, when no Prometheus executable is found
//! (`apt-get install prometheus`).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use switchyard_api::InferenceRolloutSpec;
use switchyard_api::rollout::{
    AnalysisSpec, InferenceRolloutStatus, MetricCheck, MetricType, Phase, PrometheusSource,
    StatusClass, Verdict, Weights,
};
use switchyard_rollout::controller::observe;
use switchyard_rollout::judge::judge_all;
use switchyard_rollout::plan;
use switchyard_rollout::prometheus::queries::Arms;
use switchyard_rollout::prometheus::{AllowedAddresses, Prometheus};
use switchyard_rollout::route::RouteView;
use switchyard_sim::faults::Faults;

const ARMS: Arms<'static> = Arms {
    canary: "canary",
    stable: "stable",
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judges_a_slow_canary_from_real_prometheus_data() {
    let Some(binary) = common::prometheus_binary() else {
        eprintln!(
            "SKIPPED: no prometheus executable (apt-get install prometheus, or set {})",
            common::PROMETHEUS_ENV
        );
        return;
    };
    let stable = common::replica("stable-0", "qwen", Faults::default()).await;
    let slow = Faults {
        prefill_multiplier: 10.0,
        ..Faults::default()
    };
    let canary = common::replica("canary-0", "qwen", slow).await;
    let prometheus = common::start_prometheus(
        &binary,
        &[
            ("stable", stable.addr, "stable"),
            ("canary", canary.addr, "canary"),
        ],
    )
    .await;
    let client = Prometheus::new(
        &PrometheusSource::at(&prometheus.address),
        &AllowedAddresses::any(),
    )
    .unwrap();

    // Both targets scraped at least once before traffic, so counters start at 0.
    wait_for(&client, "count(up == 1)", 2.0).await;
    let (a, b) = tokio::join!(
        common::send_chats(stable.addr, "qwen", 60),
        common::send_chats(canary.addr, "qwen", 60),
    );
    assert!(a.iter().chain(&b).all(|s| *s == 200), "{a:?} {b:?}");
    wait_for(
        &client,
        "sum(vllm:request_success_total{inference_pool=\"canary\"})",
        60.0,
    )
    .await;
    wait_for(
        &client,
        "sum(vllm:request_success_total{inference_pool=\"stable\"})",
        60.0,
    )
    .await;
    // One more scrape so the increase over the window sees the final counts.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let ttft = metric("ttft-p95", MetricType::Ttft, |m| {
        m.max_ratio_vs_stable = Some(2.0)
    });
    let itl = metric("itl-p95", MetricType::InterTokenLatency, |m| {
        m.max = Some(60.0)
    });
    let tokens = metric("tokens", MetricType::OutputTokenThroughput, |m| {
        m.min = Some(0.0)
    });
    let targets_up = metric("up", MetricType::Query, |m| {
        m.query = Some("sum(up{{{selector}}})".into());
        m.min = Some(1.0);
    });
    // No EPP is scraped here, so the EPP's error counters have no series.
    let errors = metric("server-errors", MetricType::ErrorRate, |m| {
        m.status_classes = vec![StatusClass::Server];
        m.max = Some(0.01);
    });
    let spec = AnalysisSpec {
        min_requests_per_window: 50,
        metrics: vec![ttft, itl, tokens, targets_up, errors],
        ..AnalysisSpec::default()
    };
    let end = Timestamp::now();
    let mut measurements = Vec::new();
    for check in &spec.metrics {
        measurements.push(client.measure(check, &ARMS, 60, end).await);
    }
    let mut results = measurements.into_iter();
    let verdicts = judge_all(&spec, |_| results.next().unwrap());
    let by_name = |name: &str| verdicts.iter().find(|v| v.name == name).unwrap().clone();

    let ttft = by_name("ttft-p95");
    assert_eq!(ttft.verdict, Verdict::Fail, "{ttft:?}");
    assert!(
        ttft.canary.unwrap() > 2.0 * ttft.stable.unwrap(),
        "{ttft:?}"
    );
    assert!(ttft.samples.unwrap() >= 60, "{ttft:?}");
    assert_eq!(
        by_name("itl-p95").verdict,
        Verdict::Pass,
        "{:?}",
        by_name("itl-p95")
    );
    let tokens = by_name("tokens");
    assert_eq!(tokens.verdict, Verdict::Pass, "{tokens:?}");
    assert!(tokens.canary.unwrap() > 0.0);
    assert_eq!(by_name("up").verdict, Verdict::Pass, "{:?}", by_name("up"));
    let errors = by_name("server-errors");
    assert_eq!(errors.verdict, Verdict::NoData, "{errors:?}");
    assert!(
        errors.message.contains("fewer than minRequestsPerWindow"),
        "{errors:?}"
    );

    // The controller's own path: the due window is measured through Prometheus,
    // judged, and the planner rolls back at once (failureThreshold 1).
    controller_rolls_back_on_the_measured_window(&prometheus.address).await;

    // Query errors come back from the real server with its explanation.
    let err = client
        .instant("sum(rate(", end)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad_data"), "{err}");
    let err = client.instant("up", end).await.unwrap_err().to_string();
    assert!(err.contains("returned 2 series"), "{err}");
    assert_eq!(
        client.instant("absent_metric_xyz", end).await.unwrap(),
        None
    );
}

fn metric(name: &str, type_: MetricType, edit: impl FnOnce(&mut MetricCheck)) -> MetricCheck {
    let mut check = MetricCheck::new(name, type_);
    edit(&mut check);
    check
}

/// Polls `query` until it is at least `at_least` (scrapes land every second).
async fn wait_for(client: &Prometheus, query: &str, at_least: f64) {
    for _ in 0..150 {
        if client
            .instant(query, Timestamp::now())
            .await
            .unwrap()
            .is_some_and(|v| v >= at_least)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{query} never reached {at_least}");
}

async fn controller_rolls_back_on_the_measured_window(address: &str) {
    let spec: InferenceRolloutSpec = serde_json::from_value(serde_json::json!({
        "target": {"mode": "PoolSplit", "route": {"name": "llm-route", "ruleName": "chat"},
                   "stable": {"name": "stable"}, "canary": {"name": "canary"}},
        "strategy": {"steps": [{"weight": 1000}, {"weight": 5000}], "analysisInterval": "30s",
                     "settleTime": "0s", "failureThreshold": 1},
        "analysis": {"source": {"prometheus": {"address": address}}, "minRequestsPerWindow": 50,
                     "metrics": [{"name": "ttft-p95", "type": "TTFT", "maxRatioVsStable": 2.0}]}
    }))
    .unwrap();
    let now = Timestamp::now();
    let verified = Timestamp::from_second(now.as_second() - 60).unwrap();
    let status: InferenceRolloutStatus = serde_json::from_value(serde_json::json!({
        "rolloutHash": plan::rollout_hash(&spec),
        "phase": "Progressing", "currentStep": 0,
        "stepStartedAt": verified.to_string(),
        "weights": {"desired": {"stable": 9000, "canary": 1000},
                    "applied": {"stable": 9000, "canary": 1000, "routeGeneration": 3, "verifiedAt": verified.to_string()}}
    }))
    .unwrap();
    let window = observe::analysis(&spec, &status, now, &AllowedAddresses::any())
        .await
        .expect("a window is due");
    assert_eq!(window.verdicts.len(), 1);
    assert_eq!(
        window.verdicts[0].verdict,
        Verdict::Fail,
        "{:?}",
        window.verdicts[0]
    );
    let view = RouteView {
        rule_index: 0,
        stable_index: 0,
        canary_index: 1,
        stable_weight: Some(9000),
        canary_weight: Some(1000),
        generation: Some(3),
        parents_accepted: true,
    };
    let observations = plan::Observations {
        now,
        generation: Some(1),
        route: plan::RouteObservation::Found(view),
        canary_ready: 1,
        stable_ready: 1,
        analysis: Some(window),
        conflict_with: None,
    };
    let decision = plan::plan(&spec, &status, &observations);
    assert_eq!(decision.write, Some(Weights::ALL_STABLE));
    assert_eq!(decision.status.phase, Some(Phase::RollingBack));
    let reasons: Vec<&str> = decision.events.iter().map(|e| e.reason).collect();
    assert_eq!(reasons, ["AnalysisFailed", "RollingBack"]);
}

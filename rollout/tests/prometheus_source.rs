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
use switchyard_api::rollout::{
    AnalysisSpec, MetricCheck, MetricType, PrometheusSource, StatusClass, Verdict,
};
use switchyard_rollout::judge::judge_all;
use switchyard_rollout::prometheus::Prometheus;
use switchyard_rollout::prometheus::queries::Arms;
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
    let client = Prometheus::new(&PrometheusSource::at(&prometheus.address)).unwrap();

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

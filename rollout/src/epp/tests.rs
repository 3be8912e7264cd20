#![allow(clippy::unwrap_used)]

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use switchyard_api::rollout::{AnalysisSpec, MetricCheck, MetricType, StatusClass, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::page::{ArmFilter, Histogram, totals};
use super::window::{ArmWindow, measure, quantile, window};
use super::{ArmTarget, EppScraper};
use crate::plan::Window;

/// A page as our EPP writes it: two models, one of them rewritten.
pub(crate) fn page(scale: f64) -> String {
    let n = |v: f64| v * scale;
    format!(
        r#"# HELP inference_objective_request Requests scheduled
# TYPE inference_objective_request counter
inference_objective_request_total{{model_name="qwen",target_model_name="qwen",priority="0"}} {}
inference_objective_request_total{{model_name="food",target_model_name="food-2",priority="0"}} {}
inference_objective_request_error_total{{model_name="qwen",target_model_name="qwen",error_code="BadRequest"}} {}
inference_objective_request_error_total{{model_name="qwen",target_model_name="qwen",error_code="ResourceExhausted"}} {}
inference_objective_request_error_total{{model_name="qwen",target_model_name="qwen",error_code="ServiceUnavailable"}} 0
inference_objective_request_error_total{{model_name="qwen",target_model_name="qwen",error_code="Internal"}} {}
switchyard_epp_model_server_responses_total{{model_name="qwen",target_model_name="qwen",status_class="2xx"}} {}
switchyard_epp_model_server_responses_total{{model_name="qwen",target_model_name="qwen",status_class="4xx"}} {}
switchyard_epp_model_server_responses_total{{model_name="qwen",target_model_name="qwen",status_class="429"}} {}
switchyard_epp_model_server_responses_total{{model_name="qwen",target_model_name="qwen",status_class="5xx"}} {}
inference_objective_request_ttft_seconds_sum{{model_name="qwen",target_model_name="qwen"}} 1.0
inference_objective_request_ttft_seconds_count{{model_name="qwen",target_model_name="qwen"}} {}
inference_objective_request_ttft_seconds_bucket{{le="0.1",model_name="qwen",target_model_name="qwen"}} {}
inference_objective_request_ttft_seconds_bucket{{le="0.2",model_name="qwen",target_model_name="qwen"}} {}
inference_objective_request_ttft_seconds_bucket{{le="+Inf",model_name="qwen",target_model_name="qwen"}} {}
inference_objective_request_tpot_seconds_count{{model_name="qwen",target_model_name="qwen"}} {}
inference_objective_request_tpot_seconds_bucket{{le="0.01",model_name="qwen",target_model_name="qwen"}} {}
inference_objective_request_tpot_seconds_bucket{{le="+Inf",model_name="qwen",target_model_name="qwen"}} {}
inference_objective_output_tokens_sum{{model_name="qwen",target_model_name="qwen"}} {}
inference_objective_output_tokens_sum{{model_name="food",target_model_name="food-2"}} 7
inference_pool_ready_pods{{name="qwen-pool"}} 2
inference_pool_ready_pods{{name="other-pool"}} 5
inference_objective_request_duration_seconds_bucket{{le="0.1",model_name="qwen",target_model_name="qwen"}} 99
# EOF
"#,
        n(100.0),
        n(10.0),
        n(2.0),
        n(3.0),
        n(1.0),
        n(90.0),
        n(4.0),
        n(1.0),
        n(5.0),
        n(80.0),
        n(60.0),
        n(75.0),
        n(80.0),
        n(80.0),
        n(70.0),
        n(80.0),
        n(2000.0),
    )
}

#[test]
fn a_page_is_summed_over_models_and_filtered_by_pool() {
    let all = totals(
        &page(1.0),
        ArmFilter {
            pool: Some("qwen-pool"),
            target_model: None,
        },
    );
    assert_eq!(all.requests, 110.0);
    assert_eq!(all.epp_errors, [2.0, 3.0, 0.0, 1.0]);
    assert_eq!(all.responses, [90.0, 0.0, 4.0, 1.0, 5.0]);
    assert_eq!(all.ttft.count, 80.0);
    assert_eq!(
        all.ttft.buckets,
        [(0.1, 60.0), (0.2, 75.0), (f64::INFINITY, 80.0)]
    );
    assert_eq!(all.tpot.buckets, [(0.01, 70.0), (f64::INFINITY, 80.0)]);
    assert_eq!(all.output_tokens, 2007.0);
    assert_eq!(all.ready_pods, Some(2.0));
    assert_eq!(all.malformed_lines, 0);

    let one_model = totals(
        &page(1.0),
        ArmFilter {
            pool: None,
            target_model: Some("food-2"),
        },
    );
    assert_eq!(one_model.requests, 10.0);
    assert_eq!(one_model.output_tokens, 7.0);
    assert_eq!(
        one_model.ready_pods,
        Some(7.0),
        "any pool when none is named"
    );
}

#[test]
fn bad_lines_are_counted_and_never_fatal() {
    let text = "inference_objective_request_total{model_name=\"a\"} 5\n\
inference_objective_request_total{model_name=\"unterminated} 3\n\
inference_objective_request_total{model_name=\"a\"} not-a-number\n\
inference_objective_request_total\n\
inference_objective_request_ttft_seconds_bucket{le=\"x\"} 4\n\
inference_objective_request_total{model_name=\"b}\\\"\"} 2\n\
unrelated garbage {{{ ]]\n\
\u{0}\u{ffff} \n";
    let t = totals(text, ArmFilter::default());
    assert_eq!(t.requests, 7.0, "the good lines still count");
    assert_eq!(t.malformed_lines, 4);
    assert_eq!(totals("", ArmFilter::default()), Default::default());
}

#[test]
fn quantiles_interpolate_inside_the_bucket() {
    let h = Histogram {
        buckets: vec![(0.1, 60.0), (0.2, 75.0), (f64::INFINITY, 80.0)],
        count: 80.0,
    };
    // rank 40 of 60 in [0, 0.1].
    assert!((quantile(&h, 0.5).unwrap() - 0.0666).abs() < 1e-3);
    // rank 68 → 8 of 15 in (0.1, 0.2].
    assert!((quantile(&h, 0.85).unwrap() - 0.1533).abs() < 1e-3);
    // In the +Inf bucket: the highest finite bound.
    assert_eq!(quantile(&h, 0.99), Some(0.2));
    assert_eq!(quantile(&Histogram::default(), 0.5), None);
    assert_eq!(quantile(&h, f64::NAN), None);
}

#[test]
fn a_window_is_the_increase_and_survives_an_epp_restart() {
    let filter = ArmFilter {
        pool: Some("qwen-pool"),
        target_model: None,
    };
    let before = totals(&page(1.0), filter);
    let after = totals(&page(3.0), filter);
    let w = window(&before, &after, 10.0);
    assert_eq!(w.delta.requests, 220.0);
    assert_eq!(w.delta.responses[4], 10.0);
    assert_eq!(w.delta.ttft.count, 160.0);
    assert_eq!(w.delta.ttft.buckets[0], (0.1, 120.0));
    assert_eq!(w.ready_pods, Some(2.0));
    // The EPP restarted: lower counters are the window's whole increase.
    let restarted = totals(&page(0.5), filter);
    let w = window(&after, &restarted, 10.0);
    assert_eq!(w.delta.requests, 55.0);
    assert_eq!(w.delta.ttft.count, 40.0);
}

fn arm(page_scale: (f64, f64), seconds: f64) -> ArmWindow {
    let filter = ArmFilter {
        pool: Some("qwen-pool"),
        target_model: None,
    };
    window(
        &totals(&page(page_scale.0), filter),
        &totals(&page(page_scale.1), filter),
        seconds,
    )
}

#[test]
fn every_metric_type_from_one_window() {
    let canary = arm((1.0, 2.0), 10.0);
    let stable = arm((0.0, 1.0), 10.0);
    // Attempts: 110 scheduled + 6 answered by the EPP.
    let value = |check: &MetricCheck| canary.value(check).unwrap();
    let mut server = MetricCheck::new("5xx", MetricType::ErrorRate);
    server.status_classes = vec![StatusClass::Server];
    assert_eq!(value(&server), (Some(6.0 / 116.0), 116.0));
    let mut client = MetricCheck::new("4xx", MetricType::ErrorRate);
    client.status_classes = vec![StatusClass::Client];
    client.exclude_codes = vec![429];
    assert_eq!(value(&client), (Some(6.0 / 116.0), 116.0));
    let mut both = MetricCheck::new("all", MetricType::ErrorRate);
    both.status_classes = vec![StatusClass::Server, StatusClass::Client];
    assert_eq!(value(&both).0, Some(12.0 / 116.0));
    let shed = MetricCheck::new("shed", MetricType::ShedRate);
    assert_eq!(value(&shed).0, Some(4.0 / 116.0));
    let ttft = MetricCheck::new("ttft", MetricType::Ttft);
    let (p95, samples) = value(&ttft);
    assert_eq!(samples, 80.0);
    assert!((p95.unwrap() - 0.2).abs() < 1e-9, "{p95:?}");
    let itl = MetricCheck::new("itl", MetricType::InterTokenLatency);
    // Rank 76 of 80 lies in the +Inf bucket: the highest finite bound.
    assert_eq!(value(&itl), (Some(0.01), 80.0));
    let tokens = MetricCheck::new("tok", MetricType::OutputTokenThroughput);
    // The food model's 7 tokens did not move: 2000 tokens in 10 s on 2 endpoints.
    assert_eq!(value(&tokens), (Some(2000.0 / 10.0 / 2.0), 110.0));

    let m = measure(&server, &canary, &stable).unwrap();
    assert_eq!(m.canary, Some(6.0 / 116.0));
    assert_eq!(m.stable, Some(6.0 / 116.0));
    assert_eq!(m.canary_requests, Some(116.0));
}

#[test]
fn m10_an_error_rate_without_status_classes_counts_5xx_only() {
    // The canary's window holds 6 server and 6 client errors; clients can
    // provoke the 4xx at will, so by default they do not count.
    let canary = arm((1.0, 2.0), 10.0);
    let default = MetricCheck::new("errors", MetricType::ErrorRate);
    assert_eq!(canary.value(&default).unwrap(), (Some(6.0 / 116.0), 116.0));
}

#[test]
fn what_the_epp_source_cannot_measure_is_an_error_or_no_value() {
    let canary = arm((1.0, 2.0), 10.0);
    let mut excluded = MetricCheck::new("5xx", MetricType::ErrorRate);
    excluded.exclude_codes = vec![503];
    let err = canary.value(&excluded).unwrap_err();
    assert!(err.contains("excludeCodes 503"), "{err}");
    let query = MetricCheck::new("q", MetricType::Query);
    assert!(canary.value(&query).unwrap_err().contains("prometheus"));
    // No traffic: no rate, no quantile, and zero requests for the minimum.
    let idle = arm((1.0, 1.0), 10.0);
    let shed = MetricCheck::new("shed", MetricType::ShedRate);
    assert_eq!(idle.value(&shed).unwrap(), (None, 0.0));
    let ttft = MetricCheck::new("ttft", MetricType::Ttft);
    assert_eq!(idle.value(&ttft).unwrap(), (None, 0.0));
    // No ready endpoints: no per-endpoint throughput.
    let mut unready = arm((1.0, 2.0), 10.0);
    unready.ready_pods = Some(0.0);
    let tokens = MetricCheck::new("tok", MetricType::OutputTokenThroughput);
    assert_eq!(unready.value(&tokens).unwrap().0, None);
}

/// Serves `pages` in turn as `/metrics` answers (the last one repeated).
pub(crate) async fn serve_pages(pages: Vec<(u16, String)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut served = 0;
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (status, body) = pages[served.min(pages.len() - 1)].clone();
            served += 1;
            let mut buffer = [0u8; 4096];
            let _ = socket.read(&mut buffer).await;
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    format!("http://{address}/metrics")
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn analysis_spec() -> AnalysisSpec {
    let mut spec: AnalysisSpec = serde_json::from_str("{}").unwrap();
    spec.min_requests_per_window = 10;
    let mut server = MetricCheck::new("5xx", MetricType::ErrorRate);
    server.status_classes = vec![StatusClass::Server];
    server.max = Some(0.01);
    spec.metrics = vec![server];
    spec
}

#[tokio::test]
async fn windows_compare_a_scrape_at_the_end_with_one_before_the_start() {
    let canary = ArmTarget {
        url: serve_pages(vec![(200, page(1.0)), (200, page(2.0))]).await,
        pool: Some("qwen-pool".into()),
        target_model: None,
    };
    let stable = ArmTarget {
        url: serve_pages(vec![(200, page(0.0)), (200, page(0.0))]).await,
        pool: Some("qwen-pool".into()),
        target_model: None,
    };
    let mut scraper = EppScraper::new(Duration::from_secs(2));
    let window = Window {
        start: at(10),
        end: at(20),
    };
    // Nothing scraped before the window: no data, with the reason.
    let verdicts = scraper
        .analyse(&analysis_spec(), &canary, &stable, &window)
        .await;
    assert_eq!(verdicts[0].verdict, Verdict::NoData, "{verdicts:?}");
    assert!(verdicts[0].message.contains("no scrape"), "{verdicts:?}");

    let mut scraper = EppScraper::new(Duration::from_secs(2));
    let canary = ArmTarget {
        url: serve_pages(vec![(200, page(1.0)), (200, page(2.0))]).await,
        ..canary
    };
    let stable = ArmTarget {
        url: serve_pages(vec![(200, page(0.0)), (200, page(0.0))]).await,
        ..stable
    };
    scraper.scrape_if_due(&canary, at(9), 5_000).await.unwrap();
    scraper.scrape_if_due(&stable, at(9), 5_000).await.unwrap();
    // Not due again within the interval (the server would move on otherwise).
    scraper.scrape_if_due(&canary, at(12), 5_000).await.unwrap();
    let verdicts = scraper
        .analyse(&analysis_spec(), &canary, &stable, &window)
        .await;
    // 6 server errors of 116 requests: above 1 %.
    assert_eq!(verdicts[0].verdict, Verdict::Fail, "{verdicts:?}");
    assert_eq!(verdicts[0].samples, Some(116));
    assert_eq!(verdicts[0].stable, None, "stable had no requests");
}

#[tokio::test]
async fn scrape_failures_say_what_to_fix() {
    let mut scraper = EppScraper::new(Duration::from_millis(500));
    let closed = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let target = |url: String| ArmTarget {
        url,
        pool: None,
        target_model: None,
    };
    let err = scraper
        .scrape(&target(format!("http://{closed}/metrics")), at(0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot reach the EPP"), "{err}");
    let err = scraper
        .scrape(&target("not a url".into()), at(0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a valid URL"), "{err}");
    let not_found = serve_pages(vec![(404, "no".into())]).await;
    let err = scraper.scrape(&target(not_found), at(0)).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 404"), "{err}");
    // A silent server: the timeout fires.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/metrics", silent.local_addr().unwrap());
    let err = scraper
        .scrape(&target(silent_url), at(0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no answer within"), "{err}");
    drop(silent);
}

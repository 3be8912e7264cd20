//! Reading and trusting the flow headers; the metrics' histograms.

use super::*;
use crate::flow::metrics::{Histogram, QUEUE_DURATION_BUCKETS};

const MARKER: &str = "x-switchyard-trusted-caller";

fn headers() -> Vec<(&'static str, &'static [u8])> {
    vec![
        (":path", b"/v1/chat/completions"),
        ("x-gateway-inference-fairness-id", b"tenant-a"),
        ("x-gateway-inference-objective", b"chat"),
        ("x-llm-d-inference-ttl", b"1500ms"),
    ]
}

#[test]
fn trusted_callers_set_flow_priority_and_ttl() {
    let hdrs = headers();
    let read = FlowHeaders::read(&hdrs, &HeaderTrust::Always);
    assert_eq!(
        read,
        FlowHeaders {
            fairness_id: "tenant-a",
            objective: Some("chat"),
            ttl: Some(Duration::from_millis(1500)),
            trusted: true,
        }
    );
}

#[test]
fn untrusted_callers_get_the_default_flow() {
    let hdrs = headers();
    for trust in [HeaderTrust::Never, HeaderTrust::WhenMarked(MARKER.into())] {
        let read = FlowHeaders::read(&hdrs, &trust);
        assert_eq!(
            read,
            FlowHeaders {
                fairness_id: "default-flow",
                objective: None,
                ttl: None,
                trusted: false,
            },
            "{trust:?}"
        );
    }
    let mut marked = headers();
    marked.push((MARKER, b"1"));
    let trust = HeaderTrust::WhenMarked(MARKER.into());
    assert!(FlowHeaders::read(&marked, &trust).trusted);
    assert_eq!(trust.marker(), Some(MARKER));
}

#[test]
fn llm_d_names_are_read_and_bad_values_ignored() {
    let hdrs: Vec<(&str, &[u8])> = vec![
        ("x-llm-d-inference-fairness-id", b"tenant-b"),
        ("x-llm-d-inference-objective", b"batch"),
        ("x-llm-d-inference-ttl", b"soon"),
    ];
    let read = FlowHeaders::read(&hdrs, &HeaderTrust::Always);
    assert_eq!(
        (read.fairness_id, read.objective, read.ttl),
        ("tenant-b", Some("batch"), None)
    );
    let odd: Vec<(&str, &[u8])> = vec![
        ("x-gateway-inference-fairness-id", b"  "),
        ("x-gateway-inference-objective", b"\xff\xfe"),
        ("x-llm-d-inference-ttl", b"0s"),
    ];
    let read = FlowHeaders::read(&odd, &HeaderTrust::Always);
    assert_eq!(
        (read.fairness_id, read.objective, read.ttl),
        ("default-flow", None, None)
    );
    for name in FlowHeaders::STRIPPED {
        assert!(name.starts_with("x-gateway-inference-") || name.starts_with("x-llm-d-inference-"));
    }
}

#[test]
fn histograms_are_cumulative_with_a_sum() {
    let histogram = Histogram::new(&QUEUE_DURATION_BUCKETS);
    histogram.observe(Duration::from_micros(50));
    histogram.observe(Duration::from_millis(30));
    histogram.observe(Duration::from_secs(120));
    let (cumulative, total) = histogram.cumulative();
    assert_eq!(total, 3);
    assert_eq!(cumulative.len(), QUEUE_DURATION_BUCKETS.len());
    assert_eq!(cumulative[0], 1, "≤ 0.1 ms");
    assert_eq!(cumulative[5], 1, "≤ 25 ms");
    assert_eq!(cumulative[6], 2, "≤ 50 ms");
    assert_eq!(*cumulative.last().unwrap(), 2, "120 s is above every bound");
    assert!((histogram.sum_seconds() - 120.03005).abs() < 1e-6);
}

#[test]
fn metrics_count_outcomes() {
    let metrics = FlowMetrics::default();
    metrics.finished(Outcome::EvictedTtl, Duration::from_secs(60));
    metrics.finished(Outcome::Dispatched, Duration::ZERO);
    metrics.finished(Outcome::Dispatched, Duration::ZERO);
    assert_eq!(
        (
            metrics.count(Outcome::Dispatched),
            metrics.count(Outcome::EvictedTtl)
        ),
        (2, 1)
    );
    assert_eq!(
        metrics.queue_duration[Outcome::EvictedTtl.index()]
            .cumulative()
            .1,
        1
    );
}

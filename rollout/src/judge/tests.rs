//! Judging: limits, ratios against stable (including a stable of 0), minimum
//! requests and source errors.

use switchyard_api::rollout::{AnalysisSpec, MetricCheck, MetricType, Verdict};

use super::{Measurement, judge, judge_all, no_data};

fn m(canary: Option<f64>, stable: Option<f64>, requests: Option<f64>) -> Measurement {
    Measurement {
        canary,
        stable,
        canary_requests: requests,
    }
}

fn check(type_: MetricType, edit: impl FnOnce(&mut MetricCheck)) -> MetricCheck {
    let mut check = MetricCheck::new("metric", type_);
    edit(&mut check);
    check
}

#[test]
fn limits_table() {
    let errors_abs = check(MetricType::ErrorRate, |c| c.max = Some(0.01));
    let errors_delta = check(MetricType::ErrorRate, |c| {
        c.max_delta_vs_stable = Some(0.005)
    });
    let ttft_ratio = check(MetricType::Ttft, |c| c.max_ratio_vs_stable = Some(1.25));
    let tokens_ratio = check(MetricType::OutputTokenThroughput, |c| {
        c.min_ratio_vs_stable = Some(0.8)
    });
    let floor = check(MetricType::OutputTokenThroughput, |c| c.min = Some(10.0));
    let cases = [
        (&errors_abs, m(Some(0.0), None, Some(500.0)), Verdict::Pass),
        (&errors_abs, m(Some(0.05), None, Some(500.0)), Verdict::Fail),
        (&errors_abs, m(Some(0.01), None, Some(500.0)), Verdict::Pass),
        (
            &errors_abs,
            m(Some(0.05), None, Some(50.0)),
            Verdict::NoData,
        ),
        (&errors_abs, m(None, None, Some(500.0)), Verdict::NoData),
        (
            &errors_abs,
            m(Some(f64::NAN), None, Some(500.0)),
            Verdict::NoData,
        ),
        (
            &errors_delta,
            m(Some(0.012), Some(0.01), Some(500.0)),
            Verdict::Pass,
        ),
        (
            &errors_delta,
            m(Some(0.02), Some(0.01), Some(500.0)),
            Verdict::Fail,
        ),
        (
            &errors_delta,
            m(Some(0.02), None, Some(500.0)),
            Verdict::NoData,
        ),
        (
            &ttft_ratio,
            m(Some(1.2), Some(1.0), Some(500.0)),
            Verdict::Pass,
        ),
        (
            &ttft_ratio,
            m(Some(1.3), Some(1.0), Some(500.0)),
            Verdict::Fail,
        ),
        (
            &ttft_ratio,
            m(Some(0.0), Some(0.0), Some(500.0)),
            Verdict::Pass,
        ),
        (
            &ttft_ratio,
            m(Some(0.1), Some(0.0), Some(500.0)),
            Verdict::Fail,
        ),
        (
            &tokens_ratio,
            m(Some(90.0), Some(100.0), Some(500.0)),
            Verdict::Pass,
        ),
        (
            &tokens_ratio,
            m(Some(70.0), Some(100.0), Some(500.0)),
            Verdict::Fail,
        ),
        (
            &tokens_ratio,
            m(Some(5.0), Some(0.0), Some(500.0)),
            Verdict::Pass,
        ),
        (&floor, m(Some(9.0), None, Some(500.0)), Verdict::Fail),
        (&floor, m(Some(11.0), None, None), Verdict::Pass),
    ];
    for (i, (check, measurement, expected)) in cases.into_iter().enumerate() {
        let verdict = judge(check, 100, measurement);
        assert_eq!(
            verdict.verdict, expected,
            "case {i}: {measurement:?} → {verdict:?}"
        );
        if expected != Verdict::Pass {
            assert!(!verdict.message.is_empty(), "case {i} has no message");
        }
    }
}

#[test]
fn query_metrics_ignore_the_request_minimum() {
    let query = check(MetricType::Query, |c| {
        c.max = Some(0.0);
        c.query = Some("x".into());
    });
    assert_eq!(
        judge(&query, 100, m(Some(0.0), None, Some(3.0))).verdict,
        Verdict::Pass
    );
    assert_eq!(
        judge(&query, 100, m(Some(1.0), None, Some(3.0))).verdict,
        Verdict::Fail
    );
}

#[test]
fn verdict_carries_values_and_samples() {
    let c = check(MetricType::Ttft, |c| c.max = Some(2.0));
    let v = judge(&c, 10, m(Some(0.91), Some(0.84), Some(412.4)));
    assert_eq!(
        (v.canary, v.stable, v.samples),
        (Some(0.91), Some(0.84), Some(412))
    );
    assert_eq!(v.name, "metric");
}

#[test]
fn a_source_error_is_no_data_with_the_error_not_a_pass() {
    let spec = AnalysisSpec {
        metrics: vec![
            check(MetricType::ErrorRate, |c| c.max = Some(0.01)),
            check(MetricType::Ttft, |c| {
                c.name = "ttft".into();
                c.max = Some(1.0);
            }),
        ],
        ..AnalysisSpec::default()
    };
    let verdicts = judge_all(&spec, |c| {
        if c.name == "ttft" {
            Err("connection refused")
        } else {
            Ok(m(Some(0.0), Some(0.0), Some(1000.0)))
        }
    });
    assert_eq!(verdicts[0].verdict, Verdict::Pass);
    assert_eq!(verdicts[1].verdict, Verdict::NoData);
    assert!(verdicts[1].message.contains("connection refused"));
}

#[test]
fn no_data_names_every_metric_with_the_reason_and_no_values() {
    let spec = AnalysisSpec {
        metrics: vec![
            check(MetricType::ErrorRate, |c| c.max = Some(0.01)),
            check(MetricType::Ttft, |c| c.name = "ttft".into()),
        ],
        ..AnalysisSpec::default()
    };
    let verdicts = no_data(&spec, "the picker Service has no metrics port");
    let names: Vec<&str> = verdicts.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["metric", "ttft"]);
    for v in &verdicts {
        assert_eq!(v.verdict, Verdict::NoData);
        assert_eq!(v.message, "the picker Service has no metrics port");
        assert_eq!((v.canary, v.stable, v.samples), (None, None, None));
    }
}

//! Decoding the `flowControl` section and the saturation detector.

use super::*;
use crate::error::Error;
use crate::flow::config::{
    DEFAULT_BAND_MAX_BYTES, DEFAULT_BAND_MAX_REQUESTS, parse_go_duration, parse_quantity,
};

fn error_text(yaml: &str) -> String {
    match FlowControlConfig::from_yaml(yaml) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn defaults_without_a_section_follow_upstream() {
    let config = FlowControlConfig::from_yaml("schedulingProfiles: [{name: a}]\n").unwrap();
    assert!(!config.enabled, "the feature gate is off");
    assert_eq!((config.max_requests, config.max_bytes), (0, 0));
    assert_eq!(config.default_request_ttl, Some(secs(60)));
    assert_eq!(config.no_endpoint_request_ttl, Some(secs(60)));
    let band = config.band(42);
    assert_eq!(
        (band.max_requests, band.max_bytes),
        (DEFAULT_BAND_MAX_REQUESTS, DEFAULT_BAND_MAX_BYTES)
    );
    assert_eq!(
        (band.fairness, band.ordering),
        (Fairness::GlobalStrict, Ordering::Fcfs)
    );
    assert_eq!(
        config.detector,
        DetectorConfig::Utilization {
            queue_depth: 5.0,
            kv_cache: 0.8,
            // Not upstream's 200 ms: twice the scrape timeout (M1).
            staleness: Duration::from_secs(2)
        }
    );
}

/// An upstream-style file with every flow-control plugin type and a full section.
const FULL_SECTION: &str = r#"
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [flowControl]
plugins:
- {name: rr, type: round-robin-fairness-policy}
- {name: edf, type: edf-ordering-policy}
- {name: busy, type: concurrency-detector, parameters: {concurrencyMode: tokens, maxTokenConcurrency: 50000}}
schedulingProfiles: [{name: default, plugins: []}]
flowControl:
  maxBytes: 2Gi
  maxRequests: "10k"
  defaultRequestTTL: 1m30s
  noEndpointRequestTTL: 10m
  defaultPriorityBand: {maxRequests: 100, fairnessPolicyRef: rr}
  defaultNegativePriorityBand: {maxRequests: 10, defaultRequestTTL: 2s}
  priorityBands:
  - {priority: 1, maxBytes: 500M, orderingPolicyRef: edf, defaultRequestTTL: 0s}
  - {priority: -2, maxRequests: 0}
  usageLimitPolicyPluginRef: static-usage-limit-policy
  saturationDetector: {pluginRef: busy}
"#;

#[test]
fn the_scheduler_accepts_the_flow_control_plugins_of_the_same_file() {
    let scheduler = crate::scheduling::SchedulerConfig::from_yaml(FULL_SECTION)
        .expect("round-robin, edf and concurrency-detector are flow-control plugins");
    // The flow types are the flow layer's; the scheduler's profile stays empty.
    assert!(scheduler.scorers.is_empty());
    assert!(FlowControlConfig::from_yaml(FULL_SECTION).unwrap().enabled);
}

#[test]
fn a_full_section_is_decoded() {
    let yaml = FULL_SECTION;
    let config = FlowControlConfig::from_yaml(yaml).unwrap();
    assert!(config.enabled);
    assert_eq!(config.max_bytes, 2 * 1024 * 1024 * 1024);
    assert_eq!(config.max_requests, 10_000);
    assert_eq!(config.default_request_ttl, Some(secs(90)));
    assert_eq!(config.no_endpoint_request_ttl, Some(secs(600)));

    let zero = config.band(0);
    assert_eq!(
        (zero.max_requests, zero.fairness),
        (100, Fairness::RoundRobin)
    );
    let one = config.band(1);
    assert_eq!(
        (one.max_requests, one.max_bytes, one.ordering),
        (100, 500_000_000, Ordering::EarliestDeadline)
    );
    assert_eq!(
        one.fairness,
        Fairness::RoundRobin,
        "an explicit band starts from its template"
    );
    assert_eq!(config.request_ttl(1, None), None, "0s is unbounded");
    assert_eq!(config.band(-1).max_requests, 10, "negative template");
    assert_eq!(config.request_ttl(-1, None), Some(secs(2)));
    assert_eq!(config.band(-2).max_requests, 0);
    assert_eq!(
        config.request_ttl(-2, None),
        Some(secs(2)),
        "the explicit band inherits the negative template's TTL"
    );
    assert_eq!(
        config.detector,
        DetectorConfig::Concurrency {
            tokens: true,
            max_concurrency: 100,
            max_token_concurrency: 50_000
        }
    );
}

#[test]
fn gie_top_level_detector_forms_are_accepted() {
    let by_ref = "plugins: [{type: utilization-detector, parameters: {queueDepthThreshold: 8, kvCacheUtilThreshold: 0.9, metricsStalenessThreshold: 1s}}]\n\
                  saturationDetector: {pluginRef: utilization-detector}\n";
    let expected = DetectorConfig::Utilization {
        queue_depth: 8.0,
        kv_cache: 0.9,
        staleness: secs(1),
    };
    assert_eq!(
        FlowControlConfig::from_yaml(by_ref).unwrap().detector,
        expected
    );
    let inline = "saturationDetector: {queueDepthThreshold: 8, kvCacheUtilThreshold: 0.9, metricsStalenessThreshold: 1s}\n";
    assert_eq!(
        FlowControlConfig::from_yaml(inline).unwrap().detector,
        expected
    );
    let listed_only = "plugins: [{type: concurrency-detector}]\n";
    assert!(matches!(
        FlowControlConfig::from_yaml(listed_only).unwrap().detector,
        DetectorConfig::Concurrency {
            tokens: false,
            max_concurrency: 100,
            ..
        }
    ));
    let unlisted_default = "flowControl: {saturationDetector: {pluginRef: utilization-detector}}\n";
    assert_eq!(
        FlowControlConfig::from_yaml(unlisted_default)
            .unwrap()
            .detector,
        DetectorConfig::default()
    );
}

#[test]
fn bad_input_gives_errors_that_name_the_field() {
    let cases = [
        ("flowControl: {maxBytes: lots}\n", "flowControl.maxBytes"),
        (
            "flowControl: {maxRequests: -3}\n",
            "flowControl.maxRequests",
        ),
        (
            "flowControl: {defaultRequestTTL: soon}\n",
            "flowControl.defaultRequestTTL",
        ),
        (
            "flowControl: {defaultRequestTTL: -1s}\n",
            "flowControl.defaultRequestTTL",
        ),
        (
            "flowControl: {maxRequest: 5}\n",
            "unknown field `maxRequest`",
        ),
        (
            "flowControl: {priorityBands: [{maxBytes: 1}]}\n",
            "priorityBands[0]: `priority` is required",
        ),
        (
            "flowControl: {priorityBands: [{priority: 1}, {priority: 1}]}\n",
            "configured twice",
        ),
        (
            "flowControl: {priorityBands: [{priority: 1, fairnessPolicyRef: lottery}]}\n",
            "priorityBands[0].fairnessPolicyRef",
        ),
        (
            "flowControl: {priorityBands: [{priority: 1, orderingPolicyRef: slo-deadline-ordering-policy}]}\n",
            "fcfs-ordering-policy or edf-ordering-policy",
        ),
        ("flowControl: {enableEviction: true}\n", "enableEviction"),
        (
            "flowControl: {saturationDetector: {pluginRef: nope}}\n",
            "pluginRef `nope` names no entry",
        ),
        (
            "plugins: [{name: d, type: queue-scorer}]\nsaturationDetector: {pluginRef: d}\n",
            "not a saturation detector",
        ),
        (
            "plugins: [{type: concurrency-detector, parameters: {concurrencyMode: bytes}}]\n",
            "concurrencyMode",
        ),
        (
            "plugins: [{type: concurrency-detector, parameters: {maxConcurrency: 0}}]\n",
            "at least 1",
        ),
        (
            "plugins: [{type: utilization-detector, parameters: {queueDepthThreshold: 0}}]\n",
            "must be > 0",
        ),
        (
            "plugins: [{type: utilization-detector, parameters: {metricsStalenessThreshold: later}}]\n",
            "metricsStalenessThreshold",
        ),
        (
            "plugins: [{type: utilization-detector, parameters: {stalenessPolicy: ignore}}]\n",
            "stalenessPolicy",
        ),
        ("saturationDetector: 5\n", "expected a mapping"),
        ("flowControl: [1, 2]\n", "flowControl"),
    ];
    for (yaml, needle) in cases {
        let text = error_text(yaml);
        assert!(text.contains(needle), "{yaml:?}: `{text}` lacks `{needle}`");
        assert!(text.starts_with("invalid EndpointPickerConfig"), "{text}");
    }
    assert!(matches!(
        FlowControlConfig::from_yaml("flowControl: {maxBytes: [\n"),
        Err(Error::ConfigSyntax(_))
    ));
}

#[test]
fn quantities_parse_like_kubernetes() {
    let cases = [
        ("0", Some(0)),
        ("5000", Some(5000)),
        ("1k", Some(1000)),
        ("1.5k", Some(1500)),
        ("1Ki", Some(1024)),
        ("1Gi", Some(1 << 30)),
        ("500M", Some(500_000_000)),
        ("1G", Some(1_000_000_000)),
        ("2e3", Some(2000)),
        ("1500m", Some(2)),
        (" 7 ", Some(7)),
        ("", None),
        ("-1", None),
        ("1Zi", None),
        ("k", None),
        ("1e400", None),
        ("99999999999E", None),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_quantity(text), expected, "{text:?}");
    }
}

#[test]
fn durations_parse_like_go() {
    let cases = [
        ("0", Some(Duration::ZERO)),
        ("0s", Some(Duration::ZERO)),
        ("200ms", Some(Duration::from_millis(200))),
        ("1.5h", Some(secs(5400))),
        ("1m30s", Some(secs(90))),
        ("2h45m", Some(secs(9900))),
        ("300us", Some(Duration::from_micros(300))),
        ("10µs", Some(Duration::from_micros(10))),
        ("7ns", Some(Duration::from_nanos(7))),
        ("", None),
        ("5", None),
        ("s", None),
        ("-1s", None),
        ("1d", None),
        ("1.2.3s", None),
        ("1e999h", None),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_go_duration(text), expected, "{text:?}");
    }
}

//! `InferenceRollout`: manifests parse with the documented defaults, round-trip,
//! and the CRD carries the names, subresource, printer columns and CEL rules the
//! type promises.

#![allow(clippy::unwrap_used)]

mod common;

use common::{load_yaml, open_api_schema};
use kube::CustomResourceExt;
use serde_json::{Value, json};
use switchyard_api::rollout::{
    DriftPolicy, FULL_WEIGHT, IntentAction, MetricCheck, MetricType, NoDataPolicy, OnFail,
    SplitMode, Weights, parse_duration_ms,
};
use switchyard_api::{InferenceRollout, InferenceRolloutStatus};

fn crd() -> Value {
    serde_json::to_value(InferenceRollout::crd()).unwrap()
}

/// Every `x-kubernetes-validations` rule anywhere in `schema`, as (JSON pointer, rule).
fn cel_rules(schema: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(rules)) = map.get("x-kubernetes-validations") {
                for rule in rules {
                    out.push((at.to_owned(), rule["rule"].as_str().unwrap().to_owned()));
                }
            }
            for (key, value) in map {
                cel_rules(value, &format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                cel_rules(item, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn crd_is_served_in_our_group_with_status_subresource() {
    let crd = crd();
    assert_eq!(
        crd["metadata"]["name"],
        "inferencerollouts.rollout.switchyard.dev"
    );
    assert_eq!(crd["spec"]["group"], "rollout.switchyard.dev");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["kind"], "InferenceRollout");
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["infrollout"]));
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["subresources"]["status"], json!({}));
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Phase", "Step", "Canary", "Age"]);
    let served: Vec<String> = switchyard_api::crds::served()
        .into_iter()
        .filter_map(|crd| crd.metadata.name)
        .collect();
    assert!(served.contains(&"inferencerollouts.rollout.switchyard.dev".to_owned()));
}

#[test]
fn crd_carries_every_self_validation_rule() {
    let crd = crd();
    let mut rules = Vec::new();
    cel_rules(open_api_schema(&crd), "", &mut rules);
    let rules: Vec<&str> = rules.iter().map(|(_, rule)| rule.as_str()).collect();
    for expected in [
        "self.mode != 'PoolSplit' || (has(self.route) && has(self.stable) && has(self.canary))",
        "self.mode != 'ModelSplit' || has(self.modelSplit)",
        "!has(self.stable) || !has(self.canary) || self.stable.group != self.canary.group || self.stable.kind != self.canary.kind || self.stable.name != self.canary.name",
        "self.stable != self.canary",
        "self.steps.all(s, s.weight <= self.maxWeight)",
        "self.all(a, self.exists_one(b, a.weight == b.weight))",
        "self.all(a, self.exists_one(b, a.name == b.name))",
        "has(self.epp) != has(self.prometheus)",
        "self.type != 'Query' || has(self.query)",
        "self.type != 'ShedRate' || !has(self.onFail) || self.onFail == 'Pause'",
    ] {
        assert!(
            rules.contains(&expected),
            "missing CEL rule {expected:?} in {rules:#?}"
        );
    }
}

#[test]
fn step_weights_and_status_weights_are_bounded_in_the_schema() {
    let crd = crd();
    let schema = open_api_schema(&crd);
    let step = &schema["properties"]["spec"]["properties"]["strategy"]["properties"]["steps"];
    assert_eq!(step["minItems"], 1);
    assert_eq!(step["items"]["properties"]["weight"]["minimum"], 1.0);
    assert_eq!(step["items"]["properties"]["weight"]["maximum"], 10000.0);
    let desired = &schema["properties"]["status"]["properties"]["weights"]["properties"]["desired"];
    assert_eq!(desired["properties"]["canary"]["maximum"], 10000.0);
    assert_eq!(desired["required"], json!(["canary", "stable"]));
}

#[test]
fn full_manifest_parses_and_round_trips() {
    let document = load_yaml("rollout/full.yaml");
    let rollout: InferenceRollout = serde_json::from_value(document.clone()).unwrap();
    let spec = &rollout.spec;
    assert_eq!(spec.target.mode, SplitMode::PoolSplit);
    let route = spec.target.route.as_ref().unwrap();
    assert_eq!(
        (route.name.as_str(), route.rule_name.as_str()),
        ("llm-route", "chat")
    );
    assert_eq!(route.drift_policy, DriftPolicy::Revert);
    // The stable ref's group and kind default to an InferencePool.
    let stable = spec.target.stable.as_ref().unwrap();
    assert_eq!(stable.group, "inference.networking.k8s.io");
    assert_eq!(stable.kind, "InferencePool");
    assert_eq!(spec.strategy.steps.len(), 5);
    assert!(spec.strategy.steps[3].pause.is_some());
    assert_eq!(
        spec.safety
            .capacity_guard
            .as_ref()
            .unwrap()
            .headroom_percent,
        20
    );
    assert_eq!(spec.analysis.metrics.len(), 7);
    assert_eq!(spec.analysis.metrics[3].type_, MetricType::Ttft);
    assert_eq!(spec.analysis.metrics[6].no_data, Some(NoDataPolicy::Pass));

    // Serialising again gives the manifest back, plus only the defaults it omitted.
    let again = serde_json::to_value(&rollout).unwrap();
    let reparsed: InferenceRollout = serde_json::from_value(again).unwrap();
    assert_eq!(reparsed, rollout);
}

#[test]
fn minimal_manifest_gets_the_documented_defaults() {
    let rollout: InferenceRollout =
        serde_json::from_value(load_yaml("rollout/minimal.yaml")).unwrap();
    let strategy = &rollout.spec.strategy;
    assert_eq!(strategy.analysis_interval, "1m");
    assert_eq!(strategy.successful_checks_per_step, 5);
    assert_eq!(strategy.failure_threshold, 3);
    assert_eq!(strategy.settle_time, "2m");
    assert_eq!(strategy.progress_deadline, "45m");
    assert_eq!(strategy.max_weight, FULL_WEIGHT);
    assert_eq!(rollout.spec.safety.min_canary_ready_endpoints, 1);
    assert!(rollout.spec.safety.capacity_guard.is_none());
    assert_eq!(
        rollout.spec.target.route.as_ref().unwrap().drift_policy,
        DriftPolicy::Pause
    );
    let analysis = &rollout.spec.analysis;
    assert_eq!(analysis.min_requests_per_window, 100);
    assert_eq!(analysis.no_data.policy, NoDataPolicy::Hold);
    assert_eq!(analysis.no_data.limit, 10);
    assert!(analysis.source.epp.is_some() && analysis.source.prometheus.is_none());
    assert!(!rollout.spec.paused);
    assert!(rollout.status.is_none());
}

#[test]
fn manifest_missing_the_target_is_rejected_with_the_field_name() {
    let mut document = load_yaml("rollout/minimal.yaml");
    document["spec"].as_object_mut().unwrap().remove("target");
    let err = serde_json::from_value::<InferenceRollout>(document).unwrap_err();
    assert!(err.to_string().contains("target"), "{err}");
}

#[test]
fn unknown_split_mode_is_rejected() {
    let mut document = load_yaml("rollout/minimal.yaml");
    document["spec"]["target"]["mode"] = json!("HeaderSplit");
    let err = serde_json::from_value::<InferenceRollout>(document).unwrap_err();
    assert!(err.to_string().contains("PoolSplit"), "{err}");
}

#[test]
fn status_round_trips_with_intent_and_verdicts() {
    let status = json!({
        "observedGeneration": 7,
        "rolloutHash": "5f2c9e",
        "phase": "Progressing",
        "currentStep": 2,
        "stepStartedAt": "2026-08-20T10:00:00Z",
        "weights": {
            "desired": {"stable": 9000, "canary": 1000},
            "applied": {"stable": 9000, "canary": 1000, "routeGeneration": 14, "verifiedAt": "2026-08-20T10:00:05Z"}
        },
        "analysis": {
            "lastWindowEnd": "2026-08-20T10:03:00Z",
            "successfulChecks": 3, "failedChecks": 0, "noDataWindows": 0,
            "last": [{"name": "ttft-p95", "canary": 0.91, "stable": 0.84, "samples": 412, "verdict": "Pass"}]
        },
        "intent": {"action": "setWeight", "nonce": "8d1e", "by": "alice", "at": "2026-08-20T10:04:00Z", "canaryWeight": 500},
        "observedIntentNonce": "7c0a",
        "conditions": [{"type": "Ready", "status": "False", "reason": "Progressing", "message": "", "lastTransitionTime": "2026-08-20T10:00:00Z", "observedGeneration": 7}]
    });
    let parsed: InferenceRolloutStatus = serde_json::from_value(status.clone()).unwrap();
    assert_eq!(
        parsed.intent.as_ref().unwrap().action,
        IntentAction::SetWeight
    );
    assert_eq!(parsed.intent.as_ref().unwrap().canary_weight, Some(500));
    assert_eq!(serde_json::to_value(&parsed).unwrap(), status);
}

#[test]
fn weights_always_sum_to_full_and_clamp() {
    for canary in [-5, 0, 1, 2500, 9999, 10_000, 20_000] {
        let weights = Weights::with_canary(canary);
        assert!(weights.is_valid(), "{weights:?}");
        assert_eq!(weights.stable + weights.canary, FULL_WEIGHT);
    }
    assert_eq!(Weights::with_canary(-5), Weights::ALL_STABLE);
    assert_eq!(Weights::with_canary(20_000), Weights::ALL_CANARY);
    assert!(
        !Weights {
            stable: 0,
            canary: 0
        }
        .is_valid()
    );
}

#[test]
fn shed_rate_always_pauses_and_others_roll_back_by_default() {
    let mut shed = MetricCheck::new("shed", MetricType::ShedRate);
    shed.on_fail = Some(OnFail::Rollback);
    assert_eq!(shed.effective_on_fail(), OnFail::Pause);
    let errors = MetricCheck::new("errors", MetricType::ErrorRate);
    assert_eq!(errors.effective_on_fail(), OnFail::Rollback);
    assert_eq!(
        MetricCheck::new("t", MetricType::Ttft).effective_quantile(),
        0.95
    );
}

#[test]
fn durations_parse_like_gateway_api_durations() {
    assert_eq!(parse_duration_ms("1m"), Some(60_000));
    assert_eq!(parse_duration_ms("1h30m"), Some(5_400_000));
    assert_eq!(parse_duration_ms("500ms"), Some(500));
    assert_eq!(parse_duration_ms("2m30s"), Some(150_000));
    assert_eq!(parse_duration_ms("0s"), Some(0));
    for bad in [
        "",
        "m",
        "10",
        "1d",
        "1.5s",
        "123456s",
        "1h1h1h1h1h",
        "-1s",
        "1 m",
    ] {
        assert_eq!(parse_duration_ms(bad), None, "{bad:?}");
    }
}

//! Upstream's loader rules: the implicit `default` profile, strict parameters for every
//! plugin (referenced or not, every field with a wrong value), the older and newer
//! locations, feature gates, and refused plugins that say what to use.

use super::*;
use crate::scheduling::config::LoadOptions;
use crate::scheduling::plugins::{PLUGINS, Role, is_alpha};

fn experimental() -> LoadOptions {
    LoadOptions {
        allow_experimental: true,
        ..LoadOptions::default()
    }
}

fn load(text: &str) -> crate::error::Result<SchedulerConfig> {
    SchedulerConfig::from_yaml_with(text, &experimental())
}

fn refused(text: &str, expected: &[&str]) {
    let err = load(text).map(|_| ()).unwrap_err().to_string();
    for e in expected {
        assert!(err.contains(e), "`{e}` not in: {err}\nfor:\n{text}");
    }
}

#[test]
fn without_profiles_every_declared_plugin_forms_the_default_profile() {
    let config = load(
        "plugins:\n- {type: decode-filter}\n- {type: queue-scorer}\n- {name: kv, type: kv-cache-utilization-scorer}\n\
         - {type: random-picker, parameters: {maxNumOfEndpoints: 2}}\n- {type: approx-prefix-cache-producer}\n",
    )
    .unwrap();
    assert_eq!(config.profile, "default");
    let filters: Vec<_> = config.filters.iter().map(|f| f.type_name()).collect();
    assert_eq!(filters, ["decode-filter"]);
    let scorers: Vec<_> = config
        .scorers
        .iter()
        .map(|(s, w)| (s.type_name(), *w))
        .collect();
    assert_eq!(
        scorers,
        [("queue-scorer", 1.0), ("kv-cache-utilization-scorer", 1.0)]
    );
    assert_eq!(config.picker.max_endpoints, 2);
    // Nothing schedulable declared: the built-in default profile.
    let config = load("plugins: [{type: single-profile-handler}]\n").unwrap();
    let built_in = SchedulerConfig::default();
    let names = |c: &SchedulerConfig| -> Vec<_> {
        c.scorers.iter().map(|(s, w)| (s.type_name(), *w)).collect()
    };
    assert_eq!(names(&config), names(&built_in));
    refused("schedulingProfiles: []\n", &["schedulingProfiles is empty"]);
}

#[test]
fn every_plugin_refuses_an_unknown_parameter_naming_plugin_and_field() {
    for (type_, role) in PLUGINS {
        if matches!(role, Role::Unsupported(_)) {
            continue;
        }
        let text = format!(
            "plugins:\n- name: mine\n  type: {type_}\n  parameters: {{bogusField: 1}}\n\
             schedulingProfiles: [{{name: p, plugins: []}}]\n"
        );
        let Err(err) = load(&text) else {
            panic!("{type_} accepted an unknown parameter");
        };
        let err = err.to_string();
        assert!(err.contains("bogusField"), "{type_}: {err}");
        assert!(err.contains(type_), "{type_}: {err}");
    }
}

/// Every parameter each implemented plugin accepts, with a value of the wrong kind.
const WRONG_VALUES: &[(&str, &str, &str)] = &[
    ("utilization-detector", "queueDepthThreshold", "lots"),
    ("utilization-detector", "kvCacheUtilThreshold", "high"),
    ("utilization-detector", "metricsStalenessThreshold", "soon"),
    ("utilization-detector", "headroom", "wide"),
    ("utilization-detector", "stalenessPolicy", "ignore"),
    ("label-selector-filter", "matchLabels", "[a]"),
    ("label-selector-filter", "matchExpressions", "{key: a}"),
    ("prefix-cache-affinity-filter", "affinityThreshold", "2"),
    (
        "prefix-cache-affinity-filter",
        "explorationProbability",
        "-1",
    ),
    ("prefix-cache-affinity-filter", "maxTTFTPenaltyMs", "-5"),
    ("prefix-cache-affinity-filter", "ttftSource", "guess"),
    ("prefix-cache-affinity-filter", "peakPrefillThroughput", "0"),
    (
        "prefix-cache-affinity-filter",
        "prefixMatchInfoProducerName",
        "[x]",
    ),
    (
        "prefix-cache-affinity-filter",
        "inFlightLoadProducerName",
        "[x]",
    ),
    (
        "prefix-cache-affinity-filter",
        "prefillCalibrationFile",
        "/c.json",
    ),
    (
        "prefix-cache-affinity-filter",
        "prefillCalibrationFingerprint",
        "sha256:x",
    ),
    (
        "prefix-cache-affinity-filter",
        "prefillCalibrationRequired",
        "true",
    ),
    ("prefix-cache-scorer", "blockSizeTokens", "0"),
    ("prefix-cache-scorer", "blockSize", "big"),
    ("prefix-cache-scorer", "hashBlockSize", "-64"),
    ("prefix-cache-scorer", "maxPrefixBlocksToMatch", "0"),
    ("prefix-cache-scorer", "maxPrefixTokensToMatch", "many"),
    ("prefix-cache-scorer", "lruCapacityPerServer", "0"),
    ("prefix-cache-scorer", "autoTune", "sometimes"),
    (
        "prefix-cache-scorer",
        "prefixMatchInfoProducerName",
        "precise-prefix-cache-producer",
    ),
    ("prefix-cache-scorer", "matchLengthWeight", "1.5"),
    ("prefix-cache-scorer", "matchLengthScaleTokens", "0"),
    ("token-load-scorer", "queueThresholdTokens", "0"),
    ("load-aware-scorer", "threshold", "0"),
    ("active-request-scorer", "idleThreshold", "-1"),
    ("active-request-scorer", "maxBusyScore", "2"),
    ("active-request-scorer", "requestTimeout", "[5s]"),
    ("active-request-scorer", "inFlightLoadProducerName", "{}"),
    ("context-length-aware", "label", "\"\""),
    ("context-length-aware", "enableFiltering", "maybe"),
    ("context-length-aware", "reusableTokensProducerName", "p2p"),
    ("max-score-picker", "maxNumOfEndpoints", "0"),
    ("random-picker", "maxNumOfEndpoints", "-1"),
    ("weighted-random-picker", "maxNumOfEndpoints", "two"),
    ("approx-prefix-cache-producer", "blockSizeTokens", "0"),
    (
        "approx-prefix-cache-producer",
        "maxPrefixBlocksToMatch",
        "0",
    ),
    (
        "approx-prefix-cache-producer",
        "maxPrefixTokensToMatch",
        "0",
    ),
    ("approx-prefix-cache-producer", "lruCapacityPerServer", "-3"),
    ("approx-prefix-cache-producer", "autoTune", "yes please"),
    ("metrics-data-source", "scheme", "https"),
    ("metrics-data-source", "path", "metrics"),
    ("metrics-data-source", "insecureSkipVerify", "false"),
    ("core-metrics-extractor", "engineLabelKey", "my/engine"),
    ("core-metrics-extractor", "defaultEngine", "nope"),
    (
        "core-metrics-extractor",
        "engineConfigs",
        "[{name: x, kvUsageSpec: \"bad name\"}]",
    ),
    ("token-producer", "modelName", "m"),
    ("token-producer", "vllm", "{url: 'http://r:8000'}"),
    ("token-producer", "estimate", "{}"),
    ("inflight-load-producer", "addEstimatedOutputTokens", "true"),
    ("inflight-load-producer", "outputRatio", "1.5"),
    ("inflight-load-producer", "maxEstimatedOutputTokens", "10"),
    (
        "inflight-load-producer",
        "prefixMatchInfoProducerName",
        "approx",
    ),
    ("concurrency-detector", "concurrencyMode", "vibes"),
    ("concurrency-detector", "maxConcurrency", "many"),
    ("concurrency-detector", "maxTokenConcurrency", "-1"),
    ("concurrency-detector", "headroom", "lots"),
    ("static-usage-limit-policy", "threshold", "high"),
    ("priority-holdback-policy", "minCeiling", "2"),
    ("priority-holdback-policy", "maxCeiling", "low"),
    ("priority-holdback-policy", "domain", "planet"),
    ("priority-holdback-policy", "strategy", "chaos"),
    ("priority-holdback-policy", "shape", "blob"),
    ("priority-holdback-policy", "ceilings", "[1]"),
];

#[test]
fn every_accepted_parameter_refuses_a_wrong_value() {
    for (type_, field, value) in WRONG_VALUES {
        // The holdback policy needs its one required field next to the wrong one.
        let extra = if *type_ == "priority-holdback-policy" && *field != "minCeiling" {
            ", minCeiling: 0.5"
        } else {
            ""
        };
        let text = format!(
            "plugins:\n- name: mine\n  type: {type_}\n  parameters: {{{field}: {value}{extra}}}\n\
             schedulingProfiles: [{{name: p, plugins: []}}]\n"
        );
        let Err(err) = load(&text) else {
            panic!("{type_}.{field}: {value} was accepted");
        };
        let err = err.to_string();
        assert!(err.contains(type_), "{type_}.{field}: {err}");
        assert!(
            err.contains(field),
            "{type_}.{field}={value}: the field is not named: {err}"
        );
    }
    // And every implemented plugin's fields are in the table.
    for (type_, role) in PLUGINS {
        if matches!(
            role,
            Role::Filter(_) | Role::Scorer(_) | Role::Picker(_) | Role::Implied(_)
        ) {
            let ok = format!(
                "plugins: [{{type: {type_}}}]\nschedulingProfiles: [{{name: p, plugins: []}}]\n"
            );
            let needs = *type_ == "label-selector-filter" || *type_ == "priority-holdback-policy";
            assert_eq!(load(&ok).is_ok(), !needs, "{type_} with defaults");
        }
    }
}

#[test]
fn accepted_parameters_are_applied() {
    let config = load(
        "plugins:\n- type: prefix-cache-scorer\n  parameters: {hashBlockSize: 32, lruCapacityPerServer: 7}\n\
         - type: approx-prefix-cache-producer\n  parameters: {maxPrefixTokensToMatch: 4096, autoTune: false}\n",
    )
    .unwrap();
    let prefix = config.prefix.unwrap();
    assert_eq!(prefix.block_size, Some(32), "GIE v1.0's hashBlockSize");
    assert_eq!(prefix.lru_capacity_per_server, 7);
    assert_eq!(prefix.max_prefix_tokens_to_match, Some(4096));
    assert!(!prefix.auto_tune);
    let config = load(
        "plugins:\n- type: prefix-cache-scorer\n  parameters: {blockSize: 32, prefixMatchInfoProducerName: approx}\n\
         - {name: approx, type: approx-prefix-cache-producer, parameters: {blockSizeTokens: 64}}\n",
    )
    .unwrap();
    let prefix = config.prefix.unwrap();
    assert_eq!((prefix.block_size_tokens, prefix.block_size), (64, None));
    let mut scrape = crate::scrape::ScrapeConfig::default();
    SchedulerConfig::apply_data_layer(
        "plugins:\n- {type: metrics-data-source, parameters: {path: /stats}}\n\
         - type: core-metrics-extractor\n  parameters:\n    defaultEngine: mine\n    engineConfigs:\n\
         \x20   - {name: mine, queuedRequestsSpec: q, runningRequestsSpec: r, kvUsageSpec: 'kv{a=b}'}\n",
        &mut scrape,
    )
    .unwrap();
    assert_eq!(scrape.path, "/stats");
    let mine = scrape.engines.for_label(None);
    assert_eq!(mine.name, "mine");
    assert_eq!(
        mine.kv_usage.as_ref().unwrap().labels,
        [("a".to_owned(), "b".to_owned())]
    );
    assert_eq!(mine.lora, None);
}

#[test]
fn newer_and_older_locations_are_read() {
    load(
        "plugins: [{type: openai-parser}, {type: queue-scorer}]\n\
         requestHandler: {parsers: [{pluginRef: openai-parser}]}\n",
    )
    .unwrap();
    load("parser: {pluginRef: openai-parser}\nplugins: [{type: queue-scorer}]\n").unwrap();
    load(
        "plugins: [{type: openai-parser}, {name: claude, type: anthropic-parser}]\n\
         requestHandler: {parsers: [{pluginRef: openai-parser}, {pluginRef: claude}]}\n",
    )
    .unwrap();
    refused(
        "plugins: [{name: q, type: queue-scorer}]\nrequestHandler: {parsers: [{pluginRef: q}]}\n",
        &["`q` is a `queue-scorer`, not a `openai-parser`"],
    );
    refused(
        "requestHandler: {parsers: [{pluginRef: vllmhttp-parser}]}\n",
        &["vllmhttp-parser", "openai-parser", "anthropic-parser"],
    );
    load(
        "plugins: [{type: metrics-data-source}, {name: x, type: core-metrics-extractor}]\n\
         dataLayer: {sources: [{pluginRef: metrics-data-source, extractors: [{pluginRef: x}]}]}\n",
    )
    .unwrap();
    refused(
        "dataLayer: {discovery: {pluginRef: file-discovery}}\n",
        &["--endpoints-file"],
    );
    refused(
        "requestHandler: {parsers: [{name: x}]}\n",
        &["unknown field `name`"],
    );
}

#[test]
fn feature_gates_as_upstream_registers_them() {
    for gates in [
        "[flowControl]",
        "[haPopulateNonLeaderDatastore=false]",
        "[dataLayer, enableLegacyMetrics, flowControl=true]",
    ] {
        load(&format!("featureGates: {gates}\n")).unwrap();
    }
    refused(
        "featureGates: [warpDrive]\n",
        &["unknown feature gate `warpDrive`"],
    );
    refused(
        "featureGates: [flowControl=maybe]\n",
        &["`maybe` is not true or false"],
    );
}

#[test]
fn alpha_plugins_need_allow_experimental() {
    let text = "plugins: [{type: priority-holdback-policy, parameters: {minCeiling: 0.2}}]\n";
    let err = SchedulerConfig::from_yaml(text)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("--allow-experimental-plugins"), "{err}");
    load(text).unwrap();
    assert!(is_alpha("dcgm-data-source") && !is_alpha("decode-filter"));
}

#[test]
fn refused_plugins_name_themselves_and_what_to_use() {
    for (type_, role) in PLUGINS {
        let Role::Unsupported(instead) = role else {
            continue;
        };
        let text = format!("plugins: [{{name: mine, type: {type_}}}]\n");
        refused(&text, &["mine", type_, instead]);
    }
    refused(
        "plugins: [{type: decode-filter}, {type: prefill-filter}]\nschedulingProfiles:\n\
         - {name: prefill, plugins: [{pluginRef: prefill-filter}]}\n\
         - {name: decode, plugins: [{pluginRef: decode-filter}]}\n",
        &["2 scheduling profiles", "P/D"],
    );
}

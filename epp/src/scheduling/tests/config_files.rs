//! Reading EndpointPickerConfig files: upstream's conformance and full-featured shapes, and
//! the errors that say what to fix.

use super::*;

#[test]
fn upstream_conformance_config_turns_on_the_served_endpoint_verifier() {
    // The shape of upstream's `conformance-plugins.yaml`: the verifier is
    // listed under `plugins` only, and the profile has no picker.
    let config = SchedulerConfig::from_yaml(
        "apiVersion: inference.networking.x-k8s.io/v1alpha1\n\
         kind: EndpointPickerConfig\n\
         plugins:\n\
         - type: header-based-testing-filter\n\
         - type: destination-endpoint-served-verifier\n\
         schedulingProfiles:\n\
         - name: conformance-profile\n  \
           plugins:\n  \
           - pluginRef: header-based-testing-filter\n",
    )
    .unwrap();
    assert!(config.verify_served_endpoint);
    assert_eq!(config.filters.len(), 1);
    // Negative: without it listed (and by default) responses carry nothing.
    let config = SchedulerConfig::from_yaml(
        "plugins: [{type: header-based-testing-filter}]\n\
         schedulingProfiles: [{name: p, plugins: [{pluginRef: header-based-testing-filter}]}]\n",
    )
    .unwrap();
    assert!(!config.verify_served_endpoint);
    assert!(!SchedulerConfig::default().verify_served_endpoint);
}

#[test]
fn full_upstream_style_config_parses() {
    let scheduler = yaml(
        r#"
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: [flowControl]
plugins:
- {name: pfx, type: prefix-cache-scorer, parameters: {blockSizeTokens: 32, maxPrefixBlocksToMatch: 128, lruCapacityPerServer: 1000, autoTune: false}}
- {type: max-score-picker, parameters: {maxNumOfEndpoints: 1}}
- {type: single-profile-handler}
schedulingProfiles:
- {name: default, plugins: [{pluginRef: pfx, weight: 3}, {pluginRef: max-score-picker}]}
saturationDetector: {pluginRef: utilization-detector}
dataLayer: {sources: [{pluginRef: metrics-data-source, extractors: [{pluginRef: core-metrics-extractor}]}]}
parser: {pluginRef: openai-parser}
"#,
    );
    let config = scheduler.config();
    assert_eq!(config.scorers.len(), 1);
    assert_eq!(config.scorers[0].1, 3.0);
    let prefix = config.prefix.clone().unwrap();
    assert_eq!(
        (
            prefix.block_size_tokens,
            prefix.max_prefix_blocks_to_match,
            prefix.auto_tune
        ),
        (32, 128, false)
    );
}

fn config_error(text: &str) -> String {
    SchedulerConfig::from_yaml(text).unwrap_err().to_string()
}

#[test]
fn config_errors_say_what_to_fix() {
    let profile = "schedulingProfiles: [{name: p, plugins: [{pluginRef: x}]}]\n";
    let text = config_error(&format!(
        "plugins: [{{name: x, type: queue-scorrer}}]\n{profile}"
    ));
    assert!(
        text.contains("unknown plugin type `queue-scorrer`")
            && text.contains("queue-scorer")
            && text.contains("max-score-picker"),
        "{text}"
    );
    let text = config_error(&format!(
        "plugins: [{{name: x, type: slo-headroom-tier-filter}}]\n{profile}"
    ));
    assert!(
        text.contains("does not implement") && text.contains("remove it"),
        "{text}"
    );
    let text = config_error(
        "plugins: [{type: queue-scorer}, {type: queue-scorer}]\nschedulingProfiles: [{name: p}]\n",
    );
    assert!(
        text.contains("two plugins are named `queue-scorer`"),
        "{text}"
    );
    let text = config_error(
        "plugins: [{type: queue-scorer}]\nschedulingProfiles: [{name: p, plugins: [{pluginRef: nope}]}]\n",
    );
    assert!(text.contains("references plugin `nope`"), "{text}");
    let text = config_error("plugins: []\nschedulingProfiles: []\n");
    assert!(text.contains("define one profile"), "{text}");
    let text = config_error("plugins: []\nschedulingProfiles: [{name: a}, {name: b}]\n");
    assert!(text.contains("exactly one"), "{text}");
    let text = config_error("plugins: []\nschedulingProfile: []\n");
    assert!(text.contains("schedulingProfile"), "{text}");
    let text = config_error("apiVersion: v1\nschedulingProfiles: [{name: a}]\n");
    assert!(text.contains("apiVersion `v1`"), "{text}");
    let text = config_error("kind: Pod\nschedulingProfiles: [{name: a}]\n");
    assert!(text.contains("EndpointPickerConfig"), "{text}");
    let text = config_error("featureGates: [warpDrive]\nschedulingProfiles: [{name: a}]\n");
    assert!(text.contains("warpDrive"), "{text}");
    let text = config_error(
        &"plugins: [{name: x, type: max-score-picker, parameters: {maxNumOfEndpoints: 0}}]\n"
            .add_profile(),
    );
    assert!(text.contains("at least 1"), "{text}");
    let text = config_error(
        &"plugins: [{name: x, type: max-score-picker, parameters: {maxEndpoints: 2}}]\n"
            .add_profile(),
    );
    assert!(
        text.contains("plugin `x` (max-score-picker)") && text.contains("maxEndpoints"),
        "{text}"
    );
    let text = config_error(&"plugins: [{name: x, type: utilization-detector, parameters: {metricsStalenessThreshold: soon}}]\n".add_profile());
    assert!(text.contains("200ms"), "{text}");
    let text = config_error(
        "plugins: [{name: x, type: queue-scorer}]\nschedulingProfiles: [{name: p, plugins: [{pluginRef: x, weight: -1}]}]\n",
    );
    assert!(text.contains("weight -1"), "{text}");
    let text = config_error(
        "plugins: [{type: random-picker}, {type: max-score-picker}]\nschedulingProfiles: [{name: p, plugins: [{pluginRef: random-picker}, {pluginRef: max-score-picker}]}]\n",
    );
    assert!(text.contains("more than one picker"), "{text}");
    let text = config_error(": : :\n\t- [");
    assert!(text.starts_with("invalid EndpointPickerConfig"), "{text}");
}

trait AddProfile {
    fn add_profile(&self) -> String;
}

impl AddProfile for str {
    fn add_profile(&self) -> String {
        format!("{self}schedulingProfiles: [{{name: p, plugins: [{{pluginRef: x}}]}}]\n")
    }
}

//! `EndpointPickerConfig` (upstream `apix/config/v1alpha1`, docs/upstream.md#scheduler and #apis):
//! strict YAML decoding into a [`SchedulerConfig`] of resolved plugins. Which
//! plugin types exist and how each is built is the registry's business
//! ([`plugins::PLUGINS`]); this module only decodes and checks the file.

use std::collections::HashMap;

use serde::Deserialize;

use crate::datastore::snapshot::PrefixSizing;
use crate::error::{Error, Result};
use crate::prefix::{
    DEFAULT_BLOCK_SIZE_TOKENS, DEFAULT_LRU_CAPACITY_PER_SERVER, DEFAULT_MAX_PREFIX_BLOCKS,
};
use crate::scheduling::plugins::{
    self, Filter, KvCacheScorer, Picker, PrefixCacheScorer, QueueScorer, Role,
    SERVED_ENDPOINT_VERIFIER, Scorer, UtilizationFilter, known_types, parameters,
};

/// The API versions accepted for `EndpointPickerConfig` (GIE's, then llm-d's).
pub const API_VERSIONS: [&str; 2] = [
    "inference.networking.x-k8s.io/v1alpha1",
    "llm-d.ai/v1alpha1",
];

/// The config file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    feature_gates: Vec<String>,
    #[serde(default)]
    plugins: Vec<RawPlugin>,
    #[serde(default)]
    scheduling_profiles: Vec<RawProfile>,
    // Sections owned by other layers; accepted here so one file configures all.
    #[serde(default)]
    saturation_detector: Option<serde_json::Value>,
    #[serde(default)]
    data_layer: Option<serde_json::Value>,
    #[serde(default)]
    flow_control: Option<serde_json::Value>,
    #[serde(default)]
    parser: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: Option<String>,
    #[serde(rename = "type")]
    type_: String,
    #[serde(default)]
    parameters: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    #[serde(default)]
    plugins: Vec<RawProfilePlugin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawProfilePlugin {
    plugin_ref: String,
    weight: Option<f64>,
}

/// Prefix-cache parameters (`prefix-cache-scorer`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct PrefixParameters {
    /// Tokens per hashed block (×4 characters).
    pub block_size_tokens: usize,
    /// Deprecated upstream: block size in characters; overrides the above.
    pub block_size: Option<usize>,
    /// At most this many blocks are hashed.
    pub max_prefix_blocks_to_match: usize,
    /// Alternative cap, in tokens.
    pub max_prefix_tokens_to_match: Option<usize>,
    /// Entries per server before auto-tuning.
    pub lru_capacity_per_server: usize,
    /// Tune block size and capacity from the servers' `cache_config_info`.
    pub auto_tune: bool,
}

impl Default for PrefixParameters {
    fn default() -> Self {
        Self {
            block_size_tokens: DEFAULT_BLOCK_SIZE_TOKENS,
            block_size: None,
            max_prefix_blocks_to_match: DEFAULT_MAX_PREFIX_BLOCKS,
            max_prefix_tokens_to_match: None,
            lru_capacity_per_server: DEFAULT_LRU_CAPACITY_PER_SERVER,
            auto_tune: true,
        }
    }
}

/// A scheduling profile resolved into plugins.
#[derive(Debug)]
pub struct SchedulerConfig {
    /// The profile's name.
    pub profile: String,
    /// Filters, in order.
    pub filters: Vec<Box<dyn Filter>>,
    /// Scorers with their weights (not normalised, as upstream).
    pub scorers: Vec<(Box<dyn Scorer>, f64)>,
    /// The picker.
    pub picker: Picker,
    /// The prefix parameters, when a prefix-cache scorer is configured.
    pub prefix: Option<PrefixParameters>,
    /// `destination-endpoint-served-verifier` is listed: every response
    /// carries the served endpoint the proxy reported (conformance tests).
    pub verify_served_endpoint: bool,
}

// === impl SchedulerConfig ===

impl Default for SchedulerConfig {
    /// Upstream's defaults without a config file (queue 2, KV 2, prefix 3, max-score), with
    /// two filters in front: `prefix-cache-affinity-filter` keeps a request on the servers
    /// holding its prefix until they are saturated (docs/routing.md: without it the
    /// utilization filter below moves warm prefixes off busy servers), then
    /// `utilization-detector`: an endpoint whose metrics are stale (a crashed or hung server
    /// keeps its last, idle-looking values) or that is saturated is not picked while another
    /// is fit (review findings H6 and M13). `lora-affinity-scorer` (3) stops adapter thrash.
    fn default() -> Self {
        Self {
            profile: "default".into(),
            filters: vec![
                Box::new(plugins::PrefixAffinityFilter::default()),
                Box::new(UtilizationFilter::default()),
            ],
            scorers: vec![
                (Box::new(QueueScorer), 2.0),
                (Box::new(KvCacheScorer), 2.0),
                (Box::new(PrefixCacheScorer), 3.0),
                (Box::new(plugins::LoraAffinityScorer), 3.0),
            ],
            picker: Picker::default(),
            prefix: Some(PrefixParameters::default()),
            verify_served_endpoint: false,
        }
    }
}

impl SchedulerConfig {
    /// How the pool's prefix tables are sized: `lruCapacityPerServer` and `autoTune` of the
    /// prefix-cache scorer (upstream's defaults without one), within the default pool-wide
    /// budget.
    pub fn prefix_sizing(&self) -> PrefixSizing {
        let prefix = self.prefix.clone().unwrap_or_default();
        PrefixSizing {
            capacity_per_server: prefix.lru_capacity_per_server,
            auto_tune: prefix.auto_tune,
            ..PrefixSizing::default()
        }
    }

    /// Decodes and resolves an `EndpointPickerConfig` document.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let raw: RawConfig =
            serde_saphyr::from_str(text).map_err(|err| Error::ConfigSyntax(err.to_string()))?;
        Self::resolve(raw)
    }

    fn resolve(raw: RawConfig) -> Result<Self> {
        if let Some(version) = &raw.api_version
            && !API_VERSIONS.contains(&version.as_str())
        {
            return Err(Error::Config(format!(
                "apiVersion `{version}` is not one of {}",
                API_VERSIONS.join(", ")
            )));
        }
        if let Some(kind) = raw.kind.as_deref().filter(|k| *k != "EndpointPickerConfig") {
            return Err(Error::Config(format!(
                "kind `{kind}` must be EndpointPickerConfig"
            )));
        }
        for gate in &raw.feature_gates {
            if !["flowControl", "dataLayer", "enableLegacyMetrics"].contains(&gate.as_str()) {
                return Err(Error::Config(format!(
                    "unknown feature gate `{gate}`; known gates: flowControl, dataLayer, enableLegacyMetrics"
                )));
            }
        }
        let _ = (
            &raw.saturation_detector,
            &raw.data_layer,
            &raw.flow_control,
            &raw.parser,
        );

        let mut by_name: HashMap<String, &RawPlugin> = HashMap::new();
        for plugin in &raw.plugins {
            let name = plugin.name.clone().unwrap_or_else(|| plugin.type_.clone());
            check_type(&name, &plugin.type_)?;
            if by_name.insert(name.clone(), plugin).is_some() {
                return Err(Error::Config(format!(
                    "two plugins are named `{name}`; give each a distinct `name` (it defaults to the type)"
                )));
            }
        }

        let profile = match raw.scheduling_profiles.as_slice() {
            [] => {
                return Err(Error::Config(
                    "schedulingProfiles is empty; define one profile".into(),
                ));
            }
            [one] => one,
            more => {
                return Err(Error::Config(format!(
                    "{} scheduling profiles given; Switchyard runs exactly one (single-profile-handler)",
                    more.len()
                )));
            }
        };

        let mut config = Self {
            profile: profile.name.clone(),
            filters: Vec::new(),
            scorers: Vec::new(),
            picker: Picker::default(),
            prefix: None,
            verify_served_endpoint: raw
                .plugins
                .iter()
                .any(|p| p.type_ == SERVED_ENDPOINT_VERIFIER),
        };
        let mut picker_seen = false;
        for entry in &profile.plugins {
            let plugin = by_name.get(&entry.plugin_ref).ok_or_else(|| {
                Error::Config(format!(
                    "profile `{}` references plugin `{}`, which is not in `plugins`",
                    profile.name, entry.plugin_ref
                ))
            })?;
            let name = entry.plugin_ref.as_str();
            let type_ = plugin.type_.as_str();
            let params = plugin.parameters.clone().unwrap_or(serde_json::Value::Null);
            match plugins::role(type_) {
                Some(Role::Filter(build)) => config.filters.push(build(name, type_, params)?),
                Some(Role::Scorer(build)) => {
                    let weight = entry.weight.unwrap_or(1.0);
                    if !weight.is_finite() || weight < 0.0 {
                        return Err(Error::PluginParameters {
                            name: name.into(),
                            type_: type_.into(),
                            reason: format!("weight {weight} must be a finite number ≥ 0"),
                        });
                    }
                    if type_ == "prefix-cache-scorer" {
                        config.prefix = Some(parameters(name, type_, params.clone())?);
                    }
                    config.scorers.push((build(name, type_, params)?, weight));
                }
                Some(Role::Picker(kind)) => {
                    if picker_seen {
                        return Err(Error::Config(format!(
                            "profile `{}` has more than one picker; keep exactly one",
                            profile.name
                        )));
                    }
                    picker_seen = true;
                    let params: PickerParameters = parameters(name, type_, params)?;
                    if params.max_num_of_endpoints == 0 {
                        return Err(Error::PluginParameters {
                            name: name.into(),
                            type_: type_.into(),
                            reason: "maxNumOfEndpoints must be at least 1".into(),
                        });
                    }
                    config.picker = Picker {
                        kind,
                        max_endpoints: params.max_num_of_endpoints,
                    };
                }
                // Implied and response plugin types have nothing to add to the profile;
                // unsupported and unknown ones were refused by `check_type`.
                Some(Role::Response | Role::Implied | Role::Unsupported) | None => {}
            }
        }
        Ok(config)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct PickerParameters {
    max_num_of_endpoints: usize,
}

impl Default for PickerParameters {
    fn default() -> Self {
        Self {
            max_num_of_endpoints: 1,
        }
    }
}

fn check_type(name: &str, type_: &str) -> Result<()> {
    match plugins::role(type_) {
        Some(Role::Unsupported) => Err(Error::UnsupportedPluginType {
            name: name.into(),
            type_: type_.into(),
            known: known_types(),
        }),
        Some(_) => Ok(()),
        None => Err(Error::UnknownPluginType {
            name: name.into(),
            type_: type_.into(),
            known: known_types(),
        }),
    }
}

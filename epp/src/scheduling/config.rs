//! `EndpointPickerConfig` (upstream `apix/config/v1alpha1`, docs/upstream.md#scheduler and #apis):
//! strict YAML decoding into a [`SchedulerConfig`] of resolved plugins, with upstream's
//! loader rules: a `default` profile of every declared plugin when `schedulingProfiles` is
//! absent, every declared plugin's parameters checked (referenced or not), Alpha plugins
//! only with `--allow-experimental-plugins`, both the newer and the older locations of the
//! parsers and the saturation detector. Which plugin types exist and how each is built is
//! the registry's business ([`plugins::PLUGINS`]); this module decodes and checks the file.

mod data_layer;
pub mod options;
mod raw;

use std::collections::HashMap;

use serde::Deserialize;

use crate::datastore::snapshot::PrefixSizing;
use crate::error::{Error, Result};
use crate::prefix::{
    DEFAULT_BLOCK_SIZE_TOKENS, DEFAULT_LRU_CAPACITY_PER_SERVER, DEFAULT_MAX_PREFIX_BLOCKS,
};
use crate::scheduling::plugins::implied::ApproxPrefixParameters;
use crate::scheduling::plugins::{
    self, Filter, KvCacheScorer, Picker, PrefixCacheScorer, QueueScorer, Role,
    SERVED_ENDPOINT_VERIFIER, Scorer, UtilizationFilter, is_alpha, known_types, parameters,
};
pub use options::LoadOptions;
use raw::{RawConfig, RawPlugin, RawProfile, RawProfilePlugin};

/// The API versions accepted for `EndpointPickerConfig` (GIE's, then llm-d's).
pub const API_VERSIONS: [&str; 2] = [
    "inference.networking.x-k8s.io/v1alpha1",
    "llm-d.ai/v1alpha1",
];

/// The producer of prefix matches Switchyard runs (its approximate prefix tables).
const APPROX_PRODUCER: &str = "approx-prefix-cache-producer";

/// Prefix-cache parameters (`prefix-cache-scorer`, and `approx-prefix-cache-producer`
/// for the table fields, which it overrides).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct PrefixParameters {
    /// Tokens per hashed block (×4 characters).
    pub block_size_tokens: usize,
    /// Deprecated upstream: block size in characters (GIE v1.0 called it
    /// `hashBlockSize`); overrides the above.
    #[serde(alias = "hashBlockSize")]
    pub block_size: Option<usize>,
    /// At most this many blocks are hashed.
    pub max_prefix_blocks_to_match: usize,
    /// Alternative cap, in tokens.
    pub max_prefix_tokens_to_match: Option<usize>,
    /// Entries per server before auto-tuning.
    pub lru_capacity_per_server: usize,
    /// Tune block size and capacity from the servers' `cache_config_info`.
    pub auto_tune: bool,
    /// The producer whose matches are scored: Switchyard's approximate tables
    /// (`approx-prefix-cache-producer`, or the name it is declared under).
    pub prefix_match_info_producer_name: Option<String>,
    /// Weight (0–1) of the absolute match length against the match ratio.
    pub match_length_weight: f64,
    /// Matched tokens at which the length term saturates.
    pub match_length_scale_tokens: u64,
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
            prefix_match_info_producer_name: None,
            match_length_weight: 0.0,
            match_length_scale_tokens: 8192,
        }
    }
}

impl PrefixParameters {
    /// Checks the ranges upstream enforces.
    pub(crate) fn check(&self, name: &str, type_: &str) -> Result<()> {
        let bad = |reason: String| Error::PluginParameters {
            name: name.into(),
            type_: type_.into(),
            reason,
        };
        if !(0.0..=1.0).contains(&self.match_length_weight) {
            return Err(bad(format!(
                "matchLengthWeight {} must be within 0 and 1",
                self.match_length_weight
            )));
        }
        for (field, v) in [
            ("blockSizeTokens", self.block_size_tokens),
            ("maxPrefixBlocksToMatch", self.max_prefix_blocks_to_match),
            ("lruCapacityPerServer", self.lru_capacity_per_server),
            (
                "matchLengthScaleTokens",
                self.match_length_scale_tokens as usize,
            ),
        ] {
            if v == 0 {
                return Err(bad(format!("{field} must be at least 1")));
            }
        }
        Ok(())
    }

    fn apply(&mut self, producer: &ApproxPrefixParameters) {
        if let Some(v) = producer.block_size_tokens {
            self.block_size_tokens = v;
            // The producer's token size replaces a character size given to the scorer.
            self.block_size = None;
        }
        if let Some(v) = producer.max_prefix_blocks_to_match {
            self.max_prefix_blocks_to_match = v;
        }
        if producer.max_prefix_tokens_to_match.is_some() {
            self.max_prefix_tokens_to_match = producer.max_prefix_tokens_to_match;
        }
        if let Some(v) = producer.lru_capacity_per_server {
            self.lru_capacity_per_server = v;
        }
        if let Some(v) = producer.auto_tune {
            self.auto_tune = v;
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
    /// The prefix parameters, when a plugin reads prefix matches.
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
                Box::new(plugins::PrefixCacheAffinityFilter::default()),
                Box::new(UtilizationFilter::default()),
            ],
            scorers: vec![
                (Box::new(QueueScorer), 2.0),
                (Box::new(KvCacheScorer), 2.0),
                (Box::new(PrefixCacheScorer::default()), 3.0),
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

    /// Decodes and resolves an `EndpointPickerConfig` document without experimental
    /// plugins or extra feature gates.
    pub fn from_yaml(text: &str) -> Result<Self> {
        Self::from_yaml_with(text, &LoadOptions::default())
    }

    /// Decodes and resolves an `EndpointPickerConfig` document with the flags' settings.
    pub fn from_yaml_with(text: &str, options: &LoadOptions) -> Result<Self> {
        Self::resolve(decode(text)?, options)
    }

    /// Applies the file's `metrics-data-source` and `core-metrics-extractor` parameters to
    /// the scrape settings.
    pub fn apply_data_layer(text: &str, scrape: &mut crate::scrape::ScrapeConfig) -> Result<()> {
        data_layer::apply(&decode(text)?, scrape)
    }

    fn resolve(raw: RawConfig, options: &LoadOptions) -> Result<Self> {
        check_header(&raw)?;
        for gate in raw.feature_gates.iter().chain(&options.feature_gates) {
            options::parse_gate(gate)?;
        }
        let mut by_name: HashMap<&str, &RawPlugin> = HashMap::new();
        for plugin in &raw.plugins {
            let name = plugin.name();
            check_type(name, &plugin.type_)?;
            if is_alpha(&plugin.type_) && !options.allow_experimental {
                return Err(Error::Config(format!(
                    "plugin `{name}` has type `{}`, which upstream marks Alpha; start the EPP \
                     with --allow-experimental-plugins to use it",
                    plugin.type_
                )));
            }
            if by_name.insert(name, plugin).is_some() {
                return Err(Error::Config(format!(
                    "two plugins are named `{name}`; give each a distinct `name` (it defaults to the type)"
                )));
            }
            check_parameters(plugin)?;
        }
        data_layer::check(&raw, &by_name)?;
        for scorer in raw
            .plugins
            .iter()
            .filter(|p| p.type_ == "prefix-cache-scorer")
        {
            let prefix: PrefixParameters =
                parameters(scorer.name(), &scorer.type_, scorer.params())?;
            check_producer_name(scorer.name(), &prefix, &by_name)?;
        }
        // Flow control decodes these itself (strictly) from the same text.
        let _ = (&raw.saturation_detector, &raw.flow_control);

        let implicit;
        let profile = match raw.scheduling_profiles.as_deref() {
            None => {
                implicit = default_profile(&raw.plugins);
                if implicit.plugins.is_empty() {
                    // Nothing to schedule with declared: upstream's defaults.
                    return Ok(Self {
                        verify_served_endpoint: verifies(&raw),
                        ..Self::default()
                    });
                }
                &implicit
            }
            Some([]) => {
                return Err(Error::Config(
                    "schedulingProfiles is empty; define one profile, or drop the key to get a \
                     `default` profile of every declared plugin"
                        .into(),
                ));
            }
            Some([one]) => one,
            Some(more) => {
                return Err(Error::Config(format!(
                    "{} scheduling profiles given; Switchyard runs exactly one \
                     (single-profile-handler); prefill/decode disaggregation comes with the \
                     P/D work",
                    more.len()
                )));
            }
        };
        let mut config = build_profile(profile, &by_name)?;
        config.verify_served_endpoint = verifies(&raw);
        if config.prefix.is_some()
            && let Some(producer) = raw.plugins.iter().find(|p| p.type_ == APPROX_PRODUCER)
        {
            let params: ApproxPrefixParameters =
                parameters(producer.name(), &producer.type_, producer.params())?;
            if let Some(prefix) = config.prefix.as_mut() {
                prefix.apply(&params);
            }
        }
        Ok(config)
    }
}

fn decode(text: &str) -> Result<RawConfig> {
    serde_saphyr::from_str(text).map_err(|err| Error::ConfigSyntax(err.to_string()))
}

fn verifies(raw: &RawConfig) -> bool {
    raw.plugins
        .iter()
        .any(|p| p.type_ == SERVED_ENDPOINT_VERIFIER)
}

fn check_header(raw: &RawConfig) -> Result<()> {
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
    Ok(())
}

/// Upstream's rule without `schedulingProfiles`: one `default` profile referencing every
/// declared filter, scorer and picker, in declaration order.
fn default_profile(plugins: &[RawPlugin]) -> RawProfile {
    RawProfile {
        name: "default".into(),
        plugins: plugins
            .iter()
            .filter(|p| {
                matches!(
                    plugins::role(&p.type_),
                    Some(Role::Filter(_) | Role::Scorer(_) | Role::Picker(_))
                )
            })
            .map(|p| RawProfilePlugin {
                plugin_ref: p.name().to_owned(),
                weight: None,
            })
            .collect(),
    }
}

/// Decodes every declared plugin's parameters by its role, so a mistake fails at start-up
/// whether or not a profile references the plugin.
fn check_parameters(plugin: &RawPlugin) -> Result<()> {
    let (name, type_, params) = (plugin.name(), plugin.type_.as_str(), plugin.params());
    match plugins::role(type_) {
        Some(Role::Filter(build)) => build(name, type_, params).map(drop),
        Some(Role::Scorer(build)) => build(name, type_, params).map(drop),
        Some(Role::Picker(_)) => picker_parameters(name, type_, params).map(drop),
        Some(Role::Response) => plugins::no_parameters(name, type_, params),
        Some(Role::Implied(check)) => check(name, type_, params),
        Some(Role::Unsupported(_)) | None => Ok(()),
    }
}

fn build_profile(
    profile: &RawProfile,
    by_name: &HashMap<&str, &RawPlugin>,
) -> Result<SchedulerConfig> {
    let mut config = SchedulerConfig {
        profile: profile.name.clone(),
        filters: Vec::new(),
        scorers: Vec::new(),
        picker: Picker::default(),
        prefix: None,
        verify_served_endpoint: false,
    };
    let mut picker_seen = false;
    let mut companions = Vec::new();
    for entry in &profile.plugins {
        let plugin = by_name.get(entry.plugin_ref.as_str()).ok_or_else(|| {
            Error::Config(format!(
                "profile `{}` references plugin `{}`, which is not in `plugins`",
                profile.name, entry.plugin_ref
            ))
        })?;
        let name = entry.plugin_ref.as_str();
        let type_ = plugin.type_.as_str();
        let params = plugin.params();
        match plugins::role(type_) {
            Some(Role::Filter(build)) => {
                if type_ == "prefix-cache-affinity-filter" && config.prefix.is_none() {
                    config.prefix = Some(PrefixParameters::default());
                }
                config.filters.push(build(name, type_, params)?);
            }
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
                let scorer = build(name, type_, params)?;
                companions.extend(scorer.companion_filter());
                config.scorers.push((scorer, weight));
            }
            Some(Role::Picker(kind)) => {
                if picker_seen {
                    return Err(Error::Config(format!(
                        "profile `{}` has more than one picker; keep exactly one",
                        profile.name
                    )));
                }
                picker_seen = true;
                config.picker = Picker {
                    kind,
                    max_endpoints: picker_parameters(name, type_, params)?,
                };
            }
            // Implied and response plugin types have nothing to add to the profile;
            // unsupported and unknown ones were refused by `check_type`.
            Some(Role::Response | Role::Implied(_) | Role::Unsupported(_)) | None => {}
        }
    }
    // A scorer's own filter runs after the listed filters, before any scoring.
    config.filters.extend(companions);
    Ok(config)
}

/// `prefixMatchInfoProducerName` must name the approximate producer Switchyard runs.
fn check_producer_name(
    scorer: &str,
    prefix: &PrefixParameters,
    by_name: &HashMap<&str, &RawPlugin>,
) -> Result<()> {
    let Some(producer) = prefix.prefix_match_info_producer_name.as_deref() else {
        return Ok(());
    };
    let type_ = by_name.get(producer).map_or(producer, |p| p.type_.as_str());
    if type_ == APPROX_PRODUCER {
        return Ok(());
    }
    Err(Error::PluginParameters {
        name: scorer.into(),
        type_: "prefix-cache-scorer".into(),
        reason: format!(
            "prefixMatchInfoProducerName `{producer}` is not an {APPROX_PRODUCER}; Switchyard \
             scores approximate prefix matches only (precise matches come with the \
             precise-prefix work)"
        ),
    })
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

/// A picker's `maxNumOfEndpoints`, at least 1.
fn picker_parameters(name: &str, type_: &str, params: serde_json::Value) -> Result<usize> {
    let p: PickerParameters = parameters(name, type_, params)?;
    if p.max_num_of_endpoints == 0 {
        return Err(Error::PluginParameters {
            name: name.into(),
            type_: type_.into(),
            reason: "maxNumOfEndpoints must be at least 1".into(),
        });
    }
    Ok(p.max_num_of_endpoints)
}

fn check_type(name: &str, type_: &str) -> Result<()> {
    match plugins::role(type_) {
        Some(Role::Unsupported(instead)) => Err(Error::UnsupportedPluginType {
            name: name.into(),
            type_: type_.into(),
            known: instead.into(),
        }),
        Some(_) => Ok(()),
        None => Err(Error::UnknownPluginType {
            name: name.into(),
            type_: type_.into(),
            known: known_types(),
        }),
    }
}

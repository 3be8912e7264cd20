//! Parameter decoders of the plugins that take no place in a scheduling profile: the
//! prefix-table producer, the scrape loop's source and extractor, the token producer, the
//! in-flight load producer and the flow-control policies. Each decodes strictly, so an
//! unknown or mistyped field fails start-up naming the plugin and field; the config
//! decoder applies what they hold.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::parameters;
use crate::error::{Error, Result};
use crate::scrape::engine::{CacheField, EngineConfig, MetricSpec};

fn invalid(name: &str, type_: &str, reason: impl Into<String>) -> Error {
    Error::PluginParameters {
        name: name.into(),
        type_: type_.into(),
        reason: reason.into(),
    }
}

/// `approx-prefix-cache-producer`'s parameters: the prefix tables' geometry. Unset
/// fields keep the prefix-cache scorer's (or the default) values.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApproxPrefixParameters {
    /// Tokens per hashed block.
    pub block_size_tokens: Option<usize>,
    /// At most this many blocks are hashed.
    pub max_prefix_blocks_to_match: Option<usize>,
    /// Alternative cap in tokens (overrides the block cap).
    pub max_prefix_tokens_to_match: Option<usize>,
    /// Entries per server before auto-tuning.
    pub lru_capacity_per_server: Option<usize>,
    /// Tune block size and capacity from the servers' cache info.
    pub auto_tune: Option<bool>,
}

/// Checks `approx-prefix-cache-producer`'s parameters.
pub(crate) fn approx_prefix(name: &str, type_: &str, value: serde_json::Value) -> Result<()> {
    let p: ApproxPrefixParameters = parameters(name, type_, value)?;
    for (field, v) in [
        ("blockSizeTokens", p.block_size_tokens),
        ("maxPrefixBlocksToMatch", p.max_prefix_blocks_to_match),
        ("maxPrefixTokensToMatch", p.max_prefix_tokens_to_match),
        ("lruCapacityPerServer", p.lru_capacity_per_server),
    ] {
        if v == Some(0) {
            return Err(invalid(name, type_, format!("{field} must be at least 1")));
        }
    }
    Ok(())
}

/// `metrics-data-source`'s parameters: where each endpoint's metrics are read.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct MetricsSourceParameters {
    /// `http` (`https` is refused: the scraper speaks plain HTTP).
    pub scheme: String,
    /// The metrics path.
    pub path: String,
    /// Only meaningful with `https`.
    pub insecure_skip_verify: Option<bool>,
}

impl Default for MetricsSourceParameters {
    fn default() -> Self {
        Self {
            scheme: "http".into(),
            path: crate::scrape::DEFAULT_PATH.into(),
            insecure_skip_verify: None,
        }
    }
}

/// Decodes `metrics-data-source`'s parameters.
pub(crate) fn metrics_source_parameters(
    name: &str,
    type_: &str,
    value: serde_json::Value,
) -> Result<MetricsSourceParameters> {
    let p: MetricsSourceParameters = parameters(name, type_, value)?;
    match p.scheme.as_str() {
        "http" => {}
        "https" => {
            return Err(invalid(
                name,
                type_,
                "scheme `https`: model servers are scraped over plain HTTP; set scheme: http",
            ));
        }
        other => {
            return Err(invalid(
                name,
                type_,
                format!("scheme `{other}` is not http"),
            ));
        }
    }
    if p.insecure_skip_verify == Some(false) {
        return Err(invalid(
            name,
            type_,
            "insecureSkipVerify: false asks for verified TLS, which plain-HTTP scraping cannot \
             give; remove it",
        ));
    }
    if !p.path.starts_with('/') {
        return Err(invalid(
            name,
            type_,
            format!("path `{}` must start with `/`", p.path),
        ));
    }
    Ok(p)
}

/// Checks `metrics-data-source`'s parameters.
pub(crate) fn metrics_source(name: &str, type_: &str, value: serde_json::Value) -> Result<()> {
    metrics_source_parameters(name, type_, value).map(drop)
}

/// One `engineConfigs` entry as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawEngine {
    name: String,
    queued_requests_spec: Option<String>,
    running_requests_spec: Option<String>,
    kv_usage_spec: Option<String>,
    lora_spec: Option<String>,
    cache_info_spec: Option<String>,
    cache_block_size_label_name: Option<String>,
    cache_block_size_spec: Option<String>,
    cache_num_blocks_label_name: Option<String>,
    cache_num_blocks_spec: Option<String>,
}

/// `core-metrics-extractor`'s parameters, resolved.
#[derive(Clone, Debug, Default)]
pub struct MetricsExtractorParameters {
    /// Engine configs replacing built-ins of the same name, or added.
    pub engines: Vec<EngineConfig>,
    /// The engine of pods without (or with an unknown) engine label.
    pub default_engine: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct RawExtractor {
    engine_label_key: Option<String>,
    default_engine: Option<String>,
    engine_configs: Vec<RawEngine>,
}

fn spec(text: Option<&str>, field: &'static str) -> Result<Option<MetricSpec>> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => MetricSpec::parse(text, field).map(Some),
    }
}

fn cache_field(
    label: Option<&str>,
    metric: Option<&str>,
    field: &'static str,
) -> Result<CacheField> {
    Ok(match (label.map(str::trim), spec(metric, field)?) {
        (_, Some(metric)) => CacheField::Metric(metric),
        (Some(label), None) if !label.is_empty() => CacheField::InfoLabel(label.to_owned()),
        _ => CacheField::None,
    })
}

/// Names the plugin in an error that does not already (a metric selector's).
fn in_plugin(name: &str, type_: &str, err: Error) -> Error {
    match err {
        Error::PluginParameters { .. } => err,
        other => invalid(name, type_, other.to_string()),
    }
}

/// Decodes `core-metrics-extractor`'s parameters.
pub(crate) fn metrics_extractor_parameters(
    name: &str,
    type_: &str,
    value: serde_json::Value,
) -> Result<MetricsExtractorParameters> {
    extractor_parameters(name, type_, value).map_err(|e| in_plugin(name, type_, e))
}

fn extractor_parameters(
    name: &str,
    type_: &str,
    value: serde_json::Value,
) -> Result<MetricsExtractorParameters> {
    let raw: RawExtractor = parameters(name, type_, value)?;
    if let Some(key) = raw
        .engine_label_key
        .as_deref()
        .filter(|k| *k != "inference.networking.k8s.io/engine-type")
    {
        return Err(invalid(
            name,
            type_,
            format!(
                "engineLabelKey `{key}`: engines are recognised by the \
                 inference.networking.k8s.io/engine-type pod label only; remove the field"
            ),
        ));
    }
    let mut seen = BTreeMap::new();
    let mut engines = Vec::with_capacity(raw.engine_configs.len());
    for (i, e) in raw.engine_configs.into_iter().enumerate() {
        if e.name.trim().is_empty() {
            return Err(invalid(
                name,
                type_,
                format!("engineConfigs[{i}].name is empty"),
            ));
        }
        if seen.insert(e.name.clone(), i).is_some() {
            return Err(invalid(
                name,
                type_,
                format!("engineConfigs names `{}` twice", e.name),
            ));
        }
        engines.push(EngineConfig {
            queued_requests: spec(e.queued_requests_spec.as_deref(), "queuedRequestsSpec")?,
            running_requests: spec(e.running_requests_spec.as_deref(), "runningRequestsSpec")?,
            kv_usage: spec(e.kv_usage_spec.as_deref(), "kvUsageSpec")?,
            lora: spec(e.lora_spec.as_deref(), "loraSpec")?,
            cache_info: spec(e.cache_info_spec.as_deref(), "cacheInfoSpec")?,
            cache_block_size: cache_field(
                e.cache_block_size_label_name.as_deref(),
                e.cache_block_size_spec.as_deref(),
                "cacheBlockSizeSpec",
            )?,
            cache_num_blocks: cache_field(
                e.cache_num_blocks_label_name.as_deref(),
                e.cache_num_blocks_spec.as_deref(),
                "cacheNumBlocksSpec",
            )?,
            name: e.name,
        });
    }
    Ok(MetricsExtractorParameters {
        engines,
        default_engine: raw.default_engine,
    })
}

/// Checks `core-metrics-extractor`'s parameters (the default engine must exist).
pub(crate) fn metrics_extractor(name: &str, type_: &str, value: serde_json::Value) -> Result<()> {
    let p = metrics_extractor_parameters(name, type_, value)?;
    let default = p
        .default_engine
        .as_deref()
        .unwrap_or(crate::scrape::engine::DEFAULT_ENGINE);
    crate::scrape::engine::EngineRegistry::new(p.engines, default)
        .map(drop)
        .map_err(|e| in_plugin(name, type_, e))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct TokenProducerParameters {
    model_name: Option<String>,
    vllm: Option<serde_json::Value>,
    estimate: Option<serde_json::Value>,
}

/// Checks `token-producer`: only the default `estimate` backend (≈4 bytes a token, which
/// the prefix tables and length-aware plugins use) is built in.
pub(crate) fn token_producer(name: &str, type_: &str, value: serde_json::Value) -> Result<()> {
    let p: TokenProducerParameters = parameters(name, type_, value)?;
    if p.vllm.is_some() || p.model_name.is_some() {
        return Err(invalid(
            name,
            type_,
            "the `vllm` render backend (vllm/modelName) is not implemented; remove both to use \
             the built-in estimate (≈4 bytes per token)",
        ));
    }
    if p.estimate.is_some() {
        return Err(invalid(
            name,
            type_,
            "estimate.* tunes multimodal placeholder counts, and multimodal prompts are not \
             parsed; remove `estimate`",
        ));
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct InflightLoadParameters {
    add_estimated_output_tokens: bool,
    output_ratio: Option<f64>,
    max_estimated_output_tokens: Option<u64>,
    prefix_match_info_producer_name: Option<String>,
}

/// Checks `inflight-load-producer`: in-flight prompt tokens are always tracked; output
/// estimates are not.
pub(crate) fn inflight_load(name: &str, type_: &str, value: serde_json::Value) -> Result<()> {
    let p: InflightLoadParameters = parameters(name, type_, value)?;
    if p.prefix_match_info_producer_name.is_some() {
        return Err(invalid(
            name,
            type_,
            "the in-flight load counts whole prompts, not only their uncached part; remove \
             prefixMatchInfoProducerName",
        ));
    }
    if p.add_estimated_output_tokens
        || p.output_ratio.is_some()
        || p.max_estimated_output_tokens.is_some()
    {
        return Err(invalid(
            name,
            type_,
            "estimated output tokens are not added to the in-flight load; remove \
             addEstimatedOutputTokens, outputRatio and maxEstimatedOutputTokens",
        ));
    }
    Ok(())
}

/// Checks a flow-control plugin's parameters as the flow-control layer reads them.
pub(crate) fn flow_checked(_name: &str, type_: &str, value: serde_json::Value) -> Result<()> {
    crate::flow::config::check_plugin_parameters(type_, value)
}

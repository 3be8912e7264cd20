//! Engine configs: which metric of which model-server engine means what, and
//! the extraction of an [`EndpointMetrics`] from a parsed exposition.
//!
//! The built-in configs carry upstream's names
//! (docs/upstream.md#model-server-metrics-and-scraping) for vLLM, SGLang,
//! trtllm-serve and Triton TensorRT-LLM. A pod picks its config with the
//! `inference.networking.k8s.io/engine-type` label; pods without it use the
//! default engine (vLLM unless configured otherwise).

pub mod spec;

use std::sync::Arc;

pub use spec::MetricSpec;

use crate::datastore::EndpointMetrics;
use crate::error::{Error, Result};
use switchyard_runtime::promtext::Exposition;

/// Upstream's default engine name.
pub const DEFAULT_ENGINE: &str = "vllm";

/// Where an engine reports one cache figure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheField {
    /// Not reported.
    None,
    /// A label of the engine's cache-info metric (vLLM `block_size`).
    InfoLabel(String),
    /// The value of a metric of its own (trtllm `trtllm_kv_cache_max_blocks`).
    Metric(MetricSpec),
}

/// Which metrics of one engine mean what. `None` disables a metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// The engine name the pod label must carry.
    pub name: String,
    /// Queued requests (required when set).
    pub queued_requests: Option<MetricSpec>,
    /// Running requests (required when set).
    pub running_requests: Option<MetricSpec>,
    /// KV utilisation, 0–1 (required when set).
    pub kv_usage: Option<MetricSpec>,
    /// vLLM-style LoRA info gauge (optional).
    pub lora: Option<MetricSpec>,
    /// The cache-info gauge whose labels hold cache figures (optional).
    pub cache_info: Option<MetricSpec>,
    /// Where the block size is reported.
    pub cache_block_size: CacheField,
    /// Where the number of GPU blocks is reported.
    pub cache_num_blocks: CacheField,
}

/// The engine configs in force, looked up by the engine-type label value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineRegistry {
    configs: Vec<EngineConfig>,
    default_engine: String,
}

// === impl EngineConfig ===

impl EngineConfig {
    /// Upstream's vLLM config.
    pub fn vllm() -> Self {
        Self {
            name: "vllm".into(),
            queued_requests: Some(MetricSpec::builtin("vllm:num_requests_waiting", &[])),
            running_requests: Some(MetricSpec::builtin("vllm:num_requests_running", &[])),
            kv_usage: Some(MetricSpec::builtin("vllm:kv_cache_usage_perc", &[])),
            lora: Some(MetricSpec::builtin("vllm:lora_requests_info", &[])),
            cache_info: Some(MetricSpec::builtin("vllm:cache_config_info", &[])),
            cache_block_size: CacheField::InfoLabel("block_size".into()),
            cache_num_blocks: CacheField::InfoLabel("num_gpu_blocks".into()),
        }
    }

    /// Upstream's SGLang config.
    pub fn sglang() -> Self {
        Self {
            name: "sglang".into(),
            queued_requests: Some(MetricSpec::builtin("sglang:num_queue_reqs", &[])),
            running_requests: Some(MetricSpec::builtin("sglang:num_running_reqs", &[])),
            kv_usage: Some(MetricSpec::builtin("sglang:token_usage", &[])),
            lora: None,
            cache_info: Some(MetricSpec::builtin("sglang:cache_config_info", &[])),
            cache_block_size: CacheField::InfoLabel("page_size".into()),
            cache_num_blocks: CacheField::InfoLabel("num_pages".into()),
        }
    }

    /// Upstream's trtllm-serve config.
    pub fn trtllm_serve() -> Self {
        Self {
            name: "trtllm-serve".into(),
            queued_requests: Some(MetricSpec::builtin("trtllm_num_requests_waiting", &[])),
            running_requests: Some(MetricSpec::builtin("trtllm_num_requests_running", &[])),
            kv_usage: Some(MetricSpec::builtin("trtllm_kv_cache_utilization", &[])),
            lora: None,
            cache_info: None,
            cache_block_size: CacheField::Metric(MetricSpec::builtin(
                "trtllm_kv_cache_tokens_per_block",
                &[],
            )),
            cache_num_blocks: CacheField::Metric(MetricSpec::builtin(
                "trtllm_kv_cache_max_blocks",
                &[],
            )),
        }
    }

    /// Upstream's Triton TensorRT-LLM config.
    pub fn triton_tensorrt_llm() -> Self {
        const REQUESTS: &str = "nv_trt_llm_request_metrics";
        const BLOCKS: &str = "nv_trt_llm_kv_cache_block_metrics";
        Self {
            name: "triton-tensorrt-llm".into(),
            queued_requests: Some(MetricSpec::builtin(
                REQUESTS,
                &[("request_type", "waiting")],
            )),
            running_requests: Some(MetricSpec::builtin(
                REQUESTS,
                &[("request_type", "scheduled")],
            )),
            kv_usage: Some(MetricSpec::builtin(
                BLOCKS,
                &[("kv_cache_block_type", "fraction")],
            )),
            lora: None,
            cache_info: None,
            cache_block_size: CacheField::Metric(MetricSpec::builtin(
                BLOCKS,
                &[("kv_cache_block_type", "tokens_per")],
            )),
            cache_num_blocks: CacheField::Metric(MetricSpec::builtin(
                BLOCKS,
                &[("kv_cache_block_type", "max")],
            )),
        }
    }

    /// Reads an [`EndpointMetrics`] from a page. The three load metrics are
    /// required (when configured); LoRA and cache figures are optional.
    pub fn extract(&self, page: &Exposition<'_>) -> Result<EndpointMetrics> {
        let mut metrics = EndpointMetrics {
            waiting_queue: self.required_count(
                page,
                &self.queued_requests,
                "queued requests",
                "queuedRequestsSpec",
            )?,
            running: self.required_count(
                page,
                &self.running_requests,
                "running requests",
                "runningRequestsSpec",
            )?,
            ..EndpointMetrics::default()
        };
        if let Some(spec) = &self.kv_usage {
            let value = self.required_value(page, spec, "KV-cache utilisation", "kvUsageSpec")?;
            // A broken value (NaN, ±Inf) reads as full, not idle: a server that cannot report
            // its cache must not attract every request (review finding L11).
            metrics.kv_cache_usage = if value.is_finite() {
                value.clamp(0.0, 1.0)
            } else {
                1.0
            };
        }
        if let Some(spec) = &self.lora {
            self.read_lora(page, spec, &mut metrics);
        }
        metrics.cache_block_size = self
            .cache_figure(page, &self.cache_block_size)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0);
        metrics.cache_num_blocks = self
            .cache_figure(page, &self.cache_num_blocks)
            .filter(|v| *v > 0);
        Ok(metrics)
    }

    fn required_value(
        &self,
        page: &Exposition<'_>,
        spec: &MetricSpec,
        semantic: &'static str,
        field: &'static str,
    ) -> Result<f64> {
        spec.latest(page)
            .map(|s| s.value)
            .ok_or_else(|| Error::MetricMissing {
                engine: self.name.clone(),
                semantic,
                spec: spec.to_string(),
                field,
            })
    }

    fn required_count(
        &self,
        page: &Exposition<'_>,
        spec: &Option<MetricSpec>,
        semantic: &'static str,
        field: &'static str,
    ) -> Result<u32> {
        match spec {
            Some(spec) => Ok(count(self.required_value(page, spec, semantic, field)?)),
            None => Ok(0),
        }
    }

    /// vLLM's LoRA gauge: its value is the time of the update, so the series
    /// with the largest value is the current one.
    fn read_lora(&self, page: &Exposition<'_>, spec: &MetricSpec, metrics: &mut EndpointMetrics) {
        let newest = page
            .samples
            .iter()
            .filter(|s| spec.matches(s) && !s.value.is_nan())
            .reduce(|best, s| if s.value > best.value { s } else { best });
        let Some(sample) = newest else { return };
        metrics.active_loras = adapter_list(sample.label("running_lora_adapters").as_deref());
        metrics.waiting_loras = adapter_list(sample.label("waiting_lora_adapters").as_deref());
        metrics.max_loras = sample.label("max_lora").and_then(|v| v.trim().parse().ok());
    }

    fn cache_figure(&self, page: &Exposition<'_>, field: &CacheField) -> Option<u64> {
        match field {
            CacheField::None => None,
            CacheField::InfoLabel(label) => {
                let sample = self.cache_info.as_ref()?.latest(page)?;
                let text = sample.label(label)?;
                // vLLM prints integers; tolerate "16.0" as well.
                text.trim()
                    .parse::<u64>()
                    .ok()
                    .or_else(|| text.trim().parse::<f64>().ok().map(count_u64))
            }
            CacheField::Metric(spec) => spec.latest(page).map(|s| count_u64(s.value)),
        }
    }
}

/// A gauge read as a count: negative, NaN and fractional values are made sane
/// rather than trusted (a broken server must not look infinitely idle or busy).
fn count(value: f64) -> u32 {
    if value.is_nan() || value <= 0.0 {
        0
    } else if value >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        // In range and non-negative, so the cast neither wraps nor saturates.
        value.round() as u32
    }
}

fn count_u64(value: f64) -> u64 {
    if value.is_nan() || value <= 0.0 {
        0
    } else if value >= u64::MAX as f64 {
        u64::MAX
    } else {
        value.round() as u64
    }
}

/// `"a,b"` into `["a", "b"]`, skipping empty names.
fn adapter_list(text: Option<&str>) -> Arc<[Box<str>]> {
    text.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(Box::from)
        .collect()
}

// === impl EngineRegistry ===

impl Default for EngineRegistry {
    fn default() -> Self {
        Self {
            configs: vec![
                EngineConfig::vllm(),
                EngineConfig::sglang(),
                EngineConfig::trtllm_serve(),
                EngineConfig::triton_tensorrt_llm(),
            ],
            default_engine: DEFAULT_ENGINE.into(),
        }
    }
}

impl EngineRegistry {
    /// The built-in configs plus `overrides`; an override with a built-in's
    /// name replaces that whole config, as upstream does. Fails when the
    /// default engine has no config.
    pub fn new(overrides: Vec<EngineConfig>, default_engine: &str) -> Result<Self> {
        let mut registry = Self::default();
        for config in overrides {
            match registry.configs.iter_mut().find(|c| c.name == config.name) {
                Some(existing) => *existing = config,
                None => registry.configs.push(config),
            }
        }
        if registry.get(default_engine).is_none() {
            return Err(Error::Config(format!(
                "core-metrics-extractor defaultEngine `{default_engine}` has no engine config; known engines: {}",
                registry.names().join(", ")
            )));
        }
        registry.default_engine = default_engine.to_owned();
        Ok(registry)
    }

    /// The config named `name`.
    pub fn get(&self, name: &str) -> Option<&EngineConfig> {
        self.configs.iter().find(|c| c.name == name)
    }

    /// The config for a pod whose engine-type label is `label` (absent or
    /// unknown: the default engine, since a typo must not stop scraping).
    pub fn for_label(&self, label: Option<&str>) -> &EngineConfig {
        label
            .and_then(|name| self.get(name))
            .or_else(|| self.get(&self.default_engine))
            .or(self.configs.first())
            .unwrap_or_else(|| unreachable_default())
    }

    /// The engine names, in registration order.
    pub fn names(&self) -> Vec<&str> {
        self.configs.iter().map(|c| c.name.as_str()).collect()
    }
}

/// `EngineRegistry` always holds the built-ins, so `configs` is never empty;
/// this keeps `for_label` total without an `unwrap`.
fn unreachable_default() -> &'static EngineConfig {
    static VLLM: std::sync::OnceLock<EngineConfig> = std::sync::OnceLock::new();
    VLLM.get_or_init(EngineConfig::vllm)
}

#[cfg(test)]
mod tests;

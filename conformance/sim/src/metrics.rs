//! The Prometheus text exposition of an engine's statistics.
//!
//! The engine updates its [`EngineStats`](crate::engine::stats::EngineStats) as it steps
//! (pure data, no registry, no locks); this module only renders them. The HTTP `/metrics`
//! handler asks the engine task to render it in the vLLM names
//! (`vllm.rs`) or, with `--engine sglang`, the SGLang names (`sglang.rs`). The exposition is
//! written by hand (`text.rs`) so every name is exactly the one model servers use — a
//! generic client library would add or police `_total` suffixes. [`parse`] reads it back
//! strictly with the workspace's one parser (`switchyard_runtime::promtext`), for tests.

pub mod parse;
mod sglang;
mod text;
mod vllm;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::engine::Engine;

/// Which model server's metric names to expose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// `vllm:*` names (the default, and what the EPP reads by default).
    #[default]
    Vllm,
    /// `sglang:*` names.
    Sglang,
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Vllm => "vllm",
            Self::Sglang => "sglang",
        })
    }
}

/// Renders the exposition of `engine` in `kind`'s names. `now_s` is the Unix time (or
/// virtual time) in seconds, used as the value of `vllm:lora_requests_info`.
pub fn render(kind: EngineKind, model_name: &str, engine: &Engine, now_s: f64) -> String {
    let mut out = String::with_capacity(16 * 1024);
    match kind {
        EngineKind::Vllm => vllm::render(&mut out, model_name, engine, now_s),
        EngineKind::Sglang => sglang::render(&mut out, model_name, engine),
    }
    out
}

/// Every metric family name the vLLM exposition carries (reference §3.2), in the form a
/// scraper sees on sample lines (counters with `_total`, histograms by family name).
pub const VLLM_NAMES: &[&str] = &[
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc",
    "vllm:lora_requests_info",
    "vllm:cache_config_info",
    "vllm:prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:request_success_total",
    "vllm:num_preemptions_total",
    "vllm:time_to_first_token_seconds",
    "vllm:inter_token_latency_seconds",
    "vllm:time_per_output_token_seconds",
    "vllm:e2e_request_latency_seconds",
    "vllm:request_queue_time_seconds",
    "vllm:request_inference_time_seconds",
    "vllm:request_prefill_time_seconds",
    "vllm:request_decode_time_seconds",
    "vllm:request_prompt_tokens",
    "vllm:request_generation_tokens",
    "vllm:request_params_max_tokens",
];

/// The SGLang names exposed with `--engine sglang`.
pub const SGLANG_NAMES: &[&str] = &[
    "sglang:num_running_reqs",
    "sglang:num_queue_reqs",
    "sglang:token_usage",
    "sglang:num_used_tokens",
    "sglang:cache_hit_rate",
    "sglang:cache_config_info",
    "sglang:prompt_tokens_total",
    "sglang:generation_tokens_total",
    "sglang:cached_tokens_total",
    "sglang:num_requests_total",
    "sglang:time_to_first_token_seconds",
    "sglang:inter_token_latency_seconds",
    "sglang:e2e_request_latency_seconds",
];

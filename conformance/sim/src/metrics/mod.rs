//! Engine statistics and their Prometheus text exposition.
//!
//! The engine updates an [`EngineMetrics`] as it steps (pure data, no registry, no locks);
//! the HTTP `/metrics` handler asks the engine task to render it in the vLLM names
//! (`vllm.rs`) or, with `--engine sglang`, the SGLang names (`sglang.rs`). The exposition is
//! written by hand (`text.rs`) so every name is exactly the one model servers use — a
//! generic client library would add or police `_total` suffixes. [`parse`] reads it back
//! strictly with the workspace's one parser (`switchyard_runtime::promtext`), for tests.

pub mod histogram;
pub mod parse;
mod sglang;
mod text;
mod vllm;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::engine::{Engine, RequestOutcome};
use histogram::{
    Histogram, REQUEST_LATENCY_BUCKETS, TOKEN_LATENCY_BUCKETS, TTFT_BUCKETS, one_two_five,
};

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

/// Counters and histograms one engine accumulates. Gauges are read from the engine state
/// at render time instead.
#[derive(Debug, Clone)]
pub struct EngineMetrics {
    /// Prompt tokens prefilled (counted once per request, at its first token).
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub generation_tokens: u64,
    /// Prompt tokens looked up in the prefix cache at first scheduling.
    pub prefix_queries: u64,
    /// Of those, tokens found.
    pub prefix_hits: u64,
    /// Recompute preemptions.
    pub preemptions: u64,
    /// Finished requests by reason: stop, length, abort.
    pub finished_stop: u64,
    /// See `finished_stop`.
    pub finished_length: u64,
    /// See `finished_stop`.
    pub finished_abort: u64,
    /// Seconds from arrival to first token.
    pub ttft: Histogram,
    /// Seconds between consecutive tokens of a request.
    pub itl: Histogram,
    /// Per request: decode time / (output tokens − 1).
    pub tpot: Histogram,
    /// Seconds from arrival to last token.
    pub e2e: Histogram,
    /// Seconds waiting before first scheduling.
    pub queue: Histogram,
    /// Seconds from first scheduling to last token.
    pub inference: Histogram,
    /// Seconds from first scheduling to first token.
    pub prefill: Histogram,
    /// Seconds from first to last token.
    pub decode: Histogram,
    /// Prompt length per request.
    pub prompt_len: Histogram,
    /// Output length per request.
    pub generation_len: Histogram,
    /// The `max_tokens` parameter per request (when given).
    pub max_tokens: Histogram,
}

impl EngineMetrics {
    /// Empty metrics; token-count buckets go up to `max_model_len`.
    pub fn new(max_model_len: usize) -> Self {
        let tokens = one_two_five(max_model_len);
        Self {
            prompt_tokens: 0,
            generation_tokens: 0,
            prefix_queries: 0,
            prefix_hits: 0,
            preemptions: 0,
            finished_stop: 0,
            finished_length: 0,
            finished_abort: 0,
            ttft: Histogram::new(TTFT_BUCKETS),
            itl: Histogram::new(TOKEN_LATENCY_BUCKETS),
            tpot: Histogram::new(TOKEN_LATENCY_BUCKETS),
            e2e: Histogram::new(REQUEST_LATENCY_BUCKETS),
            queue: Histogram::new(REQUEST_LATENCY_BUCKETS),
            inference: Histogram::new(REQUEST_LATENCY_BUCKETS),
            prefill: Histogram::new(REQUEST_LATENCY_BUCKETS),
            decode: Histogram::new(REQUEST_LATENCY_BUCKETS),
            prompt_len: Histogram::new(&tokens),
            generation_len: Histogram::new(&tokens),
            max_tokens: Histogram::new(&tokens),
        }
    }

    /// Records a finished request. `hit_limit` tells whether it stopped at `max_tokens`.
    pub fn on_finish(&mut self, o: &RequestOutcome, max_tokens: Option<u32>, aborted: bool) {
        if aborted {
            self.finished_abort += 1;
        } else if max_tokens == Some(o.output_tokens) {
            self.finished_length += 1;
        } else {
            self.finished_stop += 1;
        }
        let s = |us: u64| us as f64 / 1e6;
        self.e2e.observe(s(o.e2e_us()));
        if let Some(sched) = o.scheduled_us {
            self.queue.observe(s(sched.saturating_sub(o.arrival_us)));
            self.inference.observe(s(o.finish_us.saturating_sub(sched)));
            if let Some(first) = o.first_token_us {
                self.prefill.observe(s(first.saturating_sub(sched)));
            }
        }
        if let Some(first) = o.first_token_us {
            self.decode.observe(s(o.finish_us.saturating_sub(first)));
            if o.output_tokens > 1 {
                self.tpot
                    .observe(s(o.finish_us.saturating_sub(first)) / f64::from(o.output_tokens - 1));
            }
        }
        self.prompt_len.observe(f64::from(o.prompt_tokens));
        self.generation_len.observe(f64::from(o.output_tokens));
        if let Some(m) = max_tokens {
            self.max_tokens.observe(f64::from(m));
        }
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

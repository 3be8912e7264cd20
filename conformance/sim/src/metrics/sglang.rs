//! The SGLang metric names (`--engine sglang`): the proposal-003 trio plus the usual
//! throughput and latency families.

use super::text::{counter, gauge, histogram};
use crate::engine::Engine;

pub(super) fn render(out: &mut String, model: &str, e: &Engine) {
    let base: &[(&str, &str)] = &[("model_name", model)];
    let m = e.metrics();
    let cfg = e.config();
    let used_tokens = e.pool().total().saturating_sub(e.pool().num_free()) * cfg.block_size;
    let hit_rate = if m.prefix_queries == 0 {
        0.0
    } else {
        m.prefix_hits as f64 / m.prefix_queries as f64
    };

    gauge(
        out,
        "sglang:num_running_reqs",
        "The number of running requests.",
        base,
        e.num_running() as f64,
    );
    gauge(
        out,
        "sglang:num_queue_reqs",
        "The number of requests in the waiting queue.",
        base,
        e.num_waiting() as f64,
    );
    gauge(
        out,
        "sglang:token_usage",
        "The token usage, 0-1.",
        base,
        e.kv_usage(),
    );
    gauge(
        out,
        "sglang:num_used_tokens",
        "The number of used tokens.",
        base,
        used_tokens as f64,
    );
    gauge(
        out,
        "sglang:cache_hit_rate",
        "The prefix cache hit rate.",
        base,
        hit_rate,
    );
    let page_size = cfg.block_size.to_string();
    let pages = cfg.num_gpu_blocks.to_string();
    gauge(
        out,
        "sglang:cache_config_info",
        "Cache configuration.",
        &[
            ("model_name", model),
            ("page_size", &page_size),
            ("num_pages", &pages),
        ],
        1.0,
    );
    counter(
        out,
        "sglang:prompt_tokens_total",
        "Number of prefill tokens processed.",
        base,
        m.prompt_tokens,
    );
    counter(
        out,
        "sglang:generation_tokens_total",
        "Number of generation tokens processed.",
        base,
        m.generation_tokens,
    );
    counter(
        out,
        "sglang:cached_tokens_total",
        "Number of prompt tokens served from the prefix cache.",
        base,
        m.prefix_hits,
    );
    let finished = m.finished_stop + m.finished_length + m.finished_abort;
    counter(
        out,
        "sglang:num_requests_total",
        "Number of requests processed.",
        base,
        finished,
    );
    histogram(
        out,
        "sglang:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        base,
        &m.ttft,
    );
    histogram(
        out,
        "sglang:inter_token_latency_seconds",
        "Histogram of inter-token latency in seconds.",
        base,
        &m.itl,
    );
    histogram(
        out,
        "sglang:e2e_request_latency_seconds",
        "Histogram of end-to-end request latency in seconds.",
        base,
        &m.e2e,
    );
}

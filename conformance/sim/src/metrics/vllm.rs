//! The vLLM (V1) metric names, as listed in reference §3.2.

use super::text::{counter, gauge, histogram};
use crate::engine::Engine;

pub(super) fn render(out: &mut String, model: &str, e: &Engine, now_s: f64) {
    // vLLM V1 labels every engine-level series with the model and the engine index; a
    // simulated replica is a single engine, index 0.
    let base: &[(&str, &str)] = &[("model_name", model), ("engine", "0")];
    let m = e.metrics();
    let cfg = e.config();

    gauge(
        out,
        "vllm:num_requests_running",
        "Number of requests in model execution batches.",
        base,
        e.num_running() as f64,
    );
    gauge(
        out,
        "vllm:num_requests_waiting",
        "Number of requests waiting to be processed.",
        base,
        e.num_waiting() as f64,
    );
    gauge(
        out,
        "vllm:kv_cache_usage_perc",
        "KV-cache usage. 1 means 100 percent usage.",
        base,
        e.kv_usage(),
    );
    // The pre-V1 name; older scrapers (and GIE's defaults before v0.4) read this one.
    gauge(
        out,
        "vllm:gpu_cache_usage_perc",
        "GPU KV-cache usage. 1 means 100 percent usage.",
        base,
        e.kv_usage(),
    );

    let max_lora = cfg.max_loras.to_string();
    let running = e.running_loras().join(",");
    let waiting = e.waiting_loras().join(",");
    gauge(
        out,
        "vllm:lora_requests_info",
        "Running stats on lora requests; the value is the Unix time of the update.",
        &[
            ("max_lora", &max_lora),
            ("running_lora_adapters", &running),
            ("waiting_lora_adapters", &waiting),
        ],
        now_s,
    );
    let block_size = cfg.block_size.to_string();
    let blocks = cfg.num_gpu_blocks.to_string();
    let caching = if cfg.enable_prefix_caching {
        "True"
    } else {
        "False"
    };
    gauge(
        out,
        "vllm:cache_config_info",
        "Information of the LLMEngine CacheConfig.",
        &[
            ("block_size", &block_size),
            ("cache_dtype", "auto"),
            ("enable_prefix_caching", caching),
            ("engine", "0"),
            ("num_gpu_blocks", &blocks),
        ],
        1.0,
    );

    counter(
        out,
        "vllm:prefix_cache_queries_total",
        "Prefix cache queries, in tokens.",
        base,
        m.prefix_queries,
    );
    counter(
        out,
        "vllm:prefix_cache_hits_total",
        "Prefix cache hits, in tokens.",
        base,
        m.prefix_hits,
    );
    counter(
        out,
        "vllm:prompt_tokens_total",
        "Number of prefill tokens processed.",
        base,
        m.prompt_tokens,
    );
    counter(
        out,
        "vllm:generation_tokens_total",
        "Number of generation tokens processed.",
        base,
        m.generation_tokens,
    );
    counter(
        out,
        "vllm:num_preemptions_total",
        "Cumulative number of preemptions from the engine.",
        base,
        m.preemptions,
    );

    super::text::header(
        out,
        "vllm:request_success_total",
        "Count of successfully processed requests.",
        "counter",
    );
    for (reason, n) in [
        ("stop", m.finished_stop),
        ("length", m.finished_length),
        ("abort", m.finished_abort),
    ] {
        super::text::sample(
            out,
            "vllm:request_success_total",
            &[
                ("model_name", model),
                ("engine", "0"),
                ("finished_reason", reason),
            ],
            n as f64,
        );
    }

    histogram(
        out,
        "vllm:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        base,
        &m.ttft,
    );
    histogram(
        out,
        "vllm:inter_token_latency_seconds",
        "Histogram of inter-token latency in seconds.",
        base,
        &m.itl,
    );
    histogram(
        out,
        "vllm:time_per_output_token_seconds",
        "Histogram of time per output token in seconds.",
        base,
        &m.tpot,
    );
    histogram(
        out,
        "vllm:e2e_request_latency_seconds",
        "Histogram of end to end request latency in seconds.",
        base,
        &m.e2e,
    );
    histogram(
        out,
        "vllm:request_queue_time_seconds",
        "Histogram of time spent in WAITING phase for request.",
        base,
        &m.queue,
    );
    histogram(
        out,
        "vllm:request_inference_time_seconds",
        "Histogram of time spent in RUNNING phase for request.",
        base,
        &m.inference,
    );
    histogram(
        out,
        "vllm:request_prefill_time_seconds",
        "Histogram of time spent in PREFILL phase for request.",
        base,
        &m.prefill,
    );
    histogram(
        out,
        "vllm:request_decode_time_seconds",
        "Histogram of time spent in DECODE phase for request.",
        base,
        &m.decode,
    );
    histogram(
        out,
        "vllm:request_prompt_tokens",
        "Number of prefill tokens processed.",
        base,
        &m.prompt_len,
    );
    histogram(
        out,
        "vllm:request_generation_tokens",
        "Number of generation tokens processed.",
        base,
        &m.generation_len,
    );
    histogram(
        out,
        "vllm:request_params_max_tokens",
        "Histogram of the max_tokens request parameter.",
        base,
        &m.max_tokens,
    );
}

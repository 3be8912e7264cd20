//! What one engine counts as it steps: counters and histograms, pure data updated by the
//! engine and read by the exposition ([`crate::metrics`]), which only renders them.

pub mod histogram;

use super::RequestOutcome;
use histogram::{
    Histogram, REQUEST_LATENCY_BUCKETS, TOKEN_LATENCY_BUCKETS, TTFT_BUCKETS, one_two_five,
};

/// Counters and histograms one engine accumulates. Gauges are read from the engine state
/// at render time instead.
#[derive(Debug, Clone)]
pub struct EngineStats {
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
    /// LoRA adapters brought into a GPU slot (each one a load the step paid for).
    pub lora_loads: u64,
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

impl EngineStats {
    /// Empty metrics; token-count buckets go up to `max_model_len`.
    pub fn new(max_model_len: usize) -> Self {
        let tokens = one_two_five(max_model_len);
        Self {
            prompt_tokens: 0,
            generation_tokens: 0,
            prefix_queries: 0,
            prefix_hits: 0,
            preemptions: 0,
            lora_loads: 0,
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

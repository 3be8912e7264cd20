//! The engine model: one replica's continuous-batching scheduler, independent of any clock.
//!
//! The engine is plain data. A driver hands it requests ([`Engine::submit`]) and calls
//! [`Engine::step`] with the current time; the step decides the batch, charges its cost from
//! the calibrated formulas and returns the time it ends. Events of the step (tokens,
//! finished requests) become visible through [`Engine::take_events`] and are meant to be
//! delivered at that end time. The real-time HTTP driver sleeps until then; the virtual-time
//! fleet jumps its clock there. Nothing here reads a clock, spawns or locks.
//!
//! The step loop follows vLLM V1 (`sched.rs`): running requests first, each taking one
//! decode token or its next prefill chunk from the `max_num_batched_tokens` budget, growing
//! its KV block table as it goes and preempting the newest running request (recompute) when
//! the pool is empty; then waiting requests are admitted in order while seats, budget, KV
//! and LoRA slots allow.

mod config;
mod request;
mod sched;
pub mod stats;

use std::collections::VecDeque;
use std::sync::Arc;

pub use crate::units::Micros;
pub use config::{EngineConfig, LatencyScale, Profile, StepCost};
pub use request::{EngineEvent, EngineRequest, FinishReason, RequestId, RequestOutcome};

use crate::error::SimError;
use crate::kv::BlockPool;
use crate::lora::LoraSlots;
use request::Seq;
use stats::EngineStats;

/// One simulated model-server engine.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    pool: BlockPool,
    loras: LoraSlots,
    waiting: VecDeque<Seq>,
    running: Vec<Seq>,
    next_id: RequestId,
    events: Vec<EngineEvent>,
    metrics: EngineStats,
    scale: LatencyScale,
    /// Scratch batch plan reused across steps: (index into `running`, tokens).
    plan: Vec<(usize, usize)>,
    steps: u64,
}

impl Engine {
    /// An idle engine with `adapters` registered as servable LoRA names.
    pub fn new(cfg: EngineConfig, adapters: impl IntoIterator<Item = String>) -> Self {
        Self {
            pool: BlockPool::new(cfg.num_gpu_blocks),
            loras: LoraSlots::new(cfg.max_loras, adapters),
            waiting: VecDeque::new(),
            running: Vec::new(),
            next_id: 1,
            events: Vec::new(),
            metrics: EngineStats::new(cfg.max_model_len),
            scale: LatencyScale::default(),
            plan: Vec::new(),
            steps: 0,
            cfg,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Sets the latency multipliers applied from the next step on.
    pub fn set_latency_scale(&mut self, scale: LatencyScale) {
        self.scale = scale;
    }

    /// Current latency multipliers.
    pub fn latency_scale(&self) -> LatencyScale {
        self.scale
    }

    /// Registered and resident adapters.
    pub fn loras(&self) -> &LoraSlots {
        &self.loras
    }

    /// Mutable adapter registry (load/unload endpoints).
    pub fn loras_mut(&mut self) -> &mut LoraSlots {
        &mut self.loras
    }

    /// The KV block pool.
    pub fn pool(&self) -> &BlockPool {
        &self.pool
    }

    /// Accumulated counters and histograms.
    pub fn metrics(&self) -> &EngineStats {
        &self.metrics
    }

    /// Requests in the waiting queue (including preempted ones).
    pub fn num_waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Requests holding a seat in the batch.
    pub fn num_running(&self) -> usize {
        self.running.len()
    }

    /// Fraction of KV blocks in use, 0–1.
    pub fn kv_usage(&self) -> f64 {
        self.pool.usage()
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Whether there is nothing to step.
    pub fn is_idle(&self) -> bool {
        self.running.is_empty() && self.waiting.is_empty()
    }

    /// Prompt tokens of a request with these block hashes that this engine could serve
    /// from its prefix cache right now (an oracle for routing experiments).
    pub fn prefix_hit_tokens(&self, block_hashes: &[u64]) -> usize {
        if !self.cfg.enable_prefix_caching {
            return 0;
        }
        self.pool.longest_prefix(block_hashes) * self.cfg.block_size
    }

    /// Adapters with running requests, sorted (`running_lora_adapters`).
    pub fn running_loras(&self) -> Vec<&str> {
        self.loras.running()
    }

    /// Distinct adapters of waiting requests, sorted (`waiting_lora_adapters`).
    pub fn waiting_loras(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .waiting
            .iter()
            .filter_map(|s| s.req.lora.as_deref())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Resolves a `model` field: `Ok(None)` for a served base-model name, `Ok(Some(_))` for
    /// a registered adapter, otherwise [`SimError::UnknownModel`].
    pub fn resolve_model(
        &self,
        served: &[String],
        model: &str,
    ) -> Result<Option<Arc<str>>, SimError> {
        if served.iter().any(|s| s == model) {
            return Ok(None);
        }
        self.loras
            .get(model)
            .map(Some)
            .ok_or_else(|| SimError::UnknownModel(model.to_owned()))
    }

    /// Queues a request. Fails with 429-style [`SimError::QueueFull`] when the waiting
    /// queue is at its cap, and rejects up front what could never run: longer than
    /// `max_model_len`, more KV than the pool can ever offer, or an unknown adapter.
    pub fn submit(&mut self, req: EngineRequest, now: Micros) -> Result<RequestId, SimError> {
        if req.prompt_tokens == 0 {
            return Err(SimError::BadRequest("the prompt is empty".into()));
        }
        if req.output_tokens == 0 {
            return Err(SimError::BadRequest("max_tokens must be at least 1".into()));
        }
        // Like vLLM, judge the client's `max_tokens`, not how long the answer turns out.
        let asked = req.max_tokens_param.unwrap_or(0).max(req.output_tokens);
        let requested = req.prompt_tokens as usize + asked as usize;
        if requested > self.cfg.max_model_len {
            return Err(SimError::TooLong(format!(
                "This model's maximum context length is {} tokens. However, you requested {} tokens ({} in the messages, {} in the completion).",
                self.cfg.max_model_len, requested, req.prompt_tokens, asked
            )));
        }
        let total = req.prompt_tokens as usize + req.output_tokens as usize;
        if total.div_ceil(self.cfg.block_size) > self.usable_blocks() {
            return Err(SimError::TooLong(format!(
                "the request needs {total} tokens of KV cache but only {} fit",
                self.usable_blocks() * self.cfg.block_size
            )));
        }
        if let Some(name) = req.lora.as_deref() {
            if !self.loras.is_registered(name) {
                return Err(SimError::UnknownModel(name.to_owned()));
            }
            if self.cfg.max_loras == 0 {
                return Err(SimError::BadRequest(
                    "LoRA is disabled (max_loras = 0)".into(),
                ));
            }
        }
        if self.waiting.len() >= self.cfg.max_waiting {
            return Err(SimError::QueueFull(self.waiting.len()));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.waiting.push_back(Seq::new(id, req, now));
        Ok(id)
    }

    /// Drops a request (the client went away), freeing its seat and KV. Returns whether it
    /// was found.
    pub fn abort(&mut self, id: RequestId, now: Micros) -> bool {
        let seq = if let Some(pos) = self.waiting.iter().position(|s| s.id == id) {
            self.waiting.remove(pos)
        } else if let Some(pos) = self.running.iter().position(|s| s.id == id) {
            let seq = self.running.remove(pos);
            self.release_seq(&seq);
            Some(seq)
        } else {
            None
        };
        let Some(seq) = seq else {
            return false;
        };
        let outcome = seq.outcome(FinishReason::Abort, now);
        self.metrics
            .on_finish(&outcome, seq.req.max_tokens_param, true);
        true
    }

    /// Moves the events of past steps into `out` (appending).
    pub fn take_events(&mut self, out: &mut Vec<EngineEvent>) {
        out.append(&mut self.events);
    }

    /// Blocks a request can count on: the pool minus what resident adapters may hold.
    fn usable_blocks(&self) -> usize {
        let per_lora = self.cfg.lora_kv_tokens.div_ceil(self.cfg.block_size);
        let slots = self.cfg.max_loras.min(self.loras.registered().len());
        self.pool.total().saturating_sub(per_lora * slots)
    }

    /// Returns a sequence's KV (tail first, so its last blocks are evicted first) and its
    /// adapter seat.
    fn release_seq(&mut self, seq: &Seq) {
        for &b in seq.blocks.iter().rev() {
            self.pool.release(b);
        }
        if let Some(name) = seq.req.lora.as_deref() {
            self.loras.release(name);
        }
    }
}

#[cfg(test)]
mod tests;

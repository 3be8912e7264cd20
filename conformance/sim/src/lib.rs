//! `switchyard-sim`: a vLLM-like model-server simulator.
//!
//! * [`engine`] — the pure engine model: continuous batching with `max_num_seqs` and a
//!   `max_num_batched_tokens` budget, chunked prefill, paged KV with chained block hashes
//!   and prefix reuse ([`kv`]), recompute preemption, a capped waiting queue, LoRA slots
//!   ([`lora`]) and step costs from calibrated formulas. It never reads a clock.
//! * [`http`] — the real-time driver: OpenAI-compatible replicas over HTTP, one engine task
//!   per replica, with vLLM metric names ([`metrics`]) and switchable [`faults`].
//! * [`fleet`] — the virtual-time driver: N replicas on a discrete-event clock with a
//!   routing hook, for routing benchmarks that run much faster than real time.
//!
//! Token counts come from text at 4 bytes per token ([`tokens`]). [`kvevents`] encodes KV-cache
//! events in vLLM's wire format (not published by the engine yet).

pub mod cli;
pub mod engine;
pub mod error;
pub mod faults;
pub mod fleet;
pub mod http;
pub mod kv;
pub mod kvevents;
pub mod lora;
pub mod metrics;
pub mod rng;
pub mod tokens;
pub mod units;

pub use error::{Result, SimError};

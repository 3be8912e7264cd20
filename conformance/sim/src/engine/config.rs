//! Engine configuration, the step-cost model and the two calibrated model profiles.

use serde::{Deserialize, Serialize};

/// Cost of one engine step as a function of what the batch holds.
///
/// ```text
/// prefill(p)   = max(prefill_min, prefill_base + per_prefill_token · p)      if p > 0
/// decode(d, k) = decode_base + per_decode_seq · d + per_kv_token · k          if d > 0
/// step         = prefill(p) + decode(d, k) − [p > 0 and d > 0] · decode_base
/// ```
///
/// `p` is the number of prompt (prefill) tokens computed in the step, `d` the number of
/// sequences decoding one token and `k` the context tokens those decoders attend to. A mixed
/// step (vLLM V1 always mixes chunked prefill with decodes) pays the fixed decode overhead
/// only once: the decoders ride along in the prefill's forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepCost {
    /// Fixed cost of a decode-only step (µs).
    pub decode_base_us: f64,
    /// Extra cost per decoding sequence (µs): what makes ITL grow with batch size.
    pub per_decode_seq_us: f64,
    /// Extra cost per context token read by decoders (µs): attention over the KV cache.
    pub per_kv_token_us: f64,
    /// Fixed cost of a step that computes prompt tokens (µs).
    pub prefill_base_us: f64,
    /// Cost per prompt token computed (µs).
    pub per_prefill_token_us: f64,
    /// Floor of a prefill step (µs).
    pub prefill_min_us: f64,
}

impl StepCost {
    /// Step duration in µs before latency multipliers.
    pub fn step_us(&self, prefill_tokens: u64, decode_seqs: u64, kv_tokens: u64) -> f64 {
        let mut cost = 0.0;
        if prefill_tokens > 0 {
            cost += (self.prefill_base_us + self.per_prefill_token_us * prefill_tokens as f64)
                .max(self.prefill_min_us);
        }
        if decode_seqs > 0 {
            cost += self.per_decode_seq_us * decode_seqs as f64
                + self.per_kv_token_us * kv_tokens as f64;
            if prefill_tokens == 0 {
                cost += self.decode_base_us;
            }
        }
        cost
    }
}

/// Multipliers applied to step costs at run time (the latency faults and `--time-scale`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyScale {
    /// Applies to the whole step. 0 makes every step instantaneous (load tests).
    pub overall: f64,
    /// Applies to the prefill part of a step only (slows TTFT).
    pub prefill: f64,
    /// Applies to the decode part of a step only (slows inter-token latency).
    pub decode: f64,
}

impl Default for LatencyScale {
    fn default() -> Self {
        Self {
            overall: 1.0,
            prefill: 1.0,
            decode: 1.0,
        }
    }
}

/// Everything that shapes one replica's engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Most sequences running at once (vLLM `--max-num-seqs`).
    pub max_num_seqs: usize,
    /// Token budget of one step, prefill chunks plus decodes (`--max-num-batched-tokens`).
    pub max_num_batched_tokens: usize,
    /// Longest prompt + output accepted (`--max-model-len`); longer requests get 400.
    pub max_model_len: usize,
    /// Tokens per KV block (`--block-size`).
    pub block_size: usize,
    /// KV blocks in the pool (`--num-gpu-blocks-override`).
    pub num_gpu_blocks: usize,
    /// Waiting-queue cap; beyond it submissions fail with 429 (`--max-waiting-queue-length`).
    pub max_waiting: usize,
    /// LoRA adapters resident at once (`--max-loras`).
    pub max_loras: usize,
    /// Time to bring an adapter into a slot; added to the step that first uses it (µs).
    pub lora_load_us: u64,
    /// KV tokens a resident adapter occupies (the GIE fleet simulation charges 1,600).
    pub lora_kv_tokens: usize,
    /// Reuse cached prefix blocks (`--enable-prefix-caching`, on by default in vLLM V1).
    pub enable_prefix_caching: bool,
    /// Step-cost constants.
    pub cost: StepCost,
}

/// Calibrated model/hardware profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[derive(clap::ValueEnum)]
pub enum Profile {
    /// An 8B model on one H100, calibrated to llm-d-inference-sim's per-token profile:
    /// TTFT ≈ 30 ms + 0.25 ms per uncached prompt token, ITL ≈ 12 ms rising to ≈ 24 ms at a
    /// full batch of 256; ~500k KV tokens.
    #[default]
    Small,
    /// A 32B model on two H100s (TP2), 307,328 KV tokens as in llm-d's Qwen3-32B runs, with
    /// step costs fitted so an 8-replica fleet reproduces llm-d's published b2b-saas runs
    /// at rate 60 (random 4,428.7 and precise-prefix 8,730 output tok/s): prefill
    /// max(10 ms, 10 ms + 38 µs/token), decode 10 ms + 40 µs/sequence + 0.03 µs per KV
    /// token. Fit, source numbers and residuals: docs/routing.md#calibration.
    Large,
}

impl Profile {
    /// The engine configuration of this profile.
    pub fn config(self) -> EngineConfig {
        match self {
            Self::Small => EngineConfig {
                max_num_seqs: 256,
                max_num_batched_tokens: 2048,
                max_model_len: 32_768,
                block_size: 16,
                // 500k tokens: Llama-3-8B needs 128 KiB per token, ~64 GB of KV on an H100.
                num_gpu_blocks: 31_250,
                max_waiting: 1000,
                max_loras: 1,
                lora_load_us: 30_000,
                lora_kv_tokens: 1600,
                enable_prefix_caching: true,
                cost: StepCost {
                    decode_base_us: 12_000.0,
                    // Doubles a 12 ms decode step at a full batch of 256: 12 ms / 255.
                    per_decode_seq_us: 12_000.0 / 255.0,
                    per_kv_token_us: 0.0,
                    prefill_base_us: 30_000.0,
                    per_prefill_token_us: 250.0,
                    prefill_min_us: 0.0,
                },
            },
            Self::Large => EngineConfig {
                max_num_seqs: 256,
                max_num_batched_tokens: 8192,
                max_model_len: 40_960,
                block_size: 16,
                num_gpu_blocks: 307_328 / 16,
                max_waiting: 1000,
                max_loras: 1,
                lora_load_us: 30_000,
                lora_kv_tokens: 1600,
                enable_prefix_caching: true,
                // Fitted (docs/routing.md#calibration). GIE's SimPy constants (prefill
                // 19.69 ms + 67.7 µs/token, decode 14 ms + 102.6 µs/seq + 0.535 µs/KV token)
                // made the fleet ~3× slower than the published runs. The KV term is the
                // HBM read of Qwen3-32B's 256 KiB per token over two H100s (~0.04 µs).
                cost: StepCost {
                    decode_base_us: 10_000.0,
                    per_decode_seq_us: 40.0,
                    per_kv_token_us: 0.03,
                    prefill_base_us: 10_000.0,
                    per_prefill_token_us: 38.0,
                    prefill_min_us: 10_000.0,
                },
            },
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Profile::Small.config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_profile_matches_calibration_targets() {
        let c = Profile::Small.config().cost;
        assert!((c.step_us(400, 0, 0) - 130_000.0).abs() < 1.0);
        let idle = c.step_us(0, 1, 100);
        let full = c.step_us(0, 256, 100 * 256);
        assert!((idle / 1000.0 - 12.0).abs() < 0.1);
        assert!((full / idle - 2.0).abs() < 0.02);
    }

    #[test]
    fn large_profile_uses_fitted_constants() {
        let c = Profile::Large.config().cost;
        assert!((c.step_us(0, 1, 0) - 10_040.0).abs() < 1e-6, "idle decode");
        assert!((c.step_us(1000, 0, 0) - 48_000.0).abs() < 1e-6);
        assert!((c.step_us(0, 10, 10_000) - (10_000.0 + 400.0 + 300.0)).abs() < 1e-6);
        // Mixed step: decoders add only their marginal cost.
        assert!((c.step_us(1000, 10, 10_000) - (48_000.0 + 400.0 + 300.0)).abs() < 1e-6);
    }
}

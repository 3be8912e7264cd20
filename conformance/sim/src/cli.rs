//! Command-line flags. Names follow vLLM (`vllm serve`) and llm-d-inference-sim where they
//! have an equivalent; the rest are the simulator's own.

use clap::Parser;

use crate::engine::Profile;
use crate::error::SimError;
use crate::faults::Faults;
use crate::http::{Mode, ReplicaOptions};
use crate::metrics::EngineKind;

/// A vLLM-like model-server simulator: N replicas on consecutive ports, each with its own
/// engine.
#[derive(Debug, Clone, Parser)]
#[command(name = "switchyard-sim", version)]
pub struct Cli {
    /// Base model name.
    #[arg(long, default_value = "meta-llama/Llama-3.1-8B-Instruct")]
    pub model: String,
    /// Names the base model is served under (default: `--model`).
    #[arg(long, num_args = 1..)]
    pub served_model_name: Vec<String>,
    /// LoRA adapters available from the start: `name`, `name=path` or
    /// `{"name":…,"path":…}`.
    #[arg(long, num_args = 1..)]
    pub lora_modules: Vec<String>,
    /// Calibrated model/hardware profile; the flags below override its values.
    #[arg(long, value_enum, default_value_t = Profile::Small)]
    pub profile: Profile,
    /// Most sequences running at once.
    #[arg(long)]
    pub max_num_seqs: Option<usize>,
    /// Token budget of one engine step.
    #[arg(long)]
    pub max_num_batched_tokens: Option<usize>,
    /// Longest prompt + output accepted.
    #[arg(long)]
    pub max_model_len: Option<usize>,
    /// Tokens per KV block.
    #[arg(long)]
    pub block_size: Option<usize>,
    /// KV blocks per replica.
    #[arg(long, alias = "kv-cache-size")]
    pub num_gpu_blocks_override: Option<usize>,
    /// Waiting-queue cap; beyond it requests get 429.
    #[arg(long)]
    pub max_waiting_queue_length: Option<usize>,
    /// LoRA adapters resident at once.
    #[arg(long)]
    pub max_loras: Option<usize>,
    /// Time to load an adapter into a slot (ms).
    #[arg(long)]
    pub lora_load_latency_ms: Option<f64>,
    /// KV tokens a resident adapter occupies.
    #[arg(long)]
    pub lora_kv_tokens: Option<usize>,
    /// Turn prefix caching off (on by default, as in vLLM V1).
    #[arg(long)]
    pub no_enable_prefix_caching: bool,
    /// Metric names to expose.
    #[arg(long, value_enum, default_value_t = EngineKind::Vllm)]
    pub engine: EngineKind,
    /// Output text: random words or an echo of the prompt.
    #[arg(long, value_enum, default_value_t = Mode::Random)]
    pub mode: Mode,
    /// Multiplies every step's cost; 0 answers as fast as the machine allows.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub host: String,
    /// First port; replica i listens on port + i.
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Number of replicas.
    #[arg(long, default_value_t = 1)]
    pub replicas: u16,
    /// Replica names are `<prefix>-<i>`.
    #[arg(long, env = "POD_NAME", default_value = "sim")]
    pub name_prefix: String,
    /// Root of the KV block-hash chains.
    #[arg(long, default_value_t = 0)]
    pub hash_seed: u64,
    /// Seed of output lengths and fault draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Percentage (0–100) of inference requests failed on purpose, spread evenly.
    #[arg(long, default_value_t = 0.0)]
    pub failure_injection_rate: f64,
    /// Status codes for injected failures.
    #[arg(long, num_args = 1.., default_values_t = [500u16])]
    pub failure_status: Vec<u16>,
    /// Seconds `/health/ready` answers 503 after start.
    #[arg(long, default_value_t = 0.0)]
    pub startup_duration: f64,
    /// `/metrics` never answers.
    #[arg(long)]
    pub metrics_hang: bool,
    /// Pad `/metrics` to at least this many bytes.
    #[arg(long, default_value_t = 0)]
    pub metrics_huge_bytes: usize,
    /// Streams break after this many tokens.
    #[arg(long)]
    pub stream_die_after_tokens: Option<u32>,
    /// Pads successful non-streamed JSON responses to at least this many bytes.
    #[arg(long, default_value_t = 0)]
    pub response_pad_bytes: usize,
    /// Multiplies every step (a fault; combines with `--time-scale`).
    #[arg(long, default_value_t = 1.0)]
    pub latency_multiplier: f64,
    /// Multiplies prefill work (TTFT).
    #[arg(long, default_value_t = 1.0)]
    pub prefill_multiplier: f64,
    /// Multiplies decode work (inter-token latency).
    #[arg(long, default_value_t = 1.0)]
    pub decode_multiplier: f64,
    /// Log as JSON lines.
    #[arg(long)]
    pub log_json: bool,
}

/// Adapter name from a `--lora-modules` entry.
pub fn lora_name(entry: &str) -> Result<String, SimError> {
    let entry = entry.trim();
    if entry.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(entry)
            .map_err(|e| SimError::Config(format!("--lora-modules {entry}: {e}")))?;
        return v
            .get("name")
            .and_then(|n| n.as_str())
            .map(str::to_owned)
            .ok_or_else(|| SimError::Config(format!("--lora-modules {entry}: no name")));
    }
    let name = entry.split_once('=').map_or(entry, |(n, _)| n);
    if name.is_empty() {
        return Err(SimError::Config(
            "--lora-modules: empty adapter name".into(),
        ));
    }
    Ok(name.to_owned())
}

impl Cli {
    /// Faults from the flags.
    pub fn faults(&self) -> Faults {
        Faults {
            failure_injection_rate: self.failure_injection_rate,
            failure_status: self.failure_status.clone(),
            not_ready_for_secs: self.startup_duration,
            metrics_hang: self.metrics_hang,
            metrics_huge_bytes: self.metrics_huge_bytes,
            stream_die_after_tokens: self.stream_die_after_tokens,
            response_pad_bytes: self.response_pad_bytes,
            latency_multiplier: self.latency_multiplier,
            prefill_multiplier: self.prefill_multiplier,
            decode_multiplier: self.decode_multiplier,
        }
    }

    /// Options of replica `i`.
    pub fn replica(&self, i: u16) -> Result<ReplicaOptions, SimError> {
        let mut engine = self.profile.config();
        let set = |slot: &mut usize, v: Option<usize>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut engine.max_num_seqs, self.max_num_seqs);
        set(
            &mut engine.max_num_batched_tokens,
            self.max_num_batched_tokens,
        );
        set(&mut engine.max_model_len, self.max_model_len);
        set(&mut engine.block_size, self.block_size);
        set(&mut engine.num_gpu_blocks, self.num_gpu_blocks_override);
        set(&mut engine.max_waiting, self.max_waiting_queue_length);
        set(&mut engine.max_loras, self.max_loras);
        set(&mut engine.lora_kv_tokens, self.lora_kv_tokens);
        if let Some(ms) = self.lora_load_latency_ms {
            engine.lora_load_us = (ms.max(0.0) * 1000.0) as u64;
        }
        engine.enable_prefix_caching = !self.no_enable_prefix_caching;
        if engine.block_size == 0 || engine.max_num_seqs == 0 || engine.max_num_batched_tokens == 0
        {
            return Err(SimError::Config(
                "block size, max-num-seqs and max-num-batched-tokens must be positive".into(),
            ));
        }
        if !self.time_scale.is_finite() || self.time_scale < 0.0 {
            return Err(SimError::Config("--time-scale must be ≥ 0".into()));
        }
        let served = if self.served_model_name.is_empty() {
            vec![self.model.clone()]
        } else {
            self.served_model_name.clone()
        };
        Ok(ReplicaOptions {
            name: format!("{}-{i}", self.name_prefix),
            served_model_names: served,
            adapters: self
                .lora_modules
                .iter()
                .map(|e| lora_name(e))
                .collect::<Result<_, _>>()?,
            engine,
            kind: self.engine,
            mode: self.mode,
            time_scale: self.time_scale,
            hash_seed: self.hash_seed,
            seed: self.seed.wrapping_add(u64::from(i)),
            faults: self.faults(),
            command_queue: 4096,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_profile() {
        let cli = Cli::parse_from([
            "switchyard-sim",
            "--model",
            "m",
            "--lora-modules",
            "a=/x",
            r#"{"name":"b","path":"/y"}"#,
            "c",
            "--max-num-seqs",
            "7",
            "--kv-cache-size",
            "99",
            "--profile",
            "large",
            "--engine",
            "sglang",
            "--replicas",
            "3",
            "--name-prefix",
            "pod",
            "--failure-status",
            "429",
            "503",
        ]);
        let r = cli.replica(2).unwrap();
        assert_eq!(r.name, "pod-2");
        assert_eq!(r.served_model_names, vec!["m"]);
        assert_eq!(r.adapters, vec!["a", "b", "c"]);
        assert_eq!(r.engine.max_num_seqs, 7);
        assert_eq!(r.engine.num_gpu_blocks, 99);
        assert_eq!(
            r.engine.max_num_batched_tokens, 8192,
            "from the large profile"
        );
        assert_eq!(r.kind, EngineKind::Sglang);
        assert_eq!(r.faults.failure_status, vec![429, 503]);
        assert!(lora_name("=x").is_err());
    }
}

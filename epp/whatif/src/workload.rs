//! Workloads as YAML: the documented schema ([`WorkloadSpec`]), the five built-in files and
//! the arrivals a spec generates for one rate.
//!
//! A workload is a population of users in groups. Every user of a group shares the group's
//! system prompt (`system_prompt_len` tokens) and asks a question of their own; with
//! `turns` above 1 each user holds a conversation whose next prompt extends the last one
//! with the model's answer and a new question, as a chat client does. Arrivals are Poisson
//! (or evenly spaced) at the rate under study, each from a user drawn uniformly. Names
//! follow inference-perf's `shared_prefix` data generator where it has one.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use switchyard_sim::fleet::{Arrival, PoissonTimes, RateSchedule, synthetic_tokens};
use switchyard_sim::kv::BlockHasher;
use switchyard_sim::rng::{SplitMix64, mix};

use crate::error::{Error, Result};

/// The built-in workloads, by name, as shipped YAML.
pub const BUILT_IN: [(&str, &str); 5] = [
    ("b2b-saas", include_str!("../workloads/b2b-saas.yaml")),
    ("no-reuse", include_str!("../workloads/no-reuse.yaml")),
    ("code-gen", include_str!("../workloads/code-gen.yaml")),
    ("multi-turn", include_str!("../workloads/multi-turn.yaml")),
    ("lora-mix", include_str!("../workloads/lora-mix.yaml")),
];

/// Longest prompt + answer a workload may ask for (the large profile's `max_model_len`).
const MAX_CONTEXT_TOKENS: u64 = 40_960;

/// A token-length distribution: a fixed number, or a normal law clamped to `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Length {
    /// Always this many tokens.
    Fixed(u32),
    /// Normal(`mean`, `std_dev`), rounded and clamped to `[min, max]`.
    Normal {
        /// Mean length.
        mean: f64,
        /// Standard deviation.
        std_dev: f64,
        /// Shortest allowed (at least 1).
        min: u32,
        /// Longest allowed.
        max: u32,
    },
}

impl Length {
    fn sample(&self, rng: &mut SplitMix64) -> u32 {
        match *self {
            Self::Fixed(n) => n.max(1),
            Self::Normal {
                mean,
                std_dev,
                min,
                max,
            } => {
                let v = rng.normal(mean, std_dev).round();
                (v.max(f64::from(min.max(1)))
                    .min(f64::from(max.max(min.max(1))))) as u32
            }
        }
    }

    fn max(&self) -> u32 {
        match *self {
            Self::Fixed(n) => n,
            Self::Normal { max, .. } => max,
        }
    }
}

/// How arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ArrivalProcess {
    /// Exponential gaps (open-loop Poisson), as inference-perf's `poisson` load type.
    #[default]
    Poisson,
    /// Evenly spaced arrivals, as its `constant` load type.
    Constant,
}

/// One LoRA adapter of a mix and the share of requests that target it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraShare {
    /// Adapter name (the request's `model`).
    pub adapter: String,
    /// Fraction of all requests, 0–1; what is left over goes to the base model.
    pub share: f64,
}

/// A workload file. Every field is documented in docs/routing.md.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Short name, used in results and plots.
    pub name: String,
    /// One line on what it models.
    #[serde(default)]
    pub description: String,
    /// Groups sharing a system prompt.
    pub num_groups: u32,
    /// Users per group; each user has a question (and conversation) of their own.
    pub num_prompts_per_group: u32,
    /// Tokens of the group's shared system prompt (0 = nothing shared).
    #[serde(default)]
    pub system_prompt_len: u32,
    /// Tokens of a user's question.
    pub question_len: Length,
    /// Tokens the model answers (exact, as with `ignore_eos`).
    pub output_len: Length,
    /// Draw a new question for every request instead of one per user (no reuse beyond the
    /// system prompt).
    #[serde(default)]
    pub fresh_question_per_request: bool,
    /// Turns per conversation: turn k's prompt is turn k−1's prompt, its answer and a new
    /// question. After the last turn the user starts a new conversation.
    #[serde(default = "one")]
    pub turns: u32,
    /// How arrivals are spaced.
    #[serde(default)]
    pub arrival: ArrivalProcess,
    /// Seconds of arrivals per rate point; the fleet then drains.
    pub duration_seconds: f64,
    /// The default rate sweep (requests per second).
    pub rates: Vec<f64>,
    /// LoRA adapters and their shares of the requests.
    #[serde(default)]
    pub lora: Vec<LoraShare>,
    /// Adapters a replica holds at once (vLLM `--max-loras`), when the mix needs it.
    #[serde(default)]
    pub max_loras: Option<usize>,
    /// Root of every random draw (arrival times, users, lengths).
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn one() -> u32 {
    1
}

fn default_seed() -> u64 {
    42
}

impl WorkloadSpec {
    /// Parses and checks a workload document; errors say which field to fix.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let spec: Self =
            serde_saphyr::from_str(text).map_err(|e| Error::Workload(e.to_string()))?;
        spec.check()?;
        Ok(spec)
    }

    /// A built-in workload by name, or a YAML file by path.
    pub fn load(name_or_path: &str) -> Result<Self> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            return Self::from_yaml(text);
        }
        let path = Path::new(name_or_path);
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Workload(format!(
                "`{name_or_path}` is neither a built-in workload ({}) nor a readable file: {e}",
                BUILT_IN.map(|(n, _)| n).join(", ")
            ))
        })?;
        Self::from_yaml(&text).map_err(|e| Error::Workload(format!("{name_or_path}: {e}")))
    }

    fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Workload(format!("{}: {what}", self.name)));
        if self.name.is_empty() || self.name.len() > 64 {
            return bad("name must be 1–64 characters");
        }
        if self.num_groups == 0 || self.num_prompts_per_group == 0 {
            return bad("num_groups and num_prompts_per_group must be at least 1");
        }
        if u64::from(self.num_groups) * u64::from(self.num_prompts_per_group) > 1_000_000 {
            return bad("at most 1,000,000 users (num_groups × num_prompts_per_group)");
        }
        if self.turns == 0 || self.turns > 64 {
            return bad("turns must be 1–64");
        }
        if !(self.duration_seconds > 0.0 && self.duration_seconds <= 3600.0) {
            return bad("duration_seconds must be in (0, 3600]");
        }
        if self.rates.is_empty() || self.rates.iter().any(|r| !(*r > 0.0 && *r <= 10_000.0)) {
            return bad("rates must be a non-empty list of numbers in (0, 10000]");
        }
        let turn = u64::from(self.question_len.max()) + u64::from(self.output_len.max());
        let longest = u64::from(self.system_prompt_len) + u64::from(self.turns) * turn;
        if longest > MAX_CONTEXT_TOKENS {
            return bad(&format!(
                "the longest conversation needs {longest} tokens, more than the {MAX_CONTEXT_TOKENS}-token context; shorten lengths or turns"
            ));
        }
        let shares: f64 = self.lora.iter().map(|l| l.share).sum();
        if self.lora.iter().any(|l| !(0.0..=1.0).contains(&l.share)) || shares > 1.0 + 1e-9 {
            return bad("lora shares must each be in [0, 1] and sum to at most 1");
        }
        if self
            .lora
            .iter()
            .any(|l| l.adapter.is_empty() || l.adapter.len() > 64)
        {
            return bad("lora adapter names must be 1–64 characters");
        }
        Ok(())
    }

    /// The adapters a fleet serving this workload must know.
    pub fn adapters(&self) -> Vec<String> {
        self.lora.iter().map(|l| l.adapter.clone()).collect()
    }

    /// The arrivals of one rate point: `duration_seconds` of arrivals at `rate`, each with
    /// its tokens and block hashes under `hasher`. The same spec, rate and hasher always
    /// give the same arrivals, whatever policy they are played against.
    pub fn arrivals(&self, rate: f64, hasher: &BlockHasher) -> Vec<Arrival> {
        let duration = (self.duration_seconds * 1e6) as u64;
        let times: Vec<u64> = match self.arrival {
            ArrivalProcess::Poisson => PoissonTimes::new(
                RateSchedule::constant(rate, duration),
                mix(self.seed ^ rate.to_bits()),
            )
            .collect(),
            ArrivalProcess::Constant => {
                let gap = 1e6 / rate;
                (0..)
                    .map(|i| (f64::from(i) * gap) as u64)
                    .take_while(|t| *t < duration)
                    .collect()
            }
        };
        let mut users = Users::new(self);
        let mut rng = SplitMix64::new(mix(self.seed ^ 0x05E5 ^ rate.to_bits()));
        times
            .into_iter()
            .map(|at| users.next_arrival(at, &mut rng, hasher))
            .collect()
    }
}

/// Conversation state of every user.
struct Users<'a> {
    spec: &'a WorkloadSpec,
    /// Per group: the system prompt.
    prefixes: Vec<Arc<[u32]>>,
    /// Per user: the next prompt's start (last prompt + its answer) and the turns sent.
    history: Vec<(Arc<[u32]>, u32)>,
    /// Per user: the question drawn once (when not fresh each request).
    questions: Vec<Arc<[u32]>>,
    /// Per user: the whole single-turn prompt, built on first use and shared after.
    prompts: Vec<Option<Arc<[u32]>>>,
    counter: u64,
}

impl<'a> Users<'a> {
    fn new(spec: &'a WorkloadSpec) -> Self {
        let prefixes = (0..spec.num_groups)
            .map(|g| {
                synthetic_tokens(
                    mix(spec.seed ^ 0x5157_0000 ^ u64::from(g)),
                    spec.system_prompt_len as usize,
                )
                .into()
            })
            .collect();
        let n = (spec.num_groups * spec.num_prompts_per_group) as usize;
        let mut len_rng = SplitMix64::new(mix(spec.seed ^ 0x01E4));
        let questions = (0..n as u64)
            .map(|u| {
                let len = spec.question_len.sample(&mut len_rng) as usize;
                synthetic_tokens(mix(spec.seed ^ 0x9E57 ^ (u << 20)), len).into()
            })
            .collect();
        Self {
            spec,
            prefixes,
            history: vec![(Arc::from([]), 0); n],
            questions,
            prompts: vec![None; n],
            counter: 0,
        }
    }

    /// A question for `user`: theirs, or a fresh one.
    fn question(&self, user: usize, rng: &mut SplitMix64) -> Arc<[u32]> {
        if self.spec.fresh_question_per_request {
            let len = self.spec.question_len.sample(rng) as usize;
            synthetic_tokens(mix(self.spec.seed ^ 0xF7E5 ^ (self.counter << 24)), len).into()
        } else {
            Arc::clone(&self.questions[user])
        }
    }

    /// System prompt of `user`'s group followed by `question`.
    fn opening(&self, user: usize, question: &[u32]) -> Arc<[u32]> {
        let group = user / self.spec.num_prompts_per_group as usize;
        let mut t = self.prefixes[group].to_vec();
        t.extend_from_slice(question);
        t.into()
    }

    fn next_arrival(&mut self, at: u64, rng: &mut SplitMix64, hasher: &BlockHasher) -> Arrival {
        let spec = self.spec;
        let user = rng.range(0, self.history.len() as u64 - 1) as usize;
        let group = user / spec.num_prompts_per_group as usize;
        self.counter += 1;
        let output = spec.output_len.sample(rng);
        let reusable = spec.turns == 1 && !spec.fresh_question_per_request;
        let tokens: Arc<[u32]> = if reusable {
            match &self.prompts[user] {
                Some(p) => Arc::clone(p),
                None => {
                    let p = self.opening(user, &self.questions[user]);
                    self.prompts[user] = Some(Arc::clone(&p));
                    p
                }
            }
        } else {
            let (last, turn) = &self.history[user];
            if *turn > 0 && *turn < spec.turns {
                // The conversation goes on: everything so far and a new question.
                let len = spec.question_len.sample(rng) as usize;
                let mut t = last.to_vec();
                t.extend(synthetic_tokens(
                    mix(self.counter ^ 0x7A11 ^ spec.seed),
                    len,
                ));
                t.into()
            } else {
                let q = self.question(user, rng);
                self.opening(user, &q)
            }
        };
        if spec.turns > 1 {
            let turn = self.history[user].1;
            let next_turn = if turn > 0 && turn < spec.turns {
                turn + 1
            } else {
                1
            };
            // What the client sends next starts with this prompt and the answer it gets.
            let mut next = tokens.to_vec();
            next.extend(synthetic_tokens(
                mix(self.counter ^ 0xA45E ^ spec.seed),
                output as usize,
            ));
            self.history[user] = (next.into(), next_turn);
        }
        let lora = self.pick_lora(rng);
        let block_hashes = hasher.hash_tokens(lora.as_deref(), &tokens).into();
        Arrival {
            at,
            prompt_tokens: u32::try_from(tokens.len()).unwrap_or(u32::MAX),
            block_hashes,
            output_tokens: output,
            lora,
            group: group as u64,
            priority: 0,
            tokens: Some(tokens),
        }
    }

    fn pick_lora(&self, rng: &mut SplitMix64) -> Option<Arc<str>> {
        if self.spec.lora.is_empty() {
            return None;
        }
        let mut x = rng.next_f64();
        for l in &self.spec.lora {
            if x < l.share {
                return Some(Arc::from(l.adapter.as_str()));
            }
            x -= l.share;
        }
        None
    }
}

#[cfg(test)]
mod tests;

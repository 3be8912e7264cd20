//! Workloads for the virtual-time fleet: arrivals with pre-hashed prompts and Poisson
//! timing, including the reference's b2b-saas shared-prefix workload.

use std::sync::Arc;

use crate::engine::Micros;
use crate::kv::BlockHasher;
use crate::rng::{SplitMix64, mix};

/// One request arriving at the fleet.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// Arrival time (µs of virtual time).
    pub at: Micros,
    /// Prompt length in tokens.
    pub prompt_tokens: u32,
    /// Chained hashes of the prompt's full blocks, under the fleet's hasher.
    pub block_hashes: Arc<[u64]>,
    /// Tokens to generate (exact, as with `ignore_eos`).
    pub output_tokens: u32,
    /// LoRA adapter, if any.
    pub lora: Option<Arc<str>>,
    /// Workload-defined key, e.g. the shared-prefix group (routers may use it as a hint).
    pub group: u64,
    /// Scheduling priority for routers that shed or order (higher is more important).
    pub priority: i32,
    /// The prompt's token ids, when the workload keeps them: routers that hash the prompt
    /// themselves (the EPP's approximate prefix index) need the text, not the engine's hashes.
    pub tokens: Option<Arc<[u32]>>,
}

impl Arrival {
    /// An arrival for a prompt given as token ids.
    pub fn from_tokens(
        at: Micros,
        tokens: &[u32],
        output_tokens: u32,
        hasher: &BlockHasher,
    ) -> Self {
        Self {
            at,
            prompt_tokens: u32::try_from(tokens.len()).unwrap_or(u32::MAX),
            block_hashes: hasher.hash_tokens(None, tokens).into(),
            output_tokens,
            lora: None,
            group: 0,
            priority: 0,
            tokens: None,
        }
    }

    /// The same request under a LoRA adapter (re-hashed: adapters have their own chains).
    pub fn with_lora(mut self, name: &str, tokens: &[u32], hasher: &BlockHasher) -> Self {
        self.block_hashes = hasher.hash_tokens(Some(name), tokens).into();
        self.lora = Some(Arc::from(name));
        self
    }
}

/// `len` pseudo-random token ids fixed by `seed` (vocabulary of 2^17 ids).
pub fn synthetic_tokens(seed: u64, len: usize) -> Vec<u32> {
    (0..len as u64)
        .map(|i| (mix(seed ^ mix(i.wrapping_add(1))) & 0x1_FFFF) as u32)
        .collect()
}

/// Piecewise-constant arrival rate.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSchedule {
    /// `(requests per second, stage length in µs)`, in order.
    pub stages: Vec<(f64, Micros)>,
}

impl RateSchedule {
    /// One rate for `duration` µs.
    pub fn constant(qps: f64, duration: Micros) -> Self {
        Self {
            stages: vec![(qps, duration)],
        }
    }

    /// Equal-length stages at the given rates (a load ladder).
    pub fn ladder(rates: &[f64], stage: Micros) -> Self {
        Self {
            stages: rates.iter().map(|&r| (r, stage)).collect(),
        }
    }

    /// Total length (µs).
    pub fn duration(&self) -> Micros {
        self.stages.iter().map(|s| s.1).sum()
    }
}

/// Poisson arrival times under a [`RateSchedule`]. Because exponential gaps are memoryless,
/// a gap that crosses a stage boundary is simply redrawn from the boundary at the new rate.
#[derive(Debug, Clone)]
pub struct PoissonTimes {
    rng: SplitMix64,
    schedule: RateSchedule,
    stage: usize,
    stage_start: Micros,
    now: f64,
}

impl PoissonTimes {
    /// Times for `schedule`, fixed by `seed`.
    pub fn new(schedule: RateSchedule, seed: u64) -> Self {
        Self {
            rng: SplitMix64::new(seed),
            schedule,
            stage: 0,
            stage_start: 0,
            now: 0.0,
        }
    }
}

impl Iterator for PoissonTimes {
    type Item = Micros;

    fn next(&mut self) -> Option<Micros> {
        loop {
            let &(rate, len) = self.schedule.stages.get(self.stage)?;
            let stage_end = (self.stage_start + len) as f64;
            let t = self.now + self.rng.exp(rate) * 1e6;
            if t < stage_end {
                self.now = t;
                return Some(t as Micros);
            }
            self.now = stage_end;
            self.stage_start += len;
            self.stage += 1;
        }
    }
}

/// A shared-prefix workload: `groups` system prompts, each followed by one of
/// `prompts_per_group` fixed questions; each arrival picks a (group, question) uniformly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedPrefix {
    /// Distinct shared prefixes.
    pub groups: u32,
    /// Distinct questions per prefix ("users").
    pub prompts_per_group: u32,
    /// Prefix length (tokens).
    pub prefix_tokens: u32,
    /// Question length (tokens).
    pub question_tokens: u32,
    /// Output length (tokens, exact).
    pub output_tokens: u32,
}

impl SharedPrefix {
    /// The reference's b2b-saas headline workload: 150 groups × 5 prompts, 6,000-token
    /// prefix, 1,200-token question, 1,000 output tokens.
    pub fn b2b_saas() -> Self {
        Self {
            groups: 150,
            prompts_per_group: 5,
            prefix_tokens: 6000,
            question_tokens: 1200,
            output_tokens: 1000,
        }
    }

    /// Arrivals following `schedule`, with prompts hashed by `hasher`; fixed by `seed`.
    pub fn arrivals(
        &self,
        hasher: &BlockHasher,
        schedule: RateSchedule,
        seed: u64,
    ) -> impl Iterator<Item = Arrival> + use<> {
        let me = *self;
        // Hash every distinct prompt once; arrivals share the hash arrays.
        let mut prompts = Vec::with_capacity((me.groups * me.prompts_per_group) as usize);
        for g in 0..me.groups {
            let prefix = synthetic_tokens(
                mix(u64::from(g) ^ seed.rotate_left(17)),
                me.prefix_tokens as usize,
            );
            for p in 0..me.prompts_per_group {
                let mut tokens = prefix.clone();
                let qseed = mix((u64::from(g) << 32 | u64::from(p)) ^ seed ^ 0x5157);
                tokens.extend(synthetic_tokens(qseed, me.question_tokens as usize));
                let hashes: Arc<[u64]> = hasher.hash_tokens(None, &tokens).into();
                prompts.push((u64::from(g), hashes));
            }
        }
        let mut pick = SplitMix64::new(mix(seed ^ 0xA11CE));
        let prompt_tokens = me.prefix_tokens + me.question_tokens;
        PoissonTimes::new(schedule, seed).map(move |at| {
            let i = pick.range(0, prompts.len() as u64 - 1) as usize;
            let (group, hashes) = &prompts[i];
            Arrival {
                at,
                prompt_tokens,
                block_hashes: Arc::clone(hashes),
                output_tokens: me.output_tokens,
                lora: None,
                group: *group,
                priority: 0,
                tokens: None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_rate_follows_the_ladder() {
        let sched = RateSchedule::ladder(&[10.0, 100.0], 100_000_000);
        let times: Vec<Micros> = PoissonTimes::new(sched, 9).collect();
        let first = times.iter().filter(|&&t| t < 100_000_000).count();
        let second = times.len() - first;
        assert!((900..1100).contains(&first), "{first}");
        assert!((9_500..10_500).contains(&second), "{second}");
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn shared_prefix_prompts_share_prefix_blocks() {
        let h = BlockHasher::new(1, 16);
        let w = SharedPrefix {
            groups: 2,
            prompts_per_group: 2,
            prefix_tokens: 64,
            question_tokens: 32,
            output_tokens: 5,
        };
        let arrivals: Vec<Arrival> = w
            .arrivals(&h, RateSchedule::constant(100.0, 1_000_000), 3)
            .collect();
        assert!(arrivals.len() > 50);
        let a = &arrivals[0];
        assert_eq!(a.prompt_tokens, 96);
        assert_eq!(a.block_hashes.len(), 6);
        let same_group: Vec<&Arrival> = arrivals.iter().filter(|b| b.group == a.group).collect();
        assert!(
            same_group
                .iter()
                .all(|b| b.block_hashes[..4] == a.block_hashes[..4])
        );
        let other = arrivals.iter().find(|b| b.group != a.group).unwrap();
        assert_ne!(other.block_hashes[0], a.block_hashes[0]);
    }
}

//! The scorer plugins: each scores candidates in [0, 1], higher is better.

use serde::Deserialize;

use super::{Scorer, parameters};
use crate::error::{Error, Result};
use crate::scheduling::{Context, PrefixParameters};

/// Builds a `token-load-scorer` from its parameters.
pub(super) fn token_load(
    name: &str,
    type_: &str,
    params: serde_json::Value,
) -> Result<Box<dyn Scorer>> {
    let p: TokenLoadParameters = parameters(name, type_, params)?;
    if p.queue_threshold_tokens == 0 {
        return Err(Error::PluginParameters {
            name: name.into(),
            type_: type_.into(),
            reason: "queueThresholdTokens must be at least 1".into(),
        });
    }
    Ok(Box::new(TokenLoadScorer {
        threshold: p.queue_threshold_tokens,
    }))
}

/// Min-max normalisation where less is better: (max − v)/(max − min), and 1
/// for everyone when all are equal.
fn less_is_better(values: impl Iterator<Item = f64> + Clone, out: &mut [f64]) {
    let (min, max) = values
        .clone()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let range = max - min;
    for (slot, value) in out.iter_mut().zip(values) {
        *slot = if range > 0.0 {
            (max - value) / range
        } else {
            1.0
        };
    }
}

/// `queue-scorer`: fewer waiting requests is better. Requests this EPP sent
/// since the last scrape count as waiting, so a burst on one snapshot spreads.
#[derive(Debug)]
pub struct QueueScorer;

impl Scorer for QueueScorer {
    fn type_name(&self) -> &'static str {
        "queue-scorer"
    }

    fn score(&self, ctx: &Context<'_>, candidates: &[usize], out: &mut [f64]) {
        let queue = candidates.iter().map(|&i| {
            ctx.endpoint(i).map_or(0.0, |e| {
                f64::from(e.metrics.waiting_queue) + f64::from(e.load.unseen())
            })
        });
        less_is_better(queue, out);
    }
}

/// `running-requests-size-scorer`: fewer running requests is better.
#[derive(Debug)]
pub struct RunningRequestsScorer;

impl Scorer for RunningRequestsScorer {
    fn type_name(&self) -> &'static str {
        "running-requests-size-scorer"
    }

    fn score(&self, ctx: &Context<'_>, candidates: &[usize], out: &mut [f64]) {
        let running = candidates.iter().map(|&i| {
            ctx.endpoint(i).map_or(0.0, |e| {
                f64::from(e.metrics.running) + f64::from(e.load.unseen())
            })
        });
        less_is_better(running, out);
    }
}

/// `kv-cache-utilization-scorer`: 1 − KV utilisation.
#[derive(Debug)]
pub struct KvCacheScorer;

impl Scorer for KvCacheScorer {
    fn type_name(&self) -> &'static str {
        "kv-cache-utilization-scorer"
    }

    fn score(&self, ctx: &Context<'_>, candidates: &[usize], out: &mut [f64]) {
        for (slot, &i) in out.iter_mut().zip(candidates) {
            *slot = ctx
                .endpoint(i)
                .map_or(0.0, |e| 1.0 - e.metrics.kv_cache_usage);
        }
    }
}

/// `lora-affinity-scorer`: 1 when the adapter is loaded, 0.8 when the server
/// has room to load it, 0.6 when it is already waiting to load, else 0.
#[derive(Debug)]
pub struct LoraAffinityScorer;

impl Scorer for LoraAffinityScorer {
    fn type_name(&self) -> &'static str {
        "lora-affinity-scorer"
    }

    fn score(&self, ctx: &Context<'_>, candidates: &[usize], out: &mut [f64]) {
        let model = ctx.request.target_model;
        for (slot, &i) in out.iter_mut().zip(candidates) {
            *slot = ctx.endpoint(i).map_or(0.0, |e| {
                let m = &e.metrics;
                let active = m.active_loras.iter().any(|a| &**a == model);
                let waiting = m.waiting_loras.iter().any(|a| &**a == model);
                let loaded = m.active_loras.len() + m.waiting_loras.len();
                let has_room = m.max_loras.is_some_and(|max| loaded < max as usize);
                if active {
                    1.0
                } else if has_room {
                    0.8
                } else if waiting {
                    0.6
                } else {
                    0.0
                }
            });
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct TokenLoadParameters {
    queue_threshold_tokens: u64,
}

impl Default for TokenLoadParameters {
    fn default() -> Self {
        Self {
            queue_threshold_tokens: 4_194_304,
        }
    }
}

/// `token-load-scorer`: 1 − min(1, in-flight tokens / threshold).
#[derive(Debug)]
pub struct TokenLoadScorer {
    threshold: u64,
}

impl Scorer for TokenLoadScorer {
    fn type_name(&self) -> &'static str {
        "token-load-scorer"
    }

    fn score(&self, ctx: &Context<'_>, candidates: &[usize], out: &mut [f64]) {
        for (slot, &i) in out.iter_mut().zip(candidates) {
            *slot = ctx.endpoint(i).map_or(0.0, |e| {
                1.0 - (e.load.in_flight_tokens() as f64 / self.threshold as f64).min(1.0)
            });
        }
    }
}

/// Builds a `prefix-cache-scorer` from its parameters (the prefix-table ones are kept
/// by the config decoder; the scoring ones are applied here).
pub(super) fn prefix_cache(
    name: &str,
    type_: &str,
    params: serde_json::Value,
) -> Result<Box<dyn Scorer>> {
    let p: PrefixParameters = parameters(name, type_, params)?;
    p.check(name, type_)?;
    Ok(Box::new(PrefixCacheScorer::new(&p)))
}

/// `prefix-cache-scorer`: w·min(1, matched tokens / `matchLengthScaleTokens`)² +
/// (1 − w)·(matched blocks / prompt blocks), w = `matchLengthWeight` (0 by default: the
/// share of the prompt's blocks the server holds, counted from the first block).
#[derive(Debug)]
pub struct PrefixCacheScorer {
    match_length_weight: f64,
    scale_tokens: f64,
    block_tokens: f64,
}

impl Default for PrefixCacheScorer {
    fn default() -> Self {
        Self::new(&PrefixParameters::default())
    }
}

impl PrefixCacheScorer {
    /// A scorer with `params`' weighting; matched tokens are counted in configured blocks.
    pub fn new(params: &PrefixParameters) -> Self {
        Self {
            match_length_weight: params.match_length_weight,
            scale_tokens: params.match_length_scale_tokens.max(1) as f64,
            block_tokens: params.block_size_tokens.max(1) as f64,
        }
    }
}

impl Scorer for PrefixCacheScorer {
    fn type_name(&self) -> &'static str {
        "prefix-cache-scorer"
    }

    fn score(&self, ctx: &Context<'_>, candidates: &[usize], out: &mut [f64]) {
        let total = ctx.prefix_hashes.len();
        let w = self.match_length_weight;
        for (slot, &i) in out.iter_mut().zip(candidates) {
            *slot = match ctx.endpoint(i) {
                Some(e) if total > 0 => {
                    let matched = e.prefix.matched_blocks(ctx.prefix_hashes) as f64;
                    let ratio = matched / total as f64;
                    if w > 0.0 {
                        let length = (matched * self.block_tokens / self.scale_tokens).min(1.0);
                        w * length * length + (1.0 - w) * ratio
                    } else {
                        ratio
                    }
                }
                _ => 0.0,
            };
        }
    }
}

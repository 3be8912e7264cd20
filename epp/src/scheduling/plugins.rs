//! Filters, scorers and pickers (epp.md §3), each named by its upstream type.
//!
//! Filters and scorers are traits with `&'static str` names; they read only
//! the [`Context`] and keep no state, so a pick is a pure function of the
//! snapshot and the request.

use std::fmt::Debug;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rand::RngExt;
use serde::Deserialize;

use crate::datastore::Endpoint;
use crate::error::{Error, Result};
use crate::scheduling::Context;
use crate::scheduling::config::parameters;

/// Narrows the candidates (indices into the snapshot's endpoints).
pub trait Filter: Debug + Send + Sync {
    /// The upstream plugin type.
    fn type_name(&self) -> &'static str;
    /// Removes the endpoints this filter rejects.
    fn filter(&self, ctx: &Context<'_>, candidates: &mut Vec<usize>);
}

/// Scores each candidate in [0, 1]; higher is better.
pub trait Scorer: Debug + Send + Sync {
    /// The upstream plugin type.
    fn type_name(&self) -> &'static str;
    /// Writes one score per candidate into `out` (same length and order).
    fn score(&self, ctx: &Context<'_>, candidates: &[usize], out: &mut [f64]);
}

/// Builds the filter of upstream type `type_`.
pub fn build_filter(name: &str, type_: &str, params: serde_json::Value) -> Result<Box<dyn Filter>> {
    match type_ {
        "utilization-detector" => {
            let p: UtilizationParameters = parameters(name, type_, params)?;
            let staleness = parse_duration(&p.metrics_staleness_threshold).ok_or_else(|| Error::PluginParameters {
                name: name.into(),
                type_: type_.into(),
                reason: format!(
                    "metricsStalenessThreshold `{}` is not a duration; write e.g. `200ms` or `2s`",
                    p.metrics_staleness_threshold
                ),
            })?;
            if p.queue_depth_threshold <= 0.0
                || p.kv_cache_util_threshold <= 0.0
                || p.headroom < 0.0
            {
                return Err(Error::PluginParameters {
                    name: name.into(),
                    type_: type_.into(),
                    reason:
                        "queueDepthThreshold and kvCacheUtilThreshold must be > 0 and headroom ≥ 0"
                            .into(),
                });
            }
            Ok(Box::new(UtilizationFilter {
                queue_threshold: p.queue_depth_threshold,
                kv_threshold: p.kv_cache_util_threshold,
                headroom: p.headroom,
                staleness,
            }))
        }
        "header-based-testing-filter" => Ok(Box::new(TestSelectionFilter)),
        _ => Err(Error::Config(format!("`{type_}` is not a filter"))),
    }
}

/// Builds the scorer of upstream type `type_` (not the prefix scorer, whose
/// parameters also drive hashing; see [`PrefixCacheScorer`]).
pub fn build_scorer(name: &str, type_: &str, params: serde_json::Value) -> Result<Box<dyn Scorer>> {
    Ok(match type_ {
        "queue-scorer" => Box::new(QueueScorer),
        "running-requests-size-scorer" => Box::new(RunningRequestsScorer),
        "kv-cache-utilization-scorer" => Box::new(KvCacheScorer),
        "lora-affinity-scorer" => Box::new(LoraAffinityScorer),
        "prefix-cache-scorer" => Box::new(PrefixCacheScorer),
        "token-load-scorer" => {
            let p: TokenLoadParameters = parameters(name, type_, params)?;
            if p.queue_threshold_tokens == 0 {
                return Err(Error::PluginParameters {
                    name: name.into(),
                    type_: type_.into(),
                    reason: "queueThresholdTokens must be at least 1".into(),
                });
            }
            Box::new(TokenLoadScorer {
                threshold: p.queue_threshold_tokens,
            })
        }
        _ => return Err(Error::Config(format!("`{type_}` is not a scorer"))),
    })
}

// === filters ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct UtilizationParameters {
    queue_depth_threshold: f64,
    kv_cache_util_threshold: f64,
    metrics_staleness_threshold: String,
    headroom: f64,
}

impl Default for UtilizationParameters {
    fn default() -> Self {
        Self {
            queue_depth_threshold: 5.0,
            kv_cache_util_threshold: 0.8,
            metrics_staleness_threshold: "200ms".into(),
            headroom: 0.0,
        }
    }
}

/// `utilization-detector` used as a filter: drops endpoints that are
/// saturated (queue or KV above threshold × (1 + headroom)) or stale, but
/// keeps everyone when it would drop everyone.
#[derive(Debug)]
pub struct UtilizationFilter {
    queue_threshold: f64,
    kv_threshold: f64,
    headroom: f64,
    staleness: Duration,
}

impl Filter for UtilizationFilter {
    fn type_name(&self) -> &'static str {
        "utilization-detector"
    }

    fn filter(&self, ctx: &Context<'_>, candidates: &mut Vec<usize>) {
        let limit = 1.0 + self.headroom;
        let fits = |e: &Endpoint| {
            !e.is_stale(ctx.request.now, self.staleness)
                && f64::from(e.metrics.waiting_queue) / self.queue_threshold <= limit
                && e.metrics.kv_cache_usage / self.kv_threshold <= limit
        };
        if candidates
            .iter()
            .any(|&i| ctx.endpoint(i).is_some_and(fits))
        {
            candidates.retain(|&i| ctx.endpoint(i).is_some_and(fits));
        }
    }
}

/// `header-based-testing-filter`: keeps only the endpoints named (`ip` or
/// `ip:port`, comma-separated) by the conformance header
/// `test-epp-endpoint-selection`; without the header, keeps all.
#[derive(Debug)]
pub struct TestSelectionFilter;

impl Filter for TestSelectionFilter {
    fn type_name(&self) -> &'static str {
        "header-based-testing-filter"
    }

    fn filter(&self, ctx: &Context<'_>, candidates: &mut Vec<usize>) {
        let Some(selection) = ctx.request.test_endpoint_selection else {
            return;
        };
        candidates.retain(|&i| {
            ctx.endpoint(i).is_some_and(|e| {
                selection
                    .split(',')
                    .any(|entry| address_matches(entry, e.address))
            })
        });
    }
}

/// Whether a hint entry (`ip:port`, `[v6]:port`, `ip` or `v6`) names `address`.
pub fn address_matches(entry: &str, address: SocketAddr) -> bool {
    let entry = entry.trim();
    if let Ok(exact) = entry.parse::<SocketAddr>() {
        return exact == address;
    }
    let bare = entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .unwrap_or(entry);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip == address.ip())
}

/// Parses a Go duration (`200ms`, `2s`, `1m30s`), as upstream reads
/// `metricsStalenessThreshold` and as the flow-control detector reads the same field.
fn parse_duration(text: &str) -> Option<Duration> {
    switchyard_runtime::duration::parse(text.trim()).ok()
}

// === scorers ===

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

/// `prefix-cache-scorer`: the share of the prompt's blocks the server holds,
/// counted from the first block (matches are computed once per pick).
#[derive(Debug)]
pub struct PrefixCacheScorer;

impl Scorer for PrefixCacheScorer {
    fn type_name(&self) -> &'static str {
        "prefix-cache-scorer"
    }

    fn score(&self, ctx: &Context<'_>, candidates: &[usize], out: &mut [f64]) {
        let total = ctx.prefix_hashes.len();
        for (slot, &i) in out.iter_mut().zip(candidates) {
            *slot = match ctx.endpoint(i) {
                Some(e) if total > 0 => {
                    e.prefix.matched_blocks(ctx.prefix_hashes) as f64 / total as f64
                }
                _ => 0.0,
            };
        }
    }
}

// === pickers ===

/// How the picker orders candidates by score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PickerKind {
    /// `max-score-picker`: highest total first, ties in random order.
    #[default]
    MaxScore,
    /// `random-picker`: uniform, ignoring scores.
    Random,
    /// `weighted-random-picker`: A-Res sampling by score (uniform if all 0).
    WeightedRandom,
}

/// A picker and how many endpoints it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Picker {
    /// The ordering.
    pub kind: PickerKind,
    /// `maxNumOfEndpoints`: the length of the fallback list.
    pub max_endpoints: usize,
}

impl Default for Picker {
    fn default() -> Self {
        Self {
            kind: PickerKind::MaxScore,
            max_endpoints: 1,
        }
    }
}

impl PickerKind {
    /// The kind for an upstream picker type.
    pub fn from_type(type_: &str) -> Option<Self> {
        match type_ {
            "max-score-picker" => Some(Self::MaxScore),
            "random-picker" => Some(Self::Random),
            "weighted-random-picker" => Some(Self::WeightedRandom),
            _ => None,
        }
    }
}

impl Picker {
    /// Puts the best `count` positions (into `scores`) first in `order`,
    /// best first. Every kind draws a random key per candidate, so equal
    /// scores are broken at random. Only the top `count` are sorted: a
    /// selection pass is O(n), which matters with 1,000 endpoints.
    pub fn order(&self, scores: &[f64], keys: &mut [f64], order: &mut [usize], count: usize) {
        let mut rng = rand::rng();
        let all_zero = scores.iter().all(|s| *s <= 0.0);
        for (key, &score) in keys.iter_mut().zip(scores) {
            let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
            *key = match self.kind {
                // Score first; `u` (below any score step that matters, since
                // scores are sums of weighted [0, 1] terms) orders ties only.
                PickerKind::MaxScore => score + u * TIE_BREAK_SCALE,
                PickerKind::Random => u,
                PickerKind::WeightedRandom if all_zero => u,
                // A-Res: key = u^(1/w); larger keys win. Zero weight sorts last.
                PickerKind::WeightedRandom if score > 0.0 => u.powf(1.0 / score),
                PickerKind::WeightedRandom => -1.0 + u * f64::EPSILON,
            };
        }
        let best_first = |a: &usize, b: &usize| keys[*b].total_cmp(&keys[*a]);
        let count = count.min(order.len());
        if count == 0 {
            return;
        }
        if count < order.len() {
            order.select_nth_unstable_by(count - 1, best_first);
        }
        order[..count].sort_unstable_by(best_first);
    }
}

/// The random tie-break added to max-score keys: far below the smallest
/// score difference that should decide a pick (scores are weighted sums of
/// values in [0, 1]; 1e-9 is a billionth of a full scorer step), so it only
/// orders (near-)equal totals.
const TIE_BREAK_SCALE: f64 = 1e-9;

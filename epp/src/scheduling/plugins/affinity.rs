//! `prefix-cache-affinity-filter` ("sticky until saturated", llm-d-router): keeps only the
//! endpoints already holding most of the prompt's prefix, unless their estimated
//! time-to-first-token is worse than the best other endpoint's by more than a penalty.
//! Switchyard adds one bound (`maxWaitingQueue`): a server whose scraped waiting queue is
//! longer is never sticky, whatever its prefix.

use rand::RngExt;
use serde::Deserialize;

use super::{Filter, parameters};
use crate::error::{Error, Result};
use crate::scheduling::Context;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct AffinityParameters {
    affinity_threshold: f64,
    exploration_probability: f64,
    #[serde(rename = "maxTTFTPenaltyMs")]
    max_ttft_penalty_ms: f64,
    ttft_source: String,
    peak_prefill_throughput: f64,
    /// Switchyard's addition: an endpoint whose scraped waiting queue is longer than this is
    /// never sticky, whatever this EPP's own in-flight count says (traffic from other EPPs or
    /// from before a restart is invisible to it). 0 turns the bound off.
    max_waiting_queue: u32,
    /// Which producer's matches to read: this EPP has one prefix index.
    prefix_match_info_producer_name: Option<String>,
    /// Which in-flight producer to read: this EPP has one.
    in_flight_load_producer_name: Option<String>,
    prefill_calibration_file: Option<String>,
    prefill_calibration_fingerprint: Option<String>,
    prefill_calibration_required: Option<bool>,
}

impl Default for AffinityParameters {
    fn default() -> Self {
        Self {
            affinity_threshold: 0.80,
            exploration_probability: 0.0,
            max_ttft_penalty_ms: 18_000.0,
            ttft_source: "prefillThroughput".into(),
            peak_prefill_throughput: 15_928.0,
            max_waiting_queue: DEFAULT_MAX_WAITING_QUEUE,
            prefix_match_info_producer_name: None,
            in_flight_load_producer_name: None,
            prefill_calibration_file: None,
            prefill_calibration_fingerprint: None,
            prefill_calibration_required: None,
        }
    }
}

/// The default `maxWaitingQueue`: a server with more than this many requests waiting is
/// saturated whatever its prefix (review finding M13: a full prefix match must not beat a
/// saturated queue).
const DEFAULT_MAX_WAITING_QUEUE: u32 = 16;

/// Keeps the "sticky" endpoints (prefix match ratio ≥ `affinityThreshold`) when there
/// are any, the gate is not skipped for exploration, and the best sticky endpoint's TTFT
/// estimate (in-flight tokens ÷ `peakPrefillThroughput`) is within `maxTTFTPenaltyMs` of
/// the best non-sticky one's; otherwise keeps everyone.
#[derive(Debug)]
pub struct PrefixCacheAffinityFilter {
    threshold: f64,
    exploration: f64,
    max_penalty_ms: f64,
    peak_tokens_per_second: f64,
    max_waiting: u32,
}

impl PrefixCacheAffinityFilter {
    /// A filter with upstream's parameters (`max_penalty_ms` 0 = always stick) and
    /// Switchyard's waiting-queue bound (`max_waiting` 0 = no bound).
    pub fn new(
        threshold: f64,
        exploration: f64,
        max_penalty_ms: f64,
        peak_tokens_per_second: f64,
        max_waiting: u32,
    ) -> Self {
        Self {
            threshold,
            exploration,
            max_penalty_ms,
            peak_tokens_per_second,
            max_waiting,
        }
    }
}

impl Default for PrefixCacheAffinityFilter {
    /// Upstream's defaults (affinity 0.8, no exploration, an 18 s TTFT penalty at 15,928
    /// prefill tokens per second) with the default waiting-queue bound.
    fn default() -> Self {
        let p = AffinityParameters::default();
        Self::new(
            p.affinity_threshold,
            p.exploration_probability,
            p.max_ttft_penalty_ms,
            p.peak_prefill_throughput,
            p.max_waiting_queue,
        )
    }
}

pub(super) fn prefix_cache_affinity(
    name: &str,
    type_: &str,
    params: serde_json::Value,
) -> Result<Box<dyn Filter>> {
    let p: AffinityParameters = parameters(name, type_, params)?;
    let bad = |reason: &str| Error::PluginParameters {
        name: name.into(),
        type_: type_.into(),
        reason: reason.into(),
    };
    if !(0.0..=1.0).contains(&p.affinity_threshold) {
        return Err(bad("affinityThreshold must be within 0 and 1"));
    }
    if !(0.0..=1.0).contains(&p.exploration_probability) {
        return Err(bad("explorationProbability must be within 0 and 1"));
    }
    if !(p.max_ttft_penalty_ms >= 0.0 && p.max_ttft_penalty_ms.is_finite()) {
        return Err(bad("maxTTFTPenaltyMs must be a finite number ≥ 0"));
    }
    if !(p.peak_prefill_throughput > 0.0 && p.peak_prefill_throughput.is_finite()) {
        return Err(bad("peakPrefillThroughput must be a finite number > 0"));
    }
    match p.ttft_source.as_str() {
        "prefillThroughput" => {}
        "latencyPredictor" => {
            return Err(bad(
                "ttftSource latencyPredictor needs the latency predictor, which Switchyard \
                 does not run; use prefillThroughput",
            ));
        }
        _ => return Err(bad("ttftSource must be prefillThroughput")),
    }
    if p.prefill_calibration_file.is_some()
        || p.prefill_calibration_fingerprint.is_some()
        || p.prefill_calibration_required.is_some()
    {
        return Err(bad(
            "prefillCalibrationFile, prefillCalibrationFingerprint and \
             prefillCalibrationRequired: calibration records are not read; set \
             peakPrefillThroughput to the measured tokens per second instead",
        ));
    }
    let _ = (
        p.prefix_match_info_producer_name,
        p.in_flight_load_producer_name,
    );
    Ok(Box::new(PrefixCacheAffinityFilter::new(
        p.affinity_threshold,
        p.exploration_probability,
        p.max_ttft_penalty_ms,
        p.peak_prefill_throughput,
        p.max_waiting_queue,
    )))
}

impl Filter for PrefixCacheAffinityFilter {
    fn type_name(&self) -> &'static str {
        "prefix-cache-affinity-filter"
    }

    fn filter(&self, ctx: &Context<'_>, candidates: &mut Vec<usize>) {
        let total = ctx.prefix_hashes.len();
        if total == 0 {
            return;
        }
        if self.exploration > 0.0 && rand::rng().random_range(0.0..1.0) < self.exploration {
            return;
        }
        let sticky = |i: usize| {
            ctx.endpoint(i).is_some_and(|e| {
                (self.max_waiting == 0 || e.metrics.waiting_queue <= self.max_waiting)
                    && e.prefix.matched_blocks(ctx.prefix_hashes) as f64 / total as f64
                        >= self.threshold
            })
        };
        let ttft_ms = |i: usize| {
            ctx.endpoint(i).map_or(f64::INFINITY, |e| {
                e.load.in_flight_tokens() as f64 / self.peak_tokens_per_second * 1000.0
            })
        };
        let (mut best_sticky, mut best_other) = (f64::INFINITY, f64::INFINITY);
        for &i in candidates.iter() {
            let best = if sticky(i) {
                &mut best_sticky
            } else {
                &mut best_other
            };
            *best = best.min(ttft_ms(i));
        }
        if best_sticky.is_infinite() {
            // Nobody holds the prefix: leave the choice to the scorers.
            return;
        }
        let overloaded = self.max_penalty_ms > 0.0
            && best_other.is_finite()
            && best_sticky - best_other > self.max_penalty_ms;
        if !overloaded {
            candidates.retain(|&i| sticky(i));
        }
    }
}

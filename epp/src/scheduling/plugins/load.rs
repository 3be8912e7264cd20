//! Load scorers of llm-d-router: `load-aware-scorer` (scraped queue against a threshold),
//! `active-request-scorer` (this EPP's in-flight requests, with an idle preference) and
//! `context-length-aware` (the prompt's length against each pod's
//! `llm-d.ai/context-length-range`, optionally also a filter).

use serde::Deserialize;

use super::{Filter, Scorer, parameters};
use crate::error::{Error, Result};
use crate::prefix::CHARS_PER_TOKEN;
use crate::scheduling::Context;

fn invalid(name: &str, type_: &str, reason: impl Into<String>) -> Error {
    Error::PluginParameters {
        name: name.into(),
        type_: type_.into(),
        reason: reason.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct LoadAwareParameters {
    threshold: u64,
}

impl Default for LoadAwareParameters {
    fn default() -> Self {
        Self { threshold: 128 }
    }
}

/// `load-aware-scorer`: 0.5 for an empty queue, falling linearly to 0 as the scraped
/// queue (plus requests sent since the scrape) reaches `threshold`.
#[derive(Debug)]
pub struct LoadAwareScorer {
    threshold: u64,
}

impl LoadAwareScorer {
    /// A scorer reaching 0 at `threshold` queued requests (at least 1).
    pub fn new(threshold: u64) -> Self {
        Self {
            threshold: threshold.max(1),
        }
    }
}

pub(super) fn load_aware(
    name: &str,
    type_: &str,
    params: serde_json::Value,
) -> Result<Box<dyn Scorer>> {
    let p: LoadAwareParameters = parameters(name, type_, params)?;
    if p.threshold == 0 {
        return Err(invalid(name, type_, "threshold must be at least 1"));
    }
    Ok(Box::new(LoadAwareScorer::new(p.threshold)))
}

impl Scorer for LoadAwareScorer {
    fn type_name(&self) -> &'static str {
        "load-aware-scorer"
    }

    fn score(&self, ctx: &Context<'_>, candidates: &[usize], out: &mut [f64]) {
        for (slot, &i) in out.iter_mut().zip(candidates) {
            *slot = ctx.endpoint(i).map_or(0.0, |e| {
                let queued = u64::from(e.metrics.waiting_queue) + u64::from(e.load.unseen());
                let used = (queued as f64 / self.threshold as f64).min(1.0);
                0.5 * (1.0 - used)
            });
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct ActiveRequestParameters {
    idle_threshold: u32,
    max_busy_score: f64,
    /// Deprecated upstream and ignored there too; accepted so old files load.
    request_timeout: Option<String>,
    /// Which in-flight producer to read: this EPP has exactly one.
    in_flight_load_producer_name: Option<String>,
}

impl Default for ActiveRequestParameters {
    fn default() -> Self {
        Self {
            idle_threshold: 0,
            max_busy_score: 1.0,
            request_timeout: None,
            in_flight_load_producer_name: None,
        }
    }
}

/// `active-request-scorer`: endpoints with at most `idleThreshold` requests in flight
/// (sent by this EPP and not finished) score 1; busier ones score
/// (max − count)/max × `maxBusyScore`, so the busiest scores 0.
#[derive(Debug)]
pub struct ActiveRequestScorer {
    idle_threshold: u32,
    max_busy_score: f64,
}

impl ActiveRequestScorer {
    /// A scorer with upstream's parameters.
    pub fn new(idle_threshold: u32, max_busy_score: f64) -> Self {
        Self {
            idle_threshold,
            max_busy_score: max_busy_score.clamp(0.0, 1.0),
        }
    }
}

pub(super) fn active_request(
    name: &str,
    type_: &str,
    params: serde_json::Value,
) -> Result<Box<dyn Scorer>> {
    let p: ActiveRequestParameters = parameters(name, type_, params)?;
    if !(0.0..=1.0).contains(&p.max_busy_score) {
        return Err(invalid(
            name,
            type_,
            format!("maxBusyScore {} must be within 0 and 1", p.max_busy_score),
        ));
    }
    let _ = (p.request_timeout, p.in_flight_load_producer_name);
    Ok(Box::new(ActiveRequestScorer::new(
        p.idle_threshold,
        p.max_busy_score,
    )))
}

impl Scorer for ActiveRequestScorer {
    fn type_name(&self) -> &'static str {
        "active-request-scorer"
    }

    fn score(&self, ctx: &Context<'_>, candidates: &[usize], out: &mut [f64]) {
        let count = |i: usize| ctx.endpoint(i).map_or(0, |e| e.load.in_flight());
        let max = candidates.iter().map(|&i| count(i)).max().unwrap_or(0);
        for (slot, &i) in out.iter_mut().zip(candidates) {
            let n = count(i);
            *slot = if n <= self.idle_threshold || max == 0 {
                1.0
            } else {
                f64::from(max - n) / f64::from(max) * self.max_busy_score
            };
        }
    }
}

/// The range width (tokens) at which an in-range pod scores half-way between 0.3 and 1.
const RANGE_SCALE: f64 = 2048.0;

/// Upstream's pod label carrying a `min-max` token range.
pub const CONTEXT_LENGTH_LABEL: &str = "llm-d.ai/context-length-range";

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct ContextLengthParameters {
    label: String,
    enable_filtering: bool,
    reusable_tokens_producer_name: Option<String>,
}

impl Default for ContextLengthParameters {
    fn default() -> Self {
        Self {
            label: CONTEXT_LENGTH_LABEL.into(),
            enable_filtering: false,
            reusable_tokens_producer_name: None,
        }
    }
}

/// `context-length-aware`: scores pods by how well their `min-max` label fits the
/// prompt's estimated token count — in range above 0.3 (tighter ranges higher), out of
/// range below 0.3 (nearer ranges higher), unlabelled 0.5; with `enableFiltering` it also
/// drops pods whose (valid) range misses the prompt.
#[derive(Debug, Clone)]
pub struct ContextLengthScorer {
    label: String,
    filtering: bool,
}

impl ContextLengthScorer {
    /// A scorer reading `label`, also filtering when `filtering`.
    pub fn new(label: &str, filtering: bool) -> Self {
        Self {
            label: label.to_owned(),
            filtering,
        }
    }

    /// The pod's range, when its label holds a valid `min-max`.
    fn range(&self, ctx: &Context<'_>, i: usize) -> Option<(u64, u64)> {
        let text = ctx.endpoint(i)?.labels.get(&self.label)?;
        let (lo, hi) = text.split_once('-')?;
        let (lo, hi) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
        (lo <= hi).then_some((lo, hi))
    }

    /// The score of a pod with range `range` for a prompt of `tokens` tokens.
    pub fn fit(range: Option<(u64, u64)>, tokens: u64) -> f64 {
        let Some((lo, hi)) = range else {
            return 0.5;
        };
        if (lo..=hi).contains(&tokens) {
            // Narrower ranges are specialists: 1 for a one-token range, approaching (never
            // reaching) 0.3 for very wide ones; a 2048-token-wide range sits half-way.
            let width = (hi - lo) as f64;
            0.3 + 0.7 * RANGE_SCALE / (RANGE_SCALE + width)
        } else {
            // Out of range: the closer the edge, the nearer to 0.3 (never reaching it).
            let distance = if tokens < lo {
                lo - tokens
            } else {
                tokens - hi
            } as f64;
            0.3 * (1.0 / (1.0 + distance / (tokens.max(1) as f64))) * (1.0 - f64::EPSILON)
        }
    }
}

pub(super) fn context_length(
    name: &str,
    type_: &str,
    params: serde_json::Value,
) -> Result<Box<dyn Scorer>> {
    let p: ContextLengthParameters = parameters(name, type_, params)?;
    if p.label.trim().is_empty() {
        return Err(invalid(name, type_, "label must name a pod label"));
    }
    if p.reusable_tokens_producer_name.is_some() {
        return Err(invalid(
            name,
            type_,
            "reusableTokensProducerName needs p2p-source-producer, which comes with the P/D \
             work; remove it",
        ));
    }
    Ok(Box::new(ContextLengthScorer::new(
        &p.label,
        p.enable_filtering,
    )))
}

fn prompt_tokens(ctx: &Context<'_>) -> u64 {
    (ctx.request.prompt.len() / CHARS_PER_TOKEN) as u64
}

impl Scorer for ContextLengthScorer {
    fn type_name(&self) -> &'static str {
        "context-length-aware"
    }

    fn score(&self, ctx: &Context<'_>, candidates: &[usize], out: &mut [f64]) {
        let tokens = prompt_tokens(ctx);
        for (slot, &i) in out.iter_mut().zip(candidates) {
            *slot = Self::fit(self.range(ctx, i), tokens);
        }
    }

    fn companion_filter(&self) -> Option<Box<dyn Filter>> {
        self.filtering
            .then(|| Box::new(ContextLengthFilter(self.clone())) as Box<dyn Filter>)
    }
}

/// `context-length-aware` with `enableFiltering`: drops pods whose range misses the
/// prompt; unlabelled pods are general-purpose and stay.
#[derive(Debug)]
struct ContextLengthFilter(ContextLengthScorer);

impl Filter for ContextLengthFilter {
    fn type_name(&self) -> &'static str {
        "context-length-aware"
    }

    fn filter(&self, ctx: &Context<'_>, candidates: &mut Vec<usize>) {
        let tokens = prompt_tokens(ctx);
        candidates.retain(|&i| {
            self.0
                .range(ctx, i)
                .is_none_or(|(lo, hi)| (lo..=hi).contains(&tokens))
        });
    }
}

//! One EPP `/metrics` page reduced to the totals the analysis needs (pure).
//!
//! A fold over the workspace's lenient Prometheus parser
//! (`switchyard_runtime::promtext`): only the families of the EPP's metric
//! contract (`switchyard_api::protocol::epp_metrics`) that [`is_read`] names
//! are kept. Series are summed over their model labels, or kept to one
//! `target_model_name` when the arm is a model (ModelSplit). A line of those
//! families that cannot be read is counted, never fatal: one odd line must not
//! blind a rollout to the rest of the page.

use switchyard_api::protocol::epp_metrics::{
    self as names, BUCKET_BOUND_LABEL, ERROR_CODE_LABEL, ERROR_CODES, POOL_NAME_LABEL,
    RESPONSE_CLASSES, STATUS_CLASS_LABEL, TARGET_MODEL_NAME_LABEL,
};
use switchyard_runtime::promtext::{Line, Lines, Sample};

/// A cumulative histogram: `(upper bound, observations ≤ bound)` by
/// increasing bound (`+Inf` last), plus its count.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Cumulative bucket counts by increasing upper bound.
    pub buckets: Vec<(f64, f64)>,
    /// Observations.
    pub count: f64,
}

impl Histogram {
    fn add_bucket(&mut self, le: f64, value: f64) {
        match self
            .buckets
            .binary_search_by(|(bound, _)| bound.total_cmp(&le))
        {
            Ok(at) => {
                if let Some(bucket) = self.buckets.get_mut(at) {
                    bucket.1 += value;
                }
            }
            Err(at) => self.buckets.insert(at, (le, value)),
        }
    }
}

/// What one EPP page says about one arm, as counters since the EPP started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    /// Requests scheduled to a model server.
    pub requests: f64,
    /// Requests the EPP answered itself, by [`ERROR_CODES`].
    pub epp_errors: [f64; 4],
    /// Model server responses, by [`RESPONSE_CLASSES`].
    pub responses: [f64; 5],
    /// Time to first token of streamed responses.
    pub ttft: Histogram,
    /// Time per output token of streamed responses.
    pub tpot: Histogram,
    /// Output tokens reported by responses.
    pub output_tokens: f64,
    /// Ready endpoints of the pool (a gauge, not a counter).
    pub ready_pods: Option<f64>,
    /// Lines of the families above that could not be read.
    pub malformed_lines: usize,
}

/// Which series of a page belong to the arm.
#[derive(Clone, Copy, Debug, Default)]
pub struct ArmFilter<'a> {
    /// The pool's name, for `inference_pool_ready_pods{name}`; any pool when
    /// `None`.
    pub pool: Option<&'a str>,
    /// Only this `target_model_name` (ModelSplit); every model when `None`.
    pub target_model: Option<&'a str>,
}

/// Reads the totals of the arm `filter` selects off `page`.
pub fn totals(page: &str, filter: ArmFilter<'_>) -> Totals {
    Lines::lenient(page).fold(Totals::default(), |mut totals, line| {
        match line {
            Line::Sample(sample) if is_read(sample.name) => totals.add(&sample, filter),
            Line::Malformed(bad) if is_read(bad.name) => totals.malformed_lines += 1,
            Line::Sample(_) | Line::Malformed(_) | Line::Type { .. } => {}
        }
        totals
    })
}

// === impl Totals ===

impl Totals {
    /// Adds one sample of a family [`is_read`] names.
    fn add(&mut self, sample: &Sample<'_>, filter: ArmFilter<'_>) {
        let name = sample.name;
        let value = sample.value;
        if name == names::POOL_READY_PODS {
            if filter
                .pool
                .is_none_or(|pool| sample.label(POOL_NAME_LABEL).as_deref() == Some(pool))
            {
                *self.ready_pods.get_or_insert(0.0) += value;
            }
            return;
        }
        if let Some(model) = filter.target_model
            && sample.label(TARGET_MODEL_NAME_LABEL).as_deref() != Some(model)
        {
            return;
        }
        match name {
            names::REQUEST_TOTAL => self.requests += value,
            names::OUTPUT_TOKENS_SUM => self.output_tokens += value,
            names::REQUEST_ERROR_TOTAL => add_by(
                &mut self.epp_errors,
                &ERROR_CODES,
                sample.label(ERROR_CODE_LABEL).as_deref(),
                value,
            ),
            names::MODEL_SERVER_RESPONSES_TOTAL => add_by(
                &mut self.responses,
                &RESPONSE_CLASSES,
                sample.label(STATUS_CLASS_LABEL).as_deref(),
                value,
            ),
            _ => {
                let (histogram, suffix) = match name.strip_prefix(names::REQUEST_TTFT_SECONDS) {
                    Some(suffix) => (&mut self.ttft, suffix),
                    None => (
                        &mut self.tpot,
                        name.strip_prefix(names::REQUEST_TPOT_SECONDS)
                            .unwrap_or_default(),
                    ),
                };
                match suffix {
                    "_count" => histogram.count += value,
                    "_bucket" => match sample
                        .label(BUCKET_BOUND_LABEL)
                        .and_then(|le| le.parse::<f64>().ok())
                    {
                        Some(le) => histogram.add_bucket(le, value),
                        None => self.malformed_lines += 1,
                    },
                    _ => {}
                }
            }
        }
    }
}

/// The series the analysis reads: the EPP's request, error, response and
/// token counters, the pool's ready pods, and the TTFT/TPOT histograms'
/// buckets and counts.
fn is_read(name: &str) -> bool {
    matches!(
        name,
        names::REQUEST_TOTAL
            | names::REQUEST_ERROR_TOTAL
            | names::MODEL_SERVER_RESPONSES_TOTAL
            | names::OUTPUT_TOKENS_SUM
            | names::POOL_READY_PODS
    ) || [names::REQUEST_TTFT_SECONDS, names::REQUEST_TPOT_SECONDS]
        .iter()
        .any(|family| {
            name.strip_prefix(family)
                .is_some_and(|suffix| suffix == "_bucket" || suffix == "_count")
        })
}

fn add_by<const N: usize>(slots: &mut [f64; N], names: &[&str; N], key: Option<&str>, value: f64) {
    if let Some(at) = key.and_then(|key| names.iter().position(|n| *n == key))
        && let Some(slot) = slots.get_mut(at)
    {
        *slot += value;
    }
}

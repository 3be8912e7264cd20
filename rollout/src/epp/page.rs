//! One EPP `/metrics` page reduced to the totals the analysis needs (pure).
//!
//! Only the families below are read; every other line is skipped without
//! being parsed further. Series are summed over their model labels, or kept
//! to one `target_model_name` when the arm is a model (ModelSplit). A line
//! that cannot be read is counted, never fatal: one odd line must not blind
//! a rollout to the rest of the page.

/// `inference_objective_request_total`: requests the EPP scheduled.
pub const REQUESTS: &str = "inference_objective_request_total";
/// `inference_objective_request_error_total{error_code}`: requests the EPP
/// answered itself.
pub const EPP_ERRORS: &str = "inference_objective_request_error_total";
/// `switchyard_epp_model_server_responses_total{status_class}`.
pub const RESPONSES: &str = "switchyard_epp_model_server_responses_total";
/// `inference_objective_request_ttft_seconds` (histogram).
pub const TTFT: &str = "inference_objective_request_ttft_seconds";
/// `inference_objective_request_tpot_seconds` (histogram).
pub const TPOT: &str = "inference_objective_request_tpot_seconds";
/// `inference_objective_output_tokens` (histogram; its `_sum` is the tokens).
pub const OUTPUT_TOKENS_SUM: &str = "inference_objective_output_tokens_sum";
/// `inference_pool_ready_pods{name}`.
pub const READY_PODS: &str = "inference_pool_ready_pods";

/// The EPP's own error codes, in the order of [`Totals::epp_errors`].
pub const EPP_ERROR_CODES: [&str; 4] = [
    "BadRequest",
    "ResourceExhausted",
    "ServiceUnavailable",
    "Internal",
];

/// The model servers' status classes, in the order of [`Totals::responses`].
pub const STATUS_CLASSES: [&str; 5] = ["2xx", "3xx", "4xx", "429", "5xx"];

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
    /// Requests the EPP answered itself, by [`EPP_ERROR_CODES`].
    pub epp_errors: [f64; 4],
    /// Model server responses, by [`STATUS_CLASSES`].
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
    let mut totals = Totals::default();
    for line in page.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        if !is_read(name) {
            continue;
        }
        let Some((labels, value)) = split_sample(&line[name_end..]) else {
            totals.malformed_lines += 1;
            continue;
        };
        if name == READY_PODS {
            if filter
                .pool
                .is_none_or(|pool| label(labels, "name") == Some(pool))
            {
                *totals.ready_pods.get_or_insert(0.0) += value;
            }
            continue;
        }
        if let Some(model) = filter.target_model
            && label(labels, "target_model_name") != Some(model)
        {
            continue;
        }
        match name {
            REQUESTS => totals.requests += value,
            OUTPUT_TOKENS_SUM => totals.output_tokens += value,
            EPP_ERRORS => add_by(
                &mut totals.epp_errors,
                &EPP_ERROR_CODES,
                label(labels, "error_code"),
                value,
            ),
            RESPONSES => add_by(
                &mut totals.responses,
                &STATUS_CLASSES,
                label(labels, "status_class"),
                value,
            ),
            _ => {
                let (histogram, suffix) = match name.strip_prefix(TTFT) {
                    Some(suffix) => (&mut totals.ttft, suffix),
                    None => (
                        &mut totals.tpot,
                        name.strip_prefix(TPOT).unwrap_or_default(),
                    ),
                };
                match suffix {
                    "_count" => histogram.count += value,
                    "_bucket" => match label(labels, "le").and_then(parse_value) {
                        Some(le) => histogram.add_bucket(le, value),
                        None => totals.malformed_lines += 1,
                    },
                    _ => {}
                }
            }
        }
    }
    totals
}

fn is_read(name: &str) -> bool {
    matches!(
        name,
        REQUESTS | EPP_ERRORS | RESPONSES | OUTPUT_TOKENS_SUM | READY_PODS
    ) || [TTFT, TPOT].iter().any(|family| {
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

/// `{labels} value [timestamp]` → (the text between the braces, value).
fn split_sample(rest: &str) -> Option<(&str, f64)> {
    let (labels, rest) = match rest.strip_prefix('{') {
        Some(inner) => {
            let close = closing_brace(inner)?;
            (&inner[..close], &inner[close + 1..])
        }
        None => ("", rest),
    };
    let value = rest.split_whitespace().next()?;
    Some((labels, parse_value(value)?))
}

/// The index of the `}` closing a label set, skipping quoted values.
fn closing_brace(inner: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (at, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(at),
            _ => {}
        }
    }
    None
}

/// The raw value of label `key` (escapes left as they are: the values read
/// here are codes, classes, bounds and names that need none).
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let mut rest = labels;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if rest.is_empty() {
            return None;
        }
        let eq = rest.find('=')?;
        let name = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start().strip_prefix('"')?;
        let mut escaped = false;
        let end = after.char_indices().find_map(|(at, c)| match c {
            _ if escaped => {
                escaped = false;
                None
            }
            '\\' => {
                escaped = true;
                None
            }
            '"' => Some(at),
            _ => None,
        })?;
        if name == key {
            return Some(&after[..end]);
        }
        rest = &after[end + 1..];
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

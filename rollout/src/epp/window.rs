//! One analysis window from two scrapes of each arm's EPP (pure): the
//! counters' increase between them, and each metric type computed from it.

use switchyard_api::rollout::{MetricCheck, MetricType, StatusClass};

use super::page::{Histogram, Totals};
use crate::judge::Measurement;

/// Slots of [`Totals::epp_errors`].
const BAD_REQUEST: usize = 0;
const RESOURCE_EXHAUSTED: usize = 1;
const SERVICE_UNAVAILABLE: usize = 2;
const INTERNAL: usize = 3;
/// Slots of [`Totals::responses`].
const CLIENT_ERROR: usize = 2;
const TOO_MANY_REQUESTS: usize = 3;
const SERVER_ERROR: usize = 4;

/// One arm over one window: what happened between two scrapes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArmWindow {
    /// The counters' increase.
    pub delta: Totals,
    /// Seconds between the two scrapes.
    pub seconds: f64,
    /// Ready endpoints at the later scrape.
    pub ready_pods: Option<f64>,
}

/// The window between scrapes `earlier` and `later`, `seconds` apart. A
/// counter lower in `later` means the EPP restarted in between: its later
/// value is all the window saw, as with PromQL's `increase()`.
pub fn window(earlier: &Totals, later: &Totals, seconds: f64) -> ArmWindow {
    let increase = |before: f64, after: f64| {
        if after < before {
            after
        } else {
            after - before
        }
    };
    let each = |before: &[f64], after: &[f64], out: &mut [f64]| {
        for ((slot, b), a) in out.iter_mut().zip(before).zip(after) {
            *slot = increase(*b, *a);
        }
    };
    let mut delta = Totals {
        requests: increase(earlier.requests, later.requests),
        output_tokens: increase(earlier.output_tokens, later.output_tokens),
        ttft: histogram_increase(&earlier.ttft, &later.ttft),
        tpot: histogram_increase(&earlier.tpot, &later.tpot),
        ready_pods: later.ready_pods,
        malformed_lines: later.malformed_lines,
        ..Totals::default()
    };
    each(
        &earlier.epp_errors,
        &later.epp_errors,
        &mut delta.epp_errors,
    );
    each(&earlier.responses, &later.responses, &mut delta.responses);
    ArmWindow {
        delta,
        seconds,
        ready_pods: later.ready_pods,
    }
}

fn histogram_increase(earlier: &Histogram, later: &Histogram) -> Histogram {
    if later.count < earlier.count {
        return later.clone();
    }
    let before = |le: f64| {
        earlier
            .buckets
            .iter()
            .find(|(bound, _)| *bound == le)
            .map_or(0.0, |(_, n)| *n)
    };
    Histogram {
        buckets: later
            .buckets
            .iter()
            .map(|&(le, n)| (le, (n - before(le)).max(0.0)))
            .collect(),
        count: later.count - earlier.count,
    }
}

/// The `q` quantile of a cumulative histogram, interpolated linearly inside
/// its bucket as PromQL's `histogram_quantile` does; the highest finite
/// bound when it falls in the `+Inf` bucket. `None` without observations.
pub fn quantile(histogram: &Histogram, q: f64) -> Option<f64> {
    let total = histogram.buckets.last().map_or(0.0, |(_, n)| *n);
    if total <= 0.0 || !q.is_finite() {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total;
    let mut lower = (0.0, 0.0);
    for &(le, count) in &histogram.buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let in_bucket = count - lower.1;
            if in_bucket <= 0.0 {
                return Some(le);
            }
            return Some(lower.0 + (le - lower.0) * (rank - lower.1) / in_bucket);
        }
        lower = (le, count);
    }
    Some(lower.0)
}

impl ArmWindow {
    /// Every request the arm's EPP saw: scheduled or answered by itself.
    pub fn attempts(&self) -> f64 {
        self.delta.requests + self.delta.epp_errors.iter().sum::<f64>()
    }

    fn rate(&self, numerator: f64) -> Option<f64> {
        let attempts = self.attempts();
        (attempts > 0.0).then(|| numerator / attempts)
    }

    /// The metric's value over this window and the number of requests it
    /// stands on. `Err` when the EPP source cannot measure it at all.
    pub fn value(&self, check: &MetricCheck) -> Result<(Option<f64>, f64), String> {
        let d = &self.delta;
        Ok(match check.type_ {
            MetricType::ErrorRate => {
                if let Some(code) = check.exclude_codes.iter().find(|c| **c != 429) {
                    return Err(format!(
                        "the EPP source counts status classes, so excludeCodes {code} cannot be applied; \
                         use the Prometheus source with a query, or drop the code"
                    ));
                }
                let classes = &check.status_classes;
                // 4xx only when asked for: a client can send requests a model
                // server rejects at will, so counting them by default would let
                // clients force a rollback.
                let client = classes.contains(&StatusClass::Client);
                let server = classes.is_empty() || classes.contains(&StatusClass::Server);
                let mut errors = 0.0;
                if client {
                    errors += d.responses[CLIENT_ERROR] + d.epp_errors[BAD_REQUEST];
                }
                if server {
                    errors += d.responses[SERVER_ERROR] + d.epp_errors[INTERNAL];
                }
                (self.rate(errors), self.attempts())
            }
            MetricType::ShedRate => {
                let shed = d.epp_errors[RESOURCE_EXHAUSTED]
                    + d.epp_errors[SERVICE_UNAVAILABLE]
                    + d.responses[TOO_MANY_REQUESTS];
                (self.rate(shed), self.attempts())
            }
            MetricType::Ttft => (quantile(&d.ttft, check.effective_quantile()), d.ttft.count),
            MetricType::InterTokenLatency => {
                (quantile(&d.tpot, check.effective_quantile()), d.tpot.count)
            }
            MetricType::OutputTokenThroughput => {
                let per_endpoint = match self.ready_pods {
                    Some(ready) if ready > 0.0 && self.seconds > 0.0 => {
                        Some(d.output_tokens / self.seconds / ready)
                    }
                    _ => None,
                };
                (per_endpoint, d.requests)
            }
            MetricType::Query => {
                return Err(
                    "a Query metric runs PromQL; set spec.analysis.source.prometheus".into(),
                );
            }
        })
    }
}

/// Measures `check` over the two arms' windows.
pub fn measure(
    check: &MetricCheck,
    canary: &ArmWindow,
    stable: &ArmWindow,
) -> Result<Measurement, String> {
    let (canary_value, canary_requests) = canary.value(check)?;
    let (stable_value, _) = stable.value(check)?;
    Ok(Measurement {
        canary: canary_value,
        stable: stable_value,
        canary_requests: Some(canary_requests),
    })
}

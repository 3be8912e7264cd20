//! Judging one analysis window: each metric's canary (and stable) value against
//! its limits. Pure: the measurements come in, verdicts go out.

use switchyard_api::rollout::{AnalysisSpec, MetricCheck, MetricType, MetricVerdict, Verdict};

/// One metric measured over one window, for both arms.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Measurement {
    /// The canary's value; `None` when the source had no series.
    pub canary: Option<f64>,
    /// The stable's value.
    pub stable: Option<f64>,
    /// Canary requests in the window; `None` when unknown (then the minimum
    /// request count is not enforced, e.g. for `Query` metrics).
    pub canary_requests: Option<f64>,
}

/// Judges every metric of `spec`, in order. `measure` returns the measurement
/// of one metric (a source error is reported as `Err` and becomes `NoData`
/// with the error as message, so one broken query never passes silently).
pub fn judge_all<E: std::fmt::Display>(
    spec: &AnalysisSpec,
    mut measure: impl FnMut(&MetricCheck) -> Result<Measurement, E>,
) -> Vec<MetricVerdict> {
    spec.metrics
        .iter()
        .map(|check| match measure(check) {
            Ok(measurement) => judge(check, spec.min_requests_per_window, measurement),
            Err(err) => MetricVerdict {
                name: check.name.clone(),
                canary: None,
                stable: None,
                samples: None,
                verdict: Verdict::NoData,
                message: format!("measurement failed: {err}"),
            },
        })
        .collect()
}

/// Every metric of `spec` judged `NoData` with the same `message`: what a
/// window gets when no source could be asked at all (the message says why).
pub fn no_data(spec: &AnalysisSpec, message: &str) -> Vec<MetricVerdict> {
    spec.metrics
        .iter()
        .map(|check| MetricVerdict {
            name: check.name.clone(),
            canary: None,
            stable: None,
            samples: None,
            verdict: Verdict::NoData,
            message: message.to_owned(),
        })
        .collect()
}

/// Judges one metric. Every limit set must hold; the message names the first
/// broken one.
pub fn judge(check: &MetricCheck, min_requests: i64, measurement: Measurement) -> MetricVerdict {
    let samples = measurement.canary_requests.map(|n| n.round() as i64);
    let verdict = |verdict: Verdict, message: String| MetricVerdict {
        name: check.name.clone(),
        canary: measurement.canary.filter(|v| v.is_finite()),
        stable: measurement.stable.filter(|v| v.is_finite()),
        samples,
        verdict,
        message,
    };
    if check.type_ != MetricType::Query
        && let Some(requests) = measurement.canary_requests
        && requests < min_requests as f64
    {
        return verdict(
            Verdict::NoData,
            format!(
                "{requests:.0} canary requests in the window, fewer than minRequestsPerWindow {min_requests}"
            ),
        );
    }
    let Some(canary) = measurement.canary.filter(|v| v.is_finite()) else {
        return verdict(Verdict::NoData, "no canary value in the window".into());
    };
    if let Some(max) = check.max
        && canary > max
    {
        return verdict(Verdict::Fail, format!("canary {canary} is above max {max}"));
    }
    if let Some(min) = check.min
        && canary < min
    {
        return verdict(Verdict::Fail, format!("canary {canary} is below min {min}"));
    }
    let needs_stable = check.max_delta_vs_stable.is_some()
        || check.max_ratio_vs_stable.is_some()
        || check.min_ratio_vs_stable.is_some();
    if needs_stable {
        let Some(stable) = measurement.stable.filter(|v| v.is_finite()) else {
            return verdict(Verdict::NoData, "no stable value to compare with".into());
        };
        if let Some(limit) = check.max_delta_vs_stable
            && canary - stable > limit
        {
            return verdict(
                Verdict::Fail,
                format!("canary {canary} exceeds stable {stable} by more than {limit}"),
            );
        }
        if let Some(limit) = check.max_ratio_vs_stable
            && ratio_above(canary, stable, limit)
        {
            return verdict(
                Verdict::Fail,
                format!("canary {canary} is more than {limit}× stable {stable}"),
            );
        }
        if let Some(limit) = check.min_ratio_vs_stable
            && ratio_below(canary, stable, limit)
        {
            return verdict(
                Verdict::Fail,
                format!("canary {canary} is less than {limit}× stable {stable}"),
            );
        }
    }
    verdict(Verdict::Pass, String::new())
}

/// `canary / stable > limit`, written without dividing so a stable of 0 works:
/// any positive canary value is infinitely above it, and 0 vs 0 is a ratio of 1.
fn ratio_above(canary: f64, stable: f64, limit: f64) -> bool {
    if stable <= 0.0 {
        return canary > 0.0 || limit < 1.0;
    }
    canary > limit * stable
}

/// `canary / stable < limit`, with 0 vs 0 read as a ratio of 1.
fn ratio_below(canary: f64, stable: f64, limit: f64) -> bool {
    if stable <= 0.0 {
        return canary <= 0.0 && limit > 1.0;
    }
    canary < limit * stable
}

#[cfg(test)]
mod tests;

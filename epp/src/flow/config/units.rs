//! Kubernetes quantities and Go durations, as upstream's config accepts them.

use std::time::Duration;

use serde_json::Value;

use super::invalid;
use crate::error::Result;

pub(super) fn ttl_value(field: &str, text: &str) -> Result<Option<Duration>> {
    let duration = parse_go_duration(text).ok_or_else(|| {
        invalid(
            field,
            format!("`{text}` is not a duration; write e.g. `60s`, `1m30s` or `0s` for unbounded"),
        )
    })?;
    Ok((!duration.is_zero()).then_some(duration))
}

pub(super) fn quantity(field: &str, value: &Value) -> Result<u64> {
    let parsed = match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.is_finite())
                .map(|f| f.ceil() as u64)
        }),
        Value::String(s) => parse_quantity(s),
        _ => None,
    };
    parsed.ok_or_else(|| {
        invalid(
            field,
            format!("`{value}` is not a non-negative Kubernetes quantity; write e.g. `5000`, `500M` or `1Gi` (0 = unlimited)"),
        )
    })
}

/// Parses a non-negative Kubernetes quantity (`1Gi`, `500M`, `1.5k`, `2e3`)
/// to an integer, rounding up as Kubernetes does.
pub fn parse_quantity(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let multiplier: f64 = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent if exponent.starts_with(['e', 'E']) => 10f64.powi(exponent[1..].parse().ok()?),
        _ => return None,
    };
    let value = (number * multiplier).ceil();
    (value.is_finite() && value >= 0.0 && value < u64::MAX as f64).then_some(value as u64)
}

/// Parses a Go duration (`300ms`, `1.5h`, `1m30s`, `0`) with the workspace's one grammar
/// ([`switchyard_runtime::duration::parse`]); negative or malformed input gives `None`.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    switchyard_runtime::duration::parse(text.trim()).ok()
}

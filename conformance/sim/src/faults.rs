//! Faults a replica can be told to exhibit, at start (flags) or at run time
//! (`POST /admin/faults`).
//!
//! A replica keeps its current [`FaultState`] behind an `ArcSwap`: request handlers and the
//! engine task read it without locking, and the admin endpoint swaps in a new one.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::engine::LatencyScale;

/// The fault switches. Every field is optional in JSON; omitted fields take the defaults
/// below, so `{}` clears all faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Percentage (0–100) of inference requests answered with an injected error.
    pub failure_injection_rate: f64,
    /// Status codes to inject, chosen uniformly (default 500). Each maps to the OpenAI
    /// error type a real server would use (429 rate limit, 401 auth, 404 model…).
    pub failure_status: Vec<u16>,
    /// Slow start: `/health/ready` answers 503 for this many seconds from now.
    pub not_ready_for_secs: f64,
    /// `/metrics` never answers (the scraper's timeout fires).
    pub metrics_hang: bool,
    /// `/metrics` pads its body with comment lines to at least this many bytes.
    pub metrics_huge_bytes: usize,
    /// Streaming responses break the connection after this many tokens.
    pub stream_die_after_tokens: Option<u32>,
    /// Multiplies every engine step (on top of `--time-scale`).
    pub latency_multiplier: f64,
    /// Multiplies the prefill part of steps (TTFT).
    pub prefill_multiplier: f64,
    /// Multiplies the decode part of steps (inter-token latency).
    pub decode_multiplier: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            failure_injection_rate: 0.0,
            failure_status: vec![500],
            not_ready_for_secs: 0.0,
            metrics_hang: false,
            metrics_huge_bytes: 0,
            stream_die_after_tokens: None,
            latency_multiplier: 1.0,
            prefill_multiplier: 1.0,
            decode_multiplier: 1.0,
        }
    }
}

impl Faults {
    /// Rejects values that make no sense (negative multipliers, rates above 100, codes
    /// that are not errors).
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=100.0).contains(&self.failure_injection_rate) {
            return Err("failure_injection_rate must be within 0..=100".into());
        }
        if let Some(bad) = self
            .failure_status
            .iter()
            .find(|s| !(400..=599).contains(*s))
        {
            return Err(format!("failure_status {bad} is not a 4xx/5xx code"));
        }
        for (name, v) in [
            ("latency_multiplier", self.latency_multiplier),
            ("prefill_multiplier", self.prefill_multiplier),
            ("decode_multiplier", self.decode_multiplier),
            ("not_ready_for_secs", self.not_ready_for_secs),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{name} must be a finite number ≥ 0"));
            }
        }
        Ok(())
    }
}

/// Faults plus the instant readiness returns, fixed when they were applied.
#[derive(Debug, Clone)]
pub struct FaultState {
    /// The switches as applied.
    pub faults: Faults,
    /// When `/health/ready` turns 200.
    pub ready_at: Instant,
}

impl FaultState {
    /// Applies `faults` at `now`.
    pub fn new(faults: Faults, now: Instant) -> Self {
        let ready_at = now + Duration::from_secs_f64(faults.not_ready_for_secs.max(0.0));
        Self { faults, ready_at }
    }

    /// Whether readiness is reported at `now`.
    pub fn is_ready(&self, now: Instant) -> bool {
        now >= self.ready_at
    }

    /// The status to inject for a request, given a uniform draw in `[0, 1)` and a second
    /// draw to choose among codes; `None` to serve it normally.
    pub fn injected_status(&self, draw: f64, pick: u64) -> Option<u16> {
        let f = &self.faults;
        if f.failure_injection_rate <= 0.0 || draw * 100.0 >= f.failure_injection_rate {
            return None;
        }
        let codes = &f.failure_status;
        Some(if codes.is_empty() {
            500
        } else {
            codes[(pick % codes.len() as u64) as usize]
        })
    }

    /// The faults as reported by `GET /admin/faults`: readiness as seconds left.
    pub fn report(&self, now: Instant) -> Faults {
        Faults {
            not_ready_for_secs: self.ready_at.saturating_duration_since(now).as_secs_f64(),
            ..self.faults.clone()
        }
    }

    /// Latency multipliers for the engine, combined with the replica's time scale.
    pub fn latency_scale(&self, time_scale: f64) -> LatencyScale {
        LatencyScale {
            overall: time_scale * self.faults.latency_multiplier,
            prefill: self.faults.prefill_multiplier,
            decode: self.faults.decode_multiplier,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injection_rate_readiness_and_validation() {
        let now = Instant::now();
        let f = Faults {
            failure_injection_rate: 25.0,
            failure_status: vec![429, 503],
            not_ready_for_secs: 10.0,
            ..Faults::default()
        };
        assert!(f.validate().is_ok());
        let s = FaultState::new(f, now);
        assert_eq!(s.injected_status(0.1, 0), Some(429));
        assert_eq!(s.injected_status(0.2, 1), Some(503));
        assert_eq!(s.injected_status(0.3, 0), None);
        assert!(!s.is_ready(now));
        assert!(s.is_ready(now + Duration::from_secs(11)));
        assert!((s.report(now).not_ready_for_secs - 10.0).abs() < 1e-6);
        let none = FaultState::new(Faults::default(), now);
        assert_eq!(none.injected_status(0.0, 0), None);
        assert!(none.is_ready(now));
        let bad = Faults {
            failure_status: vec![200],
            ..Faults::default()
        };
        assert!(bad.validate().is_err());
        let parsed: Faults = serde_json::from_str(r#"{"metrics_hang":true}"#).unwrap();
        assert!(parsed.metrics_hang);
        assert_eq!(parsed.latency_multiplier, 1.0);
        assert!(serde_json::from_str::<Faults>(r#"{"typo":1}"#).is_err());
    }
}

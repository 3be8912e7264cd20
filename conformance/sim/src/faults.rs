//! Faults a replica can be told to exhibit, at start (flags) or at run time
//! (`POST /admin/faults`).
//!
//! A replica keeps its current [`FaultState`] behind an `ArcSwap`: request handlers and the
//! engine task read it without locking, and the admin endpoint swaps in a new one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::engine::LatencyScale;

/// The fault switches. Every field is optional in JSON; omitted fields take the defaults
/// below, so `{}` clears all faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Percentage (0–100) of inference requests answered with an injected error. Spread
    /// evenly, not drawn at random: at 5 the 10th, 30th, 50th… request since the faults were
    /// applied fail, so every run of 20 requests holds exactly one. A short analysis window
    /// (a rollout's, a test's) then always sees its share; a random draw leaves a window of
    /// 30 requests at 5 % without any error one time in five.
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
    /// Successful non-streamed JSON responses are padded (a `"padding"` string field) to at
    /// least this many bytes: a model server returning a huge body.
    pub response_pad_bytes: usize,
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
            response_pad_bytes: 0,
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
    /// Inference requests seen since these faults were applied (the injection schedule's
    /// position); shared by clones, restarted by every new state.
    requests: Arc<AtomicU64>,
}

impl FaultState {
    /// Applies `faults` at `now`.
    pub fn new(faults: Faults, now: Instant) -> Self {
        let ready_at = now + Duration::from_secs_f64(faults.not_ready_for_secs.max(0.0));
        Self {
            faults,
            ready_at,
            requests: Arc::default(),
        }
    }

    /// Whether readiness is reported at `now`.
    pub fn is_ready(&self, now: Instant) -> bool {
        now >= self.ready_at
    }

    /// The status to inject for the next inference request, with `pick` (a random draw)
    /// choosing among the codes; `None` to serve it normally.
    pub fn next_injected_status(&self, pick: u64) -> Option<u16> {
        let f = &self.faults;
        if f.failure_injection_rate <= 0.0 {
            return None;
        }
        let nth = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if !injects_nth(nth, f.failure_injection_rate) {
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

/// Whether the `nth` request (from 1) is one of the `rate` % to fail, spread evenly: the
/// number failed through request n is `round(n × rate / 100)`, and request n fails when that
/// count steps up.
fn injects_nth(nth: u64, rate: f64) -> bool {
    // Basis points keep the schedule exact in integers (a rate has at most two decimals
    // that matter); `validate` bounds the rate to 0..=100.
    let basis_points = (rate.clamp(0.0, 100.0) * 100.0).round() as u64;
    let failed_through = |n: u64| (n.saturating_mul(basis_points) + 5_000) / 10_000;
    failed_through(nth) > failed_through(nth.saturating_sub(1))
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
        // 25 %: every fourth request, starting with the second.
        assert_eq!(s.next_injected_status(0), None);
        assert_eq!(s.next_injected_status(1), Some(503));
        assert_eq!(s.next_injected_status(0), None);
        assert_eq!(s.next_injected_status(0), None);
        assert_eq!(s.next_injected_status(0), None);
        assert_eq!(s.next_injected_status(0), Some(429));
        assert!(!s.is_ready(now));
        assert!(s.is_ready(now + Duration::from_secs(11)));
        assert!((s.report(now).not_ready_for_secs - 10.0).abs() < 1e-6);
        let none = FaultState::new(Faults::default(), now);
        assert_eq!(none.next_injected_status(0), None);
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

    #[test]
    fn injected_failures_are_spread_evenly_so_every_window_sees_its_share() {
        for rate in [0.0, 0.5, 5.0, 12.5, 33.0, 50.0, 99.0, 100.0] {
            let failed: Vec<u64> = (1..=1_000).filter(|&n| injects_nth(n, rate)).collect();
            assert_eq!(failed.len() as f64, rate * 10.0, "rate {rate}");
            if rate > 0.0 {
                // No run of requests longer than 100/rate (rounded up) goes without a failure.
                let longest_gap = failed.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
                assert!(longest_gap as f64 <= (100.0 / rate).ceil(), "rate {rate}");
            }
        }
        // 5 %: the 10th, 30th, 50th… request, so a window of 30 requests holds one or two.
        let five: Vec<u64> = (1..=60).filter(|&n| injects_nth(n, 5.0)).collect();
        assert_eq!(five, [10, 30, 50]);
    }
}

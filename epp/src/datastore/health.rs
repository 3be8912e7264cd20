//! Passive health: outlier ejection fed by what the data path sees.
//!
//! A model server that crashes while its pod stays Ready keeps the low queue and KV values
//! of its last scrape, and its requests fail fast, so its in-flight count stays near zero:
//! every scorer prefers it and it becomes a black hole until Kubernetes notices (review
//! finding H6). The response path reports each request's outcome on the endpoint that
//! served it (5xx, including Envoy's local 503 for a refused connection, or success);
//! [`CONSECUTIVE_FAILURES`] failures in a row eject the endpoint for a short time that
//! doubles with each ejection in a row ([`ejection_time`]), as Envoy's outlier detection
//! does. A success ends the streak. Once an ejection expires the endpoint is tried again,
//! and one more failure ejects it again for longer.
//!
//! Ejection never empties a pool: the scheduler ignores it when every candidate is ejected
//! (Envoy's panic threshold), and [`max_ejected`] caps how much of the pool may be ejected at
//! once. Lock-free: a few atomics per endpoint, shared by every snapshot as the load
//! counters are.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Failures in a row that eject an endpoint (Envoy's `consecutive_5xx` default).
pub const CONSECUTIVE_FAILURES: u32 = 5;

/// The first ejection's length; each ejection in a row doubles it, up to [`MAX_EJECTION`].
pub const BASE_EJECTION: Duration = Duration::from_secs(1);

/// The longest ejection.
pub const MAX_EJECTION: Duration = Duration::from_secs(30);

/// How long the `nth` ejection in a row (from 1) lasts.
pub fn ejection_time(nth: u32) -> Duration {
    let doublings = nth.saturating_sub(1).min(16);
    BASE_EJECTION
        .saturating_mul(1 << doublings)
        .min(MAX_EJECTION)
}

/// How many of `pool` endpoints may be ejected at once: half, and at least one, so a
/// pool of one or two can still route around a dead member while the scheduler's panic
/// rule keeps the last ones serving.
pub fn max_ejected(pool: usize) -> usize {
    (pool / 2).max(1)
}

/// One endpoint's recent outcomes.
#[derive(Debug)]
pub struct EndpointHealth {
    /// Times are kept as milliseconds since this instant, so they fit an atomic.
    origin: Instant,
    /// Failures since the last success.
    consecutive_failures: AtomicU32,
    /// Ejections since the last success; grows the next ejection.
    ejections: AtomicU32,
    /// Until when (ms since `origin`) the endpoint is ejected; 0 when never.
    ejected_until_ms: AtomicU64,
}

impl Default for EndpointHealth {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            consecutive_failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
        }
    }
}

impl EndpointHealth {
    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether the endpoint is ejected at `now`.
    pub fn is_ejected(&self, now: Instant) -> bool {
        self.millis(now) < self.ejected_until_ms.load(Ordering::Relaxed)
    }

    /// A request it served succeeded (anything but a 5xx): the streak and the ejection
    /// history end.
    pub fn record_success(&self) {
        // Loads first: the common case (nothing to reset) writes nothing shared.
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if self.ejections.load(Ordering::Relaxed) != 0 {
            self.ejections.store(0, Ordering::Relaxed);
        }
    }

    /// A request it served failed at `now`. Returns whether the endpoint should now be
    /// ejected: the streak reached [`CONSECUTIVE_FAILURES`], or it failed again after an
    /// ejection expired. The caller checks the pool-wide cap, then calls [`Self::eject`].
    pub fn record_failure(&self, now: Instant) -> bool {
        let streak = self
            .consecutive_failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if self.is_ejected(now) {
            return false;
        }
        streak >= CONSECUTIVE_FAILURES || self.ejections.load(Ordering::Relaxed) > 0
    }

    /// Ejects the endpoint from `now` for its next ejection time; returns that time.
    pub fn eject(&self, now: Instant) -> Duration {
        let nth = self
            .ejections
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let time = ejection_time(nth);
        let until = self
            .millis(now)
            .saturating_add(u64::try_from(time.as_millis()).unwrap_or(u64::MAX));
        self.ejected_until_ms.fetch_max(until, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        time
    }
}

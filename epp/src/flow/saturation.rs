//! Saturation detectors (docs/upstream.md#priority-flow-control-and-saturation): how full the pool
//! is, from one
//! [`PoolSnapshot`] plus the work flow control has released but the
//! scheduler has not placed yet. Pure functions of their inputs.
//!
//! Both detectors also count load the scrape cannot show yet, so a burst of
//! dispatches on one snapshot does not overshoot:
//! - requests this EPP sent since an endpoint's last scrape began
//!   ([`EndpointLoad::unseen`](crate::datastore::EndpointLoad::unseen)) count
//!   as queued on that endpoint (utilization) or are in the in-flight sums
//!   (concurrency);
//! - admissions not yet scheduled ([`Pending`]) are spread evenly over the
//!   endpoints, since the scheduler will place them somewhere.
//!
//! **Stale metrics.** As upstream, an endpoint whose metrics are older than
//! `metricsStalenessThreshold` (default 2 s, twice the scrape timeout, so one
//! slow scrape is not "stale") or never scraped scores 1.0: unknown is not
//! idle. If every endpoint stays stale for [`STALE_FAIL_OPEN_GRACE`], flow
//! control fails *open* rather than halting: [`SnapshotProbe`](crate::flow::SnapshotProbe)
//! then reads the pool with [`Detector::observe_degraded`] — each endpoint's
//! last metrics plus the requests this EPP has in flight there — and marks
//! the view [`PoolView::degraded`]. Either way it is not silent:
//! [`PoolView::stale`] feeds the `flow_control_stale_endpoints` gauge and the
//! controller logs when all endpoints turn stale and when it fails open.

use std::time::{Duration, Instant};

use crate::datastore::{Endpoint, PoolSnapshot};
use crate::flow::config::{
    DEFAULT_KV_CACHE_UTIL_THRESHOLD, DEFAULT_METRICS_STALENESS, DEFAULT_QUEUE_DEPTH_THRESHOLD,
    DetectorConfig,
};
use crate::flow::queues::PoolState;
use crate::prefix::CHARS_PER_TOKEN;

/// How long every endpoint may be stale before flow control stops treating the pool as
/// saturated and dispatches on the last metrics it has (degraded), instead of letting every
/// queued request run into its TTL.
pub const STALE_FAIL_OPEN_GRACE: Duration = Duration::from_secs(5);

/// Admissions released by flow control whose requests are not yet
/// scheduled onto an endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// Requests.
    pub requests: u64,
    /// Their estimated prompt tokens.
    pub tokens: u64,
}

/// What a detector saw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolView {
    /// Pool saturation; ≥ 1.0 means saturated.
    pub saturation: f64,
    /// Ready endpoints.
    pub endpoints: usize,
    /// Ready endpoints whose metrics are stale or missing (utilization only).
    pub stale: usize,
    /// Read from stale metrics after [`STALE_FAIL_OPEN_GRACE`] (failing open).
    pub degraded: bool,
}

impl PoolView {
    /// The state admission and dispatch act on.
    pub fn state(&self) -> PoolState {
        PoolState {
            saturation: self.saturation,
            has_endpoints: self.endpoints > 0,
        }
    }
}

/// The `utilization-detector` rule for one endpoint, shared by the pool detector (flow
/// control and the legacy sheddable check) and the scheduler's utilization filter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UtilizationThresholds {
    /// `queueDepthThreshold`: queued requests at which an endpoint is full.
    pub queue_depth: f64,
    /// `kvCacheUtilThreshold`: KV-cache use at which an endpoint is full.
    pub kv_cache: f64,
    /// `metricsStalenessThreshold`: older metrics say nothing about the endpoint.
    pub staleness: Duration,
}

impl Default for UtilizationThresholds {
    /// Upstream's defaults: queue depth 5, KV 0.8, 200 ms.
    fn default() -> Self {
        Self {
            queue_depth: DEFAULT_QUEUE_DEPTH_THRESHOLD,
            kv_cache: DEFAULT_KV_CACHE_UTIL_THRESHOLD,
            staleness: DEFAULT_METRICS_STALENESS,
        }
    }
}

impl UtilizationThresholds {
    /// How full `endpoint` is with `queued` requests waiting: max(queued / queue depth,
    /// KV use / KV threshold), 1.0 meaning at a threshold. `None` when its metrics are stale
    /// or missing, since unknown is not idle.
    pub fn endpoint_load(&self, endpoint: &Endpoint, queued: f64, now: Instant) -> Option<f64> {
        if endpoint.is_stale(now, self.staleness) {
            return None;
        }
        Some((queued / self.queue_depth).max(endpoint.metrics.kv_cache_usage / self.kv_cache))
    }
}

/// A configured saturation detector.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Detector {
    config: DetectorConfig,
}

/// Estimated prompt tokens of a request of `bytes` bytes.
pub fn estimated_tokens(bytes: u64) -> u64 {
    bytes / CHARS_PER_TOKEN as u64
}

impl Detector {
    /// A detector for `config`.
    pub fn new(config: DetectorConfig) -> Self {
        Self { config }
    }

    /// Saturation of `snapshot` at `now` with `pending` unplaced admissions.
    /// An empty pool is saturated (1.0) with no endpoints.
    pub fn observe(&self, snapshot: &PoolSnapshot, pending: Pending, now: Instant) -> PoolView {
        self.observe_with(snapshot, pending, now, false)
    }

    /// As [`observe`](Self::observe), but reading stale endpoints from their last metrics
    /// (zero when never scraped) plus what this EPP has in flight there, instead of as full:
    /// flow control's fail-open reading once every endpoint has been stale too long.
    pub fn observe_degraded(
        &self,
        snapshot: &PoolSnapshot,
        pending: Pending,
        now: Instant,
    ) -> PoolView {
        self.observe_with(snapshot, pending, now, true)
    }

    fn observe_with(
        &self,
        snapshot: &PoolSnapshot,
        pending: Pending,
        now: Instant,
        degraded: bool,
    ) -> PoolView {
        let ready = snapshot.endpoints.iter().filter(|e| e.ready);
        let endpoints = ready.clone().count();
        if endpoints == 0 {
            return PoolView {
                saturation: 1.0,
                endpoints: 0,
                stale: 0,
                degraded: false,
            };
        }
        let n = endpoints as f64;
        match self.config {
            DetectorConfig::Utilization {
                queue_depth,
                kv_cache,
                staleness,
            } => {
                let thresholds = UtilizationThresholds {
                    queue_depth,
                    kv_cache,
                    staleness,
                };
                let mut stale = 0;
                let sum: f64 = ready
                    .map(|e| {
                        let queued =
                            f64::from(e.metrics.waiting_queue) + f64::from(e.load.unseen());
                        thresholds.endpoint_load(e, queued, now).unwrap_or_else(|| {
                            stale += 1;
                            if degraded {
                                (queued / queue_depth).max(e.metrics.kv_cache_usage / kv_cache)
                            } else {
                                1.0
                            }
                        })
                    })
                    .sum();
                let spread = pending.requests as f64 / (queue_depth * n);
                PoolView {
                    saturation: sum / n + spread,
                    endpoints,
                    stale,
                    degraded: degraded && stale > 0,
                }
            }
            DetectorConfig::Concurrency {
                tokens,
                max_concurrency,
                max_token_concurrency,
            } => {
                let (load, capacity) = if tokens {
                    let in_flight: u64 = ready.map(|e| e.load.in_flight_tokens()).sum();
                    (in_flight + pending.tokens, max_token_concurrency)
                } else {
                    let in_flight: u64 = ready.map(|e| u64::from(e.load.in_flight())).sum();
                    (in_flight + pending.requests, max_concurrency)
                };
                PoolView {
                    saturation: load as f64 / (capacity as f64 * n),
                    endpoints,
                    stale: 0,
                    degraded: false,
                }
            }
        }
    }
}

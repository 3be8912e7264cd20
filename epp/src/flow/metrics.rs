//! Upstream's `flow_control_*` figures (docs/upstream.md#operations-flags-health-metrics) as plain
//! atomics the
//! server registers with its Prometheus registry. Only the actor writes
//! them, so updates are uncontended; readers (the scrape) never block it.
//!
//! | Field | Upstream metric |
//! |---|---|
//! | [`FlowMetrics::requests`] | `flow_control_requests_total{outcome}` (llm-d) |
//! | [`FlowMetrics::queue_duration`] | `inference_extension_flow_control_request_queue_duration_seconds{outcome}` |
//! | [`FlowMetrics::queue_size`], [`FlowMetrics::queue_bytes`] | `inference_extension_flow_control_{queue_size,queue_bytes}` (totals) |
//! | [`FlowMetrics::flows`] | the same two, per `{fairness_id, priority}` |
//! | [`FlowMetrics::dispatch_cycle`] | `inference_extension_flow_control_dispatch_cycle_duration_seconds` |
//! | [`FlowMetrics::pool_saturation`] | `inference_extension_flow_control_pool_saturation` |
//! | [`FlowMetrics::stale_endpoints`] | `flow_control_stale_endpoints` (llm-d) |
//!
//! The queue-duration histogram is kept per outcome only: adding
//! `fairness_id` and `priority` would need a label map on the actor per
//! request, and fairness ids are caller-chosen. The per-flow gauges show at
//! most [`MAX_FLOW_SERIES`] fairness ids (the fullest flows; the rest sum
//! into `other`), and ids are bounded by [`crate::trust::valid_fairness_id`].

mod collect;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::flow::Outcome;
use crate::flow::queues::FlowStat;

pub use collect::FlowCollector;

/// Bucket upper bounds (seconds) for queue waits: sub-millisecond pass-through
/// up to the default 60 s TTL.
pub const QUEUE_DURATION_BUCKETS: [f64; 14] = [
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 15.0, 60.0,
];

/// Bucket upper bounds (seconds) for one dispatch cycle.
pub const DISPATCH_CYCLE_BUCKETS: [f64; 8] = [
    0.000_001, 0.000_005, 0.000_01, 0.000_05, 0.0001, 0.0005, 0.001, 0.01,
];

/// Flows shown by fairness id on the per-flow gauges; the others are summed per priority.
pub const MAX_FLOW_SERIES: usize = 64;

/// The `fairness_id` label of the flows summed past [`MAX_FLOW_SERIES`].
pub const OTHER_FLOWS_LABEL: &str = "other";

/// A cumulative histogram of atomics.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Non-cumulative counts per bucket, plus one overflow bucket.
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        let bucket = self
            .bounds
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The bucket bounds.
    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    /// Cumulative counts per bound (Prometheus `le` order), then the total.
    pub fn cumulative(&self) -> (Vec<u64>, u64) {
        let mut running = 0;
        let mut out = Vec::with_capacity(self.bounds.len());
        for (i, count) in self.counts.iter().enumerate() {
            running += count.load(Ordering::Relaxed);
            if i < self.bounds.len() {
                out.push(running);
            }
        }
        (out, running)
    }

    /// The sum of observations, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }
}

/// The flow-control layer's metrics.
#[derive(Debug)]
pub struct FlowMetrics {
    /// Requests by outcome (index: [`Outcome::index`]).
    pub requests: [AtomicU64; Outcome::ALL.len()],
    /// Time from enqueue to outcome, by outcome.
    pub queue_duration: [Histogram; Outcome::ALL.len()],
    /// Requests queued now.
    pub queue_size: AtomicU64,
    /// Bytes queued now.
    pub queue_bytes: AtomicU64,
    /// Queue sizes per flow, republished by the actor at most every
    /// maintenance tick (1 s) and whenever the queues empty.
    pub flows: ArcSwap<Vec<FlowStat>>,
    /// Duration of one dispatch cycle.
    pub dispatch_cycle: Histogram,
    /// The last saturation the detector reported (f64 bits).
    pool_saturation: AtomicU64,
    /// Ready endpoints with stale metrics at the last observation.
    pub stale_endpoints: AtomicU64,
    /// 1 while flow control dispatches on stale metrics (failing open), else 0.
    pub degraded: AtomicU64,
}

impl Default for FlowMetrics {
    fn default() -> Self {
        Self {
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            queue_duration: std::array::from_fn(|_| Histogram::new(&QUEUE_DURATION_BUCKETS)),
            queue_size: AtomicU64::new(0),
            queue_bytes: AtomicU64::new(0),
            flows: ArcSwap::from_pointee(Vec::new()),
            dispatch_cycle: Histogram::new(&DISPATCH_CYCLE_BUCKETS),
            pool_saturation: AtomicU64::new(0),
            stale_endpoints: AtomicU64::new(0),
            degraded: AtomicU64::new(0),
        }
    }
}

impl FlowMetrics {
    /// Records a request leaving flow control.
    pub fn finished(&self, outcome: Outcome, waited: Duration) {
        let i = outcome.index();
        if let Some(counter) = self.requests.get(i) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(histogram) = self.queue_duration.get(i) {
            histogram.observe(waited);
        }
    }

    /// Requests that left with `outcome` so far.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.requests
            .get(outcome.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The last pool saturation.
    pub fn pool_saturation(&self) -> f64 {
        f64::from_bits(self.pool_saturation.load(Ordering::Relaxed))
    }

    pub(crate) fn set_pool_saturation(&self, value: f64) {
        self.pool_saturation
            .store(value.to_bits(), Ordering::Relaxed);
    }

    pub(crate) fn set_queue(&self, requests: u64, bytes: u64) {
        self.queue_size.store(requests, Ordering::Relaxed);
        self.queue_bytes.store(bytes, Ordering::Relaxed);
    }

    /// Publishes the per-flow figures, bounded: the [`MAX_FLOW_SERIES`] flows with the most
    /// queued requests keep their fairness id, the rest are summed per priority under
    /// [`OTHER_FLOWS_LABEL`], so queued flows cannot grow the `/metrics` page without bound.
    pub(crate) fn publish_flows(&self, mut flows: Vec<FlowStat>) {
        if flows.len() > MAX_FLOW_SERIES {
            flows.sort_by(|a, b| {
                b.requests
                    .cmp(&a.requests)
                    .then_with(|| b.priority.cmp(&a.priority))
            });
            let mut others: Vec<FlowStat> = Vec::new();
            for flow in flows.drain(MAX_FLOW_SERIES..) {
                match others.iter_mut().find(|o| o.priority == flow.priority) {
                    Some(other) => {
                        other.requests += flow.requests;
                        other.bytes += flow.bytes;
                    }
                    None => others.push(FlowStat {
                        fairness_id: OTHER_FLOWS_LABEL.into(),
                        ..flow
                    }),
                }
            }
            flows.append(&mut others);
        }
        self.flows.store(Arc::new(flows));
    }
}

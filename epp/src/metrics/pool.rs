//! Figures read at scrape time through a collector: the pool gauges (`inference_pool_*`) and
//! the refused steering headers of [`crate::trust`].
//!
//! The pool gauges are one immutable [`PoolFigures`] swapped in whole by each scrape, rather
//! than a label family cleared and refilled: two concurrent scrapes each see a complete set
//! of per-pod series, never one the other is in the middle of rebuilding.

use std::fmt::Write;
use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::datastore::{Endpoint, PoolSnapshot};
use crate::trust::{Refused, refused_count};

/// The pool gauges computed from one snapshot.
#[derive(Debug, Default)]
pub struct PoolFigures {
    pool: String,
    average_kv: f64,
    average_queue: f64,
    average_running: f64,
    ready: i64,
    /// `(endpoint name, waiting queue)` of each ready endpoint.
    per_pod: Vec<(String, i64)>,
}

impl PoolFigures {
    /// The figures of `snapshot`'s ready endpoints.
    pub fn of(snapshot: &PoolSnapshot) -> Self {
        let ready: Vec<&Endpoint> = snapshot.endpoints.iter().filter(|e| e.ready).collect();
        let count = ready.len();
        let mean = |f: &dyn Fn(&Endpoint) -> f64| {
            if count == 0 {
                0.0
            } else {
                ready.iter().map(|e| f(e)).sum::<f64>() / count as f64
            }
        };
        Self {
            pool: snapshot.pool_name.to_string(),
            average_kv: mean(&|e| e.metrics.kv_cache_usage),
            average_queue: mean(&|e| f64::from(e.metrics.waiting_queue)),
            average_running: mean(&|e| f64::from(e.metrics.running)),
            ready: i64::try_from(count).unwrap_or(i64::MAX),
            per_pod: ready
                .iter()
                .map(|e| (e.name.to_string(), i64::from(e.metrics.waiting_queue)))
                .collect(),
        }
    }
}

/// Encodes the latest [`PoolFigures`] and the refused-steering counters.
#[derive(Debug, Default)]
pub struct ScrapeTimeCollector {
    /// Replaced whole by each `observe_pool`.
    pub figures: Arc<ArcSwap<PoolFigures>>,
}

impl Collector for ScrapeTimeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let figures = self.figures.load();
        let pool = [("name", figures.pool.as_str())];
        for (name, help, value) in [
            (
                "inference_pool_average_kv_cache_utilization",
                "Mean KV-cache utilisation of the pool's ready endpoints (0-1)",
                figures.average_kv,
            ),
            (
                "inference_pool_average_queue_size",
                "Mean waiting-queue length of the pool's ready endpoints",
                figures.average_queue,
            ),
            (
                "inference_pool_average_running_requests",
                "Mean running requests of the pool's ready endpoints",
                figures.average_running,
            ),
        ] {
            encoder
                .encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_family(&pool)?
                .encode_gauge(&value)?;
        }
        encoder
            .encode_descriptor(
                switchyard_api::protocol::epp_metrics::POOL_READY_PODS,
                "Ready endpoints in the pool",
                None,
                MetricType::Gauge,
            )?
            .encode_family(&pool)?
            .encode_gauge(&figures.ready)?;
        let mut per_pod = encoder.encode_descriptor(
            "inference_pool_per_pod_queue_size",
            "Waiting-queue length per endpoint",
            None,
            MetricType::Gauge,
        )?;
        for (pod, queue) in &figures.per_pod {
            per_pod
                .encode_family(&[
                    ("name", figures.pool.as_str()),
                    ("model_server_pod", pod.as_str()),
                ])?
                .encode_gauge(queue)?;
        }
        let mut refused = encoder.encode_descriptor(
            "switchyard_epp_refused_steering_headers",
            "Steering header values not honoured (untrusted caller, invalid fairness id, \
             forced rewrite to a model the pool does not know), by reason",
            None,
            MetricType::Counter,
        )?;
        for reason in Refused::ALL {
            refused
                .encode_family(&[("reason", reason.label())])?
                .encode_counter::<NoLabelSet, _, u64>(&refused_count(reason), None)?;
        }
        Ok(())
    }
}

/// A `fmt::Write` that refuses to grow past `limit` bytes, so an exposition too large to
/// serve fails instead of allocating without bound.
pub struct Bounded {
    /// The text so far.
    pub text: String,
    /// The most bytes `text` may hold.
    pub limit: usize,
}

impl Write for Bounded {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.text.len().saturating_add(s.len()) > self.limit {
            return Err(std::fmt::Error);
        }
        self.text.push_str(s);
        Ok(())
    }
}

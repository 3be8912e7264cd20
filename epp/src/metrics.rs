//! The EPP's own Prometheus metrics, under upstream's names
//! (docs/upstream.md#operations-flags-health-metrics), and the `/metrics`
//! endpoint.
//!
//! Per-model handles are resolved once per `(model, target, priority)` and cached in an
//! arc-swap map ([`labels::ModelHandles`]), so a request records with atomics only and no
//! label strings are built per request. Model labels are capped at
//! [`labels::MAX_MODEL_LABELS`] distinct values; later ones are reported as `other`, as
//! llm-d does, so a client sending random model names cannot grow the series without bound.
//!
//! Pool gauges (`inference_pool_*`) are computed from the current snapshot when `/metrics` is
//! read, so they cost nothing between scrapes.

pub mod labels;

use std::sync::Arc;

use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::datastore::{Datastore, PoolSnapshot};
use crate::scrape::ScrapeMetrics;
pub use labels::{ModelHandles, ModelLabels};

/// A float gauge.
type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PodLabels {
    name: String,
    model_server_pod: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    commit: &'static str,
    build_ref: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// Stream-error kinds recorded by [`Metrics::stream_error`].
pub const STREAM_ERROR_KINDS: [&str; 3] = ["protocol", "transport", "body_too_large"];

/// Every metric the EPP exports.
pub struct Metrics {
    registry: Registry,
    models: labels::ModelFamilies,
    pool_kv: Family<PoolLabel, FloatGauge>,
    pool_queue: Family<PoolLabel, FloatGauge>,
    pool_running: Family<PoolLabel, FloatGauge>,
    pool_ready: Family<PoolLabel, Gauge>,
    pool_per_pod_queue: Family<PodLabels, Gauge>,
    scheduler_seconds: Histogram,
    stream_errors: [Counter; STREAM_ERROR_KINDS.len()],
    scrape: Arc<ScrapeMetrics>,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let models = labels::ModelFamilies::register(&mut registry);
        let pool_kv = Family::<PoolLabel, FloatGauge>::default();
        registry.register(
            "inference_pool_average_kv_cache_utilization",
            "Mean KV-cache utilisation of the pool's ready endpoints (0-1)",
            pool_kv.clone(),
        );
        let pool_queue = Family::<PoolLabel, FloatGauge>::default();
        registry.register(
            "inference_pool_average_queue_size",
            "Mean waiting-queue length of the pool's ready endpoints",
            pool_queue.clone(),
        );
        let pool_running = Family::<PoolLabel, FloatGauge>::default();
        registry.register(
            "inference_pool_average_running_requests",
            "Mean running requests of the pool's ready endpoints",
            pool_running.clone(),
        );
        let pool_ready = Family::<PoolLabel, Gauge>::default();
        registry.register(
            switchyard_api::protocol::epp_metrics::POOL_READY_PODS,
            "Ready endpoints in the pool",
            pool_ready.clone(),
        );
        let pool_per_pod_queue = Family::<PodLabels, Gauge>::default();
        registry.register(
            "inference_pool_per_pod_queue_size",
            "Waiting-queue length per endpoint",
            pool_per_pod_queue.clone(),
        );
        // 1 µs to about 4 s.
        let scheduler_seconds = Histogram::new(exponential_buckets(1e-6, 4.0, 12));
        registry.register(
            "inference_extension_scheduler_e2e_duration_seconds",
            "Time to schedule one request (body parse, rewrite, pick)",
            scheduler_seconds.clone(),
        );
        let info = Family::<InfoLabels, Gauge>::default();
        info.get_or_create(&InfoLabels {
            commit: option_env!("SWITCHYARD_COMMIT").unwrap_or("unknown"),
            build_ref: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
        registry.register(
            "inference_extension_info",
            "Build information of this EPP",
            info,
        );
        let errors = Family::<KindLabel, Counter>::default();
        registry.register(
            "switchyard_epp_stream_errors",
            "ext_proc streams ended with a gRPC error status, by kind",
            errors.clone(),
        );
        let stream_errors =
            STREAM_ERROR_KINDS.map(|kind| errors.get_or_create(&KindLabel { kind }).clone());
        let scrape = Arc::new(ScrapeMetrics::default());
        scrape.register(&mut registry);
        Self {
            registry,
            models,
            pool_kv,
            pool_queue,
            pool_running,
            pool_ready,
            pool_per_pod_queue,
            scheduler_seconds,
            stream_errors,
            scrape,
        }
    }

    /// The model-server scrape counters (handed to the scrapers).
    pub fn scrape(&self) -> Arc<ScrapeMetrics> {
        Arc::clone(&self.scrape)
    }

    /// The handles for one model pair and priority (cached; see [`labels`]).
    pub fn model(&self, labels: ModelLabels<'_>) -> Arc<ModelHandles> {
        self.models.handles(labels)
    }

    /// Records one scheduling decision's duration.
    pub fn observe_scheduling(&self, seconds: f64) {
        self.scheduler_seconds.observe(seconds);
    }

    /// Counts a stream that ended with an error status (`kind` from [`STREAM_ERROR_KINDS`]).
    pub fn stream_error(&self, kind: &str) {
        let slot = STREAM_ERROR_KINDS
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(0);
        if let Some(counter) = self.stream_errors.get(slot) {
            counter.inc();
        }
    }

    /// Sets the pool gauges from `snapshot`.
    pub fn observe_pool(&self, snapshot: &PoolSnapshot) {
        let pool = PoolLabel {
            name: snapshot.pool_name.to_string(),
        };
        let ready: Vec<_> = snapshot.endpoints.iter().filter(|e| e.ready).collect();
        let count = ready.len();
        let mean = |f: &dyn Fn(&crate::datastore::Endpoint) -> f64| {
            if count == 0 {
                0.0
            } else {
                ready.iter().map(|e| f(e)).sum::<f64>() / count as f64
            }
        };
        self.pool_kv
            .get_or_create(&pool)
            .set(mean(&|e| e.metrics.kv_cache_usage));
        self.pool_queue
            .get_or_create(&pool)
            .set(mean(&|e| f64::from(e.metrics.waiting_queue)));
        self.pool_running
            .get_or_create(&pool)
            .set(mean(&|e| f64::from(e.metrics.running)));
        self.pool_ready
            .get_or_create(&pool)
            .set(i64::try_from(count).unwrap_or(i64::MAX));
        // Rebuilt each time so departed endpoints disappear.
        self.pool_per_pod_queue.clear();
        for endpoint in &ready {
            self.pool_per_pod_queue
                .get_or_create(&PodLabels {
                    name: pool.name.clone(),
                    model_server_pod: endpoint.name.to_string(),
                })
                .set(i64::from(endpoint.metrics.waiting_queue));
        }
    }

    /// Adds a collector read at scrape time (flow control's figures).
    pub fn register_collector(&mut self, collector: impl prometheus_client::collector::Collector) {
        self.registry.register_collector(Box::new(collector));
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        switchyard_runtime::metrics::encode(&self.registry)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What one scrape reads: the metrics, and the snapshot the pool gauges are computed from.
struct Scrape {
    metrics: Arc<Metrics>,
    datastore: Arc<Datastore>,
}

impl switchyard_runtime::metrics::Exposition for Scrape {
    fn encode(&self) -> Result<String, std::fmt::Error> {
        self.metrics.observe_pool(&self.datastore.load());
        self.metrics.encode()
    }
}

/// The `/metrics` endpoint (the runtime's router), refreshing the pool gauges on each scrape.
pub fn router(metrics: Arc<Metrics>, datastore: Arc<Datastore>) -> Router {
    switchyard_runtime::metrics::router(Arc::new(Scrape { metrics, datastore }))
}

#[cfg(test)]
mod tests;

//! The EPP's own Prometheus metrics, under upstream's names
//! (docs/upstream.md#operations-flags-health-metrics), and the `/metrics`
//! endpoint.
//!
//! Per-model handles are resolved once per `(model, target, priority)` and cached in an
//! arc-swap map ([`labels::ModelHandles`]), so a request records with atomics only and no
//! label strings are built per request. Model names are client data, so three bounds keep
//! the page small whatever clients send:
//! - a name is a label value only if it is at most [`policy::MAX_LABEL_BYTES`] of plain
//!   characters and the pool knows it (or it is one of a few other names): [`policy`];
//! - at most [`labels::MAX_MODEL_LABELS`] label combinations; later ones are `other`, as
//!   llm-d does;
//! - the page is never rendered past [`MAX_PAGE_BYTES`] (the render fails instead).
//!
//! Pool gauges (`inference_pool_*`) are computed from the current snapshot when `/metrics` is
//! read, so they cost nothing between scrapes.

pub mod labels;
pub mod policy;
mod pool;

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::datastore::{Datastore, PoolSnapshot};
use crate::scrape::ScrapeMetrics;
pub use labels::{ModelHandles, ModelLabels};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    commit: &'static str,
    build_ref: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// The largest `/metrics` page served: the rollout controller's read cap. Rendering fails
/// rather than allocate past it; the label caps keep a real page far below.
pub const MAX_PAGE_BYTES: usize = 8 << 20;

/// Stream-error kinds recorded by [`Metrics::stream_error`].
pub const STREAM_ERROR_KINDS: [&str; 3] = ["protocol", "transport", "body_too_large"];

/// Every metric the EPP exports.
pub struct Metrics {
    registry: Registry,
    models: labels::ModelFamilies,
    /// The pool gauges, swapped whole by each scrape (see [`pool`]).
    pool: Arc<ArcSwap<pool::PoolFigures>>,
    scheduler_seconds: Histogram,
    stream_errors: [Counter; STREAM_ERROR_KINDS.len()],
    scrape: Arc<ScrapeMetrics>,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let models = labels::ModelFamilies::register(&mut registry);
        let collector = pool::ScrapeTimeCollector::default();
        let pool = Arc::clone(&collector.figures);
        registry.register_collector(Box::new(collector));
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
            pool,
            scheduler_seconds,
            stream_errors,
            scrape,
        }
    }

    /// Lets model names the pool knows (in `datastore`'s snapshot) be label values; without
    /// it only a few unknown names are (see [`policy`]).
    pub fn learn_models_from(&mut self, datastore: Arc<Datastore>) {
        self.models.learn_models_from(datastore);
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

    /// Sets the pool gauges from `snapshot`: one swap of a complete set, so a concurrent
    /// scrape never sees the per-pod series half rebuilt.
    pub fn observe_pool(&self, snapshot: &PoolSnapshot) {
        self.pool.store(Arc::new(pool::PoolFigures::of(snapshot)));
    }

    /// Adds a collector read at scrape time (flow control's figures).
    pub fn register_collector(&mut self, collector: impl prometheus_client::collector::Collector) {
        self.registry.register_collector(Box::new(collector));
    }

    /// The registry in the OpenMetrics text format, failing past [`MAX_PAGE_BYTES`].
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        self.encode_within(MAX_PAGE_BYTES)
    }

    /// The registry in the OpenMetrics text format, failing (and freeing what it wrote)
    /// rather than growing past `limit` bytes.
    pub fn encode_within(&self, limit: usize) -> Result<String, std::fmt::Error> {
        let mut page = pool::Bounded {
            text: String::new(),
            limit,
        };
        prometheus_client::encoding::text::encode(&mut page, &self.registry).inspect_err(|_| {
            tracing::error!(
                limit,
                "the /metrics page would pass its byte budget; not serving it (too many label \
                 combinations: see switchyard_epp::metrics::policy)"
            );
        })?;
        Ok(page.text)
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

//! Scrape counters, for the EPP's metrics endpoint.
//!
//! Registered by [`ScrapeMetrics::register`] as:
//! - `switchyard_epp_metrics_scrapes_total`: every scrape attempt;
//! - `switchyard_epp_metrics_scrape_errors_total{reason}`: failed attempts, where
//!   `reason` is one of `connect`, `timeout`, `http_status`, `too_large`,
//!   `body`, `not_utf8`, `metrics` (a required metric is missing).
//!
//! Upstream has no such metric, so the names carry our own prefix. There is no
//! per-endpoint label: pod churn would make the series unbounded; the log
//! names the endpoint when its scrapes start and stop failing.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::datastore::EndpointMetrics;
use crate::error::{Error, Result};

/// The `reason` label of a failed scrape.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScrapeErrorLabels {
    /// Why the scrape failed.
    pub reason: &'static str,
}

/// Scrape counters shared by every scraper.
#[derive(Debug, Default)]
pub struct ScrapeMetrics {
    /// Scrape attempts.
    pub scrapes: Counter,
    /// Failed attempts by reason.
    pub errors: Family<ScrapeErrorLabels, Counter>,
}

impl ScrapeMetrics {
    /// Adds the counters to `registry` (names in the module docs).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "switchyard_epp_metrics_scrapes",
            "Model-server /metrics scrape attempts",
            self.scrapes.clone(),
        );
        registry.register(
            "switchyard_epp_metrics_scrape_errors",
            "Failed model-server /metrics scrapes, by reason",
            self.errors.clone(),
        );
    }

    /// Counts one scrape's outcome.
    pub fn record(&self, outcome: &Result<EndpointMetrics>) {
        self.scrapes.inc();
        if let Err(err) = outcome {
            let reason = match err {
                Error::Scrape { reason, .. } => reason,
                other => other.kind(),
            };
            self.errors
                .get_or_create(&ScrapeErrorLabels { reason })
                .inc();
        }
    }

    /// Failed scrapes so far with `reason`.
    pub fn errors(&self, reason: &'static str) -> u64 {
        self.errors
            .get_or_create(&ScrapeErrorLabels { reason })
            .get()
    }
}

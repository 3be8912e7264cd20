//! Prometheus metrics: handles resolved once at startup (no per-request label allocation). The
//! `/metrics` endpoint is the runtime's ([`switchyard_runtime::metrics::router`]).
//!
//! Names (prometheus-client adds `_total` to counters itself, so they are registered without
//! it): `bbr_requests_total{outcome}`, `bbr_request_body_bytes`,
//! `bbr_extraction_duration_seconds`, `bbr_spoofed_headers_removed_total`,
//! `bbr_stream_errors_total{kind}`, `bbr_base_model_mappings`,
//! `bbr_base_model_mapping_conflicts`, `bbr_base_model_configmaps_invalid`,
//! `bbr_buffered_bytes` and `bbr_buffered_bytes_limit` (the `--max-buffered-bytes` budget),
//! `bbr_info{version}`, plus
//! upstream BBR's `bbr_success_total`, `bbr_body_field_not_found_total` and
//! `bbr_body_field_empty_total` so existing dashboards keep working.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use switchyard_runtime::budget::ByteBudget;

use crate::policy::Reason;
use crate::stream::{Outcome, Summary};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// Every outcome, in the order of [`outcome_slot`].
const OUTCOMES: [Outcome; 11] = [
    Outcome::Routed,
    Outcome::NoBody,
    Outcome::PassedWithoutModel,
    Outcome::Rejected(Reason::InvalidJson),
    Outcome::Rejected(Reason::DuplicateModel),
    Outcome::Rejected(Reason::MissingModel),
    Outcome::Rejected(Reason::EmptyModel),
    Outcome::Rejected(Reason::ModelNotString),
    Outcome::Rejected(Reason::InvalidModelName),
    Outcome::Rejected(Reason::BodyTooLarge),
    Outcome::Rejected(Reason::Overloaded),
];

fn outcome_slot(outcome: Outcome) -> usize {
    OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0)
}

/// Stream-error kinds, as [`crate::Error::kind`] names them.
const ERROR_KINDS: [&str; 6] = [
    "protocol",
    "unsupported_body_mode",
    "config",
    "mapping",
    "kube",
    "transport",
];

/// BBR's metrics, shared by every stream.
pub struct Metrics {
    registry: Registry,
    requests: [Counter; OUTCOMES.len()],
    stream_errors: [Counter; ERROR_KINDS.len()],
    body_bytes: Histogram,
    extraction_seconds: Histogram,
    spoofed_removed: Counter,
    success: Counter,
    field_not_found: Counter,
    field_empty: Counter,
    mappings: Gauge,
    conflicts: Gauge,
    invalid_config_maps: Gauge,
    buffered: Gauge,
    buffered_limit: Gauge,
    /// The budget the two gauges above read at each scrape.
    budget: std::sync::OnceLock<ByteBudget>,
}

impl Metrics {
    /// Registers everything under the `bbr_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("bbr");
        let requests_family = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "requests",
            "Requests by outcome (routed, no_body, passed_without_model, rejected_<reason>)",
            requests_family.clone(),
        );
        let requests = OUTCOMES.map(|o| {
            requests_family
                .get_or_create(&OutcomeLabel { outcome: o.label() })
                .clone()
        });
        let errors_family = Family::<KindLabel, Counter>::default();
        registry.register(
            "stream_errors",
            "ext_proc streams ended with an error status, by kind",
            errors_family.clone(),
        );
        let stream_errors =
            ERROR_KINDS.map(|kind| errors_family.get_or_create(&KindLabel { kind }).clone());
        // 256 B to 64 MiB.
        let body_bytes = Histogram::new(exponential_buckets(256.0, 4.0, 10));
        registry.register(
            "request_body_bytes",
            "Request body sizes seen by BBR",
            body_bytes.clone(),
        );
        // 1 µs to about 0.26 s.
        let extraction_seconds = Histogram::new(exponential_buckets(1e-6, 4.0, 10));
        registry.register(
            "extraction_duration_seconds",
            "Time to validate a body and extract its model",
            extraction_seconds.clone(),
        );
        let spoofed_removed = Counter::default();
        registry.register(
            "spoofed_headers_removed",
            "Client-supplied copies of BBR's routing headers removed before routing",
            spoofed_removed.clone(),
        );
        let success = Counter::default();
        registry.register(
            "success",
            "Requests whose model was copied to a header (upstream BBR's name)",
            success.clone(),
        );
        let field_not_found = Counter::default();
        registry.register(
            "body_field_not_found",
            "JSON bodies without the model field (upstream BBR's name)",
            field_not_found.clone(),
        );
        let field_empty = Counter::default();
        registry.register(
            "body_field_empty",
            "JSON bodies whose model field is empty (upstream BBR's name)",
            field_empty.clone(),
        );
        let mappings = Gauge::default();
        registry.register(
            "base_model_mappings",
            "Model and adapter names with a known base model",
            mappings.clone(),
        );
        let conflicts = Gauge::default();
        registry.register(
            "base_model_mapping_conflicts",
            "Names two base-model mappings claim for different base models (the first source \
             wins: the file, then BBR's namespace, then other namespaces; see the logs)",
            conflicts.clone(),
        );
        let invalid_config_maps = Gauge::default();
        registry.register(
            "base_model_configmaps_invalid",
            "Base-model ConfigMaps whose latest version is invalid (their last good mapping \
             stays in use; see the logs)",
            invalid_config_maps.clone(),
        );
        let buffered = Gauge::default();
        registry.register(
            "buffered_bytes",
            "Request-body bytes buffered by requests in flight, against --max-buffered-bytes",
            buffered.clone(),
        );
        let buffered_limit = Gauge::default();
        registry.register(
            "buffered_bytes_limit",
            "The budget of buffered request-body bytes (--max-buffered-bytes); past it, 503",
            buffered_limit.clone(),
        );
        // A labelled gauge rather than an OpenMetrics Info, whose name would get an `_info`
        // suffix: upstream's series is `bbr_info`.
        let info = Family::<VersionLabel, Gauge>::default();
        info.get_or_create(&VersionLabel {
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
        registry.register("info", "BBR build information", info);
        Metrics {
            registry,
            requests,
            stream_errors,
            body_bytes,
            extraction_seconds,
            spoofed_removed,
            success,
            field_not_found,
            field_empty,
            mappings,
            conflicts,
            invalid_config_maps,
            buffered,
            buffered_limit,
            budget: std::sync::OnceLock::new(),
        }
    }

    /// Records a finished request.
    pub fn record(&self, summary: &Summary) {
        if let Some(counter) = self.requests.get(outcome_slot(summary.outcome)) {
            counter.inc();
        }
        if summary.outcome != Outcome::NoBody {
            self.body_bytes.observe(summary.body_bytes as f64);
        }
        if let Some(took) = summary.extraction {
            self.extraction_seconds.observe(took.as_secs_f64());
        }
        self.spoofed_removed.inc_by(summary.spoofed_removed as u64);
        match summary.outcome {
            Outcome::Routed => {
                self.success.inc();
            }
            Outcome::PassedWithoutModel | Outcome::Rejected(Reason::MissingModel) => {
                self.field_not_found.inc();
            }
            Outcome::Rejected(Reason::EmptyModel) => {
                self.field_empty.inc();
            }
            _ => {}
        }
    }

    /// Records a stream that ended with an error status.
    pub fn stream_error(&self, kind: &str) {
        let slot = ERROR_KINDS.iter().position(|k| *k == kind).unwrap_or(0);
        if let Some(counter) = self.stream_errors.get(slot) {
            counter.inc();
        }
    }

    /// Sets the number of names with a known base model.
    pub fn set_mappings(&self, names: usize) {
        self.mappings.set(i64::try_from(names).unwrap_or(i64::MAX));
    }

    /// Sets the number of names claimed by conflicting mappings.
    pub fn set_mapping_conflicts(&self, conflicts: usize) {
        self.conflicts
            .set(i64::try_from(conflicts).unwrap_or(i64::MAX));
    }

    /// Sets the number of base-model ConfigMaps whose latest version is invalid.
    pub fn set_invalid_config_maps(&self, invalid: usize) {
        self.invalid_config_maps
            .set(i64::try_from(invalid).unwrap_or(i64::MAX));
    }

    /// Reports `budget` in `bbr_buffered_bytes{,_limit}` from now on (the first call wins).
    pub fn watch_budget(&self, budget: &ByteBudget) {
        let _ = self.budget.set(budget.clone());
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        if let Some(budget) = self.budget.get() {
            self.buffered
                .set(i64::try_from(budget.in_use()).unwrap_or(i64::MAX));
            self.buffered_limit
                .set(i64::try_from(budget.limit()).unwrap_or(i64::MAX));
        }
        switchyard_runtime::metrics::encode(&self.registry)
    }
}

impl switchyard_runtime::metrics::Exposition for Metrics {
    fn encode(&self) -> Result<String, std::fmt::Error> {
        Metrics::encode(self)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::BodyMode;

    fn summary(outcome: Outcome) -> Summary {
        Summary {
            outcome,
            body_bytes: 1000,
            spoofed_removed: 1,
            extraction: Some(Duration::from_micros(3)),
            model: None,
            mode: BodyMode::Buffered,
        }
    }

    #[test]
    fn names_match_upstream_and_ours() {
        let metrics = Metrics::new();
        metrics.record(&summary(Outcome::Routed));
        metrics.record(&summary(Outcome::Rejected(Reason::MissingModel)));
        metrics.record(&summary(Outcome::Rejected(Reason::EmptyModel)));
        metrics.stream_error("protocol");
        metrics.set_mappings(3);
        let text = metrics.encode().unwrap();
        for line in [
            "bbr_success_total 1",
            "bbr_body_field_not_found_total 1",
            "bbr_body_field_empty_total 1",
            "bbr_requests_total{outcome=\"routed\"} 1",
            "bbr_requests_total{outcome=\"rejected_missing_model\"} 1",
            "bbr_requests_total{outcome=\"no_body\"} 0",
            "bbr_spoofed_headers_removed_total 3",
            "bbr_stream_errors_total{kind=\"protocol\"} 1",
            "bbr_base_model_mappings 3",
            "bbr_request_body_bytes_count 3",
            "bbr_extraction_duration_seconds_count 3",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        assert!(text.contains("bbr_info{version=\"0.1.0\"} 1"), "{text}");
        assert!(!text.contains("_total_total"), "{text}");
    }

    /// H5: the budget is visible to operators: held bytes and the limit, read at each scrape.
    #[test]
    fn h5_the_byte_budget_is_exported() {
        let metrics = Metrics::new();
        let budget = ByteBudget::new(1000);
        metrics.watch_budget(&budget);
        let mut lease = budget.lease();
        lease.grow(300).unwrap();
        let text = metrics.encode().unwrap();
        assert!(text.contains("bbr_buffered_bytes 300"), "{text}");
        assert!(text.contains("bbr_buffered_bytes_limit 1000"), "{text}");
        drop(lease);
        assert!(metrics.encode().unwrap().contains("bbr_buffered_bytes 0"));
    }

    #[test]
    fn every_outcome_has_a_slot_and_a_label() {
        for (i, outcome) in OUTCOMES.iter().enumerate() {
            assert_eq!(outcome_slot(*outcome), i);
        }
        let labels: std::collections::HashSet<_> = OUTCOMES.iter().map(|o| o.label()).collect();
        assert_eq!(labels.len(), OUTCOMES.len());
    }
}

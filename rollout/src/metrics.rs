//! The controller's own metrics (prometheus-client), served on `/metrics`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RolloutLabels {
    namespace: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
    code: u16,
}

/// Handles to every metric; cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    reconciles: Family<ResultLabel, Counter>,
    errors: Family<KindLabel, Counter>,
    writes: Family<OutcomeLabel, Counter>,
    canary_weight: Family<RolloutLabels, Gauge>,
    admin_actions: Family<ActionLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `switchyard_rollout` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchyard_rollout");
        let reconciles = Family::<ResultLabel, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by result (ok, error)",
            reconciles.clone(),
        );
        let errors = Family::<KindLabel, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciles by error kind",
            errors.clone(),
        );
        let writes = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "weight_writes",
            "HTTPRoute weight patches by outcome (ok, conflict, error)",
            writes.clone(),
        );
        let canary_weight = Family::<RolloutLabels, Gauge>::default();
        registry.register(
            "canary_weight_basis_points",
            "Canary weight applied on the route, per rollout",
            canary_weight.clone(),
        );
        let admin_actions = Family::<ActionLabels, Counter>::default();
        registry.register(
            "admin_requests",
            "Admin API requests by action and HTTP status",
            admin_actions.clone(),
        );
        Self {
            registry: Arc::new(registry),
            reconciles,
            errors,
            writes,
            canary_weight,
            admin_actions,
        }
    }

    /// Counts a reconcile.
    pub fn reconcile(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.reconciles.get_or_create(&ResultLabel { result }).inc();
    }

    /// Counts a failed reconcile by error kind.
    pub fn reconcile_error(&self, kind: &'static str) {
        self.errors.get_or_create(&KindLabel { kind }).inc();
    }

    /// Counts a route weight patch.
    pub fn weight_write(&self, outcome: &'static str) {
        self.writes.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// Records the canary weight applied for one rollout.
    pub fn canary_weight(&self, namespace: &str, name: &str, weight: i32) {
        let labels = RolloutLabels {
            namespace: namespace.into(),
            name: name.into(),
        };
        self.canary_weight
            .get_or_create(&labels)
            .set(i64::from(weight));
    }

    /// Counts an admin API request.
    pub fn admin_request(&self, action: &str, code: u16) {
        self.admin_actions
            .get_or_create(&ActionLabels {
                action: action.into(),
                code,
            })
            .inc();
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        // Writing into a String cannot fail.
        switchyard_runtime::metrics::encode(&self.registry).unwrap_or_default()
    }
}

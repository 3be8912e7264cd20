//! `InferenceRollout` (`rollout.switchyard.dev/v1alpha1`): a metric-gated canary
//! that moves traffic between two versions of an inference backend step by step.
//!
//! Two modes:
//! - `PoolSplit`: two InferencePools behind one named rule of an HTTPRoute; the
//!   controller patches only the two backendRefs' weights (JSON Patch with `test`
//!   operations), never the rest of the route.
//! - `ModelSplit`: two targets of an InferenceModelRewrite rule.
//!
//! Weights are basis points: 10,000 is 100 %. Progress lives in `status`, so a
//! restarted controller resumes where it stopped. Admin actions are written to
//! `status.intent` and acknowledged through `status.observedIntentNonce`.
//!
//! CEL rules (`x-kubernetes-validations`) check what one object can check about
//! itself: the fields each mode needs, distinct stable and canary, unique and
//! increasing step weights (unique plus Kubernetes' `isSorted()` list function),
//! unique metric names, a limit on every metric, a query for `Query` metrics and
//! a Prometheus source for them, steps within `maxWeight`. The controller still
//! checks step order itself (`InvalidSpec`) for objects written before the rule.
//!
//! Departures from the reference CR (docs/upstream.md#rollout-resource), kept small
//! on purpose: no `writeMode: Owned`, `hooks`, `headerRoute` or `mirror` yet (they
//! would be accepted and ignored, which is worse than absent); `rollback.mode` has
//! only `Immediate`; metric thresholds are plain numbers in the metric's base unit
//! (ratios 0–1, seconds, tokens per second) as in PromQL, not quantity strings.

mod analysis;
mod status;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use analysis::{
    AnalysisSource, AnalysisSpec, EppSource, MetricCheck, MetricType, NoDataPolicy, NoDataSpec,
    OnFail, PrometheusSource, StatusClass,
};
pub use status::{
    AbortStatus, AnalysisStatus, AppliedWeights, InferenceRolloutStatus, Intent, IntentAction,
    MetricVerdict, PauseReason, PauseStatus, Phase, PromoteMode, RECENT_INTENT_NONCES, Verdict,
    Weights, WeightsStatus, condition_type,
};

/// The API group of [`InferenceRollout`].
pub const ROLLOUT_GROUP: &str = "rollout.switchyard.dev";
/// The API version of [`InferenceRollout`].
pub const ROLLOUT_VERSION: &str = "v1alpha1";
/// The kind of [`InferenceRollout`].
pub const ROLLOUT_KIND: &str = "InferenceRollout";
/// 100 % in basis points; stable and canary weights always sum to this.
pub const FULL_WEIGHT: i32 = 10_000;
/// A Gateway API duration: 1 to 4 parts like `1h`, `10m`, `30s`, `500ms`.
pub const DURATION_PATTERN: &str = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$";

/// The desired state of an [`InferenceRollout`].
// Two printer columns are integers; clippy reads the repeated `type_` as a duplicate attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "rollout.switchyard.dev",
    version = "v1alpha1",
    kind = "InferenceRollout",
    namespaced,
    status = "InferenceRolloutStatus",
    shortname = "infrollout",
    derive = "PartialEq",
    schema = "manual",
    doc = "InferenceRollout shifts traffic from a stable to a canary inference backend step by step, judged on inference metrics.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Step", type_ = "integer", json_path = ".status.currentStep"),
    printcolumn(
        name = "Canary",
        type_ = "integer",
        json_path = ".status.weights.applied.canary"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct InferenceRolloutSpec {
    /// Stops progress (weights stay where they are) while true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,

    /// What traffic is split, and between which two backends.
    pub target: RolloutTarget,

    /// The steps and their cadence.
    pub strategy: Strategy,

    /// Clamps applied to every weight the controller writes.
    #[serde(default)]
    pub safety: Safety,

    /// How each step is judged.
    #[serde(default)]
    pub analysis: AnalysisSpec,
}

/// What traffic is split.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
#[x_kube(
    validation = Rule::new("self.mode != 'PoolSplit' || (has(self.route) && has(self.stable) && has(self.canary))").message("PoolSplit needs route, stable and canary"),
    validation = Rule::new("self.mode != 'ModelSplit' || has(self.modelSplit)").message("ModelSplit needs modelSplit"),
    // Field by field: CEL has no `!=` on objects, and kube-apiserver refuses the CRD whose
    // rule compares two. `group` and `kind` are defaulted, so they are set by now.
    validation = Rule::new("!has(self.stable) || !has(self.canary) || self.stable.group != self.canary.group || self.stable.kind != self.canary.kind || self.stable.name != self.canary.name").message("stable and canary must be different backends"),
)]
pub struct RolloutTarget {
    /// `PoolSplit` (two InferencePools behind one HTTPRoute rule) or `ModelSplit`
    /// (two targets of an InferenceModelRewrite).
    pub mode: SplitMode,

    /// The HTTPRoute rule whose two backendRefs are weighted (PoolSplit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteTarget>,

    /// The backend currently serving traffic (PoolSplit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<BackendTarget>,

    /// The new backend traffic moves to (PoolSplit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<BackendTarget>,

    /// The InferenceModelRewrite rule whose two targets are weighted (ModelSplit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_split: Option<ModelSplitTarget>,
}

/// How traffic is split between stable and canary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SplitMode {
    /// Weights of two backendRefs in one HTTPRoute rule.
    PoolSplit,
    /// Weights of two targets in one InferenceModelRewrite rule.
    ModelSplit,
}

/// One named rule of an HTTPRoute in the rollout's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteTarget {
    /// The HTTPRoute's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// The rule's `name` (Gateway API `rules[].name`). Required, so the
    /// controller's patch can check it still edits the rule it read.
    #[schemars(length(min = 1, max = 253))]
    pub rule_name: String,

    /// What to do when someone else changed the weights: `Pause` (default),
    /// `Revert` to ours, or `Adopt` theirs.
    #[serde(default)]
    pub drift_policy: DriftPolicy,
}

/// The reaction to weights changed by someone other than the controller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DriftPolicy {
    /// Stop progress and wait for an admin (resume adopts the route's weights).
    #[default]
    Pause,
    /// Write our weights back.
    Revert,
    /// Take the route's weights as the new applied weights and carry on.
    Adopt,
}

/// A backendRef the rollout weighs: group, kind and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendTarget {
    /// The backend's API group; `inference.networking.k8s.io` by default.
    #[serde(default = "default_backend_group")]
    #[schemars(length(max = 253), regex(pattern = crate::schema::GROUP_PATTERN))]
    pub group: String,

    /// The backend's kind; `InferencePool` by default.
    #[serde(default = "default_backend_kind")]
    #[schemars(length(min = 1, max = 63), regex(pattern = crate::schema::KIND_PATTERN))]
    pub kind: String,

    /// The backend's name, in the rollout's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Two targets of one InferenceModelRewrite rule.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.stable != self.canary").message("stable and canary models must differ"))]
pub struct ModelSplitTarget {
    /// The InferenceModelRewrite's name, in the rollout's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub rewrite_ref: String,

    /// The requested model whose rule is weighted (the rule's `Exact` match).
    #[schemars(length(min = 1))]
    pub model: String,

    /// The stable target's `modelRewrite`.
    #[schemars(length(min = 1))]
    pub stable: String,

    /// The canary target's `modelRewrite`.
    #[schemars(length(min = 1))]
    pub canary: String,
}

/// The steps and their cadence.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.steps.all(s, s.weight <= self.maxWeight)").message("every step weight must be at most maxWeight"))]
pub struct Strategy {
    /// The canary weights to pass through, strictly increasing. After the last
    /// step is verified the canary is promoted to 10,000 and stable to 0.
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(
        validation = Rule::new("self.all(a, self.exists_one(b, a.weight == b.weight))").message("step weights must be unique"),
        validation = Rule::new("self.map(s, s.weight).isSorted()").message("step weights must increase from one step to the next"),
    )]
    pub steps: Vec<Step>,

    /// How often the canary is judged once a step's weight is live and settled.
    #[serde(default = "default_analysis_interval")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub analysis_interval: String,

    /// Passing analyses needed before leaving a step.
    #[serde(default = "default_successful_checks")]
    #[schemars(range(min = 1, max = 1000))]
    pub successful_checks_per_step: i32,

    /// Failed analyses (within the rollout) that trigger a rollback.
    #[serde(default = "default_failure_threshold")]
    #[schemars(range(min = 1, max = 1000))]
    pub failure_threshold: i32,

    /// Time after a weight is verified before the first analysis window opens;
    /// at least the p99 request duration, so windows see the new split only.
    #[serde(default = "default_settle_time")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub settle_time: String,

    /// A step that makes no progress this long (canary never ready, weight never
    /// applied) rolls back.
    #[serde(default = "default_progress_deadline")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub progress_deadline: String,

    /// No step nor admin override may give the canary more than this, except
    /// the final promotion.
    #[serde(default = "default_max_weight")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_weight: i32,

    /// How to roll back.
    #[serde(default)]
    pub rollback: Rollback,
}

/// One step of a [`Strategy`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
pub struct Step {
    /// The canary's weight in basis points (1 to 10,000); stable gets the rest.
    #[schemars(range(min = 1, max = 10000))]
    pub weight: i32,

    /// The least time to spend on this step, whatever the analyses say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub min_duration: Option<String>,

    /// A manual gate: once this step's analyses pass, wait for `resume` or
    /// `promote` from an admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<ManualPause>,
}

/// A manual gate; it has no fields yet (`pause: {}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ManualPause {}

/// How to roll back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Rollback {
    /// Only `Immediate`: all traffic back to stable in one write.
    #[serde(default)]
    pub mode: RollbackMode,
}

/// How traffic returns to stable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RollbackMode {
    /// All traffic back to stable in one write.
    #[default]
    Immediate,
}

/// Clamps applied to every weight written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
pub struct Safety {
    /// The canary gets weight 0 while it has fewer ready endpoints than this.
    #[serde(default = "default_min_ready")]
    #[schemars(range(min = 1, max = 10000))]
    pub min_canary_ready_endpoints: i32,

    /// Caps the canary's weight by its share of ready endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_guard: Option<CapacityGuard>,
}

/// The canary's weight may not exceed
/// `canaryReady / (canaryReady + stableReady) × (1 + headroomPercent / 100)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapacityGuard {
    /// How far above its endpoint share the canary's weight may go, in percent.
    #[serde(default = "default_headroom")]
    #[schemars(range(min = 0, max = 1000))]
    pub headroom_percent: i32,
}

// === defaults ===

fn default_backend_group() -> String {
    crate::reference::INFERENCE_POOL_GROUP.to_owned()
}

fn default_backend_kind() -> String {
    crate::reference::INFERENCE_POOL_KIND.to_owned()
}

fn default_analysis_interval() -> String {
    "1m".to_owned()
}

fn default_successful_checks() -> i32 {
    5
}

fn default_failure_threshold() -> i32 {
    3
}

fn default_settle_time() -> String {
    "2m".to_owned()
}

fn default_progress_deadline() -> String {
    "45m".to_owned()
}

fn default_max_weight() -> i32 {
    FULL_WEIGHT
}

fn default_min_ready() -> i32 {
    1
}

fn default_headroom() -> i32 {
    20
}

impl Default for Safety {
    fn default() -> Self {
        Self {
            min_canary_ready_endpoints: default_min_ready(),
            capacity_guard: None,
        }
    }
}

// === impl BackendTarget ===

impl BackendTarget {
    /// An InferencePool called `name`.
    pub fn pool(name: impl Into<String>) -> Self {
        Self {
            group: default_backend_group(),
            kind: default_backend_kind(),
            name: name.into(),
        }
    }

    /// Whether a route's backendRef points here (Gateway API defaults applied).
    pub fn matches(&self, backend: &crate::httproute::HttpBackendRef) -> bool {
        backend.effective_group() == self.group
            && backend.effective_kind() == self.kind
            && backend.name == self.name
    }
}

// === impl Strategy ===

impl Strategy {
    /// A strategy with these step weights and every other field defaulted.
    pub fn with_weights(weights: &[i32]) -> Self {
        Self {
            steps: weights
                .iter()
                .map(|&weight| Step {
                    weight,
                    min_duration: None,
                    pause: None,
                })
                .collect(),
            analysis_interval: default_analysis_interval(),
            successful_checks_per_step: default_successful_checks(),
            failure_threshold: default_failure_threshold(),
            settle_time: default_settle_time(),
            progress_deadline: default_progress_deadline(),
            max_weight: default_max_weight(),
            rollback: Rollback::default(),
        }
    }
}

/// Parses a Gateway API duration ([`DURATION_PATTERN`]) into milliseconds, with the
/// workspace's one duration grammar in its Gateway API profile
/// ([`switchyard_runtime::duration::parse_gateway`]). `None` when it does not match the
/// pattern.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    switchyard_runtime::duration::parse_gateway(text)
        .ok()
        .and_then(|duration| u64::try_from(duration.as_millis()).ok())
}

// === impl InferenceRollout ===

// The root schema is written by hand (`schema = "manual"`) so it carries
// `apiVersion`/`kind`/`metadata` like the other kinds we serve.
impl JsonSchema for InferenceRollout {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "InferenceRollout".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        crate::schema::custom_resource_root::<InferenceRolloutSpec, InferenceRolloutStatus>(
            generator,
            "InferenceRollout shifts traffic from a stable to a canary inference backend step by step, judged on inference metrics.",
            crate::schema::SpecRequired::Yes,
        )
    }
}

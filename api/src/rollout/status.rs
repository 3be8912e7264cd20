//! `status` of an InferenceRollout: all progress lives here, so a restarted
//! controller resumes mid-step, plus the admin's pending intent.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;

use super::FULL_WEIGHT;

/// How many nonces of earlier admin intents `status.recentIntentNonces` keeps.
pub const RECENT_INTENT_NONCES: usize = 16;

/// The observed state of an `InferenceRollout`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
pub struct InferenceRolloutStatus {
    /// The `.metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Hash of `target` and `strategy`; when it changes the rollout restarts at step 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_hash: Option<String>,

    /// Where the rollout is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// Index into `spec.strategy.steps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub current_step: Option<i32>,

    /// When the current step began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<Time>,

    /// What the controller wants and what the route carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<WeightsStatus>,

    /// Analysis counters of the current step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisStatus>,

    /// Why progress stopped, while paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseStatus>,

    /// Why the rollout was aborted or rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortStatus>,

    /// The last admin action, written by the admin API (field manager
    /// `inference-rollout-admin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,

    /// The nonce of the last intent the controller acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_intent_nonce: Option<String>,

    /// The nonces of the intents before the current one, newest first (at most
    /// [`RECENT_INTENT_NONCES`]), written by the admin API with each new intent,
    /// so a late retry of an older action (same `Idempotency-Key`) is answered
    /// as a repeat instead of running again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub recent_intent_nonces: Vec<String>,

    /// `Ready`, `RouteApplied`, `AnalysisPassing`, `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 8),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"])
    )]
    pub conditions: Vec<Condition>,
}

impl InferenceRolloutStatus {
    /// Puts `intent` in place of the pending one, whose nonce moves to the front of
    /// `recentIntentNonces` (bounded to [`RECENT_INTENT_NONCES`], oldest dropped). The admin
    /// API and local mode both record intents this way.
    pub fn record_intent(&mut self, intent: Intent) {
        if let Some(previous) = self.intent.take() {
            self.recent_intent_nonces.retain(|n| *n != previous.nonce);
            self.recent_intent_nonces.insert(0, previous.nonce);
            self.recent_intent_nonces.truncate(RECENT_INTENT_NONCES);
        }
        self.intent = Some(intent);
    }
}

/// Where a rollout is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Not started yet.
    Pending,
    /// Moving through the steps.
    Progressing,
    /// Stopped; see `status.pause`.
    Paused,
    /// The canary carries all traffic.
    Succeeded,
    /// Moving all traffic back to stable after failed analyses or a missed deadline.
    RollingBack,
    /// Stopped by an admin; all traffic back on stable.
    Aborted,
    /// Rolled back; all traffic on stable. `retry` starts again.
    Failed,
}

/// A stable/canary split in basis points. The constructor keeps the invariant:
/// both in 0..=10,000, summing to 10,000 (so never both 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Weights {
    /// The stable backend's weight.
    #[schemars(range(min = 0, max = 10000))]
    pub stable: i32,
    /// The canary backend's weight.
    #[schemars(range(min = 0, max = 10000))]
    pub canary: i32,
}

/// Desired and applied weights.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
pub struct WeightsStatus {
    /// What the controller computed (step, admin override and clamps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<Weights>,
    /// What the route carries, once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedWeights>,
    /// A canary weight that replaces the step's until the step changes: an
    /// admin's `PUT weight` (which also pauses) or weights adopted from the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_canary: Option<i32>,
}

/// The weights on the route and when its parents confirmed them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
pub struct AppliedWeights {
    /// The stable backend's weight on the route.
    pub stable: i32,
    /// The canary backend's weight on the route.
    pub canary: i32,
    /// The route's `metadata.generation` after the write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_generation: Option<i64>,
    /// When every parent reported `Accepted` and `ResolvedRefs` at that generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<Time>,
}

/// Analysis counters of the current step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
pub struct AnalysisStatus {
    /// When the last analysis window ended (the next one starts here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_window_end: Option<Time>,
    /// Passing analyses in this step.
    #[serde(default)]
    pub successful_checks: i32,
    /// Failed analyses in this rollout (not reset between steps).
    #[serde(default)]
    pub failed_checks: i32,
    /// Consecutive windows without enough data.
    #[serde(default)]
    pub no_data_windows: i32,
    /// The verdicts of the last analysis.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub last: Vec<MetricVerdict>,
}

/// One metric's result in one analysis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
pub struct MetricVerdict {
    /// The metric's name.
    pub name: String,
    /// The canary's value, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<f64>,
    /// The stable's value, when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<f64>,
    /// Canary requests in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<i64>,
    /// The result.
    pub verdict: Verdict,
    /// Which limit failed, or why there was no data.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// One metric's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Verdict {
    /// Every limit holds.
    Pass,
    /// A limit is broken.
    Fail,
    /// Not enough data to judge.
    NoData,
}

/// Why progress stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PauseStatus {
    /// Why.
    pub reason: PauseReason,
    /// Since when.
    pub since: Time,
    /// Details for humans.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// Why progress stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PauseReason {
    /// A step with `pause: {}` passed its analyses and waits for an admin.
    ManualStep,
    /// The canary is shedding load: a capacity problem, not a regression.
    ShedRate,
    /// Too many windows in a row without enough data.
    NoData,
    /// Someone else changed the weights (`driftPolicy: Pause`).
    RouteDrift,
    /// An admin paused or set a weight by hand.
    Admin,
    /// `spec.paused` is true.
    Spec,
    /// A metric with `onFail: Pause` failed.
    MetricFailed,
}

/// Why the rollout was aborted or rolled back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AbortStatus {
    /// A CamelCase reason, e.g. `AnalysisFailed`, `ProgressDeadlineExceeded`, `Admin`.
    pub reason: String,
    /// Details for humans.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When.
    pub at: Time,
}

/// An admin action waiting for the controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
pub struct Intent {
    /// What to do.
    pub action: IntentAction,
    /// Unique per action (the `Idempotency-Key`); the controller echoes it in
    /// `observedIntentNonce` once done.
    #[schemars(length(min = 1, max = 128))]
    pub nonce: String,
    /// Who asked (the authenticated user).
    pub by: String,
    /// When.
    pub at: Time,
    /// `promote`: one step or straight to full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<PromoteMode>,
    /// `setWeight`: the canary's weight in basis points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10000))]
    pub canary_weight: Option<i32>,
    /// `pause`/`abort`: why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// An admin action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum IntentAction {
    /// Stop progress.
    Pause,
    /// Carry on (clears any pause and manual weight).
    Resume,
    /// Skip analysis: next step, or full promotion.
    Promote,
    /// All traffic back to stable, and stop.
    Abort,
    /// Start again at step 0 after Aborted or Failed.
    Retry,
    /// Set the canary weight by hand (pauses progress).
    SetWeight,
}

/// How far `promote` goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PromoteMode {
    /// To the next step.
    Step,
    /// To 100 % canary.
    Full,
}

/// Condition types an InferenceRollout carries.
pub mod condition_type {
    /// The rollout is done (Succeeded), or why not.
    pub const READY: &str = "Ready";
    /// The desired weights are on the route and its parents accepted them.
    pub const ROUTE_APPLIED: &str = "RouteApplied";
    /// The last analysis passed.
    pub const ANALYSIS_PASSING: &str = "AnalysisPassing";
    /// Rolled back, aborted, or the spec is invalid.
    pub const DEGRADED: &str = "Degraded";
}

// === impl Weights ===

impl Weights {
    /// All traffic on stable.
    pub const ALL_STABLE: Self = Self {
        stable: FULL_WEIGHT,
        canary: 0,
    };
    /// All traffic on the canary.
    pub const ALL_CANARY: Self = Self {
        stable: 0,
        canary: FULL_WEIGHT,
    };

    /// `canary` basis points to the canary (clamped to 0..=10,000), the rest to stable.
    pub fn with_canary(canary: i32) -> Self {
        let canary = canary.clamp(0, FULL_WEIGHT);
        Self {
            stable: FULL_WEIGHT - canary,
            canary,
        }
    }

    /// Whether the invariant holds (each in range, sum 10,000).
    pub fn is_valid(self) -> bool {
        (0..=FULL_WEIGHT).contains(&self.stable)
            && (0..=FULL_WEIGHT).contains(&self.canary)
            && self.stable + self.canary == FULL_WEIGHT
    }
}

impl AppliedWeights {
    /// The split, without the route generation and verification time.
    pub fn weights(&self) -> Weights {
        Weights {
            stable: self.stable,
            canary: self.canary,
        }
    }
}

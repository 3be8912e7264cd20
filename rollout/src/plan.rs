//! The pure planner: `plan(spec, status, observations) → Decision`.
//!
//! Level-triggered: everything the rollout has done lives in `status`, so the
//! same inputs always give the same decision and a restarted controller picks
//! up mid-step. One call:
//! 1. applies state changes: a changed spec hash (restart at step 0), the
//!    admin's pending intent, `spec.paused`;
//! 2. reads the route: records a write that landed, detects drift (someone
//!    else's weights) and applies the drift policy, verifies applied weights once
//!    the parents report them;
//! 3. moves the state machine: promotion done, analysis window consumed
//!    (pass / fail / shed / no data), step advanced, deadline missed;
//! 4. computes the desired weights from the final state, with the safety clamps,
//!    and asks for a write when the route does not carry them.

mod conditions;
mod desired;
mod intent;
mod progress;
mod transitions;

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use switchyard_api::InferenceRolloutSpec;
use switchyard_api::rollout::{
    AbortStatus, AnalysisStatus, InferenceRolloutStatus, MetricVerdict, Phase, RolloutTarget,
    SplitMode, Weights, WeightsStatus, parse_duration_ms,
};

use crate::route::RouteView;

pub use desired::{Clamp, clamp, max_manual_weight, step_target};
pub use intent::intent_allowed;
pub use progress::{Window, analysis_window};

/// Everything the planner knows about the world besides spec and status.
#[derive(Clone, Debug, PartialEq)]
pub struct Observations {
    /// The current time.
    pub now: Timestamp,
    /// The rollout's `metadata.generation`.
    pub generation: Option<i64>,
    /// The route as read.
    pub route: RouteObservation,
    /// Ready endpoints of the canary backend.
    pub canary_ready: u32,
    /// Ready endpoints of the stable backend.
    pub stable_ready: u32,
    /// The measured analysis window, when [`analysis_window`] said one was due.
    pub analysis: Option<WindowResult>,
    /// Another rollout that owns the same route rule, if any.
    pub conflict_with: Option<String>,
}

/// The route as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteObservation {
    /// The rule and both backends were found.
    Found(RouteView),
    /// The route, the rule or a backend is missing; the message says which.
    Missing(String),
}

/// Verdicts of one analysis window.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowResult {
    /// Where the window ended.
    pub end: Timestamp,
    /// One verdict per metric, in spec order.
    pub verdicts: Vec<MetricVerdict>,
}

/// What the shell should do.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The status to write (only when it differs from the old one).
    pub status: InferenceRolloutStatus,
    /// Weights to patch onto the route (compare-and-swap on what was read).
    pub write: Option<Weights>,
    /// Kubernetes events to record.
    pub events: Vec<PlannedEvent>,
    /// When to look again at the latest.
    pub requeue_after: Duration,
}

/// A Kubernetes event to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEvent {
    /// CamelCase reason, e.g. `WeightChanged`.
    pub reason: &'static str,
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    /// What happened.
    pub message: String,
}

/// Time to look again while a write or its verification is pending.
const PENDING_REQUEUE: Duration = Duration::from_secs(5);
/// Time to look again while paused (an admin action or route event wakes us sooner).
const PAUSED_REQUEUE: Duration = Duration::from_secs(60);
/// Time to look again once finished.
const IDLE_REQUEUE: Duration = Duration::from_secs(300);

/// Validated durations of a spec, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// `analysisInterval`.
    pub interval_ms: i64,
    /// `settleTime`.
    pub settle_ms: i64,
    /// `progressDeadline`.
    pub deadline_ms: i64,
}

/// Checks what the CRD's CEL rules cannot: step order, durations, and that
/// the split mode names both arms.
pub fn validate(spec: &InferenceRolloutSpec) -> Result<Timings, String> {
    validate_target(&spec.target)?;
    let steps = &spec.strategy.steps;
    if steps.is_empty() {
        return Err("strategy.steps is empty; list at least one canary weight".into());
    }
    for (i, pair) in steps.windows(2).enumerate() {
        if pair[1].weight <= pair[0].weight {
            return Err(format!(
                "strategy.steps[{}].weight {} must be above steps[{i}].weight {}",
                i + 1,
                pair[1].weight,
                pair[0].weight
            ));
        }
    }
    // Only the CRD schema bounds maxWeight; local mode and objects written
    // before the schema reach here unchecked, and the clamps need max >= 0.
    let max_weight = spec.strategy.max_weight;
    if !(1..=switchyard_api::rollout::FULL_WEIGHT).contains(&max_weight) {
        return Err(format!(
            "strategy.maxWeight {max_weight} must be 1 to 10000 (basis points the canary may reach)"
        ));
    }
    for (i, step) in steps.iter().enumerate() {
        if !(1..=switchyard_api::rollout::FULL_WEIGHT).contains(&step.weight) {
            return Err(format!("strategy.steps[{i}].weight must be 1 to 10000"));
        }
        if let Some(text) = &step.min_duration {
            duration(text, &format!("strategy.steps[{i}].minDuration"))?;
        }
    }
    Ok(Timings {
        interval_ms: duration(
            &spec.strategy.analysis_interval,
            "strategy.analysisInterval",
        )?
        .max(1),
        settle_ms: duration(&spec.strategy.settle_time, "strategy.settleTime")?,
        deadline_ms: duration(
            &spec.strategy.progress_deadline,
            "strategy.progressDeadline",
        )?,
    })
}

/// Both arms of the split, named and distinct. The planner only sees
/// weights, so "stable" and "canary" mean the same in both modes.
fn validate_target(target: &RolloutTarget) -> Result<(), String> {
    match target.mode {
        SplitMode::PoolSplit => {
            let (Some(_), Some(stable), Some(canary)) =
                (&target.route, &target.stable, &target.canary)
            else {
                return Err("PoolSplit needs target.route, target.stable and target.canary".into());
            };
            if stable == canary {
                return Err(format!(
                    "target.stable and target.canary are both {} {:?}; name two different backends",
                    stable.kind, stable.name
                ));
            }
        }
        SplitMode::ModelSplit => {
            let Some(split) = &target.model_split else {
                return Err(
                    "ModelSplit needs target.modelSplit: {rewriteRef, model, stable, canary}"
                        .into(),
                );
            };
            for (field, value) in [
                ("rewriteRef", &split.rewrite_ref),
                ("model", &split.model),
                ("stable", &split.stable),
                ("canary", &split.canary),
            ] {
                if value.is_empty() {
                    return Err(format!("target.modelSplit.{field} is empty"));
                }
            }
            if split.stable == split.canary {
                return Err(format!(
                    "target.modelSplit.stable and .canary are both {:?}; name two different modelRewrite targets",
                    split.stable
                ));
            }
        }
    }
    Ok(())
}

fn duration(text: &str, field: &str) -> Result<i64, String> {
    parse_duration_ms(text)
        .and_then(|ms| i64::try_from(ms).ok())
        .ok_or_else(|| format!("{field} {text:?} is not a duration like 30s, 5m or 1h30m"))
}

/// Hash of `target` and `strategy`: when it changes, the rollout restarts.
pub fn rollout_hash(spec: &InferenceRolloutSpec) -> String {
    let bytes = serde_json::to_vec(&(&spec.target, &spec.strategy)).unwrap_or_default();
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes))
}

/// Plans one reconcile. See the module docs for the order of the steps.
pub fn plan(
    spec: &InferenceRolloutSpec,
    prior: &InferenceRolloutStatus,
    observations: &Observations,
) -> Decision {
    let mut planner = Planner {
        spec,
        obs: observations,
        status: prior.clone(),
        events: Vec::new(),
        write: None,
        requeue_after: IDLE_REQUEUE,
        blocker: None,
    };
    planner.status.observed_generation = observations.generation;
    match validate(spec) {
        Err(message) => planner.invalid(message),
        Ok(timings) => planner.run(timings),
    }
    conditions::update(&mut planner);
    Decision {
        status: planner.status,
        write: planner.write,
        events: planner.events,
        requeue_after: planner.requeue_after,
    }
}

/// Why the rollout cannot move right now; shown in conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Blocker {
    InvalidSpec(String),
    Conflict(String),
    RouteMissing(String),
}

pub(crate) struct Planner<'a> {
    pub(crate) spec: &'a InferenceRolloutSpec,
    pub(crate) obs: &'a Observations,
    pub(crate) status: InferenceRolloutStatus,
    pub(crate) events: Vec<PlannedEvent>,
    pub(crate) write: Option<Weights>,
    pub(crate) requeue_after: Duration,
    pub(crate) blocker: Option<Blocker>,
}

// === impl Planner ===

impl Planner<'_> {
    fn run(&mut self, timings: Timings) {
        self.restart_on_spec_change();
        if let Some(owner) = &self.obs.conflict_with {
            let message = format!(
                "InferenceRollout {owner:?} already manages this route rule; this one waits until it is deleted"
            );
            if !self.ready_reason_is("RouteConflict") {
                self.event("RouteConflict", true, message.clone());
            }
            self.blocker = Some(Blocker::Conflict(message));
            self.requeue_after = PAUSED_REQUEUE;
            return;
        }
        intent::apply(self);
        intent::apply_spec_paused(self);
        let route = match &self.obs.route {
            RouteObservation::Found(view) => view.clone(),
            RouteObservation::Missing(message) => {
                self.blocker = Some(Blocker::RouteMissing(message.clone()));
                self.requeue_after = PENDING_REQUEUE;
                progress::check_deadline(self, timings, false);
                return;
            }
        };
        let hold_writes = progress::observe_route(self, &route);
        progress::advance_state(self, timings);
        if !hold_writes {
            self.settle_desired(&route);
        }
        self.requeue_after = progress::requeue_after(self, timings, hold_writes);
    }

    fn invalid(&mut self, message: String) {
        if !self.ready_reason_is("InvalidSpec") {
            self.event("InvalidSpec", true, message.clone());
        }
        self.blocker = Some(Blocker::InvalidSpec(message));
        self.requeue_after = IDLE_REQUEUE;
    }

    /// Whether the `Ready` condition already shows `reason`, so an event is
    /// recorded once per change rather than once per reconcile.
    fn ready_reason_is(&self, reason: &str) -> bool {
        self.status
            .conditions
            .iter()
            .find(|c| c.type_ == switchyard_api::rollout::condition_type::READY)
            .is_some_and(|c| c.reason == reason)
    }

    fn restart_on_spec_change(&mut self) {
        let hash = rollout_hash(self.spec);
        match self.status.rollout_hash.as_deref() {
            Some(old) if old == hash => {}
            Some(_) => {
                self.event(
                    "Restarted",
                    false,
                    "target or strategy changed: starting again at step 0".into(),
                );
                self.start();
            }
            None => {
                self.event("Started", false, "rollout started at step 0".into());
                self.start();
            }
        }
        self.status.rollout_hash = Some(hash);
    }

    /// Step 0, counters cleared; weights already on the route are kept.
    pub(crate) fn start(&mut self) {
        self.status.phase = Some(Phase::Progressing);
        self.status.current_step = Some(0);
        self.status.step_started_at = Some(Time(self.obs.now));
        self.status.analysis = Some(AnalysisStatus::default());
        self.status.pause = None;
        self.status.abort = None;
        if let Some(weights) = &mut self.status.weights {
            weights.manual_canary = None;
        }
    }

    /// Starts rolling back: all traffic to stable.
    pub(crate) fn roll_back(&mut self, reason: &str, message: String) {
        self.event("RollingBack", true, message.clone());
        self.status.phase = Some(Phase::RollingBack);
        self.status.pause = None;
        self.status.abort = Some(AbortStatus {
            reason: reason.to_owned(),
            message,
            at: Time(self.obs.now),
        });
        self.weights_mut().manual_canary = None;
    }

    /// Computes the desired split from the final state and asks for a write
    /// when the route does not carry it.
    fn settle_desired(&mut self, route: &RouteView) {
        let Some(desired) = desired::desired(self, route) else {
            return;
        };
        self.weights_mut().desired = Some(desired);
        let applied = self
            .status
            .weights
            .as_ref()
            .and_then(|w| w.applied.as_ref());
        if !route.carries(desired) {
            self.write = Some(desired);
        } else if applied.is_none_or(|a| a.weights() != desired) {
            // Our write landed but its status was lost (or this is a restart):
            // the route is the record. Verification follows on the next look.
            progress::record_landed(self, route, desired);
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        self.status.phase.unwrap_or(Phase::Pending)
    }

    pub(crate) fn step(&self) -> usize {
        self.status
            .current_step
            .and_then(|s| usize::try_from(s).ok())
            .unwrap_or(0)
    }

    pub(crate) fn weights_mut(&mut self) -> &mut WeightsStatus {
        self.status
            .weights
            .get_or_insert_with(WeightsStatus::default)
    }

    pub(crate) fn analysis_mut(&mut self) -> &mut AnalysisStatus {
        self.status
            .analysis
            .get_or_insert_with(AnalysisStatus::default)
    }

    pub(crate) fn event(&mut self, reason: &'static str, warning: bool, message: String) {
        self.events.push(PlannedEvent {
            reason,
            warning,
            message,
        });
    }
}

#[cfg(test)]
mod tests;

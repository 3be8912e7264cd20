//! The desired split: the step's weight (or an admin's), then the safety clamps.

use switchyard_api::InferenceRolloutSpec;
use switchyard_api::rollout::{FULL_WEIGHT, InferenceRolloutStatus, Phase, Weights};

use super::Planner;
use crate::route::RouteView;

/// Why a clamp lowered the canary's weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clamp {
    /// Nothing lowered it.
    None,
    /// Fewer ready canary endpoints than `minCanaryReadyEndpoints`: weight 0.
    CanaryNotReady,
    /// The capacity guard capped it at this many basis points.
    Capacity(i32),
}

/// The canary weight the current step asks for, before clamps: the admin's
/// manual weight or the step's, within `maxWeight`; full once past the last step.
pub fn step_target(spec: &InferenceRolloutSpec, status: &InferenceRolloutStatus) -> i32 {
    let steps = &spec.strategy.steps;
    let step = status
        .current_step
        .and_then(|s| usize::try_from(s).ok())
        .unwrap_or(0);
    let Some(current) = steps.get(step) else {
        return FULL_WEIGHT;
    };
    let manual = status.weights.as_ref().and_then(|w| w.manual_canary);
    match manual {
        Some(weight) => weight.clamp(0, max_manual_weight(spec)),
        None => current.weight.clamp(0, spec.strategy.max_weight.max(0)),
    }
}

/// The most an admin or an adopted route may give the canary: `maxWeight`,
/// and never all of it — stable drops to 0 only through promotion after the
/// last step is verified (or `promote full`).
pub fn max_manual_weight(spec: &InferenceRolloutSpec) -> i32 {
    // Never below 0: `clamp(0, max)` would panic (validation refuses such
    // a spec, but this must hold for any input).
    spec.strategy.max_weight.clamp(0, FULL_WEIGHT - 1)
}

/// Applies the safety clamps to a canary weight: none to a canary with too few
/// ready endpoints; at most its share of ready endpoints plus headroom when the
/// capacity guard is on and stable has endpoints to carry the rest.
pub fn clamp(
    spec: &InferenceRolloutSpec,
    target: i32,
    canary_ready: u32,
    stable_ready: u32,
) -> (i32, Clamp) {
    let target = target.clamp(0, FULL_WEIGHT);
    if target == 0 {
        return (0, Clamp::None);
    }
    let min_ready = u32::try_from(spec.safety.min_canary_ready_endpoints.max(1)).unwrap_or(1);
    if canary_ready < min_ready {
        return (0, Clamp::CanaryNotReady);
    }
    let Some(guard) = &spec.safety.capacity_guard else {
        return (target, Clamp::None);
    };
    if stable_ready == 0 {
        return (target, Clamp::None);
    }
    let headroom = i64::from(guard.headroom_percent.max(0));
    let (canary, total) = (
        i64::from(canary_ready),
        i64::from(canary_ready) + i64::from(stable_ready),
    );
    // ceil(FULL × canary/total × (100 + headroom)/100), in integers.
    let numerator = i64::from(FULL_WEIGHT) * canary * (100 + headroom);
    let denominator = 100 * total;
    let cap = ((numerator + denominator - 1) / denominator).min(i64::from(FULL_WEIGHT));
    let cap = i32::try_from(cap).unwrap_or(FULL_WEIGHT);
    if target > cap {
        (cap, Clamp::Capacity(cap))
    } else {
        (target, Clamp::None)
    }
}

/// The split to put on the route, or `None` to leave the route alone (rolling
/// back onto a stable with no ready endpoints would only trade errors for errors).
pub(super) fn desired(planner: &mut Planner<'_>, route: &RouteView) -> Option<Weights> {
    let obs = planner.obs;
    let previous = planner.status.weights.as_ref().and_then(|w| w.desired);
    let target = match planner.phase() {
        Phase::RollingBack | Phase::Aborted | Phase::Failed => {
            if obs.stable_ready == 0 {
                if !planner.events.iter().any(|e| e.reason == "StableNotReady")
                    && previous != Some(Weights::ALL_STABLE)
                {
                    planner.event(
                        "StableNotReady",
                        true,
                        "stable has no ready endpoints; holding the current weights instead of rolling back onto it".into(),
                    );
                }
                return None;
            }
            return Some(Weights::ALL_STABLE);
        }
        Phase::Succeeded => return Some(Weights::ALL_CANARY),
        Phase::Paused => {
            let weights = planner.status.weights.as_ref();
            weights
                .and_then(|w| w.manual_canary)
                .or_else(|| previous.map(|w| w.canary))
                .unwrap_or_else(|| route.normalized().canary)
                .min(
                    max_manual_weight(planner.spec).max(step_target(planner.spec, &planner.status)),
                )
        }
        Phase::Progressing | Phase::Pending => step_target(planner.spec, &planner.status),
    };
    let (canary, why) = clamp(planner.spec, target, obs.canary_ready, obs.stable_ready);
    let desired = Weights::with_canary(canary);
    if previous != Some(desired) {
        match why {
            Clamp::CanaryNotReady => planner.event(
                "CanaryNotReady",
                true,
                format!(
                    "canary has {} ready endpoints, fewer than minCanaryReadyEndpoints {}: weight 0",
                    obs.canary_ready, planner.spec.safety.min_canary_ready_endpoints
                ),
            ),
            Clamp::Capacity(cap) => planner.event(
                "CapacityGuard",
                false,
                format!(
                    "canary weight capped at {cap} bp ({} of {} ready endpoints)",
                    obs.canary_ready,
                    obs.canary_ready + obs.stable_ready
                ),
            ),
            Clamp::None => {}
        }
    }
    Some(desired)
}

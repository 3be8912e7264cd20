//! Reading the route (landed writes, drift, verification) and moving the state
//! machine (analysis windows, step advance, promotion, rollback, deadline).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use switchyard_api::InferenceRolloutSpec;
use switchyard_api::rollout::{
    AppliedWeights, DriftPolicy, InferenceRolloutStatus, MetricType, NoDataPolicy, OnFail,
    PauseReason, PauseStatus, Phase, Verdict, Weights, parse_duration_ms,
};

use super::desired::{Clamp, clamp, step_target};
use super::transitions::{adopt, advance};
use super::{IDLE_REQUEUE, PAUSED_REQUEUE, PENDING_REQUEUE, Planner, Timings, WindowResult};
use crate::route::RouteView;

/// An analysis window that is due: measure `[start, end]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Where it starts: after the settle time, or where the last one ended.
    pub start: Timestamp,
    /// Where it ends (now).
    pub end: Timestamp,
}

/// The analysis window due at `now`, if any: only while progressing through a
/// step whose desired weights are applied, verified by the route's parents and
/// settled, and at most one per `analysisInterval`.
pub fn analysis_window(
    spec: &InferenceRolloutSpec,
    status: &InferenceRolloutStatus,
    now: Timestamp,
) -> Option<Window> {
    let timings = super::validate(spec).ok()?;
    let start = window_start(spec, status, timings)?;
    let elapsed = now.as_millisecond() - start.as_millisecond();
    (elapsed >= timings.interval_ms).then_some(Window { start, end: now })
}

fn window_start(
    spec: &InferenceRolloutSpec,
    status: &InferenceRolloutStatus,
    timings: Timings,
) -> Option<Timestamp> {
    if status.phase != Some(Phase::Progressing) {
        return None;
    }
    let step = usize::try_from(status.current_step.unwrap_or(0)).ok()?;
    if step >= spec.strategy.steps.len() {
        return None;
    }
    let weights = status.weights.as_ref()?;
    let desired = weights.desired?;
    let applied = weights.applied.as_ref()?;
    if desired.canary == 0 || applied.weights() != desired {
        return None;
    }
    let verified = applied.verified_at.as_ref()?.0;
    let settled = verified.as_millisecond() + timings.settle_ms;
    let last_end = status
        .analysis
        .as_ref()
        .and_then(|a| a.last_window_end.as_ref())
        .map_or(i64::MIN, |t| t.0.as_millisecond());
    Timestamp::from_millisecond(settled.max(last_end)).ok()
}

/// Records what the route shows: a write of ours that landed, someone else's
/// weights (drift), parents confirming the applied weights. Returns whether
/// writes must be held (paused on drift).
pub(super) fn observe_route(planner: &mut Planner<'_>, route: &RouteView) -> bool {
    let now = planner.obs.now;
    let (stable, canary) = route.effective();
    let on_route = |a: &AppliedWeights| (a.stable, a.canary) == (stable, canary);
    let weights = planner.status.weights.clone().unwrap_or_default();
    match (&weights.applied, weights.desired) {
        (Some(applied), _) if on_route(applied) => {
            if applied.route_generation != route.generation {
                // Someone edited another part of the route: same weights, new generation.
                planner.weights_mut().applied = Some(AppliedWeights {
                    route_generation: route.generation,
                    ..applied.clone()
                });
            }
        }
        (_, Some(desired)) if route.carries(desired) => record_landed(planner, route, desired),
        (Some(applied), _) => drift(planner, route, applied),
        (None, _) => {}
    }
    let drift_paused =
        planner.status.pause.as_ref().map(|p| p.reason) == Some(PauseReason::RouteDrift);
    if let Some(applied) = planner.weights_mut().applied.as_mut()
        && applied.verified_at.is_none()
        && on_route(applied)
        && route.parents_accepted
    {
        applied.verified_at = Some(Time(now));
        let message = format!(
            "canary {} bp / stable {} bp is live: every parent accepted route generation {}",
            applied.canary,
            applied.stable,
            route.generation.unwrap_or_default()
        );
        planner.event("WeightChanged", false, message);
    }
    drift_paused
}

pub(super) fn record_landed(planner: &mut Planner<'_>, route: &RouteView, desired: Weights) {
    planner.weights_mut().applied = Some(AppliedWeights {
        stable: desired.stable,
        canary: desired.canary,
        route_generation: route.generation,
        verified_at: None,
    });
}

fn drift(planner: &mut Planner<'_>, route: &RouteView, applied: &AppliedWeights) {
    let (stable, canary) = route.effective();
    let message = format!(
        "someone else set the weights to stable {stable} / canary {canary} (ours: {} / {})",
        applied.stable, applied.canary
    );
    let policy = planner
        .spec
        .target
        .route
        .as_ref()
        .map(|r| r.drift_policy)
        .unwrap_or_default();
    let finished = matches!(
        planner.phase(),
        Phase::Succeeded | Phase::Aborted | Phase::Failed
    );
    match policy {
        DriftPolicy::Revert => {
            planner.event("RouteDrift", true, format!("{message}; reverting"));
        }
        DriftPolicy::Adopt => {
            planner.event("RouteDrift", true, format!("{message}; adopting them"));
            adopt(planner, route, route.normalized());
        }
        DriftPolicy::Pause if finished => {
            // Nothing left to protect: take note and stop fighting.
            planner.event(
                "RouteDrift",
                true,
                format!("{message}; rollout finished, leaving them"),
            );
            adopt(planner, route, route.normalized());
        }
        DriftPolicy::Pause => {
            if planner.status.pause.as_ref().map(|p| p.reason) != Some(PauseReason::RouteDrift) {
                planner.event(
                    "RouteDrift",
                    true,
                    format!("{message}; pausing (resume adopts them)"),
                );
                planner.status.phase = Some(Phase::Paused);
                planner.status.pause = Some(PauseStatus {
                    reason: PauseReason::RouteDrift,
                    since: Time(planner.obs.now),
                    message,
                });
            }
        }
    }
}

/// Moves the state machine after the route has been read.
pub(super) fn advance_state(planner: &mut Planner<'_>, timings: Timings) {
    match planner.phase() {
        Phase::RollingBack if applied_and_verified(planner, Weights::ALL_STABLE) => {
            planner.status.phase = Some(Phase::Failed);
            planner.event("RolledBack", true, "all traffic is back on stable".into());
        }
        Phase::Progressing => progress(planner, timings),
        _ => {}
    }
}

fn progress(planner: &mut Planner<'_>, timings: Timings) {
    let spec = planner.spec;
    let (canary, why) = clamp(
        spec,
        step_target(spec, &planner.status),
        planner.obs.canary_ready,
        planner.obs.stable_ready,
    );
    let desired_now = Weights::with_canary(canary);
    let live = applied_and_verified(planner, desired_now);
    let step = planner.step();
    if step >= spec.strategy.steps.len() {
        if live && desired_now == Weights::ALL_CANARY {
            planner.status.phase = Some(Phase::Succeeded);
            planner.event("Promoted", false, "the canary carries all traffic".into());
        } else {
            check_deadline(planner, timings, true);
        }
        return;
    }
    if !live || desired_now.canary == 0 {
        check_deadline(planner, timings, true);
        return;
    }
    if let Some(result) = &planner.obs.analysis
        && analysis_window(spec, &planner.status, planner.obs.now).is_some()
    {
        consume(planner, result);
    }
    if planner.phase() != Phase::Progressing {
        return;
    }
    let checks = planner
        .status
        .analysis
        .as_ref()
        .map_or(0, |a| a.successful_checks);
    let step_spec = &spec.strategy.steps[step];
    let min_ms = step_spec
        .min_duration
        .as_deref()
        .and_then(parse_duration_ms)
        .and_then(|ms| i64::try_from(ms).ok())
        .unwrap_or(0);
    let started = planner
        .status
        .step_started_at
        .as_ref()
        .map_or(planner.obs.now, |t| t.0);
    let old_enough = planner.obs.now.as_millisecond() - started.as_millisecond() >= min_ms;
    if checks < spec.strategy.successful_checks_per_step || !old_enough {
        return;
    }
    if let Clamp::Capacity(_) = why {
        // The step's weight is not live yet: the canary is capped by capacity.
        check_deadline(planner, timings, true);
        return;
    }
    if step_spec.pause.is_some() {
        planner.status.phase = Some(Phase::Paused);
        planner.status.pause = Some(PauseStatus {
            reason: PauseReason::ManualStep,
            since: Time(planner.obs.now),
            message: format!("step {step} passed its analyses; resume or promote to go on"),
        });
        planner.event(
            "StepPaused",
            false,
            format!("step {step} waits for an admin"),
        );
        return;
    }
    planner.event(
        "StepCompleted",
        false,
        format!(
            "step {step} ({} bp) passed {checks} analyses",
            step_spec.weight
        ),
    );
    advance(planner);
}

fn consume(planner: &mut Planner<'_>, result: &WindowResult) {
    let spec = planner.spec;
    let mut rollback = Vec::new();
    let mut pause: Option<(PauseReason, String)> = None;
    let mut hold = Vec::new();
    for verdict in &result.verdicts {
        let check = spec
            .analysis
            .metrics
            .iter()
            .find(|m| m.name == verdict.name);
        let describe = || format!("{}: {}", verdict.name, verdict.message);
        match verdict.verdict {
            Verdict::Pass => {}
            Verdict::Fail => match check.map_or(OnFail::Rollback, |c| c.effective_on_fail()) {
                OnFail::Rollback => rollback.push(describe()),
                OnFail::Pause => {
                    let reason = if check.is_some_and(|c| c.type_ == MetricType::ShedRate) {
                        PauseReason::ShedRate
                    } else {
                        PauseReason::MetricFailed
                    };
                    pause.get_or_insert((reason, describe()));
                }
            },
            Verdict::NoData => {
                let policy = check
                    .and_then(|c| c.no_data)
                    .unwrap_or(spec.analysis.no_data.policy);
                match policy {
                    NoDataPolicy::Hold => hold.push(describe()),
                    NoDataPolicy::Fail => rollback.push(describe()),
                    NoDataPolicy::Pass => {}
                }
            }
        }
    }
    let analysis = planner.analysis_mut();
    analysis.last = result.verdicts.clone();
    analysis.last_window_end = Some(Time(result.end));
    if !rollback.is_empty() {
        analysis.failed_checks += 1;
        let failed = analysis.failed_checks;
        let threshold = spec.strategy.failure_threshold;
        let message = format!(
            "analysis failed ({failed}/{threshold}): {}",
            rollback.join("; ")
        );
        planner.event("AnalysisFailed", true, message.clone());
        if failed >= threshold {
            planner.roll_back("AnalysisFailed", message);
        }
    } else if let Some((reason, message)) = pause {
        planner.status.phase = Some(Phase::Paused);
        planner.status.pause = Some(PauseStatus {
            reason,
            since: Time(planner.obs.now),
            message: message.clone(),
        });
        planner.event("Paused", true, format!("{reason:?}: {message}"));
    } else if !hold.is_empty() {
        analysis.no_data_windows += 1;
        let windows = analysis.no_data_windows;
        let limit = spec.analysis.no_data.limit;
        let message = format!("no data ({windows}/{limit}): {}", hold.join("; "));
        planner.event("NoData", true, message.clone());
        if windows >= limit {
            planner.status.phase = Some(Phase::Paused);
            planner.status.pause = Some(PauseStatus {
                reason: PauseReason::NoData,
                since: Time(planner.obs.now),
                message,
            });
        }
    } else {
        analysis.successful_checks += 1;
        analysis.no_data_windows = 0;
    }
}

fn applied_and_verified(planner: &Planner<'_>, weights: Weights) -> bool {
    planner
        .status
        .weights
        .as_ref()
        .and_then(|w| w.applied.as_ref())
        .is_some_and(|a| a.weights() == weights && a.verified_at.is_some())
}

/// Rolls back when the current step has been blocked (weight not live, canary
/// not ready) for longer than `progressDeadline`.
pub(super) fn check_deadline(planner: &mut Planner<'_>, timings: Timings, blocked: bool) {
    if !blocked || planner.phase() != Phase::Progressing {
        return;
    }
    let Some(started) = planner.status.step_started_at.as_ref().map(|t| t.0) else {
        return;
    };
    if planner.obs.now.as_millisecond() - started.as_millisecond() > timings.deadline_ms {
        let message = format!(
            "step {} made no progress within progressDeadline {}",
            planner.step(),
            planner.spec.strategy.progress_deadline
        );
        planner.roll_back("ProgressDeadlineExceeded", message);
    }
}

/// When to look again.
pub(super) fn requeue_after(planner: &Planner<'_>, timings: Timings, hold: bool) -> Duration {
    match planner.phase() {
        Phase::Paused | Phase::Pending if hold || planner.write.is_none() => return PAUSED_REQUEUE,
        Phase::Succeeded | Phase::Aborted | Phase::Failed if planner.write.is_none() => {
            return IDLE_REQUEUE;
        }
        _ => {}
    }
    if planner.write.is_some() {
        return PENDING_REQUEUE;
    }
    match window_start(planner.spec, &planner.status, timings) {
        Some(start) => {
            let due = start.as_millisecond() + timings.interval_ms;
            let wait = (due - planner.obs.now.as_millisecond())
                .clamp(1_000, timings.interval_ms.max(1_000));
            Duration::from_millis(u64::try_from(wait).unwrap_or(1_000))
        }
        None => PENDING_REQUEUE,
    }
}

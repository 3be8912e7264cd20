//! The four conditions, recomputed from the final state of every plan.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use switchyard_api::rollout::{Phase, Verdict, condition_type};
use switchyard_api::{Condition, ConditionStatus};

use super::{Blocker, Planner, RouteObservation};

pub(super) fn update(planner: &mut Planner<'_>) {
    let ready = ready(planner);
    let route = route_applied(planner);
    let analysis = analysis_passing(planner);
    let degraded = degraded(planner);
    for (type_, (status, reason, message)) in [
        (condition_type::READY, ready),
        (condition_type::ROUTE_APPLIED, route),
        (condition_type::ANALYSIS_PASSING, analysis),
        (condition_type::DEGRADED, degraded),
    ] {
        set(planner, type_, status, reason, message);
    }
}

type State = (ConditionStatus, &'static str, String);

fn ready(planner: &Planner<'_>) -> State {
    use ConditionStatus::{False, True};
    match &planner.blocker {
        Some(Blocker::InvalidSpec(m)) => return (False, "InvalidSpec", m.clone()),
        Some(Blocker::Conflict(m)) => return (False, "RouteConflict", m.clone()),
        Some(Blocker::RouteMissing(m)) => return (False, "RouteNotFound", m.clone()),
        None => {}
    }
    let phase = planner.phase();
    let reason = match phase {
        Phase::Succeeded => return (True, "Promoted", "the canary carries all traffic".into()),
        Phase::Pending => "Pending",
        Phase::Progressing => "Progressing",
        Phase::Paused => "Paused",
        Phase::RollingBack => "RollingBack",
        Phase::Aborted => "Aborted",
        Phase::Failed => "Failed",
    };
    let message = match (&planner.status.pause, &planner.status.abort) {
        (Some(pause), _) if phase == Phase::Paused => {
            format!("{:?}: {}", pause.reason, pause.message)
        }
        (_, Some(abort)) => format!("{}: {}", abort.reason, abort.message),
        _ => format!(
            "step {} of {}",
            planner.step(),
            planner.spec.strategy.steps.len()
        ),
    };
    (False, reason, message)
}

fn route_applied(planner: &Planner<'_>) -> State {
    use ConditionStatus::{False, True, Unknown};
    if let RouteObservation::Missing(message) = &planner.obs.route {
        return (False, "RouteNotFound", message.clone());
    }
    if matches!(
        planner.blocker,
        Some(Blocker::InvalidSpec(_) | Blocker::Conflict(_))
    ) {
        return (
            Unknown,
            "NotManaged",
            "the controller does not write this route now".into(),
        );
    }
    if let Some(weights) = planner.write {
        return (
            False,
            "WeightPending",
            format!(
                "writing stable {} / canary {}",
                weights.stable, weights.canary
            ),
        );
    }
    let weights = planner.status.weights.as_ref();
    match weights.and_then(|w| w.applied.as_ref()) {
        Some(applied) if applied.verified_at.is_some() => (
            True,
            "ParentsAccepted",
            format!("stable {} / canary {} accepted by every parent", applied.stable, applied.canary),
        ),
        Some(_) => (
            False,
            "WaitingForParents",
            "waiting for every parent to report Accepted and ResolvedRefs at the route's generation".into(),
        ),
        None => (Unknown, "NotWritten", "no weights written yet".into()),
    }
}

fn analysis_passing(planner: &Planner<'_>) -> State {
    use ConditionStatus::{False, True, Unknown};
    let last = planner
        .status
        .analysis
        .as_ref()
        .map(|a| a.last.as_slice())
        .unwrap_or_default();
    if last.is_empty() {
        return (
            Unknown,
            "NoAnalysisYet",
            "no analysis window has been judged".into(),
        );
    }
    let failed: Vec<&str> = last
        .iter()
        .filter(|v| v.verdict == Verdict::Fail)
        .map(|v| v.name.as_str())
        .collect();
    if !failed.is_empty() {
        return (
            False,
            "MetricFailed",
            format!("failed: {}", failed.join(", ")),
        );
    }
    let no_data: Vec<&str> = last
        .iter()
        .filter(|v| v.verdict == Verdict::NoData)
        .map(|v| v.name.as_str())
        .collect();
    if !no_data.is_empty() {
        // The first reason says what to fix (often one source-wide cause: an
        // unreachable or disallowed source).
        let why = last
            .iter()
            .find(|v| v.verdict == Verdict::NoData && !v.message.is_empty())
            .map(|v| format!(" ({})", v.message))
            .unwrap_or_default();
        return (
            Unknown,
            "NoData",
            format!("no data: {}{why}", no_data.join(", ")),
        );
    }
    (
        True,
        "AllMetricsPass",
        format!("{} metrics passed", last.len()),
    )
}

fn degraded(planner: &Planner<'_>) -> State {
    use ConditionStatus::{False, True};
    if let Some(Blocker::InvalidSpec(message)) = &planner.blocker {
        return (True, "InvalidSpec", message.clone());
    }
    match (planner.phase(), &planner.status.abort) {
        (Phase::RollingBack | Phase::Failed | Phase::Aborted, Some(abort)) => (
            True,
            "RolledBack",
            format!("{}: {}", abort.reason, abort.message),
        ),
        _ => (False, "AsExpected", String::new()),
    }
}

/// Sets one condition, keeping `lastTransitionTime` while the status is unchanged.
fn set(
    planner: &mut Planner<'_>,
    type_: &str,
    status: ConditionStatus,
    reason: &'static str,
    message: String,
) {
    let now = Time(planner.obs.now);
    let generation = planner.obs.generation;
    let conditions = &mut planner.status.conditions;
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            if existing.status != status {
                existing.last_transition_time = now;
            }
            existing.status = status;
            existing.reason = reason.to_owned();
            existing.message = message;
            existing.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_owned(),
            status,
            observed_generation: generation,
            last_transition_time: now,
            reason: reason.to_owned(),
            message,
        }),
    }
}

//! Admin intents (`status.intent`) and `spec.paused`.
//!
//! The admin API checks [`intent_allowed`] before recording an intent (409 when
//! refused); the planner checks again when acting on it, because the state can
//! change in between, and acknowledges the nonce either way.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use switchyard_api::rollout::{IntentAction, PauseReason, PauseStatus, Phase, PromoteMode};

use super::transitions::{adopt, advance, advance_to};
use super::{Planner, RouteObservation};

/// Whether `action` makes sense in `phase` (with `pause` the current pause
/// reason); `Err` says why not.
pub fn intent_allowed(
    phase: Phase,
    pause: Option<PauseReason>,
    action: IntentAction,
) -> Result<(), String> {
    let finished = matches!(
        phase,
        Phase::Succeeded | Phase::Aborted | Phase::Failed | Phase::RollingBack
    );
    let refuse = |why: &str| {
        Err(format!(
            "cannot {action:?} a rollout that is {phase:?}: {why}"
        ))
    };
    match action {
        IntentAction::Pause | IntentAction::SetWeight | IntentAction::Promote if finished => {
            refuse("it is no longer progressing; use retry to start again")
        }
        IntentAction::Pause if phase == Phase::Paused => refuse("it is already paused"),
        IntentAction::Resume if phase != Phase::Paused => refuse("it is not paused"),
        IntentAction::Resume if pause == Some(PauseReason::Spec) => {
            refuse("spec.paused is true; set it to false instead")
        }
        IntentAction::Abort
            if matches!(phase, Phase::Succeeded | Phase::Aborted | Phase::Failed) =>
        {
            refuse("it has already finished")
        }
        IntentAction::Retry if !matches!(phase, Phase::Aborted | Phase::Failed) => {
            refuse("only an aborted or failed rollout can be retried")
        }
        _ => Ok(()),
    }
}

/// Acts on a new intent (nonce not yet observed).
pub(super) fn apply(planner: &mut Planner<'_>) {
    let Some(intent) = planner.status.intent.clone() else {
        return;
    };
    if planner.status.observed_intent_nonce.as_deref() == Some(intent.nonce.as_str()) {
        return;
    }
    planner.status.observed_intent_nonce = Some(intent.nonce.clone());
    let pause = planner.status.pause.as_ref().map(|p| p.reason);
    if let Err(why) = intent_allowed(planner.phase(), pause, intent.action) {
        planner.event(
            "AdminActionRefused",
            true,
            format!("{} ({})", why, intent.by),
        );
        return;
    }
    let now = Time(planner.obs.now);
    let by = &intent.by;
    let message = match intent.action {
        IntentAction::Pause => {
            pause_admin(planner, now, reason_or(&intent.reason, "paused by admin"));
            format!("{by} paused the rollout")
        }
        IntentAction::Resume => {
            resume(planner);
            format!("{by} resumed the rollout")
        }
        IntentAction::Promote => match intent.mode.unwrap_or(PromoteMode::Step) {
            PromoteMode::Step => {
                advance(planner);
                format!("{by} promoted the rollout to the next step")
            }
            PromoteMode::Full => {
                let last = planner.spec.strategy.steps.len();
                advance_to(planner, last);
                format!("{by} promoted the canary to full traffic")
            }
        },
        IntentAction::Abort => {
            planner.status.phase = Some(Phase::Aborted);
            planner.status.pause = None;
            planner.status.abort = Some(switchyard_api::rollout::AbortStatus {
                reason: "Admin".into(),
                message: reason_or(&intent.reason, "aborted by admin"),
                at: now,
            });
            planner.weights_mut().manual_canary = None;
            format!("{by} aborted the rollout: all traffic back to stable")
        }
        IntentAction::Retry => {
            planner.start();
            planner.analysis_mut().failed_checks = 0;
            format!("{by} restarted the rollout at step 0")
        }
        IntentAction::SetWeight => {
            let weight = intent
                .canary_weight
                .unwrap_or(0)
                .clamp(0, super::desired::max_manual_weight(planner.spec));
            planner.weights_mut().manual_canary = Some(weight);
            pause_admin(
                planner,
                now,
                format!("canary weight set to {weight} bp by hand"),
            );
            format!("{by} set the canary weight to {weight} bp (progress paused)")
        }
    };
    planner.event("AdminAction", false, message);
}

/// `spec.paused` pauses a progressing rollout and, once false again, resumes
/// what it paused (and only that).
pub(super) fn apply_spec_paused(planner: &mut Planner<'_>) {
    let paused_by_spec = planner.status.pause.as_ref().map(|p| p.reason) == Some(PauseReason::Spec);
    if planner.spec.paused && planner.phase() == Phase::Progressing {
        planner.status.phase = Some(Phase::Paused);
        planner.status.pause = Some(PauseStatus {
            reason: PauseReason::Spec,
            since: Time(planner.obs.now),
            message: "spec.paused is true".into(),
        });
        planner.event("Paused", false, "spec.paused is true".into());
    } else if !planner.spec.paused && paused_by_spec {
        planner.status.phase = Some(Phase::Progressing);
        planner.status.pause = None;
        planner.event("Resumed", false, "spec.paused is false again".into());
    }
}

fn reason_or(reason: &str, default: &str) -> String {
    if reason.is_empty() {
        default.to_owned()
    } else {
        reason.to_owned()
    }
}

fn pause_admin(planner: &mut Planner<'_>, now: Time, message: String) {
    planner.status.phase = Some(Phase::Paused);
    planner.status.pause = Some(PauseStatus {
        reason: PauseReason::Admin,
        since: now,
        message,
    });
}

/// Ends a pause. A manual gate moves on to the next step; a drift pause adopts
/// the route's weights (the admin has looked at them); any other pause carries
/// on at the current step with the step's own weight.
fn resume(planner: &mut Planner<'_>) {
    let reason = planner.status.pause.as_ref().map(|p| p.reason);
    planner.status.phase = Some(Phase::Progressing);
    planner.status.pause = None;
    match reason {
        Some(PauseReason::ManualStep) => advance(planner),
        Some(PauseReason::RouteDrift) => {
            if let RouteObservation::Found(view) = &planner.obs.route {
                let adopted = view.normalized();
                adopt(planner, view, adopted);
            }
        }
        _ => planner.weights_mut().manual_canary = None,
    }
}

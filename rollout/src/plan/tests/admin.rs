//! Admin intents and route drift.

use switchyard_api::rollout::{
    DriftPolicy, IntentAction, PauseReason, Phase, PromoteMode, Weights,
};

use super::{World, spec};
use crate::plan::intent_allowed;

#[test]
fn pause_and_resume_by_intent() {
    let mut world = World::new(spec(&[1000, 5000]));
    world.run_minutes(2);
    world.intent(IntentAction::Pause, "n1").reason = "looking at dashboards".into();
    world.run_minutes(6);
    assert_eq!(world.phase(), Phase::Paused);
    assert_eq!(
        world.status.pause.as_ref().unwrap().reason,
        PauseReason::Admin
    );
    assert_eq!(
        world.status.pause.as_ref().unwrap().message,
        "looking at dashboards"
    );
    assert_eq!(world.step(), 0);
    assert_eq!(world.status.observed_intent_nonce.as_deref(), Some("n1"));
    world.intent(IntentAction::Resume, "n2");
    world.tick();
    assert_eq!(world.phase(), Phase::Progressing);
    assert!(world.last_events().contains(&"AdminAction"));
}

#[test]
fn an_observed_nonce_is_not_acted_on_twice() {
    let mut world = World::new(spec(&[1000, 5000]));
    world.run_minutes(2);
    world.intent(IntentAction::Promote, "once");
    world.tick();
    assert_eq!(world.step(), 1);
    world.tick();
    world.tick();
    assert_eq!(world.step(), 1);
}

#[test]
fn promote_step_skips_analysis_and_full_goes_to_all_canary() {
    let mut world = World::new(spec(&[1000, 5000, 8000]));
    world.run_minutes(2);
    world.intent(IntentAction::Promote, "p1").mode = Some(PromoteMode::Step);
    world.tick();
    assert_eq!(world.step(), 1);
    assert_eq!(world.route_weights(), (5000, 5000));
    world.intent(IntentAction::Promote, "p2").mode = Some(PromoteMode::Full);
    world.tick();
    assert_eq!(world.route_weights(), (0, 10_000));
    world.tick();
    assert_eq!(world.phase(), Phase::Succeeded);
}

#[test]
fn abort_sends_everything_to_stable_and_retry_starts_again() {
    let mut world = World::new(spec(&[1000, 5000]));
    world.run_minutes(5);
    world.intent(IntentAction::Abort, "a1").reason = "bad outputs".into();
    let decision = world.tick().clone();
    assert_eq!(decision.write, Some(Weights::ALL_STABLE));
    assert_eq!(world.phase(), Phase::Aborted);
    assert_eq!(world.status.abort.as_ref().unwrap().message, "bad outputs");
    world.run_minutes(3);
    assert_eq!(world.phase(), Phase::Aborted);
    world.intent(IntentAction::Retry, "r1");
    world.tick();
    assert_eq!(world.phase(), Phase::Progressing);
    assert_eq!(world.step(), 0);
    assert_eq!(world.route_weights(), (9000, 1000));
}

#[test]
fn set_weight_pauses_and_is_bounded_by_max_weight() {
    let mut s = spec(&[1000, 5000]);
    s.strategy.max_weight = 6000;
    let mut world = World::new(s);
    world.run_minutes(2);
    world.intent(IntentAction::SetWeight, "w1").canary_weight = Some(9000);
    world.tick();
    assert_eq!(world.phase(), Phase::Paused);
    assert_eq!(world.route_weights(), (4000, 6000));
    world.run_minutes(5);
    assert_eq!(
        world.route_weights(),
        (4000, 6000),
        "a manual weight holds while paused"
    );
    world.intent(IntentAction::Resume, "w2");
    world.tick();
    assert_eq!(
        world.route_weights(),
        (9000, 1000),
        "resume returns to the step's weight"
    );
}

#[test]
fn refused_intent_is_acknowledged_with_a_warning() {
    let mut world = World::new(spec(&[1000]));
    world.run_minutes(2);
    world.intent(IntentAction::Retry, "bad");
    world.tick();
    assert_eq!(world.phase(), Phase::Progressing);
    assert_eq!(world.status.observed_intent_nonce.as_deref(), Some("bad"));
    assert!(world.last_events().contains(&"AdminActionRefused"));
}

#[test]
fn intent_rules_table() {
    use IntentAction::*;
    use Phase::*;
    let cases = [
        (Progressing, None, Pause, true),
        (Paused, Some(PauseReason::Admin), Pause, false),
        (Paused, Some(PauseReason::Admin), Resume, true),
        (Paused, Some(PauseReason::Spec), Resume, false),
        (Progressing, None, Resume, false),
        (Progressing, None, Promote, true),
        (Succeeded, None, Promote, false),
        (Progressing, None, Abort, true),
        (RollingBack, None, Abort, true),
        (Aborted, None, Abort, false),
        (Failed, None, Retry, true),
        (Aborted, None, Retry, true),
        (Progressing, None, Retry, false),
        (Paused, Some(PauseReason::ShedRate), SetWeight, true),
        (Failed, None, SetWeight, false),
    ];
    for (phase, pause, action, allowed) in cases {
        assert_eq!(
            intent_allowed(phase, pause, action).is_ok(),
            allowed,
            "{action:?} in {phase:?}/{pause:?}"
        );
    }
}

#[test]
fn drift_pause_holds_writes_until_resume_adopts_the_route() {
    let mut world = World::new(spec(&[1000, 5000]));
    world.run_minutes(2);
    world.set_route(7000, 3000); // someone edits the weights
    let decision = world.tick().clone();
    assert_eq!(decision.write, None);
    assert_eq!(world.phase(), Phase::Paused);
    assert_eq!(
        world.status.pause.as_ref().unwrap().reason,
        PauseReason::RouteDrift
    );
    assert!(world.last_events().contains(&"RouteDrift"));
    world.run_minutes(3);
    assert_eq!(world.route_weights(), (7000, 3000));
    assert_eq!(
        world
            .all_event_reasons()
            .iter()
            .filter(|r| **r == "RouteDrift")
            .count(),
        1
    );
    world.intent(IntentAction::Resume, "adopt");
    world.tick();
    assert_eq!(world.phase(), Phase::Progressing);
    assert_eq!(
        world.desired(),
        Weights {
            stable: 7000,
            canary: 3000
        }
    );
    assert_eq!(world.route_weights(), (7000, 3000));
}

#[test]
fn drift_revert_writes_our_weights_back() {
    let mut s = spec(&[1000, 5000]);
    s.target.route.as_mut().unwrap().drift_policy = DriftPolicy::Revert;
    let mut world = World::new(s);
    world.run_minutes(2);
    world.set_route(7000, 3000);
    let decision = world.tick().clone();
    assert_eq!(
        decision.write,
        Some(Weights {
            stable: 9000,
            canary: 1000
        })
    );
    assert_eq!(world.phase(), Phase::Progressing);
}

#[test]
fn drift_adopt_takes_proportional_weights_as_basis_points() {
    let mut s = spec(&[1000, 5000]);
    s.target.route.as_mut().unwrap().drift_policy = DriftPolicy::Adopt;
    let mut world = World::new(s);
    world.run_minutes(2);
    world.set_route(3, 1); // proportional: 75 % / 25 %
    world.tick();
    assert_eq!(world.phase(), Phase::Progressing);
    assert_eq!(
        world.desired(),
        Weights {
            stable: 7500,
            canary: 2500
        }
    );
    assert_eq!(world.route_weights(), (7500, 2500));
    // The next step's weight replaces the adopted one.
    world.run_minutes(5);
    assert_eq!(world.step(), 1);
    assert_eq!(world.route_weights(), (5000, 5000));
}

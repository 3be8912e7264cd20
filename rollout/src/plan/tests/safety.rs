//! Safety clamps, blockers and the deadline.

use switchyard_api::rollout::{CapacityGuard, Phase, Weights, condition_type};

use super::{World, spec};
use crate::plan::{Clamp, clamp};

#[test]
fn canary_without_ready_endpoints_gets_zero_then_the_deadline_rolls_back() {
    let mut world = World::new(spec(&[1000, 5000]));
    world.canary_ready = 0;
    world.tick();
    assert_eq!(world.route_weights(), (10_000, 0));
    assert!(world.last_events().contains(&"CanaryNotReady"));
    world.run_minutes(5);
    assert_eq!(world.phase(), Phase::Progressing, "waits for the canary");
    world.canary_ready = 1;
    world.tick();
    assert_eq!(world.route_weights(), (9000, 1000));
    world.canary_ready = 0;
    world.run_minutes(11);
    // Stable already carries everything, so the rollback is verified at once.
    assert_eq!(world.phase(), Phase::Failed);
    assert_eq!(
        world.status.abort.as_ref().unwrap().reason,
        "ProgressDeadlineExceeded"
    );
}

#[test]
fn capacity_guard_caps_the_canary_by_its_share_of_endpoints() {
    let mut s = spec(&[1000, 5000]);
    s.safety.capacity_guard = Some(CapacityGuard {
        headroom_percent: 20,
    });
    // 1 of 10 ready endpoints: 10 % × 1.2 = 1,200 bp.
    assert_eq!(clamp(&s, 5000, 1, 9), (1200, Clamp::Capacity(1200)));
    assert_eq!(clamp(&s, 1000, 1, 9), (1000, Clamp::None));
    // Stable has nothing ready: the guard cannot ask stable to carry the rest.
    assert_eq!(clamp(&s, 5000, 1, 0), (5000, Clamp::None));
    assert_eq!(clamp(&s, 5000, 0, 9), (0, Clamp::CanaryNotReady));
    assert_eq!(clamp(&s, 0, 0, 9), (0, Clamp::None));

    let mut world = World::new(s);
    world.canary_ready = 1;
    world.stable_ready = 9;
    world.run_minutes(5);
    assert_eq!(world.step(), 1, "step 0 (1,000 bp) is under the cap");
    world.run_minutes(5);
    assert_eq!(world.step(), 1, "a capped step does not advance");
    assert_eq!(world.route_weights(), (8800, 1200));
    assert!(world.all_event_reasons().contains(&"CapacityGuard"));
}

#[test]
fn stable_without_endpoints_holds_the_weights_on_rollback() {
    let mut world = World::new(spec(&[1000]));
    world.run_minutes(2);
    world.stable_ready = 0;
    world.intent(switchyard_api::rollout::IntentAction::Abort, "a");
    let decision = world.tick().clone();
    assert_eq!(decision.write, None);
    assert!(world.last_events().contains(&"StableNotReady"));
    assert_eq!(world.route_weights(), (9000, 1000));
    world.stable_ready = 2;
    assert_eq!(world.tick().write, Some(Weights::ALL_STABLE));
}

#[test]
fn missing_route_is_reported_and_nothing_is_written() {
    let mut world = World::new(spec(&[1000]));
    world.route_missing = Some("no rule named \"chat\"".into());
    let decision = world.tick().clone();
    assert_eq!(decision.write, None);
    assert_eq!(
        world.condition(condition_type::READY),
        ("False", "RouteNotFound")
    );
    assert_eq!(
        world.condition(condition_type::ROUTE_APPLIED),
        ("False", "RouteNotFound")
    );
}

#[test]
fn second_rollout_on_the_same_rule_waits() {
    let mut world = World::new(spec(&[1000]));
    world.conflict_with = Some("older".into());
    world.run_minutes(3);
    assert!(world.decisions.iter().all(|d| d.write.is_none()));
    assert_eq!(
        world.condition(condition_type::READY),
        ("False", "RouteConflict")
    );
    assert_eq!(
        world
            .all_event_reasons()
            .iter()
            .filter(|r| **r == "RouteConflict")
            .count(),
        1
    );
}

#[test]
fn invalid_spec_is_degraded_and_writes_nothing() {
    let mut world = World::new(spec(&[5000, 1000]));
    world.run_minutes(2);
    assert!(world.decisions.iter().all(|d| d.write.is_none()));
    assert_eq!(
        world.condition(condition_type::DEGRADED),
        ("True", "InvalidSpec")
    );
    let message = &world
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .message;
    assert!(
        message.contains("steps[1].weight 1000 must be above"),
        "{message}"
    );

    let mut s = spec(&[1000]);
    s.strategy.analysis_interval = "soon".into();
    let mut world = World::new(s);
    world.tick();
    assert_eq!(
        world.condition(condition_type::READY),
        ("False", "InvalidSpec")
    );
}

#[test]
fn l4_a_negative_max_weight_is_an_invalid_spec_not_a_panic() {
    let mut s = spec(&[1000, 5000]);
    s.strategy.max_weight = -5;
    let err = crate::plan::validate(&s).unwrap_err();
    assert!(
        err.contains("strategy.maxWeight -5 must be 1 to 10000"),
        "{err}"
    );
    assert_eq!(crate::plan::max_manual_weight(&s), 0);
    let mut world = World::new(s);
    world.run_minutes(2);
    assert!(world.decisions.iter().all(|d| d.write.is_none()));
    assert_eq!(
        world.condition(condition_type::DEGRADED),
        ("True", "InvalidSpec")
    );
}

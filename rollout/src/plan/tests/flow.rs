//! The main path: start, write, verify, analyse, advance, promote; and the
//! failure paths: roll back, shed, no data, deadline, restart.

use switchyard_api::rollout::{NoDataPolicy, PauseReason, Phase, Verdict, Weights, condition_type};

use super::{World, at, spec, verdict};
use crate::plan::{analysis_window, plan};

fn written(world: &World) -> Vec<i32> {
    world
        .decisions
        .iter()
        .filter_map(|d| d.write.map(|w| w.canary))
        .collect()
}

#[test]
fn first_plan_starts_at_step_zero_and_writes_its_weight() {
    let mut world = World::new(spec(&[1000, 5000]));
    let decision = world.tick().clone();
    assert_eq!(
        decision.write,
        Some(Weights {
            stable: 9000,
            canary: 1000
        })
    );
    assert_eq!(world.phase(), Phase::Progressing);
    assert_eq!(world.step(), 0);
    assert!(world.status.rollout_hash.is_some());
    assert_eq!(world.last_events(), ["Started"]);
    assert_eq!(
        world.condition(condition_type::ROUTE_APPLIED),
        ("False", "WeightPending")
    );
    assert_eq!(
        world.condition(condition_type::READY),
        ("False", "Progressing")
    );
}

#[test]
fn healthy_canary_reaches_full_traffic_through_every_step() {
    let mut world = World::new(spec(&[1000, 5000]));
    world.run_minutes(9);
    assert_eq!(world.phase(), Phase::Succeeded);
    assert_eq!(written(&world), [1000, 5000, 10_000]);
    // One tick per minute: the timeline the README shows.
    let minutes_written: Vec<usize> = world
        .decisions
        .iter()
        .enumerate()
        .filter(|(_, d)| d.write.is_some())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(minutes_written, [0, 3, 6]);
    let first_succeeded = world
        .decisions
        .iter()
        .position(|d| d.status.phase == Some(Phase::Succeeded));
    assert_eq!(first_succeeded, Some(7));
    assert_eq!(world.route_weights(), (0, 10_000));
    let events = world.all_event_reasons();
    assert_eq!(events.iter().filter(|r| **r == "StepCompleted").count(), 2);
    assert_eq!(events.iter().filter(|r| **r == "WeightChanged").count(), 3);
    assert!(events.contains(&"Promoted"));
    assert_eq!(world.condition(condition_type::READY), ("True", "Promoted"));
    assert_eq!(
        world.condition(condition_type::DEGRADED),
        ("False", "AsExpected")
    );
    // Nothing more happens once done.
    world.run_minutes(3);
    assert_eq!(written(&world), [1000, 5000, 10_000]);
}

#[test]
fn weight_is_verified_only_when_parents_accept_the_new_generation() {
    let mut world = World::new(spec(&[1000]));
    world.parents_follow = false;
    world.tick();
    world.advance(60);
    world.tick();
    let applied = world
        .status
        .weights
        .as_ref()
        .unwrap()
        .applied
        .clone()
        .unwrap();
    assert_eq!((applied.stable, applied.canary), (9000, 1000));
    assert!(applied.verified_at.is_none());
    assert_eq!(
        world.condition(condition_type::ROUTE_APPLIED),
        ("False", "WaitingForParents")
    );
    // No analysis while unverified, however long we wait.
    world.advance(600);
    assert!(analysis_window(&world.spec, &world.status, at(world.now)).is_none());
    world.route.parents_accepted = true;
    world.tick();
    assert_eq!(world.last_events(), ["WeightChanged"]);
    assert_eq!(
        world.condition(condition_type::ROUTE_APPLIED),
        ("True", "ParentsAccepted")
    );
}

#[test]
fn no_window_opens_before_the_settle_time_and_interval() {
    let mut s = spec(&[1000]);
    s.strategy.settle_time = "2m".into();
    let mut world = World::new(s);
    world.tick();
    world.tick(); // landed and verified at t=0
    for (t, due) in [(60, false), (179, false), (180, true)] {
        world.now = t;
        assert_eq!(
            analysis_window(&world.spec, &world.status, at(t)).is_some(),
            due,
            "t={t}"
        );
    }
    let window = analysis_window(&world.spec, &world.status, at(200)).unwrap();
    assert_eq!(window.start, at(120));
    assert_eq!(window.end, at(200));
}

#[test]
fn min_duration_holds_a_step_after_its_checks_pass() {
    let mut s = spec(&[1000, 5000]);
    s.strategy.steps[0].min_duration = Some("10m".into());
    let mut world = World::new(s);
    world.run_minutes(5);
    assert_eq!(world.step(), 0);
    assert!(world.status.analysis.as_ref().unwrap().successful_checks >= 2);
    world.run_minutes(7);
    assert!(world.step() >= 1);
}

#[test]
fn failing_errors_roll_back_after_the_threshold_within_two_windows() {
    let mut world = World::new(spec(&[1000, 5000]));
    world.next_verdicts = vec![
        verdict("errors", Verdict::Fail),
        verdict("shed", Verdict::Pass),
    ];
    world.run_minutes(3); // write, verify, first failed window
    assert_eq!(world.phase(), Phase::Progressing);
    assert_eq!(world.status.analysis.as_ref().unwrap().failed_checks, 1);
    world.tick(); // second failed window: threshold 2
    assert_eq!(world.phase(), Phase::RollingBack);
    assert_eq!(
        world.decisions.last().unwrap().write,
        Some(Weights::ALL_STABLE)
    );
    assert_eq!(world.route_weights(), (10_000, 0));
    world.advance(5);
    world.tick();
    assert_eq!(world.phase(), Phase::Failed);
    assert!(world.all_event_reasons().contains(&"RolledBack"));
    assert_eq!(
        world.status.abort.as_ref().unwrap().reason,
        "AnalysisFailed"
    );
    assert_eq!(
        world.condition(condition_type::DEGRADED),
        ("True", "RolledBack")
    );
    assert_eq!(
        world.condition(condition_type::ANALYSIS_PASSING),
        ("False", "MetricFailed")
    );
}

#[test]
fn shedding_pauses_and_never_rolls_back() {
    let mut world = World::new(spec(&[1000, 5000]));
    world.next_verdicts = vec![
        verdict("errors", Verdict::Pass),
        verdict("shed", Verdict::Fail),
    ];
    world.run_minutes(10);
    assert_eq!(world.phase(), Phase::Paused);
    assert_eq!(
        world.status.pause.as_ref().unwrap().reason,
        PauseReason::ShedRate
    );
    assert_eq!(world.status.analysis.as_ref().unwrap().failed_checks, 0);
    assert_eq!(world.route_weights(), (9000, 1000));
    assert_eq!(written(&world), [1000]);
}

#[test]
fn no_data_holds_then_pauses_at_the_limit() {
    let mut s = spec(&[1000, 5000]);
    s.analysis.no_data.limit = 3;
    let mut world = World::new(s);
    world.next_verdicts = vec![
        verdict("errors", Verdict::NoData),
        verdict("shed", Verdict::Pass),
    ];
    world.run_minutes(4); // two no-data windows
    assert_eq!(world.phase(), Phase::Progressing);
    assert_eq!(world.status.analysis.as_ref().unwrap().no_data_windows, 2);
    assert!(world.last_events().contains(&"NoData"));
    world.run_minutes(1);
    assert_eq!(world.phase(), Phase::Paused);
    assert_eq!(
        world.status.pause.as_ref().unwrap().reason,
        PauseReason::NoData
    );
    assert_eq!(world.status.analysis.as_ref().unwrap().failed_checks, 0);
    assert_eq!(
        world.condition(condition_type::ANALYSIS_PASSING),
        ("Unknown", "NoData")
    );
}

#[test]
fn no_data_policy_fail_counts_as_a_failure_and_pass_as_a_pass() {
    let mut s = spec(&[1000, 5000]);
    s.analysis.no_data.policy = NoDataPolicy::Fail;
    let mut world = World::new(s.clone());
    world.next_verdicts = vec![
        verdict("errors", Verdict::NoData),
        verdict("shed", Verdict::Pass),
    ];
    world.run_minutes(4);
    assert_eq!(world.phase(), Phase::RollingBack);

    s.analysis.no_data.policy = NoDataPolicy::Hold;
    s.analysis.metrics[0].no_data = Some(NoDataPolicy::Pass);
    let mut world = World::new(s);
    world.next_verdicts = vec![
        verdict("errors", Verdict::NoData),
        verdict("shed", Verdict::Pass),
    ];
    world.run_minutes(4);
    assert_eq!(world.step(), 1, "per-metric Pass lets the step advance");
}

#[test]
fn manual_gate_pauses_after_its_checks() {
    let mut s = spec(&[1000, 5000]);
    s.strategy.steps[0].pause = Some(Default::default());
    let mut world = World::new(s);
    world.run_minutes(6);
    assert_eq!(world.phase(), Phase::Paused);
    assert_eq!(
        world.status.pause.as_ref().unwrap().reason,
        PauseReason::ManualStep
    );
    assert_eq!(world.step(), 0);
    assert!(world.all_event_reasons().contains(&"StepPaused"));
}

#[test]
fn restart_mid_step_gives_the_same_decision_from_persisted_status() {
    let mut world = World::new(spec(&[1000, 5000]));
    world.run_minutes(3);
    // The status goes through the apiserver as JSON; a new process plans from it.
    let json = serde_json::to_value(&world.status).unwrap();
    let restored = serde_json::from_value(json).unwrap();
    let observations = world.observations();
    let before = plan(&world.spec, &world.status, &observations);
    let after = plan(&world.spec, &restored, &observations);
    assert_eq!(before, after);
    assert_eq!(world.step(), 0);
    assert_eq!(world.status.analysis.as_ref().unwrap().successful_checks, 1);
}

#[test]
fn write_landed_but_status_lost_is_recognised_without_rewriting() {
    let mut world = World::new(spec(&[1000]));
    world.tick(); // writes 9000/1000
    // The status write after the patch was lost: a fresh controller sees step 0
    // and a route that already carries its weight.
    world.status.weights = None;
    let decision = world.tick().clone();
    assert_eq!(decision.write, None);
    let applied = world
        .status
        .weights
        .as_ref()
        .unwrap()
        .applied
        .clone()
        .unwrap();
    assert_eq!((applied.stable, applied.canary), (9000, 1000));
}

#[test]
fn unrelated_route_edit_keeps_the_verified_weights() {
    let mut world = World::new(spec(&[1000, 5000]));
    world.run_minutes(2);
    world.route.generation = Some(world.route.generation.unwrap() + 1);
    let decision = world.tick().clone();
    assert_eq!(decision.write, None);
    let applied = world
        .status
        .weights
        .as_ref()
        .unwrap()
        .applied
        .clone()
        .unwrap();
    assert_eq!(applied.route_generation, world.route.generation);
    assert!(applied.verified_at.is_some());
}

#[test]
fn spec_change_restarts_at_step_zero() {
    let mut world = World::new(spec(&[1000, 5000]));
    world.run_minutes(5);
    assert_eq!(world.step(), 1);
    world.spec.strategy.steps[0].weight = 500;
    world.tick();
    assert_eq!(world.step(), 0);
    assert_eq!(world.last_events()[0], "Restarted");
    assert_eq!(world.route_weights(), (9500, 500));
}

#[test]
fn spec_paused_pauses_and_unpausing_resumes() {
    let mut world = World::new(spec(&[1000, 5000]));
    world.run_minutes(2);
    world.spec.paused = true;
    world.run_minutes(5);
    assert_eq!(world.phase(), Phase::Paused);
    assert_eq!(world.step(), 0);
    world.spec.paused = false;
    world.tick();
    assert_eq!(world.phase(), Phase::Progressing);
    assert!(world.last_events().contains(&"Resumed"));
}

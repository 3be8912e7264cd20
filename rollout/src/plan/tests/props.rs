//! Property test: whatever happens — clock, readiness, verdicts, admin
//! actions, drift — every weight the planner asks for is valid and safe.

use proptest::prelude::*;
use switchyard_api::rollout::{FULL_WEIGHT, IntentAction, Phase, PromoteMode, Verdict, Weights};

use super::{World, spec, verdict};

#[derive(Clone, Debug)]
enum Op {
    Tick,
    Advance(i64),
    CanaryReady(u32),
    StableReady(u32),
    Verdicts(Verdict, Verdict),
    Intent(IntentAction, Option<PromoteMode>, i32),
    Drift(i32, i32),
    SpecPaused(bool),
    ParentsFollow(bool),
}

fn verdicts() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        Just(Verdict::Pass),
        Just(Verdict::Fail),
        Just(Verdict::NoData)
    ]
}

fn actions() -> impl Strategy<Value = IntentAction> {
    prop_oneof![
        Just(IntentAction::Pause),
        Just(IntentAction::Resume),
        Just(IntentAction::Promote),
        Just(IntentAction::Abort),
        Just(IntentAction::Retry),
        Just(IntentAction::SetWeight),
    ]
}

fn ops() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Tick),
        4 => (1i64..400).prop_map(Op::Advance),
        1 => (0u32..3).prop_map(Op::CanaryReady),
        1 => (0u32..3).prop_map(Op::StableReady),
        2 => (verdicts(), verdicts()).prop_map(|(a, b)| Op::Verdicts(a, b)),
        1 => (actions(), prop::option::of(prop_oneof![Just(PromoteMode::Step), Just(PromoteMode::Full)]), -100i32..12_000)
            .prop_map(|(a, m, w)| Op::Intent(a, m, w)),
        1 => (0i32..20_000, 0i32..20_000).prop_map(|(s, c)| Op::Drift(s, c)),
        1 => any::<bool>().prop_map(Op::SpecPaused),
        1 => any::<bool>().prop_map(Op::ParentsFollow),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_written_weight_is_valid_and_safe(
        steps in prop::sample::subsequence(vec![1, 10, 100, 1000, 2500, 5000, 9000, 10_000], 1..6),
        max_weight in prop_oneof![Just(FULL_WEIGHT), 1000i32..FULL_WEIGHT],
        ops in prop::collection::vec(ops(), 1..120),
    ) {
        let mut s = spec(&steps);
        s.strategy.max_weight = max_weight.max(*steps.last().unwrap());
        let mut world = World::new(s);
        let mut nonce = 0;
        for op in ops {
            match op {
                Op::Tick => {
                    let ready = world.canary_ready;
                    let decision = world.tick().clone();
                    let phase = decision.status.phase.unwrap_or(Phase::Pending);
                    let step = decision.status.current_step.unwrap_or(0) as usize;
                    let promoting = step >= world.spec.strategy.steps.len() || phase == Phase::Succeeded;
                    if let Some(desired) = decision.status.weights.as_ref().and_then(|w| w.desired) {
                        prop_assert!(desired.is_valid(), "desired {desired:?}");
                    }
                    prop_assert!(!decision.requeue_after.is_zero());
                    if let Some(write) = decision.write {
                        prop_assert!(write.is_valid(), "write {write:?}");
                        prop_assert!(write.stable + write.canary == FULL_WEIGHT);
                        if matches!(phase, Phase::RollingBack | Phase::Aborted | Phase::Failed) {
                            prop_assert_eq!(write, Weights::ALL_STABLE);
                        }
                        if phase != Phase::Succeeded && write.canary > 0 {
                            prop_assert!(ready >= 1, "weight {} to a canary with no ready endpoints", write.canary);
                        }
                        if write.canary == FULL_WEIGHT {
                            prop_assert!(promoting || *steps.last().unwrap() == FULL_WEIGHT,
                                "stable dropped to 0 before the last step was verified: {phase:?} step {step}");
                        }
                        if !promoting {
                            prop_assert!(write.canary <= world.spec.strategy.max_weight);
                        }
                    }
                }
                Op::Advance(seconds) => world.advance(seconds),
                Op::CanaryReady(n) => world.canary_ready = n,
                Op::StableReady(n) => world.stable_ready = n,
                Op::Verdicts(errors, shed) => {
                    world.next_verdicts = vec![verdict("errors", errors), verdict("shed", shed)];
                }
                Op::Intent(action, mode, weight) => {
                    nonce += 1;
                    let intent = world.intent(action, &format!("n{nonce}"));
                    intent.mode = mode;
                    intent.canary_weight = Some(weight);
                }
                Op::Drift(stable, canary) => world.set_route(stable, canary),
                Op::SpecPaused(paused) => world.spec.paused = paused,
                Op::ParentsFollow(follow) => world.parents_follow = follow,
            }
        }
    }
}

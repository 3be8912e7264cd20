//! ModelSplit: the same planner over two targets of an InferenceModelRewrite
//! rule; validation names what is missing.

use switchyard_api::rollout::{
    BackendTarget, ModelSplitTarget, PauseReason, Phase, RolloutTarget, SplitMode, Verdict, Weights,
};

use super::{World, spec, verdict};
use crate::plan::validate;

fn model_split(stable: &str, canary: &str) -> RolloutTarget {
    RolloutTarget {
        mode: SplitMode::ModelSplit,
        route: None,
        stable: None,
        canary: None,
        model_split: Some(ModelSplitTarget {
            rewrite_ref: "chat-rewrite".into(),
            model: "chat".into(),
            stable: stable.into(),
            canary: canary.into(),
        }),
    }
}

#[test]
fn validation_table() {
    let pool_split = spec(&[1000]).target;
    let mut same_pools = pool_split.clone();
    same_pools.canary = Some(BackendTarget::pool("stable"));
    let mut no_route = pool_split.clone();
    no_route.route = None;
    let mut no_split = model_split("v1", "v2");
    no_split.model_split = None;
    let mut empty_model = model_split("v1", "v2");
    if let Some(split) = &mut empty_model.model_split {
        split.model = String::new();
    }
    let cases: [(&str, RolloutTarget, Option<&str>); 7] = [
        ("PoolSplit", pool_split, None),
        ("ModelSplit", model_split("v1", "v2"), None),
        (
            "PoolSplit, same backend twice",
            same_pools,
            Some("both InferencePool \"stable\""),
        ),
        (
            "PoolSplit without route",
            no_route,
            Some("PoolSplit needs target.route"),
        ),
        (
            "ModelSplit without modelSplit",
            no_split,
            Some("ModelSplit needs target.modelSplit"),
        ),
        (
            "ModelSplit, same model twice",
            model_split("v1", "v1"),
            Some("both \"v1\""),
        ),
        (
            "ModelSplit, empty model",
            empty_model,
            Some("target.modelSplit.model is empty"),
        ),
    ];
    for (name, target, wanted) in cases {
        let mut s = spec(&[1000]);
        s.target = target;
        match (validate(&s), wanted) {
            (Ok(_), None) => {}
            (Err(message), Some(wanted)) => {
                assert!(message.contains(wanted), "{name}: {message}")
            }
            (got, wanted) => panic!("{name}: got {got:?}, wanted {wanted:?}"),
        }
    }
}

fn model_split_world() -> World {
    let mut s = spec(&[1000, 5000]);
    s.target = model_split("llama-v1", "llama-v2");
    World::new(s)
}

#[test]
fn a_healthy_model_split_is_promoted_through_every_step() {
    let mut world = model_split_world();
    world.run_minutes(9);
    assert_eq!(world.phase(), Phase::Succeeded);
    let written: Vec<i32> = world
        .decisions
        .iter()
        .filter_map(|d| d.write.map(|w| w.canary))
        .collect();
    assert_eq!(written, [1000, 5000, 10_000]);
    assert_eq!(world.route_weights(), (0, 10_000));
}

#[test]
fn a_failing_model_split_canary_is_rolled_back_to_weight_zero() {
    let mut world = model_split_world();
    world.next_verdicts = vec![
        verdict("errors", Verdict::Fail),
        verdict("shed", Verdict::Pass),
    ];
    world.run_minutes(4);
    assert_eq!(world.phase(), Phase::RollingBack);
    assert_eq!(
        world.decisions.last().unwrap().write,
        Some(Weights::ALL_STABLE)
    );
    assert_eq!(world.route_weights(), (10_000, 0));
}

#[test]
fn someone_elses_rewrite_weights_pause_a_model_split() {
    let mut world = model_split_world();
    world.run_minutes(2);
    world.set_route(5000, 5000);
    assert_eq!(world.tick().write, None);
    assert_eq!(world.phase(), Phase::Paused);
    assert_eq!(
        world.status.pause.as_ref().unwrap().reason,
        PauseReason::RouteDrift
    );
    world.run_minutes(2);
    assert_eq!(
        world.route_weights(),
        (5000, 5000),
        "the rewrite is left as found"
    );
}

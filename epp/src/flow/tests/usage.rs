//! Usage limit policies: decoding `usageLimitPolicyPluginRef`, the ceilings
//! each policy gives, and the dispatch rule they drive in the core.

use std::collections::BTreeMap;
use std::time::Instant;

use super::*;
use crate::flow::usage::{ActiveLevels, LEVEL_IDLE_GC, Levels, UsageLimitPolicy};

fn policy(yaml: &str) -> UsageLimitPolicy {
    FlowControlConfig::from_yaml(yaml).unwrap().usage_limit
}

fn error_text(yaml: &str) -> String {
    match FlowControlConfig::from_yaml(yaml) {
        Ok(config) => panic!("expected an error, got {:?}", config.usage_limit),
        Err(err) => err.to_string(),
    }
}

fn levels(active: &[i64], priority: i64) -> impl FnOnce() -> Levels {
    let mut set = ActiveLevels::new(active.iter().copied());
    set.touch(priority, Instant::now());
    move || set.levels(priority)
}

#[test]
fn without_a_reference_every_band_may_fill_the_pool() {
    let default = policy("flowControl: {}\n");
    assert_eq!(default, UsageLimitPolicy::Static { threshold: 1.0 });
    // The built-in static policy may be named without being listed.
    let named = policy("flowControl: {usageLimitPolicyPluginRef: static-usage-limit-policy}\n");
    assert_eq!(named, default);
    for p in [-5, 0, 7] {
        assert_eq!(default.ceiling(p, levels(&[-5, 0, 7], p)), 1.0);
    }
}

#[test]
fn upstream_holdback_files_are_decoded() {
    let rank = policy(
        "plugins:\n- {name: hb, type: priority-holdback-policy, parameters: {minCeiling: 0.4, maxCeiling: 0.9}}\n\
         flowControl: {usageLimitPolicyPluginRef: hb}\n",
    );
    assert_eq!(
        rank,
        UsageLimitPolicy::Spread {
            by_value: false,
            min_ceiling: 0.4,
            max_ceiling: 0.9
        }
    );
    // The README's older `strategy` spelling.
    let value = policy(
        "plugins:\n- {name: hb, type: priority-holdback-policy, parameters: {strategy: linear-proportional, minCeiling: 0.2}}\n\
         flowControl: {usageLimitPolicyPluginRef: hb}\n",
    );
    assert_eq!(
        value,
        UsageLimitPolicy::Spread {
            by_value: true,
            min_ceiling: 0.2,
            max_ceiling: 1.0
        }
    );
    let explicit = policy(
        "plugins:\n- name: hb\n  type: priority-holdback-policy\n  parameters:\n    domain: explicit\n    ceilings: {1: 1.0, 0: 0.75, -1: 0.5}\n\
         flowControl: {usageLimitPolicyPluginRef: hb}\n",
    );
    assert_eq!(
        explicit,
        UsageLimitPolicy::Explicit(BTreeMap::from([(1, 1.0), (0, 0.75), (-1, 0.5)]))
    );
    let static_ = policy(
        "plugins:\n- {name: s, type: static-usage-limit-policy, parameters: {threshold: 0.8}}\n\
         flowControl: {usageLimitPolicyPluginRef: s}\n",
    );
    assert_eq!(static_, UsageLimitPolicy::Static { threshold: 0.8 });
}

#[test]
fn the_scheduler_accepts_a_holdback_plugin_in_the_same_file() {
    let file = "plugins:\n- {type: queue-scorer}\n- {name: hb, type: priority-holdback-policy, parameters: {minCeiling: 0.5}}\n\
                schedulingProfiles: [{name: default, plugins: [{pluginRef: queue-scorer}]}]\n\
                flowControl: {usageLimitPolicyPluginRef: hb}\n";
    // Upstream marks priority-holdback-policy Alpha: it needs --allow-experimental-plugins.
    let err = crate::scheduling::SchedulerConfig::from_yaml(file).unwrap_err();
    assert!(
        err.to_string().contains("--allow-experimental-plugins"),
        "{err}"
    );
    let experimental = crate::scheduling::config::LoadOptions {
        allow_experimental: true,
        ..Default::default()
    };
    crate::scheduling::SchedulerConfig::from_yaml_with(file, &experimental).unwrap();
    assert!(matches!(policy(file), UsageLimitPolicy::Spread { .. }));
}

#[test]
fn bad_policies_give_errors_that_say_what_to_fix() {
    let with = |params: &str| {
        format!(
            "plugins:\n- {{name: hb, type: priority-holdback-policy, parameters: {params}}}\n\
             flowControl: {{usageLimitPolicyPluginRef: hb}}\n"
        )
    };
    let cases = [
        (with("{maxCeiling: 0.9}"), "minCeiling: required"),
        (with("{minCeiling: 1.0}"), "must be in [0, 1)"),
        (with("{minCeiling: 0.5, maxCeiling: 1.5}"), "must be in (0, 1]"),
        (with("{minCeiling: 0.9, maxCeiling: 0.5}"), "must be below maxCeiling"),
        (with("{minCeiling: 0.5, domain: tiers}"), "rank, value or explicit"),
        (with("{minCeiling: 0.5, shape: sigmoid}"), "only shape is `linear`"),
        (with("{minCeiling: 0.5, strategy: magic}"), "stepwise-spread or linear-proportional"),
        (with("{minCeiling: 0.5, strategy: stepwise-spread, domain: rank}"), "not both"),
        (with("{minCeiling: 0.5, ceilings: {1: 1.0}}"), "only with `domain: explicit`"),
        (with("{domain: explicit}"), "needs `ceilings`"),
        (with("{domain: explicit, minCeiling: 0.2, ceilings: {1: 1.0}}"), "only `ceilings` applies"),
        (with("{domain: explicit, ceilings: {high: 1.0}}"), "`high` is not an integer priority"),
        (with("{domain: explicit, ceilings: {1: 1.2}}"), "must be in [0, 1]"),
        (
            with("{domain: explicit, ceilings: {1: 0.5, 0: 0.8}}"),
            "must not increase as priority falls",
        ),
        (with("{minCeiling: 0.5, headroom: 2}"), "unknown field `headroom`"),
        (
            "plugins:\n- {name: s, type: static-usage-limit-policy, parameters: {threshold: 0}}\n\
             flowControl: {usageLimitPolicyPluginRef: s}\n"
                .into(),
            "must be in (0, 1]",
        ),
        (
            "flowControl: {usageLimitPolicyPluginRef: nope}\n".into(),
            "`nope` names no entry of `plugins`",
        ),
        (
            "flowControl: {usageLimitPolicyPluginRef: priority-holdback-policy}\n".into(),
            "needs parameters",
        ),
        (
            "plugins: [{name: q, type: queue-scorer}]\nflowControl: {usageLimitPolicyPluginRef: q}\n"
                .into(),
            "not a usage limit policy",
        ),
        (
            "plugins: [{type: soft-reflective-ceiling-policy}]\n\
             flowControl: {usageLimitPolicyPluginRef: soft-reflective-ceiling-policy}\n"
                .into(),
            "use priority-holdback-policy",
        ),
    ];
    for (yaml, expected) in cases {
        let text = error_text(&yaml);
        assert!(text.contains(expected), "{yaml}: {text}");
    }
}

#[test]
fn spreads_give_the_highest_level_max_and_the_lowest_min() {
    let rank = UsageLimitPolicy::Spread {
        by_value: false,
        min_ceiling: 0.4,
        max_ceiling: 1.0,
    };
    let active = [10, 1, 0, -1];
    let got: Vec<f64> = [10, 1, 0, -1]
        .iter()
        .map(|p| rank.ceiling(*p, levels(&active, *p)))
        .collect();
    // Evenly by rank, ignoring the values: 1.0, 0.8, 0.6, 0.4.
    for (g, want) in got.iter().zip([1.0, 0.8, 0.6, 0.4]) {
        assert!((g - want).abs() < 1e-9, "{got:?}");
    }
    let value = UsageLimitPolicy::Spread {
        by_value: true,
        min_ceiling: 0.4,
        max_ceiling: 1.0,
    };
    let got: Vec<f64> = [10, 1, 0, -1]
        .iter()
        .map(|p| value.ceiling(*p, levels(&active, *p)))
        .collect();
    // In proportion to the value: priority 1 sits 2/11 of the way up from -1.
    for (g, want) in got
        .iter()
        .zip([1.0, 0.4 + 0.6 * 2.0 / 11.0, 0.4 + 0.6 / 11.0, 0.4])
    {
        assert!((g - want).abs() < 1e-9, "{got:?}");
    }
    // One active level is never held back (upstream's bypass).
    assert_eq!(rank.ceiling(0, levels(&[], 0)), 1.0);
    assert_eq!(value.ceiling(3, levels(&[3], 3)), 1.0);
}

#[test]
fn explicit_ceilings_cover_unlisted_priorities_in_order() {
    let explicit = UsageLimitPolicy::Explicit(BTreeMap::from([(5, 1.0), (0, 0.7), (-1, 0.5)]));
    let ceiling = |p: i64| explicit.ceiling(p, levels(&[], p));
    assert_eq!(ceiling(5), 1.0);
    assert_eq!(ceiling(9), 1.0, "above every entry: the highest entry's");
    assert_eq!(ceiling(3), 0.7, "between entries: the nearest one below");
    assert_eq!(ceiling(0), 0.7);
    assert_eq!(ceiling(-1), 0.5);
    assert_eq!(ceiling(-8), 0.5, "below every entry: the lowest entry's");
}

#[test]
fn idle_levels_stop_counting_after_the_band_gc_delay_unless_configured_or_queued() {
    let start = Instant::now();
    let mut active = ActiveLevels::new([2]);
    active.touch(1, start);
    active.touch(-1, start);
    assert_eq!(
        active.levels(0).count,
        4,
        "an unseen priority counts itself in"
    );
    assert_eq!(active.levels(1).above, 1);
    let later = start + LEVEL_IDLE_GC;
    active.prune(later, |p| p == -1);
    // Priority 1 went idle; -1 still has queued requests; 2 is configured.
    assert_eq!(active.levels(2).count, 2);
    assert_eq!(
        (active.levels(-1).lowest, active.levels(-1).highest),
        (-1, 2)
    );
}

#[test]
fn lower_bands_stop_at_their_ceiling_and_leave_the_rest_to_higher_ones() {
    let mut queues = FlowQueues::new(config(|c| {
        c.usage_limit =
            UsageLimitPolicy::Explicit(BTreeMap::from([(1, 1.0), (0, 0.75), (-1, 0.5)]));
    }));
    let now = Instant::now();
    let open_at = |saturation: f64| PoolState {
        saturation,
        has_endpoints: true,
    };
    queues
        .enqueue(1, request("a", 0, 10), (), now, open_at(0.0))
        .unwrap();
    queues
        .enqueue(2, request("a", 0, 10), (), now, open_at(0.0))
        .unwrap();
    assert_eq!(queues.pop_dispatchable(0.5).map(|q| q.id), Some(1));
    assert!(
        queues.pop_dispatchable(0.75).is_none(),
        "priority 0 holds back at 0.75"
    );
    // Priority 1 arrives and goes ahead, up to saturation 1.0.
    queues
        .enqueue(3, request("b", 1, 10), (), now, open_at(0.8))
        .unwrap();
    assert_eq!(queues.pop_dispatchable(0.8).map(|q| q.id), Some(3));
    assert!(queues.pop_dispatchable(0.8).is_none());
    // Sheddable work is refused at its own ceiling, not only when the pool is full.
    let refused = queues.enqueue(4, request("c", -1, 10), (), now, open_at(0.5));
    assert_eq!(refused.unwrap_err().0.outcome, Outcome::RejectedSaturated);
    queues
        .enqueue(5, request("c", -1, 10), (), now, open_at(0.4))
        .unwrap();
    let mut shed = Vec::new();
    queues.shed_sheddable(0.45, &mut shed);
    assert!(shed.is_empty(), "below its ceiling it may still go");
    queues.shed_sheddable(0.6, &mut shed);
    assert_eq!(shed.iter().map(|q| q.id).collect::<Vec<_>>(), [5]);
    assert_eq!(queues.pop_dispatchable(0.7).map(|q| q.id), Some(2));
}

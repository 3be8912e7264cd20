//! One mutation per CEL rule of Switchyard's CRDs: a valid fixture object changed so that
//! exactly that rule fails. The API server and `switchyard-check` must both refuse each.

use serde_json::{Value, json};

/// A base object (fixture file and 1-based document index) and the edits that break a rule.
pub struct Mutation {
    /// The CEL rule's message, as the CRD states it.
    pub rule: &'static str,
    /// Fixture file, relative to the workspace root.
    pub file: &'static str,
    /// Which document of it.
    pub index: usize,
    /// JSON-pointer edits: `Some` sets, `None` removes.
    pub edits: fn() -> Vec<(&'static str, Option<Value>)>,
}

const POOL: &str = "api/check/tests/fixtures/manifests/fixed/seed-002/inference.yaml";
const REWRITE: &str = "conformance/examples/quickstart/inferencemodelrewrite.yaml";
const ROLLOUT: &str = "api/tests/fixtures/rollout/full.yaml";

/// Every CEL rule in `charts/crds/switchyard-crds.yaml`, broken once.
pub const MUTATIONS: &[Mutation] = &[
    Mutation {
        rule: "port is required when kind is 'Service'",
        file: POOL,
        index: 1,
        edits: || vec![("/spec/endpointPickerRef/port", None)],
    },
    Mutation {
        rule: "port number must be unique",
        file: POOL,
        index: 1,
        edits: || {
            vec![(
                "/spec/targetPorts",
                Some(json!([{"number": 8000}, {"number": 8000}])),
            )]
        },
    },
    Mutation {
        rule: "set weight on every target or on none",
        file: REWRITE,
        index: 1,
        edits: || vec![("/spec/rules/0/targets/1/weight", None)],
    },
    Mutation {
        rule: "set at least one limit",
        file: ROLLOUT,
        index: 1,
        edits: || {
            vec![(
                "/spec/analysis/metrics/4",
                Some(json!({"name": "itl-p95", "type": "InterTokenLatency", "quantile": 0.95})),
            )]
        },
    },
    Mutation {
        rule: "a Query metric needs query",
        file: ROLLOUT,
        index: 1,
        edits: || vec![("/spec/analysis/metrics/6/query", None)],
    },
    Mutation {
        rule: "ShedRate is a capacity signal: it can only pause",
        file: ROLLOUT,
        index: 1,
        edits: || vec![("/spec/analysis/metrics/2/onFail", Some(json!("Rollback")))],
    },
    Mutation {
        rule: "metric names must be unique",
        file: ROLLOUT,
        index: 1,
        edits: || {
            vec![(
                "/spec/analysis/metrics/1/name",
                Some(json!("server-errors")),
            )]
        },
    },
    Mutation {
        rule: "set exactly one of epp or prometheus",
        file: ROLLOUT,
        index: 1,
        edits: || {
            vec![(
                "/spec/analysis/source/epp",
                Some(json!({"scrapeInterval": "5s"})),
            )]
        },
    },
    Mutation {
        rule: "a Query metric runs PromQL: set source.prometheus",
        file: ROLLOUT,
        index: 1,
        edits: || {
            vec![(
                "/spec/analysis/source",
                Some(json!({"epp": {"scrapeInterval": "5s"}})),
            )]
        },
    },
    Mutation {
        rule: "step weights must be unique",
        file: ROLLOUT,
        index: 1,
        edits: || vec![("/spec/strategy/steps/1/weight", Some(json!(10)))],
    },
    Mutation {
        rule: "step weights must increase",
        file: ROLLOUT,
        index: 1,
        edits: || vec![("/spec/strategy/steps/1/weight", Some(json!(5)))],
    },
    Mutation {
        rule: "every step weight must be at most maxWeight",
        file: ROLLOUT,
        index: 1,
        edits: || vec![("/spec/strategy/maxWeight", Some(json!(2000)))],
    },
    Mutation {
        rule: "PoolSplit needs route, stable and canary",
        file: ROLLOUT,
        index: 1,
        edits: || vec![("/spec/target/route", None)],
    },
    Mutation {
        rule: "ModelSplit needs modelSplit",
        file: ROLLOUT,
        index: 1,
        edits: || vec![("/spec/target", Some(json!({"mode": "ModelSplit"})))],
    },
    Mutation {
        rule: "stable and canary must be different backends",
        file: ROLLOUT,
        index: 1,
        edits: || {
            vec![(
                "/spec/target/canary",
                Some(json!({"name": "vllm-qwen3-32b"})),
            )]
        },
    },
    Mutation {
        rule: "stable and canary models must differ",
        file: ROLLOUT,
        index: 1,
        edits: || {
            vec![(
                "/spec/target",
                Some(json!({"mode": "ModelSplit", "modelSplit": {
                    "model": "food-review", "rewriteRef": "food-review",
                    "stable": "food-review-1", "canary": "food-review-1"}})),
            )]
        },
    },
];

/// Applies `edits` to `value`; a pointer whose parent is missing is a broken table row.
pub fn apply(value: &mut Value, edits: &[(&str, Option<Value>)]) {
    for (pointer, edit) in edits {
        let (parent, key) = pointer.rsplit_once('/').expect("pointers start with /");
        let parent = value.pointer_mut(parent).unwrap_or_else(|| {
            panic!("mutation pointer {pointer}: no {parent} in the base object")
        });
        match (parent, edit) {
            (Value::Object(map), Some(new)) => {
                map.insert(key.to_owned(), new.clone());
            }
            (Value::Object(map), None) => {
                assert!(
                    map.remove(key).is_some(),
                    "mutation {pointer}: nothing to remove"
                );
            }
            (Value::Array(items), Some(new)) => {
                let i: usize = key.parse().expect("array index");
                items[i] = new.clone();
            }
            (Value::Array(items), None) => {
                let i: usize = key.parse().expect("array index");
                items.remove(i);
            }
            (other, _) => panic!("mutation {pointer}: parent is {other}"),
        }
    }
}

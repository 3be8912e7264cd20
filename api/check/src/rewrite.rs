//! InferenceModelRewrite (`inference.networking.x-k8s.io/v1alpha2`, also read as
//! `llm-d.ai/v1alpha2`): rewrites the request's model, with weighted targets.
//!
//! The proposal that introduced it says `split` and `v1alpha1`; the served API
//! says `targets` and `v1alpha2`, so both get a hint.

use serde_json::{Map, Value};

use super::Reporter;
use super::fields::{Field, Hint, Hints, Ty, opt, req, walk};
use super::hints::{POOL_GROUP, yaml};
use super::objective::{POOL_REF, check_pool_ref};
use super::refs::PoolIndex;

/// Upper bound on list lengths the CRD leaves unbounded.
const UNBOUNDED: usize = usize::MAX;

/// The CRD's `maxItems` on `spec.rules` and on a rule's `targets` (the API server needs both
/// bounds to price the CEL rule on targets, and refuses longer lists).
const MAX_RULES: usize = 128;
const MAX_TARGETS: usize = 64;

const MODEL_MATCH: &[Field] = &[
    opt("type", Ty::Enum(&["Exact"])),
    req(
        "value",
        Ty::Text {
            min: 1,
            max: usize::MAX,
        },
        "value: my-model",
    ),
];

const MATCH: &[Field] = &[req(
    "model",
    Ty::Obj(MODEL_MATCH),
    "model: {value: my-model}",
)];

const TARGET: &[Field] = &[
    req("modelRewrite", Ty::Str, "modelRewrite: my-model-v2"),
    opt(
        "weight",
        Ty::Int {
            min: 1,
            max: 1_000_000,
        },
    ),
];

const RULE: &[Field] = &[
    opt(
        "matches",
        Ty::List {
            item: &Ty::Obj(MATCH),
            min: 0,
            max: UNBOUNDED,
        },
    ),
    // Optional in the CRD, but a rule without targets rewrites nothing.
    req(
        "targets",
        Ty::List {
            item: &Ty::Obj(TARGET),
            min: 1,
            max: MAX_TARGETS,
        },
        "targets: [{modelRewrite: my-model-v2}]",
    ),
];

pub(super) const SPEC: &[Field] = &[
    req("poolRef", Ty::Obj(POOL_REF), "poolRef: {name: my-pool}"),
    req(
        "rules",
        Ty::List {
            item: &Ty::Obj(RULE),
            min: 0,
            max: MAX_RULES,
        },
        "rules: [{matches: [{model: {value: my-model}}], targets: [{modelRewrite: my-model-v2}]}]",
    ),
];

const DOC: &[Field] = &[
    opt("apiVersion", Ty::Str),
    opt("kind", Ty::Str),
    opt("metadata", Ty::Any),
    req(
        "spec",
        Ty::Obj(SPEC),
        "spec: {poolRef: {name: my-pool}, rules: [...]}",
    ),
    opt("status", Ty::Any),
];

/// Checks an InferenceModelRewrite.
pub(crate) fn check(rep: &mut Reporter<'_>, document: &Value, index: &PoolIndex) {
    walk(rep, &HINTS, "", "", &Ty::Obj(DOC), document);
    let rules = document.pointer("/spec/rules").and_then(Value::as_array);
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        if let Some(targets) = rule.get("targets").and_then(Value::as_array) {
            check_weights(rep, &format!("spec.rules[{i}].targets"), targets, "target");
        }
    }
    if let Some(pool_ref) = document.pointer("/spec/poolRef") {
        check_pool_ref(rep, "spec.poolRef", pool_ref, POOL_GROUP, index);
    }
}

/// Upstream's rule for weighted lists: a weight on every entry or on none.
pub(crate) fn check_weights(rep: &mut Reporter<'_>, path: &str, entries: &[Value], what: &str) {
    let weighted = entries.iter().filter(|e| e.get("weight").is_some()).count();
    if weighted != 0 && weighted != entries.len() {
        rep.report(
            path,
            format!(
                "weights must be set on every {what} or on none ({weighted} of {} have one): add the missing weights",
                entries.len()
            ),
        );
    }
}

const HINTS: Hints = Hints {
    node: |_, _| None,
    unknown,
};

fn unknown(path: &str, key: &str, value: &Value, _parent: &Map<String, Value>) -> Option<Hint> {
    match (path, key) {
        ("", _) if SPEC.iter().any(|f| f.name == key) => Some(Hint::new(format!(
            "{key} is a spec field: indent it under spec:"
        ))),
        ("spec.rules[]", "split") => Some(Hint::replacing(
            format!(
                "split is the proposal's name; the served API calls it targets: write targets: {}",
                yaml(value)
            ),
            "targets",
        )),
        ("spec.rules[].targets[]", "model" | "name" | "modelName" | "targetModel") => {
            Some(Hint::replacing(
                format!(
                    "a target names its model as modelRewrite: write modelRewrite: {}",
                    yaml(value)
                ),
                "modelRewrite",
            ))
        }
        ("spec.rules[].matches[]", "value" | "modelName" | "name") => Some(Hint::replacing(
            format!(
                "a match names the model under model: write model: {{value: {}}}",
                yaml(value)
            ),
            "model",
        )),
        _ => None,
    }
}

//! InferenceObjective (`inference.networking.x-k8s.io/v1alpha2`, also read as
//! `llm-d.ai/v1alpha2`): a request class's priority within a pool.

use serde_json::{Map, Value};

use super::Reporter;
use super::fields::{Field, Hint, Hints, Ty, opt, req, walk};
use super::hints::{POOL_GROUP, PRIORITY_SCALE, describe, priority_for, scalar};
use super::refs::{PoolIndex, PoolRef};
use switchyard_api::protocol::{INFERENCE_MODEL_HEADER, INFERENCE_OBJECTIVE_HEADER};

/// `poolRef` of InferenceObjective and InferenceModelRewrite.
pub(crate) const POOL_REF: &[Field] = &[
    opt("group", Ty::Text { min: 0, max: 253 }),
    opt("kind", Ty::Text { min: 1, max: 63 }),
    req("name", Ty::Text { min: 1, max: 253 }, "name: my-pool"),
];

pub(super) const SPEC: &[Field] = &[
    // A Go `int` upstream, an `i64` in our type.
    opt(
        "priority",
        Ty::Int {
            min: i64::MIN,
            max: i64::MAX,
        },
    ),
    req("poolRef", Ty::Obj(POOL_REF), "poolRef: {name: my-pool}"),
];

const DOC: &[Field] = &[
    opt("apiVersion", Ty::Str),
    opt("kind", Ty::Str),
    opt("metadata", Ty::Any),
    req(
        "spec",
        Ty::Obj(SPEC),
        "spec: {poolRef: {name: my-pool}, priority: 0}",
    ),
    opt("status", Ty::Any),
];

/// Checks an InferenceObjective.
pub(crate) fn check(rep: &mut Reporter<'_>, document: &Value, index: &PoolIndex) {
    walk(rep, &HINTS, "", "", &Ty::Obj(DOC), document);
    if let Some(pool_ref) = document.pointer("/spec/poolRef") {
        check_pool_ref(rep, "spec.poolRef", pool_ref, POOL_GROUP, index);
    }
}

/// Checks the target of a `poolRef` (its shape is the walker's business).
pub(crate) fn check_pool_ref(
    rep: &mut Reporter<'_>,
    path: &str,
    pool_ref: &Value,
    default_group: &str,
    index: &PoolIndex,
) {
    if let Some(kind) = pool_ref.get("kind").and_then(Value::as_str)
        && kind != "InferencePool"
    {
        rep.report(
            &format!("{path}.kind"),
            format!("{kind:?} cannot be a pool: write kind: InferencePool, or leave kind out"),
        );
        return;
    }
    let Some(name) = pool_ref.get("name").and_then(Value::as_str) else {
        return;
    };
    let reference = PoolRef {
        group: pool_ref.get("group").and_then(Value::as_str),
        name,
        namespace: None,
        cross_namespace: false,
    };
    index.check(rep, path, &reference, default_group);
}

const HINTS: Hints = Hints { node, unknown };

fn node(path: &str, value: &Value) -> Option<Hint> {
    if path != "spec.priority" || value.is_i64() {
        return None;
    }
    let text = value.as_str()?;
    if let Some(priority) = priority_for(text) {
        return Some(Hint::new(format!(
            "priority is an integer, not a criticality: write priority: {priority} ({PRIORITY_SCALE})"
        )));
    }
    if text.trim().parse::<i64>().is_ok() {
        return None; // The walker's "remove the quotes" says it.
    }
    Some(Hint::new(format!(
        "must be an integer, got {}: higher priorities are served first, 0 when unset, negative ones are shed first",
        describe(value)
    )))
}

fn unknown(path: &str, key: &str, value: &Value, parent: &Map<String, Value>) -> Option<Hint> {
    match (path, key) {
        ("", _) if SPEC.iter().any(|f| f.name == key) => Some(Hint::new(format!(
            "{key} is a spec field: indent it under spec:"
        ))),
        ("spec", "criticality") => Some(Hint::new(criticality_hint(value, parent))),
        ("spec", "modelName") => Some(Hint::new(model_name_hint(value))),
        ("spec", "targetModels") => Some(Hint::new(target_models_hint())),
        _ => None,
    }
}

/// `criticality` (InferenceModel's field) written as InferenceObjective's `priority`.
pub(crate) fn criticality_hint(value: &Value, parent: &Map<String, Value>) -> String {
    let written = value.as_str().unwrap_or_default();
    let also = if parent.contains_key("priority") {
        " and drop criticality"
    } else {
        ""
    };
    match priority_for(written) {
        Some(priority) => format!(
            "criticality is the InferenceModel field; InferenceObjective uses an integer priority: write priority: {priority}{also} ({PRIORITY_SCALE})"
        ),
        None => format!(
            "criticality is the InferenceModel field; InferenceObjective uses an integer priority ({PRIORITY_SCALE})"
        ),
    }
}

/// Where `modelName` went: routing on the model is the HTTPRoute's job.
pub(crate) fn model_name_hint(value: &Value) -> String {
    let model = value.as_str().map_or_else(|| "<model>".to_owned(), scalar);
    format!(
        "InferenceObjective has no modelName: route requests for {model} with an HTTPRoute rule matching header {INFERENCE_MODEL_HEADER}: {model} (the body-based router sets it from the request's model field), serve it under another name with an InferenceModelRewrite, and pick this objective per request with header {INFERENCE_OBJECTIVE_HEADER}: <this objective's name>"
    )
}

/// Where `targetModels` went: weighted splits are InferenceModelRewrite's.
pub(crate) fn target_models_hint() -> String {
    "weighted target models are InferenceModelRewrite's spec.rules[].targets: write an InferenceModelRewrite with rules: [{matches: [{model: {value: <model>}}], targets: [{modelRewrite: <target>, weight: <n>}]}]".to_owned()
}

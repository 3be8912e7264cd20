//! The legacy InferenceModel (`inference.networking.x-k8s.io/v1alpha2`), which
//! Switchyard still reads and converts, and InferenceModels written at versions
//! that never served it, which are explained as InferenceObjectives.

use serde_json::{Map, Value};

use super::Reporter;
use super::fields::{Field, Hint, Hints, NO_HINTS, Ty, opt, req, walk};
use super::hints::{POOL_GROUP, PRIORITY_SCALE, X_API, X_GROUP};
use super::meta;
use super::objective::{
    POOL_REF, check_pool_ref, criticality_hint, model_name_hint, target_models_hint,
};
use super::refs::PoolIndex;
use super::rewrite::check_weights;

const CRITICALITIES: &[&str] = &["Critical", "Standard", "Sheddable"];

const TARGET_MODEL: &[Field] = &[
    req("name", Ty::Text { min: 0, max: 253 }, "name: my-adapter"),
    opt(
        "weight",
        Ty::Int {
            min: 1,
            max: 1_000_000,
        },
    ),
];

pub(super) const SPEC: &[Field] = &[
    req(
        "modelName",
        Ty::Text { min: 0, max: 256 },
        "modelName: my-model",
    ),
    opt("criticality", Ty::Enum(CRITICALITIES)),
    req("poolRef", Ty::Obj(POOL_REF), "poolRef: {name: my-pool}"),
    opt(
        "targetModels",
        Ty::List {
            item: &Ty::Obj(TARGET_MODEL),
            min: 0,
            max: 10,
        },
    ),
];

/// What remains of the spec once an unserved InferenceModel's migrated fields are set aside.
const UNSERVED_SPEC: &[Field] = &[req(
    "poolRef",
    Ty::Obj(POOL_REF),
    "poolRef: {name: my-pool}",
)];

const DOC: &[Field] = &[
    opt("apiVersion", Ty::Str),
    opt("kind", Ty::Str),
    opt("metadata", Ty::Any),
    req(
        "spec",
        Ty::Obj(SPEC),
        "spec: {modelName: my-model, poolRef: {name: my-pool}}",
    ),
    opt("status", Ty::Any),
];

/// Checks a legacy v1alpha2 InferenceModel.
pub(crate) fn check(rep: &mut Reporter<'_>, document: &Value, index: &PoolIndex) {
    walk(rep, &LEGACY_HINTS, "", "", &Ty::Obj(DOC), document);
    if let Some(targets) = document
        .pointer("/spec/targetModels")
        .and_then(Value::as_array)
    {
        check_weights(rep, "spec.targetModels", targets, "target model");
    }
    if let Some(pool_ref) = document.pointer("/spec/poolRef") {
        // The legacy poolRef defaulted to the legacy group.
        check_pool_ref(rep, "spec.poolRef", pool_ref, X_GROUP, index);
    }
}

/// Explains an InferenceModel at an unserved version as the InferenceObjective it
/// should become: one finding per field that changes, plus the usual checks.
pub(crate) fn check_unserved(rep: &mut Reporter<'_>, document: &Value, index: &PoolIndex) {
    meta::check(rep, document);
    let Some(spec) = document.get("spec").and_then(Value::as_object) else {
        walk(rep, &NO_HINTS, "", "", &Ty::Obj(DOC), document);
        return;
    };
    for (key, value) in spec {
        let at = format!("spec.{key}");
        match key.as_str() {
            "modelName" => rep.report(&at, model_name_hint(value)),
            "criticality" => rep.report(&at, criticality_hint(value, spec)),
            "targetModels" => rep.report(&at, target_models_hint()),
            _ => {}
        }
    }
    // Everything else is checked as the legacy shape, minus the fields above.
    let rest: Map<String, Value> = spec
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "modelName" | "criticality" | "targetModels"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    walk(
        rep,
        &NO_HINTS,
        "spec",
        "spec",
        &Ty::Obj(UNSERVED_SPEC),
        &Value::Object(rest),
    );
    if let Some(pool_ref) = spec.get("poolRef") {
        // As an InferenceObjective, the poolRef defaults to the GA group.
        check_pool_ref(rep, "spec.poolRef", pool_ref, POOL_GROUP, index);
    }
}

const LEGACY_HINTS: Hints = Hints {
    node: legacy_node,
    unknown: legacy_unknown,
};

fn legacy_node(path: &str, value: &Value) -> Option<Hint> {
    let text = value.as_str().filter(|_| path == "spec.criticality")?;
    if CRITICALITIES.contains(&text) {
        return None;
    }
    let fix = CRITICALITIES.iter().find(|c| c.eq_ignore_ascii_case(text));
    let spelled = fix.map_or_else(String::new, |fix| format!("write criticality: {fix}; "));
    Some(Hint::new(format!(
        "{text:?} is not a criticality: {spelled}use one of Critical, Standard, Sheddable, or move to an InferenceObjective ({X_API}) with an integer priority ({PRIORITY_SCALE})"
    )))
}

fn legacy_unknown(
    path: &str,
    key: &str,
    value: &Value,
    _parent: &Map<String, Value>,
) -> Option<Hint> {
    match (path, key) {
        ("", _) if SPEC.iter().any(|f| f.name == key) => Some(Hint::new(format!(
            "{key} is a spec field: indent it under spec:"
        ))),
        ("spec", "priority") => {
            let criticality = match value.as_i64() {
                Some(p) if p > 0 => "Critical",
                Some(p) if p < 0 => "Sheddable",
                _ => "Standard",
            };
            Some(Hint::new(format!(
                "priority is InferenceObjective's field; InferenceModel takes criticality: {criticality} (one of Critical, Standard, Sheddable), or write an InferenceObjective ({X_API}) where priority is right"
            )))
        }
        _ => None,
    }
}

//! Validation patterns and hand-written schema fragments shared by the CRD types.
//!
//! The patterns are the Kubernetes and Gateway API ones that upstream's CRDs carry,
//! so the schemas we generate validate exactly like upstream's. The functions are
//! used through `#[schemars(schema_with = ...)]` / `#[schemars(transform = ...)]`
//! where a derive alone cannot express the upstream shape.

use schemars::{Schema, json_schema};
use serde_json::Value;

/// An API group: empty (the core group) or a DNS subdomain.
pub const GROUP_PATTERN: &str =
    r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// A resource kind in CamelCase, e.g. `InferencePool`.
pub const KIND_PATTERN: &str = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$";

/// A namespace name (an RFC 1123 DNS label).
pub const NAMESPACE_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// A label value: up to 63 characters, possibly empty, alphanumeric at both ends.
pub const LABEL_VALUE_PATTERN: &str = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";

/// A Gateway API controller name: `DOMAIN/PATH`.
pub const CONTROLLER_NAME_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$";

/// A `metav1.Condition` reason: CamelCase, no spaces.
pub const CONDITION_REASON_PATTERN: &str = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$";

/// A `metav1.Condition` type: CamelCase, optionally prefixed by a DNS subdomain and `/`.
pub const CONDITION_TYPE_PATTERN: &str = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$";

/// Most label values and Kubernetes names of a single DNS label are at most this long.
pub const LABEL_VALUE_MAX_LENGTH: u32 = 63;

/// Schema of a Kubernetes label map: string keys, values that are valid label
/// values, between 1 and 64 entries (upstream's `matchLabels` bounds).
pub fn match_labels(_: &mut schemars::SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "minProperties": 1,
        "maxProperties": 64,
        "additionalProperties": label_value(),
    })
}

/// Schema of the legacy pool selector: the same label values, with no size bounds.
pub fn legacy_selector(_: &mut schemars::SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": label_value(),
    })
}

fn label_value() -> Value {
    serde_json::json!({
        "type": "string",
        "minLength": 0,
        "maxLength": LABEL_VALUE_MAX_LENGTH,
        "pattern": LABEL_VALUE_PATTERN,
    })
}

/// Schema of an unbounded integer with no `format`, as upstream declares
/// `InferenceObjective.spec.priority` (a Go `*int`).
pub fn plain_integer(_: &mut schemars::SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer" })
}

/// Removes `null` from the schema of every property of an object schema.
///
/// schemars gives an `Option<T>` field the type `[T, "null"]` (or `anyOf: [T, null]`
/// for enums), which kube then turns into `nullable: true`. Upstream's Go-generated
/// CRDs never allow `null`: an absent field is omitted, and our types skip `None`
/// when serialising. Applied as a container attribute
/// (`#[schemars(transform = crate::schema::omit_null)]`), this runs when the type's
/// own schema is built, before kube's whole-document rewriting, so no `nullable`
/// reaches the CRD.
pub fn omit_null(schema: &mut Schema) {
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for property in properties.values_mut() {
        if let Some(property) = property.as_object_mut() {
            omit_null_from(property);
        }
    }
}

fn omit_null_from(property: &mut serde_json::Map<String, Value>) {
    if let Some(Value::Array(types)) = property.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            property.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(values)) = property.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    let Some(Value::Array(alternatives)) = property.get_mut("anyOf") else {
        return;
    };
    alternatives.retain(|alternative| alternative.get("type") != Some(&Value::from("null")));
    if let [only] = alternatives.as_slice() {
        // `anyOf: [T]` says the same as `T`; inline it so the schema stays structural.
        let Some(only) = only.as_object().cloned() else {
            return;
        };
        property.remove("anyOf");
        for (key, value) in only {
            property.entry(key).or_insert(value);
        }
    }
}

/// Whether a kind's top-level schema lists `spec` as required.
///
/// Upstream's InferencePool requires it; InferenceObjective and
/// InferenceModelRewrite do not (their spec's own required fields still apply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecRequired {
    /// `required: [spec]`.
    Yes,
    /// No top-level `required`.
    No,
}

/// The top-level schema of a custom resource, shaped like a Go-generated CRD:
/// `apiVersion`, `kind`, `metadata`, `spec` and `status`, no `title`.
///
/// kube-derive's own root schema omits `apiVersion`/`kind`/`metadata`, always
/// requires `spec`, and makes `status` nullable; the kinds we serve use
/// `#[kube(schema = "manual")]` with this function so the root matches upstream.
pub fn custom_resource_root<Spec: schemars::JsonSchema, Status: schemars::JsonSchema>(
    generator: &mut schemars::SchemaGenerator,
    description: &str,
    spec_required: SpecRequired,
) -> Schema {
    let mut root = json_schema!({
        "description": description,
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object.",
                "type": "string",
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents.",
                "type": "string",
            },
            "metadata": { "type": "object" },
            "spec": generator.subschema_for::<Spec>(),
            "status": generator.subschema_for::<Status>(),
        },
    });
    if spec_required == SpecRequired::Yes {
        root.insert("required".into(), serde_json::json!(["spec"]));
    }
    root
}

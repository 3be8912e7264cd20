//! InferencePool: `inference.networking.k8s.io/v1`, and the legacy
//! `inference.networking.x-k8s.io/v1alpha2` shape that Switchyard still reads.
//!
//! Most mistakes in the wild are one version's fields written under the other's
//! apiVersion (articles mix them), so the hints here translate field by field.

use serde_json::{Map, Value};

use super::Reporter;
use super::fields::{Field, Hint, Hints, Ty, join, opt, req, walk};
use super::hints::{DEFAULT_EPP_PORT, POOL_API, X_API, describe, scalar, yaml};
use super::labels::{label_key_problem, label_value_problem};

const PORT: &[Field] = &[req(
    "number",
    Ty::Int { min: 1, max: 65535 },
    "number: 8000",
)];

const FAILURE_MODES: &[&str] = &["FailOpen", "FailClose"];

const PICKER: &[Field] = &[
    opt("group", Ty::Text { min: 0, max: 253 }),
    opt("kind", Ty::Text { min: 1, max: 63 }),
    req("name", Ty::Text { min: 1, max: 253 }, "name: my-pool-epp"),
    opt("port", Ty::Obj(PORT)),
    opt("failureMode", Ty::Enum(FAILURE_MODES)),
];

const SELECTOR: &[Field] = &[req(
    "matchLabels",
    Ty::StrMap,
    "matchLabels: {app: my-model-server}",
)];

pub(super) const SPEC: &[Field] = &[
    req(
        "selector",
        Ty::Obj(SELECTOR),
        "selector: {matchLabels: {app: my-model-server}}",
    ),
    req(
        "targetPorts",
        Ty::List {
            item: &Ty::Obj(PORT),
            min: 1,
            max: 8,
        },
        "targetPorts: [{number: 8000}]",
    ),
    opt("appProtocol", Ty::Enum(&["http", "kubernetes.io/h2c"])),
    // Optional since GIE v1.6 (#2898): a pool may be served without a picker.
    opt("endpointPickerRef", Ty::Obj(PICKER)),
];

const DOC: &[Field] = &[
    opt("apiVersion", Ty::Str),
    opt("kind", Ty::Str),
    opt("metadata", Ty::Any),
    req(
        "spec",
        Ty::Obj(SPEC),
        "spec: with selector, targetPorts and endpointPickerRef",
    ),
    opt("status", Ty::Any),
];

const LEGACY_PICKER: &[Field] = &[
    opt("group", Ty::Text { min: 0, max: 253 }),
    opt("kind", Ty::Text { min: 1, max: 63 }),
    req("name", Ty::Text { min: 1, max: 253 }, "name: my-pool-epp"),
    opt("portNumber", Ty::Int { min: 1, max: 65535 }),
    opt("failureMode", Ty::Enum(FAILURE_MODES)),
];

pub(super) const LEGACY_SPEC: &[Field] = &[
    req("selector", Ty::StrMap, "selector: {app: my-model-server}"),
    req(
        "targetPortNumber",
        Ty::Int { min: 1, max: 65535 },
        "targetPortNumber: 8000",
    ),
    req(
        "extensionRef",
        Ty::Obj(LEGACY_PICKER),
        "extensionRef: {name: my-pool-epp}",
    ),
];

const LEGACY_DOC: &[Field] = &[
    opt("apiVersion", Ty::Str),
    opt("kind", Ty::Str),
    opt("metadata", Ty::Any),
    req(
        "spec",
        Ty::Obj(LEGACY_SPEC),
        "spec: with selector, targetPortNumber and extensionRef",
    ),
    opt("status", Ty::Any),
];

/// Checks an InferencePool against the v1 schema, with v1alpha2-to-v1 hints.
pub(crate) fn check(rep: &mut Reporter<'_>, document: &Value) {
    walk(rep, &V1_HINTS, "", "", &Ty::Obj(DOC), document);
    let Some(spec) = document.get("spec").and_then(Value::as_object) else {
        return;
    };
    if let Some(labels) = spec.get("selector").and_then(|s| s.get("matchLabels")) {
        check_labels(rep, "spec.selector.matchLabels", labels, 64);
    }
    if let Some(ports) = spec.get("targetPorts").and_then(Value::as_array) {
        check_unique_ports(rep, ports);
    }
    if let Some(picker) = spec.get("endpointPickerRef").and_then(Value::as_object) {
        check_picker_port(rep, picker);
    }
}

/// Checks a legacy v1alpha2 InferencePool, with hints for v1 fields written under it.
pub(crate) fn check_legacy(rep: &mut Reporter<'_>, document: &Value) {
    walk(rep, &LEGACY_HINTS, "", "", &Ty::Obj(LEGACY_DOC), document);
    let selector = document.pointer("/spec/selector");
    if let Some(selector) = selector.filter(|s| s.get("matchLabels").is_none()) {
        check_labels(rep, "spec.selector", selector, usize::MAX);
    }
}

/// Label keys and values of a selector, and its size (1 to `max` labels).
fn check_labels(rep: &mut Reporter<'_>, path: &str, labels: &Value, max: usize) {
    let Some(labels) = labels.as_object() else {
        return; // The walker already said it must be a map.
    };
    if labels.is_empty() {
        rep.report(
            path,
            "must have at least one label: an empty selector would match every pod in the namespace",
        );
    } else if labels.len() > max {
        rep.report(
            path,
            format!("has {} labels; at most {max} are allowed", labels.len()),
        );
    }
    for (key, value) in labels {
        let at = join(path, key);
        if let Some(problem) = label_key_problem(key) {
            rep.report(&at, format!("the label key {key:?} {problem}"));
        }
        match value {
            Value::String(text) => {
                if let Some(problem) = label_value_problem(text) {
                    rep.report(&at, format!("the label value {text:?} {problem}"));
                }
            }
            // YAML reads `version: 1` or `canary: true` as a number or boolean; the
            // apiserver wants strings.
            Value::Number(_) | Value::Bool(_) => rep.report(
                &at,
                format!(
                    "label values are strings: quote it, {}: \"{}\"",
                    scalar(key),
                    yaml(value)
                ),
            ),
            other => rep.report(
                &at,
                format!("label values are strings, got {}", describe(other)),
            ),
        }
    }
}

fn check_unique_ports(rep: &mut Reporter<'_>, ports: &[Value]) {
    let numbers = ports
        .iter()
        .map(|p| p.get("number").and_then(Value::as_i64));
    let mut seen: Vec<i64> = Vec::new();
    for (i, number) in numbers.enumerate() {
        let Some(number) = number else { continue };
        if seen.contains(&number) {
            rep.report(
                &format!("spec.targetPorts[{i}].number"),
                format!("port {number} is listed twice; target port numbers must be unique"),
            );
        } else {
            seen.push(number);
        }
    }
}

/// Upstream's CEL rule: a Service (the default kind) must have a port.
fn check_picker_port(rep: &mut Reporter<'_>, picker: &Map<String, Value>) {
    let kind = picker
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("Service");
    let group = picker.get("group").and_then(Value::as_str).unwrap_or("");
    // `portNumber` already got its own hint.
    let has_port = picker.contains_key("port") || picker.contains_key("portNumber");
    if kind == "Service" && group.is_empty() && !has_port {
        rep.report(
            "spec.endpointPickerRef.port",
            format!(
                "is required when kind is Service (the default): add port: {{number: {DEFAULT_EPP_PORT}}} (the EPP's gRPC Service port)"
            ),
        );
    }
}

const V1_HINTS: Hints = Hints {
    node: v1_node,
    unknown: v1_unknown,
};

fn v1_node(path: &str, value: &Value) -> Option<Hint> {
    match path {
        "spec.selector" => {
            let map = value.as_object()?;
            if map.is_empty()
                || map.contains_key("matchLabels")
                || map.contains_key("matchExpressions")
            {
                return None;
            }
            Some(Hint::new(format!(
                "a bare label map is the v1alpha2 selector; in {POOL_API} use selector.matchLabels: write selector: {{matchLabels: {}}}",
                yaml(value)
            )))
        }
        "spec.targetPorts" if value.is_number() || value.is_string() => Some(Hint::new(format!(
            "is a list of ports: write targetPorts: [{{number: {}}}]",
            yaml(value)
        ))),
        "spec.targetPorts[]" if value.is_number() => Some(Hint::new(format!(
            "each target port is an object: write {{number: {}}}, as in targetPorts: [{{number: {}}}]",
            yaml(value),
            yaml(value)
        ))),
        "spec.appProtocol" => {
            let text = value.as_str()?;
            let h2 = ["h2c", "h2", "http2", "http/2", "grpc", "kubernetes.io/h2"];
            h2.iter().any(|w| w.eq_ignore_ascii_case(text)).then(|| {
                Hint::new(format!(
                    "{text:?} is not an appProtocol: HTTP/2 over cleartext is written appProtocol: kubernetes.io/h2c (the other value is http, the default)"
                ))
            })
        }
        "spec.endpointPickerRef.port" if value.is_number() || value.is_string() => {
            Some(Hint::new(format!(
                "port is an object in {POOL_API}: write port: {{number: {}}}",
                yaml(value)
            )))
        }
        _ => None,
    }
}

fn v1_unknown(path: &str, key: &str, value: &Value, _parent: &Map<String, Value>) -> Option<Hint> {
    match (path, key) {
        ("", _) if SPEC.iter().any(|f| f.name == key) || key == "targetPortNumber" => Some(
            Hint::new(format!("{key} is a spec field: indent it under spec:")),
        ),
        ("spec", "targetPortNumber") => Some(Hint::replacing(
            format!(
                "targetPortNumber is the v1alpha2 field; in {POOL_API} use targetPorts: [{{number: {}}}]",
                number_or(value, 8000)
            ),
            "targetPorts",
        )),
        ("spec", "extensionRef") => Some(Hint::replacing(
            format!(
                "extensionRef is endpointPickerRef in {POOL_API}, with port.number: write endpointPickerRef: {}",
                picker_from(value)
            ),
            "endpointPickerRef",
        )),
        ("spec", "endpointPickerConfig") => {
            let reference = value.get("extensionRef").unwrap_or(value);
            Some(Hint::replacing(
                format!(
                    "endpointPickerConfig never shipped; the endpoint picker is endpointPickerRef in {POOL_API}, with port.number: write endpointPickerRef: {}",
                    picker_from(reference)
                ),
                "endpointPickerRef",
            ))
        }
        ("spec.endpointPickerRef", "portNumber") => Some(Hint::new(format!(
            "portNumber is the v1alpha2 spelling; in {POOL_API} write port: {{number: {}}}",
            number_or(value, DEFAULT_EPP_PORT)
        ))),
        ("spec.selector", "matchExpressions") => Some(Hint::new(
            "InferencePool's selector takes only matchLabels (so it can double as a Service selector): express the selection as matchLabels",
        )),
        ("spec.targetPorts[]", "port" | "targetPort" | "containerPort") => Some(Hint::replacing(
            format!(
                "a target port is written number: {}",
                number_or(value, 8000)
            ),
            "number",
        )),
        _ => None,
    }
}

const LEGACY_HINTS: Hints = Hints {
    node: legacy_node,
    unknown: legacy_unknown,
};

fn legacy_node(path: &str, value: &Value) -> Option<Hint> {
    let labels = value
        .get("matchLabels")
        .filter(|_| path == "spec.selector")?;
    Some(Hint::new(format!(
        "the {X_API} selector is a bare label map: write selector: {} (or move the pool to apiVersion: {POOL_API}, where selector.matchLabels is right)",
        yaml(labels)
    )))
}

fn legacy_unknown(
    path: &str,
    key: &str,
    value: &Value,
    _parent: &Map<String, Value>,
) -> Option<Hint> {
    let move_up = format!("or move the pool to apiVersion: {POOL_API}");
    match (path, key) {
        ("", _) if LEGACY_SPEC.iter().any(|f| f.name == key) => Some(Hint::new(format!(
            "{key} is a spec field: indent it under spec:"
        ))),
        ("spec", "targetPorts") => {
            let number = value.pointer("/0/number").map_or(8000.into(), Clone::clone);
            Some(Hint::replacing(
                format!(
                    "targetPorts is the {POOL_API} field; in {X_API} write targetPortNumber: {} ({move_up})",
                    number_or(&number, 8000)
                ),
                "targetPortNumber",
            ))
        }
        ("spec", "endpointPickerRef") => Some(Hint::replacing(
            format!(
                "endpointPickerRef is the {POOL_API} field; in {X_API} write extensionRef: {} ({move_up})",
                legacy_picker_from(value)
            ),
            "extensionRef",
        )),
        ("spec.extensionRef", "port") => Some(Hint::new(format!(
            "the {X_API} extensionRef takes portNumber: {} ({move_up}, where it is port: {{number: …}})",
            number_or(value.get("number").unwrap_or(value), DEFAULT_EPP_PORT)
        ))),
        _ => None,
    }
}

/// `value` when it is an integer (or a string holding one), else `default`.
fn number_or(value: &Value, default: i64) -> i64 {
    value
        .as_i64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
        .unwrap_or(default)
}

/// A v1 `endpointPickerRef` written from a v1alpha2-style or made-up reference.
fn picker_from(reference: &Value) -> String {
    let name = reference
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("my-pool-epp");
    let port = ["port", "portNumber"]
        .iter()
        .find_map(|key| reference.get(*key))
        .map_or(DEFAULT_EPP_PORT, |port| {
            number_or(port.get("number").unwrap_or(port), DEFAULT_EPP_PORT)
        });
    let mut fields = Vec::new();
    for key in ["group", "kind"] {
        if let Some(value) = reference.get(key).and_then(Value::as_str) {
            fields.push(format!("{key}: {}", scalar(value)));
        }
    }
    fields.push(format!("name: {}", scalar(name)));
    fields.push(format!("port: {{number: {port}}}"));
    if let Some(mode) = reference.get("failureMode").and_then(Value::as_str) {
        fields.push(format!("failureMode: {}", scalar(mode)));
    }
    format!("{{{}}}", fields.join(", "))
}

/// A v1alpha2 `extensionRef` written from a v1 `endpointPickerRef`.
fn legacy_picker_from(reference: &Value) -> String {
    let name = reference
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("my-pool-epp");
    let mut fields = vec![format!("name: {}", scalar(name))];
    if let Some(port) = reference.get("port") {
        let number = number_or(port.get("number").unwrap_or(port), DEFAULT_EPP_PORT);
        fields.push(format!("portNumber: {number}"));
    }
    if let Some(mode) = reference.get("failureMode").and_then(Value::as_str) {
        fields.push(format!("failureMode: {}", scalar(mode)));
    }
    format!("{{{}}}", fields.join(", "))
}

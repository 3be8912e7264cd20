//! The shape of a JSON answer: every path with the type found there (`choices[].delta.role:
//! string`), so two servers' answers compare without their values.

use std::collections::BTreeSet;

use serde_json::Value;

/// `path: type` for every leaf and container of `value`; array items merge under `[]`.
///
/// Null fields are left out: vLLM sends dozens of fields as `null` (`logprobs`,
/// `kv_transfer_params`, `prompt_token_ids`…) that the simulator omits, and a JSON client
/// reads an absent field and a null one alike (the simulator's README lists this).
pub fn shape(value: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk(value, "$", &mut out);
    out
}

fn walk(value: &Value, path: &str, out: &mut BTreeSet<String>) {
    if value.is_null() {
        return;
    }
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        // vLLM writes 1.0 where a float is meant; integer and float are one JSON type.
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    out.insert(format!("{path}: {kind}"));
    match value {
        Value::Array(items) => {
            for item in items {
                walk(item, &format!("{path}[]"), out);
            }
        }
        Value::Object(fields) => {
            for (key, field) in fields {
                walk(field, &format!("{path}.{key}"), out);
            }
        }
        _ => {}
    }
}

/// The differences of two shapes: `- path` only in vLLM's, `+ path` only in the simulator's.
pub fn diff(real: &BTreeSet<String>, sim: &BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = real.difference(sim).map(|p| format!("- {p}")).collect();
    out.extend(sim.difference(real).map(|p| format!("+ {p}")));
    out
}

/// The `data:` events of an SSE body, `[DONE]` as the string `"[DONE]"`.
pub fn sse_events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|event| event.trim().strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap_or_else(|_| Value::from(data)))
        .collect()
}

/// What kind of chunk each streamed event is, in order: `role`, `token`, `finish`, `usage`,
/// `done`; a stream's sequence without its length (runs of `token` collapse to one).
pub fn chunk_kinds(events: &[Value]) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = Vec::new();
    for event in events {
        let kind = if event == "[DONE]" {
            "done"
        } else if event["choices"].as_array().is_some_and(Vec::is_empty) {
            "usage"
        } else if !event["choices"][0]["finish_reason"].is_null() {
            "finish"
        } else if event["choices"][0]["delta"]["role"].is_string() {
            "role"
        } else {
            "token"
        };
        if !(kind == "token" && kinds.last() == Some(&"token")) {
            kinds.push(kind);
        }
    }
    kinds
}

#[test]
fn shapes_differ_where_keys_or_types_do() {
    let a = serde_json::json!({"a": 1, "b": [{"c": "x"}]});
    let b = serde_json::json!({"a": 2.5, "b": [{"c": null}], "d": true});
    assert_eq!(
        diff(&shape(&a), &shape(&b)),
        ["- $.b[].c: string", "+ $.d: bool"]
    );
}

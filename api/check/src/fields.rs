//! A small declarative schema for the raw document, and the walker that checks a
//! value against it: unknown fields, missing required fields, wrong types, enums,
//! integer ranges and list sizes.
//!
//! Each kind's module declares its fields as `const` tables mirroring upstream's
//! CRD, and supplies [`Hints`] that replace the generic message wherever a
//! well-known mistake (usually an older API version's shape) has a precise fix.

use serde_json::{Map, Value};

use super::Reporter;
use super::hints::{closest, describe};

/// The expected type of a field.
#[derive(Debug)]
pub(crate) enum Ty {
    /// Any string.
    Str,
    /// A string of `min..=max` characters.
    Text { min: usize, max: usize },
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// An integer in `min..=max`.
    Int { min: i64, max: i64 },
    /// An object with exactly these fields.
    Obj(&'static [Field]),
    /// A list of `item`, with `min..=max` entries.
    List {
        item: &'static Ty,
        min: usize,
        max: usize,
    },
    /// A string-to-string map; its keys and values are checked by the caller.
    StrMap,
    /// Anything; checked by the caller, if at all.
    Any,
}

/// One field of an object.
#[derive(Debug)]
pub(crate) struct Field {
    /// The JSON/YAML key.
    pub name: &'static str,
    /// What its value must be.
    pub ty: Ty,
    /// Whether it must be present.
    pub required: bool,
    /// How to write it, shown when it is missing (e.g. `targetPorts: [{number: 8000}]`).
    pub example: &'static str,
}

/// A required field.
pub(crate) const fn req(name: &'static str, ty: Ty, example: &'static str) -> Field {
    Field {
        name,
        ty,
        required: true,
        example,
    }
}

/// An optional field.
pub(crate) const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
        example: "",
    }
}

/// A hint that replaces the generic message for one field.
#[derive(Debug)]
pub(crate) struct Hint {
    /// The complete message (without the path, which the walker adds).
    pub message: String,
    /// A required sibling that this hint already tells the user to write, so the
    /// walker does not also report it as missing.
    pub replaces: Option<&'static str>,
}

impl Hint {
    /// A hint that covers only the field it is about.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            replaces: None,
        }
    }

    /// A hint that also stands for the missing required field `field`.
    pub(crate) fn replacing(message: impl Into<String>, field: &'static str) -> Self {
        Self {
            message: message.into(),
            replaces: Some(field),
        }
    }
}

/// Per-kind fixes for well-known mistakes. Paths given to hints are schema paths:
/// dotted field names with `[]` for list items (`spec.targetPorts[].number`).
pub(crate) struct Hints {
    /// Called for every known field before it is checked; `Some` replaces the check.
    pub node: fn(path: &str, value: &Value) -> Option<Hint>,
    /// Called for every unknown field `key` of the object at `path`.
    pub unknown:
        fn(path: &str, key: &str, value: &Value, parent: &Map<String, Value>) -> Option<Hint>,
}

/// Hints that never fire.
pub(crate) const NO_HINTS: Hints = Hints {
    node: |_, _| None,
    unknown: |_, _, _, _| None,
};

/// Checks `value`, found at `path` (display) / `schema` (schema path), against `ty`.
pub(crate) fn walk(
    rep: &mut Reporter<'_>,
    hints: &Hints,
    path: &str,
    schema: &str,
    ty: &Ty,
    value: &Value,
) {
    if let Some(hint) = (hints.node)(schema, value) {
        rep.report(path, hint.message);
        return;
    }
    match ty {
        Ty::Str => {
            if !value.is_string() {
                rep.report(path, format!("must be a string, got {}", describe(value)));
            }
        }
        Ty::Text { min, max } => match value.as_str() {
            None => rep.report(path, format!("must be a string, got {}", describe(value))),
            Some(text) => {
                let length = text.chars().count();
                if length < *min {
                    rep.report(path, "must not be empty");
                } else if length > *max {
                    rep.report(
                        path,
                        format!("is {length} characters long; at most {max} are allowed"),
                    );
                }
            }
        },
        Ty::Enum(allowed) => check_enum(rep, path, allowed, value),
        Ty::Int { min, max } => check_int(rep, path, *min, *max, value),
        Ty::Obj(fields) => match value.as_object() {
            Some(object) => walk_object(rep, hints, path, schema, fields, object),
            None => rep.report(
                path,
                format!(
                    "must be an object (a mapping of fields), got {}",
                    describe(value)
                ),
            ),
        },
        Ty::List { item, min, max } => match value.as_array() {
            Some(items) => {
                if items.len() < *min {
                    rep.report(
                        path,
                        format!("must have at least {min} entr{}", plural_y(*min)),
                    );
                } else if items.len() > *max {
                    rep.report(
                        path,
                        format!("has {} entries; at most {max} are allowed", items.len()),
                    );
                }
                let item_schema = format!("{schema}[]");
                for (i, item_value) in items.iter().enumerate() {
                    walk(
                        rep,
                        hints,
                        &format!("{path}[{i}]"),
                        &item_schema,
                        item,
                        item_value,
                    );
                }
            }
            None => rep.report(path, format!("must be a list, got {}", describe(value))),
        },
        Ty::StrMap => {
            if !value.is_object() {
                rep.report(
                    path,
                    format!(
                        "must be a map of strings to strings, got {}",
                        describe(value)
                    ),
                );
            }
        }
        Ty::Any => {}
    }
}

/// Checks the fields of an object: unknown ones, then known ones, then missing ones.
pub(crate) fn walk_object(
    rep: &mut Reporter<'_>,
    hints: &Hints,
    path: &str,
    schema: &str,
    fields: &[Field],
    object: &Map<String, Value>,
) {
    let mut replaced = Vec::new();
    for (key, value) in object {
        let Some(field) = fields.iter().find(|f| f.name == key) else {
            let at = join(path, key);
            match (hints.unknown)(schema, key, value, object) {
                Some(hint) => {
                    replaced.extend(hint.replaces);
                    rep.report(&at, hint.message);
                }
                None => {
                    // A typo of a required field stands for it: one finding, not two.
                    let names: Vec<&'static str> = fields.iter().map(|f| f.name).collect();
                    replaced.extend(closest(key, &names));
                    rep.report(&at, unknown_message(key, fields));
                }
            }
            continue;
        };
        walk(
            rep,
            hints,
            &join(path, key),
            &join(schema, key),
            &field.ty,
            value,
        );
    }
    for field in fields.iter().filter(|f| f.required) {
        if !object.contains_key(field.name) && !replaced.contains(&field.name) {
            let at = join(path, field.name);
            if field.example.is_empty() {
                rep.report(&at, "is required");
            } else {
                rep.report(&at, format!("is required: add {}", field.example));
            }
        }
    }
}

/// `unknown field "x"`, with the closest known field when it looks like a typo.
fn unknown_message(key: &str, fields: &[Field]) -> String {
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    match closest(key, &names) {
        Some(name) => format!("unknown field {key:?}; did you mean {name:?}?"),
        None => format!(
            "unknown field {key:?}; the fields here are {}",
            names.join(", ")
        ),
    }
}

fn check_enum(rep: &mut Reporter<'_>, path: &str, allowed: &[&str], value: &Value) {
    let Some(text) = value.as_str() else {
        rep.report(
            path,
            format!(
                "must be one of {}, got {}",
                allowed.join(", "),
                describe(value)
            ),
        );
        return;
    };
    if allowed.contains(&text) {
        return;
    }
    // The enums are case-sensitive; a differently-cased value is the usual slip.
    let same_letters = allowed.iter().find(|a| a.eq_ignore_ascii_case(text));
    match same_letters.copied().or_else(|| closest(text, allowed)) {
        Some(fix) => rep.report(
            path,
            format!(
                "{text:?} is not valid; write {fix} (one of {})",
                allowed.join(", ")
            ),
        ),
        None => rep.report(
            path,
            format!("{text:?} is not valid; use one of {}", allowed.join(", ")),
        ),
    }
}

/// Checks that `value` is an integer in `min..=max`; a quoted or fractional number
/// gets a message saying so, since YAML makes that an easy slip.
pub(crate) fn check_int(rep: &mut Reporter<'_>, path: &str, min: i64, max: i64, value: &Value) {
    let range = if max == i64::MAX {
        String::new()
    } else {
        format!(" from {min} to {max}")
    };
    match value {
        Value::Number(number) => match number.as_i64() {
            Some(n) if (min..=max).contains(&n) => {}
            Some(n) => rep.report(path, format!("is {n}; it must be{range}")),
            None if number.is_u64() => rep.report(path, format!("is {number}; it must be{range}")),
            None => rep.report(path, format!("must be a whole number{range}, got {number}")),
        },
        Value::String(text) if text.trim().parse::<i64>().is_ok() => rep.report(
            path,
            format!("must be an integer, not the string {text:?}: remove the quotes"),
        ),
        other => rep.report(
            path,
            format!("must be an integer{range}, got {}", describe(other)),
        ),
    }
}

/// `a.b`, or `b` at the root.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn plural_y(n: usize) -> &'static str {
    if n == 1 { "y" } else { "ies" }
}

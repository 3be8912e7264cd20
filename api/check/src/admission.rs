//! The validating webhook's verdict: the checker's rules applied to one
//! admission request, plus the one rule only an update can break (a manual weight
//! edit on a route rule that an active InferenceRollout weighs).
//!
//! [`admit`] is pure: the request's objects, the [`Objects`] the webhook watches
//! and its [`Config`] in, a [`Verdict`] out. `switchyard-rollout` wraps it in an
//! HTTPS AdmissionReview handler; `switchyard-check` runs the same rules on files.

mod weights;

use serde_json::Value;

use super::kinds::{Class, Kind, classify};
use super::objects::Objects;
use super::{Document, Finding, Severity, check_document};
use switchyard_api::rollout::Phase;

/// The admission operation (`request.operation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A new object.
    Create,
    /// A change to an existing object.
    Update,
    /// A deletion (never judged: nothing is left to be wrong).
    Delete,
    /// `exec`, `proxy` and the like (never judged).
    Connect,
}

impl Operation {
    /// Reads `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "CREATE" => Some(Self::Create),
            "UPDATE" => Some(Self::Update),
            "DELETE" => Some(Self::Delete),
            "CONNECT" => Some(Self::Connect),
            _ => None,
        }
    }
}

/// One admission request, as far as the rules care.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// What is being written (`request.object`); `None` on DELETE.
    pub object: Option<&'a Value>,
    /// What was there before (`request.oldObject`), on UPDATE.
    pub old_object: Option<&'a Value>,
    /// `request.operation`.
    pub operation: Operation,
    /// `request.namespace`: where the object lands when its metadata does not say.
    pub namespace: Option<&'a str>,
    /// `request.userInfo.username`.
    pub username: &'a str,
}

/// Deny, or only warn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Enforcement {
    /// Refuse the request with a message that says what to change.
    #[default]
    Deny,
    /// Accept it with an AdmissionReview warning (`kubectl` prints it).
    Warn,
}

/// What the webhook enforces and whom it trusts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// References to objects that are not there (a pool, route, rule or the
    /// endpoint picker's Service). `Warn` suits clusters whose tools apply
    /// objects in no particular order.
    pub missing_references: Enforcement,
    /// A weight changed by hand on a route rule an active rollout weighs.
    pub manual_weight_edits: Enforcement,
    /// Users whose weight edits are the rollout controller's own (its service
    /// account, `system:serviceaccount:<namespace>:<name>`).
    pub trusted_users: Vec<String>,
}

/// The answer to one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the write may go ahead.
    pub allowed: bool,
    /// Why not (when denied): every problem, each saying what to change.
    pub message: Option<String>,
    /// What `kubectl` prints as `Warning:` lines, allowed or not.
    pub warnings: Vec<String>,
}

impl Verdict {
    fn allow() -> Self {
        Self {
            allowed: true,
            ..Self::default()
        }
    }
}

/// Whether a rollout in `phase` may still move weights: every phase but the
/// three final ones (a rollout not started yet counts, it is about to).
pub fn rollout_is_active(phase: Option<Phase>) -> bool {
    !matches!(
        phase,
        Some(Phase::Succeeded | Phase::Aborted | Phase::Failed)
    )
}

/// Judges one admission request against `objects`.
pub fn admit(request: &Request<'_>, objects: &Objects, config: &Config) -> Verdict {
    if matches!(request.operation, Operation::Delete | Operation::Connect) {
        return Verdict::allow();
    }
    let Some(object) = request.object else {
        return Verdict::allow();
    };
    let text = |key: &str| object.get(key).and_then(Value::as_str);
    let kind = match classify(text("apiVersion"), text("kind")) {
        Class::Served(kind) | Class::Unserved { kind, .. } => kind,
        // Misspelt kinds never reach a webhook: the apiserver has no such resource.
        Class::UnknownKind { .. } | Class::Other => return Verdict::allow(),
    };
    if kind == Kind::HttpRoute
        && !names_inference_pool(object)
        && !request.old_object.is_some_and(names_inference_pool)
    {
        return Verdict::allow(); // Not an inference route.
    }
    if request.operation == Operation::Update
        && request.old_object.and_then(|old| old.get("spec")) == object.get("spec")
    {
        // Labels, annotations, finalizers: a rule added since the object was
        // written must not block its deletion or its controller's bookkeeping.
        return Verdict::allow();
    }
    let document = Document {
        source: "admission".to_owned(),
        index: 1,
        line: 1,
        value: with_namespace(object, request.namespace),
    };
    let mut findings = check_document(&document, objects);
    if kind == Kind::HttpRoute
        && request.operation == Operation::Update
        && !config.trusted_users.iter().any(|u| u == request.username)
        && let Some(old) = request.old_object
    {
        weights::manual_edits(&document.value, old, objects, config, &mut findings);
    }
    if kind == Kind::Rewrite
        && request.operation == Operation::Update
        && !config.trusted_users.iter().any(|u| u == request.username)
        && let Some(old) = request.old_object
    {
        weights::manual_rewrite_edits(&document.value, old, objects, config, &mut findings);
    }
    verdict(&document, findings, config)
}

/// Whether any rule of an HTTPRoute has a backendRef of kind InferencePool.
fn names_inference_pool(route: &Value) -> bool {
    let rules = route.pointer("/spec/rules").and_then(Value::as_array);
    rules.into_iter().flatten().any(|rule| {
        let refs = rule.get("backendRefs").and_then(Value::as_array);
        refs.into_iter()
            .flatten()
            .any(|backend| backend.get("kind").and_then(Value::as_str) == Some("InferencePool"))
    })
}

/// The object with `metadata.namespace` set from the request when it is missing
/// (the apiserver normally fills it in before admission).
fn with_namespace(object: &Value, namespace: Option<&str>) -> Value {
    let mut object = object.clone();
    if let (Some(namespace), Some(metadata)) = (
        namespace,
        object.get_mut("metadata").and_then(Value::as_object_mut),
    ) {
        metadata
            .entry("namespace")
            .or_insert_with(|| Value::from(namespace));
    }
    object
}

fn verdict(document: &Document, findings: Vec<Finding>, config: &Config) -> Verdict {
    let mut denials = Vec::new();
    let mut warnings = Vec::new();
    for finding in findings {
        let denies = match finding.severity {
            Severity::Error => true,
            Severity::Missing => config.missing_references == Enforcement::Deny,
            Severity::Warning => false,
        };
        if denies {
            denials.push(finding.message);
        } else {
            warnings.push(finding.message);
        }
    }
    if denials.is_empty() {
        return Verdict {
            allowed: true,
            message: None,
            warnings,
        };
    }
    let value = &document.value;
    let field = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
    let kind = field("/kind").unwrap_or("object");
    let name = field("/metadata/name").unwrap_or("<unnamed>");
    let problems = if denials.len() == 1 {
        "1 problem".to_owned()
    } else {
        format!("{} problems", denials.len())
    };
    Verdict {
        allowed: false,
        message: Some(format!(
            "{kind} {name}: {problems} (Switchyard): {}",
            denials.join("; and ")
        )),
        warnings,
    }
}

#[cfg(test)]
mod tests;

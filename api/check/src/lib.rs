//! The manifest checker: schema and semantic rules for our kinds and for the
//! HTTPRoutes that point at them, with messages that say how to write each field
//! for the served API version.
//!
//! One rule set, two front ends: the `switchyard-check` binary runs it over files
//! and the validating webhook of `switchyard-rollout` runs it over admission
//! requests ([`admission::admit`]). Everything here is pure: [`parse_documents`]
//! turns text into [`Document`]s, [`objects_of`] collects the [`Objects`] they can
//! reference, and [`check_document`] turns one document into [`Finding`]s against
//! those objects (the webhook builds the same view from its watches). Problems in
//! manifests are data, not errors; only unreadable YAML is a [`SyntaxError`]. The
//! InferenceRollout rules are also public one by one in [`rollout`], over typed
//! objects.

pub mod admission;
mod fields;
mod hints;
mod kinds;
mod labels;
mod load;
mod meta;
mod model;
mod objective;
mod objects;
mod peers;
mod pool;
mod refs;
mod rewrite;
pub mod rollout;
mod route;
mod typed;

use std::fmt;

use serde_json::Value;

pub use load::{Document, SyntaxError, parse_bytes, parse_documents};
pub use objects::{Object, Objects, PoolObject, SERVED_MODELS_ANNOTATION, Scope, objects_of};

use kinds::{Class, Kind, classify};
use refs::PoolIndex;

/// One problem in one document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The document's source (file path).
    pub source: String,
    /// The document's 1-based position in its source.
    pub index: usize,
    /// The document's `kind`, or `<no kind>`.
    pub kind: String,
    /// The document's `metadata.name`, or `<unnamed>`.
    pub name: String,
    /// What is wrong and how to write it, starting with the field path.
    pub message: String,
    /// How bad it is.
    pub severity: Severity,
}

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The object is wrong, by itself or against objects that exist.
    Error,
    /// The object names another that is not there (a pool, route, rule or
    /// Service). Offline that is an error; the webhook denies it too unless told
    /// to only warn, since `kubectl apply -f dir` does not order objects.
    Missing,
    /// Worth knowing but possibly fine (a model no pool declares): never fails.
    Warning,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let warning = if self.severity == Severity::Warning {
            "warning: "
        } else {
            ""
        };
        write!(
            f,
            "{}:{}: {}/{}: {warning}{}",
            self.source, self.index, self.kind, self.name, self.message
        )
    }
}

impl Finding {
    /// Whether this finding fails the check (errors and missing references).
    pub fn fails(&self) -> bool {
        self.severity != Severity::Warning
    }
}

/// How many documents were checked and how many were someone else's kinds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Documents of our kinds (and HTTPRoutes), checked.
    pub checked: usize,
    /// Documents of other kinds (Deployment, Service, Gateway…), skipped.
    pub other: usize,
}

/// Counts the documents [`check_documents`] checks and skips.
pub fn tally(documents: &[Document]) -> Tally {
    let mut tally = Tally::default();
    for document in documents {
        match classify_document(&document.value) {
            Class::Other => tally.other += 1,
            _ => tally.checked += 1,
        }
    }
    tally
}

/// Checks every document; references between documents (a route's or objective's
/// InferencePool) are resolved within `documents` whenever they hold any pool.
pub fn check_documents(documents: &[Document]) -> Vec<Finding> {
    let objects = objects_of(documents);
    documents
        .iter()
        .flat_map(|document| check_document(document, &objects))
        .collect()
}

/// Checks one document against itself and against `objects`.
pub fn check_document(document: &Document, objects: &Objects) -> Vec<Finding> {
    let index = PoolIndex::build(objects);
    let mut findings = Vec::new();
    check_into(document, &index, objects, &mut findings);
    findings
}

fn check_into(
    document: &Document,
    index: &PoolIndex,
    objects: &Objects,
    findings: &mut Vec<Finding>,
) {
    let value = &document.value;
    let class = classify_document(value);
    if class == Class::Other {
        return;
    }
    let mut rep = Reporter {
        kind: text(value, "kind").unwrap_or("<no kind>").to_owned(),
        name: value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>")
            .to_owned(),
        document,
        findings,
    };
    let kind = match class {
        Class::Other => return,
        Class::UnknownKind { message } => {
            rep.report("kind", message);
            return;
        }
        Class::Served(kind) => kind,
        Class::Unserved { kind, message } => {
            rep.report("apiVersion", message);
            if kind == Kind::LegacyModel {
                // An InferenceModel outside v1alpha2 is explained as a migration to
                // InferenceObjective, field by field, not checked as legacy.
                model::check_unserved(&mut rep, value, index);
                return;
            }
            kind
        }
    };
    let before = rep.findings.len();
    meta::check(&mut rep, value);
    match kind {
        Kind::Pool => pool::check(&mut rep, value),
        Kind::LegacyPool => pool::check_legacy(&mut rep, value),
        Kind::LegacyModel => model::check(&mut rep, value, index),
        Kind::Objective => objective::check(&mut rep, value, index),
        Kind::Rewrite => rewrite::check(&mut rep, value, index),
        Kind::HttpRoute => route::check(&mut rep, value, index),
        Kind::Rollout => rollout::check(&mut rep, value, objects),
    }
    if rep.findings.len() == before {
        typed::check(&mut rep, kind, value);
    }
    // Rules on other objects that do not block the decode check above.
    match kind {
        Kind::Pool | Kind::LegacyPool => peers::picker_service(&mut rep, value, objects),
        Kind::Rewrite => peers::served_models(&mut rep, value, objects),
        _ => {}
    }
}

fn classify_document(value: &Value) -> Class {
    classify(text(value, "apiVersion"), text(value, "kind"))
}

/// A top-level string field of a document.
fn text<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

/// Collects the findings of one document.
pub(crate) struct Reporter<'a> {
    document: &'a Document,
    kind: String,
    name: String,
    findings: &'a mut Vec<Finding>,
}

impl Reporter<'_> {
    /// Records a problem at `path` (dotted, with list indices; empty for the whole
    /// document). A message that starts with a verb ("is required", "must be…")
    /// reads on from the path; any other is set off by a colon.
    pub(crate) fn report(&mut self, path: &str, message: impl Into<String>) {
        self.report_as(Severity::Error, path, message);
    }

    /// Records a reference to an object that is not there.
    pub(crate) fn missing(&mut self, path: &str, message: impl Into<String>) {
        self.report_as(Severity::Missing, path, message);
    }

    /// Records something worth knowing that never fails the check.
    pub(crate) fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.report_as(Severity::Warning, path, message);
    }

    /// Records a finding of `severity`.
    pub(crate) fn report_as(&mut self, severity: Severity, path: &str, message: impl Into<String>) {
        let message = message.into();
        let reads_on = ["is ", "must ", "has "]
            .iter()
            .any(|verb| message.starts_with(verb));
        let message = match (path.is_empty(), reads_on) {
            (true, _) => message,
            (false, true) => format!("{path} {message}"),
            (false, false) => format!("{path}: {message}"),
        };
        self.findings.push(Finding {
            source: self.document.source.clone(),
            index: self.document.index,
            kind: self.kind.clone(),
            name: self.name.clone(),
            message,
            severity,
        });
    }

    /// The namespace the document lands in.
    pub(crate) fn namespace(&self) -> &str {
        self.document
            .value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(hints::DEFAULT_NAMESPACE)
    }
}

#[cfg(test)]
mod tests;

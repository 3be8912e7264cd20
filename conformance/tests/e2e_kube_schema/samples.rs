//! The project's manifest fixtures, document by document, and the two verdicts on each.

use std::path::{Path, PathBuf};

use serde_json::Value;
use switchyard_check::{Document, Objects, Severity, check_document, parse_documents, tally};
use switchyard_conformance::kube::{self, bins, objects};

/// Fixture directories and files, relative to the workspace root. Directories are read one
/// level deep (and `fixed/` one more, by the seed subdirectories).
pub const FIXTURES: &[&str] = &[
    "api/check/tests/fixtures/manifests/valid",
    "api/check/tests/fixtures/manifests/invalid",
    "api/check/tests/fixtures/manifests/rollout-invalid",
    "api/check/tests/fixtures/manifests/fixed/seed-002",
    "api/check/tests/fixtures/manifests/fixed/seed-003",
    "api/check/tests/fixtures/manifests/garbage",
    "api/tests/fixtures/httproute",
    "api/tests/fixtures/rollout",
    "conformance/examples/quickstart",
    "rollout/tests/fixtures/admission",
];

/// Metadata the API server sets (and the namespace), removed before a create.
const SERVER_SET: &[&str] = &[
    "namespace",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
];

/// Files in those directories that are not Kubernetes manifests.
const NOT_MANIFESTS: &[&str] = &["local-endpoints.yaml"];

/// One document of one fixture, with the checker's verdict.
pub struct Sample {
    /// `file:index`.
    pub label: String,
    /// The object.
    pub value: Value,
    /// The checker's errors on the object by itself (references to absent objects and
    /// warnings left out: the API server judges objects one at a time and never follows
    /// references).
    pub checker_errors: Vec<String>,
}

/// Every fixture file.
pub fn fixture_files() -> Vec<PathBuf> {
    let root = bins::workspace_root();
    let mut files = Vec::new();
    for entry in FIXTURES {
        let path = root.join(entry);
        let mut found: Vec<PathBuf> = std::fs::read_dir(&path)
            .unwrap_or_else(|err| panic!("reading fixture directory {}: {err}", path.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .filter(|p| !NOT_MANIFESTS.iter().any(|n| p.ends_with(n)))
            .collect();
        found.sort();
        files.extend(found);
    }
    files
}

/// The documents of `file` the checker checks (our kinds and HTTPRoutes), or why none are.
pub fn samples_of(file: &Path) -> Result<Vec<Sample>, String> {
    let root = bins::workspace_root();
    let source = file
        .strip_prefix(&root)
        .unwrap_or(file)
        .display()
        .to_string();
    let text = std::fs::read_to_string(file).map_err(|err| format!("{source}: {err}"))?;
    let documents = parse_documents(&source, &text).map_err(|err| err.to_string())?;
    let empty = Objects::default();
    Ok(documents
        .into_iter()
        .filter(|doc| tally(std::slice::from_ref(doc)).checked == 1)
        .map(|doc| sample(&doc, &empty))
        .collect())
}

fn sample(doc: &Document, objects: &Objects) -> Sample {
    let checker_errors = check_document(doc, objects)
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.message)
        .collect();
    Sample {
        label: format!("{}:{}", doc.source, doc.index),
        value: doc.value.clone(),
        checker_errors,
    }
}

/// The checker's verdict on an object of our kinds, by itself.
pub fn checker_errors(value: &Value) -> Vec<String> {
    let doc = Document {
        source: "mutation".to_owned(),
        index: 1,
        line: 1,
        value: value.clone(),
    };
    sample(&doc, &Objects::default()).checker_errors
}

/// The API server's verdict: `Ok` when it stored the object, `Err(message)` when it refused.
/// A kind or version it does not serve is a refusal too, as it is for `kubectl apply`.
pub async fn server_verdict(
    client: &::kube::Client,
    value: &Value,
    namespace: &str,
) -> Result<(), String> {
    // Each fixture file gets a namespace of its own (two files may name the same object), and
    // what the server sets on stored objects (a fixture copied from `kubectl get -o yaml`
    // carries it) is dropped, as `kubectl create` would have to.
    let mut value = value.clone();
    strip_server_set(&mut value);
    match objects::create(client, &value, namespace).await {
        Ok(_) => Ok(()),
        Err(err) => match err {
            // Discovery answers 404 for a group or version no CRD serves.
            kube::Error::Api {
                source: ::kube::Error::Api(status),
                ..
            } if status.code == 404 => Err(format!("not served: {}", status.message)),
            kube::Error::Api {
                source: ::kube::Error::Api(status),
                ..
            } => Err(format!(
                "{} {}: {}",
                status.code, status.reason, status.message
            )),
            kube::Error::Api {
                source: ::kube::Error::Discovery(discovery),
                ..
            } => Err(format!("not served: {discovery}")),
            other => panic!("the API server could not be asked: {other:?}"),
        },
    }
}

/// Removes [`SERVER_SET`] from the object's metadata.
pub fn strip_server_set(value: &mut Value) {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in SERVER_SET {
            meta.remove(*key);
        }
    }
}

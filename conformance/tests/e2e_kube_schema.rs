//! Schema and CEL against a real kube-apiserver: every manifest fixture of the project gets
//! the same verdict from the API server (with Switchyard's CRDs installed) as from
//! `switchyard-check`; every CEL rule of the CRDs, broken once, is refused by both; valid
//! objects survive an update (the path where transition rules run); and upstream's CRDs
//! (`/work/shared/reference/upstream-crds`, or `SWITCHYARD_UPSTREAM_CRDS`) accept the objects
//! ours accept.
//!
//! Needs the cached control plane: `cargo xtask kube build` (or SWITCHYARD_KUBE_BIN_DIR).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "e2e_kube_schema/mutations.rs"]
mod mutations;
#[path = "e2e_kube_schema/samples.rs"]
mod samples;

use std::path::PathBuf;

use serde_json::Value;
use switchyard_conformance::kube::{ControlPlane, accounts, bins, objects};

use samples::{Sample, checker_errors, fixture_files, samples_of, server_verdict};

/// Where upstream's CRDs are unless `SWITCHYARD_UPSTREAM_CRDS` says otherwise.
const UPSTREAM_CRDS: &str = "/work/shared/reference/upstream-crds";

fn verdict(errors: &[String]) -> &'static str {
    if errors.is_empty() {
        "accepts"
    } else {
        "refuses"
    }
}

/// Every fixture, then every accepted one updated in place.
#[tokio::test]
async fn e2e_kube_schema_fixtures_get_the_same_verdict_from_the_api_server_and_the_checker() {
    let plane = ControlPlane::start().await.expect("control plane");
    println!(
        "control plane ready in {:.1}s with {} CRDs",
        plane.startup().as_secs_f64(),
        plane.crds().len()
    );
    let client = plane.client();
    let mut disagreements = Vec::new();
    let mut compared = 0;
    let mut accepted: Vec<(String, Value, String)> = Vec::new();
    for (file_index, file) in fixture_files().iter().enumerate() {
        let namespace = format!("fixture-{file_index}");
        accounts::ensure_namespace(&client, &namespace)
            .await
            .unwrap();
        let samples = match samples_of(file) {
            Ok(samples) => samples,
            Err(reason) => {
                // Unreadable YAML never reaches an API server: kubectl stops first.
                println!(
                    "{}: not YAML the API server could be sent ({reason})",
                    file.display()
                );
                continue;
            }
        };
        for Sample {
            label,
            value,
            checker_errors,
        } in samples
        {
            compared += 1;
            let server = server_verdict(&client, &value, &namespace).await;
            let agree = server.is_ok() == checker_errors.is_empty();
            println!(
                "{label}: API server {}, checker {}",
                if server.is_ok() { "accepts" } else { "refuses" },
                verdict(&checker_errors)
            );
            if !agree {
                disagreements.push(format!(
                    "{label}: API server says {:?}; switchyard-check says {:?}",
                    server.as_ref().err(),
                    checker_errors
                ));
            }
            if server.is_ok() {
                accepted.push((label, value, namespace.clone()));
            }
        }
    }
    assert!(compared > 20, "only {compared} fixture documents found");

    // An update runs the schema again, and CEL transition rules (oldSelf) only then.
    for (label, value, namespace) in &accepted {
        let mut value = value.clone();
        samples::strip_server_set(&mut value);
        if let Err(err) = objects::replace(&client, &value, namespace).await {
            disagreements.push(format!(
                "{label}: accepted on create, refused on update: {err:?}"
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {compared} documents judged differently:\n  {}",
        disagreements.len(),
        disagreements.join("\n  ")
    );
}

/// Each CEL rule broken once: both refuse, and the API server says the rule's message.
#[tokio::test]
async fn e2e_kube_schema_every_cel_rule_is_enforced_by_the_api_server_and_the_checker() {
    let plane = ControlPlane::start().await.expect("control plane");
    let client = plane.client();
    let root = bins::workspace_root();
    let mut problems = Vec::new();
    for (i, mutation) in mutations::MUTATIONS.iter().enumerate() {
        let docs = objects::read_documents(&root.join(mutation.file)).unwrap();
        let mut value = docs[mutation.index - 1].clone();
        // The unmutated base must pass both, or the row tests nothing.
        assert!(
            checker_errors(&value).is_empty(),
            "{}: base {}:{} is not valid for the checker",
            mutation.rule,
            mutation.file,
            mutation.index
        );
        mutations::apply(&mut value, &(mutation.edits)());
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("name".to_owned(), Value::from(format!("mutation-{i}")));
            meta.remove("namespace");
        }
        let checker = checker_errors(&value);
        let server = server_verdict(&client, &value, "default").await;
        println!(
            "{}: API server {:?}; checker {:?}",
            mutation.rule,
            server.as_ref().err(),
            checker
        );
        match &server {
            Ok(()) => problems.push(format!("{}: the API server accepted it", mutation.rule)),
            Err(message) if !message.contains(mutation.rule) => problems.push(format!(
                "{}: the API server refused it for another reason: {message}",
                mutation.rule
            )),
            Err(_) => {}
        }
        if checker.is_empty() {
            problems.push(format!("{}: switchyard-check accepted it", mutation.rule));
        }
    }
    // The table must cover every rule the CRDs carry.
    let crds = std::fs::read_to_string(root.join("charts/crds/switchyard-crds.yaml")).unwrap();
    let rules = crds.matches("x-kubernetes-validations:").count();
    let messages = crds.matches("- message:").count();
    assert_eq!(
        messages,
        mutations::MUTATIONS.len(),
        "the CRDs carry {messages} CEL rules (in {rules} lists); add a mutation for each new one"
    );
    assert!(
        problems.is_empty(),
        "CEL rules not enforced alike:\n  {}",
        problems.join("\n  ")
    );
}

/// Upstream's CRDs, in a control plane of their own (same groups as ours), accept every
/// fixture object of a kind they define that ours accepts.
#[tokio::test]
async fn e2e_kube_schema_upstream_crds_accept_the_objects_ours_accept() {
    let upstream_dir = std::env::var_os("SWITCHYARD_UPSTREAM_CRDS")
        .map_or_else(|| PathBuf::from(UPSTREAM_CRDS), PathBuf::from);
    let upstream_files = objects::yaml_files(&upstream_dir).unwrap_or_else(|err| {
        panic!(
            "upstream CRDs not found ({err}); set SWITCHYARD_UPSTREAM_CRDS to a directory of \
             upstream CRD YAML files"
        )
    });
    let ours = ControlPlane::start()
        .await
        .expect("control plane with our CRDs");
    let upstream = ControlPlane::start_with_crds(&upstream_files)
        .await
        .expect("control plane with upstream CRDs");
    let mut problems = Vec::new();
    let mut compared = 0;
    for (file_index, file) in fixture_files().iter().enumerate() {
        let namespace = format!("fixture-{file_index}");
        for plane in [&ours, &upstream] {
            accounts::ensure_namespace(&plane.client(), &namespace)
                .await
                .unwrap();
        }
        let Ok(samples) = samples_of(file) else {
            continue;
        };
        for sample in samples {
            if server_verdict(&ours.client(), &sample.value, &namespace)
                .await
                .is_err()
            {
                continue;
            }
            match server_verdict(&upstream.client(), &sample.value, &namespace).await {
                Ok(()) => compared += 1,
                // A kind only Switchyard defines (InferenceRollout) is not a disagreement.
                Err(message) if message.starts_with("not served") => {}
                Err(message) => {
                    compared += 1;
                    problems.push(format!("{}: upstream refuses: {message}", sample.label));
                }
            }
        }
    }
    println!("{compared} objects accepted by both CRD sets");
    assert!(compared > 5, "only {compared} objects compared");
    assert!(
        problems.is_empty(),
        "upstream's CRDs refuse what ours accept:\n  {}",
        problems.join("\n  ")
    );
}

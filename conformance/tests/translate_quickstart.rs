//! The quickstart manifests are what a cluster would take: `switchyard-check`'s rules accept
//! them as a whole (references between files resolved), and the local gateway translates them
//! with its endpoints file.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use switchyard_check::{self as check, Tally};
use switchyard_local::plan::{PlanOptions, plan};
use switchyard_local::translate::{Manifests, translate};
use switchyard_local::{FILE_NAME, LocalEndpoints};

fn quickstart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart")
}

#[test]
fn quickstart_passes_switchyard_check() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(quickstart())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 7, "{files:?}");
    let mut documents = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        documents.extend(check::parse_documents(&file.display().to_string(), &text).unwrap());
    }
    let findings = check::check_documents(&documents);
    assert!(findings.is_empty(), "{findings:#?}");
    // 3 pools, 1 route, 3 objectives, 1 rewrite and 1 rollout checked; the Gateway and the
    // endpoints file are other kinds.
    assert_eq!(
        check::tally(&documents),
        Tally {
            checked: 9,
            other: 2
        }
    );

    // The checker is not blind to these files: a typo in a pool reference is caught.
    let route = files
        .iter()
        .find(|f| f.ends_with("httproute.yaml"))
        .unwrap();
    let broken = std::fs::read_to_string(route)
        .unwrap()
        .replace("name: vllm-qwen3-32b-canary", "name: vllm-qwen3-32b-canry");
    let mut documents: Vec<_> = documents
        .into_iter()
        .filter(|d| !d.source.ends_with("httproute.yaml"))
        .collect();
    documents.extend(check::parse_documents("httproute.yaml", &broken).unwrap());
    let findings = check::check_documents(&documents);
    // The route names a pool that does not exist, and the rollout's canary is no longer
    // among the rule's backends.
    assert_eq!(findings.len(), 2, "{findings:#?}");
    assert!(
        findings
            .iter()
            .any(|f| f.kind == "HTTPRoute" && f.message.contains("vllm-qwen3-32b-canry")),
        "{findings:#?}"
    );
    assert!(
        findings.iter().any(|f| f.kind == "InferenceRollout"
            && f.message
                .contains("no backendRef to InferencePool vllm-qwen3-32b-canary")),
        "{findings:#?}"
    );
}

#[test]
fn quickstart_translates_with_its_endpoints_file() {
    let manifests = Manifests::load(&quickstart()).unwrap();
    let endpoints = LocalEndpoints::load(&quickstart().join(FILE_NAME)).unwrap();
    let plan = plan(&endpoints, &manifests, &PlanOptions::default()).unwrap();
    let config = translate(&manifests, &plan.gateway).unwrap();
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
    let replicas: Vec<usize> = plan.pools.iter().map(|p| p.simulators.len()).collect();
    assert_eq!(replicas, [3, 2, 1]);
    // Each pool has its picker's and its model servers' clusters.
    for pool in &plan.pools {
        assert!(config.cluster(&pool.pool.cluster_name()).is_some());
        assert!(config.cluster(&pool.pool.picker_cluster_name()).is_some());
    }
}

//! Helpers shared by the integration tests: loading YAML fixtures and comparing
//! CRD schemas.

#![allow(dead_code)] // each test binary uses a different subset

pub mod schema_compare;

use std::path::PathBuf;

use serde_json::Value;

/// The path of a file under `api/tests/fixtures/`.
pub fn fixture_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
}

/// Reads a single-document YAML fixture as JSON.
pub fn load_yaml(relative: &str) -> Value {
    let path = fixture_path(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    serde_saphyr::from_str(&text)
        .unwrap_or_else(|err| panic!("cannot parse {} as YAML: {err}", path.display()))
}

/// The `openAPIV3Schema` of a CRD's first version.
pub fn open_api_schema(crd: &Value) -> &Value {
    &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
}

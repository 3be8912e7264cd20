//! Files in the repository that must agree: the CRD chart's copy, and each chart's README
//! values table.

use std::path::PathBuf;

use serde_json::Value;

/// The CRD chart ships a copy of what `crdgen` writes; the copy must not drift.
#[test]
fn crd_chart_copy_matches_the_generated_crds() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let generated = std::fs::read_to_string(root.join("charts/crds/switchyard-crds.yaml")).unwrap();
    let copy_path = root.join(crate::charts::CRD_CHART_COPY);
    let copy = std::fs::read_to_string(&copy_path).unwrap_or_default();
    assert!(
        copy == generated,
        "{} differs from charts/crds/switchyard-crds.yaml; from the workspace root run:\n\n    cp charts/crds/switchyard-crds.yaml {}\n",
        copy_path.display(),
        crate::charts::CRD_CHART_COPY
    );
}

/// Leaf keys of a values tree: maps are walked, anything else (lists, empty maps, scalars)
/// is a leaf.
fn leaf_keys(prefix: &str, value: &Value, out: &mut Vec<String>) {
    match value.as_object() {
        Some(map) if !map.is_empty() => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                // Resource quantities and label maps are documented as one value.
                if matches!(key.as_str(), "resources" | "flags" | "podLabels") {
                    out.push(path);
                } else {
                    leaf_keys(&path, child, out);
                }
            }
        }
        _ => out.push(prefix.to_owned()),
    }
}

/// Every chart's README lists every value of its values.yaml, as `` `key` `` in a table row.
#[test]
fn every_value_is_documented_in_the_chart_readme() {
    let charts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts");
    let mut checked = 0;
    for entry in std::fs::read_dir(&charts).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.join("Chart.yaml").is_file() {
            continue;
        }
        let readme = std::fs::read_to_string(dir.join("README.md"))
            .unwrap_or_else(|_| panic!("{} has no README.md", dir.display()));
        let values: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(dir.join("values.yaml")).unwrap())
                .unwrap();
        let mut keys = Vec::new();
        leaf_keys("", &values, &mut keys);
        let missing: Vec<&String> = keys
            .iter()
            .filter(|key| !key.is_empty())
            .filter(|key| !readme.contains(&format!("| `{key}` |")))
            .collect();
        assert!(
            missing.is_empty(),
            "{}/README.md does not list {missing:?} in its values table",
            dir.display()
        );
        checked += 1;
    }
    assert!(
        checked >= 2,
        "found only {checked} charts under {}",
        charts.display()
    );
}

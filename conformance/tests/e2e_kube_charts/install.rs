//! `helm install` of every chart case into the control plane.

use std::path::{Path, PathBuf};
use std::process::Command;

use switchyard_conformance::kube::{ControlPlane, bins};

/// One chart with one `ci/*-values.yaml`.
pub struct Case {
    /// The chart's directory name.
    pub chart: String,
    /// The values file's stem (`default`, `tls`, …).
    pub name: String,
    /// The values file.
    pub values: PathBuf,
}

impl Case {
    /// The release name, which is also its namespace.
    pub fn release(&self) -> String {
        let mut release = format!("{}-{}", self.chart, self.name);
        release.truncate(53);
        release
    }
}

/// Charts in install order: CRDs first, and the rollout chart (whose admission webhook
/// would then be asked about the other charts' objects) last.
pub const CHART_ORDER: &[&str] = &["switchyard-crds", "inferencepool", "bbr", "rollout"];

/// Every chart case, in install order.
pub fn cases() -> Vec<Case> {
    let charts = bins::workspace_root().join("charts");
    let mut cases = Vec::new();
    for chart in CHART_ORDER {
        let ci = charts.join(chart).join("ci");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&ci)
            .unwrap_or_else(|err| panic!("reading {}: {err}", ci.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with("-values.yaml"))
            .collect();
        files.sort();
        for values in files {
            let name = values
                .file_name()
                .map(|n| {
                    n.to_string_lossy()
                        .trim_end_matches("-values.yaml")
                        .to_owned()
                })
                .unwrap_or_default();
            cases.push(Case {
                chart: (*chart).to_owned(),
                name,
                values,
            });
        }
    }
    // A new chart must be added to CHART_ORDER, not silently left out.
    let all = std::fs::read_dir(&charts)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Chart.yaml").is_file())
        .count();
    assert_eq!(
        all,
        CHART_ORDER.len(),
        "a chart under charts/ is missing from CHART_ORDER"
    );
    cases
}

/// A Helm command against `plane`, with Helm's own state kept in `home`.
pub fn helm(plane: &ControlPlane, home: &Path) -> Command {
    let mut cmd = Command::new(plane.bins().helm().expect("helm (cargo xtask kube build)"));
    cmd.env("KUBECONFIG", plane.kubeconfig())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    cmd
}

/// `helm install` of `case` into its own namespace; `Err` carries Helm's output.
pub fn install(plane: &ControlPlane, home: &Path, case: &Case) -> Result<(), String> {
    let release = case.release();
    let chart = bins::workspace_root().join("charts").join(&case.chart);
    let out = helm(plane, home)
        .args(["install", &release])
        .arg(&chart)
        .args(["--namespace", &release, "--create-namespace", "--values"])
        .arg(&case.values)
        .output()
        .expect("running helm");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

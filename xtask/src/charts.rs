//! `cargo xtask charts` (also a step of `cargo xtask test`): every Helm chart under `charts/`
//! linted, rendered over its values matrix, and checked.
//!
//! A chart's matrix is its `ci/*-values.yaml` files (chart-testing's convention): defaults,
//! two replicas, TLS on, NetworkPolicy off, and whatever else the chart needs covered. For
//! each chart and file: `helm lint --strict`, then `helm template --include-crds` into
//! `target/charts/<chart>/<case>.yaml`. Then, over all rendered files at once:
//!
//! 1. `kubernetes-validate --strict` (one Python process) for built-in kinds; a kind it has
//!    no schema for must be one that a later check covers ([`COVERED_ELSEWHERE`]).
//! 2. `switchyard-check` (one process) for InferencePools, InferenceObjectives, HTTPRoutes.
//! 3. The rules in [`policy`], with each binary's flags read from its `--help`.
//! 4. Renders that must fail (a missing required value, a flag the chart owns) fail, with the
//!    message that tells the user what to set ([`MUST_FAIL`]).
//!
//! Helm and kubernetes-validate are installed under `target/tools/` on first use.

mod help;
mod install;
mod policy;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::steps::{self, cargo};
use help::Flags;
use policy::ChartRules;

/// Kubernetes version the built-in kinds are validated against (k8s-openapi's `v1_33`).
const KUBERNETES_VERSION: &str = "1.33.0";

/// Binaries whose `--help` the rendered args are checked against, and the subcommand a
/// container runs (its flags are read from `<binary> <subcommand> --help`).
const BINARIES: &[(&str, Option<&str>)] = &[
    ("switchyard-epp", None),
    ("switchyard-bbr", None),
    ("switchyard-rollout", Some("serve")),
];

/// Kinds kubernetes-validate has no schema for, and what checks them instead.
const COVERED_ELSEWHERE: &[(&str, &str)] = &[
    ("InferencePool", "switchyard-check"),
    ("InferenceObjective", "switchyard-check"),
    ("HTTPRoute", "switchyard-check"),
    ("ServiceMonitor", "the ServiceMonitor wiring rule"),
    ("Certificate", "the webhook rule"),
    ("Issuer", "the webhook rule"),
];

/// Charts whose RBAC must stay inside the release namespace, unless the boolean value at
/// the given pointer asks for a cluster-wide watch.
const NAMESPACED: &[(&str, Option<&str>)] = &[
    // The EPP serves one pool and reads only its namespace
    // (docs/upstream.md#operations-flags-health-metrics).
    ("inferencepool", None),
    // BBR reads ConfigMaps in its namespace, or in all of them with bbr.multiNamespace.
    ("bbr", Some("/bbr/multiNamespace")),
];

/// Renders that must fail: chart, `--set` arguments, and a fragment of the expected message.
const MUST_FAIL: &[(&str, &[&str], &str)] = &[
    (
        "inferencepool",
        &[],
        "inferencePool.modelServers.matchLabels is required",
    ),
    (
        "inferencepool",
        &[
            "inferencePool.modelServers.matchLabels.app=x",
            "inferenceExtension.flags.grpc-port=1",
        ],
        "inferenceExtension.flags.grpc-port is set by the chart",
    ),
    (
        "inferencepool",
        &[
            "inferencePool.modelServers.matchLabels.app=x",
            "inferenceExtension.failureMode=Sometimes",
        ],
        // Helm v4's wording for a values.schema.json enum.
        "'/inferenceExtension/failureMode': value must be one of 'FailOpen', 'FailClose'",
    ),
    (
        "bbr",
        &["bbr.flags.secure-serving=false"],
        "bbr.flags.secure-serving is set by the chart",
    ),
    (
        "bbr",
        &[
            "bbr.watchConfigMaps=false",
            "bbr.baseModels[0].baseModel=m",
            "bbr.baseModels[0].adapters[0]=a",
        ],
        "BBR reads only with bbr.watchConfigMaps=true",
    ),
    // H7: the kubelet must never kill a drain in progress.
    (
        "inferencepool",
        &[
            "inferencePool.modelServers.matchLabels.app=x",
            "inferenceExtension.terminationGracePeriodSeconds=20",
        ],
        "must be at least drainGracePeriod + drainTimeout + 10 = 50",
    ),
    (
        "bbr",
        &["bbr.terminationGracePeriodSeconds=5"],
        "must be at least drainGracePeriodSeconds + drainTimeoutSeconds + 10 = 50",
    ),
    (
        "rollout",
        &["leaderElection.leaseDurationSeconds=1"],
        "'/leaderElection/leaseDurationSeconds': minimum: got 1, want 3",
    ),
];

/// The CRD chart's copy of `charts/crds/switchyard-crds.yaml` (written by `crdgen`); a unit
/// test keeps the two identical.
pub const CRD_CHART_COPY: &str = "charts/switchyard-crds/crds/switchyard-crds.yaml";

/// The release name and namespace every case is rendered with.
const RELEASE: &str = "ci";
const NAMESPACE: &str = "switchyard-ci";

/// One chart rendered with one values file.
struct Case {
    chart: String,
    chart_dir: PathBuf,
    name: String,
    values_file: PathBuf,
    rendered: PathBuf,
}

pub fn run(root: &Path) -> Result<()> {
    let started = Instant::now();
    check_crd_copy(root)?;
    let tools = install::ensure(root)?;
    let binaries = binary_flags(root)?;
    let checks_started = Instant::now();
    let cases = discover(root)?;
    if cases.is_empty() {
        bail!(
            "no chart with ci/*-values.yaml under {}",
            root.join("charts").display()
        );
    }

    render_all(&tools.helm, &cases)?;
    expect_failures(&tools.helm, root)?;
    let files: Vec<&Path> = cases.iter().map(|c| c.rendered.as_path()).collect();
    kubernetes_validate(&tools.python_path, &files)?;
    switchyard_check(root, &files)?;

    let mut problems = Vec::new();
    let mut objects = 0;
    for case in &cases {
        let text = fs::read_to_string(&case.rendered)
            .with_context(|| format!("reading {}", case.rendered.display()))?;
        let docs = parse_documents(&text)
            .with_context(|| format!("parsing {}", case.rendered.display()))?;
        objects += docs.len();
        let values = effective_values(&case.chart_dir, &case.values_file)?;
        let rules = ChartRules {
            namespaced_only: namespaced_only(&case.chart, &values),
        };
        for problem in policy::check(&docs, &values, &binaries, rules) {
            problems.push(format!("{}/{}: {problem}", case.chart, case.name));
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} chart rule(s) broken:\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
    println!(
        "charts: {} cases, {objects} objects: lint, render, kubernetes-validate, switchyard-check \
         and rules all pass ({:.1}s, of which tools and builds {:.1}s)",
        cases.len(),
        started.elapsed().as_secs_f64(),
        (checks_started - started).as_secs_f64()
    );
    Ok(())
}

fn namespaced_only(chart: &str, values: &Value) -> bool {
    NAMESPACED.iter().any(|(name, unless)| {
        *name == chart
            && !unless.is_some_and(|pointer| {
                values.pointer(pointer).and_then(Value::as_bool) == Some(true)
            })
    })
}

/// The CRD chart must ship exactly what `crdgen` wrote (the unit test says the same, earlier).
fn check_crd_copy(root: &Path) -> Result<()> {
    let generated = root
        .join("charts")
        .join("crds")
        .join("switchyard-crds.yaml");
    let copy = root.join(CRD_CHART_COPY);
    let read = |path: &Path| fs::read(path).with_context(|| format!("reading {}", path.display()));
    if read(&generated)? != read(&copy)? {
        bail!(
            "{CRD_CHART_COPY} differs from charts/crds/switchyard-crds.yaml; run \
             `cp charts/crds/switchyard-crds.yaml {CRD_CHART_COPY}`"
        );
    }
    Ok(())
}

/// Builds the binaries and reads the flags each one accepts.
fn binary_flags(root: &Path) -> Result<BTreeMap<String, Flags>> {
    // The whole workspace, not `-p` for each binary: with `-p`, features are unified over the
    // selected packages only, so shared dependencies would be rebuilt with other features
    // than the test step already built them with.
    let mut build = cargo(root);
    build.args(["build", "--workspace", "--bins"]);
    if steps::in_ci() {
        build.arg("--locked");
    }
    steps::run(&mut build)?;
    let target = target_dir(root);
    BINARIES
        .iter()
        .map(|(binary, subcommand)| {
            let path = target.join(binary);
            let out = Command::new(&path)
                .args(*subcommand)
                .arg("--help")
                .output()
                .with_context(|| format!("running {} --help", path.display()))?;
            let help = String::from_utf8_lossy(&out.stdout);
            let flags = Flags::from_help(&help).for_subcommand(*subcommand);
            if !out.status.success() || flags.by_name.is_empty() {
                bail!(
                    "`{} --help` printed no flags (exit {}); the chart flag check needs them",
                    path.display(),
                    out.status
                );
            }
            Ok(((*binary).to_owned(), flags))
        })
        .collect()
}

/// The debug binaries' directory (`CARGO_TARGET_DIR` respected).
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        })
        .unwrap_or_else(|| root.join("target"))
        .join("debug")
}

/// Every `charts/<chart>/ci/*-values.yaml`, sorted.
fn discover(root: &Path) -> Result<Vec<Case>> {
    let charts_dir = root.join("charts");
    let out_dir = root.join("target").join("charts");
    let mut cases = Vec::new();
    let mut charts: Vec<PathBuf> = fs::read_dir(&charts_dir)
        .with_context(|| format!("reading {}", charts_dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join("Chart.yaml").is_file())
        .collect();
    charts.sort();
    for chart_dir in charts {
        let chart = file_name(&chart_dir);
        let ci = chart_dir.join("ci");
        let mut files: Vec<PathBuf> = fs::read_dir(&ci)
            .with_context(|| format!("chart {chart} has no ci/ directory of values files"))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| file_name(p).ends_with("-values.yaml"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("chart {chart} has no ci/*-values.yaml; add at least ci/default-values.yaml");
        }
        fs::create_dir_all(out_dir.join(&chart))?;
        for values_file in files {
            let name = file_name(&values_file)
                .trim_end_matches("-values.yaml")
                .to_owned();
            let rendered = out_dir.join(&chart).join(format!("{name}.yaml"));
            cases.push(Case {
                chart: chart.clone(),
                chart_dir: chart_dir.clone(),
                name,
                values_file,
                rendered,
            });
        }
    }
    Ok(cases)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Lints and renders every case, two Helm processes per case, all cases in parallel.
fn render_all(helm: &Path, cases: &[Case]) -> Result<()> {
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|case| scope.spawn(move || render_one(helm, case)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("render thread panicked")))
            })
            .collect()
    });
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();
    if !failures.is_empty() {
        bail!("{}", failures.join("\n"));
    }
    Ok(())
}

fn render_one(helm: &Path, case: &Case) -> Result<()> {
    let label = format!("{}/{}", case.chart, case.name);
    let mut lint = Command::new(helm);
    lint.args(["lint", "--strict", "--namespace", NAMESPACE])
        .arg(&case.chart_dir)
        .arg("--values")
        .arg(&case.values_file);
    let out = output(&mut lint)?;
    if !out.status.success() {
        bail!("{label}: helm lint failed:\n{}", both(&out));
    }
    let mut template = Command::new(helm);
    template
        .args([
            "template",
            RELEASE,
            "--namespace",
            NAMESPACE,
            "--include-crds",
        ])
        .arg(&case.chart_dir)
        .arg("--values")
        .arg(&case.values_file);
    let out = output(&mut template)?;
    if !out.status.success() {
        bail!("{label}: helm template failed:\n{}", both(&out));
    }
    fs::write(&case.rendered, &out.stdout)
        .with_context(|| format!("writing {}", case.rendered.display()))?;
    println!("{label}: lint and render ok -> {}", case.rendered.display());
    Ok(())
}

fn expect_failures(helm: &Path, root: &Path) -> Result<()> {
    for (chart, sets, expected) in MUST_FAIL {
        let mut template = Command::new(helm);
        template
            .args(["template", RELEASE, "--namespace", NAMESPACE])
            .arg(root.join("charts").join(chart));
        for set in *sets {
            template.args(["--set", set]);
        }
        let out = output(&mut template)?;
        let printed = both(&out);
        if out.status.success() || !printed.contains(expected) {
            bail!(
                "{chart} with --set {sets:?} must fail saying `{expected}`; helm exited {} and printed:\n{printed}",
                out.status
            );
        }
        println!("{chart} with --set {sets:?}: fails as it must (`{expected}`)");
    }
    Ok(())
}

fn kubernetes_validate(python_path: &Path, files: &[&Path]) -> Result<()> {
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONPATH", python_path)
        .args(["-m", install::VALIDATE_MODULE, "--strict", "--quiet"])
        .args(["--kubernetes-version", KUBERNETES_VERSION])
        .args(files);
    let out = output(&mut cmd)?;
    let printed = both(&out);
    let mut uncovered = Vec::new();
    for line in printed.lines() {
        // `WARN <file> Couldn't find schema for kind <Kind> with api version <v> ...`
        if let Some((_, rest)) = line.split_once("Couldn't find schema for kind ") {
            let kind = rest.split_whitespace().next().unwrap_or("");
            if !COVERED_ELSEWHERE.iter().any(|(k, _)| *k == kind) {
                uncovered.push(line.to_owned());
            }
        }
    }
    if !out.status.success() {
        bail!("kubernetes-validate found invalid objects:\n{printed}");
    }
    if !uncovered.is_empty() {
        bail!(
            "no check covers these kinds; add a schema-backed check before rendering them:\n{}",
            uncovered.join("\n")
        );
    }
    println!(
        "kubernetes-validate {KUBERNETES_VERSION} --strict: {} files ok",
        files.len()
    );
    Ok(())
}

fn switchyard_check(root: &Path, files: &[&Path]) -> Result<()> {
    let path = target_dir(root).join("switchyard-check");
    let mut cmd = Command::new(&path);
    cmd.args(files);
    let out = output(&mut cmd)?;
    if !out.status.success() {
        bail!("switchyard-check found problems:\n{}", both(&out));
    }
    print!("switchyard-check: {}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}

fn output(cmd: &mut Command) -> Result<Output> {
    cmd.output()
        .with_context(|| format!("starting {:?}", cmd.get_program()))
}

fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The multi-document YAML `helm template` printed, empty documents dropped.
fn parse_documents(text: &str) -> Result<Vec<Value>> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).context("not valid YAML")?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// The chart's `values.yaml` with the case's file merged over it, as Helm does.
fn effective_values(chart_dir: &Path, values_file: &Path) -> Result<Value> {
    let read = |path: &Path| -> Result<Value> {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value: Value =
            serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(value)
    };
    let mut values = read(&chart_dir.join("values.yaml"))?;
    merge(&mut values, read(values_file)?);
    Ok(values)
}

/// Deep merge of maps; anything else in `over` replaces what is in `base`.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

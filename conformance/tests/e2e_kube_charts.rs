//! The Helm charts against a real kube-apiserver: every chart case (defaults and each
//! `ci/*-values.yaml`) installs with every object accepted; then each binary runs out of
//! cluster exactly as its chart's Deployment runs it, as the chart's ServiceAccount, and
//! makes no request RBAC refuses (read from the API server's audit log). Removing one rule
//! from the chart's Role makes the same check fail, naming the verb and the resource.
//!
//! Needs `cargo xtask kube build` (kube-apiserver, etcd, helm) and the binaries
//! (`cargo build --bins`; SWITCHYARD_BIN_DIR or target/debug).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "e2e_kube_charts/install.rs"]
mod install;
#[path = "e2e_kube_charts/run_as.rs"]
mod run_as;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use kube::Api;
use kube::api::PostParams;
use switchyard_conformance::kube::{ControlPlane, audit, bins, objects};
use switchyard_local::ports;
use switchyard_local::process::ChildProcess;

use install::{Case, cases, install};

/// How long a binary gets to make its first requests.
const SETTLE: Duration = Duration::from_secs(4);
/// How long a binary with a rule missing gets to run into it.
const REFUSAL_WAIT: Duration = Duration::from_secs(20);

async fn plane_with_third_party_crds() -> ControlPlane {
    let plane = ControlPlane::start().await.expect("control plane");
    let stand_ins = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e_kube_charts/third-party-crds.yaml");
    objects::install_crds(&plane.client(), &[stand_ins])
        .await
        .unwrap();
    plane
}

#[tokio::test]
async fn e2e_kube_charts_every_chart_case_installs_with_every_object_accepted() {
    let plane = plane_with_third_party_crds().await;
    let home = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let all = cases();
    for case in &all {
        let started = Instant::now();
        match install(&plane, home.path(), case) {
            Ok(()) => println!(
                "{}/{}: installed ({:.1}s)",
                case.chart,
                case.name,
                started.elapsed().as_secs_f64()
            ),
            Err(output) => failures.push(format!("{}/{}: {output}", case.chart, case.name)),
        }
    }
    assert!(all.len() >= 15, "only {} chart cases found", all.len());
    assert!(
        failures.is_empty(),
        "helm install failed:\n{}",
        failures.join("\n")
    );
}

/// One chart's binary, and the rule of its Role the negative check removes.
struct Component {
    chart: &'static str,
    binary: &'static str,
    /// ClusterRole (true) or Role (false) holding `rule`.
    cluster_role: bool,
    /// The resource whose rule is removed; the binary must be seen using it first.
    resource: &'static str,
}

const COMPONENTS: &[Component] = &[
    Component {
        chart: "inferencepool",
        binary: "switchyard-epp",
        cluster_role: false,
        resource: "pods",
    },
    Component {
        chart: "bbr",
        binary: "switchyard-bbr",
        cluster_role: false,
        resource: "configmaps",
    },
    Component {
        chart: "rollout",
        binary: "switchyard-rollout",
        cluster_role: true,
        resource: "inferencerollouts",
    },
];

fn bin_dir() -> PathBuf {
    std::env::var_os("SWITCHYARD_BIN_DIR").map_or_else(
        || bins::workspace_root().join("target/debug"),
        PathBuf::from,
    )
}

/// Runs the component's default release as its ServiceAccount for `wait` and returns the
/// refused requests, and whether it used `resource` successfully.
async fn run_once(
    plane: &ControlPlane,
    component: &Component,
    release: &str,
    dir: &Path,
    wait: Duration,
    stop_at_first_refusal: bool,
) -> (Vec<audit::Request>, bool) {
    let binary = bin_dir().join(component.binary);
    assert!(
        binary.is_file(),
        "{} missing: run `cargo build --bins`",
        binary.display()
    );
    let deployment =
        Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(plane.client(), release)
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .next()
            .expect("the chart renders a Deployment");
    let name = deployment.metadata.name.unwrap();
    let mut run = run_as::from_deployment(plane, release, &name, &binary, dir).await;
    let account = plane
        .service_account(release, &run.service_account)
        .await
        .unwrap();
    run_as::as_account(&mut run, &account);
    let log = dir.join(format!("{}.log", component.binary));
    let mut child = ChildProcess::spawn(component.binary, &run.command, &log).unwrap();
    let started = Instant::now();
    if !stop_at_first_refusal {
        // Its job includes serving: every listener the Deployment declares comes up.
        for (flag, addr) in &run.listens {
            ports::wait_for_tcp(&mut child, *addr, Duration::from_secs(30))
                .await
                .unwrap_or_else(|err| panic!("{} {flag}: {err:?}", component.binary));
        }
    }
    let audit_log = plane.layout().audit_log();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        child.fail_if_exited().unwrap();
        let refused = audit::forbidden(&audit_log, &account.user).unwrap();
        if (stop_at_first_refusal && !refused.is_empty()) || started.elapsed() > wait {
            let used = audit::requests_by(&audit_log, &account.user)
                .unwrap()
                .iter()
                .any(|r| r.resource == component.resource && (200..300).contains(&r.code));
            child.stop().unwrap();
            return (refused, used);
        }
    }
}

/// The message a refused request fails the test with.
fn refusal_message(component: &Component, refused: &[audit::Request]) -> String {
    let lines: Vec<String> = refused.iter().map(ToString::to_string).collect();
    format!(
        "{} as its chart's ServiceAccount made {} request(s) RBAC refused; add the rule to the \
         chart's Role:\n  {}",
        component.binary,
        refused.len(),
        lines.join("\n  ")
    )
}

#[tokio::test]
async fn e2e_kube_charts_each_binary_runs_as_its_service_account_without_a_refusal() {
    // No cert-manager stand-in here: with `webhook.certManager: auto` the rollout chart would
    // then expect cert-manager to issue the webhook's certificate, and nothing runs it.
    let plane = ControlPlane::start().await.expect("control plane");
    let home = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for component in COMPONENTS {
        let case = cases()
            .into_iter()
            .find(|c: &Case| c.chart == component.chart && c.name == "default")
            .expect("a default case");
        install(&plane, home.path(), &case).unwrap();
        let release = case.release();
        let dir = tempfile::tempdir().unwrap();

        let (refused, used) =
            run_once(&plane, component, &release, dir.path(), SETTLE, false).await;
        if !refused.is_empty() {
            failures.push(refusal_message(component, &refused));
        }
        if !used {
            failures.push(format!(
                "{} never read {} successfully: it did not do its job",
                component.binary, component.resource
            ));
        }

        // The negative check: the same run with the rule for `resource` removed.
        let rule = remove_rule(&plane, component, &release).await;
        let (refused, _) =
            run_once(&plane, component, &release, dir.path(), REFUSAL_WAIT, true).await;
        let message = refusal_message(component, &refused);
        println!(
            "{} without {:?} {:?}: {message}",
            component.chart, rule.verbs, rule.resources
        );
        assert!(
            refused
                .iter()
                .any(|r| r.resource == component.resource && rule.verbs.contains(&r.verb)),
            "{}: removing the rule for {} caused no refusal naming it; got: {message}",
            component.chart,
            component.resource
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Removes from the component's (Cluster)Role the rule granting `resource`; returns it.
async fn remove_rule(plane: &ControlPlane, component: &Component, release: &str) -> PolicyRule {
    let grants = |rule: &PolicyRule| {
        rule.resources
            .as_ref()
            .is_some_and(|r| r.iter().any(|r| r == component.resource))
    };
    if component.cluster_role {
        let api: Api<ClusterRole> = Api::all(plane.client());
        let mut role = api
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|r| {
                r.rules.iter().flatten().any(grants)
                    && r.metadata
                        .name
                        .as_deref()
                        .is_some_and(|n| n.starts_with(release))
            })
            .expect("the chart's ClusterRole");
        let rules = role.rules.get_or_insert_with(Vec::new);
        let at = rules.iter().position(grants).unwrap();
        let rule = rules.remove(at);
        let name = role.metadata.name.clone().unwrap();
        api.replace(&name, &PostParams::default(), &role)
            .await
            .unwrap();
        rule
    } else {
        let api: Api<Role> = Api::namespaced(plane.client(), release);
        let mut role = api
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|r| r.rules.iter().flatten().any(grants))
            .expect("the chart's Role");
        let rules = role.rules.get_or_insert_with(Vec::new);
        let at = rules.iter().position(grants).unwrap();
        let rule = rules.remove(at);
        let name = role.metadata.name.clone().unwrap();
        api.replace(&name, &PostParams::default(), &role)
            .await
            .unwrap();
        rule
    }
}

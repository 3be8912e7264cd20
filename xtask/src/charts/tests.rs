//! The chart rules must catch what they promise to catch: each rule is shown a compliant
//! object set (no findings) and then one broken variant per rule (a finding naming it).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::help::{Arity, Flags};
use super::policy::{self, ChartRules};

mod repo_files;
mod rollout;
mod webhook;

/// A trimmed copy of clap's long help, in the layout the EPP and BBR print.
const HELP: &str = "\
Endpoint Picker

Usage: switchyard-epp [OPTIONS]

Options:
      --pool-name <POOL_NAME>
          The InferencePool this EPP serves; mentions --not-a-flag in prose

      --grpc-port <GRPC_PORT>
          gRPC port of the ext_proc service

          [default: 9002]

      --grpc-health-port <GRPC_HEALTH_PORT>
          gRPC port of the grpc.health.v1 service

      --secure-serving[=<SECURE_SERVING>]
          Serve ext_proc over TLS

      --ha-enable-leader-election[=<HA_ENABLE_LEADER_ELECTION>]
          Active-passive replicas

      --watch-configmaps
          Watch ConfigMaps

  -v, --v <VERBOSITY>
          Verbosity

  -h, --help
          Print help
";

fn flags() -> Flags {
    Flags::from_help(HELP)
}

fn binaries() -> BTreeMap<String, Flags> {
    BTreeMap::from([("switchyard-epp".to_owned(), flags())])
}

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn help_yields_every_long_flag_with_its_arity() {
    let flags = flags();
    let expected = [
        ("grpc-health-port", Arity::Required),
        ("grpc-port", Arity::Required),
        ("ha-enable-leader-election", Arity::Optional),
        ("help", Arity::Switch),
        ("pool-name", Arity::Required),
        ("secure-serving", Arity::Optional),
        ("v", Arity::Required),
        ("watch-configmaps", Arity::Switch),
    ];
    let got: Vec<(&str, Arity)> = flags
        .by_name
        .iter()
        .map(|(name, arity)| (name.as_str(), *arity))
        .collect();
    assert_eq!(got, expected);
    assert!(!flags.knows("not-a-flag"), "prose must not define flags");
}

#[test]
fn known_flags_in_every_accepted_form_pass() {
    let problems = flags().check_args(&args(&[
        "--pool-name=p",
        "--grpc-port",
        "9002",
        "--secure-serving=false",
        "--ha-enable-leader-election",
        "--watch-configmaps",
        "--v=2",
        "-v=3",
    ]));
    assert_eq!(problems, Vec::<String>::new());
}

#[test]
fn unknown_flags_and_wrong_arity_are_reported() {
    let problems = flags().check_args(&args(&[
        "--pool-nam=p",
        "--watch-configmaps=true",
        "--grpc-port",
        "--pool-name=",
        "stray",
    ]));
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert!(problems[0].contains("`--pool-nam` is not a flag"));
    assert!(problems[1].contains("is a switch and takes no value"));
    assert!(problems[2].contains("`--grpc-port` needs a value"));
    assert!(problems[3].contains("empty value"));
    assert!(problems[4].contains("positional"));
}

#[test]
fn value_of_reads_both_forms() {
    let a = args(&[
        "--grpc-port",
        "9",
        "--grpc-health-port=10",
        "--pool-names=x",
    ]);
    assert_eq!(Flags::value_of(&a, "grpc-port"), Some("9"));
    assert_eq!(Flags::value_of(&a, "grpc-health-port"), Some("10"));
    assert_eq!(Flags::value_of(&a, "pool-name"), None);
    let b = args(&[
        "--watch-configmaps",
        "--v=1",
        "--allow",
        "--x=true",
        "--y=false",
    ]);
    assert_eq!(Flags::value_of(&b, "watch-configmaps"), Some(""));
    assert!(super::help::is_set(&b, "watch-configmaps"));
    assert!(super::help::is_set(&b, "allow"));
    assert!(super::help::is_set(&b, "x"));
    assert!(!super::help::is_set(&b, "y"));
    assert!(!super::help::is_set(&b, "v"));
    assert!(!super::help::is_set(&b, "absent"));
}

#[test]
fn binary_is_the_image_name() {
    assert_eq!(
        policy::binary_of("ghcr.io/switchyard/switchyard-epp:0.1.0"),
        "switchyard-epp"
    );
    assert_eq!(
        policy::binary_of("reg:5000/a/switchyard-bbr@sha256:ab"),
        "switchyard-bbr"
    );
    assert_eq!(
        policy::binary_of("switchyard-rollout"),
        "switchyard-rollout"
    );
}

/// A compliant EPP-like release: Deployment, ServiceAccount, Role, RoleBinding, Service,
/// ServiceMonitor, NetworkPolicy.
fn release(replicas: i64) -> Vec<Value> {
    let labels = json!({"app": "epp"});
    let election = if replicas > 1 { "true" } else { "false" };
    let mut docs = vec![
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "epp"},
            "spec": {
                "replicas": replicas,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "epp",
                        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [{
                            "name": "epp",
                            "image": "ghcr.io/switchyard/switchyard-epp:0.1.0",
                            "args": ["--pool-name=p", "--grpc-port=9002", "--grpc-health-port=9003",
                                     format!("--ha-enable-leader-election={election}")],
                            "ports": [{"name": "grpc", "containerPort": 9002}, {"name": "metrics", "containerPort": 9090}],
                            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                            "livenessProbe": {"grpc": {"port": 9003, "service": "liveness"}},
                            "readinessProbe": {"grpc": {"port": 9003, "service": "readiness"}},
                            "securityContext": {
                                "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]}
                            }
                        }]
                    }
                }
            }
        }),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "epp"}}),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "epp"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "epp"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "epp"},
            "subjects": [{"kind": "ServiceAccount", "name": "epp", "namespace": "ns"}]
        }),
        json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "epp", "labels": labels},
            "spec": {"selector": labels, "ports": [
                {"name": "grpc", "port": 9002, "targetPort": "grpc"},
                {"name": "metrics", "port": 9090, "targetPort": 9090}
            ]}
        }),
        json!({
            "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "epp"},
            "spec": {"selector": {"matchLabels": labels}, "endpoints": [{"port": "metrics"}]}
        }),
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "epp"},
            "spec": {"podSelector": {"matchLabels": labels}, "ingress": [
                {"ports": [{"port": 9002}], "from": [{"podSelector": {"matchLabels": {"gw": "x"}}}]},
                {"ports": [{"port": 9003}]}
            ]}
        }),
    ];
    if replicas > 1 {
        docs.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "le"},
            "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "update"]}]
        }));
        docs.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "le"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "le"},
            "subjects": [{"kind": "ServiceAccount", "name": "epp"}]
        }));
    }
    docs
}

fn policy_on() -> Value {
    json!({"networkPolicy": {"enabled": true}})
}

fn check(docs: &[Value]) -> Vec<String> {
    policy::check(
        docs,
        &policy_on(),
        &binaries(),
        ChartRules {
            namespaced_only: true,
        },
    )
}

/// Applies `edit` to a fresh one-replica release and returns the findings.
fn broken(edit: impl FnOnce(&mut Vec<Value>)) -> Vec<String> {
    let mut docs = release(1);
    edit(&mut docs);
    check(&docs)
}

fn container(docs: &mut [Value]) -> &mut Value {
    &mut docs[0]["spec"]["template"]["spec"]["containers"][0]
}

fn assert_one(problems: &[String], fragment: &str) {
    assert!(
        problems.iter().any(|p| p.contains(fragment)),
        "expected a finding containing `{fragment}`, got {problems:#?}"
    );
}

#[test]
fn compliant_releases_pass_with_one_and_two_replicas() {
    assert_eq!(check(&release(1)), Vec::<String>::new());
    assert_eq!(check(&release(2)), Vec::<String>::new());
}

#[test]
fn unknown_flag_in_a_container_is_reported() {
    let problems = broken(|docs| {
        container(docs)["args"]
            .as_array_mut()
            .unwrap()
            .push(json!("--pool-nmae=x"));
    });
    assert_one(&problems, "`--pool-nmae` is not a flag");
}

#[test]
fn image_that_is_not_ours_is_reported() {
    let problems = broken(|docs| container(docs)["image"] = json!("nginx:1"));
    assert_one(&problems, "does not name a Switchyard binary");
}

/// An edit that breaks one rule of a release.
type Edit = fn(&mut Vec<Value>);

#[test]
fn each_pod_security_gap_is_reported() {
    let cases: [(&str, Edit); 6] = [
        ("runAsNonRoot", |d| {
            d[0]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = json!(false)
        }),
        ("seccompProfile", |d| {
            d[0]["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]["type"] =
                json!("Unconfined")
        }),
        ("allowPrivilegeEscalation", |d| {
            container(d)["securityContext"]["allowPrivilegeEscalation"] = json!(true)
        }),
        ("readOnlyRootFilesystem", |d| {
            container(d)["securityContext"]
                .as_object_mut()
                .unwrap()
                .remove("readOnlyRootFilesystem");
        }),
        ("capabilities.drop", |d| {
            container(d)["securityContext"]["capabilities"]["drop"] = json!(["NET_RAW"])
        }),
        ("resources.requests.memory", |d| {
            container(d)["resources"]["requests"]
                .as_object_mut()
                .unwrap()
                .remove("memory");
        }),
    ];
    for (fragment, edit) in cases {
        assert_one(&broken(edit), fragment);
    }
}

#[test]
fn probes_must_be_grpc_on_the_health_port_with_the_right_service() {
    assert_one(
        &broken(|d| container(d)["livenessProbe"] = json!({"httpGet": {"port": 9003}})),
        "livenessProbe must be a gRPC probe",
    );
    assert_one(
        &broken(|d| container(d)["readinessProbe"]["grpc"]["port"] = json!(9002)),
        "health server listens on 9003",
    );
    assert_one(
        &broken(|d| container(d)["readinessProbe"]["grpc"]["service"] = json!("liveness")),
        "answers `readiness`",
    );
    assert_one(
        &broken(|d| {
            container(d)
                .as_object_mut()
                .unwrap()
                .remove("livenessProbe");
        }),
        "livenessProbe is missing",
    );
}

#[test]
fn wildcards_and_cluster_roles_are_reported() {
    assert_one(
        &broken(|d| d[2]["rules"][0]["verbs"] = json!(["*"])),
        "verbs has a wildcard",
    );
    assert_one(
        &broken(|d| d[2]["rules"][0]["resources"] = json!(["pods/*"])),
        "resources has a wildcard",
    );
    assert_one(
        &broken(|d| {
            d[2]["kind"] = json!("ClusterRole");
            d[3]["roleRef"]["kind"] = json!("ClusterRole");
        }),
        "must be namespaced; use a Role",
    );
    assert_one(
        &broken(|d| d[3]["roleRef"]["name"] = json!("missing")),
        "roleRef Role/missing is not rendered",
    );
    assert_one(
        &broken(|d| d[3]["subjects"][0]["name"] = json!("other")),
        "subject ServiceAccount/other",
    );
}

#[test]
fn leader_election_follows_replicas() {
    // Two replicas without the flag and the Role.
    let mut docs = release(1);
    docs[0]["spec"]["replicas"] = json!(2);
    let problems = check(&docs);
    assert_one(
        &problems,
        "leader election is off (--ha-enable-leader-election unset or false) with 2 replica(s)",
    );
    assert_one(&problems, "a Role granting leases is missing");

    // One replica with the Role left over.
    let mut docs = release(2);
    docs[0]["spec"]["replicas"] = json!(1);
    let problems = check(&docs);
    assert_one(
        &problems,
        "leader election is on (--ha-enable-leader-election set) with 1 replica(s)",
    );
    assert_one(&problems, "a Role granting leases is rendered");
}

#[test]
fn service_and_monitor_wiring_is_checked() {
    assert_one(
        &broken(|d| d[4]["spec"]["selector"] = json!({"app": "other"})),
        "Service/epp: its selector matches no rendered pod",
    );
    assert_one(
        &broken(|d| d[4]["spec"]["ports"][0]["targetPort"] = json!("grpc-typo")),
        "port grpc targets no container port",
    );
    assert_one(
        &broken(|d| d[5]["spec"]["endpoints"][0]["port"] = json!("http")),
        "endpoint port `http` is not a port name",
    );
}

#[test]
fn ext_proc_port_must_be_limited_to_selected_pods() {
    assert_one(
        &broken(|d| {
            d[6]["spec"]["ingress"][0]
                .as_object_mut()
                .unwrap()
                .remove("from");
        }),
        "the ext_proc port 9002 must be reachable only from the gateway's pods",
    );
    // A rule without ports opens the ext_proc port too.
    assert_one(
        &broken(|d| d[6]["spec"]["ingress"][1] = json!({"from": [{"namespaceSelector": {}}]})),
        "the ext_proc port 9002 must be reachable only",
    );
    assert_one(
        &broken(|d| {
            d.remove(6);
        }),
        "no NetworkPolicy selects its pods",
    );
}

#[test]
fn network_policy_respects_the_opt_out() {
    let off = json!({"networkPolicy": {"enabled": false}});
    let rules = ChartRules::default();
    let problems = policy::check(&release(1), &off, &binaries(), rules);
    assert_one(
        &problems,
        "rendered although networkPolicy.enabled is false",
    );
    let mut docs = release(1);
    docs.remove(6);
    assert_eq!(
        policy::check(&docs, &off, &binaries(), rules),
        Vec::<String>::new()
    );
}

#[test]
fn values_merge_like_helm() {
    let mut base = json!({"a": {"b": 1, "c": [1, 2]}, "d": true});
    super::merge(&mut base, json!({"a": {"c": [3]}, "d": false, "e": "x"}));
    assert_eq!(base, json!({"a": {"b": 1, "c": [3]}, "d": false, "e": "x"}));
}

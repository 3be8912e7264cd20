//! What every rendered chart must satisfy, as pure functions over the rendered objects.
//!
//! Each check returns messages of the form `Kind/name: what is wrong, and what to do`; an
//! empty list means the case passes. The rules:
//!
//! - **Flags**: every container runs one of our binaries (the last segment of its image
//!   repository names it) and every arg is a flag of that binary's `--help`, with the right
//!   arity.
//! - **Pod security** (the `restricted` Pod Security Standard): non-root, read-only root
//!   filesystem, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp,
//!   no host namespaces; CPU and memory requests; liveness and readiness probes, gRPC on the
//!   health port with the binary's health service names when it has one.
//! - **RBAC**: no `*` in verbs, resources or API groups; charts that must stay namespaced
//!   render no ClusterRole; every binding points at a rendered role and ServiceAccount.
//! - **Leader election**: on (flag and a Lease rule) exactly when `replicas > 1`.
//! - **Wiring**: Services and ServiceMonitors select rendered pods and name real ports.
//! - **NetworkPolicy**: present unless `networkPolicy.enabled` is false; the ext_proc port
//!   (`--grpc-port`) is reachable only from selected pods.
//! - **Webhook**: a ValidatingWebhookConfiguration exactly when `webhook.enabled`, reaching a
//!   container that serves it, with the values' failurePolicy and a source for its caBundle
//!   (a cert-manager Certificate mounted where the controller reads it, or the controller).

use std::collections::BTreeMap;

use serde_json::Value;

use super::help::{self, Flags};

mod rbac;
pub(crate) mod webhook;
mod wiring;

/// What a chart promises beyond the common rules.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChartRules {
    /// The chart's RBAC must be namespaced (no ClusterRole or ClusterRoleBinding).
    pub namespaced_only: bool,
}

/// The grpc.health.v1 service names a binary's liveness and readiness probes must ask for.
/// Sources: `epp/src/server/health.rs` (upstream's names) and `bbr/src/server.rs` (`""`).
pub const HEALTH_SERVICES: &[(&str, &str, &str)] = &[
    ("switchyard-epp", "liveness", "readiness"),
    ("switchyard-bbr", "", ""),
];

/// How each binary's leader election is switched: the flag, and whether setting it turns
/// election on (`true`) or off (`false`). Sources: `epp/src/cli.rs`, `rollout/src/cli.rs`.
pub const LEADER_ELECTION: &[(&str, &str, bool)] = &[
    ("switchyard-epp", "ha-enable-leader-election", true),
    ("switchyard-rollout", "leader-election-disabled", false),
];

/// Runs every rule over one rendered case. `values` are the effective values (chart
/// defaults merged with the case's file); `binaries` maps binary name to its flags.
pub fn check(
    docs: &[Value],
    values: &Value,
    binaries: &BTreeMap<String, Flags>,
    rules: ChartRules,
) -> Vec<String> {
    let mut problems = Vec::new();
    let workloads: Vec<&Value> = docs.iter().filter(|d| kind(d) == "Deployment").collect();
    if workloads.is_empty() && docs.iter().any(|d| kind(d) != "CustomResourceDefinition") {
        problems.push("the chart renders objects but no Deployment".to_owned());
    }
    for deployment in &workloads {
        problems.extend(check_workload(deployment, docs, binaries));
    }
    problems.extend(rbac::check_rbac(docs, rules));
    problems.extend(wiring::check_services(docs));
    problems.extend(wiring::check_network_policy(docs, values, binaries));
    problems.extend(webhook::check_webhooks(docs, values));
    problems
}

/// `kind` of an object, or `""`.
pub fn kind(doc: &Value) -> &str {
    doc.get("kind").and_then(Value::as_str).unwrap_or("")
}

/// `Kind/name` of an object, for messages.
pub fn object_name(doc: &Value) -> String {
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    format!("{}/{name}", kind(doc))
}

pub(super) fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The binary a container runs: the image repository's last path segment, tag removed.
pub fn binary_of(image: &str) -> &str {
    let last = image.rsplit('/').next().unwrap_or(image);
    let without_digest = last.split('@').next().unwrap_or(last);
    without_digest.split(':').next().unwrap_or(without_digest)
}

fn check_workload(
    deployment: &Value,
    docs: &[Value],
    binaries: &BTreeMap<String, Flags>,
) -> Vec<String> {
    let name = object_name(deployment);
    let mut problems = Vec::new();
    let pod = deployment
        .pointer("/spec/template/spec")
        .unwrap_or(&Value::Null);
    let pod_security = pod.get("securityContext").unwrap_or(&Value::Null);
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod.get(host).and_then(Value::as_bool) == Some(true) {
            problems.push(format!("{name}: {host} must not be true"));
        }
    }
    let replicas = deployment
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let service_account = pod
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("default");
    if !docs
        .iter()
        .any(|d| kind(d) == "ServiceAccount" && meta_name(d) == service_account)
    {
        problems.push(format!(
            "{name}: serviceAccountName `{service_account}` is not rendered by the chart"
        ));
    }
    let leases = rbac::service_account_can(docs, service_account, "coordination.k8s.io", "leases");

    let containers = pod
        .get("containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if containers.is_empty() {
        problems.push(format!("{name}: no containers"));
    }
    for container in &containers {
        let cname = format!(
            "{name} container {}",
            container.get("name").and_then(Value::as_str).unwrap_or("?")
        );
        problems.extend(check_security(&cname, container, pod_security));
        for resource in ["cpu", "memory"] {
            if container
                .pointer(&format!("/resources/requests/{resource}"))
                .is_none()
            {
                problems.push(format!("{cname}: resources.requests.{resource} is not set"));
            }
        }
        let image = container.get("image").and_then(Value::as_str).unwrap_or("");
        let binary = binary_of(image);
        let Some(flags) = binaries.get(binary) else {
            problems.push(format!(
                "{cname}: image `{image}` does not name a Switchyard binary (known: {})",
                binaries.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
            continue;
        };
        let args = strings(container.get("args"));
        if container.get("command").is_some() {
            problems.push(format!(
                "{cname}: `command` overrides the image's entrypoint; pass flags in `args`"
            ));
        }
        for problem in flags.check_args(&args) {
            problems.push(format!("{cname}: {problem}"));
        }
        problems.extend(check_probes(&cname, container, binary, flags, &args));

        problems.extend(check_leader_election(
            &cname,
            binary,
            flags,
            &args,
            replicas,
            leases,
            service_account,
        ));
    }
    problems
}

/// Active-passive HA: the flag and the Lease permission go together with replicas > 1.
fn check_leader_election(
    cname: &str,
    binary: &str,
    flags: &Flags,
    args: &[String],
    replicas: i64,
    leases: bool,
    service_account: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    let wanted = replicas > 1;
    let Some((_, flag, set_means_on)) = LEADER_ELECTION.iter().find(|(b, _, _)| *b == binary)
    else {
        if leases {
            problems.push(format!(
                "{cname}: ServiceAccount `{service_account}` may use Leases but {binary} has no leader election"
            ));
        }
        return problems;
    };
    if !flags.knows(flag) {
        problems.push(format!(
            "{cname}: {binary} --help no longer lists --{flag}; update LEADER_ELECTION in xtask/src/charts/policy.rs"
        ));
        return problems;
    }
    let set = help::is_set(args, flag);
    let on = set == *set_means_on;
    if on != wanted {
        problems.push(format!(
            "{cname}: leader election is {} (--{flag} {}) with {replicas} replica(s); it must be on exactly when replicas > 1",
            if on { "on" } else { "off" },
            if set { "set" } else { "unset or false" },
        ));
    }
    if leases != wanted {
        problems.push(format!(
            "{cname}: a Role granting leases is {} with {replicas} replica(s); render it exactly when replicas > 1",
            if leases { "rendered" } else { "missing" }
        ));
    }
    problems
}

fn check_security(cname: &str, container: &Value, pod_security: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let security = container.get("securityContext").unwrap_or(&Value::Null);
    let either = |pointer: &str| {
        security
            .pointer(pointer)
            .or_else(|| pod_security.pointer(pointer))
    };
    if either("/runAsNonRoot").and_then(Value::as_bool) != Some(true) {
        problems.push(format!("{cname}: runAsNonRoot must be true"));
    }
    if either("/seccompProfile/type").and_then(Value::as_str) != Some("RuntimeDefault") {
        problems.push(format!(
            "{cname}: seccompProfile.type must be RuntimeDefault"
        ));
    }
    if security
        .get("allowPrivilegeEscalation")
        .and_then(Value::as_bool)
        != Some(false)
    {
        problems.push(format!("{cname}: allowPrivilegeEscalation must be false"));
    }
    if security
        .get("readOnlyRootFilesystem")
        .and_then(Value::as_bool)
        != Some(true)
    {
        problems.push(format!("{cname}: readOnlyRootFilesystem must be true"));
    }
    if security.get("privileged").and_then(Value::as_bool) == Some(true) {
        problems.push(format!("{cname}: privileged must not be true"));
    }
    let dropped = strings(security.pointer("/capabilities/drop"));
    if !dropped.iter().any(|c| c == "ALL") {
        problems.push(format!("{cname}: capabilities.drop must include ALL"));
    }
    if security.pointer("/capabilities/add").is_some() {
        problems.push(format!("{cname}: capabilities.add must be empty"));
    }
    problems
}

fn check_probes(
    cname: &str,
    container: &Value,
    binary: &str,
    flags: &Flags,
    args: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    let health_port = flags
        .knows("grpc-health-port")
        .then(|| Flags::value_of(args, "grpc-health-port"))
        .map(|value| value.and_then(|v| v.parse::<i64>().ok()));
    let names = HEALTH_SERVICES
        .iter()
        .find(|(b, _, _)| *b == binary)
        .map(|(_, live, ready)| [*live, *ready]);
    for (index, probe_key) in ["livenessProbe", "readinessProbe"].into_iter().enumerate() {
        let Some(probe) = container.get(probe_key) else {
            problems.push(format!("{cname}: {probe_key} is missing"));
            continue;
        };
        match health_port {
            // The binary serves grpc.health.v1: the probe must use it.
            Some(port) => {
                let Some(grpc) = probe.get("grpc") else {
                    problems.push(format!(
                        "{cname}: {probe_key} must be a gRPC probe on the health port"
                    ));
                    continue;
                };
                let probed = grpc.get("port").and_then(Value::as_i64);
                match port {
                    None => problems.push(format!(
                        "{cname}: render --grpc-health-port so the probe port and the server agree"
                    )),
                    Some(port) if probed != Some(port) => problems.push(format!(
                        "{cname}: {probe_key} probes port {probed:?}, the health server listens on {port}"
                    )),
                    Some(_) => {}
                }
                let service = grpc.get("service").and_then(Value::as_str).unwrap_or("");
                if let Some(expected) = names.map(|n| n[index])
                    && service != expected
                {
                    problems.push(format!(
                        "{cname}: {probe_key} asks for gRPC service `{service}`, {binary} answers `{expected}`"
                    ));
                }
            }
            None if probe.get("grpc").is_some() => problems.push(format!(
                "{cname}: {probe_key} is gRPC but {binary} has no --grpc-health-port"
            )),
            None => {
                if let Some(port) = probe.pointer("/httpGet/port")
                    && !container_has_port(container, port)
                {
                    problems.push(format!(
                        "{cname}: {probe_key} probes port {port}, which the container does not declare"
                    ));
                }
            }
        }
    }
    problems
}

/// Whether `port` (a name or a number) is one of the container's ports.
fn container_has_port(container: &Value, port: &Value) -> bool {
    container
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|p| match port {
            Value::String(name) => p.get("name").and_then(Value::as_str) == Some(name),
            other => p.get("containerPort") == Some(other),
        })
}

pub(super) fn meta_name(doc: &Value) -> &str {
    doc.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

//! Wiring rules: Services and ServiceMonitors reach real pods and ports; the NetworkPolicy
//! is there unless opted out, and keeps the ext_proc port to the gateway's pods.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{binary_of, kind, object_name, strings};
use crate::charts::help::Flags;

/// `selector` (a label map) selects `labels`.
fn selects(selector: Option<&Value>, labels: Option<&Value>) -> bool {
    let (Some(selector), Some(labels)) = (
        selector.and_then(Value::as_object),
        labels.and_then(Value::as_object),
    ) else {
        return false;
    };
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn pod_templates(docs: &[Value]) -> impl Iterator<Item = &Value> {
    docs.iter()
        .filter(|d| kind(d) == "Deployment")
        .filter_map(|d| d.pointer("/spec/template"))
}

pub(super) fn check_services(docs: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for service in docs.iter().filter(|d| kind(d) == "Service") {
        let name = object_name(service);
        let Some(pod) = pod_templates(docs).find(|pod| {
            selects(
                service.pointer("/spec/selector"),
                pod.pointer("/metadata/labels"),
            )
        }) else {
            problems.push(format!("{name}: its selector matches no rendered pod"));
            continue;
        };
        let container_ports: Vec<(String, i64)> = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c.get("ports")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|p| {
                (
                    p.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    p.get("containerPort").and_then(Value::as_i64).unwrap_or(0),
                )
            })
            .collect();
        for port in service
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let found = match port.get("targetPort") {
                Some(Value::String(target)) => container_ports.iter().any(|(n, _)| n == target),
                Some(Value::Number(target)) => container_ports
                    .iter()
                    .any(|(_, p)| Some(*p) == target.as_i64()),
                _ => container_ports
                    .iter()
                    .any(|(_, p)| Some(*p) == port.get("port").and_then(Value::as_i64)),
            };
            if !found {
                problems.push(format!(
                    "{name}: port {} targets no container port",
                    port.get("name").and_then(Value::as_str).unwrap_or("?")
                ));
            }
        }
    }
    for monitor in docs.iter().filter(|d| kind(d) == "ServiceMonitor") {
        let name = object_name(monitor);
        let Some(service) = docs.iter().filter(|d| kind(d) == "Service").find(|s| {
            selects(
                monitor.pointer("/spec/selector/matchLabels"),
                s.pointer("/metadata/labels"),
            )
        }) else {
            problems.push(format!("{name}: its selector matches no rendered Service"));
            continue;
        };
        let port_names = service
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("name").and_then(Value::as_str))
            .collect::<Vec<_>>();
        for endpoint in monitor
            .pointer("/spec/endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let port = endpoint.get("port").and_then(Value::as_str).unwrap_or("");
            if !port_names.contains(&port) {
                problems.push(format!(
                    "{name}: endpoint port `{port}` is not a port name of {}",
                    object_name(service)
                ));
            }
        }
    }
    problems
}

pub(super) fn check_network_policy(
    docs: &[Value],
    values: &Value,
    binaries: &BTreeMap<String, Flags>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let enabled = values
        .pointer("/networkPolicy/enabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let policies: Vec<&Value> = docs.iter().filter(|d| kind(d) == "NetworkPolicy").collect();
    if !enabled {
        for policy in policies {
            problems.push(format!(
                "{}: rendered although networkPolicy.enabled is false",
                object_name(policy)
            ));
        }
        return problems;
    }
    for deployment in docs.iter().filter(|d| kind(d) == "Deployment") {
        let name = object_name(deployment);
        let labels = deployment.pointer("/spec/template/metadata/labels");
        let Some(policy) = policies
            .iter()
            .find(|p| selects(p.pointer("/spec/podSelector/matchLabels"), labels))
        else {
            problems.push(format!("{name}: no NetworkPolicy selects its pods"));
            continue;
        };
        // The ext_proc port: whatever --grpc-port the containers are given.
        let ext_proc_ports: Vec<i64> = deployment
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| {
                let image = c.get("image").and_then(Value::as_str).unwrap_or("");
                binaries
                    .get(binary_of(image))
                    .is_some_and(|f| f.knows("grpc-port"))
            })
            .filter_map(|c| {
                let args = strings(c.get("args"));
                Flags::value_of(&args, "grpc-port").and_then(|v| v.parse().ok())
            })
            .collect();
        let ingress = policy
            .pointer("/spec/ingress")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for port in ext_proc_ports {
            let rules: Vec<&Value> = ingress
                .iter()
                .filter(|rule| {
                    // A rule without ports opens every port, this one included.
                    match rule.get("ports").and_then(Value::as_array) {
                        None => true,
                        Some(ports) => {
                            ports.is_empty()
                                || ports
                                    .iter()
                                    .any(|p| p.get("port").and_then(Value::as_i64) == Some(port))
                        }
                    }
                })
                .collect();
            if rules.is_empty() {
                problems.push(format!(
                    "{}: the ext_proc port {port} is not allowed from anywhere; allow the gateway's pods",
                    object_name(policy)
                ));
            }
            for rule in rules {
                let peers = rule.get("from").and_then(Value::as_array);
                let only_pods = peers.is_some_and(|peers| {
                    !peers.is_empty() && peers.iter().all(|peer| peer.get("podSelector").is_some())
                });
                if !only_pods {
                    problems.push(format!(
                        "{}: the ext_proc port {port} must be reachable only from the gateway's pods (a podSelector peer)",
                        object_name(policy)
                    ));
                }
            }
        }
    }
    problems
}

//! Webhook rules: a ValidatingWebhookConfiguration reaches a rendered Service that
//! selects a pod serving HTTPS on the port it targets, fails the way the values say, and
//! gets its caBundle from somewhere: cert-manager (an annotation naming a rendered
//! Certificate for the Service's DNS name, whose Secret a container mounts as its
//! `--webhook-cert-dir`) or the controller (`--webhook-configuration` naming it).
//! cert-manager's kinds, which kubernetes-validate has no schema for, are checked here.

use serde_json::Value;

use super::{kind, meta_name, object_name, strings};

/// The annotation by which cert-manager's CA injector fills the caBundles.
const INJECT_CA_FROM: &str = "cert-manager.io/inject-ca-from";

fn containers(docs: &[Value]) -> impl Iterator<Item = (&Value, &Value)> {
    docs.iter()
        .filter(|d| kind(d) == "Deployment")
        .flat_map(|d| {
            d.pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(move |c| (d, c))
        })
}

/// The value of `--flag=value` among a container's args.
fn flag(container: &Value, name: &str) -> Option<String> {
    let prefix = format!("--{name}=");
    strings(container.get("args"))
        .into_iter()
        .find_map(|arg| arg.strip_prefix(&prefix).map(str::to_owned))
}

pub(crate) fn check_webhooks(docs: &[Value], values: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let enabled = values.pointer("/webhook/enabled").and_then(Value::as_bool);
    let configurations: Vec<&Value> = docs
        .iter()
        .filter(|d| kind(d) == "ValidatingWebhookConfiguration")
        .collect();
    if enabled == Some(false) && !configurations.is_empty() {
        problems.push(
            "a ValidatingWebhookConfiguration is rendered although webhook.enabled is false"
                .to_owned(),
        );
    }
    if enabled == Some(true) && configurations.is_empty() {
        problems.push(
            "webhook.enabled is true but no ValidatingWebhookConfiguration is rendered".to_owned(),
        );
    }
    let policy = values
        .pointer("/webhook/failurePolicy")
        .and_then(Value::as_str);
    for configuration in configurations {
        let name = object_name(configuration);
        let injected = configuration
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(INJECT_CA_FROM))
            .and_then(Value::as_str);
        let webhooks = configuration
            .get("webhooks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if webhooks.is_empty() {
            problems.push(format!("{name}: has no webhooks"));
        }
        for webhook in &webhooks {
            let at = format!(
                "{name} webhook {}",
                webhook.get("name").and_then(Value::as_str).unwrap_or("?")
            );
            if let Some(policy) = policy
                && webhook.get("failurePolicy").and_then(Value::as_str) != Some(policy)
            {
                problems.push(format!(
                    "{at}: failurePolicy is not webhook.failurePolicy ({policy})"
                ));
            }
            if webhook.get("sideEffects").and_then(Value::as_str) != Some("None") {
                problems.push(format!(
                    "{at}: sideEffects must be None (the webhook only reads)"
                ));
            }
            problems.extend(check_service(docs, &at, webhook));
        }
        match injected {
            Some(reference) => problems.extend(check_cert_manager(docs, &name, reference)),
            None => {
                let patched = containers(docs).any(|(_, c)| {
                    flag(c, "webhook-configuration").as_deref() == Some(meta_name(configuration))
                });
                if !patched {
                    problems.push(format!(
                        "{name}: nothing fills its caBundle: annotate it with {INJECT_CA_FROM} or pass --webhook-configuration={} to the controller",
                        meta_name(configuration)
                    ));
                }
            }
        }
    }
    problems
}

/// The webhook's Service exists, selects a pod, and targets a port a container serves
/// with `--webhook-address`.
fn check_service(docs: &[Value], at: &str, webhook: &Value) -> Vec<String> {
    let Some(reference) = webhook.pointer("/clientConfig/service") else {
        return vec![format!(
            "{at}: clientConfig.service is required (the chart serves the webhook in-cluster)"
        )];
    };
    let service_name = reference.get("name").and_then(Value::as_str).unwrap_or("");
    let port = reference.get("port").and_then(Value::as_i64).unwrap_or(443);
    let Some(service) = docs
        .iter()
        .find(|d| kind(d) == "Service" && meta_name(d) == service_name)
    else {
        return vec![format!("{at}: Service {service_name} is not rendered")];
    };
    let Some(service_port) = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .and_then(|ports| {
            ports
                .iter()
                .find(|p| p.get("port").and_then(Value::as_i64) == Some(port))
        })
    else {
        return vec![format!("{at}: Service {service_name} has no port {port}")];
    };
    let target = service_port.get("targetPort");
    let serves = containers(docs).any(|(_, c)| {
        let Some(address) = flag(c, "webhook-address") else {
            return false;
        };
        let listen: Option<i64> = address.rsplit(':').next().and_then(|p| p.parse().ok());
        c.get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|p| {
                let number = p.get("containerPort").and_then(Value::as_i64);
                let named = p.get("name").is_some_and(|n| Some(n) == target);
                let numbered = target
                    .and_then(Value::as_i64)
                    .is_some_and(|t| Some(t) == number);
                (named || numbered) && number == listen
            })
    });
    if serves {
        Vec::new()
    } else {
        vec![format!(
            "{at}: Service {service_name} port {port} does not reach a container serving --webhook-address on that port"
        )]
    }
}

/// `namespace/name` names a rendered Certificate for the Service, whose Secret a
/// container mounts as its `--webhook-cert-dir`.
fn check_cert_manager(docs: &[Value], name: &str, reference: &str) -> Vec<String> {
    let Some((namespace, certificate_name)) = reference.split_once('/') else {
        return vec![format!(
            "{name}: {INJECT_CA_FROM} must be namespace/name, got {reference:?}"
        )];
    };
    let Some(certificate) = docs.iter().find(|d| {
        kind(d) == "Certificate"
            && meta_name(d) == certificate_name
            && d.pointer("/metadata/namespace").and_then(Value::as_str) == Some(namespace)
    }) else {
        return vec![format!(
            "{name}: {INJECT_CA_FROM} names Certificate {reference}, which is not rendered"
        )];
    };
    let mut problems = Vec::new();
    let dns_names = strings(certificate.pointer("/spec/dnsNames"));
    let services: Vec<String> = docs
        .iter()
        .filter(|d| kind(d) == "ValidatingWebhookConfiguration")
        .flat_map(|d| {
            d.get("webhooks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|w| {
            let service = w.pointer("/clientConfig/service")?;
            Some(format!(
                "{}.{}.svc",
                service.get("name")?.as_str()?,
                service.get("namespace")?.as_str()?
            ))
        })
        .collect();
    for service in services {
        if !dns_names.contains(&service) {
            problems.push(format!("Certificate/{certificate_name}: dnsNames lack {service}, the name the apiserver calls"));
        }
    }
    if certificate
        .pointer("/spec/issuerRef/name")
        .and_then(Value::as_str)
        .is_none()
    {
        problems.push(format!(
            "Certificate/{certificate_name}: spec.issuerRef.name is required"
        ));
    }
    let secret = certificate
        .pointer("/spec/secretName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mounted = containers(docs).any(|(deployment, c)| {
        let Some(dir) = flag(c, "webhook-cert-dir") else {
            return false;
        };
        let volume = deployment
            .pointer("/spec/template/spec/volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|v| v.pointer("/secret/secretName").and_then(Value::as_str) == Some(secret))
            .and_then(|v| v.get("name"));
        c.get("volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|m| {
                m.get("name") == volume
                    && m.get("mountPath").and_then(Value::as_str) == Some(dir.as_str())
            })
    });
    if !mounted {
        problems.push(format!(
            "Certificate/{certificate_name}: no container mounts Secret {secret} at its --webhook-cert-dir"
        ));
    }
    problems
}

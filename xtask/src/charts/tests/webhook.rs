//! The webhook rule: a compliant release (controller-written caBundle, then
//! cert-manager) has no findings, and each broken variant is named.

use serde_json::{Value, json};

use super::super::policy::webhook::check_webhooks;

fn values(enabled: bool) -> Value {
    json!({"webhook": {"enabled": enabled, "failurePolicy": "Ignore"}})
}

/// A Deployment serving the webhook on 9444, its Service on 443, and the
/// configuration whose caBundle the controller writes.
fn release() -> Vec<Value> {
    vec![
        json!({"kind": "Deployment", "metadata": {"name": "r-rollout"}, "spec": {"template": {"spec": {
            "containers": [{"name": "rollout", "args": [
                "serve", "--webhook-address=0.0.0.0:9444", "--webhook-configuration=r-rollout"],
                "ports": [{"name": "https-webhook", "containerPort": 9444}]}]}}}}),
        json!({"kind": "Service", "metadata": {"name": "r-rollout-webhook", "namespace": "sw"},
               "spec": {"ports": [{"port": 443, "targetPort": "https-webhook"}]}}),
        json!({"kind": "ValidatingWebhookConfiguration", "metadata": {"name": "r-rollout"},
               "webhooks": [{"name": "inference.rollout.switchyard.dev", "sideEffects": "None",
                             "failurePolicy": "Ignore",
                             "clientConfig": {"service": {"name": "r-rollout-webhook", "namespace": "sw",
                                                          "path": "/validate", "port": 443}}}]}),
    ]
}

/// The same release with its certificate from cert-manager.
fn cert_manager_release() -> Vec<Value> {
    let mut docs = release();
    let args = json!([
        "serve",
        "--webhook-address=0.0.0.0:9444",
        "--webhook-cert-dir=/etc/switchyard/webhook"
    ]);
    let pod = docs[0].pointer_mut("/spec/template/spec").unwrap();
    pod["containers"][0]["args"] = args;
    pod["containers"][0]["volumeMounts"] =
        json!([{"name": "webhook-tls", "mountPath": "/etc/switchyard/webhook"}]);
    pod["volumes"] =
        json!([{"name": "webhook-tls", "secret": {"secretName": "r-rollout-webhook-tls"}}]);
    docs[2]["metadata"]["annotations"] =
        json!({"cert-manager.io/inject-ca-from": "sw/r-rollout-webhook"});
    docs.push(
        json!({"kind": "Certificate", "metadata": {"name": "r-rollout-webhook", "namespace": "sw"},
                     "spec": {"secretName": "r-rollout-webhook-tls",
                              "dnsNames": ["r-rollout-webhook.sw.svc"],
                              "issuerRef": {"kind": "Issuer", "name": "r-rollout-webhook"}}}),
    );
    docs
}

#[test]
fn compliant_releases_pass() {
    assert_eq!(
        check_webhooks(&release(), &values(true)),
        Vec::<String>::new()
    );
    assert_eq!(
        check_webhooks(&cert_manager_release(), &values(true)),
        Vec::<String>::new()
    );
    assert_eq!(
        check_webhooks(&release()[..2], &values(false)),
        Vec::<String>::new()
    );
}

#[test]
fn enabled_and_rendered_must_agree() {
    assert_eq!(
        check_webhooks(&release(), &values(false)),
        ["a ValidatingWebhookConfiguration is rendered although webhook.enabled is false"]
    );
    assert_eq!(
        check_webhooks(&release()[..2], &values(true)),
        ["webhook.enabled is true but no ValidatingWebhookConfiguration is rendered"]
    );
}

#[test]
fn failure_policy_and_side_effects_follow_the_values() {
    let mut docs = release();
    docs[2]["webhooks"][0]["failurePolicy"] = json!("Fail");
    docs[2]["webhooks"][0]["sideEffects"] = json!("Some");
    assert_eq!(
        check_webhooks(&docs, &values(true)),
        [
            "ValidatingWebhookConfiguration/r-rollout webhook inference.rollout.switchyard.dev: failurePolicy is not webhook.failurePolicy (Ignore)",
            "ValidatingWebhookConfiguration/r-rollout webhook inference.rollout.switchyard.dev: sideEffects must be None (the webhook only reads)",
        ]
    );
}

#[test]
fn the_service_must_reach_the_serving_container() {
    let mut wrong_port = release();
    wrong_port[0]["spec"]["template"]["spec"]["containers"][0]["args"][1] =
        json!("--webhook-address=0.0.0.0:9555");
    assert_eq!(
        check_webhooks(&wrong_port, &values(true)),
        [
            "ValidatingWebhookConfiguration/r-rollout webhook inference.rollout.switchyard.dev: Service r-rollout-webhook port 443 does not reach a container serving --webhook-address on that port"
        ]
    );
    let mut no_service = release();
    no_service.remove(1);
    assert_eq!(
        check_webhooks(&no_service, &values(true)),
        [
            "ValidatingWebhookConfiguration/r-rollout webhook inference.rollout.switchyard.dev: Service r-rollout-webhook is not rendered"
        ]
    );
}

#[test]
fn the_ca_bundle_needs_a_source() {
    let mut docs = release();
    docs[0]["spec"]["template"]["spec"]["containers"][0]["args"][2] = json!("--log-format=json");
    assert_eq!(
        check_webhooks(&docs, &values(true)),
        [
            "ValidatingWebhookConfiguration/r-rollout: nothing fills its caBundle: annotate it with cert-manager.io/inject-ca-from or pass --webhook-configuration=r-rollout to the controller"
        ]
    );
}

#[test]
fn the_certificate_must_name_the_service_and_be_mounted() {
    let mut docs = cert_manager_release();
    docs[3]["spec"]["dnsNames"] = json!(["elsewhere.sw.svc"]);
    docs[0]["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"] = json!("other");
    assert_eq!(
        check_webhooks(&docs, &values(true)),
        [
            "Certificate/r-rollout-webhook: dnsNames lack r-rollout-webhook.sw.svc, the name the apiserver calls",
            "Certificate/r-rollout-webhook: no container mounts Secret r-rollout-webhook-tls at its --webhook-cert-dir",
        ]
    );
    let mut missing = cert_manager_release();
    missing.pop();
    assert_eq!(
        check_webhooks(&missing, &values(true)),
        [
            "ValidatingWebhookConfiguration/r-rollout: cert-manager.io/inject-ca-from names Certificate sw/r-rollout-webhook, which is not rendered"
        ]
    );
}

//! The Kubernetes harness itself against the real API server: the fake kubelet's Pods read
//! back as a watcher sees them, a ServiceAccount's client is judged by RBAC, and TokenRequest
//! tokens authenticate.
//!
//! Needs `cargo xtask kube build` (or SWITCHYARD_KUBE_BIN_DIR).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use switchyard_conformance::kube::{ControlPlane, PodTemplate, accounts, audit};

fn condition(pod: &Pod, kind: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.clone())
}

#[tokio::test]
async fn e2e_kube_harness_kubelet_pods_and_service_account_clients() {
    let plane = ControlPlane::start().await.expect("control plane");
    println!(
        "control plane ready in {:.1}s",
        plane.startup().as_secs_f64()
    );
    assert!(
        plane
            .crds()
            .iter()
            .any(|c| c == "httproutes.gateway.networking.k8s.io")
    );
    assert!(
        plane
            .crds()
            .iter()
            .any(|c| c == "inferencerollouts.rollout.switchyard.dev")
    );
    let client = plane.client();
    accounts::ensure_namespace(&client, "pods").await.unwrap();

    let kubelet = plane.kubelet("node-a").await.unwrap();
    let template = PodTemplate {
        namespace: "pods".to_owned(),
        name: "sim-0".to_owned(),
        labels: BTreeMap::from([("app".to_owned(), "sim".to_owned())]),
        ip: Ipv4Addr::new(127, 0, 0, 7),
        port: 8000,
        ready: true,
    };
    kubelet.run_pod(&template).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "pods");
    let pod = pods.get("sim-0").await.unwrap();
    let status = pod.status.clone().unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.pod_ip.as_deref(), Some("127.0.0.7"));
    assert_eq!(
        pod.spec.as_ref().unwrap().node_name.as_deref(),
        Some("node-a")
    );
    assert_eq!(condition(&pod, "Ready").as_deref(), Some("True"));

    let pod = kubelet.set_ready("pods", "sim-0", false).await.unwrap();
    assert_eq!(condition(&pod, "Ready").as_deref(), Some("False"));
    assert_eq!(
        condition(&pod, "PodScheduled").as_deref(),
        Some("True"),
        "merged by type"
    );
    assert_eq!(
        pod.status.unwrap().pod_ip.as_deref(),
        Some("127.0.0.7"),
        "IP kept"
    );

    // A ServiceAccount with no Role is refused; with one, allowed; the audit log says which.
    let reader = plane.service_account("pods", "reader").await.unwrap();
    let as_reader: Api<Pod> = Api::namespaced(reader.client.clone(), "pods");
    let refused = as_reader.list(&Default::default()).await.unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403),
        "{refused:?}"
    );
    let refusals = audit::forbidden(&plane.layout().audit_log(), &reader.user).unwrap();
    assert!(
        refusals
            .iter()
            .any(|r| r.verb == "list" && r.resource == "pods"),
        "{refusals:?}"
    );
    grant_pod_reads(&client).await;
    let listed = as_reader.list(&Default::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);

    // The state lives in etcd: an API server restart loses nothing.
    let mut plane = plane;
    plane
        .restart_apiserver(Duration::from_millis(200))
        .await
        .unwrap();
    kubelet.terminate_pod("pods", "sim-0", 30).await.unwrap();
    let terminating = pods.get("sim-0").await.unwrap();
    assert!(
        terminating.metadata.deletion_timestamp.is_some(),
        "graceful delete marks it"
    );
    kubelet.delete_pod("pods", "sim-0").await.unwrap();
    assert!(
        pods.get_opt("sim-0").await.unwrap().is_none(),
        "grace 0 removes it"
    );
}

async fn grant_pod_reads(client: &kube::Client) {
    let meta = ObjectMeta {
        name: Some("pod-reader".to_owned()),
        namespace: Some("pods".to_owned()),
        ..ObjectMeta::default()
    };
    let role = Role {
        metadata: meta.clone(),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["pods".to_owned()]),
            verbs: vec!["list".to_owned()],
            ..PolicyRule::default()
        }]),
    };
    let binding = RoleBinding {
        metadata: meta,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: "pod-reader".to_owned(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: "reader".to_owned(),
            namespace: Some("pods".to_owned()),
            ..Subject::default()
        }]),
    };
    let pp = PostParams::default();
    Api::<Role>::namespaced(client.clone(), "pods")
        .create(&pp, &role)
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), "pods")
        .create(&pp, &binding)
        .await
        .unwrap();
}

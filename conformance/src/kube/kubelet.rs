//! A stand-in kubelet: a Node that says it is Ready, and Pods bound to it whose status the
//! test sets (Running, Ready or not, a `podIP` on loopback where a simulator listens).
//!
//! No container runs: the API server only stores what this helper writes, which is all the
//! EPP's pod watcher and the rollout controller read. Status goes through the `status`
//! subresource as a real kubelet's does, so RBAC and admission see the same requests.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Container, ContainerPort, Node, Pod, PodSpec};
use kube::Client;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

use super::error::{Error, Result};

/// The image every fake Pod names; nothing pulls it.
const IMAGE: &str = "switchyard.test/none:0";

/// A fake Node and the Pods placed on it.
#[derive(Clone)]
pub struct Kubelet {
    client: Client,
    node: String,
}

/// One Pod to create.
#[derive(Debug, Clone)]
pub struct PodTemplate {
    /// Namespace (must exist).
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// Labels, which pool selectors match.
    pub labels: BTreeMap<String, String>,
    /// The address the Pod "runs" at, in 127.0.0.0/8.
    pub ip: Ipv4Addr,
    /// The container port.
    pub port: u16,
    /// Whether the Ready condition starts True.
    pub ready: bool,
}

impl Kubelet {
    /// Registers Node `name` (status Ready, address 127.0.0.1); an existing one is reused.
    pub async fn register(client: Client, name: &str) -> Result<Self> {
        let nodes: Api<Node> = Api::all(client.clone());
        let node = Node {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            ..Node::default()
        };
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(err) => return Err(Error::api(format!("creating Node {name}"))(err)),
        }
        let status = json!({"status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "switchyard test kubelet"}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        }});
        nodes
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .map_err(Error::api(format!("setting Node {name} Ready")))?;
        Ok(Self {
            client,
            node: name.to_owned(),
        })
    }

    /// The Node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Creates the Pod bound to this Node and sets it Running at `template.ip`.
    pub async fn run_pod(&self, template: &PodTemplate) -> Result<Pod> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &template.namespace);
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some(template.name.clone()),
                labels: Some(template.labels.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some(self.node.clone()),
                containers: vec![Container {
                    name: "server".to_owned(),
                    image: Some(IMAGE.to_owned()),
                    ports: Some(vec![ContainerPort {
                        container_port: i32::from(template.port),
                        ..ContainerPort::default()
                    }]),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        let label = format!("Pod {}/{}", template.namespace, template.name);
        pods.create(&PostParams::default(), &pod)
            .await
            .map_err(Error::api(format!("creating {label}")))?;
        self.set_status(
            &template.namespace,
            &template.name,
            Some(template.ip),
            template.ready,
        )
        .await
    }

    /// Flips the Pod's Ready condition (and ContainersReady with it).
    pub async fn set_ready(&self, namespace: &str, name: &str, ready: bool) -> Result<Pod> {
        self.set_status(namespace, name, None, ready).await
    }

    async fn set_status(
        &self,
        namespace: &str,
        name: &str,
        ip: Option<Ipv4Addr>,
        ready: bool,
    ) -> Result<Pod> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let flag = if ready { "True" } else { "False" };
        let mut status = json!({
            "phase": "Running",
            "hostIP": "127.0.0.1",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": flag},
                {"type": "Ready", "status": flag},
            ],
        });
        if let Some(ip) = ip {
            status["podIP"] = json!(ip.to_string());
            status["podIPs"] = json!([{"ip": ip.to_string()}]);
            status["startTime"] = json!(k8s_openapi::jiff::Timestamp::now().to_string());
        }
        // A strategic merge patch merges `conditions` by type, as the kubelet's own updates do.
        pods.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Strategic(&json!({ "status": status })),
        )
        .await
        .map_err(Error::api(format!(
            "setting the status of Pod {namespace}/{name}"
        )))
    }

    /// Deletes the Pod at once (grace period 0), as if its node confirmed the kill.
    pub async fn delete_pod(&self, namespace: &str, name: &str) -> Result<()> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        match pods
            .delete(name, &DeleteParams::default().grace_period(0))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(err) => Err(Error::api(format!("deleting Pod {namespace}/{name}"))(err)),
        }
    }

    /// Starts a graceful delete: the Pod stays, marked with a deletionTimestamp, until
    /// [`Kubelet::delete_pod`] finishes it (a real kubelet would after the containers exit).
    pub async fn terminate_pod(
        &self,
        namespace: &str,
        name: &str,
        grace_seconds: u32,
    ) -> Result<()> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        pods.delete(name, &DeleteParams::default().grace_period(grace_seconds))
            .await
            .map(|_| ())
            .map_err(Error::api(format!("terminating Pod {namespace}/{name}")))
    }
}

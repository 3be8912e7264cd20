//! A chart's binary run out of cluster exactly as its Deployment runs it, with its
//! ServiceAccount's token: the container's args and env read back from the API server, only
//! what a pod has and a test process lacks rewritten (listen addresses on free loopback
//! ports, the mounted ConfigMap written to a directory, `fieldRef` env filled in).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use switchyard_conformance::kube::{AccountAccess, ControlPlane};
use switchyard_conformance::ports::free_port;

/// Flags whose value is a bare port the binary listens on.
const PORT_FLAGS: &[&str] = &["--grpc-port", "--grpc-health-port", "--metrics-port"];

/// A Deployment turned into a local command.
pub struct LocalRun {
    /// The command, with `KUBECONFIG` pointing at the ServiceAccount's kubeconfig.
    pub command: Command,
    /// The ServiceAccount the pod runs as.
    pub service_account: String,
    /// Where each rewritten listen flag now listens (`--grpc-health-port` → 127.0.0.1:p).
    pub listens: BTreeMap<String, SocketAddr>,
}

/// The first container of Deployment `namespace/name` as a local command.
pub async fn from_deployment(
    plane: &ControlPlane,
    namespace: &str,
    name: &str,
    binary: &Path,
    dir: &Path,
) -> LocalRun {
    let client = plane.client();
    let deployment = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap_or_else(|err| panic!("reading Deployment {namespace}/{name}: {err}"));
    let pod = deployment
        .spec
        .and_then(|s| s.template.spec)
        .expect("a pod template");
    let service_account = pod
        .service_account_name
        .clone()
        .expect("a serviceAccountName");
    let container = pod.containers.first().expect("a container").clone();

    // Mounted ConfigMaps become directories under `dir`.
    let mut mounts: Vec<(String, PathBuf)> = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .expect("every mount names a volume");
        let Some(source) = &volume.config_map else {
            continue;
        };
        let local = dir.join(&mount.name);
        std::fs::create_dir_all(&local).unwrap();
        let config_map = Api::<ConfigMap>::namespaced(client.clone(), namespace)
            .get(&source.name)
            .await
            .unwrap_or_else(|err| panic!("reading ConfigMap {}: {err}", source.name));
        for (key, value) in config_map.data.unwrap_or_default() {
            std::fs::write(local.join(key), value).unwrap();
        }
        mounts.push((mount.mount_path.clone(), local));
    }

    let mut listens = BTreeMap::new();
    let mut args = Vec::new();
    for arg in container.args.iter().flatten() {
        let (flag, value) = arg.split_once('=').unwrap_or((arg.as_str(), ""));
        if PORT_FLAGS.contains(&flag) {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
            listens.insert(flag.to_owned(), addr);
            args.push(format!("{flag}={}", addr.port()));
        } else if value.starts_with("0.0.0.0:") {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
            listens.insert(flag.to_owned(), addr);
            args.push(format!("{flag}={addr}"));
        } else if let Some((mount, local)) =
            mounts.iter().find(|(m, _)| value.starts_with(m.as_str()))
        {
            args.push(format!(
                "{flag}={}{}",
                local.display(),
                &value[mount.len()..]
            ));
        } else {
            args.push(arg.clone());
        }
    }
    let mut command = Command::new(binary);
    command.args(&args).current_dir(dir);
    for env in container.env.iter().flatten() {
        if let Some(value) = &env.value {
            command.env(&env.name, value);
        } else if let Some(field) = env.value_from.as_ref().and_then(|v| v.field_ref.as_ref()) {
            let value = match field.field_path.as_str() {
                "metadata.namespace" => namespace.to_owned(),
                "metadata.name" => format!("{name}-local"),
                other => panic!("env {} reads fieldRef {other}; teach run_as.rs", env.name),
            };
            command.env(&env.name, value);
        }
    }
    LocalRun {
        command,
        service_account,
        listens,
    }
}

/// Points `run` at `account`'s kubeconfig.
pub fn as_account(run: &mut LocalRun, account: &AccountAccess) {
    run.command.env("KUBECONFIG", &account.kubeconfig);
}

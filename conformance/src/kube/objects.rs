//! Kubernetes objects from YAML files: CRDs installed and waited for, any object created or
//! updated through discovery.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Scope};
use kube::{Client, ResourceExt};
use serde_json::Value;

use super::error::{Error, Result};

/// The field manager of everything the harness applies.
pub const FIELD_MANAGER: &str = "switchyard-kube-harness";
/// How long a CRD may take to become Established.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(30);
/// How often Established is polled.
const ESTABLISH_POLL: Duration = Duration::from_millis(50);

/// Every non-empty document of a multi-document YAML file.
pub fn read_documents(path: &Path) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).map_err(Error::io(format!("reading {}", path.display())))?;
    parse_documents(&text).map_err(|reason| Error::Manifest {
        path: path.to_path_buf(),
        reason,
    })
}

/// Every non-empty document of multi-document YAML text.
pub fn parse_documents(text: &str) -> std::result::Result<Vec<Value>, String> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|err| format!("not valid YAML: {err}"))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// The YAML files directly in `dir`, sorted.
pub fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(Error::io(format!("reading {}", dir.display())))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Applies every CustomResourceDefinition in `files` (other kinds are skipped) and waits
/// until each is Established. Returns the CRD names.
pub async fn install_crds(client: &Client, files: &[PathBuf]) -> Result<Vec<String>> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut crds = Vec::new();
    for file in files {
        for doc in read_documents(file)? {
            if doc.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
                continue;
            }
            let name = doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::Manifest {
                    path: file.clone(),
                    reason: "a CustomResourceDefinition without metadata.name".to_owned(),
                })?
                .to_owned();
            crds.push((name, doc, file.clone()));
        }
    }
    // All at once: each apply and each wait is a round trip, and a start pays for them all.
    let params = PatchParams::apply(FIELD_MANAGER).force();
    futures::future::try_join_all(crds.iter().map(|(name, doc, file)| {
        let api = &api;
        let params = &params;
        async move {
            api.patch(name, params, &Patch::Apply(doc))
                .await
                .map_err(Error::api(format!(
                    "applying CRD {name} from {}",
                    file.display()
                )))?;
            wait_established(api, name).await
        }
    }))
    .await?;
    Ok(crds.into_iter().map(|(name, _, _)| name).collect())
}

async fn wait_established(api: &Api<CustomResourceDefinition>, name: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        let crd = api
            .get(name)
            .await
            .map_err(Error::api(format!("reading CRD {name}")))?;
        let established = crd
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if established {
            return Ok(());
        }
        if started.elapsed() > ESTABLISH_TIMEOUT {
            return Err(Error::Timeout(format!(
                "CRD {name} was not Established after {ESTABLISH_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(ESTABLISH_POLL).await;
    }
}

/// The API for `object`'s kind, found through discovery, in `namespace` when it is namespaced
/// and the object names none.
pub async fn api_for(
    client: &Client,
    object: &Value,
    namespace: &str,
) -> Result<Api<DynamicObject>> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, capabilities) = discovery::pinned_kind(client, &gvk)
        .await
        .map_err(Error::api(format!("discovering {api_version} {kind}")))?;
    Ok(match capabilities.scope {
        Scope::Cluster => Api::all_with(client.clone(), &resource),
        Scope::Namespaced => {
            let ns = object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(namespace);
            Api::namespaced_with(client.clone(), ns, &resource)
        }
    })
}

/// Creates `object` (in `namespace` unless it names one) and returns what the API server
/// stored. The error is the API server's answer.
pub async fn create(client: &Client, object: &Value, namespace: &str) -> Result<DynamicObject> {
    let api = api_for(client, object, namespace).await?;
    let dynamic: DynamicObject = serde_json::from_value(object.clone()).map_err(|source| {
        Error::Process(switchyard_local::Error::Json {
            context: "reading an object".to_owned(),
            source,
        })
    })?;
    let name = dynamic.name_any();
    api.create(&PostParams::default(), &dynamic)
        .await
        .map_err(Error::api(format!("creating {name}")))
}

/// Replaces the stored object with `object` (keeping the stored resourceVersion), as an
/// update does, so CEL transition rules see the old and the new object.
pub async fn replace(client: &Client, object: &Value, namespace: &str) -> Result<DynamicObject> {
    let api = api_for(client, object, namespace).await?;
    let mut dynamic: DynamicObject = serde_json::from_value(object.clone()).map_err(|source| {
        Error::Process(switchyard_local::Error::Json {
            context: "reading an object".to_owned(),
            source,
        })
    })?;
    let name = dynamic.name_any();
    let stored = api
        .get(&name)
        .await
        .map_err(Error::api(format!("reading {name} before replacing it")))?;
    dynamic.metadata.resource_version = stored.metadata.resource_version;
    api.replace(&name, &PostParams::default(), &dynamic)
        .await
        .map_err(Error::api(format!("replacing {name}")))
}

/// Deletes `object` if it exists.
pub async fn delete(client: &Client, object: &Value, namespace: &str) -> Result<()> {
    let api = api_for(client, object, namespace).await?;
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match api.delete(name, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(Error::api(format!("deleting {name}"))(err)),
    }
}

//! Reading manifests: YAML documents → typed HTTPRoutes, InferencePools, InferenceObjectives
//! and InferenceModelRewrites.
//!
//! Documents are first run through `switchyard_check`, the rules `switchyard-check`
//! applies, so a manifest the local gateway refuses gets the same message a cluster user
//! would get from the checker (references between documents excepted: see
//! [`Manifests::from_documents`]). Kinds a cluster needs but a local gateway does not (Gateway,
//! Deployment, Service…) are skipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;
use switchyard_api::legacy::{self, LEGACY_GROUP};
use switchyard_api::reference::{GATEWAY_API_GROUP, INFERENCE_POOL_GROUP, INFERENCE_POOL_KIND};
use switchyard_api::{
    FailureMode, HttpRoute, InferenceModelRewrite, InferenceObjective, InferencePool, alias,
};
use switchyard_check::{self as check, Document};

use super::{DEFAULT_NAMESPACE, PoolKey};
use crate::error::{Error, Result};

/// The manifests of one gateway, typed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifests {
    /// HTTPRoutes, in the order read.
    pub routes: Vec<HttpRoute>,
    /// InferencePools (legacy `v1alpha2` pools converted to `v1`).
    pub pools: Vec<InferencePool>,
    /// InferenceObjectives, for the pickers.
    pub objectives: Vec<InferenceObjective>,
    /// InferenceModelRewrites, for the pickers.
    pub rewrites: Vec<InferenceModelRewrite>,
    /// `Kind/name` of the documents skipped (Gateway, Deployment, …).
    pub skipped: Vec<String>,
}

// === impl Manifests ===

impl Manifests {
    /// Parses one YAML text (`source` names it in messages).
    pub fn parse(source: &str, text: &str) -> Result<Self> {
        let documents =
            check::parse_documents(source, text).map_err(|syntax| Error::Manifests {
                problems: vec![syntax.to_string()],
            })?;
        Self::from_documents(&documents)
    }

    /// Reads a manifest file, or every `*.yaml`/`*.yml` file under a directory (sorted, so the
    /// order is the same on every machine).
    pub fn load(path: &Path) -> Result<Self> {
        let mut files = Vec::new();
        collect_yaml(path, &mut files)?;
        let mut documents = Vec::new();
        let mut problems = Vec::new();
        for file in &files {
            let bytes =
                std::fs::read(file).map_err(Error::io(format!("reading {}", file.display())))?;
            match check::parse_bytes(&file.display().to_string(), &bytes) {
                Ok(parsed) => documents.extend(parsed),
                Err(syntax) => problems.push(syntax.to_string()),
            }
        }
        if !problems.is_empty() {
            return Err(Error::Manifests { problems });
        }
        Self::from_documents(&documents)
    }

    /// Checks and decodes parsed documents.
    ///
    /// Each document is checked on its own: a reference to a missing pool is not a reason to
    /// refuse the manifests (Gateway API answers 500 for that backend's share, and the
    /// translation warns), while every other finding is.
    pub fn from_documents(documents: &[Document]) -> Result<Self> {
        let findings: Vec<check::Finding> = documents
            .iter()
            .flat_map(|document| check::check_documents(std::slice::from_ref(document)))
            .collect();
        if !findings.is_empty() {
            return Err(Error::Manifests {
                problems: findings.iter().map(ToString::to_string).collect(),
            });
        }
        let mut manifests = Self::default();
        let mut problems = Vec::new();
        for document in documents {
            if let Err(problem) = manifests.add(document) {
                problems.push(format!("{}:{}: {problem}", document.source, document.index));
            }
        }
        if problems.is_empty() {
            Ok(manifests)
        } else {
            Err(Error::Manifests { problems })
        }
    }

    fn add(&mut self, document: &Document) -> Result<(), String> {
        let value = &document.value;
        let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default();
        let (api_version, kind) = (text("apiVersion"), text("kind"));
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        match (group, kind) {
            (GATEWAY_API_GROUP, "HTTPRoute") => self.routes.push(decode(value)?),
            (INFERENCE_POOL_GROUP, INFERENCE_POOL_KIND) => self.pools.push(decode(value)?),
            (LEGACY_GROUP, INFERENCE_POOL_KIND) => {
                let legacy: legacy::InferencePool = decode(value)?;
                let pool = legacy::convert::convert_pool(&legacy).map_err(|e| e.to_string())?;
                self.pools.push(pool);
            }
            (_, "InferenceObjective") => self
                .objectives
                .push(alias::parse_objective(value.clone()).map_err(|e| e.to_string())?),
            (_, "InferenceModelRewrite") => self
                .rewrites
                .push(alias::parse_model_rewrite(value.clone()).map_err(|e| e.to_string())?),
            (LEGACY_GROUP, "InferenceModel") => {
                return Err(
                    "InferenceModel is the legacy v1alpha2 kind; the local gateway reads \
                     InferenceObjective (inference.networking.x-k8s.io/v1alpha2): run \
                     switchyard-check on the file for the field-by-field migration"
                        .to_owned(),
                );
            }
            _ => {
                let name = value
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("<unnamed>");
                let kind = if kind.is_empty() { "<no kind>" } else { kind };
                self.skipped.push(format!("{kind}/{name}"));
            }
        }
        Ok(())
    }

    /// Every pool, by namespace and name.
    pub fn pool_keys(&self) -> Vec<PoolKey> {
        self.pools.iter().map(pool_key).collect()
    }

    /// The pool with this key.
    pub fn pool(&self, key: &PoolKey) -> Option<&InferencePool> {
        self.pools.iter().find(|pool| &pool_key(pool) == key)
    }

    /// The pools whose picker may be bypassed when it is down.
    pub fn fail_open_pools(&self) -> BTreeSet<PoolKey> {
        self.pools
            .iter()
            .filter(|pool| pool.spec.failure_mode() == FailureMode::FailOpen)
            .map(pool_key)
            .collect()
    }

    /// The objectives whose `poolRef` names `key`'s pool.
    pub fn objectives_of(&self, key: &PoolKey) -> Vec<&InferenceObjective> {
        self.objectives
            .iter()
            .filter(|o| namespace_of(*o) == key.namespace)
            .filter(|o| o.spec.pool_ref.name == key.name)
            .collect()
    }

    /// The rewrites whose `poolRef` names `key`'s pool.
    pub fn rewrites_of(&self, key: &PoolKey) -> Vec<&InferenceModelRewrite> {
        self.rewrites
            .iter()
            .filter(|r| namespace_of(*r) == key.namespace)
            .filter(|r| r.spec.pool_ref.name == key.name)
            .collect()
    }
}

/// A pool's key.
pub(super) fn pool_key(pool: &InferencePool) -> PoolKey {
    PoolKey::new(
        namespace_of(pool),
        pool.metadata.name.clone().unwrap_or_default(),
    )
}

/// An object's namespace, [`DEFAULT_NAMESPACE`] when unset.
pub(super) fn namespace_of<R: kube::Resource>(resource: &R) -> &str {
    resource
        .meta()
        .namespace
        .as_deref()
        .unwrap_or(DEFAULT_NAMESPACE)
}

fn decode<T: DeserializeOwned>(value: &Value) -> Result<T, String> {
    serde_json::from_value(value.clone()).map_err(|e| e.to_string())
}

fn collect_yaml(path: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let metadata =
        std::fs::metadata(path).map_err(Error::io(format!("reading {}", path.display())))?;
    if metadata.is_file() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries = std::fs::read_dir(path)
        .map_err(Error::io(format!("listing {}", path.display())))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(Error::io(format!("listing {}", path.display())))?;
    entries.sort();
    for entry in entries {
        let is_yaml = entry
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        if entry.is_dir() {
            collect_yaml(&entry, files)?;
        } else if is_yaml {
            files.push(entry);
        }
    }
    Ok(())
}

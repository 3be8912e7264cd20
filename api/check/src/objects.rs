//! The other objects a document is judged against: one view, two sources.
//!
//! The `switchyard-check` binary fills [`Objects`] from the files it was given
//! ([`objects_of`]); the admission webhook fills it from its watches of the API
//! server. Every cross-object rule reads only this view, so both front ends give
//! the same verdict on the same objects.

use serde::Deserialize;
use serde_json::Value;

use super::Document;
use super::hints::{DEFAULT_NAMESPACE, POOL_GROUP, X_GROUP};
use super::kinds::{Class, Kind, classify};
use switchyard_api::rollout::InferenceRolloutSpec;
use switchyard_api::{
    EndpointPickerRef, HttpRouteSpec, InferenceModelRewriteSpec, InferencePool, InferencePoolSpec,
};

/// The pool annotation that lists the models a pool's servers answer to
/// (comma-separated: base model, `--served-model-name` aliases, LoRA adapters).
/// Nothing in the InferencePool API says which models a pool serves, so a
/// rewrite target is only judged against pools that declare them here.
pub const SERVED_MODELS_ANNOTATION: &str = "inference.switchyard.dev/served-models";

/// A namespaced object and its spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Object<T> {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The decoded spec.
    pub spec: T,
}

impl<T> Object<T> {
    /// An object named `name` in `namespace`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>, spec: T) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            spec,
        }
    }
}

/// An InferencePool: its API group (GA or legacy), namespace and name, and what
/// the rules need of its spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolObject {
    /// `inference.networking.k8s.io` or the legacy `inference.networking.x-k8s.io`.
    pub group: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The endpoint picker's Service name, when the picker is a core Service.
    pub epp_service: Option<String>,
    /// The models the pool declares it serves ([`SERVED_MODELS_ANNOTATION`]);
    /// `None` when it declares nothing.
    pub served_models: Option<Vec<String>>,
}

impl PoolObject {
    /// A v1 pool with nothing declared beyond its identity.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            group: POOL_GROUP.to_owned(),
            namespace: namespace.into(),
            name: name.into(),
            epp_service: None,
            served_models: None,
        }
    }

    /// The pool described by a whole InferencePool document (any served version).
    pub fn from_document(group: &str, namespace: &str, name: &str, document: &Value) -> Self {
        let spec = document.get("spec").unwrap_or(&Value::Null);
        let epp_service = if group == POOL_GROUP {
            InferencePoolSpec::deserialize(spec)
                .ok()
                .and_then(|spec| spec.endpoint_picker_ref)
                .filter(EndpointPickerRef::is_service)
                .map(|picker| picker.name)
        } else {
            // The legacy pool's extensionRef: a Service unless it says otherwise.
            let reference = spec.get("extensionRef");
            let kind = reference
                .and_then(|r| r.get("kind"))
                .and_then(Value::as_str);
            let group = reference
                .and_then(|r| r.get("group"))
                .and_then(Value::as_str);
            reference
                .and_then(|r| r.get("name"))
                .and_then(Value::as_str)
                .filter(|_| kind.is_none_or(|k| k == "Service") && group.is_none_or(str::is_empty))
                .map(str::to_owned)
        };
        let served_models = document
            .pointer("/metadata/annotations")
            .and_then(|annotations| annotations.get(SERVED_MODELS_ANNOTATION))
            .and_then(Value::as_str)
            .map(served_models_of);
        Self {
            group: group.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            epp_service,
            served_models,
        }
    }
}

impl From<&InferencePool> for PoolObject {
    /// A v1 pool read from the API server.
    fn from(pool: &InferencePool) -> Self {
        let picker = pool.spec.endpoint_picker_ref.as_ref();
        Self {
            group: POOL_GROUP.to_owned(),
            namespace: pool
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            name: pool.metadata.name.clone().unwrap_or_default(),
            epp_service: picker
                .filter(|picker| picker.is_service())
                .map(|picker| picker.name.clone()),
            served_models: pool
                .metadata
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(SERVED_MODELS_ANNOTATION))
                .map(|list| served_models_of(list)),
        }
    }
}

/// The comma-separated [`SERVED_MODELS_ANNOTATION`], trimmed, empty entries dropped.
fn served_models_of(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|model| !model.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Where the objects come from; it only changes how "not found" is worded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// The files given to `switchyard-check`.
    #[default]
    Files,
    /// The cluster, as the admission webhook sees it.
    Cluster,
}

/// What documents are checked against. `None` means "not known" (no object of
/// that kind was given, or the webhook's watch of it is not synced), and
/// references to it are then not judged; `Some(vec![])` means "known to be none".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Objects {
    /// Where these objects come from.
    pub scope: Scope,
    /// The InferenceRollouts that may still move weights; the checked one may be
    /// among them (it is skipped by name). A webhook leaves out finished ones
    /// (by `status.phase`); files carry no status, so every rollout in them counts.
    pub rollouts: Vec<Object<InferenceRolloutSpec>>,
    /// HTTPRoutes.
    pub routes: Option<Vec<Object<HttpRouteSpec>>>,
    /// InferencePools.
    pub pools: Option<Vec<PoolObject>>,
    /// InferenceModelRewrites.
    pub rewrites: Option<Vec<Object<InferenceModelRewriteSpec>>>,
    /// Services (only their names matter: a pool's endpoint picker).
    pub services: Option<Vec<Object<()>>>,
    /// The webhook's InferenceRollout watch has not listed yet: `rollouts` is
    /// empty because nothing is known, not because there are none.
    pub rollouts_unsynced: bool,
}

impl Objects {
    /// How a missing object's message ends: where it was looked for.
    pub(crate) fn among(&self) -> &'static str {
        match self.scope {
            Scope::Files => "among the checked objects",
            Scope::Cluster => "in the cluster",
        }
    }
}

/// Collects what documents can reference among `documents`. A kind with no
/// object in the set stays `None`: the user is checking documents without it (it
/// lives elsewhere), so references to it are not judged.
pub fn objects_of(documents: &[Document]) -> Objects {
    let mut objects = Objects::default();
    for document in documents {
        add_document(&mut objects, &document.value);
    }
    objects
}

fn add_document(objects: &mut Objects, value: &Value) {
    let text = |key: &str| value.get(key).and_then(Value::as_str);
    let Some(name) = value.pointer("/metadata/name").and_then(Value::as_str) else {
        return;
    };
    let namespace = value
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_NAMESPACE);
    let spec = value.get("spec").unwrap_or(&Value::Null);
    if text("apiVersion") == Some("v1") && text("kind") == Some("Service") {
        objects
            .services
            .get_or_insert_default()
            .push(Object::new(namespace, name, ()));
        return;
    }
    let kind = match classify(text("apiVersion"), text("kind")) {
        Class::Served(kind) | Class::Unserved { kind, .. } => kind,
        _ => return,
    };
    match kind {
        Kind::Pool | Kind::LegacyPool => {
            let group = if kind == Kind::Pool {
                POOL_GROUP
            } else {
                X_GROUP
            };
            objects
                .pools
                .get_or_insert_default()
                .push(PoolObject::from_document(group, namespace, name, value));
        }
        Kind::HttpRoute => {
            // A route that does not decode has its own finding; it still
            // exists, so its rules are taken as empty rather than missing.
            let route = HttpRouteSpec::deserialize(spec).unwrap_or_default();
            objects
                .routes
                .get_or_insert_default()
                .push(Object::new(namespace, name, route));
        }
        Kind::Rewrite => {
            if let Ok(rewrite) = InferenceModelRewriteSpec::deserialize(spec) {
                objects
                    .rewrites
                    .get_or_insert_default()
                    .push(Object::new(namespace, name, rewrite));
            }
        }
        Kind::Rollout => {
            if let Ok(rollout) = InferenceRolloutSpec::deserialize(spec) {
                objects.rollouts.push(Object::new(namespace, name, rollout));
            }
        }
        Kind::LegacyModel | Kind::Objective => {}
    }
}

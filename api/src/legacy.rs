//! The `inference.networking.x-k8s.io/v1alpha2` InferencePool and InferenceModel,
//! which clusters installed before GIE v1.0 may still hold.
//!
//! Read-only: we watch them (hence `CustomResource`) but never serve their CRDs,
//! so their schemas are not generated (`schema = "disabled"`). [`convert`] turns
//! them into the current kinds.
//!
//! Upstream's legacy CRDs carry two CEL rules that we therefore never emit:
//! `modelName` is immutable (`self == oldSelf`, a transition rule only the
//! apiserver can check) and target-model weights are set on all targets or none
//! (checked by [`convert::convert_model`] instead). Both are expressible with
//! kube's `KubeSchema`; they are absent only because these schemas are not served.

pub mod convert;

use std::collections::BTreeMap;

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::pool::FailureMode;

/// The API group of the legacy kinds.
pub const LEGACY_GROUP: &str = "inference.networking.x-k8s.io";

/// The desired state of a legacy [`InferencePool`].
#[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[kube(
    group = "inference.networking.x-k8s.io",
    version = "v1alpha2",
    kind = "InferencePool",
    namespaced,
    status = "InferencePoolStatus",
    derive = "PartialEq",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct InferencePoolSpec {
    /// Labels selecting the member pods, as a plain Service-style map.
    pub selector: BTreeMap<String, String>,

    /// The single port the member pods serve on.
    pub target_port_number: i32,

    /// The endpoint picker serving this pool.
    pub extension_ref: Extension,
}

/// The legacy reference to the endpoint picker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    /// The referent's API group; `""` (core) by default.
    #[serde(default)]
    pub group: String,

    /// The referent's kind; `Service` by default.
    #[serde(default = "default_extension_kind")]
    pub kind: String,

    /// The referent's name.
    pub name: String,

    /// The picker's port. When unset, implementations should assume
    /// [`convert::LEGACY_DEFAULT_EXTENSION_PORT`] for a Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_number: Option<i32>,

    /// What the gateway does when the picker does not answer; `FailClose` by default.
    #[serde(default)]
    pub failure_mode: FailureMode,
}

/// The observed state of a legacy [`InferencePool`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferencePoolStatus {
    /// One entry per parent Gateway. Upstream spelled the key in the singular.
    /// An entry whose parent is `kind: Status, name: default` is a placeholder
    /// meaning "no parent yet".
    #[serde(rename = "parent", default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<PoolStatus>,
}

/// The legacy pool's state as seen by one Gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolStatus {
    /// The Gateway this entry is about.
    pub parent_ref: ParentReference,

    /// Conditions about the pool from this parent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// The legacy status' reference to a Gateway (a `corev1.ObjectReference` subset).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    /// The parent's API group; `gateway.networking.k8s.io` by default.
    #[serde(default = "default_parent_group")]
    pub group: String,

    /// The parent's kind; `Gateway` by default.
    #[serde(default = "default_parent_kind")]
    pub kind: String,

    /// The parent's name.
    pub name: String,

    /// The parent's namespace; the pool's own when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The desired state of an [`InferenceModel`]: a public model name served by a
/// pool, with a criticality and optional weighted target models.
#[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[kube(
    group = "inference.networking.x-k8s.io",
    version = "v1alpha2",
    kind = "InferenceModel",
    namespaced,
    status = "InferenceModelStatus",
    derive = "PartialEq",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct InferenceModelSpec {
    /// The `model` clients send in the request body; unique per pool.
    pub model_name: String,

    /// How important these requests are; unset is treated as `Standard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criticality: Option<Criticality>,

    /// Versions or adapters to split traffic across. Empty means the request goes
    /// to `model_name` itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_models: Vec<TargetModel>,

    /// The legacy pool serving this model.
    pub pool_ref: PoolObjectReference,
}

/// The legacy coarse priority classes, replaced by an integer priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Criticality {
    /// Must be served first.
    Critical,
    /// The default class.
    Standard,
    /// May be shed under load.
    Sheddable,
}

/// A weighted model or LoRA adapter behind a legacy InferenceModel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetModel {
    /// The adapter or base model name, as the model server knows it.
    pub name: String,

    /// The share of traffic: `weight / sum(weights)`. Set on all targets or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

/// A legacy InferenceModel's reference to its pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolObjectReference {
    /// The pool's API group; the legacy group by default.
    #[serde(default = "default_legacy_group")]
    pub group: String,

    /// The pool's kind; `InferencePool` by default.
    #[serde(default = "default_pool_kind")]
    pub kind: String,

    /// The pool's name.
    pub name: String,
}

/// The observed state of an [`InferenceModel`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceModelStatus {
    /// Conditions about the model (`Accepted`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

fn default_extension_kind() -> String {
    "Service".to_owned()
}

fn default_parent_group() -> String {
    crate::reference::GATEWAY_API_GROUP.to_owned()
}

fn default_parent_kind() -> String {
    crate::reference::GATEWAY_KIND.to_owned()
}

fn default_legacy_group() -> String {
    LEGACY_GROUP.to_owned()
}

fn default_pool_kind() -> String {
    crate::reference::INFERENCE_POOL_KIND.to_owned()
}

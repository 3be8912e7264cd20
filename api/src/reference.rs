//! Object references shared by several kinds.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema::{GROUP_PATTERN, KIND_PATTERN, NAMESPACE_PATTERN};

/// The API group of [`crate::InferencePool`] v1.
pub const INFERENCE_POOL_GROUP: &str = "inference.networking.k8s.io";
/// The kind of [`crate::InferencePool`].
pub const INFERENCE_POOL_KIND: &str = "InferencePool";
/// The API group of Gateway API kinds (Gateway, HTTPRoute).
pub const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";
/// The kind of a Gateway API Gateway.
pub const GATEWAY_KIND: &str = "Gateway";

/// A reference from an InferenceObjective or InferenceModelRewrite to the
/// InferencePool it applies to, in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolObjectReference {
    /// The referent's API group; defaults to `inference.networking.k8s.io`.
    #[serde(default = "default_pool_group")]
    #[schemars(length(max = 253), regex(pattern = GROUP_PATTERN))]
    pub group: String,

    /// The referent's kind; defaults to `InferencePool`.
    #[serde(default = "default_pool_kind")]
    #[schemars(length(min = 1, max = 63), regex(pattern = KIND_PATTERN))]
    pub kind: String,

    /// The referent's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Identifies the parent (usually a Gateway) an InferencePool status entry is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
pub struct ParentReference {
    /// The parent's API group; defaults to `gateway.networking.k8s.io`.
    #[serde(default = "default_parent_group")]
    #[schemars(length(min = 0, max = 253), regex(pattern = GROUP_PATTERN))]
    pub group: String,

    /// The parent's kind; defaults to `Gateway`.
    #[serde(default = "default_parent_kind")]
    #[schemars(length(min = 1, max = 63), regex(pattern = KIND_PATTERN))]
    pub kind: String,

    /// The parent's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// The parent's namespace; the pool's own namespace when unset. A different
    /// namespace needs a ReferenceGrant there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = NAMESPACE_PATTERN))]
    pub namespace: Option<String>,
}

// === impl PoolObjectReference ===

impl PoolObjectReference {
    /// A reference to the InferencePool `name` with the default group and kind.
    pub fn to_pool(name: impl Into<String>) -> Self {
        Self {
            group: default_pool_group(),
            kind: default_pool_kind(),
            name: name.into(),
        }
    }

    /// Whether this points at an InferencePool (v1 group) called `name`.
    pub fn refers_to_pool(&self, name: &str) -> bool {
        self.group == INFERENCE_POOL_GROUP && self.kind == INFERENCE_POOL_KIND && self.name == name
    }
}

fn default_pool_group() -> String {
    INFERENCE_POOL_GROUP.to_owned()
}

fn default_pool_kind() -> String {
    INFERENCE_POOL_KIND.to_owned()
}

// === impl ParentReference ===

impl ParentReference {
    /// A reference to the Gateway `name`, optionally in another namespace.
    pub fn to_gateway(name: impl Into<String>, namespace: Option<String>) -> Self {
        Self {
            group: default_parent_group(),
            kind: default_parent_kind(),
            name: name.into(),
            namespace,
        }
    }
}

fn default_parent_group() -> String {
    GATEWAY_API_GROUP.to_owned()
}

fn default_parent_kind() -> String {
    GATEWAY_KIND.to_owned()
}

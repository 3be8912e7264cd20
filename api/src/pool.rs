//! `InferencePool` (`inference.networking.k8s.io/v1`): a set of model-server pods
//! plus the endpoint picker (EPP) that chooses among them.
//!
//! Mirrors upstream's v1.5.0 CRD field for field, with v1.6's one change (`endpointPickerRef`
//! optional, #2898); `tests/crd_schema.rs` checks the generated schema against
//! `tests/fixtures/upstream/inferencepools.v1.5.0.yaml` with that change applied.
//!
//! CEL rules (`x-kubernetes-validations`) come from kube's `KubeSchema` derive:
//! - `endpointPickerRef`: `self.kind != 'Service' || has(self.port)`;
//! - `targetPorts`: `self.all(p1, self.exists_one(p2, p1.number==p2.number))`.
//!
//! Both of upstream's rules are expressible, so none is missing.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::reference::ParentReference;
use crate::schema::{CONTROLLER_NAME_PATTERN, GROUP_PATTERN, KIND_PATTERN};

/// The desired state of an [`InferencePool`].
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[kube(
    group = "inference.networking.k8s.io",
    version = "v1",
    kind = "InferencePool",
    namespaced,
    status = "InferencePoolStatus",
    shortname = "infpool",
    // `*.k8s.io` groups are protected: the apiserver rejects a CRD without an
    // approval link. This is the pull request that approved upstream's API.
    annotation(
        "api-approved.kubernetes.io",
        "https://github.com/kubernetes-sigs/gateway-api-inference-extension/pull/1173"
    ),
    // Declares which upstream bundle this CRD is equivalent to, as upstream does.
    annotation("inference.networking.k8s.io/bundle-version", "v1.5.0"),
    derive = "PartialEq",
    schema = "manual",
    doc = "InferencePool is the Schema for the InferencePools API."
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
pub struct InferencePoolSpec {
    /// Which pods, in the pool's namespace, are members of the pool.
    pub selector: LabelSelector,

    /// The ports each member pod serves on. Every `podIP:port` is a distinct
    /// endpoint for the EPP.
    #[schemars(length(min = 1, max = 8), extend("x-kubernetes-list-type" = "atomic"))]
    #[x_kube(validation = Rule::new("self.all(p1, self.exists_one(p2, p1.number==p2.number))").message("port number must be unique"))]
    pub target_ports: Vec<Port>,

    /// The application protocol of every target port; HTTP/1.1 by default.
    #[serde(default)]
    pub app_protocol: AppProtocol,

    /// The endpoint picker extension serving this pool. Optional since GIE v1.6: without
    /// one, a gateway balances over the pool's endpoints itself or marks the pool
    /// `Accepted=False` with reason `EndpointPickerRefMissing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_picker_ref: Option<EndpointPickerRef>,
}

impl InferencePoolSpec {
    /// The picker's failure mode; a pool without a picker has no picker to fail, so
    /// requests are never refused for its sake (`FailOpen`).
    pub fn failure_mode(&self) -> FailureMode {
        self.endpoint_picker_ref
            .as_ref()
            .map_or(FailureMode::FailOpen, |picker| picker.failure_mode)
    }
}

/// A label selector restricted to `matchLabels`, so it can also be used as a
/// Service selector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels a pod must carry, all of them, to be a member (1 to 64 entries).
    #[schemars(schema_with = "crate::schema::match_labels")]
    pub match_labels: BTreeMap<String, String>,
}

/// A network port of the pool's pods or of the endpoint picker's Service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Port {
    /// The port number, 1 to 65535.
    #[schemars(range(min = 1, max = 65535))]
    pub number: i32,
}

/// The application protocol spoken on a pool's target ports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum AppProtocol {
    /// HTTP/1.1.
    #[default]
    #[serde(rename = "http")]
    Http,
    /// HTTP/2 over cleartext (h2c), e.g. for gRPC model servers.
    #[serde(rename = "kubernetes.io/h2c")]
    H2c,
}

/// Where the pool's endpoint picker lives and what the gateway does when it is down.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
#[x_kube(validation = Rule::new("self.kind != 'Service' || has(self.port)").message("port is required when kind is 'Service' or unspecified (defaults to 'Service')"))]
pub struct EndpointPickerRef {
    /// The referent's API group; `""` (the core group) by default.
    #[serde(default)]
    #[schemars(length(min = 0, max = 253), regex(pattern = GROUP_PATTERN))]
    pub group: String,

    /// The referent's kind; `Service` by default. ExternalName Services must not
    /// be supported.
    #[serde(default = "default_picker_kind")]
    #[schemars(length(min = 1, max = 63), regex(pattern = KIND_PATTERN))]
    pub kind: String,

    /// The referent's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// The picker's port: for a Service, the Service port (not the target port).
    /// Required when `kind` is `Service`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,

    /// What the gateway does when the picker does not answer; `FailClose` by default.
    #[serde(default)]
    pub failure_mode: FailureMode,
}

/// How the gateway treats requests while the endpoint picker is unreachable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum FailureMode {
    /// Forward the request to an endpoint the gateway picks itself.
    FailOpen,
    /// Reject the request.
    #[default]
    FailClose,
}

/// The observed state of an [`InferencePool`], one entry per parent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InferencePoolStatus {
    /// The parents (usually Gateways) associated with the pool, at most 32. Each
    /// controller edits only the entries of the parents it manages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), extend("x-kubernetes-list-type" = "atomic"))]
    pub parents: Vec<ParentStatus>,
}

/// The pool's state as seen by one parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
pub struct ParentStatus {
    /// Conditions about the pool from this parent: see [`condition_type`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 8),
        extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"])
    )]
    pub conditions: Vec<Condition>,

    /// The controller that wrote this entry, `DOMAIN/PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = CONTROLLER_NAME_PATTERN))]
    pub controller_name: Option<String>,

    /// The parent this entry is about.
    pub parent_ref: ParentReference,
}

/// Condition types an InferencePool's parent status carries.
pub mod condition_type {
    /// Whether the parent accepted the pool.
    pub const ACCEPTED: &str = "Accepted";
    /// Whether every reference (the endpoint picker) resolved.
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    /// Whether the pool was exported to the cluster set.
    pub const EXPORTED: &str = "Exported";
}

/// Condition reasons an InferencePool's parent status carries.
pub mod condition_reason {
    /// `Accepted=True`.
    pub const ACCEPTED: &str = "Accepted";
    /// `Accepted=False`: the parent does not support InferencePools.
    pub const NOT_SUPPORTED_BY_PARENT: &str = "NotSupportedByParent";
    /// `Accepted=False`: the route pointing at the pool was not accepted.
    pub const HTTP_ROUTE_NOT_ACCEPTED: &str = "HTTPRouteNotAccepted";
    /// `Accepted=False`: no endpoint picker is configured.
    pub const ENDPOINT_PICKER_REF_MISSING: &str = "EndpointPickerRefMissing";
    /// `Accepted=Unknown`: no controller has looked yet.
    pub const PENDING: &str = "Pending";
    /// `ResolvedRefs=True`.
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    /// `ResolvedRefs=False`: the endpoint picker reference is invalid.
    pub const INVALID_EXTENSION_REF: &str = "InvalidExtensionRef";
}

// === impl InferencePoolSpec ===

impl InferencePoolSpec {
    /// The target port numbers, in declaration order.
    pub fn port_numbers(&self) -> impl Iterator<Item = i32> + '_ {
        self.target_ports.iter().map(|port| port.number)
    }
}

// === impl Port ===

impl Port {
    /// The port number as a `u16`, or `None` when outside 1–65535 (which the
    /// apiserver rejects, but a document parsed offline may hold).
    pub fn as_u16(self) -> Option<u16> {
        u16::try_from(self.number).ok().filter(|n| *n != 0)
    }
}

impl From<u16> for Port {
    fn from(number: u16) -> Self {
        Self {
            number: i32::from(number),
        }
    }
}

// === impl AppProtocol ===

impl AppProtocol {
    /// The wire spelling: `http` or `kubernetes.io/h2c`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::H2c => "kubernetes.io/h2c",
        }
    }
}

// === impl EndpointPickerRef ===

impl EndpointPickerRef {
    /// Whether the referent is a core-group Service.
    pub fn is_service(&self) -> bool {
        self.group.is_empty() && self.kind == SERVICE_KIND
    }
}

/// The default endpoint picker kind.
const SERVICE_KIND: &str = "Service";

fn default_picker_kind() -> String {
    SERVICE_KIND.to_owned()
}

// === impl InferencePool ===

// The root schema is written by hand (`schema = "manual"`) so it carries
// `apiVersion`/`kind`/`metadata` and upstream's `required` list.
impl JsonSchema for InferencePool {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "InferencePool".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        crate::schema::custom_resource_root::<InferencePoolSpec, InferencePoolStatus>(
            generator,
            "InferencePool is the Schema for the InferencePools API.",
            crate::schema::SpecRequired::Yes,
        )
    }
}

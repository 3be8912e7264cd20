//! The subset of Gateway API `HTTPRoute` (`gateway.networking.k8s.io/v1`) that
//! Switchyard reads: parent refs, and per rule its name, matches and backend refs
//! — enough to find the routes that send traffic to an InferencePool and the
//! weights between pools.
//!
//! Our own types rather than the `gateway-api` crate, which pins kube 4. Every
//! struct keeps the fields it does not model in `extra`, and every modelled field
//! is optional exactly where the API's is, with no defaults filled in on read: a
//! parse → serialise round trip gives back the same document, so writing a route
//! never drops filters, timeouts or fields from newer Gateway API versions.
//! Still, prefer JSON Patch for writes ([`backend_weight_path`]).
//!
//! Not served by `crdgen`: the CRD belongs to Gateway API (`schema = "disabled"`).

use std::collections::BTreeMap;

use kube::CustomResource;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::reference::{INFERENCE_POOL_GROUP, INFERENCE_POOL_KIND};

/// Fields a struct does not model, kept verbatim for the round trip.
pub type UnknownFields = BTreeMap<String, Value>;

/// The backend weight Gateway API assumes when `weight` is unset.
pub const DEFAULT_BACKEND_WEIGHT: i32 = 1;

/// The desired state of an [`HttpRoute`].
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "HTTPRoute",
    root = "HttpRoute",
    plural = "httproutes",
    namespaced,
    status = "HttpRouteStatus",
    derive = "PartialEq",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// The Gateways (or other parents) this route attaches to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_refs: Option<Vec<ParentReference>>,

    /// The routing rules, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<HttpRouteRule>>,

    /// Everything else (`hostnames`, …).
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A route's reference to a parent, usually a Gateway.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    /// The parent's API group; `gateway.networking.k8s.io` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The parent's kind; `Gateway` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The parent's namespace; the route's own when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The parent's name.
    pub name: String,
    /// A listener name within the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    /// A listener port within the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Fields we do not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// One routing rule: which requests, and where they go.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    /// The rule's name, unique within the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Alternatives, any of which selects a request; unset matches `PathPrefix /`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<HttpRouteMatch>>,
    /// The weighted backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_refs: Option<Vec<HttpBackendRef>>,
    /// Fields we do not model (`filters`, `timeouts`, `retry`, `sessionPersistence`, …).
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A condition on a request; every part present must hold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteMatch {
    /// A condition on the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathMatch>,
    /// Conditions on headers, all of which must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<HttpHeaderMatch>>,
    /// The HTTP method, e.g. `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Fields we do not model (`queryParams`, …).
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A condition on the request path.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpPathMatch {
    /// `Exact`, `PathPrefix` (the default) or `RegularExpression`; a string so
    /// values from newer versions still parse.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The path to compare with; `/` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Fields we do not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A condition on one request header.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpHeaderMatch {
    /// `Exact` (the default) or `RegularExpression`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The header name, compared case-insensitively.
    pub name: String,
    /// The value to compare with.
    pub value: String,
    /// Fields we do not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A backend of a rule: a Service, an InferencePool, or another kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpBackendRef {
    /// The backend's API group; `""` (core) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The backend's kind; `Service` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The backend's name.
    pub name: String,
    /// The backend's namespace; the route's own when unset (another needs a
    /// ReferenceGrant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The destination port (required for Services; unused for InferencePools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// The share of the rule's traffic: `weight / sum(weights)`; 1 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Fields we do not model (`filters`, …).
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// The observed state of an [`HttpRoute`], per parent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteStatus {
    /// One entry per parent and controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parents: Option<Vec<RouteParentStatus>>,
    /// Fields we do not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// The route's state as seen by one parent. Conditions stay raw JSON so they
/// round-trip byte for byte (timestamps included).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    /// The parent this entry is about.
    pub parent_ref: ParentReference,
    /// The controller that wrote the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_name: Option<String>,
    /// `Accepted`, `ResolvedRefs`, … as written by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Value>>,
    /// Fields we do not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// Where an InferencePool appears among a route's backends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InferencePoolBackend<'a> {
    /// Index of the rule in `spec.rules`.
    pub rule_index: usize,
    /// Index of the backend in that rule's `backendRefs`.
    pub backend_index: usize,
    /// The rule's name, if it has one.
    pub rule_name: Option<&'a str>,
    /// The backend reference itself.
    pub backend: &'a HttpBackendRef,
}

/// The JSON Patch path of a backend's weight:
/// `/spec/rules/{rule_index}/backendRefs/{backend_index}/weight`.
pub fn backend_weight_path(rule_index: usize, backend_index: usize) -> String {
    format!("/spec/rules/{rule_index}/backendRefs/{backend_index}/weight")
}

/// A JSON Patch operation setting a backend's weight. `add` rather than
/// `replace`, because `replace` fails when `weight` was unset (defaulted to 1).
pub fn set_backend_weight_operation(rule_index: usize, backend_index: usize, weight: i32) -> Value {
    serde_json::json!({
        "op": "add",
        "path": backend_weight_path(rule_index, backend_index),
        "value": weight,
    })
}

// === impl HttpRoute ===

impl HttpRoute {
    /// Every backend pointing at an InferencePool, in rule then backend order.
    pub fn inference_pool_backends(&self) -> Vec<InferencePoolBackend<'_>> {
        self.spec
            .rules()
            .iter()
            .enumerate()
            .flat_map(|(rule_index, rule)| {
                rule.backend_refs()
                    .iter()
                    .enumerate()
                    .filter(|(_, backend)| backend.is_inference_pool())
                    .map(move |(backend_index, backend)| InferencePoolBackend {
                        rule_index,
                        backend_index,
                        rule_name: rule.name.as_deref(),
                        backend,
                    })
            })
            .collect()
    }
}

// === impl HttpRouteSpec ===

impl HttpRouteSpec {
    /// The rules, empty when unset.
    pub fn rules(&self) -> &[HttpRouteRule] {
        self.rules.as_deref().unwrap_or_default()
    }

    /// The parent references, empty when unset.
    pub fn parent_refs(&self) -> &[ParentReference] {
        self.parent_refs.as_deref().unwrap_or_default()
    }
}

// === impl HttpRouteRule ===

impl HttpRouteRule {
    /// The backend references, empty when unset.
    pub fn backend_refs(&self) -> &[HttpBackendRef] {
        self.backend_refs.as_deref().unwrap_or_default()
    }

    /// The matches, empty when unset (which matches every request).
    pub fn matches(&self) -> &[HttpRouteMatch] {
        self.matches.as_deref().unwrap_or_default()
    }
}

// === impl HttpBackendRef ===

impl HttpBackendRef {
    /// The group, with the API default (`""`) applied.
    pub fn effective_group(&self) -> &str {
        self.group.as_deref().unwrap_or("")
    }

    /// The kind, with the API default (`Service`) applied.
    pub fn effective_kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("Service")
    }

    /// The weight, with the API default ([`DEFAULT_BACKEND_WEIGHT`]) applied.
    pub fn effective_weight(&self) -> i32 {
        self.weight.unwrap_or(DEFAULT_BACKEND_WEIGHT)
    }

    /// Whether this points at an InferencePool (`inference.networking.k8s.io`).
    pub fn is_inference_pool(&self) -> bool {
        self.effective_group() == INFERENCE_POOL_GROUP
            && self.effective_kind() == INFERENCE_POOL_KIND
    }
}

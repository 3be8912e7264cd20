//! `InferenceModelRewrite` (`inference.networking.x-k8s.io/v1alpha2`): rewrites
//! the `model` a request asks for into one of several weighted targets, e.g. to
//! shift traffic between model versions or LoRA adapters during a rollout.
//!
//! Semantics (enforced by the EPP, not by the schema): within a rule, `matches`
//! are ORed and an empty list matches every request; an `Exact` match beats a
//! catch-all rule, then the oldest object wins, then list order. Weights must be
//! set on every target or on none: upstream v1.5.0 only documents this, our CRD
//! also enforces it with a CEL rule (the one place it is stricter than upstream's,
//! for a rule upstream states). The same kind is served by llm-d under
//! `llm-d.ai/v1alpha2`: [`crate::alias`] reads both.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::reference::PoolObjectReference;

/// The desired state of an [`InferenceModelRewrite`].
#[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "inference.networking.x-k8s.io",
    version = "v1alpha2",
    kind = "InferenceModelRewrite",
    namespaced,
    annotation("inference.networking.k8s.io/bundle-version", "v1.5.0"),
    status = "InferenceModelRewriteStatus",
    derive = "PartialEq",
    schema = "manual",
    doc = "InferenceModelRewrite is the Schema for the InferenceModelRewrites API.",
    printcolumn(
        name = "Inference Pool",
        type_ = "string",
        json_path = ".spec.poolRef.name"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct InferenceModelRewriteSpec {
    /// The InferencePool, in the same namespace, whose requests are rewritten.
    pub pool_ref: PoolObjectReference,

    /// The rewrite rules; see the module docs for precedence.
    // Bounded (as are a rule's targets) so the API server can price the CEL rule on targets:
    // unbounded, kube-apiserver refuses the whole CRD (estimated rule cost over budget).
    #[schemars(length(max = 128))]
    pub rules: Vec<InferenceModelRewriteRule>,
}

/// Which requests a rule applies to and where they go.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceModelRewriteRule {
    /// Alternatives, any of which selects a request; empty matches all requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<Match>,

    /// Weighted destinations, at least one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new("self.all(t, has(t.weight)) || self.all(t, !has(t.weight))").message("set weight on every target or on none"))]
    pub targets: Vec<TargetModel>,
}

/// One way a request can select a rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    /// A condition on the `model` field of the request body.
    pub model: ModelMatch,
}

/// A condition on the requested model name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelMatch {
    /// How `value` is compared; only `Exact` exists.
    #[serde(rename = "type", default)]
    pub type_: ModelMatchType,

    /// The model name to compare against.
    #[schemars(length(min = 1))]
    pub value: String,
}

/// How a [`ModelMatch`] compares names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ModelMatchType {
    /// Byte-for-byte equality.
    #[default]
    Exact,
}

/// A weighted destination model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
pub struct TargetModel {
    /// The model name the request is rewritten to.
    pub model_rewrite: String,

    /// This target's share: `weight / sum(weights)` of the rule's traffic. Not a
    /// percentage. Set on every target of a rule or on none (then shares are equal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub weight: Option<i32>,
}

/// The observed state of an [`InferenceModelRewrite`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InferenceModelRewriteStatus {
    /// Conditions about the rewrite; the CRD defaults the list to one
    /// `Accepted=Unknown` placeholder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 8),
        extend(
            "x-kubernetes-list-type" = "map",
            "x-kubernetes-list-map-keys" = ["type"],
            "default" = crate::condition::waiting_for_controller_default("Accepted")
        )
    )]
    pub conditions: Vec<Condition>,
}

// === impl InferenceModelRewriteRule ===

impl InferenceModelRewriteRule {
    /// Whether a request for `model` selects this rule.
    pub fn matches_model(&self, model: &str) -> bool {
        self.matches.is_empty() || self.matches.iter().any(|m| m.model.matches(model))
    }

    /// Whether this is a catch-all rule (no `matches`), which loses to an exact match.
    pub fn is_catch_all(&self) -> bool {
        self.matches.is_empty()
    }
}

// === impl ModelMatch ===

impl ModelMatch {
    /// An `Exact` match on `model`.
    pub fn exact(model: impl Into<String>) -> Self {
        Self {
            type_: ModelMatchType::Exact,
            value: model.into(),
        }
    }

    /// Whether `model` satisfies this condition.
    pub fn matches(&self, model: &str) -> bool {
        match self.type_ {
            ModelMatchType::Exact => self.value == model,
        }
    }
}

// === impl InferenceModelRewrite ===

// The root schema is written by hand (`schema = "manual"`) so it carries
// `apiVersion`/`kind`/`metadata` and upstream's `required` list.
impl JsonSchema for InferenceModelRewrite {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "InferenceModelRewrite".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        crate::schema::custom_resource_root::<InferenceModelRewriteSpec, InferenceModelRewriteStatus>(
            generator,
            "InferenceModelRewrite is the Schema for the InferenceModelRewrites API.",
            crate::schema::SpecRequired::No,
        )
    }
}

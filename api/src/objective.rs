//! `InferenceObjective` (`inference.networking.x-k8s.io/v1alpha2`): the serving
//! priority of a class of requests to an InferencePool.
//!
//! A request names its objective in the `x-gateway-inference-objective` header
//! ([`crate::protocol::INFERENCE_OBJECTIVE_HEADER`]); the EPP looks the object
//! up by `metadata.name` among those whose `poolRef` is its pool. The same kind is
//! served by llm-d under `llm-d.ai/v1alpha2`: [`crate::alias`] reads both.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::reference::PoolObjectReference;

/// The priority of requests that name no objective, name an unknown one, or name
/// one without `priority`.
pub const DEFAULT_PRIORITY: i64 = 0;

/// The desired state of an [`InferenceObjective`].
// clippy reads the repeated `type_ = "string"` of two printcolumns as a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "inference.networking.x-k8s.io",
    version = "v1alpha2",
    kind = "InferenceObjective",
    namespaced,
    annotation("inference.networking.k8s.io/bundle-version", "v1.5.0"),
    status = "InferenceObjectiveStatus",
    derive = "PartialEq",
    schema = "manual",
    doc = "InferenceObjective is the Schema for the InferenceObjectives API.",
    printcolumn(
        name = "Inference Pool",
        type_ = "string",
        json_path = ".spec.poolRef.name"
    ),
    printcolumn(name = "Priority", type_ = "string", json_path = ".spec.priority"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct InferenceObjectiveSpec {
    /// How important these requests are compared with others in the same pool.
    ///
    /// Higher values are more important: under contention flow control always
    /// serves a higher priority first, and fairness applies only among requests
    /// of equal priority. **Negative values are sheddable**: such requests may be
    /// rejected (429) while the pool is saturated. Unset means
    /// [`DEFAULT_PRIORITY`] (0); upstream leaves it without a default so a future
    /// field can be one-of with it. Use [`InferenceObjectiveSpec::effective_priority`].
    ///
    /// The CRD declares an integer of unbounded width (a Go `int`), hence `i64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::plain_integer")]
    pub priority: Option<i64>,

    /// The InferencePool, in the same namespace, these requests go to.
    pub pool_ref: PoolObjectReference,
}

/// The observed state of an [`InferenceObjective`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InferenceObjectiveStatus {
    /// Conditions about the objective (`Accepted`). The CRD defaults the list to
    /// one `Ready=Unknown` placeholder, which is upstream's (odd) choice of type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 8),
        extend(
            "x-kubernetes-list-type" = "map",
            "x-kubernetes-list-map-keys" = ["type"],
            "default" = crate::condition::waiting_for_controller_default("Ready")
        )
    )]
    pub conditions: Vec<Condition>,
}

// === impl InferenceObjectiveSpec ===

impl InferenceObjectiveSpec {
    /// `priority`, or [`DEFAULT_PRIORITY`] when unset.
    pub fn effective_priority(&self) -> i64 {
        self.priority.unwrap_or(DEFAULT_PRIORITY)
    }

    /// Whether requests of this objective may be shed under saturation
    /// (priority below zero).
    pub fn is_sheddable(&self) -> bool {
        self.effective_priority() < 0
    }
}

// === impl InferenceObjective ===

// The root schema is written by hand (`schema = "manual"`) so it carries
// `apiVersion`/`kind`/`metadata` and upstream's `required` list.
impl JsonSchema for InferenceObjective {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "InferenceObjective".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        crate::schema::custom_resource_root::<InferenceObjectiveSpec, InferenceObjectiveStatus>(
            generator,
            "InferenceObjective is the Schema for the InferenceObjectives API.",
            crate::schema::SpecRequired::No,
        )
    }
}

//! Conversions from the legacy v1alpha2 kinds to the current ones.
//!
//! - `InferencePool` v1alpha2 → v1: `selector` → `selector.matchLabels`,
//!   `targetPortNumber` → `targetPorts[0]`, `extensionRef` → `endpointPickerRef`
//!   (same failure mode; a Service without `portNumber` gets the legacy default
//!   port, since v1 requires a port for Services).
//! - `InferenceModel` → `InferenceObjective` (criticality → priority, see the
//!   constants), plus an `InferenceModelRewrite` when `targetModels` is non-empty
//!   (one rule: exact match on `modelName`, the targets with their weights).
//!
//! Values the current API would reject fail with [`Error::Conversion`] naming the
//! field, rather than producing an object the apiserver refuses.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{Criticality, InferenceModel, LEGACY_GROUP, PoolStatus};
use crate::error::{Error, Result};
use crate::pool::{
    AppProtocol, EndpointPickerRef, InferencePool, InferencePoolSpec, InferencePoolStatus,
    LabelSelector, ParentStatus, Port,
};
use crate::reference::{
    INFERENCE_POOL_GROUP, INFERENCE_POOL_KIND, ParentReference, PoolObjectReference,
};
use crate::rewrite::{
    InferenceModelRewrite, InferenceModelRewriteRule, InferenceModelRewriteSpec, Match, ModelMatch,
    TargetModel,
};
use crate::{InferenceObjective, InferenceObjectiveSpec};

/// Priority of `Critical` models: above the default, so served first.
pub const CRITICAL_PRIORITY: i64 = 1;
/// Priority of `Standard` models and of models without a criticality: the default.
pub const STANDARD_PRIORITY: i64 = crate::objective::DEFAULT_PRIORITY;
/// Priority of `Sheddable` models: negative, so shed while the pool is saturated.
pub const SHEDDABLE_PRIORITY: i64 = -1;

/// The endpoint picker port legacy implementations assumed for a Service
/// `extensionRef` without `portNumber`.
pub const LEGACY_DEFAULT_EXTENSION_PORT: i32 = 9002;

/// The most labels a v1 `matchLabels` may hold.
const MAX_MATCH_LABELS: usize = 64;
/// The largest weight a v1 rewrite target may carry.
const MAX_TARGET_WEIGHT: i32 = 1_000_000;

/// What one legacy `InferenceModel` becomes.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvertedModel {
    /// The `model` clients send, which the objective and rewrite are keyed by in
    /// the legacy world (a request did not name an objective).
    pub model_name: String,
    /// The objective carrying the model's priority; named like the InferenceModel.
    pub objective: InferenceObjective,
    /// The traffic split, when the model had target models; named like the
    /// InferenceModel.
    pub rewrite: Option<InferenceModelRewrite>,
}

// === impl Criticality ===

impl Criticality {
    /// The integer priority this class maps to.
    pub fn priority(self) -> i64 {
        match self {
            Self::Critical => CRITICAL_PRIORITY,
            Self::Standard => STANDARD_PRIORITY,
            Self::Sheddable => SHEDDABLE_PRIORITY,
        }
    }
}

/// The priority of an optional criticality: unset counts as `Standard`.
pub fn priority_of(criticality: Option<Criticality>) -> i64 {
    criticality.map_or(STANDARD_PRIORITY, Criticality::priority)
}

/// Converts a legacy pool into the v1 InferencePool of the same name.
pub fn convert_pool(legacy: &super::InferencePool) -> Result<InferencePool> {
    let fail = |field, reason: String| Error::Conversion {
        kind: "InferencePool",
        name: legacy.metadata.name.clone().unwrap_or_default(),
        field,
        reason,
    };
    let spec = &legacy.spec;

    if spec.selector.is_empty() {
        return Err(fail(
            "spec.selector",
            "is empty; v1 needs at least one label".into(),
        ));
    }
    if spec.selector.len() > MAX_MATCH_LABELS {
        return Err(fail(
            "spec.selector",
            format!(
                "has {} labels; v1 allows at most {MAX_MATCH_LABELS}",
                spec.selector.len()
            ),
        ));
    }
    let target_port = checked_port(spec.target_port_number).ok_or_else(|| {
        fail(
            "spec.targetPortNumber",
            out_of_range(spec.target_port_number),
        )
    })?;

    let extension = &spec.extension_ref;
    let is_service = extension.group.is_empty() && extension.kind == "Service";
    let picker_port = match extension.port_number {
        Some(number) => Some(
            checked_port(number)
                .ok_or_else(|| fail("spec.extensionRef.portNumber", out_of_range(number)))?,
        ),
        None if is_service => Some(Port {
            number: LEGACY_DEFAULT_EXTENSION_PORT,
        }),
        None => None,
    };

    Ok(InferencePool {
        metadata: carried_metadata(&legacy.metadata),
        spec: InferencePoolSpec {
            selector: LabelSelector {
                match_labels: spec.selector.clone(),
            },
            target_ports: vec![target_port],
            app_protocol: AppProtocol::Http,
            endpoint_picker_ref: Some(EndpointPickerRef {
                group: extension.group.clone(),
                kind: extension.kind.clone(),
                name: extension.name.clone(),
                port: picker_port,
                failure_mode: extension.failure_mode,
            }),
        },
        status: legacy.status.as_ref().map(convert_pool_status),
    })
}

/// Keeps real parents and drops the `kind: Status, name: default` placeholder,
/// which v1 expresses as an empty list.
fn convert_pool_status(legacy: &super::InferencePoolStatus) -> InferencePoolStatus {
    let parents = legacy
        .parents
        .iter()
        .filter(|entry| !is_placeholder_parent(entry))
        .map(|entry| ParentStatus {
            conditions: entry.conditions.clone(),
            controller_name: None,
            parent_ref: ParentReference {
                group: entry.parent_ref.group.clone(),
                kind: entry.parent_ref.kind.clone(),
                name: entry.parent_ref.name.clone(),
                namespace: entry.parent_ref.namespace.clone(),
            },
        })
        .collect();
    InferencePoolStatus { parents }
}

fn is_placeholder_parent(entry: &PoolStatus) -> bool {
    entry.parent_ref.kind == "Status" && entry.parent_ref.name == "default"
}

/// Converts a legacy InferenceModel into an InferenceObjective and, when it
/// splits traffic, an InferenceModelRewrite.
pub fn convert_model(legacy: &InferenceModel) -> Result<ConvertedModel> {
    let fail = |field, reason: String| Error::Conversion {
        kind: "InferenceModel",
        name: legacy.metadata.name.clone().unwrap_or_default(),
        field,
        reason,
    };
    let spec = &legacy.spec;
    if spec.model_name.is_empty() {
        return Err(fail(
            "spec.modelName",
            "is empty; a rewrite match needs a model name".into(),
        ));
    }

    let pool_ref = current_pool_ref(&spec.pool_ref);
    let objective = InferenceObjective {
        metadata: carried_metadata(&legacy.metadata),
        spec: InferenceObjectiveSpec {
            priority: Some(priority_of(spec.criticality)),
            pool_ref: pool_ref.clone(),
        },
        status: None,
    };

    let rewrite = if spec.target_models.is_empty() {
        None
    } else {
        let weighted = spec
            .target_models
            .iter()
            .filter(|t| t.weight.is_some())
            .count();
        if weighted != 0 && weighted != spec.target_models.len() {
            return Err(fail(
                "spec.targetModels",
                "sets a weight on some targets but not all".into(),
            ));
        }
        let mut targets = Vec::with_capacity(spec.target_models.len());
        for target in &spec.target_models {
            if let Some(weight) = target.weight
                && !(1..=MAX_TARGET_WEIGHT).contains(&weight)
            {
                return Err(fail(
                    "spec.targetModels[].weight",
                    format!("{weight} is outside 1..={MAX_TARGET_WEIGHT}"),
                ));
            }
            targets.push(TargetModel {
                model_rewrite: target.name.clone(),
                weight: target.weight,
            });
        }
        Some(InferenceModelRewrite {
            metadata: carried_metadata(&legacy.metadata),
            spec: InferenceModelRewriteSpec {
                pool_ref,
                rules: vec![InferenceModelRewriteRule {
                    matches: vec![Match {
                        model: ModelMatch::exact(spec.model_name.clone()),
                    }],
                    targets,
                }],
            },
            status: None,
        })
    };

    Ok(ConvertedModel {
        model_name: spec.model_name.clone(),
        objective,
        rewrite,
    })
}

/// A legacy pool reference points at a pool that [`convert_pool`] moves to the
/// v1 group; any other referent is kept as written.
fn current_pool_ref(legacy: &super::PoolObjectReference) -> PoolObjectReference {
    let group = if legacy.group == LEGACY_GROUP && legacy.kind == INFERENCE_POOL_KIND {
        INFERENCE_POOL_GROUP.to_owned()
    } else {
        legacy.group.clone()
    };
    PoolObjectReference {
        group,
        kind: legacy.kind.clone(),
        name: legacy.name.clone(),
    }
}

/// The identity a converted object keeps: name, namespace, labels, annotations.
/// Server-owned fields (uid, resourceVersion, …) belong to the legacy object.
fn carried_metadata(legacy: &ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        name: legacy.name.clone(),
        namespace: legacy.namespace.clone(),
        labels: legacy.labels.clone(),
        annotations: legacy.annotations.clone(),
        ..ObjectMeta::default()
    }
}

fn checked_port(number: i32) -> Option<Port> {
    (1..=65535).contains(&number).then_some(Port { number })
}

fn out_of_range(number: i32) -> String {
    format!("{number} is outside 1..=65535")
}

//! `metav1.Condition`, with the validation upstream's CRDs put on it.
//!
//! k8s-openapi's `Condition` has the right fields but a schema without the
//! apiserver's bounds (reason pattern, message length, status enum), so the CRD
//! types embed this copy, which converts losslessly to and from it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition as K8sCondition, Time};
use k8s_openapi::jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schema::{CONDITION_REASON_PATTERN, CONDITION_TYPE_PATTERN};

/// One aspect of an object's observed state (`metav1.Condition`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
pub struct Condition {
    /// The condition type in CamelCase, or `example.com/CamelCase`, e.g. `Accepted`.
    #[serde(rename = "type")]
    #[schemars(length(max = 316), regex(pattern = CONDITION_TYPE_PATTERN))]
    pub type_: String,

    /// Whether the condition holds.
    pub status: ConditionStatus,

    /// The `.metadata.generation` this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,

    /// When the status last changed.
    pub last_transition_time: Time,

    /// A CamelCase identifier of why the status last changed, e.g. `Pending`.
    #[schemars(length(min = 1, max = 1024), regex(pattern = CONDITION_REASON_PATTERN))]
    pub reason: String,

    /// A human-readable message about the transition; may be empty.
    #[schemars(length(max = 32768))]
    pub message: String,
}

/// The three states of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// The controller cannot tell yet.
    Unknown,
}

// === impl Condition ===

impl Condition {
    /// The placeholder condition upstream's CRDs default `status.conditions` to:
    /// status `Unknown`, reason `Pending`, message `Waiting for controller`, at the epoch.
    pub fn waiting_for_controller(type_: &str) -> Self {
        Self {
            type_: type_.to_owned(),
            status: ConditionStatus::Unknown,
            observed_generation: None,
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
            reason: "Pending".to_owned(),
            message: "Waiting for controller".to_owned(),
        }
    }
}

impl From<Condition> for K8sCondition {
    fn from(condition: Condition) -> Self {
        Self {
            type_: condition.type_,
            status: condition.status.as_str().to_owned(),
            observed_generation: condition.observed_generation,
            last_transition_time: condition.last_transition_time,
            reason: condition.reason,
            message: condition.message,
        }
    }
}

impl TryFrom<K8sCondition> for Condition {
    type Error = Error;

    /// Fails only when `status` is not one of `True`, `False`, `Unknown`.
    fn try_from(condition: K8sCondition) -> Result<Self> {
        let status = match condition.status.as_str() {
            "True" => ConditionStatus::True,
            "False" => ConditionStatus::False,
            "Unknown" => ConditionStatus::Unknown,
            _ => {
                return Err(Error::InvalidValue {
                    field: "condition.status",
                    value: condition.status,
                    expected: "True, False or Unknown",
                });
            }
        };
        Ok(Self {
            type_: condition.type_,
            status,
            observed_generation: condition.observed_generation,
            last_transition_time: condition.last_transition_time,
            reason: condition.reason,
            message: condition.message,
        })
    }
}

/// The JSON of upstream's default `status.conditions`: a single
/// [`Condition::waiting_for_controller`] of type `type_`. Used as a schema default.
pub(crate) fn waiting_for_controller_default(type_: &str) -> serde_json::Value {
    serde_json::json!([Condition::waiting_for_controller(type_)])
}

// === impl ConditionStatus ===

impl ConditionStatus {
    /// The wire spelling: `True`, `False` or `Unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

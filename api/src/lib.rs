//! Switchyard API: the Kubernetes types and the protocol names every component
//! shares. Types only: nothing here does I/O.
//!
//! - [`pool`]: `InferencePool` v1, the pods behind one endpoint picker.
//! - [`objective`] and [`rewrite`]: `InferenceObjective` and
//!   `InferenceModelRewrite` v1alpha2, readable from either of their API groups
//!   through [`alias`].
//! - [`legacy`]: the v1alpha2 `InferencePool` and `InferenceModel`, read-only,
//!   with conversions to the current kinds.
//! - [`httproute`]: the subset of Gateway API `HTTPRoute` we read and patch.
//! - [`protocol`]: header, metadata and label names.
//! - [`rollout`]: `InferenceRollout` v1alpha1, our canary rollout kind.
//! - [`crds`]: the CRDs we serve, as rendered by the `crdgen` binary.

pub mod alias;
pub mod condition;
pub mod crds;
pub mod error;
pub mod httproute;
pub mod legacy;
pub mod objective;
pub mod pool;
pub mod protocol;
pub mod reference;
pub mod rewrite;
pub mod rollout;
pub mod schema;

pub use condition::{Condition, ConditionStatus};
pub use error::{Error, Result};
pub use httproute::{HttpRoute, HttpRouteSpec};
pub use objective::{InferenceObjective, InferenceObjectiveSpec, InferenceObjectiveStatus};
pub use pool::{
    AppProtocol, EndpointPickerRef, FailureMode, InferencePool, InferencePoolSpec,
    InferencePoolStatus, LabelSelector, ParentStatus, Port,
};
pub use reference::{ParentReference, PoolObjectReference};
pub use rewrite::{
    InferenceModelRewrite, InferenceModelRewriteRule, InferenceModelRewriteSpec,
    InferenceModelRewriteStatus, TargetModel,
};
pub use rollout::{InferenceRollout, InferenceRolloutSpec, InferenceRolloutStatus};

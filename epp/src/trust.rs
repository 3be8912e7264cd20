//! The EPP's trust boundary: which request headers may steer a request, who may set them,
//! and the bounds every such value must fit before it is stored, counted or used as a label.
//!
//! A *steering header* changes priority (the objective), fairness (the fairness id), queue
//! TTL or the model a request is served as (`x-gateway-model-name-rewrite`). One rule covers
//! all of them ([`HeaderTrust`]): they are honoured only when the caller is trusted — always
//! (`--trust-client-headers=always`, or standalone mode by default), never (Kubernetes mode by
//! default), or when the gateway's marker header is present (`--flow-control-trusted-header`;
//! the gateway must set it and strip any client-sent copy). Trusted or not, every steering
//! header and the marker are removed before the request reaches a model server
//! ([`STRIPPED_HEADERS`]).
//!
//! Other steering inputs are not headers a client can set:
//! - the subset hint is read only from the request's *filter metadata*
//!   (`envoy.lb.subset_hint`), which only the gateway's own filters write — never from a
//!   request header (a gateway that copies a client header into that metadata hands the
//!   choice of endpoint to its clients; see `docs/security.md`);
//! - `x-gateway-destination-endpoint` is always overwritten with the EPP's pick;
//! - `test-epp-endpoint-selection` is read only by the `header-based-testing-filter`
//!   plugin, which a deployment enables explicitly in its `EndpointPickerConfig`.
//!
//! Values that pass the trust check are still bounded: a fairness id is at most
//! [`MAX_FAIRNESS_ID_BYTES`] of [`is_fairness_id_byte`] (otherwise the default flow), and a
//! forced rewrite must name a model the pool knows ([`pool_knows_model`]). Refused values are
//! counted ([`refused_count`]) so an operator can see clients that try.

use std::sync::atomic::{AtomicU64, Ordering};

use switchyard_api::protocol::{
    INFERENCE_FAIRNESS_ID_HEADER, INFERENCE_OBJECTIVE_HEADER, MODEL_NAME_REWRITE_HEADER,
};

use crate::datastore::PoolSnapshot;

/// Longest fairness id honoured; a longer one puts the request in the default flow.
pub const MAX_FAIRNESS_ID_BYTES: usize = 64;

/// Longest model name honoured from `x-gateway-model-name-rewrite`.
pub const MAX_MODEL_NAME_BYTES: usize = 256;

/// llm-d's name for the fairness-id header.
pub const LLM_D_FAIRNESS_ID_HEADER: &str = "x-llm-d-inference-fairness-id";
/// llm-d's name for the objective header.
pub const LLM_D_OBJECTIVE_HEADER: &str = "x-llm-d-inference-objective";
/// llm-d's per-request queue TTL header (a Go duration such as `1500ms`).
pub const LLM_D_TTL_HEADER: &str = "x-llm-d-inference-ttl";

/// The flow-control headers (priority through the objective, fairness id, TTL), GIE's and
/// llm-d's names: read by `flow::FlowHeaders` only from trusted callers.
pub const FLOW_HEADERS: [&str; 5] = [
    INFERENCE_FAIRNESS_ID_HEADER,
    INFERENCE_OBJECTIVE_HEADER,
    LLM_D_FAIRNESS_ID_HEADER,
    LLM_D_OBJECTIVE_HEADER,
    LLM_D_TTL_HEADER,
];

/// Every header that steers a request: removed before the request goes upstream, whoever
/// sent it (the trust marker is removed as well; see [`HeaderTrust::marker`]).
pub const STRIPPED_HEADERS: [&str; FLOW_HEADERS.len() + 1] = {
    let flow = FLOW_HEADERS;
    let mut all = [MODEL_NAME_REWRITE_HEADER; FLOW_HEADERS.len() + 1];
    let mut i = 0;
    while i < flow.len() {
        all[i] = flow[i];
        i += 1;
    }
    all
};

/// When the steering headers are believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HeaderTrust {
    /// Always: standalone mode, or a gateway that strips every client copy.
    Always,
    /// Never: every request is priority 0 in the default flow, and no client forces a
    /// rewrite. The default against Kubernetes.
    #[default]
    Never,
    /// Only when this (lowercase) header is present; the gateway sets it and must strip any
    /// client-sent copy. The marker itself is removed too.
    WhenMarked(String),
    /// Only when `header` carries exactly `value`, a secret the gateway and the EPP share:
    /// a client that gets a copy past the gateway must also guess the value.
    WhenMarkedWith {
        /// The marker header (lowercase).
        header: String,
        /// The value it must carry.
        value: String,
    },
}

impl HeaderTrust {
    /// Whether a request with these lowercase `(name, value)` headers is trusted.
    pub fn trusts(&self, headers: &[(&str, &[u8])]) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::WhenMarked(marker) => headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(marker)),
            Self::WhenMarkedWith { header, value } => headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(header) && v.trim_ascii() == value.as_bytes()),
        }
    }

    /// The marker header, which is stripped before forwarding like the steering headers.
    pub fn marker(&self) -> Option<&str> {
        match self {
            Self::WhenMarked(marker) => Some(marker),
            Self::WhenMarkedWith { header, .. } => Some(header),
            _ => None,
        }
    }
}

/// Why a steering value was not honoured (the label of [`refused_count`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// A fairness id over [`MAX_FAIRNESS_ID_BYTES`] or outside the allowed characters.
    FairnessId,
    /// A forced rewrite from a trusted caller naming a model the pool does not know.
    UnknownRewrite,
    /// A steering header from an untrusted caller.
    Untrusted,
}

impl Refused {
    /// Every reason, in the order of [`Refused::label`]'s counters.
    pub const ALL: [Refused; 3] = [Self::FairnessId, Self::UnknownRewrite, Self::Untrusted];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::FairnessId => "invalid_fairness_id",
            Self::UnknownRewrite => "unknown_rewrite_model",
            Self::Untrusted => "untrusted",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::FairnessId => 0,
            Self::UnknownRewrite => 1,
            Self::Untrusted => 2,
        }
    }
}

/// Process-wide counts of refused steering values, read by the `/metrics` collector. A
/// static rather than a handle threaded through every stream: the counters are the same for
/// every stream of the process, and incrementing one is a relaxed atomic add.
static REFUSED: [AtomicU64; Refused::ALL.len()] = [const { AtomicU64::new(0) }; 3];

/// Counts one refused steering value.
pub fn count_refused(reason: Refused) {
    if let Some(counter) = REFUSED.get(reason.index()) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// How many steering values were refused for `reason` since the process started.
pub fn refused_count(reason: Refused) -> u64 {
    REFUSED
        .get(reason.index())
        .map_or(0, |counter| counter.load(Ordering::Relaxed))
}

/// The bytes a fairness id may hold: ASCII letters, digits and `.`, `_`, `:`, `/`, `-` —
/// enough for tenant names, emails' local parts and paths, and nothing that needs escaping
/// in a log line or a metric label.
pub fn is_fairness_id_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b':' | b'/' | b'-')
}

/// Whether `id` is a fairness id flow control accepts as a key.
pub fn valid_fairness_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_FAIRNESS_ID_BYTES && id.bytes().all(is_fairness_id_byte)
}

/// Whether `model` is a model the pool knows: an InferenceObjective's name, an
/// InferenceModelRewrite's exact match or target, or a LoRA adapter an endpoint reports as
/// running or waiting. No allocation: a walk over the (small) rewrite list and the endpoints.
pub fn pool_knows_model(snapshot: &PoolSnapshot, model: &str) -> bool {
    if model.is_empty() || model.len() > MAX_MODEL_NAME_BYTES {
        return false;
    }
    if snapshot.objectives.contains_key(model) {
        return true;
    }
    let in_rewrites = snapshot.rewrites.iter().any(|spec| {
        spec.rules.iter().any(|rule| {
            rule.targets.iter().any(|t| t.model_rewrite == model)
                || rule.matches.iter().any(|m| m.model.value == model)
        })
    });
    in_rewrites
        || snapshot.endpoints.iter().any(|e| {
            let loras = &e.metrics;
            loras.active_loras.iter().any(|a| &**a == model)
                || loras.waiting_loras.iter().any(|a| &**a == model)
        })
}

/// The model a trusted caller forces with `x-gateway-model-name-rewrite`, if it may: the
/// header is read only under trust, and its value must be a model the pool knows. Refusals
/// are counted; the request then goes through the pool's own rewrites.
pub fn forced_model<'h>(
    headers: &'h [(&'h str, &'h [u8])],
    trusted: bool,
    snapshot: &PoolSnapshot,
) -> Option<&'h str> {
    let value = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(MODEL_NAME_REWRITE_HEADER))
        .map(|(_, v)| *v)
        .filter(|v| !v.is_empty())?;
    if !trusted {
        count_refused(Refused::Untrusted);
        return None;
    }
    match std::str::from_utf8(value).map(str::trim) {
        Ok(model) if pool_knows_model(snapshot, model) => Some(model),
        _ => {
            count_refused(Refused::UnknownRewrite);
            tracing::debug!(
                header = MODEL_NAME_REWRITE_HEADER,
                "ignoring a forced rewrite to a model the pool does not know"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests;

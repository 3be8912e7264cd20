//! The request headers flow control reads, and whether to believe them.
//!
//! Priority (through the objective name), fairness id and TTL let a caller
//! jump the queue or claim another tenant's share, so they are honoured only
//! from a trusted caller ([`HeaderTrust`], the one rule of [`crate::trust`]),
//! the fairness id only when it fits [`crate::trust::valid_fairness_id`], and
//! they are always removed before the request goes upstream
//! ([`crate::trust::STRIPPED_HEADERS`]).

use std::time::Duration;

use switchyard_api::protocol::{
    DEFAULT_FAIRNESS_ID, INFERENCE_FAIRNESS_ID_HEADER, INFERENCE_OBJECTIVE_HEADER,
};

use crate::flow::config::parse_go_duration;
pub use crate::trust::HeaderTrust;
use crate::trust::{Refused, count_refused, valid_fairness_id};

pub use crate::trust::{LLM_D_FAIRNESS_ID_HEADER, LLM_D_OBJECTIVE_HEADER, LLM_D_TTL_HEADER};

/// The flow headers of one request, after the trust decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowHeaders<'h> {
    /// The fairness id ([`DEFAULT_FAIRNESS_ID`] when absent or untrusted).
    pub fairness_id: &'h str,
    /// The InferenceObjective name, when present and trusted.
    pub objective: Option<&'h str>,
    /// A positive per-request TTL, when present, valid and trusted.
    pub ttl: Option<Duration>,
    /// Whether the caller was trusted.
    pub trusted: bool,
}

impl<'h> FlowHeaders<'h> {
    /// Headers to remove from the request before it goes upstream (the
    /// trust marker, if any, as well: see [`HeaderTrust::marker`]).
    pub const STRIPPED: [&'static str; 5] = crate::trust::FLOW_HEADERS;

    /// Reads the flow headers from lowercase `(name, value)` pairs. The GIE
    /// names win over llm-d's when both are sent; empty or non-UTF-8 values
    /// count as absent, an invalid TTL is ignored, and a fairness id that is
    /// too long or holds other characters than [`crate::trust::is_fairness_id_byte`]
    /// means the default flow (counted, as are flow headers an untrusted caller sent).
    pub fn read(headers: &'h [(&'h str, &'h [u8])], trust: &HeaderTrust) -> Self {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let trusted = trust.trusts(headers);
        if !trusted {
            if Self::STRIPPED.iter().any(|name| get(name).is_some()) {
                count_refused(Refused::Untrusted);
            }
            return Self {
                fairness_id: DEFAULT_FAIRNESS_ID,
                objective: None,
                ttl: None,
                trusted,
            };
        }
        let fairness_id =
            match get(INFERENCE_FAIRNESS_ID_HEADER).or_else(|| get(LLM_D_FAIRNESS_ID_HEADER)) {
                Some(id) if valid_fairness_id(id) => id,
                Some(_) => {
                    count_refused(Refused::FairnessId);
                    DEFAULT_FAIRNESS_ID
                }
                None => DEFAULT_FAIRNESS_ID,
            };
        Self {
            fairness_id,
            objective: get(INFERENCE_OBJECTIVE_HEADER).or_else(|| get(LLM_D_OBJECTIVE_HEADER)),
            ttl: get(LLM_D_TTL_HEADER)
                .and_then(parse_go_duration)
                .filter(|d| !d.is_zero()),
            trusted,
        }
    }
}

//! Filters, scorers and pickers, each named by its upstream plugin type, and
//! [`PLUGINS`]: the one registry of every plugin type Switchyard knows, with
//! what it does and how it is built. The config decoder
//! ([`super::config`]) only looks types up here.
//!
//! Filters and scorers are traits with `&'static str` names; they read only
//! the [`Context`] and keep no state, so a pick is a pure function of the
//! snapshot and the request.

mod affinity;
mod filters;
mod pickers;
mod scorers;

use std::fmt::Debug;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::scheduling::Context;

pub use affinity::PrefixAffinityFilter;
pub use filters::{TestSelectionFilter, UtilizationFilter};
pub use pickers::{Picker, PickerKind};
pub use scorers::{
    KvCacheScorer, LoraAffinityScorer, PrefixCacheScorer, QueueScorer, RunningRequestsScorer,
    TokenLoadScorer,
};

/// Narrows the candidates (indices into the snapshot's endpoints).
pub trait Filter: Debug + Send + Sync {
    /// The upstream plugin type.
    fn type_name(&self) -> &'static str;
    /// Removes the endpoints this filter rejects.
    fn filter(&self, ctx: &Context<'_>, candidates: &mut Vec<usize>);
}

/// Scores each candidate in [0, 1]; higher is better.
pub trait Scorer: Debug + Send + Sync {
    /// The upstream plugin type.
    fn type_name(&self) -> &'static str;
    /// Writes one score per candidate into `out` (same length and order).
    fn score(&self, ctx: &Context<'_>, candidates: &[usize], out: &mut [f64]);
}

/// Builds a filter from its plugin name, type and `parameters`.
pub type FilterBuilder = fn(&str, &str, serde_json::Value) -> Result<Box<dyn Filter>>;

/// Builds a scorer from its plugin name, type and `parameters`.
pub type ScorerBuilder = fn(&str, &str, serde_json::Value) -> Result<Box<dyn Scorer>>;

/// What a plugin type does, carrying how to build it.
#[derive(Clone, Copy, Debug)]
pub enum Role {
    /// A filter in a scheduling profile.
    Filter(FilterBuilder),
    /// A weighted scorer in a scheduling profile.
    Scorer(ScorerBuilder),
    /// The profile's picker.
    Picker(PickerKind),
    /// A response-path plugin: listing it under `plugins` turns it on; it takes no place in
    /// a profile.
    Response,
    /// Accepted and ignored: its behaviour is built in, or the flow-control layer
    /// ([`crate::flow::FlowControlConfig`]) reads it from the same file.
    Implied,
    /// An upstream plugin type Switchyard recognises but does not implement.
    Unsupported,
}

/// Conformance only: echoes the endpoint the proxy reports as having served
/// the request into `x-conformance-test-served-endpoint`.
pub const SERVED_ENDPOINT_VERIFIER: &str = "destination-endpoint-served-verifier";

/// Every plugin type Switchyard knows, listed once, with its role.
pub static PLUGINS: &[(&str, Role)] = &[
    ("utilization-detector", Role::Filter(filters::utilization)),
    (
        "prefix-cache-affinity-filter",
        Role::Filter(affinity::build),
    ),
    (
        "header-based-testing-filter",
        Role::Filter(filters::test_selection),
    ),
    (
        "queue-scorer",
        Role::Scorer(|_, _, _| Ok(Box::new(QueueScorer))),
    ),
    (
        "running-requests-size-scorer",
        Role::Scorer(|_, _, _| Ok(Box::new(RunningRequestsScorer))),
    ),
    (
        "kv-cache-utilization-scorer",
        Role::Scorer(|_, _, _| Ok(Box::new(KvCacheScorer))),
    ),
    // Its parameters also drive prompt hashing; the config decoder keeps them.
    (
        "prefix-cache-scorer",
        Role::Scorer(|_, _, _| Ok(Box::new(PrefixCacheScorer))),
    ),
    (
        "lora-affinity-scorer",
        Role::Scorer(|_, _, _| Ok(Box::new(LoraAffinityScorer))),
    ),
    ("token-load-scorer", Role::Scorer(scorers::token_load)),
    ("max-score-picker", Role::Picker(PickerKind::MaxScore)),
    ("random-picker", Role::Picker(PickerKind::Random)),
    (
        "weighted-random-picker",
        Role::Picker(PickerKind::WeightedRandom),
    ),
    (SERVED_ENDPOINT_VERIFIER, Role::Response),
    ("single-profile-handler", Role::Implied),
    ("approx-prefix-cache-producer", Role::Implied),
    ("metrics-data-source", Role::Implied),
    ("core-metrics-extractor", Role::Implied),
    ("openai-parser", Role::Implied),
    ("fcfs-ordering-policy", Role::Implied),
    ("global-strict-fairness-policy", Role::Implied),
    ("round-robin-fairness-policy", Role::Implied),
    ("edf-ordering-policy", Role::Implied),
    ("concurrency-detector", Role::Implied),
    ("static-usage-limit-policy", Role::Implied),
    ("priority-holdback-policy", Role::Implied),
    ("inflight-load-producer", Role::Implied),
    ("k8s-notification-source", Role::Implied),
    ("slo-headroom-tier-filter", Role::Unsupported),
    ("predicted-latency-scorer", Role::Unsupported),
    ("predicted-latency-producer", Role::Unsupported),
    ("latency-slo-admitter", Role::Unsupported),
    ("latency-scorer", Role::Unsupported),
    ("slo-deadline-ordering-policy", Role::Unsupported),
    ("vllmgrpc-parser", Role::Unsupported),
    ("passthrough-parser", Role::Unsupported),
    ("request-attribute-reporter", Role::Unsupported),
    ("soft-reflective-ceiling-policy", Role::Unsupported),
];

/// The role of plugin type `type_`, if Switchyard knows it.
pub fn role(type_: &str) -> Option<Role> {
    PLUGINS
        .iter()
        .find(|(name, _)| *name == type_)
        .map(|(_, role)| *role)
}

/// Every plugin type Switchyard implements or accepts, sorted and comma-separated (for
/// error messages).
pub fn known_types() -> String {
    let mut all: Vec<&str> = PLUGINS
        .iter()
        .filter(|(_, role)| !matches!(role, Role::Unsupported))
        .map(|(name, _)| *name)
        .collect();
    all.sort_unstable();
    all.join(", ")
}

/// Decodes a plugin's `parameters` (absent means all defaults).
pub(crate) fn parameters<T: DeserializeOwned + Default>(
    name: &str,
    type_: &str,
    value: serde_json::Value,
) -> Result<T> {
    if value.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(value).map_err(|err| Error::PluginParameters {
        name: name.into(),
        type_: type_.into(),
        reason: err.to_string(),
    })
}

/// Whether a hint entry (`ip:port`, `[v6]:port`, `ip` or `v6`) names `address`.
pub fn address_matches(entry: &str, address: SocketAddr) -> bool {
    let entry = entry.trim();
    if let Ok(exact) = entry.parse::<SocketAddr>() {
        return exact == address;
    }
    let bare = entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .unwrap_or(entry);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip == address.ip())
}

/// Parses a Go duration (`200ms`, `2s`, `1m30s`), as upstream reads
/// `metricsStalenessThreshold` and as the flow-control detector reads the same field.
fn parse_duration(text: &str) -> Option<Duration> {
    switchyard_runtime::duration::parse(text.trim()).ok()
}

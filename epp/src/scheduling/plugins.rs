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
pub(crate) mod implied;
mod labels;
mod load;
mod pickers;
mod registry;
mod scorers;

use std::fmt::Debug;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::scheduling::Context;

pub use affinity::PrefixCacheAffinityFilter;
pub use filters::{TestSelectionFilter, UtilizationFilter};
pub use labels::{LabelSelectorFilter, RoleFilter};
pub use load::{ActiveRequestScorer, ContextLengthScorer, LoadAwareScorer};
pub use pickers::{Picker, PickerKind};
pub use registry::{ALPHA, PLUGINS};
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
    /// A filter the scorer brings into the profile ahead of all scoring (upstream's
    /// plugins that are both, e.g. `context-length-aware` with `enableFiltering`).
    fn companion_filter(&self) -> Option<Box<dyn Filter>> {
        None
    }
}

/// Builds a filter from its plugin name, type and `parameters`.
pub type FilterBuilder = fn(&str, &str, serde_json::Value) -> Result<Box<dyn Filter>>;

/// Builds a scorer from its plugin name, type and `parameters`.
pub type ScorerBuilder = fn(&str, &str, serde_json::Value) -> Result<Box<dyn Scorer>>;

/// Checks the `parameters` of a plugin whose effect lives elsewhere (the prefix tables,
/// the scrape loop, flow control, request parsing), so no field is silently ignored.
pub type ParameterCheck = fn(&str, &str, serde_json::Value) -> Result<()>;

/// What a plugin type does, carrying how to build it.
#[derive(Clone, Copy, Debug)]
pub enum Role {
    /// A filter in a scheduling profile.
    Filter(FilterBuilder),
    /// A weighted scorer in a scheduling profile (it may bring a filter along, as
    /// `context-length-aware` with `enableFiltering`).
    Scorer(ScorerBuilder),
    /// The profile's picker.
    Picker(PickerKind),
    /// A response-path plugin: listing it under `plugins` turns it on; it takes no place in
    /// a profile.
    Response,
    /// Accepted with its parameters checked: its behaviour is built in, or another layer
    /// (flow control, the scrape loop, the prefix tables) reads it from the same file.
    Implied(ParameterCheck),
    /// An upstream plugin type Switchyard recognises but does not implement; the text says
    /// what to use instead.
    Unsupported(&'static str),
}

/// Conformance only: echoes the endpoint the proxy reports as having served
/// the request into `x-conformance-test-served-endpoint`.
pub const SERVED_ENDPOINT_VERIFIER: &str = "destination-endpoint-served-verifier";

/// The role of plugin type `type_`, if Switchyard knows it.
pub fn role(type_: &str) -> Option<Role> {
    PLUGINS
        .iter()
        .find(|(name, _)| *name == type_)
        .map(|(_, role)| *role)
}

/// Whether upstream marks `type_` Alpha.
pub fn is_alpha(type_: &str) -> bool {
    ALPHA.contains(&type_)
}

/// Every plugin type Switchyard implements or accepts, sorted and comma-separated (for
/// error messages).
pub fn known_types() -> String {
    let mut all: Vec<&str> = PLUGINS
        .iter()
        .filter(|(_, role)| !matches!(role, Role::Unsupported(_)))
        .map(|(name, _)| *name)
        .collect();
    all.sort_unstable();
    all.dedup();
    all.join(", ")
}

/// Refuses any parameter: the plugin takes none, so a field there is a mistake.
pub(crate) fn no_parameters(name: &str, type_: &str, value: serde_json::Value) -> Result<()> {
    match &value {
        serde_json::Value::Null => Ok(()),
        serde_json::Value::Object(map) if map.is_empty() => Ok(()),
        serde_json::Value::Object(map) => Err(Error::PluginParameters {
            name: name.into(),
            type_: type_.into(),
            reason: format!(
                "unknown field `{}`: this plugin takes no parameters",
                map.keys().next().map_or("", String::as_str)
            ),
        }),
        _ => Err(Error::PluginParameters {
            name: name.into(),
            type_: type_.into(),
            reason: "parameters must be a map (this plugin takes none)".into(),
        }),
    }
}

/// Decodes a plugin's `parameters` (absent means all defaults).
pub(crate) fn parameters<T: DeserializeOwned + Default>(
    name: &str,
    type_: &str,
    value: serde_json::Value,
) -> Result<T> {
    crate::parameters::decode(value).map_err(|reason| Error::PluginParameters {
        name: name.into(),
        type_: type_.into(),
        reason,
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

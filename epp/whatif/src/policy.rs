//! The routing policies a what-if run compares, all behind the fleet's [`Router`] hook.
//!
//! Plain load balancers (`random`, `round-robin`, `least-request`, `p2c`) see only what a
//! proxy sees: its own outstanding requests. `precise-oracle` reads the engines' true
//! prefix caches, the upper bound of precise (KV-event) prefix routing. Every other policy
//! is the EPP's own [`switchyard_epp::scheduling::Scheduler`] built from an
//! EndpointPickerConfig, fed by metrics refreshed on the EPP's 50 ms cadence
//! ([`epp::EppRouter`]).

mod baseline;
pub mod epp;

use switchyard_sim::fleet::{RoundRobin, Router};

pub use baseline::{LeastRequest, PowerOfTwo, PreciseOracle, RandomChoice};

use crate::error::{Error, Result};

/// How often the EPP (and every metrics-reading policy) sees fresh engine numbers: the
/// default `--refresh-metrics-interval` of 50 ms.
pub const SCRAPE_US: switchyard_sim::engine::Micros = 50_000;

/// Every policy, in report order.
pub const ALL: [&str; 9] = [
    "random",
    "round-robin",
    "least-request",
    "p2c",
    "gie-default",
    "llm-d-optimized",
    "sticky-until-saturated",
    "precise-oracle",
    "switchyard",
];

/// GIE's default scorers: queue 2, KV utilisation 2, approximate prefix 3, max-score.
pub const GIE_DEFAULT: &str = "\
plugins:
- {type: queue-scorer}
- {type: kv-cache-utilization-scorer}
- {type: prefix-cache-scorer}
- {type: max-score-picker}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: max-score-picker}
";

/// llm-d's optimized-baseline profile: GIE's default plus `no-hit-lru-scorer` (weight 2),
/// which spreads cold prompts over the least recently cold-hit endpoints.
pub const LLM_D_OPTIMIZED: &str = "\
plugins:
- {type: queue-scorer}
- {type: kv-cache-utilization-scorer}
- {type: prefix-cache-scorer}
- {type: no-hit-lru-scorer}
- {type: max-score-picker}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: no-hit-lru-scorer, weight: 2}
  - {pluginRef: max-score-picker}
";

/// llm-d's "sticky until saturated": `prefix-cache-affinity-filter` (upstream defaults:
/// affinity 0.8, release beyond an 18 s estimated prefill queue) in front of load scorers.
/// The prefix scorer is listed at weight 0: it only feeds the filter's prefix match.
pub const STICKY_UNTIL_SATURATED: &str = "\
plugins:
- {type: prefix-cache-affinity-filter}
- {type: prefix-cache-scorer}
- {type: queue-scorer}
- {type: kv-cache-utilization-scorer}
- {type: max-score-picker}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: prefix-cache-affinity-filter}
  - {pluginRef: prefix-cache-scorer, weight: 0}
  - {pluginRef: queue-scorer, weight: 1}
  - {pluginRef: kv-cache-utilization-scorer, weight: 1}
  - {pluginRef: max-score-picker}
";

/// Builds policy `name` for a fleet of `replicas` replicas; `seed` fixes its random draws.
pub fn build(name: &str, replicas: usize, seed: u64) -> Result<Box<dyn Router>> {
    let epp = |yaml: Option<&str>| -> Result<Box<dyn Router>> {
        let router = epp::EppRouter::new(name, yaml, replicas)?;
        Ok(Box::new(router))
    };
    match name {
        "random" => Ok(Box::new(RandomChoice::new(seed))),
        "round-robin" => Ok(Box::new(RoundRobin::default())),
        "least-request" => Ok(Box::new(LeastRequest::new(replicas, seed))),
        "p2c" => Ok(Box::new(PowerOfTwo::new(replicas, seed))),
        "precise-oracle" => Ok(Box::new(PreciseOracle::new(replicas))),
        "gie-default" => epp(Some(GIE_DEFAULT)),
        "llm-d-optimized" if has_no_hit_lru() => epp(Some(LLM_D_OPTIMIZED)),
        "llm-d-optimized" => epp(Some(GIE_DEFAULT)),
        "sticky-until-saturated" => epp(Some(STICKY_UNTIL_SATURATED)),
        "switchyard" => epp(None),
        other => Err(Error::UnknownPolicy(other.into(), ALL.join(", "))),
    }
}

/// Whether the EPP implements upstream's `no-hit-lru-scorer` (llm-d-optimized needs it).
fn has_no_hit_lru() -> bool {
    matches!(
        switchyard_epp::scheduling::plugins::role("no-hit-lru-scorer"),
        Some(switchyard_epp::scheduling::plugins::Role::Scorer(_))
    )
}

/// Caveats the report must carry about how policies were built here.
pub fn notes() -> Vec<String> {
    let mut notes = Vec::new();
    if !has_no_hit_lru() {
        notes.push(
            "`llm-d-optimized` runs without `no-hit-lru-scorer`, which this EPP build does not implement: it equals `gie-default` here."
                .to_owned(),
        );
    }
    notes
}

/// Parses `all` or a comma-separated list of policy names, checking each.
pub fn parse_list(list: &str) -> Result<Vec<String>> {
    if list.trim() == "all" {
        return Ok(ALL.iter().map(|s| (*s).to_owned()).collect());
    }
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if ALL.contains(&s) {
                Ok(s.to_owned())
            } else {
                Err(Error::UnknownPolicy(s.into(), ALL.join(", ")))
            }
        })
        .collect()
}

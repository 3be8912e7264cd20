//! The filter plugins: `utilization-detector` (in its filter role) and
//! `header-based-testing-filter`.

use super::{Filter, address_matches, parameters, parse_duration};
use crate::datastore::Endpoint;
use crate::error::{Error, Result};
use crate::flow::config::UtilizationParameters;
use crate::flow::saturation::UtilizationThresholds;
use crate::scheduling::Context;

/// Builds a `utilization-detector` filter from its parameters.
pub(super) fn utilization(
    name: &str,
    type_: &str,
    params: serde_json::Value,
) -> Result<Box<dyn Filter>> {
    let p: UtilizationParameters = parameters(name, type_, params)?;
    let staleness =
        parse_duration(&p.metrics_staleness_threshold).ok_or_else(|| Error::PluginParameters {
            name: name.into(),
            type_: type_.into(),
            reason: format!(
                "metricsStalenessThreshold `{}` is not a duration; write e.g. `200ms` or `2s`",
                p.metrics_staleness_threshold
            ),
        })?;
    if let Some(policy) = p.staleness_policy.as_deref().filter(|s| *s != "saturated") {
        return Err(Error::PluginParameters {
            name: name.into(),
            type_: type_.into(),
            reason: format!(
                "stalenessPolicy `{policy}` is not supported; stale endpoints count as saturated \
                 (`saturated`)"
            ),
        });
    }
    if p.queue_depth_threshold <= 0.0 || p.kv_cache_util_threshold <= 0.0 || p.headroom < 0.0 {
        return Err(Error::PluginParameters {
            name: name.into(),
            type_: type_.into(),
            reason: "queueDepthThreshold and kvCacheUtilThreshold must be > 0 and headroom ≥ 0"
                .into(),
        });
    }
    Ok(Box::new(UtilizationFilter {
        thresholds: UtilizationThresholds {
            queue_depth: p.queue_depth_threshold,
            kv_cache: p.kv_cache_util_threshold,
            staleness,
        },
        headroom: p.headroom,
    }))
}

/// Builds the `header-based-testing-filter` (it takes no parameters).
pub(super) fn test_selection(
    name: &str,
    type_: &str,
    params: serde_json::Value,
) -> Result<Box<dyn Filter>> {
    super::no_parameters(name, type_, params)?;
    Ok(Box::new(TestSelectionFilter))
}

/// `utilization-detector` used as a filter: drops endpoints that are
/// saturated (queue or KV above threshold × (1 + headroom)) or stale, but
/// keeps everyone when it would drop everyone.
#[derive(Debug)]
pub struct UtilizationFilter {
    thresholds: UtilizationThresholds,
    headroom: f64,
}

impl Default for UtilizationFilter {
    /// Upstream's parameters: queue depth 5, KV 0.8, metrics older than 200 ms are stale,
    /// no headroom.
    fn default() -> Self {
        Self {
            thresholds: UtilizationThresholds::default(),
            headroom: 0.0,
        }
    }
}

impl Filter for UtilizationFilter {
    fn type_name(&self) -> &'static str {
        "utilization-detector"
    }

    fn filter(&self, ctx: &Context<'_>, candidates: &mut Vec<usize>) {
        let limit = 1.0 + self.headroom;
        // Unlike the pool detector, the filter judges the scraped queue alone.
        let fits = |e: &Endpoint| {
            self.thresholds
                .endpoint_load(e, f64::from(e.metrics.waiting_queue), ctx.request.now)
                .is_some_and(|load| load <= limit)
        };
        if candidates
            .iter()
            .any(|&i| ctx.endpoint(i).is_some_and(fits))
        {
            candidates.retain(|&i| ctx.endpoint(i).is_some_and(fits));
        }
    }
}

/// `header-based-testing-filter`: keeps only the endpoints named (`ip` or
/// `ip:port`, comma-separated) by the conformance header
/// `test-epp-endpoint-selection`; without the header, keeps all.
#[derive(Debug)]
pub struct TestSelectionFilter;

impl Filter for TestSelectionFilter {
    fn type_name(&self) -> &'static str {
        "header-based-testing-filter"
    }

    fn filter(&self, ctx: &Context<'_>, candidates: &mut Vec<usize>) {
        let Some(selection) = ctx.request.test_endpoint_selection else {
            return;
        };
        candidates.retain(|&i| {
            ctx.endpoint(i).is_some_and(|e| {
                selection
                    .split(',')
                    .any(|entry| address_matches(entry, e.address))
            })
        });
    }
}

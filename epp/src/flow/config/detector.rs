//! Resolving the saturation detector: a `pluginRef` to a listed (or
//! built-in) `utilization-detector` or `concurrency-detector`, or GIE
//! v1.5.0's inline thresholds.
//!
//! `headroom` is accepted and unused here: it widens the utilization
//! detector's *filter* role in the scheduler, not pool saturation.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{
    DEFAULT_KV_CACHE_UTIL_THRESHOLD, DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_TOKEN_CONCURRENCY,
    DEFAULT_METRICS_STALENESS, DEFAULT_QUEUE_DEPTH_THRESHOLD, DetectorConfig, RawPlugin, invalid,
    parse_go_duration,
};
use crate::error::Result;

/// The `parameters` of a `utilization-detector` plugin, in both of its roles: the pool's
/// saturation detector here, and the scheduler's utilization filter
/// (`scheduling::plugins`), which alone uses `headroom`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct UtilizationParameters {
    /// `queueDepthThreshold`.
    pub queue_depth_threshold: f64,
    /// `kvCacheUtilThreshold`.
    pub kv_cache_util_threshold: f64,
    /// `metricsStalenessThreshold`, as written (a duration).
    pub metrics_staleness_threshold: String,
    /// How far over the thresholds the filter still keeps an endpoint (0.2 = 20 %).
    pub headroom: f64,
    /// Only `saturated` (stale endpoints count as full) is supported.
    pub staleness_policy: Option<String>,
}

impl Default for UtilizationParameters {
    fn default() -> Self {
        Self {
            queue_depth_threshold: DEFAULT_QUEUE_DEPTH_THRESHOLD,
            kv_cache_util_threshold: DEFAULT_KV_CACHE_UTIL_THRESHOLD,
            metrics_staleness_threshold: format!("{}ms", DEFAULT_METRICS_STALENESS.as_millis()),
            headroom: 0.0,
            staleness_policy: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct ConcurrencyParameters {
    concurrency_mode: String,
    max_concurrency: u64,
    max_token_concurrency: u64,
    headroom: f64,
}

impl Default for ConcurrencyParameters {
    fn default() -> Self {
        Self {
            concurrency_mode: "requests".into(),
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            max_token_concurrency: DEFAULT_MAX_TOKEN_CONCURRENCY,
            headroom: 0.0,
        }
    }
}

pub(super) fn detector(
    reference: Option<&Value>,
    plugins: &BTreeMap<String, &RawPlugin>,
) -> Result<DetectorConfig> {
    const FIELD: &str = "saturationDetector";
    let (type_, params) = match reference {
        None | Some(Value::Null) => match plugins
            .values()
            .find(|p| p.type_ == "utilization-detector" || p.type_ == "concurrency-detector")
        {
            // A detector plugin listed but not referenced is the one in use.
            Some(plugin) => (plugin.type_.as_str(), plugin.parameters.clone()),
            None => return Ok(DetectorConfig::default()),
        },
        Some(Value::Object(map)) if map.contains_key("pluginRef") => {
            let Some(Value::String(name)) = map.get("pluginRef") else {
                return Err(invalid(FIELD, "`pluginRef` must be a plugin name"));
            };
            if map.len() > 1 {
                return Err(invalid(
                    FIELD,
                    "only `pluginRef` may be set next to a plugin reference",
                ));
            }
            match plugins.get(name.as_str()) {
                Some(plugin) => (plugin.type_.as_str(), plugin.parameters.clone()),
                // Upstream's default detector may be named without being listed.
                None if name == "utilization-detector" || name == "concurrency-detector" => {
                    (name.as_str(), None)
                }
                None => {
                    return Err(invalid(
                        FIELD,
                        format!("pluginRef `{name}` names no entry of `plugins`"),
                    ));
                }
            }
        }
        // GIE v1.5.0's inline form: the utilization thresholds themselves.
        Some(inline @ Value::Object(_)) => ("utilization-detector", Some(inline.clone())),
        Some(_) => {
            return Err(invalid(
                FIELD,
                "expected a mapping such as `{pluginRef: utilization-detector}`",
            ));
        }
    };
    let params = params.unwrap_or(Value::Null);
    match type_ {
        "utilization-detector" => {
            let p: UtilizationParameters = plugin_parameters(type_, params)?;
            let staleness = parse_go_duration(&p.metrics_staleness_threshold).ok_or_else(|| {
                invalid(
                    "utilization-detector.metricsStalenessThreshold",
                    format!(
                        "`{}` is not a duration; write e.g. `200ms`",
                        p.metrics_staleness_threshold
                    ),
                )
            })?;
            if !(p.queue_depth_threshold > 0.0 && p.kv_cache_util_threshold > 0.0) {
                return Err(invalid(
                    "utilization-detector",
                    "queueDepthThreshold and kvCacheUtilThreshold must be > 0",
                ));
            }
            if let Some(policy) = p.staleness_policy.as_deref().filter(|s| *s != "saturated") {
                return Err(invalid(
                    "utilization-detector.stalenessPolicy",
                    format!(
                        "`{policy}` is not supported; Switchyard counts stale endpoints as saturated (`saturated`)"
                    ),
                ));
            }
            let _ = p.headroom;
            Ok(DetectorConfig::Utilization {
                queue_depth: p.queue_depth_threshold,
                kv_cache: p.kv_cache_util_threshold,
                staleness,
            })
        }
        "concurrency-detector" => {
            let p: ConcurrencyParameters = plugin_parameters(type_, params)?;
            let tokens = match p.concurrency_mode.as_str() {
                "requests" => false,
                "tokens" => true,
                other => {
                    return Err(invalid(
                        "concurrency-detector.concurrencyMode",
                        format!("`{other}` must be `requests` or `tokens`"),
                    ));
                }
            };
            if p.max_concurrency == 0 || p.max_token_concurrency == 0 {
                return Err(invalid(
                    "concurrency-detector",
                    "maxConcurrency and maxTokenConcurrency must be at least 1",
                ));
            }
            let _ = p.headroom;
            Ok(DetectorConfig::Concurrency {
                tokens,
                max_concurrency: p.max_concurrency,
                max_token_concurrency: p.max_token_concurrency,
            })
        }
        other => Err(invalid(
            FIELD,
            format!(
                "plugin type `{other}` is not a saturation detector; use utilization-detector or concurrency-detector"
            ),
        )),
    }
}

fn plugin_parameters<T: serde::de::DeserializeOwned + Default>(
    type_: &str,
    value: Value,
) -> Result<T> {
    if value.is_null() {
        return Ok(T::default());
    }
    crate::parameters::decode(value).map_err(|err| invalid(&format!("{type_}.parameters"), err))
}

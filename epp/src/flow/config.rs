//! The `flowControl` section of an `EndpointPickerConfig`
//! (docs/upstream.md#priority-flow-control-and-saturation), and the
//! saturation detector it uses, decoded into a [`FlowControlConfig`].
//!
//! Field names, formats and defaults follow upstream: quantities are
//! Kubernetes quantities (`5000`, `1Gi`, `500M`), durations are Go durations
//! (`60s`, `1m30s`, `200ms`), and `0` means "unlimited" for caps and
//! "unbounded" for TTLs. Where GIE v1.5.0 and llm-d differ, the llm-d default
//! is taken because it bounds the wait (see each constant).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

mod detector;
mod units;
mod usage_limit;

use crate::flow::usage::UsageLimitPolicy;
pub use detector::UtilizationParameters;
use detector::detector;
pub use units::{parse_go_duration, parse_quantity};
use units::{quantity, ttl_value};
use usage_limit::usage_limit;

/// Upstream's default cap on one band's queued bytes (1 GB).
pub const DEFAULT_BAND_MAX_BYTES: u64 = 1_000_000_000;
/// llm-d's default cap on one band's queued requests (GIE: unlimited). A
/// finite default keeps a runaway client from growing the queue without bound.
pub const DEFAULT_BAND_MAX_REQUESTS: u64 = 5000;
/// llm-d's default queue-wait budget (GIE: none, wait until the client leaves).
pub const DEFAULT_REQUEST_TTL: Duration = Duration::from_secs(60);
/// The utilization detector's queue-depth threshold.
pub const DEFAULT_QUEUE_DEPTH_THRESHOLD: f64 = 5.0;
/// The utilization detector's KV-cache threshold.
pub const DEFAULT_KV_CACHE_UTIL_THRESHOLD: f64 = 0.8;
/// Metrics older than this count as saturated. Upstream uses 200 ms, under one scrape
/// timeout (1 s): a single slow `/metrics` answer then made a busy server read as full.
/// Twice the scrape timeout lets one slow scrape finish before its endpoint goes stale.
pub const DEFAULT_METRICS_STALENESS: Duration = Duration::from_secs(2);
/// The concurrency detector's per-endpoint request capacity.
pub const DEFAULT_MAX_CONCURRENCY: u64 = 100;
/// The concurrency detector's per-endpoint token capacity.
pub const DEFAULT_MAX_TOKEN_CONCURRENCY: u64 = 1_000_000;

/// How a band picks the next flow to serve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fairness {
    /// `global-strict-fairness-policy`: the band is one queue; the flow whose
    /// head is first by the ordering policy goes next.
    #[default]
    GlobalStrict,
    /// `round-robin-fairness-policy`: flows take turns, one request each.
    RoundRobin,
}

/// How a flow orders its own requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ordering {
    /// `fcfs-ordering-policy`: first come, first served.
    #[default]
    Fcfs,
    /// `edf-ordering-policy`: earliest deadline (arrival + TTL) first;
    /// requests without a deadline go after those with one, FCFS.
    EarliestDeadline,
}

/// One priority band's limits and policies.
#[derive(Clone, Debug, PartialEq)]
pub struct BandConfig {
    /// Most requests queued in the band; 0 = unlimited.
    pub max_requests: u64,
    /// Most bytes queued in the band; 0 = unlimited.
    pub max_bytes: u64,
    /// The band's queue-wait budget: `None` inherits `defaultRequestTTL`,
    /// `Some(None)` is unbounded (`0s`).
    pub request_ttl: Option<Option<Duration>>,
    /// The fairness policy between flows.
    pub fairness: Fairness,
    /// The ordering policy within a flow.
    pub ordering: Ordering,
}

impl Default for BandConfig {
    fn default() -> Self {
        Self {
            max_requests: DEFAULT_BAND_MAX_REQUESTS,
            max_bytes: DEFAULT_BAND_MAX_BYTES,
            request_ttl: None,
            fairness: Fairness::default(),
            ordering: Ordering::default(),
        }
    }
}

/// Which saturation detector runs, with its parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum DetectorConfig {
    /// `utilization-detector`: mean over endpoints of max(queue/q, kv/k).
    Utilization {
        /// `queueDepthThreshold`.
        queue_depth: f64,
        /// `kvCacheUtilThreshold`.
        kv_cache: f64,
        /// `metricsStalenessThreshold`.
        staleness: Duration,
    },
    /// `concurrency-detector`: in-flight load over capacity.
    Concurrency {
        /// `concurrencyMode: tokens` (otherwise requests).
        tokens: bool,
        /// `maxConcurrency` per endpoint.
        max_concurrency: u64,
        /// `maxTokenConcurrency` per endpoint.
        max_token_concurrency: u64,
    },
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self::Utilization {
            queue_depth: DEFAULT_QUEUE_DEPTH_THRESHOLD,
            kv_cache: DEFAULT_KV_CACHE_UTIL_THRESHOLD,
            staleness: DEFAULT_METRICS_STALENESS,
        }
    }
}

/// The flow-control layer's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowControlConfig {
    /// Whether the `flowControl` feature gate is on. When off, the EPP keeps
    /// legacy admission and this layer is not started.
    pub enabled: bool,
    /// Most requests queued over all bands; 0 = unlimited.
    pub max_requests: u64,
    /// Most bytes queued over all bands; 0 = unlimited.
    pub max_bytes: u64,
    /// Queue-wait budget while the pool has endpoints; `None` = unbounded.
    pub default_request_ttl: Option<Duration>,
    /// Queue-wait budget while the pool has no endpoints; `None` = unbounded.
    pub no_endpoint_request_ttl: Option<Duration>,
    /// Template for bands not listed in `bands`.
    pub default_band: BandConfig,
    /// Template for negative priorities not listed (falls back to `default_band`).
    pub default_negative_band: Option<BandConfig>,
    /// Bands configured explicitly, by priority.
    pub bands: BTreeMap<i64, BandConfig>,
    /// The saturation detector.
    pub detector: DetectorConfig,
    /// Each band's ceiling on saturation (`usageLimitPolicyPluginRef`).
    pub usage_limit: UsageLimitPolicy,
}

impl Default for FlowControlConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            max_requests: 0,
            max_bytes: 0,
            default_request_ttl: Some(DEFAULT_REQUEST_TTL),
            no_endpoint_request_ttl: Some(DEFAULT_REQUEST_TTL),
            default_band: BandConfig::default(),
            default_negative_band: None,
            bands: BTreeMap::new(),
            detector: DetectorConfig::default(),
            usage_limit: UsageLimitPolicy::default(),
        }
    }
}

// === raw documents ===

/// The parts of an EndpointPickerConfig this layer reads. Other keys are
/// left to `SchedulerConfig::from_yaml`, which decodes the whole document
/// strictly.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDocument {
    #[serde(default)]
    feature_gates: Vec<String>,
    #[serde(default)]
    plugins: Vec<RawPlugin>,
    #[serde(default)]
    saturation_detector: Option<Value>,
    #[serde(default)]
    flow_control: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawPlugin {
    name: Option<String>,
    #[serde(rename = "type")]
    pub(super) type_: String,
    #[serde(default)]
    pub(super) parameters: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFlowControl {
    max_bytes: Option<Value>,
    max_requests: Option<Value>,
    #[serde(rename = "defaultRequestTTL")]
    default_request_ttl: Option<String>,
    #[serde(rename = "noEndpointRequestTTL")]
    no_endpoint_request_ttl: Option<String>,
    default_priority_band: Option<RawBand>,
    default_negative_priority_band: Option<RawBand>,
    #[serde(default)]
    priority_bands: Vec<RawBand>,
    usage_limit_policy_plugin_ref: Option<String>,
    band_selection_policy_plugin_ref: Option<String>,
    saturation_detector: Option<Value>,
    enable_eviction: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawBand {
    priority: Option<i64>,
    max_bytes: Option<Value>,
    max_requests: Option<Value>,
    #[serde(rename = "defaultRequestTTL")]
    default_request_ttl: Option<String>,
    fairness_policy_ref: Option<String>,
    ordering_policy_ref: Option<String>,
}
// === impl FlowControlConfig ===

impl FlowControlConfig {
    /// Reads the flow-control settings of an EndpointPickerConfig document:
    /// the `flowControl` feature gate, the `flowControl` section and the
    /// saturation detector (`flowControl.saturationDetector` as in llm-d, or
    /// the top-level `saturationDetector` as in GIE).
    pub fn from_yaml(text: &str) -> Result<Self> {
        let raw: RawDocument =
            serde_saphyr::from_str(text).map_err(|err| Error::ConfigSyntax(err.to_string()))?;
        Self::resolve(raw)
    }

    fn resolve(raw: RawDocument) -> Result<Self> {
        let plugins: BTreeMap<String, &RawPlugin> = raw
            .plugins
            .iter()
            .map(|p| (p.name.clone().unwrap_or_else(|| p.type_.clone()), p))
            .collect();
        let mut config = Self {
            enabled: flow_control_gate(&raw.feature_gates),
            ..Self::default()
        };
        let section: RawFlowControl = match raw.flow_control {
            None | Some(Value::Null) => RawFlowControl::default(),
            Some(value) => serde_json::from_value(value)
                .map_err(|err| invalid("flowControl", err.to_string()))?,
        };
        let _ = &section.band_selection_policy_plugin_ref;
        config.usage_limit =
            usage_limit(section.usage_limit_policy_plugin_ref.as_deref(), &plugins)?;
        if section.enable_eviction == Some(true) {
            return Err(invalid(
                "flowControl.enableEviction",
                "eviction of in-flight requests is not supported by Switchyard; remove the field or set it to false",
            ));
        }
        if let Some(q) = &section.max_bytes {
            config.max_bytes = quantity("flowControl.maxBytes", q)?;
        }
        if let Some(q) = &section.max_requests {
            config.max_requests = quantity("flowControl.maxRequests", q)?;
        }
        if let Some(ttl) = &section.default_request_ttl {
            config.default_request_ttl = ttl_value("flowControl.defaultRequestTTL", ttl)?;
        }
        config.no_endpoint_request_ttl = match &section.no_endpoint_request_ttl {
            Some(ttl) => ttl_value("flowControl.noEndpointRequestTTL", ttl)?,
            None => config.default_request_ttl,
        };
        if let Some(band) = &section.default_priority_band {
            config.default_band = band_config(
                "flowControl.defaultPriorityBand",
                band,
                &BandConfig::default(),
                &plugins,
            )?;
        }
        if let Some(band) = &section.default_negative_priority_band {
            config.default_negative_band = Some(band_config(
                "flowControl.defaultNegativePriorityBand",
                band,
                &config.default_band,
                &plugins,
            )?);
        }
        for (i, band) in section.priority_bands.iter().enumerate() {
            let field = format!("flowControl.priorityBands[{i}]");
            let Some(priority) = band.priority else {
                return Err(invalid(&field, "`priority` is required"));
            };
            let template = config.template(priority).clone();
            let resolved = band_config(&field, band, &template, &plugins)?;
            if config.bands.insert(priority, resolved).is_some() {
                return Err(invalid(
                    &field,
                    format!("priority {priority} is configured twice; keep one entry per priority"),
                ));
            }
        }
        let detector_ref = section
            .saturation_detector
            .as_ref()
            .or(raw.saturation_detector.as_ref());
        config.detector = detector(detector_ref, &plugins)?;
        Ok(config)
    }

    fn template(&self, priority: i64) -> &BandConfig {
        match &self.default_negative_band {
            Some(negative) if priority < 0 => negative,
            _ => &self.default_band,
        }
    }

    /// The band configuration for `priority`: its own entry, else the
    /// negative template for priorities below 0, else the default template.
    pub fn band(&self, priority: i64) -> &BandConfig {
        self.bands
            .get(&priority)
            .unwrap_or_else(|| self.template(priority))
    }

    /// The queue-wait budget of `priority` while the pool has endpoints,
    /// shortened (never lengthened) by a positive per-request TTL.
    pub fn request_ttl(&self, priority: i64, requested: Option<Duration>) -> Option<Duration> {
        let configured = self
            .band(priority)
            .request_ttl
            .unwrap_or(self.default_request_ttl);
        shorter(configured, requested)
    }

    /// The queue-wait budget while the pool has no endpoints, shortened by a
    /// positive per-request TTL.
    pub fn no_endpoint_ttl(&self, requested: Option<Duration>) -> Option<Duration> {
        shorter(self.no_endpoint_request_ttl, requested)
    }
}

/// Whether the file turns the `flowControl` gate on: `flowControl` or
/// `flowControl=true`, the last entry winning (the scheduler's loader checks the names).
fn flow_control_gate(gates: &[String]) -> bool {
    gates
        .iter()
        .filter_map(|g| match g.split_once('=') {
            None => (g.trim() == "flowControl").then_some(true),
            Some((name, value)) => (name.trim() == "flowControl").then(|| value.trim() == "true"),
        })
        .next_back()
        .unwrap_or(false)
}

/// The shorter of two optional budgets (`None` = unbounded); a zero request
/// is ignored.
fn shorter(configured: Option<Duration>, requested: Option<Duration>) -> Option<Duration> {
    match (configured, requested.filter(|d| !d.is_zero())) {
        (Some(c), Some(r)) => Some(c.min(r)),
        (c, r) => c.or(r),
    }
}

/// Checks the `parameters` of a flow-control plugin (a saturation detector or usage-limit
/// policy) as they would be read if it were referenced, so a mistake in a plugin declared
/// but not (yet) referenced fails too instead of lying in wait.
pub fn check_plugin_parameters(type_: &str, parameters: Value) -> Result<()> {
    const NAME: &str = "checked";
    let plugin = RawPlugin {
        name: Some(NAME.into()),
        type_: type_.into(),
        parameters: Some(parameters),
    };
    let plugins = BTreeMap::from([(NAME.to_owned(), &plugin)]);
    match type_ {
        "utilization-detector" | "concurrency-detector" => {
            let reference = serde_json::json!({ "pluginRef": NAME });
            detector(Some(&reference), &plugins).map(drop)
        }
        _ => usage_limit(Some(NAME), &plugins).map(drop),
    }
}

pub(super) fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::FlowControlConfig {
        field: field.into(),
        reason: reason.into(),
    }
}

fn band_config(
    field: &str,
    raw: &RawBand,
    template: &BandConfig,
    plugins: &BTreeMap<String, &RawPlugin>,
) -> Result<BandConfig> {
    let mut band = template.clone();
    if let Some(q) = &raw.max_bytes {
        band.max_bytes = quantity(&format!("{field}.maxBytes"), q)?;
    }
    if let Some(q) = &raw.max_requests {
        band.max_requests = quantity(&format!("{field}.maxRequests"), q)?;
    }
    if let Some(ttl) = &raw.default_request_ttl {
        band.request_ttl = Some(ttl_value(&format!("{field}.defaultRequestTTL"), ttl)?);
    }
    if let Some(reference) = &raw.fairness_policy_ref {
        band.fairness = match policy_type(reference, plugins) {
            "global-strict-fairness-policy" => Fairness::GlobalStrict,
            "round-robin-fairness-policy" => Fairness::RoundRobin,
            other => {
                return Err(invalid(
                    &format!("{field}.fairnessPolicyRef"),
                    format!(
                        "`{reference}` (type `{other}`) is not a fairness policy; use \
                         global-strict-fairness-policy or round-robin-fairness-policy"
                    ),
                ));
            }
        };
    }
    if let Some(reference) = &raw.ordering_policy_ref {
        band.ordering = match policy_type(reference, plugins) {
            "fcfs-ordering-policy" => Ordering::Fcfs,
            "edf-ordering-policy" => Ordering::EarliestDeadline,
            other => {
                return Err(invalid(
                    &format!("{field}.orderingPolicyRef"),
                    format!(
                        "`{reference}` (type `{other}`) is not an ordering policy Switchyard \
                         implements; use fcfs-ordering-policy or edf-ordering-policy"
                    ),
                ));
            }
        };
    }
    Ok(band)
}

/// The plugin type a policy reference names: the referenced plugin's type,
/// or the reference itself (upstream's built-in policies are named by type).
fn policy_type<'a>(reference: &'a str, plugins: &BTreeMap<String, &'a RawPlugin>) -> &'a str {
    plugins
        .get(reference)
        .map_or(reference, |p| p.type_.as_str())
}

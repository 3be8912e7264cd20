//! `spec.analysis`: where measurements come from and how each metric is judged.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DURATION_PATTERN;

/// How each step is judged.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.metrics) || !self.metrics.exists(m, m.type == 'Query') || (has(self.source) && has(self.source.prometheus))").message("a Query metric runs PromQL: set source.prometheus"))]
pub struct AnalysisSpec {
    /// Where measurements come from; our EPP's metrics by default.
    #[serde(default)]
    pub source: AnalysisSource,

    /// A window with fewer canary requests than this has no data.
    #[serde(default = "default_min_requests")]
    #[schemars(range(min = 0))]
    pub min_requests_per_window: i64,

    /// What a window without enough data counts as.
    #[serde(default)]
    pub no_data: NoDataSpec,

    /// The metrics judged at every analysis; empty means steps advance on time
    /// and verified weights alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, a.name == b.name))").message("metric names must be unique"))]
    pub metrics: Vec<MetricCheck>,
}

/// Where measurements come from. Exactly one of `epp` or `prometheus`.
#[derive(KubeSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
#[x_kube(validation = Rule::new("has(self.epp) != has(self.prometheus)").message("set exactly one of epp or prometheus"))]
pub struct AnalysisSource {
    /// Read our EPP's metrics directly (no Prometheus needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epp: Option<EppSource>,

    /// Run PromQL instant queries against a Prometheus HTTP API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSource>,
}

/// Scrape each arm's EPP pods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EppSource {
    /// How often the EPP pods are scraped.
    #[serde(default = "default_scrape_interval")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub scrape_interval: String,
}

/// A Prometheus-compatible HTTP API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSource {
    /// Base URL, e.g. `http://prometheus.monitoring:9090`.
    #[schemars(length(min = 1, max = 2048), regex(pattern = "^https?://"))]
    pub address: String,

    /// The label matcher selecting one arm's series; `{{arm}}` is replaced by
    /// the stable or canary backend's name.
    #[serde(default = "default_arm_selector")]
    #[schemars(length(min = 1, max = 1024))]
    pub arm_selector: String,

    /// Per-query timeout.
    #[serde(default = "default_query_timeout")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: String,
}

/// What a window without enough data counts as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NoDataSpec {
    /// `Hold` (default: neither pass nor fail), `Fail` or `Pass`.
    #[serde(default)]
    pub policy: NoDataPolicy,

    /// Consecutive held windows before the rollout pauses with reason `NoData`.
    #[serde(default = "default_no_data_limit")]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: i32,
}

/// What a window without enough data counts as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum NoDataPolicy {
    /// Neither a pass nor a failure; pauses after `limit` windows in a row.
    #[default]
    Hold,
    /// A failed check.
    Fail,
    /// A passed check.
    Pass,
}

/// One metric judged at every analysis. Every limit set must hold.
#[derive(KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::omit_null)]
#[x_kube(
    validation = Rule::new("has(self.max) || has(self.min) || has(self.maxDeltaVsStable) || has(self.maxRatioVsStable) || has(self.minRatioVsStable)").message("set at least one limit: max, min, maxDeltaVsStable, maxRatioVsStable or minRatioVsStable"),
    validation = Rule::new("self.type != 'Query' || has(self.query)").message("a Query metric needs query"),
    validation = Rule::new("self.type != 'ShedRate' || !has(self.onFail) || self.onFail == 'Pause'").message("ShedRate is a capacity signal: it can only pause (onFail: Pause)"),
)]
pub struct MetricCheck {
    /// A name unique within the rollout, shown in status and events.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,

    /// What is measured.
    #[serde(rename = "type")]
    pub type_: MetricType,

    /// ErrorRate: the status classes counted as errors (`5xx`, `4xx`); empty
    /// counts `5xx` only, since clients can provoke `4xx` at will.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    pub status_classes: Vec<StatusClass>,

    /// ErrorRate: status codes never counted (429 is always excluded: it is shedding).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub exclude_codes: Vec<i32>,

    /// TTFT and InterTokenLatency: the quantile judged, 0.95 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub quantile: Option<f64>,

    /// The canary's value may not exceed this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,

    /// The canary's value may not fall below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,

    /// `canary − stable` may not exceed this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delta_vs_stable: Option<f64>,

    /// `canary ÷ stable` may not exceed this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ratio_vs_stable: Option<f64>,

    /// `canary ÷ stable` may not fall below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ratio_vs_stable: Option<f64>,

    /// What a failure does: `Rollback` counts toward `failureThreshold` (default,
    /// except ShedRate), `Pause` stops progress for an admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_fail: Option<OnFail>,

    /// Overrides `analysis.noData.policy` for this metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_data: Option<NoDataPolicy>,

    /// A PromQL expression returning one number (Prometheus source): required
    /// for `Query`, and replaces the built-in query of any other type.
    /// `{{arm}}` is the backend name, `{{selector}}` the arm selector,
    /// `{{window}}` the window (`90s`), `{{quantile}}` the quantile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4096))]
    pub query: Option<String>,
}

/// What a [`MetricCheck`] measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum MetricType {
    /// Errors of the given status classes ÷ requests.
    ErrorRate,
    /// Requests shed (429/503 from flow control) ÷ requests. Pauses, never rolls back.
    ShedRate,
    /// A quantile of time to first token, in seconds.
    #[serde(rename = "TTFT")]
    Ttft,
    /// A quantile of inter-token latency, in seconds.
    InterTokenLatency,
    /// Output tokens per second per ready endpoint.
    OutputTokenThroughput,
    /// A user PromQL query (Prometheus source only).
    Query,
}

/// An HTTP status class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum StatusClass {
    /// Client errors, 429 excluded.
    #[serde(rename = "4xx")]
    Client,
    /// Server errors.
    #[serde(rename = "5xx")]
    Server,
}

/// What a failed metric does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum OnFail {
    /// Counts toward `failureThreshold`, then rolls back.
    Rollback,
    /// Pauses the rollout for an admin.
    Pause,
}

// === defaults ===

fn default_min_requests() -> i64 {
    100
}

fn default_no_data_limit() -> i32 {
    10
}

fn default_scrape_interval() -> String {
    "15s".to_owned()
}

fn default_arm_selector() -> String {
    "inference_pool=\"{{arm}}\"".to_owned()
}

fn default_query_timeout() -> String {
    "10s".to_owned()
}

impl Default for AnalysisSpec {
    fn default() -> Self {
        Self {
            source: AnalysisSource::default(),
            min_requests_per_window: default_min_requests(),
            no_data: NoDataSpec::default(),
            metrics: Vec::new(),
        }
    }
}

impl Default for AnalysisSource {
    fn default() -> Self {
        Self {
            epp: Some(EppSource {
                scrape_interval: default_scrape_interval(),
            }),
            prometheus: None,
        }
    }
}

impl Default for NoDataSpec {
    fn default() -> Self {
        Self {
            policy: NoDataPolicy::Hold,
            limit: default_no_data_limit(),
        }
    }
}

impl PrometheusSource {
    /// A source at `address` with the default selector and timeout.
    pub fn at(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            arm_selector: default_arm_selector(),
            timeout: default_query_timeout(),
        }
    }
}

// === impl MetricCheck ===

impl MetricCheck {
    /// A check of `type_` named `name` with no limits set yet.
    pub fn new(name: impl Into<String>, type_: MetricType) -> Self {
        Self {
            name: name.into(),
            type_,
            status_classes: Vec::new(),
            exclude_codes: Vec::new(),
            quantile: None,
            max: None,
            min: None,
            max_delta_vs_stable: None,
            max_ratio_vs_stable: None,
            min_ratio_vs_stable: None,
            on_fail: None,
            no_data: None,
            query: None,
        }
    }

    /// What a failure of this metric does: ShedRate always pauses.
    pub fn effective_on_fail(&self) -> OnFail {
        match (self.type_, self.on_fail) {
            (MetricType::ShedRate, _) => OnFail::Pause,
            (_, Some(on_fail)) => on_fail,
            (_, None) => OnFail::Rollback,
        }
    }

    /// The quantile judged for latency metrics (0.95 when unset).
    pub fn effective_quantile(&self) -> f64 {
        self.quantile.unwrap_or(0.95)
    }
}
